"""The C library, loaded once per process, for the calls Python's os module lacks (unshare, mount, umount2,
prctl)."""
from __future__ import annotations

import ctypes
import os
from functools import lru_cache

CLONE_NEWNS = 0x00020000          # unshare(2): a mount namespace of one's own
MS_REC = 0x4000                   # mount(2) flags
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19


@lru_cache(maxsize=None)
def libc() -> ctypes.CDLL:
    """glibc by its soname; another C library (musl) by ``ctypes.util.find_library``, which runs
    ``/sbin/ldconfig -p`` (a process of its own, 5-15 ms) each time it is called: a run used to call it four
    times."""
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library
        return ctypes.CDLL(find_library("c") or "libc.so.6", use_errno=True)


def own_mount_namespace() -> None:
    """unshare(CLONE_NEWNS) into a mount namespace that is a slave of the one it leaves: mounts made on the host
    still reach it (and the commands it starts), what is mounted in it never reaches the host and goes with
    its last process. unshare moves the calling thread only, so it is done only in a process of one thread.
    OSError when it is not done (threads, no CAP_SYS_ADMIN)."""
    with open("/proc/self/status") as f:
        threads = next((int(line.split()[1]) for line in f if line.startswith("Threads:")), 0)
    if threads != 1:
        raise OSError(0, f"{threads} threads: unshare would move only this one")
    lib = libc()
    if lib.unshare(CLONE_NEWNS) != 0 or lib.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
