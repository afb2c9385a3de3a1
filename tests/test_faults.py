"""Fault scenarios: what was injected, and a changed outcome that matches what the command really did
(its own exit status and output, read from the bundle, not kprof's summary)."""
from __future__ import annotations

import json

import pytest

from .conftest import ROOT, kprof, needs_oref0, needs_root, needs_strace

pytestmark = [needs_strace, needs_root]


def run(name, scenario_run):
    """The shipped fault scenario ``name`` as ``kprof run … -f json`` ran it (the session's one run of it)."""
    p, bundle = scenario_run(ROOT / "scenarios" / f"{name}.yaml")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    report = json.loads(p.stdout)
    sections = {s["title"].split(":")[0]: s for s in report["sections"]}
    meta = json.loads((bundle / "meta.json").read_text())
    normal = json.loads((bundle / "normal-path" / "meta.json").read_text())
    return bundle, report, sections, meta["runs"][0], normal["runs"][0]


def stderr(bundle):
    return (bundle / "stderr.txt").read_text()


@needs_oref0
def test_missing_input_file(scenario_run):
    bundle, report, sections, error, normal = run("determine-basal-missing-input", scenario_run)
    injected = sections["Injected faults"]["rows"][0]
    assert injected[1] >= 1 and "profile.json" in injected[2] and "ENOENT (injected)" in injected[2]
    # oref0-determine-basal reports the error but exits 0 without a suggestion (a finding, not a bug here)
    assert normal["exit"] == {"exit": 0} and error["exit"] == {"exit": 0}
    assert "Could not parse input data" in stderr(bundle) and "ENOENT" in stderr(bundle)
    assert (bundle / "stdout.txt").read_text() == ""
    assert json.loads((bundle / "normal-path" / "stdout.txt").read_text())["rate"] is not None


@needs_oref0
def test_output_write_fails_with_enospc_and_the_command_still_exits_0(scenario_run):
    bundle, report, sections, error, normal = run("determine-basal-enospc", scenario_run)
    assert "ENOSPC (injected)" in sections["Injected faults"]["rows"][0][2]
    assert error["exit"] == {"exit": 0}, "oref0-determine-basal ignores the failed write (a finding, not a bug here)"
    assert (bundle / "stdout.txt").read_text() == "" and (bundle / "normal-path" / "stdout.txt").read_text()


def test_serial_device_returns_eio(scenario_run):
    bundle, report, sections, error, normal = run("pump-reservoir-eio", scenario_run)
    assert "read /dev/serial0 → EIO (injected)" in sections["Injected faults"]["rows"][0][2]
    assert normal["exit"] == {"exit": 0} and error["exit"] == {"exit": 1}
    assert "cannot connect to CC111x radio" in stderr(bundle)
    assert (bundle / "normal-path" / "stdout.txt").read_text().strip() == "135"


@pytest.mark.parametrize("name,status,message", [("pump-no-response", 2, "no response to wakeup"),
                                                 ("pump-busy", 1, "no response")])
def test_pump_device_faults(scenario_run, name, status, message):
    bundle, report, sections, error, normal = run(name, scenario_run)
    assert error["exit"] == {"exit": status} and message in stderr(bundle)
    assert normal["exit"] == {"exit": 0}
    behaviour = sections["What the command did"]["rows"]
    assert [r[0] for r in behaviour] == ["normal", "error"] and behaviour[1][1] == f"exit {status}"
    seq = [s for s in report["sections"] if s["title"].startswith("Sequence, error path")][0]
    phases = [r[0] for r in seq["rows"]]
    assert phases[0] == "start-up" and "open /dev/serial0" in phases and phases[-1] == "exit"
    assert seq["code"].startswith("flowchart TD") and seq["code_lang"] == "mermaid"
    assert "```mermaid" in (bundle / "report.md").read_text()


def test_a_rule_that_injects_nothing_fails_the_run(tmp_path):
    sc = tmp_path / "no-match.yaml"
    sc.write_text("name: no-match\ndescription: a rule that matches nothing\ncommand: [cat, /etc/hostname]\n"
                  "backend: ptrace\ninject: [{syscall: read, error: EIO, path: /no/such/file}]\n")
    p = kprof("run", sc, "--out", tmp_path / "b", check=1)
    assert "matched no call: nothing was injected" in p.stdout



@pytest.mark.parametrize("backend", ["strace", "ptrace"])
def test_a_delay_rule_that_delays_a_call_is_a_rule_that_matched(tmp_path, backend):
    """strace and kprof's ptrace tracer mark a delayed call "(DELAYED)": the rule matched, the run passes
    (it failed with "matched no call: nothing was injected")."""
    sc = tmp_path / "delay.yaml"
    sc.write_text(f"name: delay\ndescription: d\ncommand: [cat, /etc/hostname]\nbackend: {backend}\n"
                  "inject: [{syscall: openat, delay_enter: 10ms, when: '3+'}]\n")
    p = kprof("run", sc, "--out", tmp_path / "b", "-f", "json", check=0)
    assert "(DELAYED)" in (tmp_path / "b" / "trace.log").read_text()
    assert not [w for w in json.loads(p.stdout)["warnings"] if "matched no call" in w]

def test_restricted_rule_needs_the_ptrace_backend(tmp_path):
    sc = tmp_path / "needs-ptrace.yaml"
    sc.write_text("name: needs-ptrace\ndescription: d\ncommand: [cat, /etc/hostname]\n"
                  "inject: [{syscall: read, error: EIO, path: /etc/hostname}]\n")
    (tmp_path / "cwd").mkdir()
    p = kprof("run", sc, check=2, cwd=tmp_path / "cwd")
    assert "needs the ptrace backend" in p.stderr
    # refused before anything ran: not even the fault scenario's normal path, which runs first (no bundle)
    assert "result bundle" not in p.stderr and not (tmp_path / "cwd" / "kprof-results").exists()


def test_unrestricted_injection_through_strace(tmp_path):
    sc = tmp_path / "strace-inject.yaml"
    sc.write_text("name: strace-inject\ndescription: d\ncommand: [cat, /etc/hostname]\n"
                  "inject: [{syscall: openat, error: EACCES, when: '3+'}]\nexpect: {exit: 1}\n")
    bundle = tmp_path / "b"
    kprof("run", sc, "--out", bundle, check=0)
    assert "Permission denied" in stderr(bundle)
    assert "(INJECTED)" in (bundle / "trace.log").read_text()


def test_the_sequence_view_reads_typed_calls(tmp_path):
    """The fault view's steps come from the parser's typed calls: a relative path is joined to its dirfd's
    path, execveat names its program, and -X raw clone flags mark a thread (its calls join its process)."""
    from profiler.faults import read_sequences
    log = tmp_path / "trace.log"
    log.write_text(
        '100 1.000000 openat(-100</home/u>, "rel/file", 0) = -1 ENOENT (No such file or directory) <0.000010>\n'
        '100 1.000100 clone(child_stack=0x7f, flags=0x3d0f00|17) = 101 <0.000050>\n'
        '101 1.000200 read(3</etc/hosts>, "", 4096) = 0 <0.000005>\n'
        '100 1.000300 execveat(3</usr/bin>, "true", ["true"], 0x7ffd, 0) = 0 <0.000300>\n'
        '100 1.000400 +++ exited with 0 +++\n')
    seqs = read_sequences(log, "x86_64")
    assert list(seqs) == [100]                      # the thread's read is the process's
    steps = [(s.name, s.target) for s in seqs[100].steps]
    assert ("openat", "/home/u/rel/file") in steps and ("read", "/etc/hosts") in steps
    assert seqs[100].exe == "/usr/bin/true" and seqs[100].end == "exit 0"    # joined to its dirfd


def test_the_sequences_built_while_recording_are_the_logs_own(tmp_path):
    """`kprof run` of a fault scenario builds the sequence view from the events it analyses while recording
    (profiler/sequences.py), instead of reading the log again afterwards: the same sequences as reading the
    run's own trace.log after it (a Go tool: its calls move between threads, which join their process)."""
    from profiler import runner
    from profiler.faults import read_sequences
    from profiler.kernel import syscalls
    from profiler.scenario import load_scenario

    outcomes, meta = runner.run(load_scenario(ROOT / "scenarios" / "pump-busy.yaml"), tmp_path / "b", sequences=True)
    live = outcomes[0].analysis.sequences
    again = read_sequences(outcomes[0].run_dir / "trace.log", syscalls.host_arch())

    def flat(seqs):
        return {pid: (s.exe, s.end, [(st.name, st.target, st.count, st.errno, st.injected, st.detail)
                                     for st in s.steps]) for pid, s in seqs.items()}
    assert list(live) == list(again) and flat(live) == flat(again)
    assert any(st.target == "/dev/serial0" for s in live.values() for st in s.steps)
    assert sum(st.count for s in live.values() for st in s.steps) > 500


def test_sequences_join_threads_logged_before_their_clone_returned(tmp_path):
    """Threads of threads (102 made by 101, made by 100) join process 100, even when a thread's calls are
    logged before the clone that made it returned; an exec whose path the log does not show (a resumed execve
    with no start) leaves the process's program unknown, not the one before it; repeats collapse."""
    from profiler.faults import read_sequences
    log = tmp_path / "trace.log"
    log.write_text(
        '100 1.0 execve("/bin/sh", ["sh"], 0x7ffd /* 3 vars */) = 0\n'
        '100 1.1 clone(child_stack=NULL, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM'
        ' <unfinished ...>\n'
        '102 1.15 read(3</dev/serial0>, "", 10) = 0\n'
        '101 1.2 clone(child_stack=NULL, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM)'
        ' = 102\n'
        '100 1.25 <... clone resumed>) = 101\n'
        '101 1.3 ioctl(3</dev/serial0<char 4:64>>, TCGETS, {c_iflag=0}) = 0\n'
        '100 1.6 <... execve resumed>) = 0\n'
        '100 1.7 read(3</dev/serial0>, "", 10) = 0\n'
        '100 1.8 read(3</dev/serial0>, "", 10) = 0\n'
        '100 1.9 exit_group(0) = ?\n'
        '100 2.0 +++ exited with 0 +++\n')
    seqs = read_sequences(log, "x86_64")
    assert list(seqs) == [100] and seqs[100].exe is None and seqs[100].end == "exit 0"
    empty = "= 0 (nothing received)"
    assert [(s.name, s.target, s.count, s.detail) for s in seqs[100].steps] == [
        ("execve", "/bin/sh", 1, ""), ("read", "/dev/serial0", 1, empty),     # thread 102's, before its clone
        ("clone", None, 2, ""), ("ioctl", "/dev/serial0", 1, "TCGETS"),      # the two clones; thread 101's ioctl
        ("execve", None, 1, ""), ("read", "/dev/serial0", 2, empty), ("exit_group", None, 1, "")]
