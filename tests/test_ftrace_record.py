"""Real recordings on this machine's tracefs (root): around an oref0 command, then analysed; the tracing
state afterwards equals the state before, checked file by file by this test's own snapshot — after a
normal run, a SIGINT in the middle, a failing command, a bad option and a whole-system recording."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from profiler.record.tracefs import _rmdir_instance

from .conftest import ROOT, needs_oref0, needs_root, needs_strace
from .test_ftrace_parse import _CLI, kp

pytestmark = needs_root

TRACEFS = "/sys/kernel/tracing"
SKIP = {"trace", "trace_pipe", "trace_marker", "trace_marker_raw", "free_buffer", "snapshot", "README",
        "available_filter_functions", "available_filter_functions_addrs", "touched_functions", "enabled_functions",
        "printk_formats", "saved_cmdlines", "saved_tgids", "dyn_ftrace_total_info", "per_cpu", "trace_stat",
        "uprobe_profile", "kprobe_profile", "stack_trace", "hwlat_detector", "osnoise", "rv"}


@pytest.fixture(scope="module")
def tracefs(shared_mount):
    """tracefs mounted while the module runs (conftest.shared_mount: unmounted again by the last worker that
    needs it, if the suite mounted it)."""
    with shared_mount("tracefs", TRACEFS):
        yield TRACEFS


_PID_NS = os.stat("/proc/self/ns/pid").st_ino


def others_instance(name: str) -> bool:
    """A kprof instance this test cannot count as left over: a parallel suite's other tests record meanwhile
    (test_workload beside test_ftrace_*), so an instance whose kprof is still running in this pid namespace
    (its pid is alive) is theirs, and one named for another pid namespace is another test's (made as a killed
    kprof's, or by a kprof it runs in a namespace of its own: each such test checks its own). An instance of this
    namespace whose kprof has ended stays in the snapshot, unless it is gone by now (a kprof removes its
    instance, then exits: between listing the instances and looking for its pid, both can happen)."""
    m = re.fullmatch(r"kprof-(\d+)(?:-(\d+))?", name)
    return bool(m) and (m.group(2) not in (None, str(_PID_NS)) or os.path.exists(f"/proc/{m.group(1)}")
                        or not os.path.isdir(os.path.join(TRACEFS, "instances", name)))


def snapshot(root=TRACEFS) -> dict:
    """Every setting file of the tracing state, independent of kprof's own check: top-level files, options,
    instance names (less those of other tests' recordings: ``others_instance``), and every event's enable,
    filter and trigger."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == "instances":
            state["instances/"] = sorted(d for d in dirnames if not others_instance(d))
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if d not in SKIP]
        for f in filenames:
            if f in SKIP or (rel.startswith("events") and f not in ("enable", "filter", "trigger")):
                continue
            p = os.path.join(dirpath, f)
            try:
                with open(p, errors="replace") as fh:
                    state[os.path.join(rel, f)] = fh.read()
            except OSError as e:
                state[os.path.join(rel, f)] = f"<{e.errno}>"
    return state


def assert_same(before: dict, after: dict):
    changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert not changed, f"tracing state changed: {dict(list(changed.items())[:10])}"
    assert len(before) > 1000, "the snapshot should cover every event's settings"


def meta_of(trace: Path) -> dict:
    return json.loads(Path(f"{trace}.meta.json").read_text())


def start(*args, cwd=None, env=None):
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", _CLI, *map(str, args)], cwd=cwd or ROOT, env=e,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_data(path: Path, proc, min_bytes=2000, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size >= min_bytes:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError(f"{path}: no trace data after {timeout} s")


# ----------------------------------------------------------------------------- around an oref0 command

@needs_oref0
@needs_strace
def test_record_oref0_command_and_analyse(tracefs, tmp_path, request):
    """kprof ftrace record around determine-basal's command, then ftrace analyze: the node process's
    syscalls have the right names — checked against strace's own record of the same command."""
    from profiler import runner
    from profiler.scenario import load_scenario

    sc = load_scenario(ROOT / "scenarios" / "determine-basal.yaml")
    workdir = runner.make_workdir(sc)
    request.addfinalizer(lambda: shutil.rmtree(workdir, ignore_errors=True))   # a temp dir of kprof's: removed
    env = runner.command_env(sc, workdir)
    trace = tmp_path / "db.txt"
    before = snapshot()
    with open(tmp_path / "out.txt", "w") as out:    # stdio as kprof run gives it: stdin /dev/null, stdout a file
        p = subprocess.run([sys.executable, "-c", _CLI, "ftrace", "record", "-q", "-o", trace, "--", *sc.command],
                           cwd=workdir, env={**env, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert_same(before, snapshot())
    assert "Setting neutral temp basal of 1U/hr" in (tmp_path / "out.txt").read_text()
    meta = meta_of(trace)
    assert meta["complete"] and meta["tracing_state_restored"] and meta["exit"] == {"exit": 0}
    assert meta["arch"] == "x86_64" or meta["arch"] == os.uname().machine
    assert meta["kernel_release"] == os.uname().release and meta["kernel_config"]["source"]
    assert not meta["lost_events"]

    a = kp("ftrace", "analyze", trace, "--footprint", tmp_path / "fp.json", "-f", "json", check=0)  # arch from meta
    report = json.loads(a.stdout)
    fp = json.loads((tmp_path / "fp.json").read_text())
    assert fp["root_pid"] == meta["command_pid"] and fp["exit"] == {"exit": 0}
    names = set(fp["syscalls"])
    assert not [n for n in names if n.startswith("syscall_")]
    node = Counter()
    for proc in fp["processes"]:
        for image in proc["images"]:
            if image["exe"] and image["exe"].endswith("node"):
                node.update(image["syscalls"])
    assert node["clone3"] + node.get("clone", 0) >= 1 and node["epoll_ctl"] >= 1 and node["statx"] >= 100
    tasks = {r[0] for s in report["sections"] if s["title"].startswith("Tasks") for r in s["rows"]}
    assert any(t.startswith("node-") for t in tasks)

    # the same command under strace (kprof run): every syscall strace saw is there under the same name, and
    # the calls node makes a fixed number of times have the same counts
    kp("run", ROOT / "scenarios" / "determine-basal.yaml", "--out", tmp_path / "strace", "-q", check=0)
    st = json.loads((tmp_path / "strace" / "footprint.json").read_text())["syscalls"]
    assert set(st) <= names, set(st) - names
    for n in ("statx", "capget", "getuid", "geteuid", "getgid", "getegid", "rt_sigaction", "getpid", "uname",
              "sysinfo", "readlink", "clone3", "exit_group"):
        if n in st:
            assert fp["syscalls"][n]["calls"] == st[n]["calls"], (n, fp["syscalls"][n]["calls"], st[n]["calls"])


def test_sigint_in_the_middle_keeps_the_trace_and_restores_state(tracefs, tmp_path):
    trace = tmp_path / "int.txt"
    before = snapshot()
    script = "import os, time\nwhile True:\n    os.stat('/')\n    time.sleep(0.005)\n"
    proc = start("ftrace", "record", "-q", "-o", trace, "--", sys.executable, "-c", script)
    wait_for_data(trace, proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert_same(before, snapshot())
    meta = meta_of(trace)
    assert meta["interrupted"] and meta["complete"] and meta["tracing_state_restored"]
    assert meta["exit"] and "signal" in meta["exit"]                       # the command was stopped
    assert not os.path.exists(f"/proc/{meta['command_pid']}")                # and nothing is left running
    a = kp("ftrace", "analyze", trace, "--footprint", tmp_path / "fp.json", check=0)
    calls = json.loads((tmp_path / "fp.json").read_text())["syscalls"]
    assert calls["newfstatat"]["calls"] >= 10                  # os.stat: the command's own work was captured
    assert {"clock_nanosleep", "select", "pselect6"} & set(calls)   # time.sleep
    assert "interrupted" in a.stdout


def test_failing_command(tracefs, tmp_path):
    trace = tmp_path / "fail.txt"
    before = snapshot()
    p = kp("ftrace", "record", "-q", "-o", trace, "--", sys.executable, "-c", "import sys; sys.exit(3)", check=1)
    assert_same(before, snapshot())
    meta = meta_of(trace)
    assert meta["exit"] == {"exit": 3} and meta["tracing_state_restored"]
    assert "command exit 3" in p.stderr
    kp("ftrace", "analyze", trace, "--footprint", tmp_path / "fp.json", check=0)
    fp = json.loads((tmp_path / "fp.json").read_text())
    assert fp["exit"] == {"exit": 3} and fp["syscalls"]["exit_group"]["unfinished"] == 1


def test_errors_before_and_after_the_instance_exists_leave_no_trace(tracefs, tmp_path):
    before = snapshot()
    p = kp("ftrace", "record", "-q", "-o", tmp_path / "x.txt", "--", "kprof-no-such-command", check=2)
    assert "command not found" in p.stderr and not (tmp_path / "x.txt").exists()
    p = kp("ftrace", "record", "-q", "-o", tmp_path / "y.txt", "--events", "raw_syscalls,nosuch:event",
           "--", "true", check=2)
    assert "no event 'nosuch:event'" in p.stderr
    p = kp("ftrace", "record", "-q", "-o", tmp_path / "z.txt", "--duration", "soon", check=2)
    assert "not a duration" in p.stderr
    assert_same(before, snapshot())
    assert not list(tmp_path.iterdir())         # refused before the recording began: no trace, no side files
    # an existing trace and its side files, and a typo in --events or a buffer too big: nothing of them is lost
    # (the trace was truncated and its meta.json replaced by one saying "complete")
    keep = tmp_path / "keep.txt"
    keep.write_text("a trace\n")
    Path(f"{keep}.meta.json").write_text('{"kept": true}\n')
    for bad in (["--events", "bogus"], ["--buffer-kb", "99999999999"]):
        kp("ftrace", "record", "-q", "-o", keep, *bad, "--", "true", check=2)
        assert keep.read_text() == "a trace\n" and meta_of(keep) == {"kept": True}, bad
    assert_same(before, snapshot())


# ----------------------------------------------------------------------------- the whole system

def test_whole_system_recording(tracefs, tmp_path):
    trace = tmp_path / "all.txt"
    before = snapshot()
    busy = subprocess.Popen([sys.executable, "-c", "import os, time\nfor _ in range(400):\n os.getppid()\n"
                             " time.sleep(0.005)"])
    kp("ftrace", "record", "-q", "--duration", "1.5", "--events", "all", "--discard-tail", "0.2s",
           "--buffer-kb", "8192", "-o", trace, check=0)
    busy.wait()
    assert_same(before, snapshot())
    meta = meta_of(trace)
    assert meta["command"] is None and meta["tracing_state_restored"] and meta["discard_tail_s"] == 0.2
    a = kp("ftrace", "analyze", trace, "-f", "json", "--limit", "1000", check=0)
    report = json.loads(a.stdout)
    groups = {r[0] for s in report["sections"] if s["title"].startswith("Event groups") for r in s["rows"]}
    assert {"sys_*", "sched_*"} <= groups
    tasks = {r[0]: r for s in report["sections"] if s["title"].startswith("Tasks") for r in s["rows"]}
    # kprof's own syscalls are left out (set_event_notrace_pid); switches to and from it stay in the trace
    assert not [r for t, r in tasks.items() if t.endswith(f"-{meta['kprof_pid']}") and r[2]]
    assert any(t.endswith(f"-{busy.pid}") and r[2] for t, r in tasks.items())
    assert "discard-tail" in a.stdout



def test_whole_system_leaves_out_kprofs_threads_and_children(tracefs, tmp_path):
    """A whole-system recording leaves out all of kprof's own tasks, not only its main thread: a thread it
    already runs (a fake Nightscout's server), one it starts while recording (a request thread: event-fork) and
    a child process (a pump emulator) are not in the trace (they were: 244, 244 and 420 lines); the command is."""
    script = (f"import os, sys, threading, time, subprocess\nsys.path.insert(0, {str(ROOT)!r})\n"
              f"TRACE = {str(tmp_path / 'w.txt')!r}\n"
              "from profiler.record.ftrace import record_ftrace\n"
              "def spin():\n    for _ in range(100):\n        os.getppid(); time.sleep(0.005)\n"
              "early = threading.Thread(target=spin); early.start()\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import os, time\\nfor _ in range(100):\\n"
              " os.getppid(); time.sleep(0.005)'])\n"
              "late = []\n"
              f"def start_late():\n    while not os.path.exists(TRACE) or not os.path.getsize(TRACE):\n"
              "        time.sleep(0.01)\n"       # the recording has begun: a thread new to it
              "    t = threading.Thread(target=spin); t.start()\n"
              "    late.append(t.native_id); t.join()\n"
              "starter = threading.Thread(target=start_late); starter.start()\n"
              "rec = record_ftrace(TRACE, command=['sh', '-c', 'sleep 1.5; exec cat /etc/hostname >/dev/null'],"
              " whole_system=True, events='raw_syscalls')\n"
              "early.join(); starter.join(); child.wait()\n"
              "print(early.native_id, late[0], child.pid, rec.meta['command_pid'])\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    early, late, child, command = map(int, p.stdout.split())
    tasks = Counter(int(m.group(1)) for m in re.finditer(r"-(\d+)\s+\[\d+\]", (tmp_path / "w.txt").read_text()))
    assert not {early, late, child} & set(tasks), {t: tasks[t] for t in (early, late, child)}
    assert tasks[command] > 0


def test_sigterm_whole_system_and_stale_instance(tracefs, tmp_path):
    """A whole-system recording stopped by SIGTERM; and at its start, an instance a killed kprof left is removed.
    This kprof runs in a pid namespace of its own, and the stale instance is named for that namespace (as kprof
    names its own: kprof-PID-PIDNS), made there just before kprof starts: so no other kprof recording on this
    host meanwhile (a parallel suite's) takes it for one of its own namespace's to remove."""
    before = snapshot()
    trace = tmp_path / "term.txt"
    make_stale = f'mkdir {TRACEFS}/instances/kprof-4194000-$(stat -L -c %i /proc/self/ns/pid) && exec "$@"'
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", make_stale, "sh",
                             sys.executable, "-c", _CLI, "ftrace", "record", "-q", "--duration", "60", "-o", str(trace)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ns = None
    try:
        wait_for_data(trace, proc, min_bytes=1)
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            kprof_pid = int(f.read().split()[0])          # unshare's child: the shell, which exec'd kprof
        ns = os.stat(f"/proc/{kprof_pid}/ns/pid").st_ino
        assert not os.path.exists("/proc/4194000")
        os.kill(kprof_pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        removed = re.search(r"removed tracefs instance kprof-4194000-(\d+) left by a kprof that was killed", err)
        assert removed, err
        # its pids are not the host's, which tracefs reads: none are written (pid 1 would be the host's init)
        assert "kprof runs in a pid namespace of its own" in err
        assert_same(before, snapshot())
        # the snapshot leaves out other namespaces' instances: this kprof's own namespace's are looked for here
        assert not [i for i in os.listdir(os.path.join(TRACEFS, "instances")) if i.endswith(f"-{removed[1]}")]
    finally:       # on a failure: kprof dies with unshare (--kill-child), and its namespace's instances go
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for name in os.listdir(os.path.join(TRACEFS, "instances")):
            if name.startswith("kprof-4194000-") or (ns and name.endswith(f"-{ns}")):
                assert _rmdir_instance(os.path.join(TRACEFS, "instances", name)) is None


KPROF = f"PYTHONPATH={ROOT} {sys.executable} -c \"$0\""       # kprof, in without_tracefs's commands


def without_tracefs(commands: str, cli: str = _CLI) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the shell ``commands`` in a private mount namespace with tracefs unmounted (``$KPROF`` there runs
    ``cli``); the process, and how many tracefs mounts there were before and after them."""
    script = (f"umount {TRACEFS} 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; grep -c tracefs /proc/mounts; "
              f"{commands}; grep -c tracefs /proc/mounts")
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, cli],
                       capture_output=True, text=True, timeout=60)
    return p, [ln for ln in p.stdout.split() if ln.isdigit()]


def test_two_recordings_at_once_leave_tracefs_as_it_was(tmp_path):
    """Two recordings that overlap, tracefs unmounted before: each mounts it in a mount namespace of its own, so
    neither finds the other's files open when it unmounts, both say restored, and tracefs is not left mounted
    (the first said "NOT restored: umount: target is busy", the second "restored", and it stayed mounted)."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    p, counts = without_tracefs(f"{KPROF} ftrace record -q -o {a} -- sleep 1.5 & sleep 0.5; "
                                f"{KPROF} ftrace record -q -o {b} -- sleep 0.2; wait")
    assert counts == ["0", "0"] and "NOT restored" not in p.stderr, (p.stdout, p.stderr)
    assert all(meta_of(t)["mounted_tracefs"] and meta_of(t)["tracing_state_restored"] for t in (a, b))


def test_a_host_kprof_has_no_tables_for_is_refused_before_tracefs_is_mounted(tmp_path):
    """A kernel arch kprof has no syscall table for (s390x here, by uname): one message, exit 2, nothing
    mounted and no trace file left (the refusal came after the mount, which stayed)."""
    trace = tmp_path / "s.txt"
    cli = ("import os, sys; u = os.uname(); os.uname = lambda: os.uname_result(tuple(u)[:4] + ('s390x',)); "
           "import profiler.cli as c; sys.exit(c.main(sys.argv[1:]))")
    p, counts = without_tracefs(f"{KPROF} ftrace record -q -o {trace} -- true; echo rc=$?", cli)
    assert "rc=2" in p.stdout and counts == ["0", "0"], (p.stdout, p.stderr)
    assert "unknown architecture 's390x'" in p.stderr and "Traceback" not in p.stderr
    assert not trace.exists()


def test_kprof_mounts_tracefs_when_needed(tracefs, tmp_path):
    """In a private mount namespace without tracefs: kprof mounts it, records, and unmounts it again."""
    trace = tmp_path / "m.txt"
    p, counts = without_tracefs(f"{KPROF} ftrace record -q -o {trace} -- true; echo rc=$?")
    assert "rc=0" in p.stdout and counts == ["0", "0"], (p.stdout, p.stderr)
    meta = meta_of(trace)
    assert meta["mounted_tracefs"] and meta["tracing_state_restored"]
