"""Run a command under kprof's own ptrace tracer (python-ptrace's libc binding), following every child.

The second recorder, for rigs without strace and for work that needs the tracer in kprof's own
process. It writes **the log format kprof's strace recording produces** (``strace -f -yy -ttt -T -X raw``
text, one line per completed call), so the one parser, the footprint, every report and ``kprof analyze``
serve both backends and the raw trace is always kept:

    PID TIME name(args) = result <duration>       fds as N</path>, N</dev/x<char M:N>>, N<TCP:[ino]>
    PID TIME name(args <unfinished ...>           a call the task never returned from
    PID TIME name(args) = -1 EIO (Input/output error) (INJECTED) <duration>
    PID TIME --- SIGCHLD {si_signo=17, si_code=0x1, si_pid=…} ---
    PID TIME +++ exited with 0 +++ / +++ killed by SIGKILL +++

Only what the footprint reads is decoded faithfully: the path behind an fd argument (read from
/proc/PID/fd at the stop, so no per-process fd tracking can drift), path strings, execve's path and
argv, the sockaddr of connect/bind/sendto in strace's raw form, the ioctl request, fds returned by
open/socket/accept/dup/…, errno. Every other argument is a raw hex number. No ``-C`` summary table is
written: strace's summary is strace's ground truth, not ours.

How (the pitfalls measured in ../shared/reference/tools.md):

- The tracer runs in a forked process of its own session, like strace: kprof's process follows the log
  while it grows (``record.core.follow_log``), so the analysis runs on the other core, and Ctrl-C or
  the timeout kill the tracees (never the tracer), which then writes their ends and exits.
- The traced command is seized (PTRACE_SEIZE with TRACESYSGOOD, TRACEFORK/VFORK/CLONE/EXEC and
  EXITKILL): children and threads are attached by the kernel at fork/clone time, so nothing forks
  faster than the tracer can attach.
- One blocking ``waitpid(-1, __WALL)`` serves every tracee: no polling (python-ptrace's own
  multi-process wait sleeps up to 0.5 s per round). A new child's first stop may arrive before its
  parent's fork event; it is simply the child's attach stop (any unseen tid's PTRACE_EVENT_STOP is),
  resumed on the spot, so there is no ordering to wait for.
- PTRACE_GET_SYSCALL_INFO (Linux >= 5.3) gives the ABI, number and arguments at entry and the return
  value and error flag at exit in one call; names come from kprof's own tables
  (``profiler.kernel.syscalls``), never python-ptrace's (stale, no arm).
- Fault rules (``profiler.inject``) are applied in the tracer like strace's ``-e inject=`` (error=,
  retval=, delay_enter=, delay_exit=, when= per syscall and tracee), and may also be restricted to a
  path glob or an fd class, which strace cannot do. A delay holds only its tracee: the loop then
  waits in sigtimedwait for SIGCHLD or the next due delay, still without polling.
- An emulated device served at the syscall boundary (``spi``, a ``profiler.pump.spi.SpiDevice``): every
  ``ioctl`` on an fd whose path is the placeholder node (``/dev/spidev0.0``, a regular file, so a real
  spidev character node is never served) is skipped in the kernel and answered by the device model,
  which reads the transfers and writes ``rx_buf`` through /proc/PID/mem (spi-radio.md §8.3). Such a line
  ends in ``(SERVED)``, so the footprint keeps served calls apart from calls the kernel executed. Writes
  to the fake ``/sys/class/gpio`` tree run for real (on tmpfs) and are shown to the device model once
  they returned (the reset pulse, a new export).

Longer than ~600 lines because the tracer's stop loop and what it decides at each stop (a new task, an exec,
an exit, a signal, an injected or held call, a call served by the emulated device) are one state machine over
one waitpid loop, read best in one place; how a stop is printed is ``profiler.record.ptrace_text``.
"""
from __future__ import annotations

import collections
import ctypes
import errno as _errno
import heapq
import itertools
import json
import os
import shutil
import signal
import struct
import tempfile
import time
import traceback

from ptrace import PtraceError
from ptrace.binding import func as _pt

from profiler.errors import KprofError
from profiler.kernel import arches, syscalls
from profiler.kernel.errnos import errno_number, is_error_value
from profiler.libc import libc
from profiler.record.ptrace_text import (_ARGS, _CLONES, _F_DUPFD, _R_FD, _R_NUM, _RESULT, TraceeText, _errtext,
                                          _nargs, _signame)
from profiler.record.core import TraceOutcome, become_subreaper, supervise
from profiler.signals import reset_in_child

# ---- ptrace(2) constants python-ptrace 0.9.9 does not have --------------------------------------
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_GET_SYSCALL_INFO = 0x420E
PTRACE_SET_SYSCALL_INFO = 0x4212         # Linux 6.16: change a syscall's number or result, on any arch
PTRACE_POKEUSER = 6
X86_64_RAX, X86_64_ORIG_RAX = 10 * 8, 15 * 8   # offsets in struct user_regs_struct
PTRACE_O_EXITKILL = 0x100000
PTRACE_EVENT_STOP = 128
OPTIONS = (_pt.PTRACE_O_TRACESYSGOOD | _pt.PTRACE_O_TRACEFORK | _pt.PTRACE_O_TRACEVFORK
           | _pt.PTRACE_O_TRACECLONE | _pt.PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)
WALL = _pt.THREAD_TRACE_FLAGS            # __WALL: threads and non-children (reparented tracees) too
SYSCALL_STOP = signal.SIGTRAP | 0x80     # what TRACESYSGOOD makes a syscall stop report

# struct ptrace_syscall_info (include/uapi/linux/ptrace.h): op, pad, arch, ip, sp, then the union
INFO_SIZE = 88
_ENTRY = struct.Struct("<B3xI16xQ6Q")    # op, arch, nr, args[6]
_EXIT = struct.Struct("<24xqB")          # rval, is_error
_SIGINFO = struct.Struct("<iii4xiI")     # si_signo, si_errno, si_code, then si_pid, si_uid (or si_addr)
_ADDR = struct.Struct("<Q")

# AUDIT_ARCH_* (include/uapi/linux/audit.h) → kprof arch (data/arches.tsv); bit 31 means a 64-bit ABI
_AUDIT_ARCH = arches.by_audit_arch()
_X32_BIT = 0x40000000

_ptrace = libc().ptrace                   # the same libc function python-ptrace binds, with signed results
_ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_ulong, ctypes.c_ulong)
_ptrace.restype = ctypes.c_long

_EXITS = ("exit", "exit_group")             # never return: "= ?" when the task ends
_SPI_CALLS = frozenset(("ioctl", "write", "epoll_ctl"))   # what an emulated spidev and its GPIO tree look at
_EPOLL_CTL_ADD, _EPOLL_CTL_DEL = 1, 2



class _Memory:
    """One tracee's memory, as profiler.pump.spi.SpiDevice reads and writes it (short read: bad address)."""

    __slots__ = ("tracer", "tid")

    def __init__(self, tracer: "_Tracer", tid: int):
        self.tracer, self.tid = tracer, tid

    def read(self, addr: int, size: int) -> bytes:
        return self.tracer._read(self.tid, addr, size) if size else b""

    def write(self, addr: int, data: bytes) -> bool:
        return self.tracer._write_mem(self.tid, addr, data)


class _Tracer(TraceeText):
    """The event loop of the tracer process: one blocking waitpid for every tracee, one log line per call."""

    def __init__(self, log, root: int, inject: list | None = None, set_info: bool = False, spi=None):
        self.write = log.write
        self.root = root
        self.root_status: int | None = None
        self.pending: dict[int, tuple] = {}      # tid → (name, args text, entry time, result kind)
        self.started: set[int] = set()           # tids whose attach stop has been seen
        # tids whose end was written: a zombie its parent never reaped is reparented to the tracer (the
        # subreaper) and reported again; not a second exit (a tid reused by a new task is started again)
        self.ended: set[int] = set()
        self.hidden: set[int] = {root}           # the root until its first execve: kprof's own set-up
        self.mem: dict[int, int] = {}            # tid → fd of /proc/TID/mem
        self.specs: dict[tuple[int, int], tuple] = {}
        self.host = syscalls.host_arch()
        self._buf = (ctypes.c_ubyte * INFO_SIZE)()
        self._sigbuf = (ctypes.c_ubyte * 128)()
        self._msg = ctypes.c_ulong()
        self.set_info = set_info
        self.inject = _Injections(inject, set_info) if inject else None
        self.spi = spi                           # an emulated spidev (profiler.pump.spi.SpiDevice) or None
        self.spi_label = f"<{spi.board.device}>" if spi else None
        self.gpio_writes: dict[int, tuple[str, bytes]] = {}   # tid → a write to the fake GPIO tree, in flight
        self.tgids: dict[int, int] = {}
        self.timers: list[tuple[float, int, int]] = []   # (due, seq, tid): tracees held by a delay_enter/exit
        self._seq = itertools.count()

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        waitpid, now, write = os.waitpid, time.time, self.write
        ptrace, SYSCALL = _ptrace, _pt.PTRACE_SYSCALL
        buf = self._buf
        info = ctypes.addressof(buf)
        entry, exit_ = _ENTRY.unpack_from, _EXIT.unpack_from
        pending, specs, hidden = self.pending, self.specs, self.hidden
        errtext: dict[int, str] = {}
        inject = self.inject.by_name if self.inject else None
        spi, gpio = self.spi, self.gpio_writes
        ready: collections.deque = collections.deque()
        started = self.started
        while True:
            if not ready:
                try:
                    ready.append(waitpid(-1, WALL) if not self.timers else self._wait_or_wake())
                    if len(started) > 1:
                        # every tracee stopped by now, each handled once in this round (as strace does):
                        # waitpid(-1) alone always returns the same ready tracee first, and busy threads
                        # then starved the others (16 threads: 2 to 4,213 calls each, against 211-365)
                        while (more := waitpid(-1, WALL | os.WNOHANG))[0]:
                            if more[1] >> 16 == _pt.PTRACE_EVENT_EXEC and any(t == more[0] for t, _ in ready):
                                # a stop of the old thread-group leader, whose tid a thread's execve took
                                # since: stale (resuming it would resume the exec'ing thread past its exec)
                                ready = collections.deque(r for r in ready if r[0] != more[0])
                            ready.append(more)
                except ChildProcessError:
                    if not ready:
                        return
            tid, status = ready.popleft()
            if status & 0xFF == 0x7F:
                sig = (status >> 8) & 0xFF
                if sig == SYSCALL_STOP:
                    t = now()
                    if ptrace(PTRACE_GET_SYSCALL_INFO, tid, INFO_SIZE, info) > 0:
                        op = buf[0]
                        if op == 1:
                            _, arch, nr, *args = entry(buf)
                            spec = specs.get((arch, nr)) or self._spec(arch, nr)
                            name, n, kinds, rkind = spec
                            if kinds is None:
                                text = (self._clone_args(tid, name, args) if name in _CLONES
                                        else ", ".join(map(hex, args[:n])))
                            else:
                                text = self._args(tid, kinds, args, arch)
                                if name in ("fcntl", "fcntl64") and args[1] in _F_DUPFD:
                                    rkind = _R_FD
                            pending[tid] = (name, text, t, rkind)
                            held = inject is not None and name in inject and self._inject_entry(tid, spec, args, t)
                            if spi is not None and name in _SPI_CALLS:
                                self._spi_entry(tid, name, text, args)
                            if held:
                                continue                     # held for delay_enter: a timer resumes it
                        elif op == 2:
                            p = pending.pop(tid, None)
                            if p is not None and len(p) > 4:
                                if self._inject_exit(tid, p, t):
                                    continue                 # held for delay_exit
                            elif p is not None and not (hidden and tid in hidden):
                                rval, is_error = exit_(buf)
                                if gpio and tid in gpio and not is_error:
                                    self.spi.gpio_write(self._tgid(tid), *gpio.pop(tid))
                                if is_error:
                                    res = errtext.get(rval)
                                    if res is None:
                                        res = errtext[rval] = _errtext(-rval)
                                elif p[3] == _R_NUM:
                                    res = str(rval)
                                else:
                                    res = self._result(tid, p[3], rval)
                                write(f"{tid} {p[2]:.6f} {p[0]}({p[1]}) = {res} <{t - p[2]:.6f}>\n")
                    ptrace(SYSCALL, tid, 0, 0)
                    continue
                event = status >> 16
                if event == 0:
                    self._signal(tid, sig)
                elif event == PTRACE_EVENT_STOP:
                    if tid not in self.started:          # the attach stop of a new child or thread
                        self.started.add(tid)
                        self.ended.discard(tid)
                        ptrace(SYSCALL, tid, 0, 0)
                    elif sig in (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
                        if not (hidden and tid in hidden):
                            write(f"{tid} {now():.6f} --- stopped by {_signame(sig)} ---\n")
                        ptrace(PTRACE_LISTEN, tid, 0, 0)  # group-stop: stay stopped until SIGCONT
                    else:
                        ptrace(SYSCALL, tid, 0, 0)
                else:
                    if event == _pt.PTRACE_EVENT_EXEC:
                        self._exec(tid)
                    elif self.ended and ptrace(_pt.PTRACE_GETEVENTMSG, tid, 0, ctypes.addressof(self._msg)) == 0:
                        self.ended.discard(self._msg.value)   # a tid reused: its end is a new task's
                    ptrace(SYSCALL, tid, 0, 0)          # fork/vfork/clone: the child attaches itself
                continue
            self._ended(tid, status)

    # ---- an emulated spidev and its GPIO tree (profiler.pump.spi) -------------------------------------

    def _tgid(self, tid: int) -> int:
        """The process a thread belongs to (the radio state is per process: spi-radio.md §8.4)."""
        tgid = self.tgids.get(tid)
        if tgid is None:
            tgid = tid
            try:
                with open(f"/proc/{tid}/status") as f:
                    for line in f:
                        if line.startswith("Tgid:"):
                            tgid = int(line.split()[1])
                            break
            except (OSError, ValueError):
                pass
            self.tgids[tid] = tgid
        return tgid

    def _spi_entry(self, tid: int, name: str, text: str, args: list[int]) -> None:
        """An ioctl on the placeholder spidev node: skip it and answer as spidev would; a write to the
        fake GPIO tree: remember it, for the device model once it returned; an epoll_ctl ADD or DEL of a
        file in that tree: skip it and answer 0, as real sysfs files (kernfs, pollable) let Go's netpoller
        register them (tmpfs would say EPERM; spi-radio.md §2.2, §8.2)."""
        if self.hidden and tid in self.hidden:
            return
        p = self.pending[tid]
        if len(p) > 4 and p[4].retval is not None:
            return                                   # an injected fault: the device is not reached
        first = text.split(", ", 1)[0]
        if name == "ioctl":
            if first.endswith(self.spi_label):
                self._serve(tid, self.spi.ioctl(self._tgid(tid), args[1], args[2], _Memory(self, tid)))
            return
        if name == "epoll_ctl":
            if args[1] in (_EPOLL_CTL_ADD, _EPOLL_CTL_DEL) and "</sys/class/gpio/" in text:
                self._serve(tid, 0)
            return
        k = first.find("</sys/class/gpio/")
        if k > 0:
            self.gpio_writes[tid] = (first[k + 1:-1], self._read(tid, args[1], min(args[2], 64)))


    def _serve(self, tid: int, rval: int) -> None:
        """The kernel skips this call; the tracee sees ``rval``; the log line ends in (SERVED). An injected
        fault on the same call wins (the device failed: nothing is served); an injected delay is kept."""
        p = self.pending[tid]
        if len(p) > 4:                               # an injected delay (a fault was turned away above)
            self.pending[tid] = p[:4] + (_Act(rval, is_error_value(rval), p[4].delay_enter, p[4].delay_exit,
                                              " (SERVED)"),)
        else:
            self.pending[tid] = p + (_Act(rval, is_error_value(rval), 0.0, 0.0, " (SERVED)"),)
        _skip_call(tid, self.set_info)

    def _inject_entry(self, tid: int, spec: tuple, args: list[int], t: float) -> bool:
        """Apply the first rule that takes this call; True when the tracee is held for a delay."""
        if self.hidden and tid in self.hidden:
            return False                             # kprof's own exec of the command is never tampered with
        name, _, kinds, _ = spec
        act = self.inject.decide(self, tid, name, kinds, args)
        if act is None:
            return False
        self.pending[tid] += (act,)
        if act.retval is not None:
            _skip_call(tid, self.set_info)
        if act.delay_enter:
            self._hold(tid, act.delay_enter)
            return True
        return False

    def _inject_exit(self, tid: int, p: tuple, t: float) -> bool:
        act = p[4]
        if act.retval is not None:
            rval, is_error = act.retval, act.is_error
            _set_result(tid, rval, self.set_info)
            tag = act.tag
        else:
            rval, is_error = _EXIT.unpack_from(self._buf)
            tag = " (DELAYED)"
        if not (self.hidden and tid in self.hidden):
            res = _errtext(-rval) if is_error else (str(rval) if p[3] == _R_NUM else self._result(tid, p[3], rval))
            self.write(f"{tid} {p[2]:.6f} {p[0]}({p[1]}) = {res}{tag} <{t - p[2]:.6f}>\n")
        if act.delay_exit:
            self._hold(tid, act.delay_exit)
            return True
        return False

    def _hold(self, tid: int, seconds: float) -> None:
        heapq.heappush(self.timers, (time.monotonic() + seconds, next(self._seq), tid))

    def _wait_or_wake(self) -> tuple[int, int]:
        """waitpid(-1) that also resumes held tracees when their delay is over, without polling.

        SIGCHLD (blocked in the tracer, so it stays pending) tells that a tracee stopped or ended;
        sigtimedwait sleeps until that or the next due timer.
        """
        while True:
            tid, status = os.waitpid(-1, WALL | os.WNOHANG)
            if tid:
                return tid, status
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _ptrace(_pt.PTRACE_SYSCALL, heapq.heappop(self.timers)[2], 0, 0)
            if not self.timers:
                return os.waitpid(-1, WALL)
            signal.sigtimedwait([signal.SIGCHLD], self.timers[0][0] - now)

    # ---- stops other than syscalls ----------------------------------------------------------------

    def _signal(self, tid: int, sig: int) -> None:
        """Signal-delivery-stop: report it, then deliver it."""
        if not (self.hidden and tid in self.hidden):
            name = _signame(sig)
            detail = f"si_signo={sig}"             # numbers, as strace -X raw prints them
            if _ptrace(_pt.PTRACE_GETSIGINFO, tid, 0, ctypes.addressof(self._sigbuf)) == 0:
                _, _, code, pid, uid = _SIGINFO.unpack_from(self._sigbuf)
                if sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGTRAP) and code > 0:
                    detail += f", si_code={code:#x}, si_addr={_ADDR.unpack_from(self._sigbuf, 16)[0]:#x}"
                else:
                    detail += f", si_code={code:#x}, si_pid={pid}, si_uid={uid}"
            self.write(f"{tid} {time.time():.6f} --- {name} {{{detail}}} ---\n")
        _ptrace(_pt.PTRACE_SYSCALL, tid, 0, sig)

    def _exec(self, tid: int) -> None:
        """PTRACE_EVENT_EXEC: the address space is new; a non-leader thread that exec'd now has the leader's tid."""
        self._close_mem(tid)
        if _ptrace(_pt.PTRACE_GETEVENTMSG, tid, 0, ctypes.addressof(self._msg)) == 0:
            former = self._msg.value
            if former != tid:
                self._close_mem(former)
                old = self.pending.pop(tid, None)    # the old leader vanishes without an exit report
                if old is not None and not (self.hidden and tid in self.hidden):
                    self.write(f"{tid} {old[2]:.6f} {old[0]}({old[1]} <unfinished ...>\n"
                               f"{tid} {time.time():.6f} +++ superseded by execve in pid {former} +++\n")
                moved = self.pending.pop(former, None)
                if moved is not None:
                    self.pending[tid] = moved
                self.started.add(tid)
        self.hidden.discard(tid)

    def _ended(self, tid: int, status: int) -> None:
        """A task exited or was killed: close its open call and say how it ended."""
        if tid in self.ended and tid not in self.started:
            self.ended.discard(tid)              # the same end, reaped again by the subreaper
            return
        t = time.time()
        visible = not (self.hidden and tid in self.hidden)
        p = self.pending.pop(tid, None)
        if os.WIFEXITED(status):
            how = f"exited with {os.WEXITSTATUS(status)}"
        elif os.WIFSIGNALED(status):
            how = f"killed by {_signame(os.WTERMSIG(status))}" + (" (core dumped)" if os.WCOREDUMP(status) else "")
        else:
            return
        if visible:
            if p is not None:
                if p[0] in _EXITS:
                    self.write(f"{tid} {p[2]:.6f} {p[0]}({p[1]}) = ?\n")
                else:
                    self.write(f"{tid} {p[2]:.6f} {p[0]}({p[1]} <unfinished ...>\n")
            self.write(f"{tid} {t:.6f} +++ {how} +++\n")
        self._close_mem(tid)
        self.started.discard(tid)
        self.ended.add(tid)
        self.hidden.discard(tid)
        self.gpio_writes.pop(tid, None)
        if self.spi is not None and self.tgids.pop(tid, tid) == tid:
            self.spi.process_ended(tid)
        if tid == self.root:
            self.root_status = status

    # ---- decoding ------------------------------------------------------------------------------

    def _spec(self, arch_code: int, nr: int) -> tuple:
        arch = _AUDIT_ARCH.get(arch_code)
        if arch is not None:
            arch = arches.abi_on(self.host, arch)      # arm on aarch64: arm64-compat's numbers
        name = None
        if arch is not None and not (arch == "x86_64" and nr & _X32_BIT):
            name = syscalls.syscall_name(arch, nr)
        if name is None:
            spec = (f"syscall_{nr:#x}", 6, None, _R_NUM)
        else:
            n = _nargs(arch, name)
            kinds = _ARGS.get(name, "")[:n]
            spec = (name, n, kinds.ljust(n, "_") if kinds else None, _RESULT.get(name, _R_NUM))
        self.specs[(arch_code, nr)] = spec
        return spec

# ---- fault injection ---------------------------------------------------------------------------

class _Act:
    """What to do to one call: replace its result (skipping the call), hold the tracee before or after it."""

    __slots__ = ("retval", "is_error", "delay_enter", "delay_exit", "tag")

    def __init__(self, retval, is_error, delay_enter, delay_exit, tag=" (INJECTED)"):
        self.retval, self.is_error, self.delay_enter, self.delay_exit = retval, is_error, delay_enter, delay_exit
        self.tag = tag


class _Injections:
    """profiler.inject rules, applied at syscall entry as strace's -e inject= does (error=, retval=,
    delay_enter=, delay_exit=, when= counted per syscall and per tracee), plus what strace cannot do:
    a restriction to a path (glob) or an fd class, checked against the call's fd or path argument."""

    def __init__(self, rules: list, use_set_info: bool):
        from profiler.inject import delay_us, when_test
        self.use_set_info = use_set_info
        self.by_name: dict[str, list] = {}
        self.counts: dict[tuple, int] = {}
        self.delays = False
        for i, r in enumerate(rules):
            where = f"inject rule '{r.describe()}'"
            retval, is_error = None, False
            if r.error is not None:
                code = errno_number(str(r.error)) if not str(r.error).isdigit() else int(r.error)
                if code is None:
                    raise KprofError(f"{where}: unknown errno {r.error!r}")
                retval, is_error = -code, True
            elif r.retval is not None:
                retval = int(r.retval)
                is_error = is_error_value(retval)
            enter = delay_us(r.delay_enter, where) / 1e6 if r.delay_enter is not None else 0.0
            leave = delay_us(r.delay_exit, where) / 1e6 if r.delay_exit is not None else 0.0
            self.delays = self.delays or bool(enter or leave)
            act = _Act(retval, is_error, enter, leave)
            for name in r.syscalls:
                self.by_name.setdefault(name, []).append((i, r, when_test(r.when), act))

    @property
    def skips(self) -> bool:
        return any(act.retval is not None for rules in self.by_name.values() for *_, act in rules)

    def decide(self, tracer: "_Tracer", tid: int, name: str, kinds: str | None, args: list[int]) -> _Act | None:
        """Count the call for every rule that takes it; the first rule whose when= fires decides."""
        targets = None
        chosen = None
        for i, rule, when, act in self.by_name[name]:
            if rule.restricted:
                if targets is None:
                    targets = tracer._targets(tid, kinds, args) or [None]
                if not any(rule.matches(name, t) for t in targets):
                    continue
            key = (tid, i, name)
            n = self.counts[key] = self.counts.get(key, 0) + 1
            if chosen is None and when(n):
                chosen = act
        return chosen


def _skip_call(tid: int, use_set_info: bool) -> None:
    """At syscall entry: make the kernel run no syscall (number -1), as strace's error=/retval= do."""
    if use_set_info:
        _set_info(tid, 24, struct.pack("<q", -1))
    else:
        _ptrace(PTRACE_POKEUSER, tid, X86_64_ORIG_RAX, 0xFFFFFFFFFFFFFFFF)


def _set_result(tid: int, rval: int, use_set_info: bool) -> None:
    """At syscall exit: the return value the tracee sees."""
    if use_set_info:
        _set_info(tid, 24, struct.pack("<qB", rval, is_error_value(rval)))
    else:
        _ptrace(PTRACE_POKEUSER, tid, X86_64_RAX, rval & 0xFFFFFFFFFFFFFFFF)


def _set_info(tid: int, offset: int, data: bytes) -> None:
    buf = (ctypes.c_ubyte * INFO_SIZE)()
    if _ptrace(PTRACE_GET_SYSCALL_INFO, tid, INFO_SIZE, ctypes.addressof(buf)) > 0:
        ctypes.memmove(ctypes.addressof(buf) + offset, data, len(data))
        _ptrace(PTRACE_SET_SYSCALL_INFO, tid, INFO_SIZE, ctypes.addressof(buf))


# ---- the tracer process ------------------------------------------------------------------------

def _executable(argv0: str, cwd: str, env: dict) -> str:
    """The file execve will run: PATH is searched the way strace does, in the command's environment."""
    if "/" in argv0:
        path = os.path.join(cwd, argv0)
        if os.path.isfile(path):
            return path
        raise KprofError(f"cannot run {argv0!r}: no such file (looked at {path})")
    found = shutil.which(argv0, path=env.get("PATH", os.defpath))
    if found is None:
        raise KprofError(f"cannot run {argv0!r}: not found on the command's PATH ({env.get('PATH', '')})")
    return found


def not_permitted_message(error: str) -> str:
    """Name the setting that forbids ptrace here, and how to change it."""
    causes = []
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = int(f.read())
        if scope >= 1:
            causes.append(f"Yama kernel.yama.ptrace_scope is {scope}"
                          + (" (3: no process may trace; only a reboot lowers it)" if scope == 3 else ""))
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/self/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        if status.get("Seccomp", "0").strip() == "2":
            causes.append("a seccomp filter is active on kprof (Seccomp: 2 in /proc/self/status), "
                          "as container runtimes install")
        if not int(status.get("CapEff", "0"), 16) & (1 << 19):
            causes.append("kprof lacks CAP_SYS_PTRACE")
    except (OSError, ValueError):
        pass
    return ("ptrace is not permitted here, so the ptrace backend cannot trace the command "
            f"(PTRACE_SEIZE: {error})" + ("; likely cause: " + "; ".join(causes) if causes else "") + ".\n"
            "Fix: run as root or with CAP_SYS_PTRACE; lower Yama with sysctl kernel.yama.ptrace_scope=1 "
            "(or 0); in a container allow ptrace (docker run --cap-add SYS_PTRACE, and a seccomp profile "
            "that permits ptrace, e.g. --security-opt seccomp=unconfined). strace needs the same permission.")


def _trace(path: str, argv: list[str], cwd: str, env: dict, log_path: str, stdout_path: str,
           stderr_path: str, inject: list, spi=None, device_report: str | None = None) -> int:
    """Body of the tracer process: start the command seized, trace it to the end; returns its exit code."""
    os.setsid()                                   # like strace's session: Ctrl-C reaches kprof only
    reset_in_child()                              # SIGINT, SIGTERM, SIGHUP: default actions
    become_subreaper()                            # daemonised tracees stay our children
    # a stopped or ended tracee's SIGCHLD stays pending for _wait_or_wake's sigtimedwait (delay injection)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    release_r, release_w = os.pipe()
    out = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    child = os.fork()
    if child == 0:                                # the command: set up, wait to be seized, exec
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            os.chdir(cwd)
            for s in (signal.SIGPIPE, signal.SIGXFSZ):    # Python ignores these; the command must not
                signal.signal(s, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            for name in os.listdir("/proc/self/fd"):      # nothing of kprof's leaks into the command
                if int(name) > 2:
                    try:
                        os.set_inheritable(int(name), False)
                    except OSError:
                        pass
            if os.read(release_r, 1) == b"x":
                os.execve(path, argv, env)
        except BaseException as e:                # noqa: BLE001 - report anything, never return into kprof
            os.write(2, f"kprof: cannot execute {path}: {e}\n".encode())
        os._exit(127)
    os.close(release_r)
    os.close(out)
    os.close(err)
    try:
        _pt.ptrace(PTRACE_SEIZE, child, 0, OPTIONS)
        _pt.ptrace(PTRACE_INTERRUPT, child, 0, 0)
        os.waitpid(child, WALL)                   # its interrupt stop: the one stop before the loop
        probe = (ctypes.c_ubyte * INFO_SIZE)()
        _pt.ptrace(PTRACE_GET_SYSCALL_INFO, child, INFO_SIZE, ctypes.addressof(probe))
        # error=/retval= injection rewrites the syscall number and result: POKEUSER on x86_64, elsewhere
        # PTRACE_SET_SYSCALL_INFO (Linux 6.16; EINVAL at this non-syscall stop means the kernel has it)
        set_info = syscalls.host_arch() != "x86_64"
        if set_info and (spi is not None or inject and _Injections(inject, True).skips):
            if _ptrace(PTRACE_SET_SYSCALL_INFO, child, INFO_SIZE, ctypes.addressof(probe)) < 0 \
                    and ctypes.get_errno() == _errno.EIO:
                raise KprofError(f"error=/retval= injection and emulated SPI with the ptrace backend on "
                                 f"{syscalls.host_arch()} need "
                                 f"PTRACE_SET_SYSCALL_INFO (Linux 6.16 or newer); this kernel is "
                                 f"{os.uname().release}. Use the strace backend for rules without path or fd_class.")
    except KprofError:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, WALL)
        raise
    except PtraceError as e:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, WALL)
        if e.errno in (_errno.EPERM, _errno.EACCES):
            raise KprofError(not_permitted_message(os.strerror(e.errno))) from None
        if e.errno in (_errno.EIO, _errno.EINVAL):
            raise KprofError(f"the ptrace backend needs PTRACE_GET_SYSCALL_INFO (Linux 5.3 or newer); this kernel "
                             f"is {os.uname().release}. Use --backend strace.") from None
        raise
    os.write(release_w, b"x")
    os.close(release_w)
    with open(log_path, "w", buffering=1 << 16, encoding="utf-8", errors="surrogateescape") as log:
        tracer = _Tracer(log, child, inject, set_info, spi)
        tracer.started.add(child)
        _ptrace(_pt.PTRACE_SYSCALL, child, 0, 0)
        try:
            tracer.run()
        finally:
            if spi is not None and device_report:
                for tgid in list(spi.firmware):
                    spi.process_ended(tgid)
                with open(device_report, "w") as f:
                    json.dump(spi.report(), f)
    status = tracer.root_status
    if status is None:
        return 125
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


class _TracerProcess:
    """The forked tracer, with the part of Popen's interface ``follow_log`` uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def _reaped(self, flags: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        return self._reaped(os.WNOHANG)

    def wait(self) -> int | None:
        return self._reaped(0)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def record_ptrace(argv: list[str], log_path: str, *, cwd: str, env: dict, timeout: float,
                  stdout_path: str, stderr_path: str, consume=None, inject=(), spi=None,
                  stop_at_root: bool = False) -> TraceOutcome:
    """Run ``argv`` under kprof's ptrace tracer; on timeout or Ctrl-C kill the traced tree and keep the partial log.

    The contract of ``record_strace``: the log (strace's text format, no -C summary) is followed while
    it grows and its complete lines are handed to ``consume``; ``returncode`` is the command's exit
    status (128+N when a signal N killed it). ``inject`` holds fault rules (profiler.inject.Rule), applied
    by the tracer, path- and fd-class-restricted ones included. ``spi`` (a profiler.pump.spi.SpiDevice)
    serves the ioctls on its placeholder node; what it served (``SpiDevice.report()``, made in the tracer
    process) is ``outcome.device``. Raises KprofError when ptrace is not permitted.
    """
    inject = list(inject)
    if inject:
        _Injections(inject, False)                # bad rules fail here, before anything runs
    log_path, stdout_path, stderr_path = map(os.path.abspath, (log_path, stdout_path, stderr_path))
    path = _executable(argv[0], cwd, env)
    open(log_path, "w").close()                   # follow_log must never see an older log at this path
    outcome = TraceOutcome(returncode=None, wall=0.0, strace_messages=[])
    report_r, report_w = os.pipe()
    device_report = None
    if spi is not None:
        fd, device_report = tempfile.mkstemp(prefix="kprof-spi-", suffix=".json")
        os.close(fd)

    def start():
        nonlocal report_w
        pid = os.fork()
        if pid == 0:                              # the tracer process: never returns into kprof
            code = 125
            try:
                os.close(report_r)
                code = _trace(path, list(argv), cwd, env, log_path, stdout_path, stderr_path, inject, spi,
                              device_report)
            except KprofError as e:
                os.write(report_w, json.dumps({"kprof": str(e)}).encode())
            except BaseException:                 # noqa: BLE001
                os.write(report_w, json.dumps({"internal": traceback.format_exc()}).encode())
            finally:
                os._exit(code)
        os.close(report_w)
        report_w = -1
        return _TracerProcess(pid)

    try:
        proc = supervise(start, log_path, timeout, outcome, consume, stop_at_root)
    finally:
        if report_w >= 0:
            os.close(report_w)
        with os.fdopen(report_r, "rb") as f:
            report = f.read()
        if device_report is not None:
            try:
                with open(device_report) as f:
                    outcome.device = json.load(f)
            except (OSError, ValueError):
                outcome.device = None
            os.unlink(device_report)
    outcome.returncode = proc.returncode
    if report:
        problem = json.loads(report)
        if "kprof" in problem:
            raise KprofError(problem["kprof"])
        raise RuntimeError("the ptrace tracer failed:\n" + problem["internal"])
    return outcome
