"""Run a command under a seccomp filter that fails every ptrace(2) with EPERM (as a locked-down container
does), to test kprof's message when it cannot trace. Usage: deny_ptrace.py COMMAND ARGS…"""
import ctypes
import ctypes.util
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from profiler.kernel.syscalls import host_arch, syscall_number  # noqa: E402

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW, EPERM = 0x00050000, 0x7FFF0000, 1
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


nr = syscall_number(host_arch(), "ptrace")
program = [(LD_W_ABS, 0, 0, 0),                       # A = seccomp_data.nr
           (JEQ_K, 0, 1, nr),                         # ptrace? fall through : skip one
           (RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
           (RET_K, 0, 0, SECCOMP_RET_ALLOW)]
raw = b"".join(struct.pack("HBBI", *insn) for insn in program)
buf = ctypes.create_string_buffer(raw)
prog = SockFprog(len(program), ctypes.cast(buf, ctypes.c_void_p))
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                                                               ctypes.byref(prog), 0, 0):
    sys.exit(f"deny_ptrace: cannot install the filter: {os.strerror(ctypes.get_errno())}")
os.execvp(sys.argv[1], sys.argv[1:])
