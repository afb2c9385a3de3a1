"""ftrace text, the fast path: one pass over a contiguous piece of a trace → a :class:`Part` of counts.

A chunk is matched with one bytes regex (two captures per line: the task column and the event key) and its
matches counted with ``Counter``; only the rare lines the footprint needs in full (ioctl, fork, exit_group,
exec) are read on their own. A chunk that does not match line for line, or that straddles the time window,
is read line by line. What the counts mean (calls, errors, pairing) is decided in ``ftrace_text._build``.
"""
from __future__ import annotations

import gc
import re
from collections import Counter
from dataclasses import dataclass, field

from profiler.kernel import syscalls
from profiler.kernel.errnos import errno_name, is_error_value
from profiler.parse.ftrace_format import (
    _FORKS, _LINE, _OTHER_LINE, _RARE_NAMES, LOST_UNCOUNTED, _TS, EventKey, Task, TaskArch, Window, _args_of,
    _Starts, _chunk_regexes, _found, _found_back, _hexint, _key_of, _quick_regex, _return_value, event_key,
    event_syscall_name, lost_events, task_of)

SAMPLES = 16                    # raw sys_enter lines per task looked at for 32/64-bit evidence
# a chunk with more tasks than this has their lines looked up in one pass over it (_Starts), not a search per task,
# which scans the rest of the chunk for a task whose lines end early: half the time spent reading a rig's trace
# (thousands of short-lived programs). Few busy tasks' searches stop after a few lines: cheaper than the pass.
_MANY_TASKS = 24
_WINDOW_MARGIN = 1.0            # s: a chunk this close to a window edge is read line by line


@dataclass
class Part:
    """What one pass over a contiguous piece of a trace found. Parts merge in file order."""

    keys: Counter = field(default_factory=Counter)     # (prefix, event key) → lines
    lines: int = 0
    outside: int = 0                                   # lines outside the time window
    other: Counter = field(default_factory=Counter)    # headers, blank lines, buffer markers
    unparsed: int = 0
    unparsed_samples: list = field(default_factory=list)   # (line number in the part, text)
    lost: Counter = field(default_factory=Counter)     # cpu → events lost (ring buffer overrun)
    ioctl: Counter = field(default_factory=Counter)    # (pid, comm, raw?, request) → enters
    ioctl_err: Counter = field(default_factory=Counter)  # (pid, comm, raw?, request, errno) → failed calls
    ioctl_orphans: list = field(default_factory=list)  # (pid, raw?, errno or None): exits with no enter seen
    ioctl_pending: dict = field(default_factory=dict)  # (pid, raw?) → (comm, request) entered, not yet returned
    ioctl_seen: set = field(default_factory=set)       # (pid, raw?) with ioctl lines in this part
    ioctl_entered: set = field(default_factory=set)    # (pid, raw?) with an ioctl enter in this part
    parents: dict = field(default_factory=dict)        # child pid → parent pid
    execs: list = field(default_factory=list)          # (pid, filename) in order
    exit_status: dict = field(default_factory=dict)    # pid → exit_group status
    samples: dict = field(default_factory=dict)        # pid → [raw enters looked at, widest argument in hex digits]
    child_returns: dict = field(default_factory=dict)  # (pid, raw?) → the fork call a new task began returning from
    # each task's first and last syscall line (event key), raw_syscalls and per-syscall form apart: a call in
    # progress when the trace starts shows only its exit, one still running at the end only its enter
    first_raw: dict = field(default_factory=dict)
    last_raw: dict = field(default_factory=dict)
    first_named: dict = field(default_factory=dict)
    last_named: dict = field(default_factory=dict)
    first_ts: float | None = None
    last_ts: float | None = None
    fast_chunks: int = 0
    slow_chunks: int = 0
    incomplete_last_line: bytes | None = None


def _request(body: bytes, j: int, e: int) -> int | None:
    """The request of the raw ioctl enter whose arguments are ``body[j:e]`` ("(fd, request, …"), or None."""
    args = body[j + 1:e].split(b",", 2)
    try:
        return int(args[1], 16) & 0xFFFFFFFF if len(args) == 3 else None
    except ValueError:
        return None


class _Pass:
    """Reads chunks of one trace into a Part."""

    def __init__(self, task_arch: TaskArch, window: Window):
        self.ta = task_arch
        self.window = window
        self.part = Part()
        self.rare = task_arch.rare()
        self._ioctl_nr = {abi: syscalls.syscall_number(abi, "ioctl") for abi in task_arch.abis()}
        ioctl_nrs = tuple(sorted({n for n in self._ioctl_nr.values() if n is not None}))
        exit_nrs = tuple(sorted({nr for t in self.rare.values() for nr, name in t.items() if name == "exit_group"}))
        fork_nrs = tuple(sorted({nr for t in self.rare.values() for nr, name in t.items() if name in _FORKS}))
        self._fast, self._evre = _chunk_regexes(ioctl_nrs, exit_nrs, fork_nrs)
        self._quick = _quick_regex(ioctl_nrs, exit_nrs, fork_nrs)
        # raw_syscalls lines are never read in full (what they hold is in their keys), except ioctl lines
        # when their errors need pairing; per-syscall and sched_process_* lines of interest are
        self._ioctl_literals = {b"NR %d " % nr: nr for nr in ioctl_nrs}
        self._raw_tasks: dict[bytes, tuple] = {}   # prefix → (task, its ABI's rare numbers)
        self._rare_name_literals = {n: (b"sys_%s(" % n.encode(), b"sys_%s -> " % n.encode(),
                                        b"sys_enter_%s:" % n.encode(), b"sys_exit_%s:" % n.encode())
                                    for n in _RARE_NAMES}
        self._needs: dict[bytes, tuple] = {}       # event key → literals to look for, cached
        self._cls: dict[tuple, tuple | None] = {}  # (prefix, event key) → what it is, cached
        self._misses = 0                           # chunks in a row the chunk regex did not fit
        self._skip_fast = 0

    # ---- chunks

    def chunk(self, body: bytes, lo: int, hi: int) -> None:
        """The whole lines of ``body[lo:hi]``, each preceded by b"\\n" (body[lo] is one); read in place."""
        part = self.part
        line0 = part.lines
        n = body.count(b"\n", lo, hi)
        part.lines += n
        if body.find(b"\r", lo, hi) >= 0:      # CRLF line ends (a trace copied through Windows): read as LF
            body = (body[lo:hi] + b"\n").replace(b"\r\n", b"\n")[:-1]
            lo, hi = 0, len(body)
        collecting = gc.isenabled()
        gc.disable()            # a chunk's matches are some 50,000 tuples, none in a cycle: scanning them is waste
        try:
            self._range(body, lo, hi, n, line0, 0)
        finally:
            if collecting:
                gc.enable()

    def _range(self, body: bytes, lo: int, hi: int, n: int, line0: int, depth: int) -> None:
        part = self.part
        fast = True
        if self.window.active():
            a, b = self._edge_ts(body, lo, hi)
            w = self.window
            if a is None or b is None or \
                    (w.start is not None and a < w.start + _WINDOW_MARGIN) or \
                    (w.end is not None and b >= w.end - _WINDOW_MARGIN):
                fast = False
        if fast and self._skip_fast > 0:      # recent chunks were not in the common shape: do not try
            self._skip_fast -= 1
            fast = False
        if fast:
            ms = self._quick.findall(body, lo, hi)
            if len(ms) != n and not self._few_missing(n, len(ms), depth):
                ms = self._fast.findall(body, lo, hi)       # a prefix or time column too wide for the quick one
            if len(ms) == n:
                self._misses = 0
                part.fast_chunks += 1
                self._digest(body, lo, hi, Counter(ms), ms)
                return
            if self._few_missing(n, len(ms), depth):
                # a few lines of another shape (headers, a lost-events line): halve until they are alone
                mid = body.find(b"\n", (lo + hi) // 2, hi)
                if lo < mid < hi:
                    n1 = body.count(b"\n", lo, mid)
                    self._range(body, lo, mid, n1, line0, depth + 1)
                    self._range(body, mid, hi, n - n1, line0 + n1, depth + 1)
                    return
            self._misses += 1
            if self._misses >= 3:
                self._skip_fast, self._misses = 15, 0
        part.slow_chunks += 1
        for i, line in enumerate(body[lo:hi].split(b"\n")[1:]):
            self.line(line, line0 + i + 1)

    @staticmethod
    def _few_missing(n: int, matched: int, depth: int) -> bool:
        return depth < 8 and n >= 512 and n - matched <= n // 32

    def _edge_ts(self, body: bytes, lo: int, hi: int):
        head = _TS.search(body, lo, min(hi, lo + 4096))
        tail = None
        for m in _TS.finditer(body, max(lo, hi - 4096), hi):
            tail = m
        return (float(head.group(1)) if head else None), (float(tail.group(1)) if tail else None)

    def _ts_from_chunk(self, body: bytes, lo: int, hi: int) -> None:
        a, b = self._edge_ts(body, lo, hi)
        p = self.part
        if a is not None and p.first_ts is None:
            p.first_ts = a
        if b is not None:
            p.last_ts = b

    # ---- a chunk in the common shape: its counted keys, then the few lines worth reading

    def _classify(self, pk: tuple):
        """What a (prefix, event key) pair is, worked out once per pass."""
        prefix, key = pk
        task, ev = task_of(prefix), event_key(key)
        info = None
        if task is not None and ev is not None:
            raw = ev.nr is not None
            info = (task, ev, ev.kind != "event", raw,
                    raw and ev.nr == self._ioctl_nr.get(self.ta.of(task)), self._literals(key),
                    raw and ev.kind == "enter")
        self._cls[pk] = info
        return info

    def _digest(self, body: bytes, lo: int, hi: int, cc: Counter, ms: list) -> None:
        """Everything a chunk in the common shape tells, from its counted keys; lines are read only for
        the rare events, ambiguous ioctl errors, each task's last syscall and a few 32/64-bit samples."""
        part = self.part
        keys, cls, samples = part.keys, self._cls, part.samples
        first_raw, first_named = part.first_raw, part.first_named
        prefixes: dict[int, list] = {}          # pid → its prefixes with syscall lines, in order
        kinds: dict[bytes, int] = {}            # prefix → 1: it has raw syscall lines here, 2: per-syscall ones
        wanted: set = set()
        itasks: dict = {}                        # pid → [comm, requests entered, errors, exits] of raw ioctls
        todo = []
        for pk, n in cc.items():                 # insertion order = order of first occurrence
            keys[pk] = keys.get(pk, 0) + n
            info = cls.get(pk, 0)
            if info == 0:
                info = self._classify(pk)
            if info is None:
                continue
            task, ev, syscall, raw, ioctl, lits, raw_enter = info
            if syscall:
                pl = prefixes.get(task.pid)
                if pl is None:
                    prefixes[task.pid] = [pk[0]]
                elif pk[0] not in pl:
                    pl.append(pk[0])
                kinds[pk[0]] = kinds.get(pk[0], 0) | (1 if raw else 2)
                (first_raw if raw else first_named).setdefault(task.pid, pk[1])
            if lits:
                wanted.update(lits)
            if ioctl:
                t = itasks.get(task.pid)
                if t is None:
                    t = itasks[task.pid] = [task.comm, set(), Counter(), 0]
                if ev.kind == "enter":
                    t[0] = task.comm
                    if ev.request is not None:
                        t[1].add(ev.request)
                else:
                    t[3] += n
                    if ev.err:
                        t[2][errno_name(ev.err)] += n
            if raw_enter:
                sm = samples.get(task.pid)
                if sm is None or sm[0] < SAMPLES:
                    todo.append(pk[0])
        todo = list(dict.fromkeys(todo))
        at = _Starts(body, lo, hi) if len(prefixes) > _MANY_TASKS else None
        if prefixes:
            self._ends(body, lo, hi, prefixes, ms, kinds, at)
        if wanted:
            self._rare_from_chunk(body, lo, hi, wanted)
        if itasks:
            self._ioctl_from_chunk(body, lo, hi, itasks)
        if todo:
            self._sample_from_chunk(body, lo, hi, todo, at)
        self._ts_from_chunk(body, lo, hi)

    def _ends(self, body: bytes, lo: int, hi: int, prefixes: dict, ms: list, kinds: dict, at) -> None:
        part = self.part
        # each task's last syscall line: searched backwards from the chunk's end when few tasks are in the
        # chunk (cheap), else taken from a dict of the chunk's matches (prefix → its last line's key)
        last_of = dict(ms) if len(prefixes) > _MANY_TASKS else {}
        for pid, pl in prefixes.items():
            if len(pl) == 1 and last_of:
                ev = event_key(last_of[pl[0]])
                if ev is not None and ev.kind != "event":
                    if ev.nr is not None:
                        part.last_raw[pid] = last_of[pl[0]]
                        continue
                    if pid not in part.last_raw and not kinds.get(pl[0], 0) & 1:   # (raw lines too: searched)
                        part.last_named[pid] = last_of[pl[0]]
                        continue
            raw, named = self._last_keys(body, lo, hi, pl, kinds, at)
            if raw is not None:
                part.last_raw[pid] = raw
            if named is not None:
                part.last_named[pid] = named

    def _last_keys(self, body: bytes, lo: int, hi: int, prefixes: list, kinds: dict, at) -> tuple:
        """The last raw and per-syscall event keys among lines of these prefixes, searching backwards, past
        any number of other events of the task (an all-events trace has bursts of them after exit_group),
        as far as the kinds of syscall line the prefix has in the chunk (``kinds``); ``at``: the chunk's
        ``_Starts``, when it has many tasks."""
        best_raw = best_named = None                # (position, key)
        for prefix in prefixes:
            starts = reversed(at.get(prefix)) if at is not None else _found_back(body, b"\n" + prefix + b"[", lo, hi)
            want = kinds.get(prefix, 3)
            for i in starts:
                if not want:
                    break
                e = body.find(b"\n", i + 1, hi)
                m = _LINE.match(body, i + 1, e if e >= 0 else hi)
                key = _key_of(m.group(4)) if m else None
                ev = event_key(key) if key is not None else None
                if ev is not None and ev.kind != "event":
                    if ev.nr is not None:
                        if best_raw is None or i > best_raw[0]:
                            best_raw = (i, key)
                        break               # a raw line: per-syscall ones before it are not the last
                    if want & 2:
                        if best_named is None or i > best_named[0]:
                            best_named = (i, key)
                        want &= ~2
        return (best_raw[1] if best_raw else None), (best_named[1] if best_named else None)

    # ---- one line (slow path, and the rare lines of fast chunks)

    def line(self, line: bytes, lineno: int) -> None:
        part = self.part
        m = _LINE.match(line)
        if m is None:
            self._other(line, lineno)
            return
        prefix, _, ts, rest = m.groups()
        ts = float(ts)
        if not self.window.inside(ts):
            part.outside += 1
            return
        if part.first_ts is None:
            part.first_ts = ts
        part.last_ts = ts
        key = _key_of(rest, self._evre)
        if key is None or task_of(prefix) is None:
            self._unparsed(line, lineno)
            return
        part.keys[(prefix, key)] += 1
        ev = event_key(key)
        if ev is None:
            return
        if ev.kind != "event":
            pid = task_of(prefix).pid
            if ev.nr is not None:
                part.first_raw.setdefault(pid, key)
                part.last_raw[pid] = key
            else:
                part.first_named.setdefault(pid, key)
                part.last_named[pid] = key
        if self._literals(key):
            self._rare(prefix, ev, rest)
        elif ev.nr is not None and ev.nr == self._ioctl_nr.get(self.ta.of(task_of(prefix))):
            self._apply(task_of(prefix), True, "ioctl", ev.kind, None, ev.request,
                        None, ev.err)
        if ev.kind == "enter" and ev.nr is not None:
            task = task_of(prefix)
            s = part.samples.get(task.pid)
            if s is None or s[0] < SAMPLES:
                self._sample(task.pid, rest)

    def _other(self, line: bytes, lineno: int) -> None:
        part = self.part
        lost = lost_events(line)
        if lost:
            cpu, n, counted = lost
            part.lost[cpu] += n
            part.other["lost-events line" if counted else LOST_UNCOUNTED] += 1
            return
        if _OTHER_LINE.fullmatch(line.rstrip(b"\r")):
            part.other["header or blank"] += 1
            return
        self._unparsed(line, lineno)

    def _unparsed(self, line: bytes, lineno: int) -> None:
        part = self.part
        part.unparsed += 1
        if len(part.unparsed_samples) < 5:
            part.unparsed_samples.append((lineno, line[:200].decode("utf-8", "replace")))

    # ---- rare lines: ioctl requests, children, exit status, exec

    def _literals(self, key: bytes) -> tuple:
        lits = self._needs.get(key)
        if lits is None:
            ev = event_key(key)
            lits = ()
            if ev is not None:
                if ev.nr is not None:
                    pass                                # raw lines: their keys hold what is needed
                elif ev.name is not None and ev.name in self._rare_name_literals:
                    lits = self._rare_name_literals[ev.name]
                elif ev.kind == "event" and ev.event in ("sched_process_fork", "sched_process_exec"):
                    lits = (ev.event.encode() + b":",)
            self._needs[key] = lits
        return lits

    def _rare_from_chunk(self, body: bytes, lo: int, hi: int, wanted: set) -> None:
        find, rfind = body.find, body.rfind
        found = []                  # (position, line start, line end, literal): read in order
        for lit in wanted:
            i = find(lit, lo, hi)
            while i >= 0:
                e = find(b"\n", i, hi)
                found.append((i, rfind(b"\n", lo, i), e if e >= 0 else hi, lit))
                if e < 0:
                    break
                i = find(lit, e, hi)
        if len(wanted) > 1:
            found.sort()
        for i, s, e, lit in found:
            m = _LINE.match(body, s + 1, e)
            if m is not None:
                prefix, _, _, rest = m.groups()
                key = _key_of(rest, self._evre)
                ev = event_key(key) if key is not None else None
                if ev is not None and task_of(prefix) is not None and self._literals(key):
                    self._rare(prefix, ev, rest)

    def _ioctl_from_chunk(self, body: bytes, lo: int, hi: int, tasks: dict) -> None:
        """Which request each failed raw ioctl had. A task that entered one request only (and had it
        pending before the chunk, if anything) failed with that one: counted from the keys. Otherwise the
        chunk's ioctl lines are read in order and paired."""
        part = self.part
        for pid, (comm, reqs, errs, exits) in tasks.items():
            k = (pid, True)
            before = part.ioctl_pending.get(k)
            known = reqs | ({before[1]} if before else set())
            if len(reqs) > 1 or (errs and (len(known) != 1 or (before is None and k not in part.ioctl_entered))):
                break
        else:
            for pid, (comm, reqs, errs, exits) in tasks.items():
                k = (pid, True)
                part.ioctl_seen.add(k)
                before = part.ioctl_pending.get(k)
                req = next(iter(reqs)) if reqs else before[1] if before else None
                for err, n in errs.items():        # (errors with no request known were sent to be paired)
                    part.ioctl_err[(pid, comm, True, req, err)] += n
                if reqs:
                    part.ioctl_entered.add(k)
                # in progress at the chunk's end when the task's last ioctl line here is an enter, as reading the
                # lines in order leaves it (counts cannot tell: an exit whose enter was lost, or came before)
                last = self._last_ioctl(body, lo, hi, pid)
                if last is not None:
                    if last[0]:
                        part.ioctl_pending[k] = (comm, last[1])
                    else:
                        part.ioctl_pending.pop(k, None)
            return
        find, rfind = body.find, body.rfind
        found = []
        for lit, nr in self._ioctl_literals.items():
            i = find(lit, lo, hi)
            while i >= 0:
                e = find(b"\n", i, hi)
                found.append((i, rfind(b"\n", lo, i), e if e >= 0 else hi, nr, len(lit)))
                if e < 0:
                    break
                i = find(lit, e, hi)
        if len(self._ioctl_literals) > 1:
            found.sort()
        for i, s, e, nr, n in found:
            self._rare_raw(body, s, i + n, e, nr)

    def _last_ioctl(self, body: bytes, lo: int, hi: int, pid: int):
        """The task's last raw ioctl line in ``body[lo:hi]``: (True, its request) for an enter, (False, None) for
        an exit; None when there is none. Searched backwards among the ioctl lines only."""
        best = None
        for lit, nr in self._ioctl_literals.items():
            end = hi
            while True:
                i = body.rfind(lit, lo, end)
                if i < 0 or (best is not None and i < best[0]):
                    break
                end = i
                s = body.rfind(b"\n", lo, i)
                b0 = body.find(b"[", s, i)
                j = i + len(lit)
                if b0 < 0 or body[j] not in (40, 61):        # "(" or "="
                    continue
                task = self._raw_task(body[s + 1:b0])[0]
                if task is None or task.pid != pid or self._ioctl_nr.get(self.ta.of(task)) != nr:
                    continue
                e = body.find(b"\n", j, hi)
                best = (i, body[j] == 40, _request(body, j, e if e >= 0 else hi) if body[j] == 40 else None)
                break
        return None if best is None else best[1:]

    def _raw_task(self, prefix: bytes) -> tuple:
        """A raw line's task column → (its task or None, its ABI's rare numbers), cached per pass."""
        hit = self._raw_tasks.get(prefix)
        if hit is None:
            task = task_of(prefix)
            hit = self._raw_tasks[prefix] = (task, self.rare.get(self.ta.of(task), {}) if task else {})
        return hit

    def _rare_raw(self, body: bytes, s: int, j: int, e: int, nr: int) -> None:
        """A raw_syscalls line of a rare number, read in place: body[j] is "(" (enter) or "=" (exit)."""
        c = body[j]
        if c != 40 and c != 61:                     # "(" or "="
            return
        b0 = body.find(b"[", s, j)
        if b0 < 0:
            return
        task, names = self._raw_task(body[s + 1:b0])
        name = names.get(nr)
        if name is None:            # not a task line, or the number is rare for another ABI than this task's
            return
        try:
            if c == 40:
                args = body[j + 1:e].split(b",", 2)
                if name == "ioctl":             # pairing only: the enter itself is counted from its key
                    request = _request(body, j, e)
                    if request is None:
                        return
                    part = self.part
                    k = (task.pid, True)
                    part.ioctl_seen.add(k)
                    part.ioctl_pending[k] = (task.comm, request)
                    part.ioctl_entered.add(k)
                    return
                self._apply(task, True, name, "enter", int(args[0], 16), None, None, None)
            else:
                v = int(body[j + 1:e])
                self._apply(task, True, name, "exit", None, None, v, -v if is_error_value(v) else None)
        except ValueError:
            return

    def _rare(self, prefix: bytes, ev: EventKey, rest: bytes) -> None:
        part = self.part
        task = task_of(prefix)
        if ev.kind == "event":
            text = rest.decode("utf-8", "replace")
            if ev.event == "sched_process_fork":
                m = re.search(r"\bpid=(\d+).*\bchild_pid=(\d+)", text)
                if m:
                    part.parents[int(m.group(2))] = int(m.group(1))
            elif ev.event == "sched_process_exec":
                m = re.search(r"filename=(.*?) pid=(\d+)", text)
                if m:
                    part.execs.append((int(m.group(2)), m.group(1)))
            return
        raw = ev.nr is not None
        if raw:
            name = self.rare.get(self.ta.of(task), {}).get(ev.nr)
            if name is None:
                return
        else:
            name = event_syscall_name(self.ta.of(task), ev.name)
        if ev.kind == "enter":
            args = _args_of(ev, rest)
            self._apply(task, raw, name, "enter", _hexint(args[0]) if args else None,
                        _hexint(args[1]) if len(args) > 1 else None, None, None)
        else:
            self._apply(task, raw, name, "exit", None, None, _return_value(rest), ev.err)

    def _apply(self, task: Task, raw: bool, name: str, kind: str, a0, a1, ret, err) -> None:
        """What a rare line tells: ioctl request and result, exit_group status, a child's pid."""
        part = self.part
        if name == "ioctl":
            k = (task.pid, raw)
            part.ioctl_seen.add(k)
            if kind == "enter":
                if a1 is not None:
                    req = a1 & 0xFFFFFFFF
                    if not raw:                     # raw_syscalls enters are counted from their keys
                        part.ioctl[(task.pid, task.comm, raw, req)] += 1
                    part.ioctl_pending[k] = (task.comm, req)
                    part.ioctl_entered.add(k)
                else:
                    part.ioctl_pending.pop(k, None)
            else:
                err = errno_name(err) if err else None
                if k in part.ioctl_pending:
                    comm, req = part.ioctl_pending.pop(k)
                    if err:
                        part.ioctl_err[(task.pid, comm, raw, req, err)] += 1
                elif k not in part.ioctl_entered:      # first ioctl line of the task here: began earlier
                    part.ioctl_entered.add(k)
                    part.ioctl_orphans.append((task.pid, raw, err))
        elif name == "exit_group" and kind == "enter":
            if a0 is not None:
                part.exit_status[task.pid] = a0 & 0xFF
        elif name in _FORKS and kind == "exit" and not err:
            if ret and ret > 0:
                part.parents.setdefault(ret, task.pid)
            elif ret == 0:                       # the new task's side of the call (no sys_enter of its own)
                part.child_returns.setdefault((task.pid, raw), name)

    # ---- 32/64-bit evidence

    def _sample_from_chunk(self, body: bytes, lo: int, hi: int, todo: list, at) -> None:
        """``todo``: prefixes with raw sys_enter lines whose task has fewer samples than SAMPLES; ``at``: the
        chunk's ``_Starts``, when it has many tasks."""
        samples = self.part.samples
        for prefix in todo:
            pid = task_of(prefix).pid
            starts = at.get(prefix) if at is not None else _found(body, b"\n" + prefix + b"[", lo, hi)
            for i in starts:        # past any number of the task's other events, as line by line reading does
                e = body.find(b"\n", i + 1, hi)
                m = _LINE.match(body, i + 1, e if e >= 0 else hi)
                if m and m.group(4).startswith(b"sys_enter:"):
                    self._sample(pid, m.group(4))
                    if samples[pid][0] >= SAMPLES:
                        break

    def _sample(self, pid: int, rest: bytes) -> None:
        k = rest.find(b"(")
        if k < 0:
            return
        widest = max((len(a.strip()) for a in rest[k + 1:rest.rfind(b")")].split(b",")), default=0)
        s = self.part.samples.setdefault(pid, [0, 0])
        s[0] += 1
        s[1] = max(s[1], widest)

    # ---- end of input

    def last(self, tail: bytes, lineno: int) -> None:
        """A final line without a line end: read as far as it goes, and reported (a cut-off trace)."""
        if not tail.strip():
            return
        self.part.lines += 1
        self.line(tail, lineno)
        self.part.incomplete_last_line = tail[:200]
