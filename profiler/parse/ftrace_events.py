"""ftrace text → kprof events, one at a time, exact and in trace order (the slower path; ``analyse_trace``
counts the same facts from chunks, and the test suite checks that both give the same footprints:
``profiler.parse.ftrace_text.event_footprints`` is this path's whole result)."""
from __future__ import annotations

import os
import re
from collections import Counter
from typing import Iterable, Iterator

from profiler.events import ProcessEvent, SyscallEvent
from profiler.kernel import syscalls
from profiler.kernel.errnos import errno_name
from profiler.parse.ftrace_format import (
    _FORKS, _LINE, _OTHER_LINE, TaskArch, Window, _args_of, _hexint, _key_of, _nr_name, _return_value,
    event_key, event_syscall_name, lost_events, task_of, trace_lines)


class FtraceEventReader:
    """ftrace text lines → SyscallEvent / ProcessEvent, exact and in order.

    An event is produced when its sys_exit arrives (or, for a call that never returns, when the task's
    next sys_enter arrives or the input ends). A task's calls under a comm it did not have before are
    preceded by its "image" event (the file or comm, the ABI); sched_process_exec and sched_process_fork
    lines give "exec" and "forked" events, exit_group's status an "exit". Other events (irq, sched …) are
    counted in ``events``.
    """

    def __init__(self, arch: str, task_arch: TaskArch | None = None, window: Window | None = None,
                 execs: dict[int, list[str]] | None = None):
        """``execs``: pid → the files sched_process_exec showed it run, in order, when known ahead (see
        ``exec_files``): a task's calls are credited to the file its comm is the name of, as the fast path
        does, also before the exec line is read (a task running since before the trace)."""
        self.ta = task_arch or TaskArch(arch)
        self.window = window or Window()
        self.execs = execs or {}
        self.comm: dict[int, str] = {}           # pid → the comm its calls are credited to now
        self.pending: dict[int, tuple] = {}      # pid → (abi, name, nr, args, ts, raw?)
        self.raw_pids: set = set()
        self.events = Counter()
        self.unparsed = 0
        self.lost = Counter()

    def feed(self, lines: Iterable[bytes]) -> Iterator[SyscallEvent | ProcessEvent]:
        for line in lines:
            if isinstance(line, str):
                line = line.encode("utf-8", "surrogateescape")
            line = line.rstrip(b"\n")
            m = _LINE.match(line)
            if m is None:
                lost = lost_events(line)
                if lost:
                    self.lost[lost[0]] += lost[1]
                elif not _OTHER_LINE.fullmatch(line.rstrip(b"\r")):
                    self.unparsed += 1
                continue
            prefix, _, ts, rest = m.groups()
            ts = float(ts)
            if not self.window.inside(ts):
                continue
            task = task_of(prefix)
            key = _key_of(rest)
            ev = event_key(key) if key is not None else None
            if task is None or ev is None:
                self.unparsed += 1
                continue
            self.events[ev.event] += 1
            if ev.kind == "event":
                if ev.event in _SCHED_EVENTS:
                    sched = _sched_event(ev.event, rest, ts)
                    if sched is not None:
                        yield sched
                continue
            raw = ev.nr is not None
            if raw:
                self.raw_pids.add(task.pid)
            elif task.pid in self.raw_pids:
                continue
            abi = self.ta.of(task)
            name = _nr_name(abi, ev.nr) if raw else event_syscall_name(abi, ev.name)
            if ev.kind == "enter":
                prev = self.pending.pop(task.pid, None)
                if prev is not None:
                    yield self._event(task.pid, prev, None, None)
                if self.comm.get(task.pid) != task.comm:
                    yield self._image(task, abi)
                args = ", ".join("0x" + a for a in _args_of(ev, rest) if a)
                self.pending[task.pid] = (abi, name, ev.nr, args, ts, raw)
                if name == "exit_group":
                    status = _hexint(_args_of(ev, rest)[0]) if _args_of(ev, rest) else None
                    yield self._event(task.pid, self.pending.pop(task.pid), None, None)
                    yield ProcessEvent(task.pid, "exit", status=None if status is None else status & 0xFF, time=ts)
            else:
                prev = self.pending.pop(task.pid, None)
                if raw and ev.nr == -1:       # rt_sigreturn restored orig_ax = -1: it closes the pending call
                    if prev is not None:
                        yield self._event(task.pid, prev, _return_value(rest), None, ts)
                    continue
                if prev is not None and prev[1] != name:      # lost events: the enter was another call
                    yield self._event(task.pid, prev, None, None)
                    prev = None
                result = -ev.err if ev.err else (_return_value(rest) if raw else _named_result(rest))
                if prev is None:
                    if name in _FORKS and result == 0:        # a new task's return from fork/clone
                        continue
                    prev = (abi, name, ev.nr, "", None, raw)
                    if self.comm.get(task.pid) != task.comm:      # begun before the window (or lost enter)
                        yield self._image(task, abi)
                yield self._event(task.pid, prev, result, ev.err, ts)

    def _image(self, task, abi: str) -> ProcessEvent:
        """The task's calls are made under another comm from here on: the file it exec'd by that name when
        sched_process_exec showed one, else the comm (the fast path's ``exe_label``)."""
        self.comm[task.pid] = comm = task.comm
        label = next((f for f in self.execs.get(task.pid, ()) if os.path.basename(f)[:15] == comm), comm)
        return ProcessEvent(task.pid, "image", path=label, abi=abi)

    def _event(self, pid, pending, result, err, exit_ts=None) -> SyscallEvent:
        abi, name, nr, args, ts, raw = pending
        number = nr if nr is not None else syscalls.syscall_number(abi, name)
        request = int(args.split(", ")[1], 16) & 0xFFFFFFFF if name == "ioctl" and ", " in args else None
        return SyscallEvent(pid=pid, name=name, args=args, result=result,
                            errno=errno_name(err) if err else None, time=ts if ts is not None else exit_ts,
                            number=number, request=request)

    def finish(self) -> Iterator[SyscallEvent]:
        for pid, pending in sorted(self.pending.items()):
            yield self._event(pid, pending, None, None)
        self.pending.clear()


def _named_result(rest: bytes) -> int | None:
    v = _return_value(rest)
    if v is None:
        return None
    return v if v < 1 << 31 else v - (1 << 64 if v >= 1 << 32 else 1 << 32)


_SCHED_EVENTS = ("sched_process_fork", "sched_process_exec")
_FORK_TEXT = re.compile(r"\bpid=(\d+).*\bchild_pid=(\d+)")
_EXEC_TEXT = re.compile(r"filename=(.*?) pid=(\d+)")


def _sched_event(event: str, rest: bytes, ts: float) -> ProcessEvent | None:
    """sched_process_fork → the child's "forked" (its parent); sched_process_exec → "exec" (the file)."""
    text = rest.decode("utf-8", "replace")
    if event == "sched_process_fork":
        m = _FORK_TEXT.search(text)
        return m and ProcessEvent(int(m.group(2)), "forked", parent=int(m.group(1)), time=ts)
    m = _EXEC_TEXT.search(text)
    return m and ProcessEvent(int(m.group(2)), "exec", path=m.group(1), time=ts)


def exec_files(lines: Iterable[bytes], window: Window | None = None) -> dict[int, list[str]]:
    """pid → the files sched_process_exec showed it run, in trace order (a first reading of the file)."""
    window = window or Window()
    out: dict[int, list[str]] = {}
    for line in lines:
        if b"sched_process_exec:" not in line:
            continue
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        m = _LINE.match(line.rstrip(b"\n"))
        if m is None or not window.inside(float(m.group(3))):
            continue
        key = _key_of(m.group(4))
        ev = event_key(key) if key is not None else None
        if ev is not None and ev.event == "sched_process_exec" and task_of(m.group(1)) is not None:
            sched = _sched_event(ev.event, m.group(4), 0.0)
            if sched is not None:
                out.setdefault(sched.pid, []).append(sched.path)
    return out


def iter_events(path, arch: str, task_arch: TaskArch | None = None,
                window: Window | None = None) -> Iterator[SyscallEvent | ProcessEvent]:
    """Every syscall of a trace file as kprof events, in trace order (exact; slower than analyse_trace). The
    file is read twice: first for the files sched_process_exec shows (what a task's comm names)."""
    reader = FtraceEventReader(arch, task_arch, window, exec_files(trace_lines(path), window))
    yield from reader.feed(trace_lines(path))
    yield from reader.finish()
