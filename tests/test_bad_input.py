"""Bad input and bad runs: a clear message, exit 2 (or 1 for a command that misbehaved), no traceback,
nothing lost (raw trace and partial footprint kept), nothing left running."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import ROOT, kprof, needs_root, needs_strace

HELPERS = ROOT / "tests" / "helpers"


def scenario(tmp_path, name, command, **extra):
    lines = [f"name: {name}", "description: test scenario", f"command: {json.dumps(command)}"]
    lines += [f"{k}: {json.dumps(v)}" for k, v in extra.items()]
    p = tmp_path / f"{name}.yaml"
    p.write_text("\n".join(lines) + "\n")
    return p


def no_traceback(p):
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr


def leftover(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def test_command_not_on_path(tmp_path):
    p = kprof("run", scenario(tmp_path, "nocmd", ["kprof-no-such-command", "x"]), "--out", tmp_path / "b",
              check=2)
    no_traceback(p)
    assert "'kprof-no-such-command'" in p.stderr and "not found on PATH" in p.stderr


def test_required_tool_missing(tmp_path):
    """Refused before anything runs, and no result directory is left (kprof-results/ in the working directory,
    where a bundle goes by default)."""
    sc = scenario(tmp_path, "noreq", ["/bin/true"], requires=["kprof-missing-tool"])
    (tmp_path / "cwd").mkdir()
    for cmd in (["run", sc], ["run", sc, sc], ["baseline", "save", sc, "--dir", tmp_path / "b"]):
        p = kprof(*cmd, check=2, cwd=tmp_path / "cwd")
        no_traceback(p)
        assert "kprof-missing-tool" in p.stderr
        assert not list((tmp_path / "cwd").glob("kprof-results/*")), cmd


def test_strace_missing(tmp_path):
    p = kprof("run", scenario(tmp_path, "nostrace", ["/bin/true"], network="host"), "--out", tmp_path / "b",
              check=2, env={"PATH": str(tmp_path)})
    no_traceback(p)
    assert "strace is not installed" in p.stderr and "apt-get install strace" in p.stderr


@needs_strace
def test_ptrace_not_permitted(tmp_path):
    """A real refusal: kprof runs under a seccomp filter that fails every ptrace(2) with EPERM."""
    sc = scenario(tmp_path, "noptrace", ["/bin/true"], network="host")
    p = subprocess.run([sys.executable, str(HELPERS / "deny_ptrace.py"), sys.executable, "-m", "profiler", "run",
                        str(sc), "--out", str(tmp_path / "b")], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert p.returncode == 2, p.stderr
    no_traceback(p)
    assert "ptrace is not permitted" in p.stderr and "ptrace_scope" in p.stderr


@needs_strace
@needs_root
def test_segfaulting_command_is_reported_and_analysed(tmp_path):
    bundle = tmp_path / "b"
    p = kprof("run", scenario(tmp_path, "segv", "kill -SEGV $$", shell=True), "--out", bundle, check=2)
    no_traceback(p)
    assert "killed by SIGSEGV" in p.stdout
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["runs"][0]["exit"]["signal"] == "SIGSEGV"
    fp = json.loads((bundle / "footprint.json").read_text())
    assert fp["syscalls"]["kill"]["calls"] >= 1


@needs_strace
@needs_root
def test_killed_command(tmp_path):
    bundle = tmp_path / "b"
    p = kprof("run", scenario(tmp_path, "killed", "kill -KILL $$", shell=True), "--out", bundle, check=2)
    no_traceback(p)
    assert "killed by SIGKILL" in p.stdout


@needs_strace
@needs_root
def test_hang_past_timeout_kills_whole_tree_and_keeps_partial_trace(tmp_path):
    marker = "4711.25"  # a sleep length no other process uses
    cmd = f"sleep {marker} & (sleep {marker} &) ; sleep {marker}"
    bundle = tmp_path / "b"
    p = kprof("run", scenario(tmp_path, "hang", cmd, shell=True, timeout=1), "--out", bundle, check=2)
    no_traceback(p)
    assert "timed out after 1 s" in p.stdout
    assert not leftover(marker), leftover(marker)
    fp = json.loads((bundle / "footprint.json").read_text())
    assert fp["programs"], "the partial trace was analysed"
    assert fp["exit"] == {"signal": "SIGKILL", "core_dumped": False}


@needs_strace
@needs_root
@pytest.mark.parametrize("to_group", [True, False], ids=["terminal-ctrl-c", "sigint-to-kprof-only"])
def test_ctrl_c_keeps_partial_results_and_leaves_nothing_running(tmp_path, to_group):
    """Ctrl-C at a terminal signals the whole foreground group; `kill -INT` only kprof. Both must work."""
    # one marker per case: a parallel suite can run the two cases at once, and each looks for leftovers by it
    marker = "4712.25" if to_group else "4712.75"
    bundle = tmp_path / "b"
    sc = scenario(tmp_path, "interrupted", f"sleep {marker}", shell=True, timeout=60)
    proc = subprocess.Popen([sys.executable, "-m", "profiler", "run", str(sc), "--out", str(bundle)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not leftover(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert leftover(marker), "the command never started"
        time.sleep(0.3)
        if to_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not leftover(marker)
    assert "interrupted" in out
    assert (bundle / "trace.log").stat().st_size > 0
    assert json.loads((bundle / "footprint.json").read_text())["syscalls"]


@needs_strace
@needs_root
def test_network_none_means_loopback_only(tmp_path):
    code = ("import socket; print(sorted(n for _, n in socket.if_nameindex())); "
            "print(open('/etc/resolv.conf').read().split('nameserver')[1:])")
    host_resolv = open("/etc/resolv.conf").read()
    bundle = tmp_path / "b"
    kprof("run", scenario(tmp_path, "netns", [sys.executable, "-c", code]), "--out", bundle, check=0)
    interfaces, nameservers = (bundle / "stdout.txt").read_text().splitlines()
    assert interfaces == "['lo']"
    assert nameservers == "[' 127.0.0.1\\n']", "DNS inside the scenario names loopback only"
    assert open("/etc/resolv.conf").read() == host_resolv, "the host's resolv.conf is untouched"
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["isolation"].startswith("network namespace")


@pytest.mark.parametrize("content,expected", [
    (b"", "no strace events found"),
    (b"Lorem ipsum dolor sit amet\nconsectetur adipiscing\n", "no strace events found"),
    (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "binary file"),
    (b"# tracer: nop\n#\n  <idle>-0  [000] d..2. 1.0: sched_switch: prev_comm=swapper\n", "no strace events found"),
])
def test_analyze_rejects_empty_foreign_and_binary_files(tmp_path, content, expected):
    log = tmp_path / "x.log"
    log.write_bytes(content)
    p = kprof("analyze", log, check=2)
    no_traceback(p)
    assert expected in p.stderr and "strace -f -yy" in p.stderr or expected == "binary file" and expected in p.stderr


def test_analyze_truncated_log_keeps_what_it_has(tmp_path):
    log = tmp_path / "cut.log"
    log.write_text('1 1.0 openat(-100</>, "/etc/passwd", 0x80000) = 3</etc/passwd> <0.1>\n'
                   '1 1.1 read(3</etc/passwd>, "root:x:0:0:root:/root:/bin/bash\\n"..., 4096) = 1200 <0.1>\n'
                   '1 1.2 read(3</etc/pas')
    p = kprof("analyze", log, "--format", "json", check=0)
    report = json.loads(p.stdout)
    assert any("unparsed line" in w for w in report["warnings"])
    syscalls = next(s for s in report["sections"] if s["title"] == "System calls")
    assert {r[0]: r[2] for r in syscalls["rows"]} == {"openat": 1, "read": 1}


def test_analyze_missing_file_and_bad_arch(tmp_path):
    no_traceback(kprof("analyze", tmp_path / "absent.log", check=2))
    p = kprof("analyze", tmp_path / "absent.log", "--arch", "vax", check=2)
    assert "vax" in p.stderr


def test_a_log_written_whole_between_two_looks_is_still_read(tmp_path):
    """A short command under load: strace creates the log, writes all of it and exits between the follower's
    look for the file and its look at strace (a run of `kill -SEGV $$` in a loaded suite was reported as "no
    trace was recorded" with the whole trace on disk). The follower still reads it."""
    from profiler.record.core import TraceOutcome, follow_log
    log = tmp_path / "trace.log"

    class Tracer:                       # the tracer: it has exited by the time it is asked, and left its log
        pid = os.getpid()

        def poll(self):
            log.write_text("1 exit_group(0) = ?\n1 +++ exited with 0 +++\n")
            return 0
    lines = []
    follow_log(Tracer(), str(log), time.monotonic() + 10, TraceOutcome(0, 0.0), [], lines.extend)
    assert [ln for ln in lines if ln] == ["1 exit_group(0) = ?", "1 +++ exited with 0 +++"]
