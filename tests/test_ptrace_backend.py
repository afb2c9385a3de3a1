"""The ptrace backend (profiler/record/ptrace.py): the same footprint as strace, on every shipped scenario and on
programs built to stress a tracer (a pipeline, 8 threads, fast forks), with exit statuses, signals, timeouts,
Ctrl-C and the error when ptrace is not permitted.

Parity tolerance is data, not test code: the regression-check rules (profiler/tolerance.json, with each
scenario's ``tolerance:``) say which syscalls and errors are timing-dependent and how far a count may move run
to run; a ptrace run must pass `kprof check` against a strace run of the same scenario under those rules,
and what does not depend on timing (programs run, ioctl requests, devices, files) must be the same set.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from profiler import compare, faults
from profiler.analysis import analyse_log
from profiler.errors import KprofError
from profiler.inject import rules_from
from profiler.kernel import syscalls
from profiler.record import strace as strace_rec
from profiler.record.ptrace import record_ptrace
from profiler.record.core import descendants
from profiler.scenario import load_scenario

from .conftest import (IN_CI, ROOT, SCENARIOS, needs_oref0, needs_root, needs_strace, parity_changes, run_backend,
                       strace_outcome)
from .helpers.decoding import ABSTRACT, DECODING

PY = sys.executable
SHORT = 60  # seconds: every test program ends in well under this; a hang fails as a timeout, never blocks CI


def record(tmp_path: Path, argv: list[str], backend: str = "ptrace", timeout: float = SHORT, name: str | None = None,
           inject: list[dict] = ()):
    """Trace ``argv`` with one backend in a directory of its own; returns (outcome, analysis, log text, stdout)."""
    d = tmp_path / (name or backend)
    d.mkdir(exist_ok=True)
    rec = record_ptrace if backend == "ptrace" else strace_rec.record_strace
    rules = rules_from(list(inject), "test", syscalls.host_arch()) if inject else []
    outcome = rec(argv, str(d / "trace.log"), cwd=str(d), env=dict(os.environ), timeout=timeout,
                  stdout_path=str(d / "stdout.txt"), stderr_path=str(d / "stderr.txt"), inject=rules)
    analysis = analyse_log(d / "trace.log", syscalls.host_arch(), {str(d): "$TMP"})
    return outcome, analysis, (d / "trace.log").read_text(), (d / "stdout.txt").read_text()


def program(tmp_path: Path, source: str) -> str:
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(source))
    return str(path)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def ends(fp) -> dict[int, dict | None]:
    return {pid: p["end"] for pid, p in fp.processes.items()}


# ---- parity on every shipped scenario -------------------------------------------------------------------

@needs_strace
@needs_oref0
@needs_root
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_ptrace_footprint_matches_strace_on_every_scenario(scenario, tmp_path, scenario_run):
    sc = original = load_scenario(scenario)
    if faults.has_faults(sc):  # compared on the normal path: strace cannot inject a path-restricted rule
        sc = faults.normal_variant(sc)
    if sc.radio != "uart":     # strace cannot serve the SPI radio's ioctls: compared on the UART path,
        tolerance = dict(load_scenario(ROOT / "scenarios" / "pump-status-uart.yaml").tolerance)  # the UART path's
        for k, v in (sc.tolerance or {}).items():
            tolerance[k] = tolerance.get(k, []) + v if isinstance(v, list) else v
        sc = dataclasses.replace(sc, radio="uart", tolerance=tolerance)
    runs = {"strace": strace_outcome(scenario, sc, original, tmp_path / "strace", scenario_run)}
    runs["ptrace"] = run_backend(sc, "ptrace", tmp_path / "ptrace")
    for b, o in runs.items():
        assert not o.trace.timed_out, b
        assert o.exit == {"exit": sc.expected_exit}, (b, o.exit)
        assert not o.analysis.problems, (b, o.analysis.problems)
        want = sc.expect.get("stdout_contains")
        if want:
            assert want in (o.run_dir / "stdout.txt").read_text(), b
    assert "% time" not in (runs["ptrace"].run_dir / "trace.log").read_text()   # no -C table of our own
    fp_s, fp_p = runs["strace"].analysis.footprint, runs["ptrace"].analysis.footprint
    m_s, m_p = compare.measures(fp_s), compare.measures(fp_p)
    rules = compare.rules_for(sc.tolerance)

    # what does not depend on timing is the same set (optional items, e.g. glibc's overcommit_memory read, aside)
    def keys(m, cat):
        return {k for k in m[cat] if f"{cat}:{k}" not in rules["optional"]}
    for cat in ("ioctl", "device", "file", "network"):
        assert keys(m_p, cat) == keys(m_s, cat), cat
    # the same programs; how often each ran is a count like the others (below): a workload that retries a
    # tool (oref0-pump-loop's `check_tempbasal || check_tempbasal` after a late radio reply) runs it once more
    assert m_p["program"].keys() == m_s["program"].keys()
    timing = {k for k in m_s["syscall"].keys() | m_p["syscall"].keys() if compare._timing(rules, "syscall", k)}
    assert m_p["syscall"].keys() - timing == m_s["syscall"].keys() - timing
    # and every count is within the regression-check tolerance of the strace run's (timing-dependent ones aside)
    assert parity_changes(compare.diff([m_s], fp_s, m_p, fp_p, rules), rules) == []


# ---- programs that stress a tracer ------------------------------------------------------------------------

@needs_strace
def test_four_process_pipeline_same_footprint_as_strace(tmp_path):
    argv = ["/bin/sh", "-c", "seq 1 20000 | sort -rn | uniq | wc -l"]
    got = {b: record(tmp_path, argv, b) for b in ("strace", "ptrace")}
    o, a, log, out = got["ptrace"]
    assert (o.returncode, o.timed_out, out.strip()) == (0, False, "20000")
    fp = a.footprint
    assert len(fp.processes) == 5 and all(e == {"exit": 0} for e in ends(fp).values())
    m_s, m_p = compare.measures(got["strace"][1].footprint), compare.measures(fp)
    assert m_p["program"] == m_s["program"] and len(m_p["program"]) == 5
    # how much a pipe read or write carries, and how many SIGCHLDs the shell handles (they coalesce), depend on timing
    rules = compare.rules_for({"timing_syscalls": ["read", "write", "rt_sigreturn"]})
    for name, n in m_s["syscall"].items():
        if not compare._timing(rules, "syscall", name):
            assert m_p["syscall"].get(name) == n, name


def test_eight_threads_doing_syscalls(tmp_path):
    prog = program(tmp_path, """
        import os, threading
        def work():
            for _ in range(500):
                os.getsid(0)
                os.close(os.open("/dev/null", os.O_RDONLY))
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
    """)
    o, a, log, _ = record(tmp_path, [PY, prog])
    assert (o.returncode, o.timed_out) == (0, False)
    fp = a.footprint
    assert fp.syscalls["getsid"].calls == 4000
    assert fp.files["/dev/null"]["calls"] == 4000
    assert fp.devices["/dev/null"]["syscalls"]["close"] == 4000    # the fd's path is read at each call
    threads = [pid for pid, p in fp.processes.items() if p["images"][-1]["syscalls"].get("getsid")]
    assert len(threads) == 8 and all(fp.processes[t]["end"] == {"exit": 0} for t in threads)


def test_forks_faster_than_the_tracer_can_attach(tmp_path):
    prog = program(tmp_path, """
        import os
        children = []
        for i in range(300):
            pid = os.fork()
            if pid == 0:
                if i % 3 == 0 and os.fork() == 0:
                    os._exit(99)               # a grandchild, orphaned at once
                os._exit(i % 7)
            children.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in children]
        assert codes == [i % 7 for i in range(300)], codes
    """)
    o, a, log, _ = record(tmp_path, [PY, prog])
    assert (o.returncode, o.timed_out) == (0, False), log[-2000:]
    fp = a.footprint
    assert len(fp.processes) == 401
    statuses = sorted(e["exit"] for e in ends(fp).values())
    assert statuses.count(99) == 100                                # every grandchild's exit is seen
    assert statuses.count(3) == sum(1 for i in range(300) if i % 7 == 3)
    forks = fp.syscalls["clone"].calls - sum(n for e, n in fp.syscalls["clone"].errors.items())
    assert forks == 400


# ---- exit status, signals, timeout, Ctrl-C ------------------------------------------------------------------

def test_exit_status_of_the_command(tmp_path):
    o, a, _, _ = record(tmp_path, ["/bin/sh", "-c", "exit 3"])
    assert o.returncode == 3 and a.footprint.exit == {"exit": 3}
    o, a, _, _ = record(tmp_path, ["/bin/sh", "-c", "kill -TERM $$"], name="term")
    assert o.returncode == 128 + signal.SIGTERM and a.footprint.exit["signal"] == "SIGTERM"


def test_segfaulting_and_sigkilled_children_are_reported(tmp_path):
    script = f'{PY} -c "import ctypes; ctypes.string_at(0)"; echo segv=$?; sleep 30 & kill -9 $!; wait $!; echo kill=$?'
    o, a, log, out = record(tmp_path, ["/bin/sh", "-c", script])
    assert (o.returncode, out.split()) == (0, ["segv=139", "kill=137"])
    fp = a.footprint
    killed = sorted(e["signal"] for e in ends(fp).values() if e and "signal" in e)
    assert killed == ["SIGKILL", "SIGSEGV"]
    assert " --- SIGSEGV {si_signo=11, si_code=0x1, si_addr=0x0} ---" in log
    assert " --- SIGCHLD {" in log                                  # the shell is told, and the signal delivered


def test_stopped_and_continued_child_does_not_hang(tmp_path):
    o, a, log, out = record(tmp_path, ["/bin/sh", "-c", "sleep 0.3 & p=$!; kill -STOP $p; sleep 0.1; kill -CONT $p; "
                                                        "wait $p; echo $?"], timeout=20)
    assert (o.returncode, o.timed_out, out.strip()) == (0, False, "0")
    assert "--- stopped by SIGSTOP ---" in log and "--- SIGCONT {" in log


def test_timeout_kills_the_whole_tree_and_keeps_the_log(tmp_path):
    start = time.monotonic()
    o, a, log, _ = record(tmp_path, ["/bin/sh", "-c", "sleep 60 & sleep 60; wait"], timeout=1.5)
    assert o.timed_out and time.monotonic() - start < 15
    assert not descendants(os.getpid())
    fp = a.footprint
    assert fp.syscalls["execve"].calls >= 3                        # what ran before the kill is kept
    assert sorted(e["signal"] for e in ends(fp).values()) == ["SIGKILL"] * 3
    assert log.rstrip().endswith("+++ killed by SIGKILL +++")


def test_ctrl_c_kills_the_tree_and_keeps_the_log(tmp_path):
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from profiler.record.ptrace import record_ptrace
        d = {str(tmp_path)!r}
        o = record_ptrace(["/bin/sh", "-c", "sleep 60"], d + "/trace.log", cwd=d, env=dict(os.environ), timeout=60,
                          stdout_path=d + "/out", stderr_path=d + "/err")
        print("interrupted" if o.interrupted else "not interrupted", o.returncode)
    """)
    p = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not any(_comm(pid) == "sleep" for pid in descendants(p.pid)):   # the command runs, traced
        assert time.monotonic() < deadline and p.poll() is None, "sleep never started under the tracer"
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    assert out.split() == ["interrupted", str(128 + signal.SIGKILL)]
    text = (tmp_path / "trace.log").read_text()
    assert "execve(" in text and text.rstrip().endswith("+++ killed by SIGKILL +++")


# ---- decoding: what the footprint reads from each line -------------------------------------------------

@needs_strace
def test_paths_devices_sockets_and_ioctls_decoded_as_strace_does(tmp_path):
    prog = program(tmp_path, DECODING)
    got = {b: record(tmp_path, [PY, prog], b) for b in ("strace", "ptrace")}
    for b, (o, a, _, _) in got.items():
        assert o.returncode == 0 and not a.problems, b
    m_s, m_p = (compare.measures(got[b][1].footprint) for b in ("strace", "ptrace"))
    for cat in ("ioctl", "device", "file", "network", "program", "error"):
        assert m_p[cat] == m_s[cat], cat
    assert {"inet:127.0.0.1:9", "inet:127.0.0.2:9", "unix:unix.sock", f"unix:@{ABSTRACT}",
            "unix:/nonexistent.sock"} <= set(m_p["network"])
    assert "$TMP/relative.txt" in m_p["file"]
    assert any(k.endswith("on socket:udp") for k in m_p["ioctl"]) and any(k.endswith("on mem") for k in m_p["ioctl"])
    fp = got["ptrace"][1].footprint
    assert fp.devices["/dev/null"]["dev"] == "char 1:3"



ODD_FILES = """
import fcntl, os, stat, termios
for name in ("we ird>name\\nnl", "tab\\there<>", "\\u00fc-utf8"):
    fd = os.open(name, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"x")
    os.close(fd)
fd = os.open("gone", os.O_CREAT | os.O_RDWR, 0o644)
os.unlink("gone")                                      # strace: </path>(deleted)
fcntl.ioctl(fd, termios.FIONREAD, bytes(4))
os.write(fd, b"y")
if os.geteuid() == 0:                                  # a char device outside /dev
    os.mknod("mynull", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    fd = os.open("mynull", os.O_WRONLY)
    os.write(fd, b"z")
"""


@needs_strace
def test_paths_with_odd_characters_deleted_files_and_devices_outside_dev_as_strace_shows_them(tmp_path):
    """File names holding a newline, < and >, a tab, a byte past ASCII; a file unlinked while open; a device
    node made outside /dev: the same footprint as strace's, every line read (a newline or a ">" in a path
    written as it is cut the line, or the path, and lost calls)."""
    prog = program(tmp_path, ODD_FILES)
    got = {b: record(tmp_path, [PY, prog], b) for b in ("strace", "ptrace")}
    for b, (o, a, _, _) in got.items():
        assert o.returncode == 0 and not a.problems, (b, a.problems)      # (problems: unparsed lines)
    m_s, m_p = ({c: {k.replace(str(tmp_path / b), "$TMP"): n for k, n in m.items()}     # (devices: not aliased)
                 for c, m in compare.measures(got[b][1].footprint).items()} for b in ("strace", "ptrace"))
    for cat in ("ioctl", "device", "file", "error"):
        assert m_p[cat] == m_s[cat], cat
    assert m_p["syscall"]["write"] == m_s["syscall"]["write"]
    assert {"$TMP/we ird>name\nnl", "$TMP/tab\there<>", "$TMP/\u00fc-utf8", "$TMP/gone"} <= set(m_p["file"])
    if os.geteuid() == 0:
        assert got["ptrace"][1].footprint.devices[str(tmp_path / "ptrace" / "mynull")]["dev"] == "char 1:3"


@needs_strace
def test_clone_flags_tell_threads_from_processes_as_strace_shows_them(tmp_path):
    """The ptrace log shows clone's and clone3's flags (clone3's from its struct), so the parser tells a
    thread (CLONE_THREAD) from a process as it does in strace's log: thread groups, the exit_group cut, the
    sequences all rest on it. Without the flags every thread was a process."""
    from profiler.parse.strace_log import StraceLogParser
    prog = program(tmp_path, """
        import os, threading
        ts = [threading.Thread(target=os.getppid) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if os.fork() == 0:
            os._exit(0)
        os.wait()
    """)
    kinds = {}
    for b in ("strace", "ptrace"):
        _, _, log, _ = record(tmp_path, [PY, prog], b)
        p = StraceLogParser()
        events = [*p.feed(log.splitlines(True)), *p.finish()]
        forks = [e for e in events if getattr(e, "name", None) in ("clone", "clone3") and e.result is not None]
        kinds[b] = sorted((e.thread, e.result > 0) for e in forks)
    assert kinds["ptrace"] == kinds["strace"] == [(False, True)] + [(True, True)] * 3, kinds


@needs_strace
def test_a_child_never_reaped_ends_once(tmp_path):
    """A child its parent never waits for is reparented to the tracer (the subreaper) and reaped again: one
    end in the log, as strace writes it (it was written twice)."""
    prog = program(tmp_path, """
        import os, time
        child = os.fork()
        if child == 0:
            os._exit(7)
        while open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)                      # a zombie when its parent exits: reparented, reaped again
    """)
    ends = {}
    for b in ("strace", "ptrace"):
        o, _, log, _ = record(tmp_path, [PY, prog], b)
        ends[b] = log.count("+++ exited with 7 +++")
    assert ends == {"strace": 1, "ptrace": 1}


@pytest.mark.skipif(shutil.which("gcc") is None and not IN_CI, reason="gcc is not installed")
def test_busy_threads_each_get_their_share(tmp_path):
    """16 threads busy in syscalls (tests/helpers/busy_threads.c): every stopped tracee is handled once per
    round, as strace does. waitpid(-1) alone returned the same ready threads first, so the busiest starved
    the rest (2 to 3,948 calls a thread, against 286-467 under strace): the program's own behaviour changed
    under the tracer, and its timing-dependent counts with it."""
    exe = tmp_path / "busy_threads"
    subprocess.run(["gcc", "-O1", "-Wall", "-pthread", "-o", str(exe), str(ROOT / "tests" / "helpers" /
                                                                        "busy_threads.c")], check=True)
    o, a, _, _ = record(tmp_path, [str(exe)], "ptrace")
    assert o.returncode == 0 and not a.problems
    per_thread = sorted(sum(n for name, n in image["syscalls"].items() if "sleep" in name or name == "getppid")
                        for p in a.footprint.processes.values() for image in p["images"])
    workers = [n for n in per_thread if n][-16:]
    assert len(workers) == 16 and workers[0] * 4 >= statistics.median(workers), workers   # 1.3-1.4; was 6.7-51

# ---- fault injection ------------------------------------------------------------------------------------

def test_injection_restricted_to_a_path_and_an_fd_class(tmp_path):
    """What strace cannot do: fail only the open of one file, the writes to one file, the reads of a pipe."""
    rules = [{"syscall": ["openat", "open"], "error": "EACCES", "path": "*/secret.txt"},
             {"syscall": "write", "error": "ENOSPC", "path": "*/f.txt", "when": "2+"},
             {"syscall": "read", "error": "EIO", "fd_class": "pipe", "when": 2}]
    d = tmp_path / "ptrace"
    d.mkdir()
    (d / "secret.txt").write_text("secret\n")
    (d / "plain.txt").write_text("plain\n")
    script = "cat secret.txt plain.txt | cat; echo one > f.txt; echo two >> f.txt; echo three >> f.txt"
    o, a, log, out = record(tmp_path, ["/bin/sh", "-c", script], inject=rules)
    err = (d / "stderr.txt").read_text()
    assert out == "plain\n" and (d / "f.txt").read_text() == "one\n"
    assert "secret.txt: Permission denied" in err and "Input/output error" in err
    fp = a.footprint
    assert {n: (s.injected, s.errors[e]) for n, s in fp.syscalls.items() if s.injected
            for e in s.errors if e in ("EACCES", "ENOSPC", "EIO")} == {
        "openat": (1, 1), "write": (2, 2), "read": (1, 1)}
    assert '"secret.txt", 0x0, 0x0) = -1 EACCES (Permission denied) (INJECTED) <' in log


@needs_strace
def test_unrestricted_injection_same_as_strace(tmp_path):
    prog = program(tmp_path, """
        import os
        for i in range(6):
            try:
                os.getsid(0)
                print("ok")
            except OSError as e:
                print(e.strerror)
    """)
    rules = [{"syscall": "getsid", "error": "EPERM", "when": "2+2"}]
    got = {b: record(tmp_path, [PY, prog], b, inject=rules) for b in ("strace", "ptrace")}
    assert got["ptrace"][3] == got["strace"][3] == "ok\nOperation not permitted\n" * 3
    for b, (o, a, _, _) in got.items():
        s = a.footprint.syscalls["getsid"]
        assert (s.calls, s.injected, dict(s.errors)) == (6, 3, {"EPERM": 3}), b


def test_delay_holds_only_the_delayed_tracee(tmp_path):
    rules = [{"syscall": "openat", "delay_enter": "800ms", "path": "/etc/hostname"}]
    start = time.monotonic()
    o, a, log, _ = record(tmp_path, ["/bin/sh", "-c", "cat /etc/hostname & cat /etc/hostname & cat /etc/hostname & "
                                                      "wait"], inject=rules)
    took = time.monotonic() - start
    delayed = [line for line in log.splitlines() if "openat(" in line and "/etc/hostname" in line]
    assert len(delayed) == 3 and all(line.split(" (DELAYED) <")[1] >= "0.8" for line in delayed)
    assert o.returncode == 0 and took < 2.2                         # three delays side by side, not one after another


def test_bad_injection_rule_fails_before_running(tmp_path):
    from profiler.inject import Rule
    with pytest.raises(KprofError, match="unknown errno"):
        record_ptrace(["/bin/true"], str(tmp_path / "t.log"), cwd=str(tmp_path), env=dict(os.environ), timeout=5,
                      stdout_path=str(tmp_path / "o"), stderr_path=str(tmp_path / "e"),
                      inject=[Rule(["read"], error="ENOTANERRNO")])
    assert not (tmp_path / "t.log").exists()


# ---- ptrace not permitted ---------------------------------------------------------------------------------

def test_ptrace_not_permitted_names_the_setting(tmp_path):
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from profiler.errors import KprofError
        from profiler.record.ptrace import record_ptrace
        d = {str(tmp_path)!r}
        try:
            record_ptrace(["/bin/true"], d + "/trace.log", cwd=d, env=dict(os.environ), timeout=20,
                          stdout_path=d + "/out", stderr_path=d + "/err")
        except KprofError as e:
            print(e)
            sys.exit(2)
    """)
    p = subprocess.run([PY, str(ROOT / "tests" / "helpers" / "deny_ptrace.py"), PY, "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    for words in ("ptrace is not permitted", "seccomp", "kernel.yama.ptrace_scope", "CAP_SYS_PTRACE"):
        assert words in p.stdout, (words, p.stdout)
    assert not descendants(os.getpid())


def test_missing_command_is_a_clear_error(tmp_path):
    with pytest.raises(KprofError, match="not found on the command's PATH"):
        record(tmp_path, ["kprof-no-such-command"])
