"""Coverage of a whole workload by per-command scenarios: which of the workload's programs and syscalls some
scenario explains, and which scenarios the workload never ran.

Programs are compared by the basename of the file they exec'd (``oref0-determine-basal``, ``mdt``, ``jq``):
the workload was recorded with ftrace and the scenarios with strace, on paths that differ. A program is
*covered* when some scenario ran it; a scenario's *command* is the first program it ran that is neither an
interpreter (bash, node, env …) nor kprof's own wrapper script (``kprof-*``). A syscall is *explained* when
some scenario's footprint has the kernel run it (by name, never number; a call only an emulated device
answered explains nothing).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from profiler.footprint import Footprint
from profiler.render.model import Section

INTERPRETERS = {"env", "node", "nodejs", "bash", "sh", "dash", "python3", "python"}


def _base(path: str) -> str:
    return os.path.basename(path.rstrip("/"))


def scenario_programs(fp: Footprint) -> list[str]:
    """The programs a scenario ran (basenames), in the order it first ran them."""
    return list(dict.fromkeys(_base(p) for p in fp.programs))


OPENAPS_PREFIXES = ("$NODE_MODULES/", "$KPROF_ROOT/build/rig-tools/")   # oref0's commands, kprof's pump tools


def scenario_command(fp: Footprint) -> str | None:
    """The scenario's own command: going down its process tree from the root (children in pid order), the
    first OpenAPS program (oref0's, or a pump tool of kprof's build), else the first program that is neither
    an interpreter nor a kprof wrapper script (a wrapper's own helpers, e.g. seq, come before the loop)."""
    def own(name):
        return name not in INTERPRETERS and not name.startswith("kprof-")

    children: dict = {}
    for pid, proc in fp.processes.items():
        children.setdefault(proc.get("parent"), []).append(pid)
    queue = [fp.root_pid] if fp.root_pid in fp.processes else []
    order = []
    while queue:
        pid = queue.pop(0)
        order += [image["exe"] for image in fp.processes[pid]["images"] if image["exe"]]
        queue += sorted(children.get(pid, []))
    order += list(fp.programs)
    for exe in order:
        if exe.startswith(OPENAPS_PREFIXES) and own(_base(exe)):
            return _base(exe)
    return next((_base(exe) for exe in order if own(_base(exe))), None)


@dataclass
class Coverage:
    programs: list[dict] = field(default_factory=list)     # program, processes, calls, share, scenarios, own
    syscalls: dict[str, list[str]] = field(default_factory=dict)   # syscall → scenarios whose footprint has it
    syscall_calls: dict[str, int] = field(default_factory=dict)
    syscall_users: dict[str, str] = field(default_factory=dict)    # syscall → "program calls, …" (top 3)
    never_ran: list[tuple[str, str | None]] = field(default_factory=list)   # (scenario, its command)
    calls_total: int = 0
    calls_covered: int = 0
    syscalls_explained: int = 0

    @property
    def calls_share(self) -> float:
        return self.calls_covered / self.calls_total if self.calls_total else 0.0

    @property
    def syscalls_share(self) -> float:
        return self.syscalls_explained / len(self.syscalls) if self.syscalls else 0.0

    def to_dict(self) -> dict:
        return {"calls_total": self.calls_total, "calls_by_covered_programs": self.calls_covered,
                "calls_share": round(self.calls_share, 4), "distinct_syscalls": len(self.syscalls),
                "syscalls_explained": self.syscalls_explained, "syscalls_share": round(self.syscalls_share, 4),
                "programs": self.programs, "syscalls": self.syscalls,
                "scenarios_never_ran": [{"scenario": s, "command": c} for s, c in self.never_ran]}


def coverage(programs: dict[str, dict], whole: Footprint, scenarios: dict[str, Footprint]) -> Coverage:
    """``programs``: the workload's per-program rows (program → processes, calls); ``whole``: its footprint;
    ``scenarios``: label → footprint of each per-command scenario."""
    ran = {label: set(scenario_programs(fp)) for label, fp in scenarios.items()}
    command = {label: scenario_command(fp) for label, fp in scenarios.items()}
    cov = Coverage()
    total = sum(r["calls"] for r in programs.values())
    cov.calls_total = total
    for name, row in sorted(programs.items(), key=lambda kv: (-kv[1]["calls"], kv[0])):
        by = [label for label in scenarios if name in ran[label]]
        own = [label for label in scenarios if command[label] == name]
        cov.programs.append({"program": name, "processes": row["processes"], "calls": row["calls"],
                             "share": round(row["calls"] / total, 4) if total else 0.0,
                             "scenarios": by, "own": own})
        if by:
            cov.calls_covered += row["calls"]
    for name in sorted(whole.syscalls, key=lambda n: (-whole.syscalls[n].calls, n)):
        # a syscall a scenario made only to an emulated device (served) did not run in the kernel: not explained
        cov.syscalls[name] = [label for label, fp in scenarios.items()
                              if name in fp.syscalls and fp.syscalls[name].calls]
        cov.syscall_calls[name] = whole.syscalls[name].calls
        users = sorted(((p, r["syscalls"].get(name, 0)) for p, r in programs.items() if r["syscalls"].get(name)),
                       key=lambda kv: -kv[1])
        cov.syscall_users[name] = ", ".join(f"{p} {n}" for p, n in users[:3]) + (" …" if len(users) > 3 else "")
    cov.syscalls_explained = sum(1 for v in cov.syscalls.values() if v)
    in_workload = set(programs)
    cov.never_ran = [(label, command[label]) for label in scenarios
                     if command[label] is None or command[label] not in in_workload]
    return cov


def coverage_sections(cov: Coverage, limit: int = 60) -> list[Section]:
    rows = []
    for p in cov.programs[:limit]:
        covered = ", ".join(p["scenarios"][:4]) + (" …" if len(p["scenarios"]) > 4 else "")
        rows.append([p["program"], p["processes"], f"{p['calls']:,}", f"{100 * p['share']:.1f}",
                     ", ".join(p["own"]) or "-", covered or "NO SCENARIO"])
    more = len(cov.programs) - len(rows)
    secs = [Section(
        "Coverage: programs of the workload and the scenarios that run them",
        ["program", "processes", "calls", "% of calls", "its own scenario", "run by scenarios"], rows,
        (f"{more} more programs in coverage.json. " if more > 0 else "")
        + "A program is what a process exec'd (a #! script by its own name; processes that exec'd nothing carry "
        "their parent's). 'its own scenario': a scenario whose command is this program; 'run by': every "
        "scenario that ran it (a pump-loop scenario runs mdt, jq …). The shared node's work for socat clients "
        "is in its node process.")]
    unexplained = [n for n, by in cov.syscalls.items() if not by]
    secs.append(Section(
        "Coverage: syscalls of the workload no scenario explains", ["syscall", "calls", "made by"],
        [[n, f"{cov.syscall_calls.get(n, 0):,}", cov.syscall_users.get(n, "")] for n in unexplained],
        "Every syscall of the workload is in some scenario's footprint." if not unexplained else
        "Syscalls the whole workload made that no scenario's footprint contains (the per-syscall table "
        "below names their callers)."))
    secs.append(Section(
        "Scenarios whose command the workload never ran", ["scenario", "command"],
        [[s, c or "(no program of its own)"] for s, c in cov.never_ran],
        "Per-command scenarios of commands this workload did not run in the recorded time (other rigs run them, "
        "or a longer run does: autotune runs nightly)." if cov.never_ran else
        "The workload ran every scenario's command."))
    return secs


def headline(cov: Coverage) -> list[tuple[str, str]]:
    return [("coverage: calls", f"{100 * cov.calls_share:.1f} % of the workload's {cov.calls_total:,} calls were made "
                                f"by programs some scenario runs ({cov.calls_covered:,})"),
            ("coverage: syscalls", f"{100 * cov.syscalls_share:.1f} % of its {len(cov.syscalls)} distinct syscalls "
                                   f"are in some scenario's footprint ({cov.syscalls_explained})")]
