"""kprof analyze on strace logs recorded with every option set a user may bring, against strace's own summary.

The corpus is recorded once per session from small C programs of our own (tests/helpers/strace_corpus*.c,
compiled here): threads, signals, a killed child, a failing execve, odd file names ("x) = -1 ENOENT (y", quotes,
unbalanced brackets, a trailing '-'), TCGETS/SPI_IOC_MESSAGE(1)/pty/socket ioctls, exec from a thread other
than the leader, a 32-bit program running a 64-bit one. Ground truth: strace's own -C summary of the same run,
read by this file's own parser (not kprof's). Every option set counts exactly (calls and errors per syscall)
or is refused / flagged with exit 1 and a message naming the option.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from profiler.analysis import analyse_logs, log_files
from profiler.footprint import device_path

from .conftest import IN_CI, ROOT, kprof, needs_strace

HELPERS = ROOT / "tests" / "helpers"
_YAMA = Path("/proc/sys/kernel/yama/ptrace_scope")
# strace -p on a process that is not its descendant: root, or Yama's ptrace_scope 0
CAN_ATTACH = os.geteuid() == 0 or not _YAMA.exists() or _YAMA.read_text().strip() == "0"
HAVE_GCC = shutil.which("gcc") is not None
pytestmark = [needs_strace, pytest.mark.skipif(not HAVE_GCC and not IN_CI, reason="gcc is not installed")]

KPROF_OPTIONS = ["-yy", "-ttt", "-T", "-X", "raw"]
# option set → strace options (each also gets -f, -C and -o; kprof records with -f -yy -ttt -T -X raw -C)
OPTION_SETS = {
    "kprof's own": KPROF_OPTIONS,
    "none": [],
    "-t": ["-t"], "-tt": ["-tt"], "-ttt": ["-ttt"], "-r": ["-r"], "-T": ["-T"],
    "-y": ["-y"], "-yy": ["-yy"],
    "-X raw": ["-X", "raw"], "-X verbose -yy": ["-X", "verbose", "-yy"], "-X abbrev -yy": ["-X", "abbrev", "-yy"],
    "-s 4 -v -xx": ["-s", "4", "-v", "-xx"],
    "-x -yy": ["-x", "-yy"],
    "-e trace=": ["-e", "trace=openat,ioctl,close,execve,clone,clone3,wait4,unlink", "-yy"],
    "--seccomp-bpf": ["--seccomp-bpf", "-yy"],
    "-k": ["-k"],
    "-i -n -Y": ["-i", "-n", "-Y", "-yy"],
    "-ttt -i -n -Y -X verbose": ["-ttt", "-i", "-n", "-Y", "-X", "verbose", "-yy"],
    "--absolute-timestamps=unix,s": ["--absolute-timestamps=unix,s", "-yy"],
    "-U name,calls,errors": ["-U", "name,calls,errors"],
    "-U all columns": ["-U", "name,calls,errors,time-percent,total-time,avg-time,min-time,max-time"],
    "-U calls,name": ["-U", "calls,name"],            # no errors column
    "-U name,errors": ["-U", "name,errors"],          # no calls column
}

# option sets that record the deterministic program (no threads, no kill): strace 6.1's -k dies itself (exit 1,
# "walk: cannot initialize libunwind: No such process") when a task is killed while strace unwinds its stack,
# ~1 run in 80 with 6 such runs side by side; CI met it once
NO_KILL = {"-k"}


def summary_of(text: str) -> dict[str, list]:
    """strace's -c tables in ``text`` → {syscall: [calls, errors]}, summed over tables (this test's own reader).

    A column the tables lack (-U) is None. The rows of a 32-bit program's own table ("System call usage
    summary for 32 bit mode:", the next table only) are ``NAME (i386)``, as kprof names the i386 ABI's calls."""
    out: dict[str, list] = {}
    cols = None
    mode = suffix = ""
    for line in text.splitlines():
        words = line.replace("% time", "%time").split()
        if line == "System call usage summary for 32 bit mode:":
            mode = " (i386)"
            continue
        if "syscall" in words and (words[0] in ("syscall", "%time", "calls", "errors")):
            cols, suffix, mode = words, mode, ""
            continue
        if cols is None or not words or line.startswith("-") or line.startswith("System call usage"):
            continue
        name = next((w for w in words if re.search(r"[a-z_]", w)), None)
        nums = [w for w in words if w != name]
        if name is None or len(nums) not in (len(cols) - 1, len(cols) - 2):
            cols = None
            continue
        numcols = [c for c in cols if c != "syscall"]
        if len(nums) < len(numcols):
            nums.insert(numcols.index("errors"), "0")   # strace leaves a zero error count blank
        row = dict(zip(numcols, nums))
        if name == "total":
            cols = None
            continue
        c = out.setdefault(name + suffix, [0 if "calls" in row else None, 0 if "errors" in numcols else None])
        if "calls" in row:
            c[0] += int(row["calls"])
        if "errors" in numcols:
            c[1] += int(row["errors"])
    return out


def masked(mine: dict[str, list[int]], theirs: dict[str, list]) -> dict[str, list]:
    """kprof's counts with the columns strace's table lacks blanked the same way (a syscall listed = called)."""
    calls, errors = (any(v[i] is not None for v in theirs.values()) for i in (0, 1))
    return {n: [c if calls else None, e if errors else None] for n, (c, e) in mine.items() if c or errors}


def counts(analysis, misread: dict[str, int] | None = None) -> dict[str, list[int]]:
    """kprof's counts as strace -c counts: calls that returned, and their errors; ``misread``: the calls (by name)
    whose result the log shows as an errno past MAX_ERRNO, which strace -c counts as errors and kprof as calls
    whose result was not read (``unread``): each credited to the one row of that name that has unread calls."""
    rows = analysis.footprint.syscalls
    more = {}
    for name, n in (misread or {}).items():
        row = next((r for r in (name, f"{name} (i386)") if r in rows and rows[r].unread), name)
        more[row] = n
    return {n: [s.calls - s.unfinished, sum(s.errors.values()) + more.get(n, 0)]
            for n, s in rows.items() if s.calls - s.unfinished or s.errors}


def results_not_read(logs) -> tuple[dict[str, int], dict[str, int]]:
    """Read by this test from the logs, per syscall name: the calls whose result strace printed as an errno past
    the kernel's MAX_ERRNO, 4095 (a task killed at the call's exit stop); and those with the calls whose result
    is "= ? <unavailable>", all the calls whose result was not read."""
    misread, unread = {}, {}
    for log in logs:
        for line in Path(log).read_text(errors="replace").splitlines():
            m = re.search(r"(?:<\.\.\. (\w+) resumed>|(\w+)\().*\) += (?:-1 \(errno (\d+)\)|\? <unavailable>)", line)
            if m and (m.group(3) is None or int(m.group(3)) > 4095):
                name = m.group(1) or m.group(2)
                unread[name] = unread.get(name, 0) + 1
                if m.group(3) is not None:
                    misread[name] = misread.get(name, 0) + 1
    return misread, unread


def analyse(*paths):
    return analyse_logs(log_files([Path(p) for p in paths]), "x86_64")


def _strace(args):
    """strace ARGS, which must exit 0; else the error says strace's own last words (its messages, or the log's end
    when it writes the log to stderr), which CalledProcessError would not."""
    p = subprocess.run(["strace", *args], capture_output=True, timeout=60)
    if p.returncode != 0:
        tail = "\n".join(p.stderr.decode(errors="replace").splitlines()[-15:])
        raise AssertionError(f"strace {' '.join(args)} exited {p.returncode}; its stderr ends:\n{tail}")
    return p


def _wait_until_traced(pid: int) -> None:
    """Until a tracer has attached to ``pid`` (its TracerPid is no longer 0), 5 s at most."""
    for _ in range(1000):
        with open(f"/proc/{pid}/status") as f:
            if "TracerPid:\t0\n" not in f.read():
                return
        time.sleep(0.005)


def _attach(exe: Path, log: Path, wd: Path) -> None:
    """strace -p on a running corpus program (it waits for one byte on stdin until the tracer is in)."""
    prog = subprocess.Popen([str(exe), "wait", str(wd)], stdin=subprocess.PIPE)
    tracer = subprocess.Popen(["strace", "-f", "-C", "-yy", "-o", str(log), "-p", str(prog.pid)],
                              stderr=subprocess.DEVNULL)
    try:
        _wait_until_traced(prog.pid)
        prog.stdin.write(b"x")
        prog.stdin.close()
        prog.wait(timeout=30)
        tracer.wait(timeout=30)
    finally:
        for p in (prog, tracer):
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Every log, recorded once: name → (log paths, strace's own summary text of the same run)."""
    d = tmp_path_factory.mktemp("strace-corpus")
    exe = d / "strace_corpus"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(exe), str(HELPERS / "strace_corpus.c")], check=True)
    exe32 = d / "strace_corpus32"
    m32 = subprocess.run(["gcc", "-m32", "-O1", "-o", str(exe32), str(HELPERS / "strace_corpus32.c")],
                         capture_output=True)
    jobs: dict[str, tuple] = {}

    def wd(name: str) -> str:
        p = d / ("wd-" + re.sub(r"\W+", "_", name))
        p.mkdir()
        return str(p)

    for name, opts in OPTION_SETS.items():
        mode = ["det"] if name in NO_KILL else []
        jobs[name] = (["-f", "-C", *opts, "-o", str(d / f"{len(jobs)}.log"), str(exe), *mode, wd(name)],)
    jobs["-A (two runs appended)"] = ["-A"]
    jobs["stderr (no -o)"] = ["stderr"]
    if CAN_ATTACH:
        jobs["-p attach"] = ["attach"]
    jobs["-z"] = (["-f", "-C", "-z", "-o", str(d / "z.log"), str(exe), wd("z")],)
    jobs["-Z"] = (["-f", "-C", "-Z", "-o", str(d / "Z.log"), str(exe), wd("Z")],)
    jobs["-c"] = (["-f", "-c", "-o", str(d / "c.log"), str(exe), wd("c")],)
    jobs["thread exec"] = (["-f", "-C", "-yy", "-o", str(d / "te.log"), str(exe), "thread-exec"],)
    jobs["-ff"] = ["ff"]
    if m32.returncode == 0:
        jobs["32-bit running 64-bit"] = (["-f", "-C", "-yy", "-o", str(d / "m32.log"), str(exe32), str(exe),
                                          wd("m32")],)
        jobs["32-bit, stderr (no -o)"] = ["stderr32"]     # strace says "[ Process PID=N runs in 64 bit mode. ]"

    def record(name):
        job = jobs[name]
        if job == ["-A"]:
            log, w = d / "A.log", wd(name)
            for _ in range(2):
                _strace(["-f", "-C", "-A", "-yy", "-o", str(log), str(exe), w])
            return [log], log.read_text(errors="replace")
        if job == ["stderr"]:
            p = _strace(["-f", "-C", "-yy", str(exe), wd(name)])
            log = d / "stderr.log"
            log.write_bytes(p.stderr)
            return [log], p.stderr.decode(errors="replace")
        if job == ["stderr32"]:
            p = _strace(["-f", "-C", "-yy", str(exe32), str(exe), wd(name)])
            log = d / "stderr32.log"
            log.write_bytes(p.stderr)
            return [log], p.stderr.decode(errors="replace")
        if job == ["attach"]:
            log = d / "p.log"
            _attach(exe, log, Path(wd(name)))
            return [log], log.read_text(errors="replace")
        if job == ["ff"]:
            # strace cannot write a summary with -ff: the ground truth is a -C run of the same deterministic
            # program (no threads, no kill: the same calls every run)
            prefix = d / "ff"
            _strace(["-ff", "-yy", "-o", str(prefix), str(exe), "det", wd("ff")])
            ref = d / "ff-ref.log"
            _strace(["-f", "-C", "-o", str(ref), str(exe), "det", wd("ff-ref")])
            return sorted(d.glob("ff.*")), ref.read_text(errors="replace")
        _strace(job[0])
        log = Path(job[0][job[0].index("-o") + 1])
        return [log], log.read_text(errors="replace")

    with ThreadPoolExecutor(4) as pool:
        results = dict(zip(jobs, pool.map(record, jobs)))
    results["(gcc -m32)"] = m32.returncode == 0
    return results


COUNTED = [*OPTION_SETS, "-A (two runs appended)", "stderr (no -o)", "-p attach", "thread exec", "-ff",
           "32-bit running 64-bit", "32-bit, stderr (no -o)"]


@pytest.mark.parametrize("name", COUNTED)
def test_counts_equal_strace_own_summary(corpus, name):
    if name not in corpus:
        if name == "-p attach":
            pytest.skip("strace -p needs root or Yama ptrace_scope 0 here")
        if IN_CI:
            pytest.fail("gcc -m32 does not work: ./setup.sh installs gcc-multilib")
        pytest.skip("gcc -m32 does not work here (apt-get install gcc-multilib)")
    logs, summary_text = corpus[name]
    theirs = summary_of(summary_text)
    assert theirs and (sum(c or 0 for c, _ in theirs.values()) > 50 or name == "-U name,errors")
    a = analyse(*logs)
    misread, unread = results_not_read(logs)
    assert masked(counts(a, misread), theirs) == theirs
    assert {n.removesuffix(" (i386)"): s.unread for n, s in a.footprint.syscalls.items() if s.unread} == unread
    assert a.problems == [], a.problems
    if name != "-ff":
        assert a.mismatches == []     # kprof's own cross-check agrees (it read the same table)
    if name == "-A (two runs appended)":
        assert summary_text.count("% time") == 2
    if name == "32-bit, stderr (no -o)":
        assert "runs in 64 bit mode" in summary_text and "getpid (i386)" in counts(a)
    if name == "32-bit running 64-bit":
        assert "for 32 bit mode" in summary_text and "_llseek (i386)" in theirs
        both = [n for n in theirs if n.endswith(" (i386)") and n[:-7] in theirs]   # in both ABIs' tables
        assert {"brk", "openat", "close"} <= {n[:-7] for n in both}
    if name == "stderr (no -o)":
        assert 0 not in a.footprint.processes   # the first task got its pid once strace printed it


def _ioctl_paths(a) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for (req, path), _ in a.footprint.ioctls.items():
        out.setdefault(req, set()).add(path)
    return out


ODD = ["x) = -1 ENOENT (y", 'q"uote', "un(bal[anced{", "close)]}", "trailing-", "angle<b>", "tab\tnl\nname"]


@pytest.mark.parametrize("name", ["kprof's own", "-X verbose -yy", "-X abbrev -yy", "-i -n -Y",
                                  "--absolute-timestamps=unix,s", "stderr (no -o)"])
def test_odd_file_names_keep_their_fd_paths_and_ioctls_decode(corpus, name):
    """-yy paths with ') = ', quotes, unbalanced brackets, a trailing '-': the device and the request survive."""
    a = analyse(*corpus[name][0])
    fp = a.footprint
    wd = next(p for p in fp.files if p.endswith("/" + ODD[1])).rsplit("/", 1)[0]
    for odd in ODD:
        path = f"{wd}/{odd}"
        assert fp.files[path]["calls"] == 2 and fp.files[path]["errors"] == {"ENOTDIR": 1}, odd
    paths = _ioctl_paths(a)
    for req in (0x5401, 0x40206B00):   # TCGETS; SPI_IOC_MESSAGE(1), printed by strace as SPI_IOC_MESSAGE(32)
        assert {f"{wd}/{o}" for o in ODD} <= {device_path(x) for x in paths[req]}, (hex(req), paths[req])
    rows = {r["request"]: r for r in fp.ioctl_rows()}
    assert rows["0x40206b00"]["name"] == "SPI_IOC_MESSAGE(1)" and rows["0x40206b00"]["calls"] == len(ODD)
    assert rows["0x80045430"]["name"] == "TIOCGPTN" and rows["0x80045430"]["devices"] == ["/dev/ptmx"]


def test_exec_from_a_thread_other_than_the_leader(corpus):
    logs, text = corpus["thread exec"]
    assert "superseded by execve" in text
    fp = analyse(*logs).footprint
    leader = fp.root_pid
    images = fp.processes[leader]["images"]
    assert [i["exe"].rsplit("/", 1)[-1] for i in images if i["exe"]] == ["strace_corpus", "strace_corpus"]
    assert images[-1]["syscalls"]["exit_group"] == 1          # the new program's calls are the new program's
    assert fp.syscalls["execve"].calls == summary_of(text)["execve"][0]


@pytest.mark.parametrize("name,option", [("-z", "-z (--successful-only)"), ("-Z", "-Z (--failed-only)")])
def test_filtered_logs_exit_1_saying_counts_cannot_match(corpus, name, option):
    log = corpus[name][0][0]
    p = kprof("analyze", log, "-f", "json", check=1)
    report = json.loads(p.stdout)
    assert report["cross_check"]["ok"] is False
    assert report["cross_check"]["mismatches"][0].startswith(f"the log was recorded with {option}")
    assert "record without it" in report["cross_check"]["mismatches"][0]


def test_a_log_cut_short_says_its_first_process_never_ended(corpus, tmp_path):
    """A log that ends before the command did (strace killed, or dead: its -k does that when a task dies while it
    unwinds) has no exit of the first process and no summary: analyze warns, naming the pid; a whole log does not."""
    log = corpus["kprof's own"][0][0]
    whole = json.loads(kprof("analyze", log, "-f", "json", check=0).stdout)
    assert not [w for w in whole["warnings"] if "no exit of its first process" in w]
    lines = log.read_text(errors="surrogateescape").splitlines(True)
    root = lines[0].split()[0]
    end = next(i for i, ln in enumerate(lines) if ln.startswith(f"{root} ") and "+++ exited with 0 +++" in ln)
    cut = tmp_path / "cut.log"
    cut.write_text("".join(lines[:end]), errors="surrogateescape")
    report = json.loads(kprof("analyze", cut, "-f", "json", check=0).stdout)
    said = [w for w in report["warnings"] if "no exit of its first process" in w]
    assert len(said) == 1 and f"(pid {root}:" in said[0], report["warnings"]
    assert report["cross_check"]["summary"] is False


def test_summary_only_log_is_refused_naming_the_option(corpus):
    p = kprof("analyze", corpus["-c"][0][0], check=2)
    assert "recorded with -c" in p.stderr and "record with -C" in p.stderr and "Traceback" not in p.stderr


def test_analyze_exits_1_when_counts_differ_and_json_says_so(corpus, tmp_path):
    log = corpus["kprof's own"][0][0]
    ok = json.loads(kprof("analyze", log, "-f", "json", check=0).stdout)
    ok["cross_check"].pop("never_returned")   # the killed child may die inside a call: checked elsewhere
    ok["cross_check"].pop("unread")           # or at its exit
    assert ok["cross_check"] == {"summary": True, "ok": True, "mismatches": [], "columns": ["calls", "errors"]}
    lines = log.read_text(errors="surrogateescape").splitlines(True)
    cut = next(i for i, ln in enumerate(lines) if " unlink(" in ln)
    bad = tmp_path / "cut.log"
    bad.write_text("".join(lines[:cut] + lines[cut + 1:]), errors="surrogateescape")
    p = kprof("analyze", bad, "-f", "json", check=1)
    report = json.loads(p.stdout)
    assert report["cross_check"]["ok"] is False
    assert any(m.startswith("unlink: kprof 6 calls/0 errors, strace -c 7/0") for m in report["cross_check"]["mismatches"])
    assert "cross-check: FAILED" in kprof("analyze", bad, check=1).stdout


def test_ff_files_or_their_prefix(corpus):
    files = corpus["-ff"][0]
    assert len(files) >= 2
    prefix = str(files[0]).rsplit(".", 1)[0]
    by_prefix = json.loads(kprof("analyze", prefix, "-f", "json", check=0).stdout)
    by_files = json.loads(kprof("analyze", *files, "-f", "json", check=0).stdout)
    assert by_prefix["sections"] == by_files["sections"]
    assert by_prefix["cross_check"] == {"summary": False, "ok": True, "mismatches": [], "columns": [],
                                        "never_returned": {}, "unread": {}}
    assert "strace -ff cannot write one" in by_prefix["facts"]["cross-check"]
    a = analyse(*files)
    pids = {int(str(f).rsplit(".", 1)[1]) for f in files}
    assert set(a.footprint.processes) == pids                   # each file's pid from its name
    p = kprof("analyze", files[0], ROOT / "README.md", check=2)
    assert "PREFIX.PID" in p.stderr


def test_an_aarch64_log_is_detected_without_arch(corpus, tmp_path):
    """The loader and library paths show the arch the programs were built for."""
    text = corpus["kprof's own"][0][0].read_text(errors="surrogateescape")
    text = text.replace("x86_64-linux-gnu", "aarch64-linux-gnu").replace("ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1")
    text = re.sub(r"^(\d+ [\d.]+ )arch_prctl\(.*\n", "", text, flags=re.M)
    log = tmp_path / "pi.log"
    log.write_text(text, errors="surrogateescape")
    report = json.loads(kprof("analyze", log, "-f", "json", check=None).stdout)
    assert report["facts"]["arch"].startswith("aarch64 (detected from the log: /lib/aarch64-linux-gnu/")
    given = json.loads(kprof("analyze", log, "--arch", "x86_64", "-f", "json", check=None).stdout)
    assert given["facts"]["arch"] == "x86_64 (given with --arch)"


def test_mixed_personality_log_names_its_32_bit_calls(corpus):
    """A 32-bit program's calls are its ABI's rows, also those both ABIs have (getpid is 20 on i386, 39 on
    x86_64): each row's count equals the same row of strace's own per-personality tables."""
    if "32-bit running 64-bit" not in corpus:
        pytest.skip("gcc -m32 does not work here")
    logs, text = corpus["32-bit running 64-bit"]
    a = analyse(*logs)
    fp = a.footprint
    info = fp.syscall_info("_llseek (i386)")
    assert (info.arch, info.number, info.subsystem) == ("i386", 140, "fs.io")
    theirs = summary_of(text)
    for name in ("getpid", "brk", "openat"):
        assert fp.syscalls[name + " (i386)"].calls == theirs[name + " (i386)"][0], name
        assert fp.syscalls[name].calls - fp.syscalls[name].unfinished == theirs[name][0], name
    # each row's number from the kernel's own syscall table of its ABI (the reference copy, read here)
    tables = ROOT.parent / "shared" / "reference" / "kernel" / "syscall-tables"
    for abi, tbl, suffix in (("i386", "i386-syscall_32.tbl", " (i386)"), ("x86_64", "x86_64-syscall_64.tbl", "")):
        numbers = {f[2]: int(f[0]) for f in (ln.split() for ln in (tables / tbl).read_text().splitlines())
                   if len(f) > 2 and not f[0].startswith("#") and f[1] != "x32"}
        for name in ("getpid", "brk", "openat"):
            info = fp.syscall_info(name + suffix)
            assert (info.arch, info.number) == (abi, numbers[name]), name + suffix
    d = fp.to_dict()["syscalls"]
    assert d["_llseek (i386)"]["defined_in"].startswith("fs/read_write.c:")
    assert d["getpid (i386)"]["number"] == 20 and "i386 ABI" in d["getpid (i386)"]["note"]
    assert all(not (r["defined_in"] or "").endswith(":None") for r in d.values())
    assert "_llseek" not in fp.syscalls and "mmap2" not in fp.syscalls   # no 32-bit call in a 64-bit row
    assert a.mismatches == []
    report = json.loads(kprof("analyze", *logs, "-f", "json", check=0).stdout)
    assert report["facts"]["i386 programs"].startswith("built for i386")
    assert "exit_group" not in report["facts"]["cross-check"]        # it never returns, in either ABI


def test_readme_names_every_option_set_the_corpus_checks():
    text = (ROOT / "README.md").read_text()
    section = text.split("## strace logs kprof reads", 1)[1].split("\n## ", 1)[0]
    for opt in ["-yy", "-X raw", "-X verbose", "-ff", "-A", "-z", "-Z", "-c", "-U", "-k", "-i", "-n", "-Y", "-p",
                "--seccomp-bpf", "-e trace=", "--absolute-timestamps=unix,s", "-r"]:
        assert f"`{opt}" in section, opt


@pytest.mark.skipif(os.geteuid() != 0 and not IN_CI, reason="setup.sh's package list is checked as root only")
def test_setup_installs_gcc_multilib():
    assert "gcc-multilib" in (ROOT / "setup.sh").read_text()


def never_returned(text: str) -> dict[str, int]:
    """The calls a log shows entered and never returned, exit and exit_group aside, counted by this test: an
    "= ?" result, and an "<unfinished ...>" call whose task was killed before strace showed it resumed (the
    kill test's child, killed while it entered set_robust_list: CI once met this)."""
    out: dict[str, int] = {}
    pending: dict[str, str] = {}
    for line in text.splitlines():
        handed = re.match(r"^(\d+) +(?:[\d.]+ +)?\+\+\+ superseded by execve in pid (\d+) ", line)
        if handed and handed.group(2) in pending:   # a thread's execve: the leader's pid shows it resumed
            pending[handed.group(1)] = pending.pop(handed.group(2))
            continue
        m = re.match(r"^(\d+) +(?:[\d.]+ +)?(?:<\.\.\. (\w+) resumed>|(\w+)\()", line)   # pids are padded
        if not m:
            continue
        pid, name = m.group(1), m.group(2) or m.group(3)
        if line.endswith("<unfinished ...>"):
            pending[pid] = name
            continue
        pending.pop(pid, None)
        if re.search(r"\) += \?$", line):
            out[name] = out.get(name, 0) + 1
    for name in pending.values():
        out[name] = out.get(name, 0) + 1
    return {n: c for n, c in out.items() if n not in ("exit", "exit_group")}


@pytest.mark.parametrize("name", ["thread exec", "kprof's own"])
def test_cross_check_names_the_calls_that_never_returned(corpus, name):
    """A call cut by another thread's execve or a kill (``= ?``) is in kprof's counts, not in strace -c's:
    the cross-check says which calls it compared without, exactly those strace's summary lacks."""
    logs, text = corpus[name]
    theirs = summary_of(text)
    report = json.loads(kprof("analyze", *logs, "-f", "json", check=0).stdout)
    fp = analyse(*logs).footprint
    extra = {n: s.calls - (theirs.get(n) or [0])[0] for n, s in fp.syscalls.items()
             if n not in ("exit", "exit_group") and s.calls != (theirs.get(n) or [0])[0]}
    assert report["cross_check"]["never_returned"] == extra
    fact = report["facts"]["cross-check"]
    # the calls that never returned, as this test reads the log (the thread-exec run cuts a thread's futex most
    # times): exactly what strace -c lacks
    assert extra == never_returned(text)
    # a kill at a call's exit may leave its result unread (kprof's own program kills a child): said after them
    unread = {n: s.unread for n, s in sorted(fp.syscalls.items()) if s.unread}
    assert unread == results_not_read(logs)[1]            # as this test reads the log
    assert report["cross_check"]["unread"] == unread
    tail = "" if not unread else "; " + ", ".join(f"{c} {n}" for n, c in unread.items()) + (
        " returned in a task killed at the call's exit, the result unread (= ? <unavailable>, or an errno past "
        "4095): calls without an error here, which strace -c may count as errors")
    if extra:
        said = ", ".join(f"{c} {n}" for n, c in sorted(extra.items()))
        assert fact.endswith(f"equal the log's own strace -c summary, except {said} that never returned "
                             "(= ?, or killed before a result), which strace -c does not count" + tail), fact
        assert fact.startswith("per-syscall calls and errors equal")
    else:
        assert fact == "per-syscall calls and errors equal the log's own strace -c summary" + tail


@pytest.mark.parametrize("name,says", [
    ("-U calls,name", "per-syscall calls equal the log's own strace -c summary (its table has no errors column: "
                      "errors not checked)"),
    ("-U name,errors", "per-syscall errors and the syscalls called equal the log's own strace -c summary (its "
                       "table has no calls column: call counts not checked)"),
])
def test_summary_without_a_calls_or_errors_column_is_compared_on_what_it_has(corpus, name, says):
    report = json.loads(kprof("analyze", *corpus[name][0], "-f", "json", check=0).stdout)
    assert report["facts"]["cross-check"].startswith(says), report["facts"]["cross-check"]
    assert report["cross_check"]["ok"] is True and report["cross_check"]["columns"] == \
        [c for c in ("calls", "errors") if c in name]
    assert not any("unparsed" in w for w in report["warnings"]), report["warnings"]


def _attach_and_detach(log: Path) -> None:
    """strace -p on a process that stays blocked, then ^C: every call strace saw is "<detached ...>"."""
    prog = subprocess.Popen(["sleep", "60"])
    for _ in range(1000):       # asleep first (on a loaded machine strace could attach before sleep's start-up calls)
        with open(f"/proc/{prog.pid}/wchan") as f:
            if "nanosleep" in f.read():
                break
        time.sleep(0.005)
    tracer = subprocess.Popen(["strace", "-f", "-C", "-yy", "-o", str(log), "-p", str(prog.pid)],
                              stderr=subprocess.DEVNULL)
    try:
        _wait_until_traced(prog.pid)
        time.sleep(0.1)
        tracer.send_signal(2)
        tracer.wait(timeout=30)
    finally:
        for p in (tracer, prog):
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.skipif(not CAN_ATTACH, reason="strace -p needs root or Yama ptrace_scope 0 here")
def test_a_detached_only_attach_log_is_named_for_what_it_is(tmp_path):
    log = tmp_path / "p.log"
    _attach_and_detach(log)
    text = log.read_text()
    assert "<detached ...>" in text and " = " not in text       # strace saw no call complete
    p = kprof("analyze", log, check=2)
    assert "not a strace log" not in p.stderr and "Traceback" not in p.stderr
    assert "only 1 strace detached from while it ran" in p.stderr and "strace -p attach" in p.stderr


def test_an_unfinished_only_log_says_so(tmp_path):
    log = tmp_path / "u.log"
    log.write_text("4242  wait4(-1,  <unfinished ...>\n")
    report = json.loads(kprof("analyze", log, "-f", "json", check=None).stdout)
    assert any("no call in the log returned" in w for w in report["warnings"]), report["warnings"]


def test_ioctl_table_summarises_many_paths_and_fits_100_columns(corpus):
    """Every path in JSON and HTML; the terminal and Markdown tables give their number and stay narrow."""
    log = corpus["kprof's own"][0][0]
    text = log.read_text(errors="surrogateescape")
    # this test's own count: the distinct -yy paths of the fds TCGETS (0x5401) was asked of
    fds = {m for m in re.findall(r"ioctl\(\d+<(.*?)>, 0x5401,", text)}
    report = json.loads(kprof("analyze", log, "-f", "json", check=0).stdout)
    sec = next(s for s in report["sections"] if s["title"] == "ioctl requests")
    col = sec["headers"].index("devices")
    row = next(r for r in sec["rows"] if r[0] == "0x5401" and len(r[col]) > 1)
    assert len(row[col]) == len(fds) >= len(ODD)
    html = kprof("analyze", log, "-f", "html", check=0).stdout
    assert all(f"/{o}".replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") in html
               for o in ODD if "\t" not in o)
    for fmt in ("table", "markdown"):
        out = kprof("analyze", log, "-f", fmt, check=0).stdout
        table = out.split("ioctl requests", 1)[1].split("\n\n", 2)[1 if fmt == "markdown" else 0]
        lines = [ln for ln in table.splitlines() if ln.strip()]
        if fmt == "table":
            assert lines and max(len(ln) for ln in lines) <= 100, table
        assert any(ln.startswith(("0x5401 ", "| 0x5401 ")) and f" {len(fds)} paths " in ln for ln in lines), table
        assert "x) = -1 ENOENT (y" not in table
