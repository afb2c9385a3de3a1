"""SIGTERM and SIGHUP of `kprof run` (a cancelled CI job, `timeout`, a closed terminal) are handled like Ctrl-C,
and prepare steps run inside the same clean-up: the process tree kprof started is gone afterwards (tracer
included), the partial trace is kept and analysed, the temp files and workdir are removed, exit 128+N.

Processes are found by the tree the test's own kprof started (pids and start times from /proc), never by a
machine-wide name, so two jobs on one host cannot see each other. kprof's temp files go to a TMPDIR of the
test's own, compared before and after."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from profiler.record.core import descendants

from .conftest import ROOT, host_mounts, kprof, needs_root, needs_strace
from .test_bad_input import no_traceback, scenario


def identity(pid: int) -> tuple | None:
    """(pid, start time, argv) while the process lives; None once it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    return None if fields[0] == b"Z" else (pid, int(fields[19]), argv)


def alive(processes: list[tuple]) -> list[tuple]:
    return [p for p in processes if identity(p[0]) == p]


def tree(pid: int) -> list[tuple]:
    return [i for i in map(identity, descendants(pid)) if i is not None]


def start_daemon(pidfile, marker: str) -> str:
    """sh that starts a daemon in its own session (setsid), its pid in ``pidfile``, and returns once it runs."""
    return (f"setsid sh -c 'echo $$ > {pidfile}; exec sleep {marker}' >/dev/null 2>&1 & "
            f"while [ ! -s {pidfile} ]; do sleep 0.01; done")


def kprof_mounts(tmp_path) -> list[str]:
    return [line for line in host_mounts(tmp_path) if str(tmp_path) in line or "kprof" in line]


def start_kprof(tmp_path, *args):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "profiler", *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "TMPDIR": str(tmpdir)})


def wait_for(proc, marker: str, timeout: float = 30) -> list[tuple]:
    """kprof's process tree once a `sleep MARKER` runs in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        found = tree(proc.pid)
        if any(argv[0].endswith(b"sleep") and marker.encode() in argv for _, _, argv in found):
            return found
        time.sleep(0.05)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"{marker} never ran under kprof (exit {proc.returncode}):\n{err[-2000:]}")


def finish(proc, sig, to_group):
    try:
        if to_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@needs_strace
@needs_root
@pytest.mark.parametrize("sig,backend,to_group", [
    (signal.SIGTERM, "strace", False), (signal.SIGHUP, "strace", True), (signal.SIGTERM, "ptrace", True),
    (signal.SIGHUP, "ptrace", False), (signal.SIGTERM, "bpf", False)],
    ids=["term-strace", "hup-group-strace", "term-group-ptrace", "hup-ptrace", "term-bpf"])
def test_term_and_hup_are_handled_like_ctrl_c(tmp_path, sig, backend, to_group):
    marker = f"4714.{sig}{len(backend)}"
    bundle = tmp_path / "b"
    sc = scenario(tmp_path, "signalled", f"sleep {marker} & sleep {marker}", shell=True, timeout=60,
                  backend=backend)
    mounts = kprof_mounts(tmp_path)
    proc = start_kprof(tmp_path, "run", sc, "--out", bundle)
    before = wait_for(proc, marker)
    assert any(b"sleep" in argv[0] for _, _, argv in before)
    tracer = [p for p in before if (b"strace" in p[2][0]) or backend == "ptrace"
              or (backend == "bpf" and any(b"bpftrace" in a for a in p[2]))]
    assert tracer, "the tracer is part of kprof's tree"
    time.sleep(0.3)
    out, err = finish(proc, sig, to_group)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err + out
    assert alive(before) == [], "kprof's whole tree (tracer included) is gone"
    assert list((tmp_path / "tmpdir").iterdir()) == [], "workdir and resolv.conf temp file removed"
    assert kprof_mounts(tmp_path) == mounts
    name = signal.Signals(sig).name
    assert f"interrupted ({name})" in out
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["runs"][0]["interrupted"] and not meta["runs"][0]["ok"]
    fp = json.loads((bundle / "footprint.json").read_text())
    assert fp["programs"], "the partial trace was analysed"


@needs_strace
@needs_root
def test_daemon_started_by_a_prepare_step_does_not_outlive_kprof(tmp_path):
    marker = "4715.5"
    pidfile = tmp_path / "daemon.pid"
    sc = scenario(tmp_path, "prepdaemon", "true", shell=True, network="host",
                  prepare=[start_daemon(pidfile, marker)])
    kprof("run", sc, "--out", tmp_path / "b", check=0, env={"TMPDIR": str(tmp_path)})
    daemon = identity(int(pidfile.read_text()))
    assert daemon is None or marker.encode() not in daemon[2][1], f"the prepare step's daemon survived: {daemon}"


@needs_strace
@needs_root
def test_prepare_step_timeout_is_a_message(tmp_path):
    sc = scenario(tmp_path, "preptimeout", "true", shell=True, timeout=1, prepare=["sleep 4716.5"])
    p = kprof("run", sc, "--out", tmp_path / "b", check=2, env={"TMPDIR": str(tmp_path)})
    no_traceback(p)
    assert "prepare step timed out after 1 s" in p.stderr


@needs_strace
@needs_root
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_a_prepare_step(tmp_path, sig):
    marker = f"4717.{sig}"
    tmpdir = tmp_path / "tmpdir"
    sc = scenario(tmp_path, "prepsignal", "true", shell=True, timeout=60,
                  prepare=[f"(setsid sleep {marker} >/dev/null 2>&1 &); sleep {marker}"])
    proc = start_kprof(tmp_path, "run", sc, "--out", tmp_path / "b")
    before = wait_for(proc, marker)
    time.sleep(0.2)
    before = tree(proc.pid)
    out, err = finish(proc, sig, to_group=False)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and f"kprof: interrupted ({'Ctrl-C' if sig == signal.SIGINT else 'SIGTERM'})" in err
    assert alive(before) == []
    assert list(tmpdir.iterdir()) == []


@needs_strace
@needs_root
@pytest.mark.parametrize("backend", ["strace", "ptrace", "bpf"])
def test_daemonising_command_stops_when_its_root_process_exits(tmp_path, backend):
    """stop: root (the default): the run ends with the command's own process; the daemon it left is named
    and killed, and the run is not a timeout. stop: tree waits for the daemon (here: until the timeout)."""
    marker = f"4719.{len(backend)}"
    pidfile = tmp_path / "daemon.pid"
    sc = scenario(tmp_path, "daemonises", start_daemon(pidfile, marker), shell=True, timeout=60, backend=backend)
    bundle = tmp_path / "b"
    p = kprof("run", sc, "--out", bundle, check=0, env={"TMPDIR": str(tmp_path)})
    assert "exited leaving 1 process(es) running" in p.stdout and marker in p.stdout
    run = json.loads((bundle / "meta.json").read_text())["runs"][0]
    assert not run["timed_out"] and run["ok"] and any(marker in x for x in run["left_running"])
    daemon = identity(int(pidfile.read_text()))
    assert daemon is None or marker.encode() not in b" ".join(daemon[2]), daemon
    pidfile.unlink()
    tree_sc = scenario(tmp_path, "waits", start_daemon(pidfile, marker), shell=True, timeout=1, backend=backend,
                       stop="tree")
    kprof("run", tree_sc, "--out", tmp_path / "t", check=2, env={"TMPDIR": str(tmp_path)})
    run = json.loads((tmp_path / "t" / "meta.json").read_text())["runs"][0]
    assert run["timed_out"] and not run["left_running"]


@needs_strace
@needs_root
def test_double_ctrl_c_keeps_meta_and_reports(tmp_path):
    """A second Ctrl-C (and a SIGTERM after it) while kprof stops is only noted: meta.json and the reports
    are written whole."""
    marker = "4720.5"
    bundle = tmp_path / "b"
    sc = scenario(tmp_path, "twice", f"sleep {marker}", shell=True, timeout=60)
    proc = start_kprof(tmp_path, "run", sc, "--out", bundle)
    wait_for(proc, marker)
    before = tree(proc.pid)
    for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
        proc.send_signal(sig)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err + out and alive(before) == []
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["runs"][0]["interrupted"]
    for name in ("report.txt", "report.md", "report.html", "report.json", "footprint.json"):
        assert (bundle / name).stat().st_size > 0, name
