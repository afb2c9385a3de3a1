"""Fault scenarios: the normal path next to the error path, and a sequence view per process that reads
like the flowcharts ELISA drew (start-up, open, exchange, error handling, exit), with a Mermaid diagram for
Markdown.

The injection rules themselves (a scenario's ``inject:``, what strace and the ptrace tracer make of them)
are in ``profiler.inject``, below the recorders.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from profiler.events import ProcessEvent, SyscallEvent
from profiler.kernel import syscalls
from profiler.kernel.ioctls import decode_ioctl
from profiler.parse.strace_log import StraceLogParser

_EXECS = syscalls.syscall_group("exec")


def normal_variant(scenario):
    """The same scenario without its faults: the normal path the error path is compared with."""
    pump = dict(scenario.pump, fault="none") if scenario.pump is not None else None
    return dataclasses.replace(scenario, inject=[], pump=pump, expect={}, radio_fault=None)


def has_faults(scenario) -> bool:
    return (bool(scenario.inject) or bool(scenario.pump and scenario.pump.get("fault", "none") != "none")
            or bool(scenario.radio_fault))


def call_target(ev: SyscallEvent) -> str | None:
    """The object a call acts on: the path behind its fd, or its path argument (openat's file)."""
    if ev.fd is not None and ev.fd.text:
        return ev.fd.path
    if ev.result_fd is not None and ev.result_fd.text and ev.name in ("open", "openat", "openat2", "creat"):
        return ev.result_fd.path
    return ev.path


# ---- sequence view ---------------------------------------------------------------------------------

@dataclass
class Step:
    name: str
    target: str | None
    count: int = 1
    errno: str | None = None
    injected: bool = False
    detail: str = ""

    def label(self) -> str:
        s = self.name + (f" ×{self.count}" if self.count > 1 else "")
        if self.target:
            s += f" {self.target}"
        if self.detail:
            s += f" {self.detail}"
        if self.errno:
            s += f" → {self.errno}" + (" (injected)" if self.injected else "")
        return s


@dataclass
class ProcessSequence:
    pid: int
    exe: str | None
    steps: list[Step] = field(default_factory=list)
    end: str = ""


def read_sequences(log: Path, arch: str) -> dict[int, ProcessSequence]:
    """Every process's calls in order, consecutive repeats collapsed (``read ×158 /dev/serial0``).

    The threads of a process (clone with CLONE_THREAD: a Go program's calls move between 5-8 of them) make
    one sequence, under the process's pid.
    """
    parser = StraceLogParser(lambda n: syscalls.canonical_name(arch, n), arch=arch, paths=True)
    seqs: dict[int, ProcessSequence] = {}
    with open(log, encoding="utf-8", errors="surrogateescape") as f:
        events = list(parser.feed(f)) + list(parser.finish())
    leader: dict[int, int] = {}
    for ev in events:   # a thread's first calls can be logged before its clone returns: map them all first
        if isinstance(ev, SyscallEvent) and ev.thread and isinstance(ev.result, int) and ev.result > 0:
            leader[ev.result] = ev.pid
    for ev in events:
        pid = ev.pid
        while pid in leader:
            pid = leader[pid]
        seq = seqs.setdefault(pid, ProcessSequence(pid, None))
        if isinstance(ev, ProcessEvent):
            if ev.kind == "exit":
                seq.end = f"exit {ev.status}"
            elif ev.kind == "killed":
                seq.end = f"killed by {ev.signal}"
            continue
        if ev.name in _EXECS and ev.result == 0:
            seq.exe = ev.path
        target = call_target(ev)
        detail = ""
        if ev.name == "ioctl":
            req = ev.request
            if req is not None:
                detail = decode_ioctl(req, ev.fd.text if ev.fd is not None else None, arch).name or f"{req:#x}"
        elif ev.name in ("read", "recvfrom") and ev.result == 0:
            detail = "= 0 (nothing received)"
        last = seq.steps[-1] if seq.steps else None
        if last and (last.name, last.target, last.errno, last.injected, last.detail) == (
                ev.name, target, ev.errno, ev.injected, detail):
            last.count += 1
        else:
            seq.steps.append(Step(ev.name, target, 1, ev.errno, ev.injected, detail))
    return seqs


def phases(seq: ProcessSequence, targets: set[str]) -> list[tuple[str, list[Step]]]:
    """Split a process's steps into ELISA's flowchart phases around the object of interest."""
    out: list[tuple[str, list[Step]]] = []
    phase = "start-up"
    # with injected faults the error path starts at the first injected call; otherwise at the first
    # failing call on the object of interest
    injection = any(s.injected for s in seq.steps)
    for step in seq.steps:
        on_target = step.target in targets
        failed = step.injected if injection else bool(step.errno)
        if step.name in ("exit_group", "exit"):
            new = "exit"
        elif phase != "error handling" and on_target and failed:
            new = "error handling"
        elif phase == "start-up" and on_target:
            new = f"open {step.target}" if step.name.startswith("open") else f"use {step.target}"
        elif phase.startswith("open ") and on_target and step.name in ("read", "write", "poll", "ppoll", "select",
                                                                         "pselect6", "sendto", "recvfrom"):
            new = f"exchange with {step.target}"
        else:
            new = phase
        if not out or new != phase:
            out.append((new, []))
            phase = new
        out[-1][1].append(step)
    return out


def phase_rows(ph: list[tuple[str, list[Step]]], limit: int = 8) -> list[list]:
    rows = []
    for name, steps in ph:
        calls = sum(s.count for s in steps)
        if name == "start-up" or len(steps) > limit:
            top = Counter()
            for s in steps:
                top[s.name] += s.count
            what = ", ".join(f"{n} {c}" for n, c in top.most_common(6))
        else:
            what = "; ".join(s.label() for s in steps)
        rows.append([name, calls, what + _empty_reads(steps)])
    return rows


def _empty_reads(steps: list[Step]) -> str:
    n = sum(s.count for s in steps if s.detail.startswith("= 0"))
    return f"; {n} reads received nothing" if n else ""


def mermaid(title: str, ph: list[tuple[str, list[Step]]], end: str, targets: set[str]) -> str:
    lines = ["flowchart TD"]
    nodes = []
    for i, (name, steps) in enumerate(ph):
        calls = sum(s.count for s in steps)
        errs = [s for s in steps if s.errno and s.target in targets]
        text = f"{name}<br/>{calls} calls" + (f"<br/>{errs[0].label()}" if errs else "") + \
            _empty_reads(steps).replace("; ", "<br/>")
        nodes.append(f'P{i}["{_mm(text)}"]')
    nodes.append(f'END(["{_mm(end or "?")}"])')
    lines.append(f"  %% {_mm(title)}")
    lines.append("  " + " --> ".join(nodes))
    return "\n".join(lines)


def _mm(text: str) -> str:
    return text.replace('"', "'")
