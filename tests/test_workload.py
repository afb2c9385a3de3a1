"""kprof workload: the whole OpenAPS rig (scenarios/workloads/openaps-rig.yaml) run here twice, side by side
(each in its own namespaces and tracefs instance), each for 3 minutes at most and until its second pump-loop
iteration (--iterations 2), shared by the tests below: the first gets the reports checked, the second is
checked against the first with kprof check; and a constructed workload of two known commands whose coverage
is worked out by this test from the raw trace.

Cost: the two runs take about 1.6 minutes together (and a run is made again, alone, when its loop had an
unsuccessful iteration: see rig_runs); the whole file ran in 1 min 58 s here.
Ground truth is independent of kprof's analysis: iterations are counted in the loop's own log, the tracing
state is this test's own snapshot, leftovers are looked for in /proc and /tmp, and the constructed case's
calls are counted from the trace's raw lines by this test."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import (ROOT, host_mounts, kprof, needs_oref0, needs_root, needs_strace, set_aside,
                       radio_lost)
from .test_ftrace_record import assert_same, snapshot, tracefs  # noqa: F401 - fixture

pytestmark = [needs_root, needs_oref0]

RIG = ROOT / "scenarios" / "workloads" / "openaps-rig.yaml"
MARKER = "Completed oref0-pump-loop"


def _mountpoints() -> set[str]:
    """The host's mount points, less what other tests mount meanwhile (conftest.host_mounts; tracefs, which the
    module's fixture holds mounted, is checked by the tracing-state snapshot)."""
    return {line.split()[4] for line in host_mounts()}


def _tmp_entries() -> set[str]:
    """/tmp's entries and those of the temp directory kprof uses ($TMPDIR: a parallel suite's worker has its own)."""
    return set(os.listdir("/tmp")) | set(os.listdir(tempfile.gettempdir()))


def _processes_with_env(needle: str) -> list[int]:
    """Processes whose environment holds ``needle`` (e.g. KPROF_RIG_LOGS=<this bundle>/logs)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle.encode() in f.read():
                    out.append(int(pid))
        except OSError:
            pass
    return out


class Machine:
    """What a run may change on this machine: tracing state, mounts, /tmp entries."""

    def __init__(self):
        self.tracing, self.mounts, self.tmp = snapshot(), _mountpoints(), _tmp_entries()

    def leftovers(self, bundle: Path) -> list[str]:
        out = []
        assert_same(self.tracing, snapshot())
        if _mountpoints() != self.mounts:
            out.append(f"mounts: +{_mountpoints() - self.mounts} -{self.mounts - _mountpoints()}")
        new = {e for e in _tmp_entries() - self.tmp if e.startswith(("kprof-openaps-rig-", "kprof-wl-", "kprof-syslog",
                                                                     "oaps_shared_node", "kprof-dev-", "src"))}
        if new:
            out.append(f"/tmp: {sorted(new)}")
        procs = _processes_with_env(f"KPROF_RIG_LOGS={bundle}/logs")
        if procs:
            out.append(f"processes still running: {procs}")
        return out


@pytest.fixture(scope="module")
def scenario_results(scenario_run):
    """Per-command results to put beside the workload: determine-basal (the loop runs it as a program) and
    calculate-iob (the loop sends it to the shared node: never run as its own program); the suite's shared runs
    of the two (conftest's scenario_run)."""
    return [scenario_run(ROOT / "scenarios" / f"{name}.yaml")[1] for name in ("determine-basal", "calculate-iob")]


def _rig(bundle: Path, extra: list) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "profiler", "workload", "run", str(RIG), "--duration", "3m", "--iterations", "2",
         "-o", str(bundle), "-q", *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def rig_runs(tmp_path_factory, scenario_results, tracefs):  # noqa: F811
    """Two runs of the whole rig side by side, each until its second pump-loop iteration (3 minutes at most);
    the first with the scenario results alongside. A run whose loop had an unsuccessful iteration did other
    work than the loop's normal path (mmtune, retries), so it is not the run these tests compare: it is run
    again, once, alone, and the warning says so."""
    base = tmp_path_factory.mktemp("rig")
    machine = Machine()
    args = {"run1": ["--alongside", *map(str, scenario_results)], "run2": []}
    procs = {name: _rig(base / name, extra) for name, extra in args.items()}
    done = {name: (proc, *proc.communicate(timeout=900)) for name, proc in procs.items()}
    for name in args:            # after both: a rig whose loop failed is made again alone (conftest.set_aside)
        bundle = base / name
        lost = radio_lost(bundle)
        if lost:
            set_aside(lost, f"rig {name}")
            proc = _rig(bundle, args[name])
            done[name] = (proc, *proc.communicate(timeout=900))
    runs = [{"bundle": base / name, "proc": subprocess.CompletedProcess(proc.args, proc.returncode, out, err)}
            for name, (proc, out, err) in done.items()]
    for run in runs:          # after both: neither run may leave anything, nor change what the other restores
        run["leftovers"] = machine.leftovers(run["bundle"])
    return runs


@pytest.fixture(scope="module")
def rig_run(rig_runs):
    return rig_runs[0]


@needs_strace
def test_rig_runs_two_pump_loop_iterations_and_leaves_nothing(rig_run):
    p, bundle = rig_run["proc"], rig_run["bundle"]
    assert p.returncode == 0, p.stderr[-3000:]
    log = (bundle / "logs" / "pump-loop.log").read_text(errors="replace")
    assert log.count(MARKER) >= 2, log[-3000:]
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["iterations"] == log.count(MARKER)
    assert meta["iterations_reached"] is True and meta["iterations_limit"] == 2 and meta["iterations"] == 2
    assert meta["tracing_state_restored"] is True
    assert rig_run["leftovers"] == []
    # the fake Nightscout took the loop's uploads (its own record), the emulated pump answered the tools
    services = {s["type"]: s for s in meta["services"]}
    assert services["nightscout"]["uploads"]["devicestatus"] >= 1
    assert services["pump"]["exchanges"] > 50
    # oref0 0.7.1's cron script does not parse: found and reported
    assert meta["cron_every_minute"]["parses"] is False
    assert "line 133" in meta["cron_every_minute"]["error"]


@needs_strace
def test_rig_report_has_elisas_tables_and_coverage(rig_run):
    bundle = rig_run["bundle"]
    report = (bundle / "report.txt").read_text()
    for title in ("System calls in use (ELISA's table)", "Subsystem usage: event groups (ELISA's table)",
                  "Modules: workload vs default system (ELISA's table)",
                  "Coverage: programs of the workload and the scenarios that run them",
                  "Scenarios whose command the workload never ran", "does not parse"):
        assert title in report, title
    programs = json.loads((bundle / "programs.json").read_text())
    # what a rig runs (reference/openaps.md): the pump tools, the algorithm, jq, socat, the shared node
    for prog in ("mdt", "pumphistory", "listen", "oref0-pump-loop", "oref0-ns-loop", "oref0-determine-basal",
                 "jq", "socat", "node", "curl"):
        assert prog in programs, (prog, sorted(programs))
    # the trace's own exec lines name every one of these programs (independent of the per-process split)
    execs = Counter(os.path.basename(m.group(1).decode()) for m in
                    re.finditer(rb"sched_process_exec: filename=(\S+)", (bundle / "trace.txt").read_bytes()))
    assert execs["mdt"] >= 10 and execs["oref0-determine-basal"] >= 2
    cov = json.loads((bundle / "coverage.json").read_text())
    rows = {r["program"]: r for r in cov["programs"]}
    assert rows["oref0-determine-basal"]["own"] == ["determine-basal"]
    assert rows["mdt"]["scenarios"] == []
    assert "calculate-iob" in [s["scenario"] for s in cov["scenarios_never_ran"]]   # the loop asks the shared node
    assert cov["calls_share"] == pytest.approx(sum(r["calls"] for r in cov["programs"] if r["scenarios"])
                                               / cov["calls_total"], abs=1e-3)


@needs_strace
def test_second_run_has_the_same_programs_and_syscalls(rig_runs, tmp_path):
    """kprof check of the second run against a baseline saved from the first. Both end at their second
    pump-loop iteration: the loops' other work (ns-loop's uploads, logger) comes in the second cron minute."""
    first, second = rig_runs
    for run in rig_runs:
        assert run["proc"].returncode == 0, run["proc"].stderr[-3000:]
        assert run["leftovers"] == []
    kprof("baseline", "save", first["bundle"], "--dir", tmp_path / "baselines", check=0, timeout=300)
    p = kprof("check", second["bundle"], "--baseline", tmp_path / "baselines", "--results", tmp_path / "r",
              timeout=300)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "no change" in p.stdout
    assert (second["bundle"] / "logs" / "pump-loop.log").read_text().count(MARKER) == 2


# ----------------------------------------------------------------------------- a constructed case

DRIVER = """#!/bin/bash
for loop in $KPROF_LOOPS; do ${loop#*=} > "$KPROF_RIG_LOGS/${loop%%=*}.log"; done
sleep 300
"""


def _constructed(tmp: Path) -> Path:
    (tmp / "fx").mkdir()
    (tmp / "fx" / "drive.sh").write_text(DRIVER)
    wl = tmp / "two-commands.yaml"
    wl.write_text("kind: workload\nname: two-commands\ndescription: uname (has a scenario), then id (has none)\n"
                  "command: [bash, drive.sh]\ncron: {interval: 60, loops: [{name: a, command: uname}, "
                  "{name: b, command: id}]}\nfixtures: [fx/drive.sh]\n")
    (tmp / "uname.yaml").write_text("name: uname\ndescription: uname\ncommand: [uname]\n")
    return wl


@needs_strace
def test_coverage_of_a_constructed_workload(tmp_path, tracefs):  # noqa: F811
    wl = _constructed(tmp_path)
    kprof("run", tmp_path / "uname.yaml", "-o", tmp_path / "uname", check=0)
    machine = Machine()
    bundle = tmp_path / "wl"
    kprof("workload", "run", wl, "--duration", "4s", "-o", bundle, "-q", "--alongside", tmp_path / "uname",
          check=0, timeout=120)
    assert machine.leftovers(bundle) == []
    # ground truth from the raw trace: each pid's program (its exec) and its sys_enter lines
    text = (bundle / "trace.txt").read_text(errors="replace")
    prog = {int(m.group(2)): os.path.basename(m.group(1))
            for m in re.finditer(r"sched_process_exec: filename=(\S+) pid=(\d+)", text)}
    # a call is an enter, or an exit with no enter before it (begun before tracing started: the driver's
    # read of kprof's start gate) — but not a new child's return from clone/fork (its parent's call)
    from profiler.kernel import syscalls
    arch = json.loads((bundle / "trace.txt.meta.json").read_text())["analysis_arch"]
    forks = {str(syscalls.syscall_number(arch, n)) for n in ("clone", "clone3", "fork", "vfork")}
    calls, pending = Counter(), set()
    for m in re.finditer(r"^\s*\S+-(\d+)\s.*?\bsys_(enter|exit): NR (-?\d+)", text, re.M):
        pid = int(m.group(1))
        if m.group(2) == "enter":
            calls[pid] += 1
            pending.add(pid)
        elif pid in pending:
            pending.discard(pid)
        elif m.group(3) != "-1" and m.group(3) not in forks:
            calls[pid] += 1
    by_prog = Counter()
    for pid, n in calls.items():
        by_prog[prog.get(pid, "?")] += n
    cov = json.loads((bundle / "coverage.json").read_text())
    rows = {r["program"]: r for r in cov["programs"]}
    assert rows["uname"]["calls"] == by_prog["uname"] > 10
    assert rows["id"]["calls"] == by_prog["id"] > 10
    assert rows["uname"]["own"] == ["uname"] and rows["uname"]["scenarios"] == ["uname"]
    assert rows["id"]["scenarios"] == [] and rows["bash"]["scenarios"] == []
    assert cov["calls_total"] == sum(calls.values())
    assert cov["calls_share"] == pytest.approx(by_prog["uname"] / sum(calls.values()), abs=1e-3)
    assert cov["scenarios_never_ran"] == []
    # a syscall is explained exactly when strace's own footprint of uname has it
    uname_fp = json.loads((tmp_path / "uname" / "footprint.json").read_text())
    for name, by in cov["syscalls"].items():
        assert (by == ["uname"]) == (name in uname_fp["syscalls"]), name
    assert "NO SCENARIO" in (bundle / "report.txt").read_text()


def test_sigterm_stops_the_workload_cleanly(tmp_path, tracefs):  # noqa: F811
    wl = _constructed(tmp_path)
    machine = Machine()
    bundle = tmp_path / "wl"
    p = subprocess.Popen([sys.executable, "-m", "profiler", "workload", "run", str(wl), "--duration", "5m", "-o",
                          str(bundle), "-q"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (bundle / "logs" / "b.log").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err
    assert machine.leftovers(bundle) == []
    assert json.loads((bundle / "trace.txt.meta.json").read_text())["tracing_state_restored"] is True


def test_bad_input(tmp_path):
    kprof("validate", RIG, check=0)
    p = kprof("workload", "run", ROOT / "scenarios" / "determine-basal.yaml")
    assert p.returncode == 2 and "not a workload file" in p.stderr and "Traceback" not in p.stderr
    p = kprof("workload", "run", tmp_path / "none.yaml")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    p = kprof("workload", "report", tmp_path)
    assert p.returncode == 2 and "not a workload bundle" in p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: workload\nname: bad\ndescription: x\ncommand: [bash]\ncron: {interval: 0, loops: []}\n")
    p = kprof("workload", "run", bad)
    assert p.returncode == 2 and "cron.interval" in p.stderr and "Traceback" not in p.stderr
    p = kprof("workload", "run", RIG, "--iterations", "0")
    assert p.returncode == 2 and "--iterations" in p.stderr and "at least 1" in p.stderr
    wl = _constructed(tmp_path)                       # no iteration: to count
    p = kprof("workload", "run", wl, "--iterations", "1", "-o", tmp_path / "never")
    assert p.returncode == 2 and "iteration:" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "never").exists()


@needs_strace
def test_scenarios_run_beside_the_workload(tmp_path, tracefs):  # noqa: F811
    """--scenarios runs them into BUNDLE/scenarios/, and workload report uses them by default."""
    wl = _constructed(tmp_path)
    bundle = tmp_path / "wl"
    kprof("workload", "run", wl, "--duration", "3s", "-o", bundle, "-q", "--scenarios", tmp_path / "uname.yaml",
          check=0, timeout=120)
    assert (bundle / "scenarios" / "uname" / "footprint.json").is_file()
    rows = {r["program"]: r for r in json.loads((bundle / "coverage.json").read_text())["programs"]}
    assert rows["uname"]["own"] == ["uname"] and rows["id"]["scenarios"] == []
    again = kprof("workload", "report", bundle, "-f", "json", check=0).stdout
    assert "coverage: calls" in again and "NO SCENARIO" in again


def test_whole_system_recording_of_a_workload(tmp_path, tracefs):  # noqa: F811
    """--whole-system: every process is traced (no pid filter), the workload's programs among them."""
    wl = _constructed(tmp_path)
    machine = Machine()
    bundle = tmp_path / "wl"
    kprof("workload", "run", wl, "--duration", "2s", "--whole-system", "-o", bundle, "-q", check=0, timeout=120)
    assert machine.leftovers(bundle) == []
    tmeta = json.loads((bundle / "trace.txt.meta.json").read_text())
    assert tmeta["whole_system"] is True and tmeta["tracing_state_restored"] is True
    programs = json.loads((bundle / "programs.json").read_text())
    assert {"uname", "id", "bash"} <= set(programs)
    assert "the whole system" in (bundle / "report.txt").read_text()


def test_a_scenarios_own_command_is_its_first_openaps_program():
    """A wrapper (bash kprof-pump-loop.sh) runs the shared node and seq before oref0-pump-loop: the scenario's
    own command is oref0-pump-loop; a plain command (uname) is itself."""
    from profiler.coverage import coverage, scenario_command
    from profiler.footprint import Footprint

    def proc(parent, *exes):
        return {"parent": parent, "end": None, "images": [{"exe": e, "syscalls": Counter({"read": 1})} for e in exes]}

    loop = Footprint(arch="x86_64", root_pid=10, processes={
        10: proc(None, "/usr/bin/bash"), 11: proc(10, "/usr/bin/node"), 12: proc(10, "/usr/bin/seq"),
        13: proc(10, "$NODE_MODULES/.bin/oref0-pump-loop", "/usr/bin/bash"), 14: proc(13, "$KPROF_ROOT/build/rig-tools/uart/mdt")})
    assert scenario_command(loop) == "oref0-pump-loop"
    plain = Footprint(arch="x86_64", root_pid=5, processes={5: proc(None, None, "/usr/bin/uname")})
    assert scenario_command(plain) == "uname"
    progs = {"mdt": {"processes": 1, "calls": 30, "syscalls": Counter({"read": 30})},
             "jq": {"processes": 1, "calls": 10, "syscalls": Counter({"read": 10})}}
    loop.programs = {"$KPROF_ROOT/build/rig-tools/uart/mdt": {}}
    cov = coverage(progs, Footprint(arch="x86_64"), {"pump-loop": loop, "uname": plain})
    assert [(r["program"], r["scenarios"], r["own"]) for r in cov.programs] == [("mdt", ["pump-loop"], []),
                                                                               ("jq", [], [])]
    assert cov.calls_share == 0.75 and cov.never_ran == [("pump-loop", "oref0-pump-loop"), ("uname", "uname")]


def test_a_pid_reused_by_another_program_counts_under_each(tmp_path):
    """pid 300 runs jq, exits, and is reused by mdt, which makes the SPI ioctls: the programs table has mdt
    with its ioctls beside jq (it had jq with all of them, and said the scenario's mdt never ran)."""
    from profiler.parse import ftrace_text as ft
    from profiler.workload import process_programs, program_rows
    from .test_ftrace_parse import HEADER, line

    spec = [("bash", 200, "sched_process_exec: filename=/usr/bin/bash pid=200 old_pid=200"),
            ("bash", 200, "sys_enter: NR 56 (1200011, 0, 0, 0, 0, 0)"), ("bash", 200, "sys_exit: NR 56 = 300"),
            ("jq", 300, "sched_process_exec: filename=/usr/bin/jq pid=300 old_pid=300"),
            ("jq", 300, "sys_enter: NR 0 (3, 7ffd0000, 1000, 0, 0, 0)"), ("jq", 300, "sys_exit: NR 0 = 5"),
            ("jq", 300, "sys_enter: NR 231 (0, 0, 0, 0, 0, 0)"),
            ("bash", 200, "sys_enter: NR 56 (1200011, 0, 0, 0, 0, 0)"), ("bash", 200, "sys_exit: NR 56 = 300"),
            ("mdt", 300, "sched_process_exec: filename=/usr/bin/mdt pid=300 old_pid=300"),
            *[("mdt", 300, t) for t in ("sys_enter: NR 16 (3, 40206b00, 7ffd2000, 0, 0, 0)", "sys_exit: NR 16 = 0")] * 2]
    trace = tmp_path / "t.txt"
    trace.write_text(HEADER + "\n".join(line(c, p, 1.0 + i * 1e-4, t) for i, (c, p, t) in enumerate(spec)) + "\n")
    fp = ft.analyse_trace([trace], "x86_64").footprint
    rows = program_rows(fp, process_programs(trace))
    assert {k: (r["processes"], dict(r["syscalls"])) for k, r in rows.items()} == {
        "bash": (1, {"clone": 2}), "jq": (1, {"read": 1, "exit_group": 1}), "mdt": (1, {"ioctl": 2})}
    assert rows["mdt"]["paths"] == {"/usr/bin/mdt"}
