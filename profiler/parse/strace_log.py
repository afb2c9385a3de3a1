"""strace text log → events, streaming.

Handles what strace writes with ``-f`` (pid prefix), ``-t``/``-tt``/``-ttt``
(timestamps), ``-T`` (time in call), ``-y``/``-yy`` (paths behind fds),
``-X raw`` (numbers for constants), ``<unfinished ...>``/``<... resumed>``
pairs, signals, exits, kills, injected faults, and the ``-c``/``-C`` summary
table at the end (returned separately: it is strace's own count of the same
run, kprof's ground truth).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from profiler.events import ProcessEvent, SyscallEvent
from profiler.strace_text import is_strace_message

# "[pid  123] " (terminal output) or "123 " (-o with -f), then an optional timestamp.
_PREFIX = re.compile(
    r"(?:\[pid +(\d+)\] |(\d+) +)?"
    r"(?:(\d+\.\d+|\d\d:\d\d:\d\d(?:\.\d+)?) )?"
)
_FAST = re.compile(r"(\d+) +(\d+\.\d+) ([a-z_][a-z0-9_]*)\((.*)\) += (.*?)(?: <(\d+\.\d+)>)?", re.S)
_CALL = re.compile(r"([a-z_][a-z0-9_]*|syscall_0x[0-9a-f]+)\(")
_RESUMED = re.compile(r"<\.\.\. ([a-z_][a-z0-9_]*|syscall_0x[0-9a-f]+) resumed>")
_EXIT = re.compile(r"\+\+\+ (?:exited with (\d+)|killed by (SIG[A-Z0-9_]+|\d+)( \(core dumped\))?|superseded by execve in pid \d+) \+\+\+")
_SIGNAL = re.compile(r"--- (?:(SIG[A-Z0-9_]+|\d+) |stopped by (SIG[A-Z0-9_]+))")
_RESULT = re.compile(r"(0x[0-9a-f]+|-?\d+|\?)")
_ERRNO = re.compile(r" (E[A-Z0-9_]+) \(")
_UNFINISHED = " <unfinished ...>"
_SUMMARY_ROW = re.compile(
    r"\s*(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?(\S+)\s*$"
)


def _closing(text: str, start: int) -> int:
    """Index just past the '>' matching the '<' at ``start`` (strace nests <char 1:3> inside)."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c == "<":
            depth += 1
        elif c == ">" and text[i - 1] != "-":  # "->" inside a socket's endpoints closes nothing
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _result_split(rest: str) -> tuple[int, int]:
    """Where the arguments end and the result starts in ``args) = result``.

    strace pads short calls for alignment (``brk(NULL)       = 0x…``), so the
    ``)`` may stand several spaces before ``=``. Returns (-1, -1) when absent.
    """
    k = rest.rfind(" = ")
    j = k
    while j > 0 and rest[j - 1] == " ":
        j -= 1
    if k < 0 or j == 0 or rest[j - 1] != ")":
        return -1, -1
    return j - 1, k + 3


_FD = re.compile(r"\d+<")


def fd_path_of(text: str) -> str | None:
    """``3</dev/pts/0<char 136:0>>, …`` → ``/dev/pts/0<char 136:0>``; None when not an fd with a path.

    AT_FDCWD (``-100</cwd>``) is not an fd the call operates on, and is skipped.
    """
    m = _FD.match(text)
    if m is None:
        return None
    j = m.end()
    end = text.find(">", j)
    while end > 0 and text[end - 1] == "-":  # TCP:[a:1->b:2], UNIX-STREAM:[1->2]
        end = text.find(">", end + 1)
    lt = text.find("<", j)
    if end < 0:
        return text[j:]
    if lt < 0 or lt > end:  # no nested <char M:N>: the first '>' closes
        return text[j:end]
    return text[j:_closing(text, j - 1) - 1]


def split_args(args: str) -> list[str]:
    """Split strace's argument text at top-level commas (quotes, brackets, braces, <paths> respected)."""
    parts, depth, start, i, n = [], 0, 0, 0, len(args)
    while i < n:
        c = args[i]
        if c == '"':
            i += 1
            while i < n and args[i] != '"':
                i += 2 if args[i] == "\\" else 1
        elif c in "([{<":
            depth += 1
        elif c in ")]}" or c == ">" and args[i - 1] != "-":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(args[start:i].strip())
            start = i + 1
        i += 1
    tail = args[start:].strip()
    if tail or parts:
        parts.append(tail)
    return parts


def parse_result(tail: str, event: SyscallEvent) -> None:
    """Fill result, errno, result_path, duration, injected from the text after ') = '."""
    if tail.endswith(">"):
        k = tail.rfind(" <")
        if k >= 0:
            try:
                event.duration = float(tail[k + 2:-1])
                tail = tail[:k]
            except ValueError:
                pass
    m = _RESULT.match(tail)
    if not m:
        return
    value = m.group(1)
    if value != "?":
        event.result = int(value, 16) if value.startswith("0x") else int(value)
    rest = tail[m.end():]
    if rest.startswith("<"):
        end = _closing(rest, 0)
        event.result_path = rest[1:end - 1]
        rest = rest[end:]
    if rest:
        e = _ERRNO.match(rest)
        if e:
            event.errno = e.group(1)
        if rest.endswith("(INJECTED)"):
            event.injected = True
        elif rest.endswith("(SERVED)"):
            event.served = True


@dataclass
class StraceSummary:
    """strace's own ``-c`` table: per syscall (calls, errors)."""

    calls: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class ParseStats:
    lines: int = 0
    events: int = 0
    unparsed: int = 0
    first_unparsed: list[tuple[int, str]] = field(default_factory=list)


class StraceLogParser:
    """Streaming parser: feed lines, get events; pending unfinished calls are kept per pid."""

    def __init__(self, canonical=None):
        self._canonical = canonical or (lambda name: name)
        self._names: dict[str, str] = {}
        self._pending: dict[int, tuple[str, str, float | None]] = {}
        self.summary: StraceSummary | None = None
        self.stats = ParseStats()
        self._in_summary = False

    def _name(self, raw: str) -> str:
        name = self._names.get(raw)
        if name is None:
            name = self._names[raw] = self._canonical(raw)
        return name

    def _unparsed(self, lineno: int, line: str) -> None:
        self.stats.unparsed += 1
        if len(self.stats.first_unparsed) < 5:
            self.stats.first_unparsed.append((lineno, line[:200]))

    def _summary_line(self, line: str) -> None:
        m = _SUMMARY_ROW.match(line)
        if m and m.group(6) != "total":
            self.summary.calls[m.group(6)] = int(m.group(4))
            self.summary.errors[m.group(6)] = int(m.group(5) or 0)

    def feed(self, lines: Iterable[str]) -> Iterator[SyscallEvent | ProcessEvent]:
        stats = self.stats
        pending = self._pending
        names = self._names
        for line in lines:
            stats.lines += 1
            line = line.rstrip("\n")
            if self._in_summary:
                self._summary_line(line)
                continue
            if not line:
                continue
            f = _FAST.fullmatch(line)
            if f is not None and not line.endswith(_UNFINISHED):
                # the common case, kprof's own format: "PID TIME name(args) = result <duration>"
                pid, ts, raw, args, tail, dur = f.groups()
                name = names.get(raw) or self._name(raw)
                if tail.isdigit():  # most calls: a plain non-negative result
                    ev = SyscallEvent(int(pid), name, args, int(tail), None, dur and float(dur), float(ts),
                                      fd_path_of(args))
                else:
                    ev = SyscallEvent(int(pid), name, args, time=float(ts), fd_path=fd_path_of(args),
                                      duration=dur and float(dur))
                    parse_result(tail, ev)
                stats.events += 1
                yield ev
                continue
            m = _PREFIX.match(line)
            pid = int(m.group(1) or m.group(2) or 0)
            ts = m.group(3)
            time = float(ts) if ts and ":" not in ts else None
            body = line[m.end():]
            c = _CALL.match(body)
            if c:
                name = c.group(1)
                rest = body[c.end():]
                if rest.endswith(_UNFINISHED):
                    pending[pid] = (name, rest[: -len(_UNFINISHED)], time)
                    continue
                ev = self._complete(pid, name, "", rest, time, line)
                if ev is not None:
                    yield ev
                continue
            if body.startswith("<... "):
                r = _RESUMED.match(body)
                if not r:
                    self._unparsed(stats.lines, line)
                    continue
                name = r.group(1)
                rest = body[r.end():]
                start_args, start_time = "", time
                p = pending.pop(pid, None)
                if p is not None and p[0] == name:
                    start_args, start_time = p[1], p[2]
                if rest.endswith(_UNFINISHED):
                    # resumed only to be cut again (the task died in the call)
                    pending[pid] = (name, start_args + rest[: -len(_UNFINISHED)], start_time)
                    continue
                ev = self._complete(pid, name, start_args, rest, start_time, line)
                if ev is not None:
                    yield ev
                continue
            if body.startswith("+++ "):
                e = _EXIT.match(body)
                if not e:
                    self._unparsed(stats.lines, line)
                    continue
                yield from self._flush(pid)
                stats.events += 1
                if e.group(1) is not None:
                    yield ProcessEvent(pid, "exit", status=int(e.group(1)), time=time)
                elif e.group(2) is not None:
                    yield ProcessEvent(pid, "killed", signal=e.group(2), time=time,
                                       core_dumped=bool(e.group(3)))
                continue
            if body.startswith("--- "):
                s = _SIGNAL.match(body)
                if s:
                    stats.events += 1
                    yield ProcessEvent(pid, "signal", signal=s.group(1) or s.group(2), time=time)
                else:
                    self._unparsed(stats.lines, line)
                continue
            if line.startswith("% time") or line.startswith("  % time"):
                self._in_summary = True
                self.summary = StraceSummary()
                continue
            if is_strace_message(line):
                continue  # strace's own messages when stderr was captured with the log
            self._unparsed(stats.lines, line)

    def _complete(self, pid, name, start_args, rest, time, line) -> SyscallEvent | None:
        """``rest`` is ``args) = result``; ``start_args`` what an ``<unfinished ...>`` line already gave."""
        k, r = _result_split(rest)
        if k < 0:
            self._unparsed(self.stats.lines, line)
            return None
        ev = SyscallEvent(pid, self._name(name), start_args + rest[:k], time=time)
        parse_result(rest[r:], ev)
        ev.fd_path = fd_path_of(ev.args)
        self.stats.events += 1
        return ev

    def _flush(self, pid: int) -> Iterator[SyscallEvent]:
        p = self._pending.pop(pid, None)
        if p is not None:
            self.stats.events += 1
            ev = SyscallEvent(pid, self._name(p[0]), p[1], time=p[2])
            ev.fd_path = fd_path_of(ev.args)
            yield ev

    def finish(self) -> Iterator[SyscallEvent]:
        """Calls still unfinished at the end of the log: they never returned (or the log was cut)."""
        for pid in list(self._pending):
            yield from self._flush(pid)
