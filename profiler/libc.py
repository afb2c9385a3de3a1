"""The C library, loaded once per process, for the calls Python's os module lacks (unshare, mount, umount2,
prctl)."""
from __future__ import annotations

import ctypes
import os
from functools import lru_cache

CLONE_NEWNS = 0x00020000          # unshare(2): a mount namespace of one's own
MS_REC = 0x4000                   # mount(2) flags
MS_PRIVATE = 1 << 18


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


def private_mount_namespace() -> None:
    """unshare(CLONE_NEWNS), then make every mount private in the new namespace: what is mounted from here on
    is this process's and its children's, never the host's, and goes with them. OSError when the kernel
    refuses (no CAP_SYS_ADMIN; a process with threads cannot unshare its mounts)."""
    lib = libc()
    if lib.unshare(CLONE_NEWNS) != 0 or lib.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
