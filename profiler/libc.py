"""The C library, loaded once per process, for the calls Python's os module lacks (unshare, mount, umount2,
prctl)."""
from __future__ import annotations

import ctypes
from functools import lru_cache


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
