"""The kernel facts kept as generated data: arches, address families, syscall argument classes and groups,
and the kernel version read from the data headers."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from profiler.kernel import DATA_DIR, KERNEL_VERSION, arches, data_kernel_version, syscalls

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "kernel"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data {REFERENCE} is absent")


def _defines(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as f:
        return dict(re.findall(r"^#define\s+(\w+)\s+(.+?)\s*(?:/\*.*)?$", f.read(), re.M))


# ----------------------------------------------------------------------------- arches

def test_every_arch_row_is_consistent():
    assert arches.ARCHES == ("x86_64", "i386", "arm", "aarch64", "riscv64", "arm64-compat")
    assert arches.COMPAT == {"x86_64": "i386", "aarch64": "arm64-compat"}
    for name in arches.ARCHES:
        a = arches.arch(name)
        flags = (0x80000000 if a.bits == 64 else 0) | (0x40000000 if a.little_endian else 0)
        assert a.audit_arch == a.em | flags, name                   # AUDIT_ARCH = EM | 64BIT | LE
        assert a.bits in (32, 64)
        if a.compat:
            c = arches.arch(a.compat)
            assert a.bits == 64 and c.bits == 32 and c.srcarch == a.srcarch and c.runs_on in (None, name)
        if a.runs_on:
            assert arches.COMPAT[a.runs_on] == name
        for spelling in (name, *a.aliases):
            assert syscalls.normalize_arch(spelling) == name
    assert arches.by_audit_arch() == {0xC000003E: "x86_64", 0x40000003: "i386", 0x40000028: "arm",
                                      0xC00000B7: "aarch64", 0xC00000F3: "riscv64"}
    assert arches.by_elf_machine() == {3: "i386", 62: "x86_64", 40: "arm", 183: "aarch64", 243: "riscv64"}


@needs_reference
def test_every_table_an_arch_names_exists():
    for name in arches.ARCHES:
        a = arches.arch(name)
        assert (REFERENCE / "syscall-tables" / a.syscall_table).is_file(), name
        if a.ioctl_table:
            assert (REFERENCE / f"ioctls-arch-{a.ioctl_table}.tsv").is_file(), name
        assert syscalls.syscall_names(name), name


@pytest.mark.skipif(not os.path.exists("/usr/include/linux/audit.h"), reason="no uapi headers on this machine")
def test_elf_machines_and_audit_arches_match_the_uapi_headers():
    em = _defines("/usr/include/linux/elf-em.h")
    audit = _defines("/usr/include/linux/audit.h")
    audit_name = {"x86_64": "X86_64", "i386": "I386", "arm": "ARM", "aarch64": "AARCH64", "riscv64": "RISCV64"}
    for name in arches.ARCHES:
        a = arches.arch(name)
        assert int(em[a.elf_machine], 0) == a.em, name
        parts = re.sub(r"[()\\\s]", "", audit[f"AUDIT_ARCH_{audit_name.get(name, 'ARM')}"]).split("|")
        value = sum({"__AUDIT_ARCH_64BIT": 0x80000000, "__AUDIT_ARCH_LE": 0x40000000}.get(p, 0) for p in parts)
        assert parts[0] == a.elf_machine and value | a.em == a.audit_arch, name


def test_the_abi_a_program_uses_on_a_kernel():
    cases = {("aarch64", "arm"): "arm64-compat", ("x86_64", "i386"): "i386", ("aarch64", "i386"): "aarch64",
             ("x86_64", "arm"): "x86_64", ("aarch64", None): "aarch64", ("riscv64", "riscv64"): "riscv64",
             ("arm", "arm"): "arm", ("x86_64", "x86_64"): "x86_64", ("i386", "i386"): "i386"}
    assert {k: arches.abi_on(*k) for k in cases} == cases


def test_ioctl_tables_per_arch():
    assert {a: (arches.ioctl_abi(a), arches.ioctl_table(a)) for a in arches.ARCHES} == {
        "x86_64": ("64", "x86_64"), "aarch64": ("64", "aarch64"), "riscv64": ("64", None),
        "i386": ("32", "i386"), "arm": ("32", "arm"), "arm64-compat": ("32", "arm")}


# ----------------------------------------------------------------------------- address families

def test_address_families():
    assert [arches.family_name(n) for n in (0, 1, 2, 10, 16, 17, 45)] == \
        ["AF_UNSPEC", "AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_MCTP"]
    assert arches.family_number("AF_LOCAL") == 1 and arches.family_number("AF_ROUTE") == 16
    assert arches.family_name(4242) is None and arches.family_number("AF_NONE") is None
    assert {n: arches.family_prefix(n) for n in (1, 2, 10, 16, 17)} == \
        {1: "unix", 2: "inet", 10: "inet6", 16: "netlink", 17: None}


@pytest.mark.skipif(not os.path.exists("/usr/include/x86_64-linux-gnu/bits/socket.h"), reason="no glibc headers")
def test_address_families_match_the_machine_headers():
    pf = {k: int(v) for k, v in _defines("/usr/include/x86_64-linux-gnu/bits/socket.h").items()
          if k.startswith("PF_") and v.isdigit() and k != "PF_MAX"}
    for k, n in pf.items():
        assert arches.family_number("AF_" + k[3:]) == n, k


# ----------------------------------------------------------------------------- argument classes and groups

def test_syscall_groups():
    assert syscalls.syscall_group("fork") == {"clone", "clone3", "fork", "vfork"}
    assert syscalls.syscall_group("exec") == {"execve", "execveat"}
    assert syscalls.syscall_group("open") == {"open", "creat", "openat", "openat2", "open_by_handle_at"}
    assert syscalls.syscall_group("addressed") == {"connect", "bind", "sendto", "accept", "accept4"}
    assert syscalls.syscall_group("nothing") == frozenset()


def test_argument_positions_are_the_ones_the_footprint_reads():
    # footprint.py's _OPENS / _ADDRESSED and record/bpf.py's _EXECS / _ADDRESSED, from the one table
    assert {n: syscalls.path_arg(n) for n in syscalls.syscall_group("open")} == \
        {"open": 0, "openat": 1, "openat2": 1, "creat": 0, "open_by_handle_at": None}
    assert {n: syscalls.path_arg(n) for n in syscalls.syscall_group("exec")} == {"execve": 0, "execveat": 1}
    assert {n: syscalls.sockaddr_arg(n) for n in syscalls.syscall_group("addressed")} == \
        {"connect": 1, "bind": 1, "sendto": 4, "accept": None, "accept4": None}
    assert syscalls.arg_kinds()["ioctl"] == "fr" and syscalls.arg_kinds()["mmap2"] == "____f"
    assert syscalls.result_kinds()["openat"] == "fd" and syscalls.result_kinds()["accept4"] == "peer"
    assert "getpid" not in syscalls.arg_kinds() and "getpid" not in syscalls.result_kinds()


def test_ptrace_and_bpf_use_the_kernel_table():
    from profiler.record import bpf, ptrace, ptrace_text
    assert ptrace_text._ARGS is syscalls.arg_kinds()
    assert ptrace_text._RESULT["mmap"] == ptrace_text._R_HEX and ptrace_text._RESULT["open"] == ptrace_text._R_FD
    assert ptrace._AUDIT_ARCH == arches.by_audit_arch()
    fd_first = bpf.fd_first_syscalls()
    assert "read" in fd_first and "ioctl" in fd_first and "openat" not in fd_first and "execveat" not in fd_first


# ----------------------------------------------------------------------------- the kernel version

def test_the_kernel_version_comes_from_the_data_headers():
    versions = {name: data_kernel_version(name) for name in sorted(os.listdir(DATA_DIR))}
    assert set(versions.values()) == {KERNEL_VERSION}, versions
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", KERNEL_VERSION)
    assert data_kernel_version("no-such-file.tsv") == "unknown"


def test_no_kernel_module_types_the_version():
    for path in (ROOT / "profiler" / "kernel").glob("*.py"):
        code = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.lstrip().startswith("#")]
        assert KERNEL_VERSION not in "\n".join(code), path.name
