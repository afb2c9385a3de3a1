"""strace text log → events, streaming.

Handles what strace writes with ``-f`` (pid prefix, ``[pid N]`` on stderr), ``-Y`` (``pid<comm>``),
``-t``/``-tt``/``-ttt``/``-r`` and ``--absolute-timestamps=unix,s`` (timestamps), ``-n`` (syscall numbers),
``-i`` (instruction pointers), ``-T`` (time in call), ``-y``/``-yy`` (paths behind fds, found by scanning:
a path may hold ``) = ``, quotes or unbalanced brackets), ``-X raw``/``verbose``, ``-k`` (stack lines,
skipped), ``<unfinished ...>``/``<... resumed>`` pairs, exec from a thread other than the leader, signals,
exits, kills, injected faults, a log taken from strace's stderr ("Process N attached" cutting lines in two),
and the ``-c``/``-C`` summary tables (any ``-U`` columns; one per personality and one per appended ``-A`` run,
summed), returned separately: strace's own count of the same run, kprof's ground truth.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from profiler.events import Fd, ProcessEvent, SyscallEvent
from profiler.kernel import syscalls
from profiler.kernel.errnos import MAX_ERRNO, errno_name
from profiler.kernel.ioctls import request_from_arg
from profiler.parse.strace_text import (accepted_address, arg, args_end, clone_thread, fd_of, fd_path_of,
                                        is_strace_message, path_arg, skip_fd_path, sockaddr)

# The line prefix: "[pid  123] " (terminal output) or "123 " (-o with -f), each maybe with -Y's "<comm>";
# a timestamp (-t/-tt/-ttt/-r, or whole seconds with --absolute-timestamps=unix,s); -n's "[ 59] " syscall
# number; -i's "[00007f…] " instruction pointer.
_AFTER_PID = (r"(?:(\d+(?:\.\d+)?|\d\d:\d\d:\d\d(?:\.\d+)?) +)?"
              r"(?:\[ *\d+\] )?"
              r"(?:\[[0-9a-f?]+\] )?")
_PREFIX = re.compile(r" *(?:\[pid +(\d+)(?:<[^>]*>)?\] |(\d+)(?:<[^>]*>)? +)?" + _AFTER_PID)
_PREFIX_NO_PID = re.compile(r" *()()" + _AFTER_PID)
_PID_MAX = 1 << 22  # PID_MAX_LIMIT: a bigger leading number is a whole-second timestamp, not a pid
_FAST = re.compile(r"(\d+) +(\d+\.\d+) ([a-z_][a-z0-9_]*)\((.*)\) += (.*?)(?: <(\d+\.\d+)>)?", re.S)
# kprof's own format again, for a call cut in two by another task's (threads: most lines of a Go program's log):
# "PID TIME name(args <unfinished ...>" and "PID TIME <... name resumed>args) = result <duration>"
_FAST_CUT = re.compile(r"(\d+) +(\d+\.\d+) ([a-z_][a-z0-9_]*)\((.*) <unfinished \.\.\.>", re.S)
_FAST_RESUMED = re.compile(r"(\d+) +(\d+\.\d+) <\.\.\. ([a-z_][a-z0-9_]*) resumed>(.*)", re.S)
_CALL = re.compile(r"([a-z_][a-z0-9_]*|syscall_0x[0-9a-f]+|\?\?\?)\(")
_RESUMED = re.compile(r"<\.\.\. ([a-z_][a-z0-9_]*|syscall_0x[0-9a-f]+|\?\?\?) resumed>")
_EXIT = re.compile(r"\+\+\+ (?:exited with (\d+)|killed by (SIG[A-Z0-9_]+|\d+)( \(core dumped\))?"
                   r"|superseded by execve in pid (\d+)) \+\+\+")
_SIGNAL = re.compile(r"--- (?:(SIG[A-Z0-9_]+|\d+) |stopped by (SIG[A-Z0-9_]+))")
_RESULT = re.compile(r"(0x[0-9a-f]+|-?\d+|\?)")
_ERRNO = re.compile(r" (?:(E[A-Z0-9_]+) \(|\(errno (\d+)\))")   # strace names no errno 41: "-1 (errno 41)"
_UNFINISHED = " <unfinished ...>"
# execve from a thread other than the leader: strace may end the thread's line "<pid changed to LEADER ...>"
# instead of "<unfinished ...>"; the call ends as "<... execve resumed>" under the leader's pid (strace's own
# test, threads-execve), after "+++ superseded by execve in pid THREAD +++" unless -qqq left that out
_PID_CHANGED = re.compile(r" <pid changed to (\d+) \.\.\.>$")
_DETACHED = " <detached ...>"
# "strace: Process 12 attached" written into a half-printed line when the log is strace's stderr
_ATTACHED = re.compile(r"(?:\S*/)?strace: Process (\d+) attached$")
_PERSONALITY = re.compile(r"System call usage summary for (\d+) bit mode:|\[ Process PID=\d+ runs in ")
# every column title strace -c/-C prints (-U chooses which, in which order)
_SUMMARY_TITLES = frozenset({"syscall", "%time", "seconds", "usecs/call", "calls", "errors", "shortest", "longest"})
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
def _result_split(rest: str) -> tuple[int, int]:
    """(end of the arguments, start of the result) in ``args)   = result``; (-1, -1) when absent.

    strace pads short calls for alignment (``brk(NULL)       = 0x…``), so ``=`` may stand several spaces after ``)``.
    """
    k = args_end(rest)
    if k < 0:
        return -1, -1
    j = k + 1
    while j < len(rest) and rest[j] == " ":
        j += 1
    if j == k + 1 or not rest.startswith("= ", j):
        return -1, -1
    return k, j + 2


# the calls whose arguments are typed beyond the fd and a path argument, and how
_OPEN_AT, _OPEN, _EXEC, _IOCTL, _CLONE, _SOCKADDR, _ACCEPT = range(7)
_PATH = _EXEC    # the kinds up to here have a path argument
_TYPED = {"openat": _OPEN_AT, "openat2": _OPEN_AT,
          "open": _OPEN, "creat": _OPEN, "open_by_handle_at": _OPEN, "execve": _EXEC, "execveat": _EXEC,
          "ioctl": _IOCTL, "clone": _CLONE, "clone3": _CLONE,
          "connect": _SOCKADDR, "bind": _SOCKADDR, "sendto": _SOCKADDR, "accept": _ACCEPT, "accept4": _ACCEPT}
_SOCKADDR_ARG = {"connect": 1, "bind": 1, "sendto": 4}


def parse_result(tail: str, event: SyscallEvent, fd=fd_of) -> str | None:
    """Fill result, errno, result_fd, duration, injected from the text after ') = '; returns strace's text for
    what is behind a returned fd (``fd`` types it: ``fd_of``, or a parser's cached form of it)."""
    shown = None
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
        return None
    value = m.group(1)
    rest = tail[m.end():]
    if value != "?":
        event.result = int(value, 16) if value.startswith("0x") else int(value)
    elif rest.strip() == "<unavailable>":
        event.result_lost = True
        return None
    if rest.startswith("<"):
        end = skip_fd_path(rest, 0)
        shown = rest[1:end - 1]
        event.result_fd = fd(shown)
        rest = rest[end:]
    if rest:
        e = _ERRNO.match(rest)
        if e and e.group(2) and int(e.group(2)) > MAX_ERRNO:
            # not an errno the kernel can return: a task killed at the call's exit stop, whose syscall info the
            # kernel no longer gives (op NONE), so strace 6.1 read its buffer's stale fields: minus the number of
            # an earlier stop's call ("-1 (errno 18446744073709551602)", 2^64-14, in a Go thread's rt_sigprocmask
            # while a sibling called exit_group; 2^64-62, x86_64's kill, in a child its parent killed). A call
            # made whose result was not read, as "= ? <unavailable>"; strace -c counts it as an error
            event.result, event.result_lost = None, True
        elif e:
            event.errno = e.group(1) or errno_name(int(e.group(2)))
        if rest.endswith(("(INJECTED)", "(DELAYED)")):     # a delay rule's call ran, late: the rule applied
            event.injected = True
        elif rest.endswith("(SERVED)"):
            event.served = True
    return shown


@dataclass
class StraceSummary:
    """strace's own ``-c`` table: per syscall (calls, errors).

    Summed over the tables of every run appended to one log (``-A``). A personality's own table (a 32-bit
    program's calls: "… for 32 bit mode") keeps its rows apart: ``getpid (32 bit mode)``.
    """

    calls: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    tables: int = 0
    # the columns every table had (-U chooses them): a missing one is not known, not 0. Without "calls",
    # ``calls`` still lists each syscall strace saw return (its count is 0 there)
    columns: frozenset = frozenset({"calls", "errors"})


@dataclass
class ParseStats:
    lines: int = 0
    events: int = 0
    unparsed: int = 0
    first_unparsed: list[tuple[int, str]] = field(default_factory=list)
    stack_lines: int = 0          # -k's " > func+0x…" lines under a call
    detached: list[str] = field(default_factory=list)   # calls strace detached from while they ran (-p, ^C)


_FORKS = syscalls.syscall_group("fork")


class StraceLogParser:
    """Streaming parser: feed lines, get events; pending unfinished calls are kept per pid.

    ``pid`` is the pid of a log with no pid on its lines (one ``-ff`` file: the pid is in its name). ``arch``
    reads an ioctl request strace named (``TCGETS``) as that architecture's number. ``paths``: read the path
    argument of every call on no shown fd (``stat``, ``access`` …), not only of open*/exec* (the footprint's).

    Each event's typed fields are filled from the argument text (see ``_typed``): what is behind its fd and
    a returned fd (decoded once per distinct text), its path argument, and for the calls that have them the
    ioctl request, the sockaddr, whether clone made a thread.
    """

    def __init__(self, canonical=None, pid: int = 0, arch: str = "x86_64", paths: bool = False):
        self._canonical = canonical or (lambda name: name)
        self._arch = arch
        self._paths = paths
        self._fds: dict[str, Fd] = {}        # strace's text for an fd → its typed form
        self._requests: dict[str, int | None] = {}
        self._names: dict[str, str] = {}
        self._pending: dict[int, tuple[str, str, float | None]] = {}
        self._handed: dict[int, int] = {}  # leader → the thread whose execve it will finish ("pid changed")
        self.summary: StraceSummary | None = None
        self.stats = ParseStats()
        self._columns: dict[str, int] | None = None   # while inside a summary table: column → index
        self._mode: str = ""               # the table's personality: "" (the native one) or " (32 bit mode)"
        self._next_mode: str = ""
        self._pid = pid
        self._live: set[int] = set()      # tasks alive now (stderr logs print no pid while only one is)
        self._first_children: set[int] = set()   # (stderr logs) what the unnamed first task's forks returned
        self._last_pid = pid
        self._carry = ""                   # a line cut by "strace: Process N attached" (stderr logs)

    def _name(self, raw: str) -> str:
        name = self._names.get(raw)
        if name is None:
            name = self._names[raw] = self._canonical(raw)
        return name

    def _unparsed(self, lineno: int, line: str) -> None:
        self.stats.unparsed += 1
        if len(self.stats.first_unparsed) < 5:
            self.stats.first_unparsed.append((lineno, line[:200]))

    # ---- the -c/-C summary tables ------------------------------------------

    def _summary_header(self, line: str) -> bool:
        """A table's column titles (default, or chosen with -U): remember where calls, errors, name are."""
        cols = line.replace("% time", "%time").split()
        if "syscall" not in cols or not set(cols) <= _SUMMARY_TITLES:
            return False
        numeric = [c for c in cols if c != "syscall"]
        self._columns = {c: numeric.index(c) for c in ("calls", "errors") if c in numeric}
        self._columns["#"] = len(numeric)
        if self.summary is None:
            self.summary = StraceSummary()
        s = self.summary
        s.columns = (s.columns if s.tables else frozenset({"calls", "errors"})) & set(self._columns)
        s.tables += 1
        self._mode, self._next_mode = self._next_mode, ""
        return True

    def _summary_line(self, line: str) -> bool:
        """One line inside a table; False when the table has ended (the line is something else)."""
        if line.startswith("---") or _PERSONALITY.match(line):
            return True
        numbers, name = [], None
        for w in line.split():
            if _NUMBER.fullmatch(w):
                numbers.append(w)
            elif name is None:
                name = w
            else:
                return False
        if name is None:
            return False
        cols = self._columns
        want = cols["#"]
        if len(numbers) == want - 1 and "errors" in cols:   # strace leaves "errors" blank when there were none
            numbers.insert(cols["errors"], "0")
        if len(numbers) != want:
            return False
        if name == "total":
            self._columns = None
            return True
        name += self._mode
        calls = self.summary.calls
        calls[name] = calls.get(name, 0) + (int(numbers[cols["calls"]]) if "calls" in cols else 0)
        errors = self.summary.errors
        errors[name] = errors.get(name, 0) + (int(numbers[cols["errors"]]) if "errors" in cols else 0)
        return True

    # ---- events --------------------------------------------------------------

    def feed(self, lines: Iterable[str]) -> Iterator[SyscallEvent | ProcessEvent]:
        stats = self.stats
        pending = self._pending
        names = self._names
        fds = self._fds
        typed = _TYPED
        paths = self._paths
        for line in lines:
            stats.lines += 1
            line = line.rstrip("\n")
            if self._carry:
                line, self._carry = self._carry + line, ""
            if self._columns is not None:
                if self._summary_line(line):
                    continue
                self._columns = None
            if not line:
                continue
            cut = line.endswith(_UNFINISHED)     # (before the regex: a third of a Go program's lines)
            f = None if cut else _FAST.fullmatch(line)
            if f is not None and " = " not in f.group(4):
                # the common case, kprof's own format: "PID TIME name(args) = result <duration>"
                pid, ts, raw, args, tail, dur = f.groups()
                name = names.get(raw) or self._name(raw)
                pid = int(pid)
                if pid not in self._live:
                    yield from self._task_seen(pid)
                if tail.isdigit():  # most calls: a plain non-negative result
                    ev = SyscallEvent(pid, name, args, int(tail), None, dur and float(dur), float(ts))
                    shown = None
                else:
                    ev = SyscallEvent(pid, name, args, time=float(ts), duration=dur and float(dur))
                    shown = parse_result(tail, ev, self._fd)
                fd = fd_path_of(args)     # the typed fields: see _typed (its common case here, inline)
                if fd is not None:
                    ev.fd = fds.get(fd) or self._fd(fd)
                if name in typed or (paths and fd is None and '"' in args):
                    self._typed(ev, shown, fd)
                stats.events += 1
                yield ev
                continue
            if cut:
                u = _FAST_CUT.fullmatch(line)
                if u is not None:   # the slow path's reading of such a line, without its prefix regexes
                    pid = int(u.group(1))
                    if pid not in self._live:
                        yield from self._task_seen(pid)
                    pending[pid] = (u.group(3), u.group(4), float(u.group(2)))
                    continue
            elif line[0] != " " and "resumed>" in line and "strace: Process " not in line:
                # (cut again, "<unfinished ...>" at its end; the execve rules of self._handed; cut by strace's
                # message: the general path)
                u = _FAST_RESUMED.fullmatch(line)
                if u is not None and int(u.group(1)) not in self._handed:
                    pid, name, rest = int(u.group(1)), u.group(3), u.group(4)
                    if pid not in self._live:
                        yield from self._task_seen(pid)
                    p = pending.pop(pid, None)
                    start_args, start_time = ("", float(u.group(2))) if p is None or p[0] != name else p[1:]
                    ev = self._complete(pid, name, start_args, rest, start_time, line)
                    if ev is not None:
                        yield ev
                    continue
            if line[0] == " " and line.startswith(" > "):
                stats.stack_lines += 1    # -k: the stack of the call above
                continue
            a = _ATTACHED.search(line) if "strace: Process " in line else None
            if a is not None:
                if a.start() > 0:          # the message cut a call's line in two: join the halves
                    carry = line[:a.start()]
                    if len(self._live) == 1 and not carry.startswith("[pid "):   # whose, before the new task
                        carry = f"[pid {next(iter(self._live))}] " + carry
                    self._carry = carry
                self._live.add(int(a.group(1)))
                continue
            m = _PREFIX.match(line)
            if m.group(2) and not m.group(3) and int(m.group(2)) >= _PID_MAX:
                m = _PREFIX_NO_PID.match(line)   # "1700000000 read(": a whole-second time, not a pid
            body = line[m.end():]
            yield from self._task_seen_from(m, body.startswith("<... "))
            pid = self._last_pid
            ts = m.group(3)
            time = float(ts) if ts and ":" not in ts else None
            c = _CALL.match(body)
            if c:
                name = c.group(1)
                rest = body[c.end():]
                if rest.endswith(_UNFINISHED):
                    pending[pid] = (name, rest[: -len(_UNFINISHED)], time)
                    continue
                changed = _PID_CHANGED.search(rest) if rest.endswith("...>") else None
                if changed is not None:        # unfinished, and the leader's pid will finish it
                    pending[pid] = (name, rest[:changed.start()], time)
                    self._handed[int(changed.group(1))] = pid
                    continue
                if rest.endswith(_DETACHED):   # strace detached (-p then ^C) while the call was running
                    pending.pop(pid, None)
                    stats.detached.append(name)
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
                if (p is None or p[0] != name) and pid in self._handed:
                    # no "superseded" line handed the thread's execve over (-qqq): the leader's own cut call
                    # never returned, and the thread's call is the one resumed here
                    if p is not None:
                        pending[pid] = p
                        yield from self._flush(pid)
                    p = pending.pop(self._handed.pop(pid), None)
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
                if e.group(4) is not None:
                    # a thread other than the leader called execve: the kernel gives it the leader's pid,
                    # and strace shows the call's end ("<... execve resumed>") under that pid
                    thread = int(e.group(4))
                    yield from self._flush(pid)
                    self._handed.pop(pid, None)
                    p = pending.pop(thread, None)
                    if p is not None:
                        pending[pid] = p
                    self._live.discard(thread)
                    continue
                yield from self._flush(pid)
                self._live.discard(pid)
                stats.events += 1
                if e.group(1) is not None:
                    yield ProcessEvent(pid, "exit", status=int(e.group(1)), time=time)
                else:
                    yield ProcessEvent(pid, "killed", signal=e.group(2), time=time,
                                       core_dumped=bool(e.group(3)))
                continue
            if body.startswith("[ Process PID="):   # "[pid 5] [ Process PID=5 runs in 64 bit mode. ]" (stderr)
                continue
            if body.startswith("--- "):
                s = _SIGNAL.match(body)
                if s:
                    stats.events += 1
                    yield ProcessEvent(pid, "signal", signal=s.group(1) or s.group(2), time=time)
                else:
                    self._unparsed(stats.lines, line)
                continue
            mode = _PERSONALITY.match(line)
            if mode is not None and mode.group(1):    # the next table counts one personality's calls
                self._next_mode = f" ({mode.group(1)} bit mode)"
                continue
            if self._summary_header(line) or mode is not None or is_strace_message(line):
                continue   # a summary table starts; or strace's own messages (stderr captured with the log)
            self._unparsed(stats.lines, line)

    def _task_seen(self, pid: int, resumed: bool | None = None) -> Iterator[ProcessEvent]:
        """A pid not seen alive before; when it names the first task of a stderr log, say so. Without strace's
        "Process N attached" lines (-q) the first ``[pid N]`` may be a new task's: not one the first task's fork
        returned, nor, while the first task is inside a call (``resumed``: the line resumes a call), a task
        whose line does not resume one."""
        live = self._live
        if 0 in live and self._pid == 0 and pid not in self._first_children \
                and not (resumed is False and 0 in self._pending):
            live.discard(0)
            live.add(pid)
            if 0 in self._pending:
                self._pending[pid] = self._pending.pop(0)
            yield ProcessEvent(0, "renamed", status=pid)
        else:
            live.add(pid)

    def _task_seen_from(self, m: re.Match, resumed: bool) -> Iterator[ProcessEvent]:
        pid = m.group(1) or m.group(2)
        if pid:
            pid = int(pid)
            if pid not in self._live:
                yield from self._task_seen(pid, resumed)
        elif len(self._live) == 1:
            pid = next(iter(self._live))
        else:
            pid = self._pid
            if not self._live:
                self._live.add(pid)
        self._last_pid = pid

    def _complete(self, pid, name, start_args, rest, time, line) -> SyscallEvent | None:
        """``rest`` is ``args) = result``; ``start_args`` what an ``<unfinished ...>`` line already gave."""
        k, r = _result_split(rest)
        if k < 0:
            self._unparsed(self.stats.lines, line)
            return None
        if name == "???":     # a task killed as it entered a call strace could not yet name: not counted
            return None
        ev = SyscallEvent(pid, self._name(name), start_args + rest[:k], time=time)
        shown = parse_result(rest[r:], ev, self._fd)
        self._typed(ev, shown, self._fd_arg(ev))
        if pid == 0 and ev.result and ev.result > 0 and ev.name in _FORKS:
            self._first_children.add(ev.result)
        self.stats.events += 1
        return ev

    def _flush(self, pid: int) -> Iterator[SyscallEvent]:
        p = self._pending.pop(pid, None)
        if p is not None and p[0] != "???":
            self.stats.events += 1
            ev = SyscallEvent(pid, self._name(p[0]), p[1], time=p[2])
            self._typed(ev, None, self._fd_arg(ev))
            yield ev

    def finish(self) -> Iterator[SyscallEvent]:
        """Calls still unfinished at the end of the log: they never returned (or the log was cut)."""
        if self._carry:
            self._unparsed(self.stats.lines, self._carry)
            self._carry = ""
        for pid in list(self._pending):
            yield from self._flush(pid)

    # ---- typed fields ------------------------------------------------------------------------------------

    def _fd(self, shown: str) -> Fd:
        fd = self._fds.get(shown)
        if fd is None:
            fd = self._fds[shown] = fd_of(shown)
        return fd

    def _fd_arg(self, ev: SyscallEvent) -> str | None:
        """Types what is behind the first argument when strace showed it (-yy); returns strace's text for it."""
        shown = fd_path_of(ev.args)
        if shown is not None:
            ev.fd = self._fds.get(shown) or self._fd(shown)
        return shown

    def _typed(self, ev: SyscallEvent, result_shown: str | None, shown: str | None) -> None:
        """Fill ``ev``'s typed fields beyond its fd from its argument text (``shown``: strace's text for what is
        behind the first argument, ``result_shown`` for the returned fd).

        Only what is there to read is read: a call without a quote in its arguments has no path argument, and
        the arguments after the one wanted are not scanned (the live analysis runs beside the traced command).
        """
        args = ev.args
        kind = _TYPED.get(ev.name)
        if kind is not None and kind <= _PATH:
            if kind == _EXEC or not result_shown or ev.result is None or ev.result < 0:
                # (an open whose returned fd shows the file opened: that is what is read)
                ev.path = path_arg(args, kind == _OPEN_AT or ev.name == "execveat")
            return
        if self._paths and not shown and '"' in args:
            ev.path = path_arg(args)
        if kind is None:
            return
        if kind == _IOCTL:
            text = arg(args, 1)
            if text is not None:
                request = self._requests.get(text, -1)
                if request == -1:
                    request = self._requests[text] = request_from_arg(text, self._arch)
                ev.request = request
        elif kind == _CLONE:
            ev.thread = clone_thread(args)
        elif kind == _SOCKADDR:
            text = arg(args, _SOCKADDR_ARG[ev.name])
            ev.address = sockaddr(text) if text is not None else None
        elif result_shown:   # accept: the connection is behind the returned fd
            ev.address = accepted_address(result_shown)
