"""Syscall tables, defining files, subsystems and the generated data files (Linux 6.19.9)."""
from __future__ import annotations

import csv
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from profiler.errors import KprofError
from profiler.kernel import DATA_DIR
from profiler.kernel.subsystems import SUBSYSTEMS, elisa_category
from profiler.kernel.syscalls import (ARCHES, canonical_name, normalize_arch, syscall_info, syscall_name,
                                      syscall_names, syscall_number)

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "kernel"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data {REFERENCE} is absent")

# libseccomp CSV column for each kprof arch
SECCOMP_COLUMNS = {"x86_64": "x86_64", "i386": "x86", "arm": "arm", "aarch64": "aarch64", "riscv64": "riscv64"}


# ----------------------------------------------------------------------------- numbers and names

@needs_reference
@pytest.mark.parametrize("arch", sorted(SECCOMP_COLUMNS))
def test_numbers_agree_with_libseccomp(arch):
    col = SECCOMP_COLUMNS[arch]
    with open(REFERENCE / "libseccomp-syscalls.csv", newline="") as f:
        rows = list(csv.reader(f))
    header = [h.lstrip("#").split(" ")[0] for h in rows[0]]
    idx = header.index(col)
    mismatches, compared = [], 0
    for row in rows[1:]:
        name, value = row[0], row[idx]
        if not value.lstrip("-").isdigit():
            continue                              # PNR: not on this arch
        ours = syscall_name(arch, int(value))
        if ours is None:
            continue                              # a number only libseccomp knows (newer kernel)
        compared += 1
        if ours != name:
            mismatches.append((int(value), name, ours))
    assert compared > 300
    assert mismatches == []


@needs_reference
@pytest.mark.parametrize("arch", sorted(SECCOMP_COLUMNS))
def test_libseccomp_numbers_we_lack_are_newer_than_our_tables(arch):
    col = SECCOMP_COLUMNS[arch]
    with open(REFERENCE / "libseccomp-syscalls.csv", newline="") as f:
        rows = list(csv.reader(f))
    idx = [h.lstrip("#").split(" ")[0] for h in rows[0]].index(col)
    ours = {syscall_number(arch, n) for n in syscall_names(arch)}
    highest = max(n for n in ours if n < 0x0F0000)
    missing = sorted(int(r[idx]) for r in rows[1:] if r[idx].isdigit() and int(r[idx]) not in ours)
    assert [n for n in missing if n <= highest] == []


def test_arm_known_numbers():
    assert syscall_name("arm", 336) == "ppoll"          # ELISA's "perf_event_open??"
    assert syscall_name("arm", 364) == "perf_event_open"
    assert syscall_name("arm", 983045) == "set_tls"
    assert syscall_number("arm", "set_tls") == 0x0F0005
    assert syscall_name("arm", 192) == "mmap2"
    assert syscall_name("arm", 270) == "arm_fadvise64_64"
    assert syscall_name("arm", 341) == "arm_sync_file_range"


@needs_reference
def test_arm64_compat_numbering_equals_arm_eabi():
    diffs = []
    tbl = REFERENCE / "syscall-tables" / "arm64-compat-syscall_32.tbl"
    for line in tbl.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split()
        if f[1] != "common":
            continue
        nr, name = int(f[0]), f[2]
        got = (syscall_name("arm64-compat", nr), syscall_name("arm", nr), syscall_number("arm64-compat", name))
        if got != (name, name, nr):
            diffs.append((nr, name, got))
    assert diffs == []


def test_every_arch_has_a_full_table():
    counts = {a: len(syscall_names(a)) for a in ARCHES}
    assert all(n > 300 for n in counts.values()), counts
    assert syscall_names("x86_64")[:3] == ["read", "write", "open"]


def test_aliases_and_canonical_names():
    assert canonical_name("arm", "fadvise64_64") == "arm_fadvise64_64"       # strace's spelling
    assert canonical_name("arm", "sync_file_range2") == "arm_sync_file_range"  # strace and system-calls
    assert syscall_number("arm", "sync_file_range2") == 341
    assert canonical_name("arm", "_llseek") == "_llseek"
    assert canonical_name("x86_64", "syscall_0x0") == "read"                 # strace's unknown-number form
    assert canonical_name("x86_64", "no_such_call") == "no_such_call"
    assert syscall_number("x86_64", "no_such_call") is None
    assert syscall_name("x86_64", 99999) is None
    assert canonical_name("x86_64", "fadvise64_64") == "fadvise64_64"        # arm alias does not leak


def test_normalize_arch():
    cases = {"x86_64": "x86_64", "amd64": "x86_64", "x86-64": "x86_64", "i386": "i386", "i486": "i386",
             "i586": "i386", "i686": "i386", "x86": "i386", "arm": "arm", "armv6l": "arm", "armv7l": "arm",
             "armhf": "arm", "armel": "arm", "arm64": "aarch64", "aarch64": "aarch64", "riscv64": "riscv64",
             "arm64-compat": "arm64-compat", "armv8l": "arm64-compat", "AMD64": "x86_64"}
    assert {k: normalize_arch(k) for k in cases} == cases
    with pytest.raises(KprofError) as e:
        normalize_arch("sparc")
    assert "sparc" in str(e.value) and "aarch64" in str(e.value) and "armv7l" in str(e.value)


# ----------------------------------------------------------------------------- definitions and subsystems

def test_every_syscall_has_a_subsystem_or_a_reason():
    offenders = []
    for arch in ARCHES:
        for name in syscall_names(arch):
            info = syscall_info(arch, name)
            assert info.subsystem in SUBSYSTEMS or info.subsystem == "unknown", (arch, name, info.subsystem)
            if info.subsystem == "unknown" and not info.note:
                offenders.append((arch, name))
    assert offenders == []


def _implemented(info) -> bool:
    return bool(info.entry) and info.entry != "sys_ni_syscall" and not (info.note or "").startswith("not ")


@pytest.mark.parametrize("arch", ARCHES)
def test_implemented_syscalls_have_a_defining_file(arch):
    missing = []
    for name in syscall_names(arch):
        info = syscall_info(arch, name)
        if _implemented(info) and (info.file is None or info.subsystem == "unknown"):
            missing.append(name)
        if arch == "x86_64" and _implemented(info) and (info.line is None or info.macro is None):
            missing.append(name)
    assert missing == []


def test_unimplemented_syscalls_say_so():
    info = syscall_info("x86_64", "uselib")
    assert info.number == 134 and info.subsystem == "unknown" and "not implemented" in info.note
    info = syscall_info("x86_64", "_sysctl")
    assert info.entry == "sys_ni_syscall" and "-ENOSYS" in info.note


@pytest.mark.parametrize("name,file,subsystem,entry", [
    ("read", "fs/read_write.c", "fs.io", "sys_read"),
    ("uname", "kernel/sys.c", "system", "sys_newuname"),
    ("mmap", "arch/x86/kernel/sys_x86_64.c", "mm", "sys_mmap"),
    ("clone", "kernel/fork.c", "process", "sys_clone"),
    ("futex", "kernel/futex/syscalls.c", "futex", "sys_futex"),
    ("ioctl", "fs/ioctl.c", "fs.io", "sys_ioctl"),
    ("getuid", "kernel/sys.c", "security", "sys_getuid"),
    ("unshare", "kernel/fork.c", "namespaces", "sys_unshare"),
    ("close", "fs/open.c", "fs.io", "sys_close"),
    ("openat", "fs/open.c", "fs.namespace", "sys_openat"),
    ("epoll_wait", "fs/eventpoll.c", "fs.events", "sys_epoll_wait"),
    ("rt_sigreturn", "arch/x86/kernel/signal_64.c", "signal", "sys_rt_sigreturn"),
    ("getrandom", "drivers/char/random.c", "drivers", "sys_getrandom"),
    ("connect", "net/socket.c", "net", "sys_connect"),
    ("clock_nanosleep", "kernel/time/posix-timers.c", "time", "sys_clock_nanosleep"),
])
def test_x86_64_spot_checks(name, file, subsystem, entry):
    info = syscall_info("x86_64", name)
    assert (info.file, info.subsystem, info.entry) == (file, subsystem, entry)
    assert info.line and info.line > 0 and info.macro.startswith("SYSCALL_DEFINE")


def test_resolution_goes_through_the_entry_point():
    # i386 "olduname" (109) is sys_uname and "uname" (122) is sys_newuname
    assert syscall_info("i386", "olduname").entry == "sys_uname"
    assert syscall_info("i386", "uname").entry == "sys_newuname"
    # 32-bit tasks on arm64 use the compat entry points
    info = syscall_info("arm64-compat", "mmap2")
    assert info.entry == "compat_sys_aarch32_mmap2" and info.file == "arch/arm64/kernel/sys32.c"
    assert info.macro.startswith("COMPAT_SYSCALL_DEFINE") and info.subsystem == "mm"
    assert syscall_info("arm64-compat", "pread64").subsystem == "fs.io"       # wrapper takes the generic subsystem
    assert syscall_info("aarch64", "mmap").file == "arch/arm64/kernel/sys.c"
    assert syscall_info("riscv64", "mmap").file == "arch/riscv/kernel/sys_riscv.c"


def test_arm_specials():
    info = syscall_info("arm", "mmap2")
    assert "assembly" in info.note and info.entry == "sys_mmap2"
    assert info.file == "mm/mmap.c" and info.subsystem == "mm"
    info = syscall_info("arm", "set_tls")
    assert info.file == "arch/arm/kernel/traps.c" and info.subsystem == "arch" and info.number == 983045
    assert "private" in info.note
    info = syscall_info("arm", "sigreturn")
    assert info.file == "arch/arm/kernel/signal.c" and info.subsystem == "signal"
    assert "entry-common.S" in info.note
    assert syscall_info("arm", "statfs64").file == "fs/statfs.c"
    info = syscall_info("arm64-compat", "set_tls")
    assert info.file == "arch/arm64/kernel/sys_compat.c" and info.subsystem == "arch"
    assert "ENOSYS" in syscall_info("arm64-compat", "get_tls").note


def test_unknown_name_never_raises():
    info = syscall_info("x86_64", "frobnicate")
    assert info.subsystem == "unknown" and info.number is None and info.note
    assert syscall_info("amd64", "read").arch == "x86_64"
    assert syscall_info("arm", "fadvise64_64").name == "arm_fadvise64_64"


def test_maintainers_and_elisa():
    assert syscall_info("x86_64", "uname").maintainers == "THE REST"
    assert "FILESYSTEMS (VFS and infrastructure)" in syscall_info("x86_64", "read").maintainers
    assert syscall_info("x86_64", "futex").maintainers.startswith("FUTEX")
    assert syscall_info("x86_64", "capget").elisa_category == "Capability"
    assert syscall_info("x86_64", "wait4").elisa_category == "Process Mgmt."   # not ELISA's "Time" slip
    assert syscall_info("arm", "ppoll").elisa_category == "Filesystem"
    assert syscall_info("x86_64", "futex").elisa_category == "Futex"
    assert elisa_category("mm") == "Memory Mgmt."
    assert elisa_category("security", "getuid") == "Process Mgmt."
    assert elisa_category("nonsense") == "Unknown"
    assert len(SUBSYSTEMS) == 21 and "fs.io" in SUBSYSTEMS


# ----------------------------------------------------------------------------- generated data

def test_data_files_have_provenance_headers():
    for name in sorted(os.listdir(DATA_DIR)):
        with open(os.path.join(DATA_DIR, name), encoding="utf-8") as f:
            head = [next(f) for _ in range(2)]
        assert head[0].startswith("# Generated by tools/gen_kernel_data.py"), name
        assert "6.19.9" in head[1], name
    with open(os.path.join(DATA_DIR, "syscalls-x86_64.tsv"), encoding="utf-8") as f:
        text = f.read(4000)
    assert "system-calls 7.2" in text and "x86_64-syscall_64.tbl" in text


@needs_reference
def test_generated_data_matches_a_fresh_run(tmp_path):
    out = tmp_path / "data"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_kernel_data.py"),
                           "--reference", str(REFERENCE), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    fresh = sorted(os.listdir(out))
    assert fresh == sorted(os.listdir(DATA_DIR))
    _, mismatch, errors = filecmp.cmpfiles(out, DATA_DIR, fresh, shallow=False)
    assert mismatch == [] and errors == [], "profiler/kernel/data differs from the generator's output; " \
        "regenerate with .venv/bin/python tools/gen_kernel_data.py"


def test_definitions_without_a_line_print_the_file_alone():
    from profiler.kernel.syscalls import ARCHES, syscall_info, syscall_names
    for arch in ARCHES:
        for name in syscall_names(arch):
            where = syscall_info(arch, name).defined_in
            assert where is None or not where.endswith(":None"), (arch, name, where)
    assert syscall_info("arm", "sigreturn").defined_in == "arch/arm/kernel/signal.c"


def test_i386_socketcall_and_ipc_subcalls_get_their_subsystem():
    from profiler.kernel.syscalls import syscall_info
    for name, sub, where in [("send", "net", "net/socket.c"), ("recv", "net", "net/socket.c"),
                             ("accept", "net", "net/socket.c"), ("semop", "ipc", "ipc/sem.c")]:
        info = syscall_info("i386", name)
        assert (info.subsystem, info.defined_in, info.number) == (sub, where, None), name
        assert "socketcall" in info.note or "ipc" in info.note
    assert syscall_info("i386", "sendto").number == 369          # a direct syscall stays itself


def test_ausyscall_spellings_are_known():
    from .conftest import kprof
    from profiler.kernel.syscalls import canonical_name
    assert canonical_name("arm", "llseek") == "_llseek" and canonical_name("i386", "newselect") == "_newselect"
    out = kprof("syscall", "llseek", "--arch", "arm", check=0).stdout
    assert "_llseek" in out and "fs/read_write.c:" in out
    assert "_newselect" in kprof("syscall", "newselect", check=0).stdout
