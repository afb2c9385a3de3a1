"""Syscall number <-> name per ABI, where each syscall is defined (Linux KERNEL_VERSION), its argument classes.

Data: ``data/syscalls-<arch>.tsv`` (one per arch, loaded on first use), ``data/syscall-aliases.tsv`` and
``data/syscall-subcalls.tsv`` (socketcall/ipc calls with no syscall of their own), ``data/syscall-args.tsv``
(argument classes, result kind and groups: fork, exec, open, addressed). The arches: ``arches``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from profiler.kernel import KERNEL_VERSION, read_rows
from profiler.kernel.arches import ARCHES, COMPAT, SPELLINGS

# uname -m / Debian architecture names -> kprof arch (data/arches.tsv). "armv8l" is what uname reports for a
# 32-bit task on a 64-bit arm kernel (COMPAT_UTS_MACHINE in arch/arm64/include/asm/compat.h).
_ARCH_NAMES = SPELLINGS
_UNKNOWN_NOTE = f"not a syscall name of {{arch}} in the Linux {KERNEL_VERSION} tables or system-calls"


def normalize_arch(name: str) -> str:
    """Map an architecture name (uname -m, Debian, kprof) to one of ARCHES."""
    key = str(name).strip().lower()
    if key in _ARCH_NAMES:
        return _ARCH_NAMES[key]
    from profiler.errors import KprofError
    raise KprofError(f"unknown architecture {name!r}; use one of: {', '.join(sorted(_ARCH_NAMES))}")


def host_arch() -> str:
    return normalize_arch(os.uname().machine)


@dataclass(frozen=True)
class SyscallInfo:
    arch: str
    name: str
    number: int | None
    entry: str | None
    file: str | None
    line: int | None
    macro: str | None
    subsystem: str
    maintainers: str | None
    elisa_category: str
    note: str | None

    @property
    def defined_in(self) -> str | None:
        """``file:line`` of the definition; the file alone when it has no line (an assembly shim, ARM's
        private calls), None when nothing defines it."""
        if not self.file:
            return None
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class _Table:
    __slots__ = ("rows", "by_number", "aliases")

    def __init__(self, arch: str):
        self.rows: dict[str, list[str]] = {}
        self.by_number: dict[int, str] = {}
        for r in read_rows(f"syscalls-{arch}.tsv"):
            self.rows[r[1]] = r
            self.by_number[int(r[0])] = r[1]
        self.aliases = {r[1]: r[2] for r in _aliases() if r[0] == arch}


@lru_cache(maxsize=None)
def _aliases() -> tuple:
    return tuple(tuple(r) for r in read_rows("syscall-aliases.tsv"))


@lru_cache(maxsize=None)
def _subcalls() -> dict[tuple[str, str], tuple[str, int, str]]:
    return {(r[0], r[1]): (r[2], int(r[3]), r[4]) for r in read_rows("syscall-subcalls.tsv")}


@lru_cache(maxsize=None)
def _table(arch: str) -> _Table:
    return _Table(arch)


def syscall_name(arch: str, number: int) -> str | None:
    return _table(normalize_arch(arch)).by_number.get(int(number))


def canonical_name(arch: str, name: str) -> str:
    """strace's spelling -> the kernel table name; unknown names are returned unchanged."""
    t = _table(normalize_arch(arch))
    if name in t.rows:
        return name
    if name in t.aliases:
        return t.aliases[name]
    if name.startswith("syscall_"):          # strace's form for a number it has no name for
        try:
            found = t.by_number.get(int(name[8:], 0))
        except ValueError:
            found = None
        if found:
            return found
    return name


def syscall_number(arch: str, name: str) -> int | None:
    arch = normalize_arch(arch)
    row = _table(arch).rows.get(canonical_name(arch, name))
    return int(row[0]) if row else None


def syscall_names(arch: str) -> list[str]:
    """All syscall names of the arch, in number order."""
    t = _table(normalize_arch(arch))
    return [t.by_number[n] for n in sorted(t.by_number)]


_ABI_KEY = re.compile(r"(.+) \(([a-z0-9_-]+)\)")
_COMPAT_NOTE = ("a 32-bit program's call ({compat} ABI): its {compat} number and definition "
                "(a 64-bit kernel enters the compat_ variant where there is one)")


def abi_key(name: str, abi: str) -> str:
    """A footprint row of a call a task made through another ABI than the footprint's: ``getpid (i386)``."""
    return f"{name} ({abi})"


def split_abi_key(key: str) -> tuple[str, str | None]:
    """``getpid (i386)`` → (``getpid``, ``i386``); ``getpid`` → (``getpid``, None)."""
    m = _ABI_KEY.fullmatch(key)
    if m and m.group(2) in ARCHES:
        return m.group(1), m.group(2)
    return key, None


def abi_evidence(arch: str, name: str) -> str | None:
    """Which ABI a call named ``name`` (strace names calls from the task's own ABI's table) shows its task
    uses, on a 64-bit ``arch`` that runs 32-bit programs too: ``arch``, its compat ABI, or None (both have it)."""
    arch = normalize_arch(arch)
    compat = COMPAT.get(arch)
    if compat is None:
        return arch
    if _info(arch, name).arch == compat:      # only the 32-bit ABI has it (or the 64-bit one leaves it out)
        return compat
    if syscall_number(arch, name) is not None and syscall_number(compat, name) is None:
        return arch
    return None


@lru_cache(maxsize=4096)
def _info(arch: str, name: str) -> SyscallInfo:
    base, abi = split_abi_key(name)
    if abi is not None and abi != arch:
        i = _info(abi, base)
        note = _COMPAT_NOTE.format(compat=abi)
        return replace(i, note=f"{note}; {i.note}" if i.note else note)
    canon = canonical_name(arch, name)
    r = _table(arch).rows.get(canon)
    compat = COMPAT.get(arch)
    if compat and (r is None or r[6] == "unknown"):
        # not a native call, or one the 64-bit ABI does not implement (set_thread_area): a 32-bit program's
        i = _info(compat, name)
        if i.subsystem != "unknown":
            note = _COMPAT_NOTE.format(compat=compat)
            if r is not None:
                note = f"not implemented for 64-bit {arch} programs; {note}"
            return SyscallInfo(compat, i.name, i.number, i.entry, i.file, i.line, i.macro, i.subsystem,
                               i.maintainers, i.elisa_category, f"{note}; {i.note}" if i.note else note)
    if r is None:
        sub = _subcalls().get((arch, name))
        if sub is not None:   # i386's send, recv, semop …: only through socketcall/ipc
            mux, call, handler = sub
            m = _info(arch, mux)
            return SyscallInfo(arch, name, None, m.entry, handler, None, None, m.subsystem, m.maintainers,
                               m.elisa_category, f"no syscall of its own on {arch}: {mux}(call {call}), "
                                                 f"{mux} is number {m.number} ({m.defined_in})")
        return SyscallInfo(arch, name, None, None, None, None, None, "unknown", None, "Unknown",
                           _UNKNOWN_NOTE.format(arch=arch))
    return SyscallInfo(arch, canon, int(r[0]), r[2] or None, r[3] or None, int(r[4]) if r[4] else None,
                       r[5] or None, r[6], r[8] or None, r[7], r[9] or None)


def syscall_info(arch: str, name: str) -> SyscallInfo:
    """Everything kprof knows about one syscall; never raises for an unknown name."""
    return _info(normalize_arch(arch), name)


# ----------------------------------------------------------------------------- argument classes and groups

@lru_cache(maxsize=None)
def _arg_rows() -> tuple[dict[str, str], dict[str, str], dict[str, frozenset[str]]]:
    args, results, groups = {}, {}, {}
    for name, kinds, result, grp in read_rows("syscall-args.tsv"):
        if kinds != "-":
            args[name] = kinds
        if result != "-":
            results[name] = result
        for g in grp.split(","):
            if g != "-":
                groups.setdefault(g, set()).add(name)
    return args, results, {g: frozenset(n) for g, n in groups.items()}


def arg_kinds() -> dict[str, str]:
    """Syscall name (every arch's spelling) -> one letter per argument: f fd, s path, v argv, a sockaddr (its
    length is the next argument), r ioctl request, _ raw; arguments past the last letter are raw. Names without
    decoded arguments are absent. Shared, do not modify."""
    return _arg_rows()[0]


def result_kinds() -> dict[str, str]:
    """Syscall name -> what its return value is: "fd", "hex" (an address) or "peer" (accept: an fd whose peer
    address is read); absent: a plain number. Shared, do not modify."""
    return _arg_rows()[1]


def syscall_group(group: str) -> frozenset[str]:
    """The syscall names of a group: "fork" (creates a task), "exec", "open" (opens a path), "addressed"
    (names a socket address)."""
    return _arg_rows()[2].get(group, frozenset())


def path_arg(name: str) -> int | None:
    """Index of a syscall's first path argument (openat -> 1), None if it has none."""
    i = arg_kinds().get(name, "").find("s")
    return i if i >= 0 else None


def sockaddr_arg(name: str) -> int | None:
    """Index of a syscall's sockaddr argument (sendto -> 4; its length is the next one), None if none."""
    i = arg_kinds().get(name, "").find("a")
    return i if i >= 0 else None
