"""`kprof ftrace record` under faults: a full disk, SIGHUP, a daemon started by the command, two recordings
at once (and an instance of a kprof in another pid namespace), a device or a link as -o, tracefs unreadable
to a non-root user. Each time: one message, the command's tree gone, the tracing state as before (this
test's own snapshot, file by file)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .conftest import ROOT, needs_root
from .test_ftrace_record import assert_same, meta_of, start, tracefs, wait_for_data  # noqa: F401
from .test_ftrace_record import snapshot as full_snapshot
from .test_outputs import small_tmpfs  # noqa: F401
from .test_signals import identity, start_daemon

pytestmark = needs_root

def snapshot() -> dict:
    """The tracing state without kprof instances: other jobs on this host may be recording at the same time
    (each test checks that its own kprof's instance is gone with ``no_instance_of``)."""
    state = full_snapshot()
    state["instances/"] = [i for i in state["instances/"] if not re.fullmatch(r"kprof-\d+(-\d+)?", i)]
    return state


def no_instance_of(pid: int) -> bool:
    return not [i for i in os.listdir(os.path.join("/sys/kernel/tracing", "instances"))
                if i.startswith(f"kprof-{pid}-") or i == f"kprof-{pid}"]


BUSY = "import os, sys\nopen(sys.argv[1], 'w').write(str(os.getpid()))\nwhile True:\n    os.stat('/')\n"


def gone(pidfile) -> bool:
    pid = int(pidfile.read_text())
    return identity(pid) is None


def test_full_disk_stops_restores_and_says_so(tracefs, tmp_path, small_tmpfs):
    before = snapshot()
    pidfile = tmp_path / "cmd.pid"
    proc = start("ftrace", "record", "-q", "-o", small_tmpfs / "t.txt", "--", sys.executable, "-c", BUSY, pidfile)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "no space left on the device" in err, err
    assert_same(before, snapshot())
    assert no_instance_of(proc.pid)
    assert gone(pidfile), "the command was stopped"
    assert not [p for p in os.listdir(small_tmpfs) if p.endswith(".tmp")]


def test_sighup_is_handled_like_ctrl_c(tracefs, tmp_path):
    before = snapshot()
    trace = tmp_path / "hup.txt"
    ready = tmp_path / "ready"
    script = ("import os, signal, sys, time\nsignal.signal(signal.SIGINT, signal.SIG_DFL)\n"  # its Ctrl-C: no traceback
              "open(sys.argv[1], 'w').close()\nwhile True:\n    os.stat('/')\n    time.sleep(0.005)\n")
    proc = start("ftrace", "record", "-q", "-o", trace, "--", sys.executable, "-c", script, ready)
    wait_for_data(trace, proc)
    while not ready.exists():  # the command is past its start-up (a signal there is its own traceback)
        assert proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 129, err
    assert "Traceback" not in err
    assert_same(before, snapshot())
    assert no_instance_of(proc.pid)
    meta = meta_of(trace)
    assert meta["interrupted"] and meta["signal"] == signal.SIGHUP and meta["tracing_state_restored"]
    assert identity(meta["command_pid"]) is None


def test_daemon_started_by_the_command_does_not_survive(tracefs, tmp_path):
    pidfile = tmp_path / "daemon.pid"
    p = start("ftrace", "record", "-q", "-o", tmp_path / "d.txt", "--", "sh", "-c", start_daemon(pidfile, "4718.5"))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    daemon = identity(int(pidfile.read_text()))
    assert daemon is None or b"4718.5" not in b" ".join(daemon[2]), daemon


def test_two_recordings_at_once_and_a_foreign_namespace_instance(tracefs, tmp_path):
    """Each sees the other's instance: neither may call the state NOT restored. An instance named by a kprof
    in another pid namespace is not taken for stale (its pid means nothing here) and left alone."""
    foreign = os.path.join(tracefs, "instances", "kprof-4194001-1")
    assert not os.path.exists("/proc/4194001")
    os.mkdir(foreign)
    try:
        before = snapshot()
        # the recordings overlap for sure: each command starts (inside its recording) and waits for the other;
        # the first then ends while the second still records
        script = ("import os, sys, time\nme, other, linger = sys.argv[1:]\nopen(me, 'w').close()\n"
                  "while not os.path.exists(other):\n    time.sleep(0.01)\ntime.sleep(float(linger))\n")
        procs = [start("ftrace", "record", "-q", "-o", tmp_path / f"{i}.txt", "--", sys.executable, "-c", script,
                       tmp_path / f"ready-{i}", tmp_path / f"ready-{1 - i}", linger)
                 for i, linger in enumerate(("0.1", "2"))]
        results = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, results):
            assert p.returncode == 0, err
            assert "NOT restored" not in err and "kprof-4194001-1" not in err, err
        for i in range(2):
            assert meta_of(tmp_path / f"{i}.txt")["tracing_state_restored"]
        assert os.path.isdir(foreign)
        assert_same(before, snapshot())
        assert all(no_instance_of(p.pid) for p in procs)
    finally:
        os.rmdir(foreign)


def test_output_must_be_a_regular_file(tracefs, tmp_path):
    before = set(os.listdir("/dev"))
    link = tmp_path / "link.txt"
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    link.symlink_to(victim)
    for out, words in (("/dev/full", "not a regular file"), (link, "a symbolic link"), (tmp_path, "a directory")):
        p = start("ftrace", "record", "-q", "-o", out, "--", "true")
        _, err = p.communicate(timeout=60)
        assert p.returncode == 2 and words in err and "Traceback" not in err, err
    assert set(os.listdir("/dev")) == before, "no side files in /dev"
    assert victim.read_text() == "keep\n"


def test_unreadable_tracefs_is_named_as_such(tracefs):
    """As a non-root user: tracefs is mounted, only not readable; the message says that, not 'not mounted'."""
    work = tempfile.mkdtemp(prefix="kprof-test-")
    try:
        os.chmod(work, 0o777)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", sys.executable,
                            "-m", "profiler", "ftrace", "record", "-q", "-o", os.path.join(work, "t.txt"), "--",
                            "true"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert f"tracefs is mounted at {tracefs} but this user (uid 65534) cannot read it" in p.stderr, p.stderr
    finally:
        shutil.rmtree(work)


def test_links_at_side_file_names_are_replaced_not_followed(tracefs, tmp_path):
    """Another user's links at FILE.meta.json and at the old temp name FILE.meta.json.tmp (fs.protected_symlinks=0):
    the root-owned files they point to stay as they were."""
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    trace = tmp_path / "x.txt"
    for name in ("x.txt.meta.json", "x.txt.meta.json.tmp", "x.txt.modules-before", "x.txt.config"):
        (tmp_path / name).symlink_to(victim)
    p = start("ftrace", "record", "-q", "-o", trace, "--", "true")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert victim.read_text() == "root's file\n"
    assert meta_of(trace)["tracing_state_restored"] and not (tmp_path / "x.txt.meta.json").is_symlink()
