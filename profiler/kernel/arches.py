"""kprof's arches (syscall ABIs) and their kernel identities, and socket address families.

Data: ``data/arches.tsv`` (names and uname -m spellings, bits, ELF e_machine, AUDIT_ARCH = EM | 64-bit and
little-endian flags, the compat ABI of a 64-bit arch, the syscall and ioctl tables, Kconfig SRCARCH) and
``data/address-families.tsv`` (AF_ number <-> name), both made by ``tools/gen_kernel_data.py``. The arch table is
read on import: every arch name kprof accepts comes from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from profiler.kernel import read_rows


@dataclass(frozen=True)
class Arch:
    name: str
    aliases: tuple[str, ...]
    bits: int
    little_endian: bool
    elf_machine: str            # EM_ constant of its executables
    em: int
    audit_arch: int             # AUDIT_ARCH_* (what PTRACE_GET_SYSCALL_INFO and seccomp report)
    runs_on: str | None         # a compat ABI: the 64-bit arch whose kernel runs it
    compat: str | None          # a 64-bit arch: the ABI its 32-bit programs use
    syscall_table: str          # reference/kernel/syscall-tables file
    srcarch: str                # Kconfig $(SRCARCH)
    kconfig_column: str         # its column of reference kconfig/cond-syscalls.tsv
    abi_condition: str          # what the whole ABI needs in Kconfig ("y": always there)
    ioctl_table: str | None     # arch ioctl numbers: ioctls-arch.tsv rows of this name


def _dash(cell: str) -> str | None:
    return None if cell in ("", "-") else cell


def _load() -> dict[str, Arch]:
    out = {}
    for r in read_rows("arches.tsv"):
        out[r[0]] = Arch(r[0], tuple(a for a in r[1].split(",") if _dash(a)), int(r[2]), r[3] == "le", r[4],
                         int(r[5]), int(r[6], 16), _dash(r[7]), _dash(r[8]), r[9], r[11], r[12], r[13],
                         _dash(r[14]))
    return out


_ARCHES = _load()
ARCHES: tuple[str, ...] = tuple(_ARCHES)
# A 64-bit kernel runs 32-bit programs through its compat ABI; strace names their calls the 32-bit way
# (_llseek, mmap2), so a log of a 64-bit machine can hold them.
COMPAT: dict[str, str] = {a.name: a.compat for a in _ARCHES.values() if a.compat}
# every accepted spelling (kprof name, uname -m, Debian) -> kprof arch
SPELLINGS: dict[str, str] = {s: a.name for a in _ARCHES.values() for s in (a.name, *a.aliases)}


def arch(name: str) -> Arch:
    """The row of a kprof arch name (see ``syscalls.normalize_arch`` for other spellings)."""
    return _ARCHES[name]


def bits(name: str) -> int:
    return _ARCHES[name].bits


def ioctl_abi(name: str) -> str:
    """Which common ioctl table the arch's programs use: "64" or "32" (ioctls-64.tsv / ioctls-32.tsv)."""
    return str(_ARCHES[name].bits)


def ioctl_table(name: str) -> str | None:
    return _ARCHES[name].ioctl_table


def srcarch(name: str) -> str:
    return _ARCHES[name].srcarch


def _native(a: Arch) -> bool:
    return a.runs_on is None      # a compat-only ABI shares its ELF and audit identity with a native arch


def by_elf_machine() -> dict[int, str]:
    """ELF e_machine -> kprof arch (the native one: EM_ARM is arm, never arm64-compat)."""
    return {a.em: a.name for a in _ARCHES.values() if _native(a)}


def by_audit_arch() -> dict[int, str]:
    """AUDIT_ARCH_* value -> kprof arch (the native one: AUDIT_ARCH_ARM is arm, never arm64-compat)."""
    return {a.audit_arch: a.name for a in _ARCHES.values() if _native(a)}


def abi_on(kernel_arch: str, program_arch: str | None) -> str:
    """The ABI whose syscall numbers a ``program_arch`` program uses on a ``kernel_arch`` kernel: the kernel's
    compat ABI for a 32-bit program of the same family (arm on aarch64 -> arm64-compat, i386 on x86_64), else
    the kernel's own."""
    compat = COMPAT.get(kernel_arch)
    program = _ARCHES.get(program_arch) if program_arch else None
    if compat and program is not None and program.em == _ARCHES[compat].em:
        return compat
    return kernel_arch


# ----------------------------------------------------------------------------- address families

@lru_cache(maxsize=None)
def _families() -> tuple[dict[int, str], dict[str, int], dict[int, str]]:
    names, numbers, prefixes = {}, {}, {}
    for r in read_rows("address-families.tsv"):
        n = int(r[0])
        names[n] = r[1]
        for name in (r[1], *(a for a in r[2].split(",") if _dash(a))):
            numbers[name] = n
        if _dash(r[3]):
            prefixes[n] = r[3]
    return names, numbers, prefixes


def family_name(number: int) -> str | None:
    """AF_ name of a socket address family number (1 -> AF_UNIX); None if Linux has none."""
    return _families()[0].get(number)


def family_number(name: str) -> int | None:
    """Number of an AF_ name or alias (AF_LOCAL -> 1); None if unknown."""
    return _families()[1].get(name)


def family_prefix(number: int) -> str | None:
    """How kprof writes an address of the family in a footprint (unix, inet, inet6, netlink); None: family:N."""
    return _families()[2].get(number)
