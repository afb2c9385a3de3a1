"""Fault scenarios: the normal path next to the error path, and a sequence view per process that reads
like the flowcharts ELISA drew (start-up, open, exchange, error handling, exit), with a Mermaid diagram for
Markdown.

The injection rules themselves (a scenario's ``inject:``, what strace and the ptrace tracer make of them)
are in ``profiler.inject``, below the recorders.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

from profiler.sequences import ProcessSequence, Step, call_target, read_sequences  # noqa: F401 - this module's API


def normal_variant(scenario):
    """The same scenario without its faults: the normal path the error path is compared with."""
    pump = dict(scenario.pump, fault="none") if scenario.pump is not None else None
    return dataclasses.replace(scenario, inject=[], pump=pump, expect={}, radio_fault=None)


def has_faults(scenario) -> bool:
    return (bool(scenario.inject) or bool(scenario.pump and scenario.pump.get("fault", "none") != "none")
            or bool(scenario.radio_fault))


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
