"""ftrace text → events and footprints: ELISA's arm form, the other text forms, the counting rules, the
fast chunked path against the exact line-by-line event path, time windows, compression, bad input, and
traces mixing 64-bit and 32-bit tasks."""
from __future__ import annotations

import gzip
import itertools
import json
import re
import lzma
import os
import subprocess
import sys


import pytest

from profiler.errors import KprofError
from profiler.events import ProcessEvent
from profiler.footprint import FootprintBuilder
from profiler.parse import ftrace_chunks, ftrace_format, ftrace_read
from profiler.parse import ftrace_text as ft

from .conftest import ROOT

_CLI = "import sys, profiler.cli as c; sys.exit(c.main(sys.argv[1:]))"


def kp(*args, check=None, cwd=None, env=None, timeout=120):
    """The real CLI in a subprocess; never a traceback."""
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    p = subprocess.run([sys.executable, "-c", _CLI, *map(str, args)], capture_output=True, text=True,
                       cwd=cwd or ROOT, env=e, timeout=timeout)
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    assert "Traceback" not in p.stderr, p.stderr
    return p


def line(comm, pid, ts, text, cpu=0, flags="....", width=5):
    """One line as the kernel's trace file prints it ("%16s-%-5d" on 5.x kernels, %-7d since)."""
    return f"{comm:>16}-{pid:<{width}} [{cpu:03d}] {flags} {ts:12.6f}: {text}"


HEADER = """# tracer: nop
#
# entries-in-buffer/entries-written: 17/17   #P:4
#
#                                _-----=> irqs-off
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| /     delay
#           TASK-PID     CPU#  ||||   TIMESTAMP  FUNCTION
#              | |         |   ||||      |         |
"""

# ELISA's kind of file: 32-bit Raspberry Pi OS (arm EABI), all events, raw_syscalls numbers
ELISA = HEADER + "\n".join([
    line("node", 1234, 1000.000100, "sys_enter: NR 336 (7e8f1000, 1, 7e8f1010, 0, 8, 0)", 2),
    line("node", 1234, 1000.000200, "sys_exit: NR 336 = 1", 2),
    line("node", 1234, 1000.000300, "sys_enter: NR 54 (17, 40206b00, 7e8f1234, 0, 0, 0)", 2),
    line("node", 1234, 1000.000400, "sys_exit: NR 54 = 1", 2),
    line("<idle>", 0, 1000.000500, "irq_handler_entry: irq=162 name=arch_timer", 0, "d.h1"),
    line("<idle>", 0, 1000.000510, "irq_handler_exit: irq=162 ret=handled", 0, "d.h1"),
    line("node", 1234, 1000.000600, "sys_enter: NR 54 (17, 40206b00, 7e8f1234, 0, 0, 0)", 2),
    line("node", 1234, 1000.000700, "sys_exit: NR 54 = -110", 2),
    line("node", 1234, 1000.000800, "sys_enter: NR 999 (0, 0, 0, 0, 0, 0)", 2),
    line("node", 1234, 1000.000900, "sys_exit: NR 999 = -38", 2),
    line("node", 1234, 1000.001000, "sched_switch: prev_comm=node prev_pid=1234 prev_prio=120 prev_state=S ==> "
                                    "next_comm=swapper/2 next_pid=0 next_prio=120", 2, "d..3"),
    line("kworker/0:1", 56, 1000.001100, "workqueue_execute_start: work struct 8e1c0a40: function vmstat_update"),
    line("node", 1234, 1000.001200, "sys_enter: NR 192 (0, 1000, 3, 22, ffffffff, 0)", 2),
    line("node", 1234, 1000.001300, "sys_exit: NR 192 = -1225617408", 2),     # mmap2 address, printed signed
    line("node", 1234, 1000.001400, "sys_enter: NR 248 (3, 0, 0, 0, 0, 0)", 2),
]) + "\n"


def write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return p


def fp_summary(res):
    fp = res.footprint
    return ({n: (s.calls, dict(s.errors), s.unfinished) for n, s in fp.syscalls.items()},
            {k: (v["calls"], dict(v["errors"])) for k, v in fp.ioctls.items()})


# ----------------------------------------------------------------------------- ELISA's form

def test_elisa_arm_trace_maps_numbers_and_decodes_spi(tmp_path):
    res = ft.analyse_trace([write(tmp_path, "pi.txt", ELISA)], "arm")
    fp = res.footprint
    assert fp.arch == "arm"
    assert fp.syscalls["ppoll"].calls == 1                      # 336 is ppoll, not "perf_event_open??"
    assert "perf_event_open" not in fp.syscalls
    assert fp.syscall_info("ppoll").number == 336
    assert fp.syscalls["ioctl"].calls == 2 and dict(fp.syscalls["ioctl"].errors) == {"ETIMEDOUT": 1}
    [io] = fp.ioctl_rows()
    assert (io["request"], io["name"], io["handler"], io["subsystem"]) == \
        ("0x40206b00", "SPI_IOC_MESSAGE(1)", "drivers/spi/spidev.c", "drivers/spi")
    assert io["calls"] == 2 and dict(io["errors"]) == {"ETIMEDOUT": 1}
    subs = {r["subsystem"]: r["calls"] for r in fp.subsystem_rows()}
    assert subs["drivers/spi"] == 2 and subs["fs.events"] == 1
    # an unknown number is kept, counted and named, never dropped
    assert fp.syscalls["syscall_999"].calls == 1 and dict(fp.syscalls["syscall_999"].errors) == {"ENOSYS": 1}
    # a 32-bit address returned by mmap2 prints as a negative long: not an error
    assert fp.syscalls["mmap2"].calls == 1 and not fp.syscalls["mmap2"].errors
    # exit_group never returns; its status is the task's end
    assert fp.syscalls["exit_group"].unfinished == 1 and fp.processes[1234]["end"] == {"exit": 3}
    groups = res.groups()
    assert groups["sys_*"] == 11 and groups["irq_*"] == 2 and groups["sched_*"] == 1 and groups["workqueue_*"] == 1
    tasks = {(t.comm, t.pid): t for t in res.tasks}
    assert tasks[("node", 1234)].calls == 6 and tasks[("<idle>", 0)].events == 2
    assert res.unparsed == 0 and res.lines == ELISA.count("\n")


def test_cli_analyze_elisa_form(tmp_path):
    trace = write(tmp_path, "pi.txt", ELISA)
    p = kp("ftrace", "analyze", trace, check=2)                   # no arch: numbers cannot be read
    assert "--arch" in p.stderr and "arm" in p.stderr
    p = kp("ftrace", "analyze", trace, "--arch", "arm", "-f", "json", "--footprint", tmp_path / "fp.json", check=0)
    report = json.loads(p.stdout)
    titles = [s["title"] for s in report["sections"]]
    assert "Event groups (ELISA's \"Subsystem usage\")" in titles and "ioctl requests" in titles
    sysrows = {r[0]: r for s in report["sections"] if s["title"] == "System calls" for r in s["rows"]}
    assert sysrows["ppoll"][1] == 336 and "time ms" not in next(
        s["headers"] for s in report["sections"] if s["title"] == "System calls")
    saved = json.loads((tmp_path / "fp.json").read_text())
    assert saved["format"] == "kprof-footprint" and saved["arch"] == "arm"
    assert saved["source"]["kind"] == "ftrace" and saved["source"]["event_groups"]["irq_*"] == 2


def test_ausyscall_table_disagreements_are_reported_not_used(tmp_path):
    # auditd 3.0.9's arm table, as ELISA used it: no 335, 336, 346
    dump = "Using armeb syscall table:\n" + "".join(
        f"{n}\t{name}\n" for n, name in [(54, "ioctl"), (192, "mmap2"), (248, "exit_group"), (334, "faccessat"),
                                          (337, "unshare"), (364, "perf_event_open"), (140, "llseek"),
                                          (149, "sysctl"), (983045, "set_tls")])
    trace = write(tmp_path, "pi.txt", ELISA)
    p = kp("ftrace", "analyze", trace, "--arch", "arm", "--syscall-table", write(tmp_path, "aus.txt", dump),
           "-f", "json", check=0)
    report = json.loads(p.stdout)
    sec = next(s for s in report["sections"] if s["title"].startswith(str(tmp_path / "aus.txt")))
    rows = {r[0]: r for r in sec["rows"]}
    assert rows[336][1:4] == ["(none)", "ppoll", 1]                 # used in the trace, listed first
    assert sec["rows"][0][0] == 336
    assert rows[149][1:3] == ["sysctl", "_sysctl"] and "spelling" in rows[149][4]
    assert 54 not in rows and 364 not in rows                       # agreeing numbers are not listed
    assert 983045 not in rows                                       # ARM's private set_tls: in the table too
    assert rows[983041][1:3] == ["(none)", "breakpoint"]            # (and those it lacks are listed)
    assert 140 not in rows                                          # ausyscall's llseek: a known spelling
    assert any("336: ausyscall (none), kernel ppoll" in w for w in report["warnings"])
    names = {r[0] for s in report["sections"] if s["title"] == "System calls" for r in s["rows"]}
    assert "ppoll" in names and "perf_event_open" not in names
    bad = kp("ftrace", "analyze", trace, "--arch", "arm", "--syscall-table", write(tmp_path, "bad.txt", "hello\n"),
             check=2)
    assert "ausyscall --dump" in bad.stderr


# ----------------------------------------------------------------------------- the other text forms

RAW_X86 = [
    ("python3", 77, "sys_enter: NR 16 (3, 5401, 7ffc8bfac640, 0, 7ffc8bfac680, 7f1cea7bf6d0)"),
    ("python3", 77, "sys_exit: NR 16 = -25"),
    ("python3", 77, "sys_enter: NR 39 (0, 0, 0, 7f3ea0b0b0c8, 0, 7f3ea08ac740)"),
    ("python3", 77, "sys_exit: NR 39 = 77"),
    ("python3", 77, "sys_enter: NR 257 (ffffff9c, 7f73f39690b1, 80000, 0, 0, 0)"),
    ("python3", 77, "sys_exit: NR 257 = -2"),
]
# the same calls as the syscalls:* events print them in the trace file, and in trace-cmd report
NAMED_FILE = [
    ("python3", 77, "sys_ioctl(fd: 3, cmd: 0x5401, arg: 0x7ffc8bfac640)"),
    ("python3", 77, "sys_ioctl -> 0xffffffffffffffe7"),
    ("python3", 77, "sys_getpid()"),
    ("python3", 77, "sys_getpid -> 0x4d"),
    ("python3", 77, "sys_openat(dfd: 0xffffff9c, filename: 0x7f73f39690b1, flags: 0x80000, mode: 0)"),
    ("python3", 77, "sys_openat -> 0xfffffffffffffffe"),
]
TRACE_CMD = """cpus=2
kprofprobe:          python3-77    [000]  2897.724293: sys_enter_ioctl:      fd: 0x00000003, cmd: 0x00005401, arg: 0x7ffc8bfac640
kprofprobe:          python3-77    [000]  2897.724295: sys_exit_ioctl:       0xffffffffffffffe7
kprofprobe:          python3-77    [000]  2897.724296: sys_enter_getpid:     
kprofprobe:          python3-77    [000]  2897.724297: sys_exit_getpid:      0x4d
kprofprobe:          python3-77    [000]  2897.724298: sys_enter_openat:     dfd: 0xffffff9c, filename: 0x7f73f39690b1, flags: 0x00080000, mode: 0x00000000
kprofprobe:          python3-77    [000]  2897.724299: sys_exit_openat:      0xfffffffffffffffe
kprofprobe:           python-76    [001]  2897.724300: softirq_raise:        vec=9 [action=RCU]
"""
TRACE_CMD_RAW = """cpus=2
             python3-77    [000]  2897.724292: sys_enter:            NR 16 (3, 5401, 7ffc8bfac640, 0, 7ffc8bfac680, 7f1cea7bf6d0)
             python3-77    [000]  2897.724294: sys_exit:             NR 16 = -25
             python3-77    [000]  2897.724295: sys_enter:            NR 39 (0, 0, 0, 7f3ea0b0b0c8, 0, 7f3ea08ac740)
             python3-77    [000]  2897.724296: sys_exit:             NR 39 = 77
             python3-77    [000]  2897.724297: sys_enter:            NR 257 (ffffff9c, 7f73f39690b1, 80000, 0, 0, 0)
             python3-77    [000]  2897.724298: sys_exit:             NR 257 = -2
"""
EXPECTED_FORMS = ({"ioctl": (1, {"ENOTTY": 1}, 0), "getpid": (1, {}, 0), "openat": (1, {"ENOENT": 1}, 0)},
                  {(0x5401, ""): (1, {"ENOTTY": 1})})


def _lines(spec, t0=500.0, width=7, flags="....."):
    return "\n".join(line(c, p, t0 + i * 1e-5, text, 0, flags, width) for i, (c, p, text) in enumerate(spec)) + "\n"


def test_a_comm_with_a_colon_is_not_a_buffer_name(tmp_path):
    """trace-cmd prints each instance's name right-aligned ("%*s: ") before the task column, whose comm is
    16 wide; a comm holding ": " (a thread named "node: worker") is one comm in the kernel's file and in
    trace-cmd's report, and a padded buffer name ("       top: ") is still a buffer name."""
    kernel = HEADER + "\n".join(line("node: worker", 1234, 1.0 + i * 1e-5, text) for i, text in enumerate(
        ["sys_enter: NR 39 (0, 0, 0, 0, 0, 0)", "sys_exit: NR 39 = 1234"])) + "\n"
    report = "cpus=2\n" + "".join(
        f"{buf:>10}: {comm:>16}-{pid:<5} [000]  2897.72429{i}: {event:<20} {text}\n"
        for i, (buf, comm, pid, event, text) in enumerate([
            ("top", "node: worker", 1234, "sys_enter:", "NR 39 (0, 0, 0, 0, 0, 0)"),
            ("top", "node: worker", 1234, "sys_exit:", "NR 39 = 1234"),
            ("kprofprobe", "python3", 77, "sys_enter:", "NR 39 (0, 0, 0, 0, 0, 0)"),
            ("kprofprobe", "python3", 77, "sys_exit:", "NR 39 = 77")]))
    for name, text, tasks in (("kernel.txt", kernel, {1234: "node: worker"}),
                              ("report.txt", report, {1234: "node: worker", 77: "python3"})):
        res = ft.analyse_trace([write(tmp_path, name, text)], "x86_64")
        assert {pid: p["images"][0]["exe"] for pid, p in res.footprint.processes.items()} == tasks, name
        assert res.footprint.syscalls["getpid"].calls == len(tasks) and res.unparsed == 0


@pytest.mark.parametrize("form", ["raw", "named", "trace-cmd", "trace-cmd raw", "raw+named"])
def test_text_forms_give_the_same_footprint(tmp_path, form):
    text = {"raw": lambda: _lines(RAW_X86), "named": lambda: _lines(NAMED_FILE), "trace-cmd": lambda: TRACE_CMD,
            "trace-cmd raw": lambda: TRACE_CMD_RAW,
            # both event kinds on: the per-syscall lines describe the same calls and are not counted twice
            "raw+named": lambda: _lines([x for pair in zip(RAW_X86, NAMED_FILE) for x in pair])}[form]()
    res = ft.analyse_trace([write(tmp_path, "t.txt", text)], "x86_64")
    assert fp_summary(res) == EXPECTED_FORMS
    assert res.unparsed == 0
    if form == "raw+named":
        assert res.named_ignored == 6 and any("counted as events only" in w for w in res.warnings)
    # the event path gives the same
    b = FootprintBuilder("x86_64")
    b.add_all(ft.iter_events(tmp_path / "t.txt", "x86_64"))
    assert ({n: (s.calls, dict(s.errors), s.unfinished) for n, s in b.fp.syscalls.items()},
            {k: (v["calls"], dict(v["errors"])) for k, v in b.fp.ioctls.items()}) == EXPECTED_FORMS


def test_per_syscall_event_names_map_through_entry_points(tmp_path):
    # arm's ppoll is defined as ppoll_time32: its syscalls: event is sys_enter_ppoll_time32
    text = _lines([("node", 9, "sys_ppoll_time32(ufds: 0x7e8f1000, nfds: 0x1, tsp: 0x7e8f1010, sigmask: 0, "
                               "sigsetsize: 0x8)"), ("node", 9, "sys_ppoll_time32 -> 0x1")])
    res = ft.analyse_trace([write(tmp_path, "t.txt", text)], "arm")
    assert set(res.footprint.syscalls) == {"ppoll"}


# ----------------------------------------------------------------------------- counting rules, all paths

def _workload(blocks=1, lost=False):
    """x86_64 raw_syscalls of a small process tree, with everything the counting rules are about."""
    out, t = [], 100.0

    def add(comm, pid, text, cpu=0):
        nonlocal t
        t += 0.0001
        out.append(line(comm, pid, t, text, cpu, ".....", 7))

    add("node", 100, "sys_exit: NR 232 = 1")                                  # began before the trace
    for b in range(blocks):
        add("node", 100, "sys_enter: NR 0 (11, 55d0c8a3e000, 10000, 0, 0, 0)")
        add("node", 100, "sys_exit: NR 0 = 512")
        add("<idle>", 0, "irq_handler_entry: irq=11 name=virtio0", 1)
        add("node", 100, "sys_enter: NR 16 (14, 5401, 7ffd5a1c0b10, 0, 0, 0)")
        add("node", 100, "sys_exit: NR 16 = -25")
        add("node", 100, "sys_enter: NR 16 (15, 40206b00, 7ffd5a1c0b40, 0, 0, 0)")
        add("node", 100, "sys_exit: NR 16 = 32")
        add("node", 100, "sys_enter: NR 15 (0, 0, 0, 0, 0, 0)")               # rt_sigreturn ...
        add("node", 100, "sys_exit: NR -1 = -4")                              # ... exits as NR -1
        add("node", 100, "sys_enter: NR 56 (3d0f00, 7f0000000000, 7f10, 7f20, 7f30, 0)")
        add("node", 100, "sys_exit: NR 56 = %d" % (200 + b))
        add("node", 200 + b, "sys_exit: NR 56 = 0", 1)                        # the child's return: not a call
        add("node", 200 + b, "sys_enter: NR 202 (7f1c, 80, 0, 0, 0, 0)", 1)
        add("node", 100, "sys_enter: NR 232 (9, 7ffd5a1c0a00, 400, ffffffff, 0, 0)")
        add("node", 200 + b, "sys_exit: NR 202 = -11", 1)
        add("node", 100, "sys_exit: NR 232 = 1")
        if lost and b == 1:
            out.append("CPU:1 [LOST 5 EVENTS]")
        add("node", 200 + b, "sys_enter: NR 231 (3, 0, 0, 0, 0, 0)", 1)       # exit_group(3): never returns
        add("mmtune", 300, "sys_enter: NR 16 (7, 40206b00, 7ffd5a1c0c40, 0, 0, 0)", 2)    # SPI only: errors
        add("mmtune", 300, "sys_exit: NR 16 = %d" % (-110 if b % 3 == 0 else 1), 2)     # pair by the key
        add("node", 100, "sys_enter: NR 61 (ffffffff, 7ffd5a1c0b00, 1, 0, 0, 0)")
        add("node", 100, "sys_exit: NR 61 = %d" % (200 + b))
        add("node", 100, "sched_process_exec: filename=/usr/bin/node pid=100 old_pid=100")
    add("node", 100, "sys_enter: NR 232 (9, 7ffd5a1c0a00, 400, ffffffff, 0, 0)")  # still running at the end
    return "\n".join(out) + "\n"


def _everything(res):
    fp = res.footprint
    return (fp_summary(res), {(t.comm, t.pid): (t.calls, t.errors, t.events, dict(t.syscalls)) for t in res.tasks},
            dict(res.events), {p: (d["parent"], d["end"]) for p, d in fp.processes.items()},
            {k: dict(v["by"]) for k, v in fp.ioctls.items()}, res.orphan_exits, res.unfinished, res.unpaired)


def test_counting_rules(tmp_path):
    res = ft.analyse_trace([write(tmp_path, "w.txt", _workload(1))], "x86_64")
    calls, ioctls = fp_summary(res)
    assert calls == {
        "epoll_wait": (3, {}, 1),        # one begun before the trace, one in it, one running at its end
        "read": (1, {}, 0), "ioctl": (3, {"ENOTTY": 1, "ETIMEDOUT": 1}, 0), "rt_sigreturn": (1, {}, 0),
        "clone": (1, {}, 0),             # once: the child's return is not a second call
        "futex": (1, {"EAGAIN": 1}, 0), "exit_group": (1, {}, 1), "wait4": (1, {}, 0)}
    assert ioctls == {(0x5401, ""): (1, {"ENOTTY": 1}), (0x40206b00, ""): (2, {"ETIMEDOUT": 1})}
    fp = res.footprint
    assert fp.processes[200]["parent"] == 100 and fp.processes[200]["end"] == {"exit": 3}
    assert fp.programs["/usr/bin/node"]["calls"] == 1
    assert fp.processes[100]["images"][0]["exe"] == "/usr/bin/node"       # comm "node" matched to the exec
    assert res.orphan_exits == 1 and res.unfinished == 2 and res.unpaired == 0 and not res.warnings


def test_fast_path_parallel_path_and_event_path_agree(tmp_path, monkeypatch):
    trace = write(tmp_path, "w.txt", _workload(300))
    exact = ft.analyse_trace([trace], "x86_64", jobs=1)
    assert exact.chunks == (0, 1) or exact.chunks[0] >= 1
    monkeypatch.setattr(ftrace_format, "CHUNK", 3000)              # many chunks: the chunk regex path, and its edges
    fast = ft.analyse_trace([trace], "x86_64", jobs=1)
    assert fast.chunks[0] > 50
    monkeypatch.setattr(ftrace_read, "PARALLEL_MIN", 0)
    par = ft.analyse_trace([trace], "x86_64", jobs=3)
    assert _everything(exact) == _everything(fast) == _everything(par)
    events = _event_path(trace, "x86_64")
    assert _one_image_per_comm(events["x86_64"])     # pid 300 reused: see the test below
    assert events == _all(exact.footprints)
    assert fp_summary(exact)[0]["clone"][0] == 300 and fp_summary(exact)[0]["epoll_wait"][0] == 302
    assert fp_summary(exact)[1][(0x40206b00, "")] == (600, {"ETIMEDOUT": 100})


def _shared(fp):
    """A footprint's JSON but its source (the fast path's trace summary: lines, windows, formats)."""
    d = json.loads(json.dumps(fp.to_dict()))
    del d["source"]
    return d


def _all(fps: dict) -> dict:
    return {abi: _shared(fp) for abi, fp in fps.items()}


def _event_path(trace, arch, task_arch=None):
    """The exact path: FtraceEventReader's events, one at a time, through one FootprintBuilder per ABI."""
    return _all(ft.event_footprints(trace, arch, task_arch))


def _one_image_per_comm(d: dict) -> bool:
    """The fast path counts a task's calls by comm: a comm the task goes back to (a reused pid, prctl) is one
    image. The event path's images in that form (the calls of an image whose exe came before added to the
    first); True when any were."""
    merged_any = False
    for proc in d["processes"]:
        by_exe: dict = {}
        for image in proc["images"]:
            if image["exe"] in by_exe:
                merged_any = True
                into = by_exe[image["exe"]]["syscalls"]
                for name, n in image["syscalls"].items():
                    into[name] = into.get(name, 0) + n
            else:
                by_exe[image["exe"]] = image
        proc["images"] = list(by_exe.values())
    return merged_any


# every ftrace trace the suite reads; "mixed" also with --task-arch python3=i386 (two footprints)
SUITE_TRACES = {
    "elisa": (lambda: ELISA, "arm"), "raw": (lambda: _lines(RAW_X86), "x86_64"),
    "named": (lambda: _lines(NAMED_FILE), "x86_64"), "trace-cmd": (lambda: TRACE_CMD, "x86_64"),
    "trace-cmd raw": (lambda: TRACE_CMD_RAW, "x86_64"),
    "raw+named": (lambda: _lines([x for pair in zip(RAW_X86, NAMED_FILE) for x in pair]), "x86_64"),
    "workload": (lambda: _workload(1), "x86_64"), "workload lost": (lambda: _workload(3, lost=True), "x86_64"),
    "workload 300": (lambda: _workload(300), "x86_64"), "mixed": (lambda: _mixed_trace(), "x86_64"),
    "mixed i386": (lambda: _mixed_trace(), "x86_64"),
    "enter only": (lambda: _enter_only(), "arm"),
    "exits": (lambda: _enter_only().replace("sys_enter: NR 3 (3, 0, 0, 0, 0, 0)", "sys_exit: NR 3 = 0"), "arm"),
    "cut": (lambda: _cut_elisa(), "arm"),
    "blocked tasks": (lambda: _blocked_tasks(), "arm"), "trailing blanks": (lambda: _trailing_blanks(), "x86_64"),
}


@pytest.mark.parametrize("name", SUITE_TRACES)
def test_fast_path_and_event_path_give_the_same_footprint(tmp_path, monkeypatch, name):
    """The fast path (counted keys → counted events → FootprintBuilder) and the exact event path
    (FtraceEventReader → FootprintBuilder) on every trace the suite uses: the same footprints, field for field
    (all but the source), but for two rules the paths knowingly differ in (pinned here, so a change to either
    shows)."""
    text, arch = SUITE_TRACES[name]
    ta = ftrace_format.TaskArch(arch, {"python3": "i386"}) if name == "mixed i386" else None
    trace = write(tmp_path, "t.txt", text())
    fast = _all(ft.analyse_trace([trace], arch, ta, jobs=1).footprints)
    monkeypatch.setattr(ftrace_format, "CHUNK", 4000)
    assert _all(ft.analyse_trace([trace], arch, ta, jobs=1).footprints) == fast
    exact = _event_path(trace, arch, ta)
    assert list(exact) == list(fast) == (["x86_64", "i386"] if ta else [arch])
    # a pid whose comm goes back to one it had (the workload's children reach pid 300, mmtune's): the fast
    # path, counting by comm, has one image per comm; the event path has the images in the order they came
    assert any(_one_image_per_comm(d) for d in exact.values()) == (name == "workload 300")
    if name.startswith("mixed"):
        # a clone whose child had not run when the trace ended: the event path has the child (from the
        # parent's return value), the fast path only tasks with lines of their own
        for abi, d in exact.items():
            mine = {p["pid"] for p in fast[abi]["processes"]}
            extra = [p for p in d["processes"] if p["pid"] not in mine]
            assert all(p["parent"] in mine and not any(i["syscalls"] for i in p["images"]) for p in extra)
            d["processes"] = [p for p in d["processes"] if p["pid"] in mine]
            d["totals"]["processes"] -= len(extra)
        assert len(exact["x86_64"]["processes"]) < len(_event_path(trace, arch, ta)["x86_64"]["processes"])
    assert exact == fast


def test_event_path_events(tmp_path):
    """What the event path carries beyond calls: the comm a task's calls are made under (named by the file
    sched_process_exec showed, also before that line), the program started, the parent sched_process_fork
    showed, exit_group's status; and a call entered after its group's exit_group is counted (the kernel
    entered it: ftrace is not strace reading a number off a thread being killed)."""
    text = HEADER + "\n".join([
        line("node", 100, 1.0, "sys_enter: NR 39 (0, 0, 0, 0, 0, 0)"), line("node", 100, 1.1, "sys_exit: NR 39 = 100"),
        line("node", 100, 1.2, "sched_process_fork: comm=node pid=100 child_comm=node child_pid=101"),
        line("node", 101, 1.3, "sys_enter: NR 59 (0, 0, 0, 0, 0, 0)", 1),
        line("python3", 101, 1.4, "sched_process_exec: filename=/usr/bin/python3 pid=101 old_pid=101", 1),
        line("python3", 101, 1.5, "sys_exit: NR 59 = 0", 1),
        line("python3", 101, 1.6, "sys_enter: NR 231 (2, 0, 0, 0, 0, 0)", 1),
        line("python3", 101, 1.7, "sys_enter: NR 0 (3, 0, 0, 0, 0, 0)", 1),
        line("node", 100, 1.8, "sched_process_exec: filename=/usr/bin/node pid=100 old_pid=100"),
    ]) + "\n"
    trace = write(tmp_path, "t.txt", text)
    evs = [e for e in ft.iter_events(trace, "x86_64") if isinstance(e, ProcessEvent)]
    assert [(e.pid, e.kind, e.path or e.parent or e.status) for e in evs] == [
        (100, "image", "/usr/bin/node"), (101, "forked", 100), (101, "image", "node"),
        (101, "exec", "/usr/bin/python3"), (101, "image", "/usr/bin/python3"), (101, "exit", 2),
        (100, "exec", "/usr/bin/node")]
    fp = ft.event_footprints(trace, "x86_64")["x86_64"]
    assert [i["exe"] for i in fp.processes[101]["images"]] == ["node", "/usr/bin/python3"]
    assert fp.processes[101]["parent"] == 100 and fp.processes[101]["end"] == {"exit": 2}
    assert fp.syscalls["read"].calls == 1 and fp.syscalls["read"].unfinished == 1
    assert set(fp.programs) == {"/usr/bin/python3", "/usr/bin/node"} and fp.root_pid is None
    assert _all({"x86_64": fp}) == _all(ft.analyse_trace([trace], "x86_64", jobs=1).footprints)


def _enter_only():
    return HEADER + "\n".join(line("node", 1234, 1000.0 + i / 1000, f"sys_enter: NR {nr} (3, 0, 0, 0, 0, 0)", 1)
                               for i, nr in enumerate([3, 4, 3, 54, 6])) + "\n"


def _cut_elisa():
    lines = (ELISA + line("node", 1234, 1000.0015, "sys_enter: NR 3 (5, 7e8f")).split("\n")      # cut mid-line
    lines.insert(14, "this line is not ftrace")
    return "\n".join(lines)


def _blocked_tasks(n=30):
    """raw_syscalls with the per-syscall enter of ioctl on (``--events raw_syscalls,syscalls:sys_enter_ioctl``):
    ``n`` tasks (more than a chunk looks up one by one), each inside an SPI ioctl when the trace begins, and again
    when it ends, its last line there the per-syscall one."""
    out, ts = [], 100.0
    for step in ("sys_exit: NR 54 = 0", "sys_enter: NR 3 (3, 7e000000, 10, 0, 0, 0)", "sys_exit: NR 3 = 16",
                 "sys_enter: NR 54 (5, 40206b00, 7e000000, 0, 0, 0)", "sys_ioctl(fd: 5, cmd: 40206b00, arg: 7e000000)"):
        for pid in range(1000, 1000 + n):
            ts += 1e-4
            out.append(line(f"task{pid}", pid, ts, step, width=7, flags="d..2."))
    return "\n".join(out) + "\n"        # (no header: every line in the chunk regex's shape)


def _trailing_blanks():
    """The workload's trace with blanks after every line (a copy through an editor or a mail): its errors, forks and
    exit statuses are read all the same."""
    return "".join(ln + "  \n" for ln in _workload(1).split("\n") if ln)


def _mixed_trace(lines=6000, seed=7):
    """x86_64 raw_syscalls of tasks on 4 CPUs whose lines interleave at random, with every kind of line the
    chunk path reads or skips on its own: ioctls of several requests per task (so their errors must be
    paired line by line), errors, clone (the parent's exit with the child's pid, the child's first line its
    return), exit_group, exec (a pid's comm changes), sched_process_fork/exec and irq events, a header, a
    lost-events line, an event name too long for the quick chunk regex, and rt_sigreturn's NR -1 exit."""
    import random
    rnd = random.Random(seed)
    calls = [(0, None), (1, None), (202, -11), (232, None), (257, -2), (16, None), (16, None), (15, None)]
    requests = [(0x5401, -25), (0x40206b00, -110), (0x80046b01, None)]
    out = HEADER.splitlines()
    tasks = [["node", 100], ["python3", 2001], ["cron", 455], ["kworker/u8:2", 88], ["oref0-pump-loo", 4100]]
    cpus = [[t, None] for t in tasks[:4]]          # per CPU: task, the call it is in (nr, text of the exit)
    spare, next_pid, t, started = tasks[4:], 3000, 500.0, set()

    def switch(c, new):                            # another task on CPU c; a child begins with its clone's return
        cpus[c] = [new, None]
        if new[1] >= 3000 and new[1] not in started:
            started.add(new[1])
            out.append(line(new[0], new[1], t, "sys_exit: NR 56 = 0", c, "d..2.", 7))

    for i in range(lines):
        t += rnd.random() * 0.0002
        c = rnd.randrange(4) if rnd.random() < 0.4 else i % 4
        task, pending = cpus[c]
        comm, pid = task

        def add(text, who=None):
            out.append(line(*(who or task), t, text, c, "d..2.", 7))
        if i == lines // 2:
            out.append("CPU:%d [LOST 3 EVENTS]" % c)
        r = rnd.random()
        if r < 0.02:
            add("irq_handler_entry: irq=19 name=arch_timer", ("<idle>", 0))
        elif r < 0.025:
            add("an_event_name_longer_than_sixty_four_characters_which_the_quick_regex_leaves_alone: x=1")
        elif pending is None:
            nr, err = rnd.choice(calls)
            if nr == 16:
                req, err = rnd.choice(requests)
                add("sys_enter: NR 16 (%x, %x, 7ffd5a1c0b10, 0, 0, 0)" % (rnd.randrange(3, 20), req))
            elif rnd.random() < 0.02 and len(spare) < 6:             # clone: the parent returns the child's pid
                add("sys_enter: NR 56 (3d0f00, 7f0000000000, 7f10, 7f20, 7f30, 0)")
                cpus[c][1] = (56, "= %d" % next_pid)
                child = [comm, next_pid]
                next_pid += 1
                spare.append(child)
                add("sched_process_fork: comm=%s pid=%d child_comm=%s child_pid=%d" % (comm, pid, comm, child[1]))
                continue
            elif pid >= 3000 and rnd.random() < 0.02 and spare:      # a child's exit_group: never returns
                add("sys_enter: NR 231 (%x, 0, 0, 0, 0, 0)" % rnd.randrange(3))
                switch(c, spare.pop(0))
                continue
            else:
                add("sys_enter: NR %d (%x, 7ffd5a1c0b10, %x, 0, 0, 0)" % (nr, rnd.randrange(16), rnd.randrange(99999)))
            ret = err if err is not None and rnd.random() < 0.3 else rnd.randrange(4096)
            cpus[c][1] = (nr, "= %d" % ret)
        else:
            nr, ret = pending
            add("sys_exit: NR %d %s" % (-1 if nr == 15 else nr, ret))
            cpus[c][1] = None
            if rnd.random() < 0.004:                                 # exec: same pid, new comm
                add("sched_process_exec: filename=/usr/bin/node pid=%d old_pid=%d" % (pid, pid))
                task[0] = "node"
            elif rnd.random() < 0.05 and spare:                      # another task on this CPU
                spare.append(task)
                switch(c, spare.pop(0))
    return "\n".join(out) + "\n"


def _result(res):
    """Everything analyse_trace reports but its chunk statistics."""
    return ({abi: fp.to_dict() for abi, fp in res.footprints.items()},
            [(r.comm, r.pid, r.tgid, r.abi, r.calls, r.errors, r.events, dict(r.syscalls)) for r in res.tasks],
            dict(res.events), res.lines, res.unparsed, res.unparsed_samples, dict(res.lost), res.first_ts,
            res.last_ts, res.formats, res.named_ignored, res.orphan_exits, res.unfinished, res.unpaired,
            res.enters_exits, dict(res.other), res.warnings)


def _line_by_line(trace, monkeypatch):
    """analyse_trace of ``trace`` with every line read on its own (no chunk path): the reference."""
    def by_line(self, body, lo, hi):
        for text in body[lo:hi].split(b"\n")[1:]:
            self.part.lines += 1
            self.line(text, self.part.lines)

    with monkeypatch.context() as m:
        m.setattr(ft._Pass, "chunk", by_line)
        return ft.analyse_trace([trace], "x86_64", jobs=1)


def test_quick_and_strict_chunk_regexes_and_line_by_line_reading_agree(tmp_path, monkeypatch):
    """The chunk path (quick regex, strict regex where the quick one misses, halving around odd lines,
    lines cut by chunk ends, several worker processes) against reading every line on its own."""
    trace = write(tmp_path, "mixed.txt", _mixed_trace())
    reference = _line_by_line(trace, monkeypatch)
    assert reference.chunks == (0, 0)
    assert reference.footprint.ioctls and reference.footprint.processes and reference.unparsed == 0
    assert sum(fp.total_errors for fp in reference.footprints.values()) > 50
    assert any(not p["parent"] is None for p in reference.footprint.processes.values())
    assert {r.comm for r in reference.tasks if r.pid == 100} == {"node"} and len(reference.lost) == 1

    quick, strict = [], []
    real_quick = ft._quick_regex
    for chunk in (1 << 22, 50_000, 7_919):
        monkeypatch.setattr(ftrace_format, "CHUNK", chunk)
        res = ft.analyse_trace([trace], "x86_64", jobs=1)
        assert res.chunks[0] >= 1, chunk
        quick.append(_result(res))
        monkeypatch.setattr(ftrace_chunks, "_quick_regex", lambda *nrs: ft._chunk_regexes(*nrs)[0])   # the strict one only
        strict.append(_result(ft.analyse_trace([trace], "x86_64", jobs=1)))
        monkeypatch.setattr(ftrace_chunks, "_quick_regex", real_quick)
    indexed = []            # every chunk's tasks looked up in one pass over it, as in a chunk with many tasks
    monkeypatch.setattr(ftrace_chunks, "_MANY_TASKS", 0)
    for chunk in (1 << 22, 50_000):
        monkeypatch.setattr(ftrace_format, "CHUNK", chunk)
        indexed.append(_result(ft.analyse_trace([trace], "x86_64", jobs=1)))
    monkeypatch.undo()
    monkeypatch.setattr(ftrace_format, "CHUNK", 7_919)
    monkeypatch.setattr(ftrace_read, "PARALLEL_MIN", 0)
    monkeypatch.setattr(ftrace_read, "PART_MIN", 40_000)
    parallel = _result(ft.analyse_trace([trace], "x86_64", jobs=3))
    want = _result(reference)
    for got in (*quick, *strict, *indexed, parallel):
        assert got == want


def _events_after_exit():
    """Each task's last syscall (exit_group, never returning) followed by a burst of other events of the task, as
    in an all-events trace: 70 of them, more than any fixed look-back."""
    out, t = [], 10.0
    for k in range(2):
        pid = 2000 + k
        calls = ("sys_enter: NR 0 (3, 7ffd5a1c0b10, 10, 0, 0, 0)", "sys_exit: NR 0 = 10")
        out += [line("oref0", pid, t + i * 1e-5, calls[i % 2]) for i in range(600)]
        t += 0.01
        out += [line("oref0", pid, t, "sys_enter: NR 231 (0, 0, 0, 0, 0, 0)")]
        out += [line("oref0", pid, t + (i + 1) * 1e-5, "kmem_cache_free: call_site=x ptr=y") for i in range(70)]
        t += 0.01
    return "\n".join(out) + "\n"


class _Clock:
    t = 10.0


def _cron_filler(out: list, clock: _Clock):
    """filler(n): n read calls of another task (cron) on CPU 1, the clock moving on."""
    def filler(n):
        for _ in range(n):
            clock.t += 1e-5
            out.append(line("cron", 55, clock.t, "sys_enter: NR 0 (3, 0, 0, 0, 0, 0)", 1))
            clock.t += 1e-5
            out.append(line("cron", 55, clock.t, "sys_exit: NR 0 = 0", 1))
    return filler


def _lost_ioctl():
    """An ioctl that succeeded, then lost events, then a failed ioctl exit whose enter was lost: an orphan, not
    an error of the first call's request."""
    out, clock = [], _Clock()
    filler = _cron_filler(out, clock)
    filler(300)
    out += [line("node", 100, clock.t + 1e-6, "sys_enter: NR 16 (3, 5401, 0, 0, 0, 0)"),
            line("node", 100, clock.t + 2e-6, "sys_exit: NR 16 = 0")]
    filler(300)
    out.append("CPU:0 [LOST 1 EVENTS]")
    filler(300)
    out.append(line("node", 100, clock.t + 1e-6, "sys_exit: NR 16 = -25"))
    filler(300)
    return "\n".join(out) + "\n"


def _exit_then_enter_ioctl():
    """A task's first ioctl line is an exit (its call began before the trace), then it enters TCGETS, whose failed
    exit comes chunks later: the error is TCGETS's (counts of enters and exits cannot tell the order)."""
    out, clock = [], _Clock()
    filler = _cron_filler(out, clock)
    filler(5)
    out.append(line("node", 100, clock.t + 1e-6, "sys_exit: NR 16 = 0"))
    filler(10)
    out.append(line("node", 100, clock.t + 1e-6, "sys_enter: NR 16 (3, 5401, 0, 0, 0, 0)"))
    filler(600)
    out.append(line("node", 100, clock.t + 1e-6, "sys_exit: NR 16 = -25"))
    filler(300)
    return "\n".join(out) + "\n"


def _narrow_args():
    """A task whose first 12 raw enters all have narrow arguments, with 10 other events of it between each two:
    the 32-bit warning must not depend on how many of its lines a chunk holds."""
    out, t = [], 10.0
    for _ in range(12):
        out.append(line("python3", 777, t, "sys_enter: NR 3 (5, 0, 0, 0, 0, 0)"))
        out += [line("python3", 777, t + (i + 1) * 1e-5, "kmem_cache_alloc: call_site=x ptr=y") for i in range(10)]
        out.append(line("python3", 777, t + 2e-4, "sys_exit: NR 3 = 0"))
        t += 1e-3
    return "\n".join(out * 40) + "\n"


SHAPES = {   # other shapes of the same kind of trace, each read both ways (found in review, 2026-12-07)
    "crlf line ends": lambda: _mixed_trace().replace("\n", "\r\n"),
    "whole-number clock": lambda: re.sub(r"(\d+)\.(\d{6}): ", r"\1\2: ", _mixed_trace()),
    "lost events, number not given": lambda: _mixed_trace().replace("[LOST 3 EVENTS]", "[LOST EVENTS]"),
    "events after exit_group": _events_after_exit,
    "an orphan ioctl exit after lost events": _lost_ioctl,
    "an ioctl exit before the task's first enter": _exit_then_enter_ioctl,
    "narrow arguments among other events": _narrow_args,
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_chunked_and_line_by_line_reading_agree_on_other_shapes(tmp_path, monkeypatch, shape):
    trace = write(tmp_path, "t.txt", SHAPES[shape](), mode="w")
    reference = _line_by_line(trace, monkeypatch)
    assert reference.unparsed == 0 and reference.footprint.syscalls, (shape, reference.unparsed_samples)
    want = _result(reference)
    for chunk, many in itertools.product((1 << 22, 50_000, 7_919), (24, 0)):
        monkeypatch.setattr(ftrace_format, "CHUNK", chunk)
        monkeypatch.setattr(ftrace_chunks, "_MANY_TASKS", many)  # 0: every chunk's tasks looked up in one pass
        res = ft.analyse_trace([trace], "x86_64", jobs=1)
        assert res.chunks[0] >= 1, (shape, chunk)
        assert _result(res) == want, (shape, chunk, many)


def test_other_shapes_mean_what_they_say(tmp_path, monkeypatch):
    """What those shapes must give, beyond agreeing: CRLF and a whole-number clock read as the plain trace, a
    lost-events line without a number is counted as at least one and said, an orphan exit is not an error of
    the request before it, a burst of events after exit_group leaves the call unfinished, not unpaired."""
    def read(shape):
        return ft.analyse_trace([write(tmp_path, f"{shape}.txt", SHAPES[shape]() if shape in SHAPES
                                       else _mixed_trace())], "x86_64", jobs=1)

    def traced(res):       # what was found, less the footprints' note of which file they came from
        out = _result(res)
        for fp in out[0].values():
            fp["source"].pop("traces")
        return out
    plain = traced(read("plain"))
    assert traced(read("crlf line ends")) == plain
    clock = read("whole-number clock")
    assert traced(clock)[1:3] == plain[1:3]      # the tasks and the events
    lost = ft.analyse_trace([write(tmp_path, "lost.txt", SHAPES["lost events, number not given"]())], "x86_64")
    assert lost.lost == {0: 1} and any("did not say how many" in w for w in lost.warnings), lost.warnings
    orphan = ft.analyse_trace([write(tmp_path, "orphan.txt", _lost_ioctl())], "x86_64")
    assert [(r["name"] or r["request"], r["calls"], r["errors"]) for r in orphan.footprint.ioctl_rows()] == \
        [("TCGETS", 1, {})], orphan.footprint.ioctl_rows()
    late = ft.analyse_trace([write(tmp_path, "late.txt", _exit_then_enter_ioctl())], "x86_64")
    assert [(r["name"], r["calls"], dict(r["errors"])) for r in late.footprint.ioctl_rows()] == \
        [("TCGETS", 1, {"ENOTTY": 1})]
    ends = ft.analyse_trace([write(tmp_path, "ends.txt", _events_after_exit())], "x86_64")
    assert ends.unpaired == 0 and ends.footprint.syscalls["exit_group"].unfinished == 2


def test_lost_events_are_counted_and_warned(tmp_path):
    res = ft.analyse_trace([write(tmp_path, "w.txt", _workload(3, lost=True))], "x86_64")
    assert res.lost == {1: 5}
    assert any("lost events" in w and "CPU 1: 5" in w for w in res.warnings)


def test_time_window(tmp_path, monkeypatch):
    text = "".join(line("node", 5, 10.0 + i * 0.5, "sys_enter: NR 39 (0, 0, 0, 0, 0, 0)", 0, ".....", 7) + "\n" +
                   line("node", 5, 10.0 + i * 0.5 + 0.1, "sys_exit: NR 39 = 5", 0, ".....", 7) + "\n"
                   for i in range(200))                                     # 10.0 … 109.6 s
    trace = write(tmp_path, "t.txt", text)
    for chunk in (1 << 22, 700):
        monkeypatch.setattr(ftrace_format, "CHUNK", chunk)
        res = ft.analyse_trace([trace], "x86_64", skip=10, discard_tail=30)   # counted: 20.0 ≤ ts < 79.6
        assert res.footprint.syscalls["getpid"].calls == 120
        assert res.footprint.syscalls["getpid"].unfinished == 1      # entered at 79.5, returned at 79.6
        assert res.outside == 400 - 239
    p = kp("ftrace", "analyze", trace, "--arch", "x86_64", "--skip", "10s", "--discard-tail", "0.5m", check=0)
    assert "getpid" in p.stdout and "counted" in p.stdout
    p = kp("ftrace", "analyze", trace, "--arch", "x86_64", "--skip", "60", "--discard-tail", "60", check=2)
    assert "window is empty" in p.stderr
    p = kp("ftrace", "analyze", trace, "--arch", "x86_64", "--skip", "five", check=2)
    assert "not a duration" in p.stderr


def test_compressed_traces(tmp_path):
    plain = write(tmp_path, "w.txt", _workload(20))
    gz = write(tmp_path, "w.txt.gz", gzip.compress(plain.read_bytes()))
    xz = write(tmp_path, "w.txt.xz", lzma.compress(plain.read_bytes()))
    odd = write(tmp_path, "w.data", gzip.compress(plain.read_bytes()))       # recognised by magic, not by name
    want = _everything(ft.analyse_trace([plain], "x86_64"))
    for p in (gz, xz, odd):
        assert _everything(ft.analyse_trace([p], "x86_64")) == want
    cut = write(tmp_path, "cut.gz", gz.read_bytes()[:len(gz.read_bytes()) // 2])
    p = kp("ftrace", "analyze", cut, "--arch", "x86_64", check=2)
    assert "truncated" in p.stderr
    zst = write(tmp_path, "w.zst", b"\x28\xb5\x2f\xfd" + b"\0" * 40)
    p = kp("ftrace", "analyze", zst, "--arch", "x86_64", check=2)
    assert "zstd" in p.stderr and "decompress" in p.stderr


# ----------------------------------------------------------------------------- bad input

def test_bad_input(tmp_path):
    cases = {
        "empty": (b"", "empty"),
        "headers only": (HEADER.encode(), "only headers"),
        "binary": (bytes(range(256)) * 64, "binary"),
        "trace-cmd .dat": (b"\x17\x08\x44tracing6\0\0\0" + os.urandom(2000), "trace-cmd report"),
        "strace log": (b"1234  1700000000.000001 openat(AT_FDCWD, \"/etc/ld.so.cache\", O_RDONLY) = 3 <0.000010>\n"
                       b"1234  1700000000.000020 close(3) = 0 <0.000003>\n+++ exited with 0 +++\n", "strace log"),
        "perf script": (b"            node  1234 [002]  1000.000100: raw_syscalls:sys_enter: NR 336 (7e8f1000, 1)\n",
                        "perf script"),
        "json": (b'{"format": "kprof-footprint", "version": 1}\n', "JSON"),
        "text": (b"hello world\nthis is not a trace\n", "no ftrace event lines"),
    }
    for name, (data, words) in cases.items():
        p = kp("ftrace", "analyze", write(tmp_path, name.replace(" ", "_"), data), "--arch", "arm", check=2)
        assert words in p.stderr, (name, p.stderr)
    p = kp("ftrace", "analyze", tmp_path / "missing.txt", "--arch", "arm", check=2)
    assert "no such file" in p.stderr
    p = kp("ftrace", "analyze", tmp_path, "--arch", "arm", check=2)
    assert "directory" in p.stderr
    p = kp("ftrace", "analyze", write(tmp_path, "pi.txt", ELISA), "--arch", "sparc", check=2)
    assert "unknown architecture" in p.stderr
    p = kp("ftrace", "analyze", tmp_path / "pi.txt", "--arch", "arm", "--task-arch", "node", check=2)
    assert "PID=ARCH" in p.stderr


def test_truncated_plain_trace_and_garbage_lines_are_counted_and_shown(tmp_path):
    p = kp("ftrace", "analyze", write(tmp_path, "cut.txt", _cut_elisa()), "--arch", "arm", "-f", "json", check=0)
    report = json.loads(p.stdout)
    warn = " ".join(report["warnings"])
    assert "last line is incomplete" in warn and "not understood" in warn and "this line is not ftrace" in warn
    assert "syscall_999" in warn                                   # unknown number: shown, with why


# ----------------------------------------------------------------------------- 64-bit and 32-bit tasks

def test_mixed_abi_trace_as_documented(tmp_path):
    """A 64-bit arm kernel running 32-bit Raspberry Pi OS programs next to 64-bit ones: raw_syscalls lines
    carry each task's own numbers and no ABI. kprof reads them with --arch, reports tasks whose arguments
    never exceed 32 bits, and reads the tasks named with --task-arch with their own table."""
    spec = []
    for i in range(10):
        spec += [("node", 300, "sys_enter: NR 336 (7e8f1000, 1, 7e8f1010, 0, 8, 0)"),        # arm: ppoll
                 ("node", 300, "sys_exit: NR 336 = 1"),
                 ("node", 300, "sys_enter: NR 54 (17, 40206b00, 7e8f1234, 0, 0, 0)"),        # arm: ioctl
                 ("node", 300, "sys_exit: NR 54 = 1"),
                 ("systemd", 1, "sys_enter: NR 73 (4, ffffd5a1c0a00, 10, ffffffff, 0, 0)"),   # arm64: ppoll
                 ("systemd", 1, "sys_exit: NR 73 = 0"),
                 ("systemd", 1, "sys_enter: NR 29 (3, 5401, ffffd5a1c0b10, 0, 0, 0)"),        # arm64: ioctl
                 ("systemd", 1, "sys_exit: NR 29 = -25")]
    trace = write(tmp_path, "mixed.txt", _lines(spec))
    plain = ft.analyse_trace([trace], "aarch64")
    assert "syscall_336" in plain.footprint.syscalls                   # read with the 64-bit table: wrong
    assert any("never exceeded 32 bits" in w and "node-300" in w and "systemd" not in w for w in plain.warnings)
    ta = ft.TaskArch.parse("aarch64", ["node=arm64-compat"])
    res = ft.analyse_trace([trace], "aarch64", ta)
    assert set(res.footprints) == {"aarch64", "arm64-compat"}
    compat, native = res.footprints["arm64-compat"], res.footprints["aarch64"]
    assert compat.syscalls["ppoll"].calls == 10 and compat.syscalls["ioctl"].calls == 10
    assert native.syscalls["ppoll"].calls == 10 and dict(native.syscalls["ioctl"].errors) == {"ENOTTY": 10}
    assert [r["name"] for r in compat.ioctl_rows()] == ["SPI_IOC_MESSAGE(1)"]
    assert [r["name"] for r in native.ioctl_rows()] == ["TCGETS"]
    assert not any("32 bits" in w for w in res.warnings)
    # by pid works too, and the CLI writes one footprint per ABI
    p = kp("ftrace", "analyze", trace, "--arch", "aarch64", "--task-arch", "300=arm64-compat",
           "--footprint", tmp_path / "fp.json", check=0)
    assert "arm64-compat tasks: System calls" in p.stdout
    assert json.loads((tmp_path / "fp-arm64-compat.json").read_text())["syscalls"]["ppoll"]["calls"] == 10
    # the other way round: 64-bit values in a trace read as 32-bit arm
    wrong = ft.analyse_trace([trace], "arm")
    assert any("64-bit kernel" in w and "systemd-1" in w for w in wrong.warnings)


def test_x86_64_kernel_with_i386_task(tmp_path):
    spec = [("busybox", 42, "sys_enter: NR 4 (1, 804a000, e, 0, 0, 0)"), ("busybox", 42, "sys_exit: NR 4 = 14")] * 8
    trace = write(tmp_path, "t.txt", _lines(spec))
    assert set(ft.analyse_trace([trace], "x86_64").footprint.syscalls) == {"stat"}      # x86_64 4: stat
    res = ft.analyse_trace([trace], "x86_64", ft.TaskArch.parse("x86_64", ["busybox=i386"]))
    assert set(res.footprints["i386"].syscalls) == {"write"}                           # i386 4: write


def test_durations():
    assert ft.parse_duration("5m") == 300 and ft.parse_duration("90") == 90 and ft.parse_duration("1.5h") == 5400
    assert ft.parse_duration("250ms") == 0.25 and ft.parse_duration(None) is None
    with pytest.raises(KprofError):
        ft.parse_duration("5 minutes")


def test_enter_only_trace_is_diagnosed_as_such_not_as_lost_events(tmp_path):
    enters = _enter_only()
    res = ft.analyse_trace([write(tmp_path, "enter.txt", enters)], "arm")
    text = " ".join(res.warnings)
    assert "sys_enter events only" in text and "did not pair up" not in text
    assert res.footprint.syscalls["read"].calls == 2
    exits = enters.replace("sys_enter: NR 3 (3, 0, 0, 0, 0, 0)", "sys_exit: NR 3 = 0")
    lost = ft.analyse_trace([write(tmp_path, "lost.txt", exits)], "arm")
    assert any("did not pair up" in w for w in lost.warnings)


def test_footprint_combine(tmp_path):
    """Footprint.combine: counts add up, a pid in both is one task continued, the inputs stay as they were."""
    from profiler.footprint import Footprint
    fp = ft.analyse_trace([write(tmp_path, "w.txt", _workload(3))], "x86_64").footprint
    before = json.dumps(fp.to_dict())
    one = Footprint.combine(fp)
    assert one.to_dict() == fp.to_dict() and one is not fp
    two = Footprint.combine(fp, Footprint.from_dict(json.loads(before)))
    assert json.dumps(fp.to_dict()) == before
    assert {n: s.calls for n, s in two.syscalls.items()} == {n: 2 * s.calls for n, s in fp.syscalls.items()}
    assert {n: dict(s.errors) for n, s in two.syscalls.items()} == \
        {n: {e: 2 * k for e, k in s.errors.items()} for n, s in fp.syscalls.items()}
    assert {k: (u["calls"], dict(u["by"])) for k, u in two.ioctls.items()} == \
        {k: (2 * u["calls"], {p: 2 * c for p, c in u["by"].items()}) for k, u in fp.ioctls.items()}
    assert two.programs["/usr/bin/node"]["calls"] == 2 * fp.programs["/usr/bin/node"]["calls"]
    assert set(two.processes) == set(fp.processes)
    for pid, p in fp.processes.items():
        assert [i["exe"] for i in two.processes[pid]["images"]] == [i["exe"] for i in p["images"]]
        assert two.processes[pid]["parent"] == p["parent"] and two.processes[pid]["end"] == p["end"]
    assert two.total_calls == 2 * fp.total_calls and len(two.source["combined"]) == 2
    with pytest.raises(KprofError, match="different architectures"):
        Footprint.combine(fp, Footprint(arch="arm"))
    with pytest.raises(KprofError):
        Footprint.combine()


def test_calls_in_progress_at_both_ends_of_a_trace_of_many_tasks_pair_up(tmp_path):
    """30 tasks each blocked in an ioctl when the trace begins and when it ends, their last lines per-syscall
    ones: 60 calls, 30 begun before the window and 30 unfinished, no unpaired line (the fast path took the
    per-syscall line for the task's last and lost its raw one once a chunk had more than 24 tasks)."""
    res = ft.analyse_trace([write(tmp_path, "t.txt", _blocked_tasks())], "arm", jobs=1)
    ioctl = res.footprint.syscalls["ioctl"]
    assert res.chunks == (1, 0)         # the chunk path
    assert (ioctl.calls, ioctl.unfinished, res.orphan_exits, res.unpaired) == (60, 30, 30, 0)


def test_a_hex_return_of_minus_4096_is_a_value_not_an_error(tmp_path):
    """-1 … -4095 are errors (include/linux/err.h); 0x…fffff000 (-4096) is an address, on both text forms."""
    text = _lines([("node", 1234, "sys_mmap_pgoff(addr: 0, len: 1000)"),
                   ("node", 1234, "sys_mmap_pgoff -> 0xfffffffffffff000"),
                   ("node", 1234, "sys_openat(dfd: ffffff9c, filename: 7e000000)"),
                   ("node", 1234, "sys_openat -> 0xfffffffffffff001")])
    for trace in (text, text.replace("sys_mmap_pgoff -> 0xfffffffffffff000", "sys_exit_mmap_pgoff: 0xfffff000")
                  .replace("sys_mmap_pgoff(addr: 0, len: 1000)", "sys_enter_mmap_pgoff: addr: 0x0, len: 0x1000")):
        fp = ft.analyse_trace([write(tmp_path, "t.txt", trace)], "arm", jobs=1).footprint
        assert (fp.syscalls["mmap_pgoff"].calls, dict(fp.syscalls["mmap_pgoff"].errors)) == (1, {}), trace
    assert dict(fp.syscalls["openat"].errors) == {"errno 4095": 1}
