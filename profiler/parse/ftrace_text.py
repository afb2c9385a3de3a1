"""ftrace text → kprof events and counts, streaming.

Reads what the kernel's tracefs writes (``/sys/kernel/tracing/trace`` and ``trace_pipe``) and what
``trace-cmd report`` prints, plain or gzip/xz compressed (recognised by their magic bytes):

    node-1234    [000] d..2.  1234.567890: sys_enter: NR 54 (3, 40206b00, 7e8f1234, 0, 0, 0)    raw_syscalls
    node-1234    [000] d..2.  1234.567901: sys_exit: NR 54 = 0
    node-1234    [000] .....  1234.567890: sys_ioctl(fd: 3, cmd: 0x40206b00, arg: 0x7e8f1234)   syscalls, trace file
    node-1234    [000] .....  1234.567901: sys_ioctl -> 0x0
    node-1234 [000]  1234.567890: sys_enter_ioctl:   fd: 0x00000003, cmd: 0x40206b00, arg: ...      trace-cmd report
    node-1234 [000]  1234.567901: sys_exit_ioctl:    0x0
    <idle>-0     [001] d.h1.  1234.567950: irq_handler_entry: irq=19 name=arch_timer           any other event

What it produces:

* ``iter_events`` / :class:`FtraceEventReader`: kprof's one event model (``SyscallEvent`` with the syscall
  ``number`` and its name from kprof's kernel tables for the task's ABI, pid, time, result/errno, raw
  arguments as ``0x…`` text), line by line, exact, and ``ProcessEvent`` for what is not a call (the comm a
  task's calls are made under, sched_process_exec/fork, exit_group's status); ``event_footprints`` builds
  the footprints from them. Used where events are wanted one at a time.
* :func:`analyse_trace`: the same facts counted — per syscall, per task (comm-pid), ioctl requests
  decoded from the raw arguments, per event name and event group (``irq_*``, ``sched_*`` …) — as one
  :class:`~profiler.footprint.Footprint` per ABI plus an :class:`FtraceResult`. It reads the text in
  chunks with one bytes regex per chunk (two captures per line, counted with ``Counter``) and parses
  only the rare lines it needs in full (ioctl, fork, exit_group, exec); a chunk that does not match the
  common shape line for line, or that straddles the time window, is parsed line by line instead. Large
  plain files are split between processes. The counts (and the pairing of enters and exits, which decides
  how many calls, errors and unfinished calls there were) become counted events fed to the one
  :class:`~profiler.footprint.FootprintBuilder` per ABI, which applies the footprint's rules. The test
  suite checks that both paths give the same footprints (all but the source; two differences pinned
  there: a child that never ran, a comm a pid goes back to).

The modules: ``ftrace_format`` (files, compression, line shapes, event keys, tasks, ABIs), ``ftrace_chunks``
(the chunked pass → a ``Part`` of counts), ``ftrace_read`` (whole files, parallel parts, merging, the time
window), ``ftrace_events`` (the exact event path) and this one (``analyse_trace``: counts → events →
footprints, the result and its warnings). Every public name is importable from here.

Counting rules (documented in docs/ftrace.md):

* A call counts once per task and syscall as max(enters, exits): a ``sys_exit`` whose ``sys_enter`` is
  not in the window (the call began before) still counts; ``unfinished`` = enters - exits
  (``exit_group`` never returns; a call still running when the trace ended).
* ftrace's ``raw_syscalls`` has no ABI field. Every ``NR`` is read with ``arch`` (``--arch``) unless
  ``task_arch`` names the task's ABI (by pid or comm). Tasks whose arguments never exceed 32 bits on a
  64-bit arch (or exceed them on a 32-bit one) are reported, never silently re-read.
* Where a task has ``raw_syscalls`` events, its per-syscall ``syscalls:`` events describe the same calls
  and are counted as events only.
* Unknown numbers keep a name, ``syscall_<n>``, and are counted like any other.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

from profiler.errors import KprofError
from profiler.events import ProcessEvent, SyscallEvent
from profiler.kernel import arches, syscalls
from profiler.kernel.errnos import errno_name
# the public names of the ftrace modules, importable from here as before the split
from profiler.parse.ftrace_chunks import SAMPLES, Part, _Pass  # noqa: F401
from profiler.parse.ftrace_events import FtraceEventReader, iter_events  # noqa: F401
from profiler.parse.ftrace_format import (  # noqa: F401
    _FORKS, CHUNK, LOST_UNCOUNTED, EventKey, Task, TaskArch, Window, _chunk_regexes, _nr_name, _quick_regex,
    compression_of, event_group, event_key, event_syscall_name, open_trace, sniff_raw_syscalls, task_of,
    trace_lines)
from profiler.parse.ftrace_read import (  # noqa: F401
    PARALLEL_MIN, PART_MIN, _check_format, _merge, default_jobs, edge_timestamps, read_part)


def parse_duration(text: str | None, what: str = "duration") -> float | None:
    """``90`` / ``90s`` / ``5m`` / ``1.5h`` → seconds."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(ms|s|m|min|h)?\s*", str(text))
    if not m:
        raise KprofError(f"{what}: '{text}' is not a duration (examples: 90, 90s, 5m, 1.5h)")
    return float(m.group(1)) * {"ms": 0.001, None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]



# ----------------------------------------------------------------------------- result

@dataclass
class TaskRow:
    comm: str
    pid: int
    tgid: int | None
    abi: str
    calls: int = 0
    errors: int = 0
    events: int = 0                   # other events while this task was current (all-events traces)
    syscalls: Counter = field(default_factory=Counter)


@dataclass
class FtraceResult:
    paths: list[str]
    arch: str
    task_arch: TaskArch
    footprints: dict                  # abi → Footprint (the trace's arch first)
    tasks: list[TaskRow]
    events: Counter                   # event name → lines
    lines: int
    outside: int
    unparsed: int
    unparsed_samples: list            # "path:line: text"
    lost: Counter                     # cpu → events
    first_ts: float | None
    last_ts: float | None
    windows: list                     # per file: (first, last, Window)
    formats: list[str]
    named_ignored: int                # per-syscall events of tasks that also have raw_syscalls events
    orphan_exits: int
    unfinished: int
    other: Counter
    chunks: tuple = (0, 0)            # (fast, line by line)
    unpaired: int = 0                 # enters and exits that did not pair up (lost events)
    enters_exits: tuple = (0, 0)      # sys_enter and sys_exit lines counted, all tasks
    warnings: list[str] = field(default_factory=list)

    @property
    def footprint(self):
        return self.footprints[self.arch] if self.arch in self.footprints else next(iter(self.footprints.values()))

    @property
    def syscall_lines(self) -> int:
        return sum(n for e, n in self.events.items() if e.startswith("sys_"))

    def groups(self) -> Counter:
        out = Counter()
        for name, n in self.events.items():
            out[event_group(name)] += n
        return out



def analyse_trace(paths, arch: str, task_arch: TaskArch | None = None, skip: float | None = None,
                  discard_tail: float | None = None, jobs: int | None = None, source: dict | None = None,
                  root_pid: int | None = None) -> FtraceResult:
    """Trace file(s) → FtraceResult with one Footprint per ABI. The window applies to each file."""
    paths = [str(p) for p in paths]
    ta = task_arch or TaskArch(arch)
    parts, windows = [], []
    for path in paths:
        part, win = read_part(path, ta, skip, discard_tail, jobs)
        _check_format(path, part)
        parts.append(part)
        windows.append(win)
    total = _merge(parts)
    samples = []
    for path, part in zip(paths, parts):
        samples += [f"{path}:{n}: {t}" for n, t in part.unparsed_samples]
    res = _build(paths, ta, total, windows, samples, source or {}, root_pid)
    if not res.events:
        raise KprofError(f"{', '.join(paths)}: no ftrace event lines understood ({res.unparsed} lines not "
                         f"understood): {'; '.join(samples[:2])}")
    return res


# ----------------------------------------------------------------------------- Part → Footprints

def _build(paths, ta: TaskArch, part: Part, windows, unparsed_samples, source, root_pid) -> FtraceResult:
    events = Counter()
    bad = 0
    raw_pids: set = set()
    formats = set()
    for (prefix, key), n in part.keys.items():
        task = task_of(prefix)
        ev = event_key(key)
        if task is None or ev is None:
            bad += n
            continue
        events[ev.event] += n
        if ev.kind != "event":
            if ev.nr is not None:
                raw_pids.add(task.pid)
                formats.add("raw_syscalls")
            else:
                formats.add("syscalls (per-syscall events)")
        else:
            formats.add("other events")

    # per pid and syscall: enters, exits, errors; per (pid, comm): enters, events
    per: dict = {}            # (pid, abi, name) → [enters, exits, errors Counter, first comm]
    rows: dict = {}           # (comm, pid) → TaskRow
    closed_by_minus1 = Counter()   # pid → exits showing NR -1 (rt_sigreturn restored orig_ax = -1)
    named_ignored = 0
    for (prefix, key), n in part.keys.items():
        task = task_of(prefix)
        ev = event_key(key)
        if task is None or ev is None:
            continue
        abi = ta.of(task)
        row = rows.get((task.comm, task.pid))
        if row is None:
            row = rows[(task.comm, task.pid)] = TaskRow(task.comm, task.pid, task.tgid, abi)
        if ev.kind == "event":
            row.events += n
            continue
        if ev.nr is None and task.pid in raw_pids:
            named_ignored += n
            row.events += n
            continue
        if ev.nr == -1 and ev.kind == "exit":
            closed_by_minus1[task.pid] += n     # its value is the restored register, not a result
            continue
        name = _nr_name(abi, ev.nr) if ev.nr is not None else event_syscall_name(abi, ev.name)
        rec = per.get((task.pid, abi, name))
        if rec is None:
            rec = per[(task.pid, abi, name)] = [0, 0, Counter(), task.comm]
        if ev.kind == "enter":
            rec[0] += n
            row.syscalls[name] += n
            row.calls += n
        else:
            rec[1] += n
            if ev.err:
                rec[2][errno_name(ev.err)] += n
                row.errors += n

    # what raw_syscalls keys hold beyond counts: children (a fork's return), exit_group's status
    parents, exit_status, child_returns = {}, dict(part.exit_status), dict(part.child_returns)
    for (prefix, key), n in part.keys.items():
        ev = event_key(key)
        if ev is None or ev.nr is None or (ev.arg0 is None and ev.ret is None):
            continue
        task = task_of(prefix)
        if task is None:
            continue
        name = _nr_name(ta.of(task), ev.nr)
        if name == "exit_group" and ev.kind == "enter" and ev.arg0 is not None:
            exit_status[task.pid] = ev.arg0 & 0xFF
        elif name in _FORKS and ev.kind == "exit" and ev.ret is not None:
            if ev.ret > 0:
                parents.setdefault(ev.ret, task.pid)
            else:                                # the new task's side of the call (no sys_enter of its own)
                child_returns.setdefault((task.pid, True), name)
    parents.update(part.parents)                 # sched_process_fork events, when the trace has them
    by_pid: dict = {}
    for (pid, abi, name), rec in per.items():
        by_pid.setdefault(pid, []).append((abi, name, rec))
    orphans = unfinished = mismatched = all_enters = all_exits = 0
    ends: dict = {}            # (abi, pid) → {name: [errors Counter, unfinished]}: how the counted calls ended
    images: dict = {}          # (abi, pid) → {comm: Counter}: a task's calls by the comm it had
    comm_of: dict = {}
    for comm, pid in rows:
        comm_of.setdefault(pid, comm)
    for pid, entries in by_pid.items():
        first, last = (part.first_raw, part.last_raw) if pid in raw_pids else (part.first_named, part.last_named)
        first, last = _ends_name(ta, comm_of, pid, first.get(pid)), _ends_name(ta, comm_of, pid, last.get(pid))
        child = child_returns.get((pid, pid in raw_pids))        # the fork call whose return began this task
        minus1 = closed_by_minus1.get(pid, 0)
        if first == ("exit", None):             # began inside a call whose number the exit no longer shows
            minus1 -= 1
        plan, surplus = [], 0
        for abi, name, (enters, exits, errs, comm) in entries:
            if child == name:
                exits -= 1                      # the child's return from fork/clone is the parent's call
            begun = 1 if first == ("exit", name) and child != name else 0   # in progress when the window opened
            running = 1 if last == ("enter", name) else 0                   # still running (or never returns)
            d = enters + begun - running - exits
            surplus += d if d > 0 else 0
            all_enters += enters
            all_exits += exits
            plan.append((abi, name, enters, exits, errs, comm, begun, running, d))
        paired = all(x[-1] >= 0 for x in plan) and surplus == max(minus1, 0)
        for abi, name, enters, exits, errs, comm, begun, running, d in plan:
            if paired:
                calls, open_calls = enters + begun, running
            else:                               # enters and exits do not pair up (lost events)
                mismatched += abs(d)
                calls, open_calls = max(enters, exits), max(0, enters - exits)
            ends.setdefault((abi, pid), {})[name] = [Counter(errs), open_calls]
            unfinished += open_calls
            if calls > enters:     # calls begun before the window: credited to the comm the task had first
                orphans += calls - enters
                row = rows[(comm, pid)]
                row.syscalls[name] += calls - enters
                row.calls += calls - enters
            images.setdefault((abi, pid), {})
    for row in rows.values():
        if row.syscalls:
            images.setdefault((row.abi, row.pid), {})[row.comm] = row.syscalls
    execs: dict = {}
    for pid, filename in part.execs:
        execs.setdefault(pid, []).append(filename)

    def exe_label(pid: int, comm: str) -> str:
        """What a task ran: the file it exec'd when the trace has sched_process_exec, else its comm."""
        for f in execs.get(pid, ()):
            if os.path.basename(f)[:15] == comm:
                return f
        return comm

    # ioctl requests: a task's raw_syscalls lines (counted from their keys) when it has them, else its
    # per-syscall lines
    ioctl_nr = {abi: syscalls.syscall_number(abi, "ioctl") for abi in ta.abis()}
    entered = Counter()
    for (prefix, key), n in part.keys.items():
        ev = event_key(key)
        if ev is not None and ev.request is not None and ev.kind == "enter":
            task = task_of(prefix)
            if task is not None and ioctl_nr.get(ta.of(task)) == ev.nr:
                entered[(task.pid, task.comm, True, ev.request)] += n
    requests: dict = {}        # (pid, comm) → {request: [calls, errors Counter]}
    entered_order: dict = {}   # (pid, comm, request) in the order first entered
    for (pid, comm, raw, req), n in (*entered.items(), *part.ioctl.items()):
        if raw == (pid in raw_pids):
            entered_order[(pid, comm, req)] = None
            requests.setdefault((pid, comm), {}).setdefault(req, [0, Counter()])[0] += n
    for (pid, comm, raw, req, err), n in part.ioctl_err.items():
        if raw == (pid in raw_pids):
            requests.setdefault((pid, comm), {}).setdefault(req, [0, Counter()])[1][err] += n

    fps = _footprints(ta, source, root_pid, images, ends, requests, entered_order, parents, exit_status,
                      part.execs, exe_label)

    res = FtraceResult(
        paths=list(paths), arch=ta.arch, task_arch=ta, footprints=fps,
        tasks=sorted(rows.values(), key=lambda r: (-r.calls, -r.events, r.pid, r.comm)),
        events=events, lines=part.lines, outside=part.outside, unparsed=part.unparsed + bad,
        unparsed_samples=unparsed_samples, lost=part.lost, first_ts=part.first_ts, last_ts=part.last_ts,
        windows=windows, formats=sorted(formats), named_ignored=named_ignored, orphan_exits=orphans,
        unfinished=unfinished, other=part.other, chunks=(part.fast_chunks, part.slow_chunks),
        unpaired=mismatched, enters_exits=(all_enters, all_exits))
    res.warnings = _warnings(res, part, raw_pids, rows)
    for fp in fps.values():
        fp.source.update(ftrace_summary(res))
    return res


def _footprints(ta: TaskArch, source: dict, root_pid, images: dict, ends: dict, requests: dict, entered_order,
                parents: dict, exit_status: dict, execs: list, exe_label) -> dict:
    """The counts → counted events, fed to one FootprintBuilder per ABI (the trace's arch first), which
    applies the footprint's rules: abi → Footprint. ``images``: (abi, pid) → {comm: calls by name};
    ``ends``: (abi, pid) → {name: [errors, unfinished]}; ``requests``: (pid, comm) → {ioctl request:
    [calls, errors]}, ``entered_order`` their (pid, comm, request) as first entered."""
    from profiler.footprint import FootprintBuilder
    builders: dict = {}

    def builder(abi: str) -> FootprintBuilder:
        b = builders.get(abi)
        if b is None:
            b = builders[abi] = FootprintBuilder(abi, source={**source, "kind": "ftrace", "abi": abi}).known_abi() \
                .kernel_traced()
        return b

    builder(ta.arch)
    tasks_of: dict = {}        # pid → its (abi, pid) keys
    for abi, pid in images:    # tasks and rows in the order the counting above met them
        b = builder(abi)
        b.task(pid, parents.get(pid))
        if pid in exit_status:
            b.add(ProcessEvent(pid, "exit", status=exit_status[pid]))
        b.syscall_rows(ends.get((abi, pid), {}))
        tasks_of.setdefault(pid, []).append((abi, pid))
    for key in ends:           # errors of an ioctl paired with a request are given with it (see _plain_calls)
        for comm, counted in images[key].items():
            if "ioctl" in counted:
                for _, errs in requests.get((key[1], comm), {}).values():
                    ends[key]["ioctl"][0].subtract(errs)
    at: dict = {}              # (abi, pid) → the index of its current comm (-1: none yet)
    given: set = set()         # (pid, comm, request) whose calls are given

    def give(key: tuple, comm: str, req: int) -> None:
        calls, errs = requests[(key[1], comm)][req]
        _request_calls(builder(key[0]), key[1], req, calls, errs, ends[key]["ioctl"])
        given.add((key[1], comm, req))

    def reach(key: tuple, upto: str | None = None) -> bool:
        """Make ``upto`` the task's current comm (None: past the last), giving the calls of the comms before
        it; False when it was already passed."""
        pid, by_comm, how = key[1], images[key], ends.get(key, {})
        comms = list(by_comm)
        i, j = at.get(key, -1), (comms.index(upto) if upto is not None else len(comms))
        while i < j:
            if i >= 0:
                comm = comms[i]
                for name, n in by_comm[comm].items():
                    if name == "ioctl":
                        for req, (calls, _) in requests.get((pid, comm), {}).items():
                            if (pid, comm, req) not in given:
                                give(key, comm, req)
                            n -= calls
                    _plain_calls(builder(key[0]), pid, name, n, how[name])
            i += 1
            if i < len(comms):
                builder(key[0]).task_image(pid, exe_label(pid, comms[i]), by_comm[comms[i]])
        at[key] = max(i, at.get(key, -1))
        return i == j

    # then the calls: the ioctl requests first, as they were entered (each request's use lists its callers in
    # that order), a task's comms taken in order; then the rest
    for pid, comm, req in entered_order:
        for key in tasks_of.get(pid, ()):
            if comm in images[key] and reach(key, comm):
                give(key, comm, req)
    for key in images:
        reach(key)
    for _, filename in execs:
        builder(ta.arch).program_started(filename)
    for b in builders.values():
        b.root(root_pid)
    return {abi: b.finish() for abi, b in builders.items()}


def _request_calls(b, pid: int, req: int, calls: int, errs: Counter, ends: list) -> None:
    """``calls`` ioctls of one request a task made under one comm, ``errs`` of them failed, given to ``b`` as
    counted events; unfinished calls of the task's ioctls still to give (``ends[1]``) are taken first."""
    for err, e in errs.items():
        b.add(SyscallEvent(pid, "ioctl", errno=err, request=req, count=e))
    calls -= sum(errs.values())
    u = min(ends[1], calls)
    if u > 0:
        ends[1] -= u
        b.add(SyscallEvent(pid, "ioctl", request=req, count=u))
    if calls - u > 0:
        b.add(SyscallEvent(pid, "ioctl", result=0, request=req, count=calls - u))


def _plain_calls(b, pid: int, name: str, n: int, ends: list) -> None:
    """``n`` calls of ``name`` a task made under one comm, given to ``b`` as counted events. How the task's
    calls of ``name`` ended (``ends``: errors and unfinished calls still to give) is spent as they come (an
    ioctl's errors paired with a request are taken off before: they are given with the request)."""
    errs = ends[0]
    for err in list(errs):
        e = min(errs[err], n)
        if e > 0:
            b.add(SyscallEvent(pid, name, errno=err, count=e))
            errs[err] -= e
            n -= e
    u = min(ends[1], n)
    if u > 0:
        ends[1] -= u
        b.add(SyscallEvent(pid, name, count=u))
    if n - u > 0:
        b.add(SyscallEvent(pid, name, result=0, count=n - u))


def _ends_name(ta: TaskArch, rows: dict, pid: int, key: bytes | None):  # rows: pid → comm
    """(kind, syscall name) of a task's first or last syscall line; name None for NR -1."""
    if key is None:
        return None
    ev = event_key(key)
    if ev.nr == -1:
        return ev.kind, None
    abi = ta.of(Task(rows.get(pid, ""), pid, None))
    return ev.kind, (_nr_name(abi, ev.nr) if ev.nr is not None else event_syscall_name(abi, ev.name))


def _warnings(res: FtraceResult, part: Part, raw_pids: set, rows: dict) -> list[str]:
    out = []
    if res.lost:
        uncounted = res.other.get(LOST_UNCOUNTED, 0)
        out.append("the ring buffer lost events, so counts are too low: " +
                   ", ".join(f"CPU {c}: {n}" for c, n in sorted(res.lost.items())) +
                   (f" (at least: {uncounted} lost-events lines did not say how many, each counted as one)"
                    if uncounted else "") +
                   " (record with a bigger buffer, fewer events, or a faster disk)")
    if res.unparsed:
        out.append(f"{res.unparsed} lines not understood, left out of every count" +
                   (": " + "; ".join(res.unparsed_samples[:3]) if res.unparsed_samples else ""))
    if part.incomplete_last_line is not None:
        out.append("the last line is incomplete, the file does not end with a line end (cut off while it was "
                   "written?); it was read as far as it goes: " + part.incomplete_last_line.decode("utf-8", "replace"))
    enters, exits = res.enters_exits
    if res.unpaired and enters and not exits:
        out.append("the trace has sys_enter events only (sys_exit was not recorded): calls are counted from their "
                   "enters, and which failed is unknown; record raw_syscalls:sys_exit (or the sys_exit_* events) too")
    elif res.unpaired and exits and not enters:
        out.append("the trace has sys_exit events only (sys_enter was not recorded): calls are counted from their "
                   "exits, and ioctl requests are unknown; record raw_syscalls:sys_enter (or the sys_enter_* events) too")
    elif res.unpaired:
        out.append(f"{res.unpaired} sys_enter/sys_exit lines did not pair up per task (events were lost or a task "
                   "changed ABI); those syscalls are counted as max(enters, exits)")
    if res.named_ignored:
        out.append(f"{res.named_ignored} per-syscall (syscalls:sys_*) lines describe calls the raw_syscalls lines "
                   "already count; they are counted as events only")
    # 32/64-bit evidence: raw_syscalls has no ABI field
    comm_of = {}
    for row in rows.values():
        comm_of.setdefault(row.pid, row.comm)
    narrow, wide = [], []
    for pid, (n, widest) in sorted(part.samples.items()):
        if pid not in raw_pids or pid not in comm_of:
            continue
        abi = res.task_arch.of(Task(comm_of[pid], pid, None))
        if arches.bits(abi) == 64 and n >= 8 and widest <= 8:
            narrow.append(f"{comm_of[pid]}-{pid}")
        elif arches.bits(abi) == 32 and widest > 8:
            wide.append(f"{comm_of[pid]}-{pid}")
    if narrow:
        out.append(f"tasks whose syscall arguments never exceeded 32 bits, read as {res.arch} "
                   f"({', '.join(narrow[:10])}{' …' if len(narrow) > 10 else ''}): if they are 32-bit tasks on a "
                   "64-bit kernel, their numbers are 32-bit numbers (raw_syscalls has no ABI field); give "
                   "--task-arch COMM=arm64-compat (or i386, or PID=ARCH)")
    if wide:
        out.append(f"tasks with 64-bit argument values, read with a 32-bit table ({', '.join(wide[:10])}"
                   f"{' …' if len(wide) > 10 else ''}): the trace comes from a 64-bit kernel; give --arch "
                   "aarch64 (or x86_64) and --task-arch for the 32-bit tasks")
    return out


def ftrace_summary(res: FtraceResult) -> dict:
    """What a saved footprint keeps of the trace (JSON-ready)."""
    return {
        "traces": res.paths, "arch": res.arch,
        "task_arch": {**{str(k): v for k, v in res.task_arch.by_pid.items()}, **res.task_arch.by_comm},
        "window": [{"first": f, "last": l, "start": w.start, "end": w.end} for f, l, w in res.windows],
        "first_ts": res.first_ts, "last_ts": res.last_ts, "lines": res.lines, "lines_outside_window": res.outside,
        "unparsed_lines": res.unparsed, "lost_events": {str(c): n for c, n in sorted(res.lost.items())},
        "formats": res.formats, "event_groups": dict(res.groups().most_common()),
        "tasks": len(res.tasks),
    }


# ----------------------------------------------------------------------------- the exact event path, whole

def event_footprints(path, arch: str, task_arch: TaskArch | None = None, window: Window | None = None,
                     root_pid: int | None = None, source: dict | None = None) -> dict:
    """A trace file's events through one FootprintBuilder per ABI (the trace's arch first), as the fast path
    builds them: abi → Footprint. A task's calls go to the ABI its "image" event named; a program started
    (sched_process_exec) to the trace's arch; a task in two ABIs' footprints has its parent and end in both."""
    from profiler.footprint import FootprintBuilder
    ta = task_arch or TaskArch(arch)
    builders: dict = {}

    def builder(abi: str):
        b = builders.get(abi)
        if b is None:
            b = builders[abi] = FootprintBuilder(abi, source={**(source or {}), "kind": "ftrace", "abi": abi}) \
                .known_abi().kernel_traced()
        return b

    builder(ta.arch)
    abi_of: dict[int, str] = {}
    for ev in iter_events(path, arch, ta, window):
        if isinstance(ev, ProcessEvent):
            if ev.kind == "exec":
                builder(ta.arch).add(ev)
                continue
            if ev.kind == "image":
                abi_of[ev.pid] = ev.abi
        builder(abi_of.get(ev.pid, ta.arch)).add(ev)
    _share_tasks([b.fp for b in builders.values()])
    for b in builders.values():
        b.root(root_pid)
    return {abi: b.finish() for abi, b in builders.items()}


def _share_tasks(fps: list) -> None:
    """A task in several ABIs' footprints: the parent and end one knows, in each; and it is left out of those
    it made no call in (a fork or sched_process_fork named it there before its first call)."""
    if len(fps) < 2:
        return
    where: dict[int, list] = {}
    for fp in fps:
        for pid in fp.processes:
            where.setdefault(pid, []).append(fp)
    for pid, held in where.items():
        if len(held) < 2:
            continue
        procs = [fp.processes[pid] for fp in held]
        parent = next((p["parent"] for p in procs if p["parent"] is not None), None)
        end = next((p["end"] for p in procs if p["end"] is not None), None)
        ran = [fp for fp, p in zip(held, procs) if any(i["syscalls"] for i in p["images"])]
        for fp in held:
            if ran and fp not in ran:
                del fp.processes[pid]
                continue
            proc = fp.processes[pid]
            if proc["parent"] is None:
                proc["parent"] = parent
            if proc["end"] is None:
                proc["end"] = end
