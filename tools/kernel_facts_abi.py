"""ABI facts of tools/gen_kernel_data.py: arches.tsv, address-families.tsv and syscall-args.tsv.

Each is a hand-kept table in tools/kernel_facts/ that the generator checks (AUDIT_ARCH against the ELF machine,
the syscall and ioctl tables each arch names, every syscall name and its argument count against the reference
tables) and writes with its provenance header to profiler/kernel/data/.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from kernel_facts_io import FACTS, GenError, Sources, read_tsv, write_tsv

AUDIT_ARCH_64BIT = 0x80000000       # __AUDIT_ARCH_64BIT, include/uapi/linux/audit.h
AUDIT_ARCH_LE = 0x40000000          # __AUDIT_ARCH_LE
ARCH_COLUMNS = ["arch", "aliases", "bits", "endian", "elf_machine", "em", "runs_on", "compat", "syscall_table",
                "table_abis", "srcarch", "kconfig_column", "abi_condition", "ioctl_table"]
ARG_LETTERS = re.compile(r"[fsvar_]+")
RESULTS = ("-", "fd", "hex", "peer")
GROUPS = ("fork", "exec", "open", "addressed")


@lru_cache(maxsize=None)
def arches() -> dict[str, dict[str, str]]:
    """kprof arch -> its row of tools/kernel_facts/arches.tsv (column name -> cell), in the file's order."""
    out: dict[str, dict[str, str]] = {}
    names: set[str] = set()
    for r in read_tsv(FACTS / "arches.tsv"):
        if len(r) != len(ARCH_COLUMNS):
            raise GenError(f"arches.tsv: row {r!r} has {len(r)} cells, not {len(ARCH_COLUMNS)}")
        row = dict(zip(ARCH_COLUMNS, r))
        spellings = [row["arch"]] + [a for a in row["aliases"].split(",") if a != "-"]
        if names & set(spellings):
            raise GenError(f"arches.tsv: {sorted(names & set(spellings))} named twice")
        names.update(spellings)
        if row["bits"] not in ("32", "64") or row["endian"] not in ("le", "be") or not row["em"].isdigit():
            raise GenError(f"arches.tsv: bad bits, endian or em in {r!r}")
        out[row["arch"]] = row
    for arch, row in out.items():
        for col in ("runs_on", "compat"):
            if row[col] != "-" and row[col] not in out:
                raise GenError(f"arches.tsv: {arch}: {col} {row[col]} is not an arch of the table")
        if row["compat"] != "-" and out[row["compat"]]["runs_on"] not in ("-", arch):
            raise GenError(f"arches.tsv: {arch}'s compat ABI {row['compat']} runs on another arch")
    return out


def audit_arch(row: dict[str, str]) -> int:
    """AUDIT_ARCH_* of an arch: its ELF machine with the 64-bit and little-endian flags."""
    return (int(row["em"]) | (AUDIT_ARCH_64BIT if row["bits"] == "64" else 0)
            | (AUDIT_ARCH_LE if row["endian"] == "le" else 0))


def gen_arches(src: Sources, out: Path) -> None:
    rows = []
    for arch, a in arches().items():
        src.ref(f"syscall-tables/{a['syscall_table']}")          # the named reference files exist
        if a["ioctl_table"] != "-":
            src.ref(f"ioctls-arch-{a['ioctl_table']}.tsv")
        rows.append([arch, a["aliases"], a["bits"], a["endian"], a["elf_machine"], a["em"], f"0x{audit_arch(a):08X}",
                     a["runs_on"], a["compat"], a["syscall_table"], a["table_abis"], a["srcarch"],
                     a["kconfig_column"], a["abi_condition"], a["ioctl_table"]])
    header = src.describe([], ["arches.tsv"])
    header.insert(2, "kprof's arches (syscall ABIs): aliases (uname -m / Debian spellings), bits, byte order, ELF "
                     "e_machine (include/uapi/linux/elf-em.h), AUDIT_ARCH = EM | 0x80000000 (64-bit) | 0x40000000 "
                     "(little-endian) (include/uapi/linux/audit.h), runs_on/compat (a 64-bit kernel's 32-bit ABI), "
                     "syscall .tbl and its ABI values, Kconfig SRCARCH, cond-syscalls column, the ABI's Kconfig "
                     "condition, arch ioctl table. EM numbers hand-copied (those headers are not in the reference "
                     "files; see tools/kernel_facts/arches.tsv).")
    write_tsv(out, "arches.tsv", header, ARCH_COLUMNS[:6] + ["audit_arch"] + ARCH_COLUMNS[6:], rows)


def gen_address_families(src: Sources, out: Path) -> None:
    rows = read_tsv(FACTS / "address-families.tsv")
    seen: set[str] = set()
    for r in rows:
        names = [r[1]] + [a for a in r[2].split(",") if a != "-"]
        if len(r) != 4 or not r[0].isdigit() or seen & set(names + [r[0]]) \
                or not all(re.fullmatch(r"AF_[A-Za-z0-9_]+", n) for n in names):
            raise GenError(f"address-families.tsv: bad or repeated row {r!r}")
        seen.update(names + [r[0]])
    header = src.describe([], ["address-families.tsv"])
    header.insert(2, "Socket address families (include/linux/socket.h, hand-copied: not in the reference files): "
                     "number, AF_ name, other names, kprof's address prefix in a footprint (- = family:N).")
    write_tsv(out, "address-families.tsv", header, ["number", "name", "aliases", "address"],
              sorted(rows, key=lambda r: int(r[0])))


def _arg_counts(src: Sources) -> dict[str, int]:
    """Syscall name -> the most arguments any SYSCALL_DEFINEn / COMPAT_SYSCALL_DEFINEn of it takes."""
    counts: dict[str, int] = {}
    for r in read_tsv(src.ref("syscall-definitions.tsv")):
        m = re.fullmatch(r"(?:COMPAT_)?SYSCALL(?:32)?_DEFINE(\d)", r[2])
        if m:
            counts[r[3]] = max(counts.get(r[3], 0), int(m.group(1)))
    return counts


def gen_syscall_args(src: Sources, out: Path, known: set[str]) -> None:
    """``known``: every syscall name, alias, subcall and entry point (sys_ dropped) of the kprof arches' tables."""
    counts = _arg_counts(src)
    rows = read_tsv(FACTS / "syscall-args.tsv")
    seen: set[str] = set()
    for r in rows:
        if len(r) != 4 or r[0] in seen:
            raise GenError(f"syscall-args.tsv: bad or repeated row {r!r}")
        seen.add(r[0])
        name, args, result, groups = r
        if name not in known:
            raise GenError(f"syscall-args.tsv: {name} is no syscall, alias, subcall or entry point of a kprof arch")
        if args != "-" and not ARG_LETTERS.fullmatch(args) or result not in RESULTS \
                or any(g not in GROUPS for g in groups.split(",") if g != "-"):
            raise GenError(f"syscall-args.tsv: bad letters, result or group in {r!r}")
        if args != "-" and name in counts and len(args) > counts[name]:
            raise GenError(f"syscall-args.tsv: {name} has {len(args)} argument letters, its definition "
                           f"takes {counts[name]}")
    header = src.describe(["syscall-definitions.tsv"], ["syscall-args.tsv"])
    header.insert(2, "Per-syscall argument classes (after strace's syscallent.h flags, kprof's own letters: f fd, "
                     "s path, v argv, a sockaddr + length, r ioctl request, _ raw; - = none decoded), result (fd, "
                     "hex address, peer = accept's fd and peer address, - number) and groups (fork, exec, open, "
                     "addressed). kprof's own classification, checked against the reference tables: every name "
                     "is a syscall of a kprof arch, no more letters than its SYSCALL_DEFINEn takes.")
    write_tsv(out, "syscall-args.tsv", header, ["name", "args", "result", "groups"], sorted(rows))
