"""scenarios/pump-loop.yaml end to end: OpenAPS's real oref0-pump-loop against kprof's pump emulator, run twice
by the real CLI: the suite's two shared runs of the scenario (tests/conftest.py: scenario_run; each made here when
no other test has asked for it yet, else on whichever worker asked first: the second is asked for here first).
Each must complete ("Completed oref0-pump-loop"), with the temp basal the loop enacted running in the emulated
pump (the scenario's expect.pump_temp_basal, checked by kprof against the emulator's final state). A run made
here must leave no file in the host's /tmp and no change in /dev; no shared run, wherever it is made, may leave a
process running (scenario_run makes it under a child subreaper of its own: tests/helpers/subreaped.py). Runs in
a row with nothing between them: the check of every scenario saves pump-loop's baseline from these two and one
more (tests/test_check_real.py), each of which must do what the scenario expects."""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from .conftest import ROOT, needs_oref0, needs_root, needs_strace

SCENARIO = ROOT / "scenarios" / "pump-loop.yaml"
# what the loop and its helpers write to /tmp (oref0-pump-loop.sh, oref0-bash-common-functions.sh, the
# shared node, the scenario's own scripts); kprof's workdir for each run is checked by its own path (other
# jobs on this machine may be running pump-loop too)
LOOP_TMP_NAMES = ("pump_loop_", "oaps_shared_node", "shared_node.", "oref0-shared-node.log", "wait_for_silence",
                  "oref0-updates.txt", "kprof-previous-temp.json")
needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("jq", "bc", "socat")) and os.environ.get("CI") != "true",
    reason="jq, bc and socat are needed (./setup.sh installs them)")


def _loop_tmp_entries() -> set[str]:
    return {n for n in os.listdir("/tmp") if n.startswith(LOOP_TMP_NAMES)}


@needs_strace
@needs_oref0
@needs_root
@needs_tools
def test_pump_loop_completes_twice_and_leaves_nothing_behind(scenario_run):
    dev_before, tmp_before = sorted(os.listdir("/dev")), _loop_tmp_entries()
    # the second shared run first: in a parallel suite this test starts beside the check of every scenario, whose
    # baseline fixture asks for the first, so each makes one
    runs = [scenario_run(SCENARIO, 2), scenario_run(SCENARIO)]
    for p, bundle in runs:
        meta = json.loads((bundle / "meta.json").read_text())
        run = meta["runs"][0]
        assert run["ok"], run["failures"]
        assert "Completed oref0-pump-loop" in (bundle / "stdout.txt").read_text()
        # the emulator's own account: the temp the loop enacted is running in the pump (kprof compared it with
        # enact/smb-enacted.json; here: it is a new one, not the previous iteration's 0.1 U/h from the prepare step)
        pump = next(s for s in run["services"] if s["type"] == "pump")
        temp = pump["state"]["temp_basal"]
        assert temp and temp["temp"] == "absolute" and 0 < temp["duration"] <= 30 and temp["rate"] != 0.1, temp
        assert [h["type"] for h in pump["state"]["history"]].count("TempBasal") == 2, pump["state"]["history"]
        # the process tree: the real loop's programs, the pump tools among them
        fp = json.loads((bundle / "footprint.json").read_text())
        execs = {os.path.basename(p): d["calls"] - sum(d["errors"].values()) for p, d in fp["programs"].items()}
        assert execs.get("oref0-pump-loop") == 1 and execs.get("mdt", 0) >= 10, execs
        for tool in ("listen", "pumphistory", "jq", "socat", "oref0-determine-basal"):
            assert execs.get(tool, 0) >= 1, (tool, execs)
        sections = {s["title"]: s for s in json.loads(p.stdout)["sections"]}
        assert "Process tree: programs run" in sections and "Device-level footprint: /dev/serial0" in sections
        by_program = {r[0]: r for r in sections["Device-level footprint by program: /dev/serial0"]["rows"]}
        assert set(by_program) == {"mdt", "listen", "pumphistory"}, by_program
        assert by_program["mdt"][1] == execs["mdt"]   # runs, as counted from the execs
        assert sum(r[2] for r in by_program.values()) == sum(fp["devices"]["/dev/serial0"]["syscalls"].values())
        # what the loop wrote to /tmp went to the scenario's private /tmp
        assert "/tmp/pump_loop_completed" in fp["files"] or any("/tmp/pump_loop_" in f for f in fp["files"])
        assert _loop_tmp_entries() == tmp_before, f"the loop wrote into the host's /tmp: {_loop_tmp_entries()}"
        # the run's workdir, in the temp directory of the worker that ran it (/tmp, or the suite's TMPDIR)
        workdir = re.search(r'openat\(-100<(/[^>]*/kprof-pump-loop-[^/>]+)>', (bundle / "trace.log").read_text())
        assert workdir and not os.path.exists(workdir.group(1)), "the run's workdir was left behind"
    assert sorted(os.listdir("/dev")) == dev_before, "the host's /dev changed"


@needs_strace
def test_process_tree_runs_match_the_execs_in_the_log(tmp_path):
    """program_runs() against the log itself: successful execve lines, counted by the test's own regex."""
    import re
    import subprocess
    from collections import Counter

    from profiler.analysis import analyse_log
    from profiler.kernel.syscalls import host_arch
    from profiler.record.strace import STRACE_OPTIONS, strace_path
    from profiler.render.sections import process_tree_section

    log = tmp_path / "trace.log"
    subprocess.run([strace_path(), *STRACE_OPTIONS, "-o", str(log), "--", "/bin/sh", "-c",
                    "ls / >/dev/null; ls / | cat >/dev/null; (date; true) >/dev/null; nosuchprogram 2>/dev/null"],
                   check=False, timeout=60)
    execs, pending = Counter(), {}   # successful execve lines, an unfinished call paired with its resumption
    for line in log.read_text().splitlines():
        m = re.match(r'(\d+) +\S+ execve\("([^"]+)", (.*)', line)
        if m:
            pending[m.group(1)] = m.group(2)
            if not m.group(3).endswith("<unfinished ...>"):
                line = f"{m.group(1)} x <... execve resumed>{m.group(3)}"
        m = re.match(r'(\d+) +\S+ <\.\.\. execve resumed>.*\) = (-?\d+)', line)
        if m and m.group(1) in pending:
            path = pending.pop(m.group(1))
            if m.group(2) == "0":
                execs[os.path.basename(path)] += 1
    fp = analyse_log(log, host_arch()).footprint
    runs = fp.program_runs()
    assert {n: r["runs"] for n, r in runs.items() if r["runs"]} == dict(execs)
    assert execs["ls"] == 2 and execs["cat"] == 1 and "nosuchprogram" not in execs
    assert runs["ls"]["started_by"] == Counter({"sh": 2})
    assert sum(r["calls"] for r in runs.values()) == fp.total_calls   # every call belongs to one program
    section = process_tree_section(fp, runs)
    assert section.rows[0][:3] == ["ls", 2, "sh 2"]   # most runs first


def test_pump_temp_basal_expectation(tmp_path):
    from profiler.bundle import temp_basal_mismatch

    enacted = tmp_path / "smb-enacted.json"
    enacted.write_text('{"rate": 2.2, "duration": 30, "received": true}')
    pump = {"type": "pump", "state": {"temp_basal": {"temp": "absolute", "rate": 2.2, "duration": 30}}}
    assert temp_basal_mismatch(enacted, [pump]) is None
    pump["state"]["temp_basal"]["rate"] = 1.0
    assert "the pump runs 1 U/h with 30 min left" in temp_basal_mismatch(enacted, [pump])
    pump["state"]["temp_basal"] = None
    assert "the pump runs no temp basal" in temp_basal_mismatch(enacted, [pump])
    assert "no enacted temp basal" in temp_basal_mismatch(tmp_path / "missing.json", [pump])
    assert "needs an emulated pump" in temp_basal_mismatch(enacted, [])
    enacted.write_text('{"rate": 0, "duration": 0}')   # a cancel: nothing may run
    assert temp_basal_mismatch(enacted, [pump]) is None


def test_a_thread_seen_before_its_clone_returns_is_credited_to_its_parents_program():
    """strace -f can print a new thread's first calls before the parent's clone3 returns (Go's threads read the
    radio at once): those uses belong to the parent's program, not to "(before the first exec)"."""
    from profiler.events import Fd, SyscallEvent as E
    from profiler.footprint import FootprintBuilder

    serial = Fd.of("/dev/serial0", "char", 136, 0)
    b = FootprintBuilder("x86_64")
    b.add(E(100, "execve", '"/usr/bin/mdt", ["mdt"], 0x1 /* 1 vars */', result=0, path="/usr/bin/mdt"))
    b.add(E(101, "read", "3</dev/serial0<char 136:0>>, \"\", 256", result=0, fd=serial))
    b.add(E(100, "clone3", "{flags=CLONE_VM|CLONE_THREAD}, 88", result=101, thread=True))
    b.add(E(101, "read", "3</dev/serial0<char 136:0>>, \"\", 256", result=0, fd=serial))
    fp = b.finish()
    assert dict(fp.devices["/dev/serial0"]["by"]) == {"/usr/bin/mdt": 2}
    runs = fp.program_runs()
    assert runs["mdt"]["calls"] == 3 and runs["mdt"]["processes"] == 2          # clone3 + the thread's reads
    assert runs["(before the first exec)"]["calls"] == 1                         # only the root's execve


def test_run_specific_names_are_made_comparable():
    """Keys a baseline compares must not carry what differs from run to run: mktemp's random letters, the
    inodes of an accepted unix socket, a peer's ephemeral port (each pump-loop run made 4 new
    /tmp/shared_node.* files and 4 new UNIX-STREAM:[inode->inode,…] destinations before)."""
    from profiler.events import Fd, SyscallEvent as E
    from profiler.footprint import FootprintBuilder, temp_name
    from profiler.parse.strace_text import accepted_address

    assert temp_name("/tmp/shared_node.54XYisQ1C9id") == "/tmp/shared_node.XXXXXX"
    assert temp_name("/tmp/tmpk3j_x9q1") == "/tmp/tmpXXXXXXXX"
    for kept in ("/tmp/pump_loop_success", "/tmp/oref0-shared-node.log", "/tmp/x.config", "/etc/a.B1c2D3e4"):
        assert temp_name(kept) == kept
    assert accepted_address('UNIX-STREAM:[1136227->1134574,"/tmp/oaps_shared_node"]') == "unix:/tmp/oaps_shared_node"
    assert accepted_address("TCP:[127.0.0.1:1337->127.0.0.1:50432]") == "inet:127.0.0.1:1337"
    b = FootprintBuilder("x86_64")
    for inode, name in ((11, "Ab3dE6fGh1J2"), (13, "x9Y8w7V6u5T4")):
        b.add(E(1, "openat", f'AT_FDCWD, "/tmp/shared_node.{name}", O_RDWR|O_CREAT|O_EXCL, 0600', result=3,
                result_fd=Fd.of(f"/tmp/shared_node.{name}")))
        accepted = f'UNIX-STREAM:[{inode}->{inode + 1},"/tmp/oaps_shared_node"]'
        b.add(E(2, "accept4", "3<UNIX:[9,\"/tmp/oaps_shared_node\"]>, NULL, NULL, SOCK_CLOEXEC", result=4,
                result_fd=Fd.of(accepted), address=accepted_address(accepted)))
    b.add(E(3, "connect", '5<UNIX-STREAM:[20]>, {sa_family=AF_UNIX, sun_path="/tmp/oaps_shared_node"}, 110', result=0,
            address="unix:/tmp/oaps_shared_node"))
    fp = b.finish()
    assert fp.files["/tmp/shared_node.XXXXXX"]["calls"] == 2
    assert dict(fp.network["unix:/tmp/oaps_shared_node"]["syscalls"]) == {"accept4": 2, "connect": 1}
    assert len(fp.network) == 1


def test_a_call_entered_by_a_thread_of_an_exiting_group_is_not_a_kernel_use():
    """Seen in pump-loop's traces (3 runs of 6): after a Go mdt's exit_group, strace showed another of its
    threads entering "vfork(" or "msgget(" (= ?), which kprof then reported as the ipc subsystem and
    CONFIG_SYSVIPC. A call entered after its thread group began exiting, that never returns, is not counted."""
    from profiler.parse.strace_log import StraceLogParser
    from profiler.footprint import FootprintBuilder
    from profiler.kernel import syscalls

    log = [
        '100 1.000 execve("/x/mdt", ["mdt"], 0x1 /* 1 vars */) = 0 <0.0001>',
        "100 1.001 clone3({flags=0x3d0f00, child_tid=0x1, parent_tid=0x1, exit_signal=0, stack=0x1, "
        "stack_size=0x7fff80, tls=0x1} => {parent_tid=[101]}, 88) = 101 <0.0001>",
        "100 1.002 clone(child_stack=NULL, flags=0x1200011, child_tidptr=0x1) = 102 <0.0001>",
        "101 1.003 futex(0xc000042948, 0x80, 0, NULL <unfinished ...>",
        "100 1.010 exit_group(0 <unfinished ...>",
        "101 1.011 <... futex resumed>) = ?",
        "101 1.012 msgget(0, 000 <unfinished ...>",
        "100 1.013 <... exit_group resumed>) = ?",
        "101 1.014 <... msgget resumed>) = ?",
        "101 1.015 +++ exited with 0 +++",
        "100 1.016 +++ exited with 0 +++",
        "102 1.020 getpid() = 102 <0.0001>",
        "102 1.021 exit_group(0) = ?",
        "102 1.022 +++ exited with 0 +++",
    ]
    b = FootprintBuilder("x86_64")
    for ev in StraceLogParser(lambda n: syscalls.canonical_name("x86_64", n)).feed(line + "\n" for line in log):
        b.add(ev)
    fp = b.finish()
    assert "msgget" not in fp.syscalls and fp.source["calls_cut_by_group_exit"] == 1
    assert fp.syscalls["futex"].calls == 1 and fp.syscalls["futex"].unfinished == 1   # entered before: kept
    assert fp.syscalls["getpid"].calls == 1            # the forked process (no CLONE_THREAD) is its own group


def test_a_subshell_seen_before_its_fork_returns_passes_its_program_on_to_its_children():
    from profiler.events import SyscallEvent as E
    from profiler.footprint import FootprintBuilder

    b = FootprintBuilder("x86_64")
    b.add(E(100, "execve", '"/usr/bin/bash", ["bash"], 0x1 /* 1 vars */', result=0, path="/usr/bin/bash"))
    b.add(E(101, "getpid", "", result=101))                            # the subshell, before bash's clone returns
    b.add(E(101, "clone", "child_stack=NULL, flags=0x1200000|17", result=102))
    b.add(E(102, "execve", '"/usr/bin/jq", ["jq"], 0x1 /* 1 vars */', result=0, path="/usr/bin/jq"))
    b.add(E(100, "clone", "child_stack=NULL, flags=0x1200000|17", result=101))
    fp = b.finish()
    assert fp.program_runs()["jq"]["started_by"] == {"bash": 1}
    assert fp.processes[102]["images"][0]["exe"] == "/usr/bin/bash"
