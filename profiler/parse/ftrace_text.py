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
  arguments as ``0x…`` text), line by line, exact. Used where events are wanted one at a time.
* :func:`analyse_trace`: the same facts counted — per syscall, per task (comm-pid), ioctl requests
  decoded from the raw arguments, per event name and event group (``irq_*``, ``sched_*`` …) — as one
  :class:`~profiler.footprint.Footprint` per ABI plus an :class:`FtraceResult`. It reads the text in
  chunks with one bytes regex per chunk (two captures per line, counted with ``Counter``) and parses
  only the rare lines it needs in full (ioctl, fork, exit_group, exec); a chunk that does not match the
  common shape line for line, or that straddles the time window, is parsed line by line instead. Large
  plain files are split between processes. The test suite checks that both paths give the same counts.

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

import gc
import gzip
import lzma
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import BinaryIO, Iterable, Iterator

from profiler.errors import KprofError, file_error
from profiler.kernel.errnos import errno_name
from profiler.events import ProcessEvent, SyscallEvent
from profiler.kernel import read_rows, syscalls

CHUNK = 1 << 22                 # bytes read at a time; memory stays a few chunks whatever the trace size
PARALLEL_MIN = 48 << 20         # plain files at least this big are split between worker processes
PART_MIN = 16 << 20             # ... in pieces of at least this size, a few per worker
SAMPLES = 16                    # raw sys_enter lines per task looked at for 32/64-bit evidence
_WINDOW_MARGIN = 1.0            # s: a chunk this close to a window edge is read line by line

# ----------------------------------------------------------------------------- line shapes (bytes)

# The common shape, one match per line: (text before "[cpu]", event key). The event key is the event
# name with, for raw syscalls, the number and kind ("sys_enter: NR 54 (", "sys_exit: NR 54 = -25"), and
# for trace-cmd's per-syscall exit an error return ("sys_exit_openat: 0xfffffffffffffffe"); nothing else
# (return values and arguments would make every line distinct).
def _evkey(ioctl_nrs: tuple = (), exit_nrs: tuple = (), fork_nrs: tuple = (), name: bytes = rb"[^:\n]*") -> bytes:
    """The event-key regex. For the numbers given, the key keeps what the footprint needs from the line
    itself: an ioctl's fd and request ("sys_enter: NR 54 (11, 40206b00"), exit_group's status
    ("sys_enter: NR 248 (3"), a fork's return value, the child's pid ("sys_exit: NR 120 = 4242")."""
    def nrs(ns):
        return b"|".join(b"%d" % n for n in ns)
    alts = b""
    if ioctl_nrs:
        alts += b"(?:%s) \\([0-9a-f]+, [0-9a-f]+|" % nrs(ioctl_nrs)
    if exit_nrs:
        alts += b"(?:%s) \\([0-9a-f]+|" % nrs(exit_nrs)
    if fork_nrs:
        alts += b"(?:%s) = -?\\d+$|" % nrs(fork_nrs)
    return name + rb": *(?:NR (?:" + alts + rb"-?\d+ (?:\(|= (?:-\d{1,4}$|)))|0x(?:f{8})?fffff[0-9a-f]{3}$|)"


_EVKEY_RE = re.compile(_evkey(), re.M)


@lru_cache(maxsize=None)
def _chunk_regexes(ioctl_nrs: tuple, exit_nrs: tuple = (), fork_nrs: tuple = ()) -> tuple:
    """(chunk regex, one line's event-key regex)."""
    evkey = _evkey(ioctl_nrs, exit_nrs, fork_nrs)
    # no part spans a line break: on input that is not ftrace, a match attempt at every line must not
    # scan the rest of the file (quadratic: 100k lines of a strace log took over 10 minutes)
    return re.compile(rb"\n([^\[\n]*)\[\d+\] [^:\n]*: (" + evkey + rb")", re.M), re.compile(evkey, re.M)


@lru_cache(maxsize=None)
def _quick_regex(ioctl_nrs: tuple, exit_nrs: tuple = (), fork_nrs: tuple = ()):
    """The chunk regex, 1.7 times as fast. CPython's regex engine scans a class of one excluded character
    ([^[]) much faster than one of two ([^[\\n]), so the prefix, the text before the event name and the name
    exclude "[" or ":" only, and are bounded instead (linear on any input). Such a part may then run over
    a line end, but that match holds two line starts, so the chunk has fewer matches than lines and the
    strict regex is used. With one match per line, each is the strict regex's match of that line: the
    same two captures."""
    evkey = _evkey(ioctl_nrs, exit_nrs, fork_nrs, rb"[^:]{0,64}")
    return re.compile(rb"\n([^[]{0,160})\[\d+\] [^:]{0,100}: (" + evkey + rb")", re.M)


# One line in full: prefix, cpu, optional flags column, timestamp, the event text.
_LINE = re.compile(rb"([^\[]*)\[(\d+)\]\s+(?:[^\s:]+\s+)?(\d+\.\d+):\s+(.*?)\s*$")
_TS = re.compile(rb"\[\d+\]\s+(?:[^\s:]+\s+)?(\d+\.\d+): ")
_NAMED_ENTER_FILE = re.compile(rb"sys_(\w+)\((.*)\)$")              # trace file: sys_openat(dfd: …)
_NAMED_EXIT_FILE = re.compile(rb"sys_(\w+) -> (\S+)$")              # trace file: sys_openat -> 0x3
_ERRHEX = re.compile(rb"0x(?:f{8})?fffff[0-9a-f]{3}$")
_LOST = re.compile(rb"CPU:?\s*(\d+)\s*\[(?:LOST (\d+) EVENTS|(\d+) EVENTS DROPPED)\]")
_OTHER_LINE = re.compile(rb"\s*(#.*|cpus=\d+|version = .*|CPU \d+ is empty|#+ CPU \d+ buffer started #+|)\s*")

# Task column: optional trace-cmd buffer name, comm, pid, optional "(tgid)" column.
_PREFIX = re.compile(r"\s*(?:(?P<buf>[^\s:]+):\s+(?=\S.*-\d+))?(?P<comm>.*)-(?P<pid>\d+)\s*"
                     r"(?:\(\s*(?P<tgid>\d+|-+)\s*\))?\s*$")
_ARGS_NAMED = re.compile(r"(\w+): ((?:0x)?[0-9a-fA-F]+)")

_ENTER_RAW = re.compile(r"sys_enter: *NR (-?\d+) \((?:([0-9a-f]+)(?:, ([0-9a-f]+))?)?$")
_EXIT_RAW = re.compile(r"sys_exit: *NR (-?\d+) = *(-?\d+)?$")
_ENTER_NAMED = re.compile(r"sys_enter_(\w+): *$")
_EXIT_NAMED = re.compile(r"sys_exit_(\w+): *(0x[0-9a-f]+)?$")
_ENTER_FILE_KEY = re.compile(r"sys_(\w+)\(")
_EVENT_NAME = re.compile(r"([^\s:(]+)")

ARCH_BITS = {"x86_64": 64, "aarch64": 64, "riscv64": 64, "i386": 32, "arm": 32, "arm64-compat": 32}
# syscalls whose lines are parsed in full: ioctl (request), process creation (child pid), exit_group (status)
_RARE_NAMES = ("ioctl", "clone", "clone3", "fork", "vfork", "exit_group")
_FORKS = frozenset(("clone", "clone3", "fork", "vfork"))
_SCHED = (b"sched_process_fork:", b"sched_process_exec:")


def parse_duration(text: str | None, what: str = "duration") -> float | None:
    """``90`` / ``90s`` / ``5m`` / ``1.5h`` → seconds."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(ms|s|m|min|h)?\s*", str(text))
    if not m:
        raise KprofError(f"{what}: '{text}' is not a duration (examples: 90, 90s, 5m, 1.5h)")
    return float(m.group(1)) * {"ms": 0.001, None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]


# ----------------------------------------------------------------------------- opening files

_MAGIC = {b"\x1f\x8b": "gzip", b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd",
          b"\x04\x22\x4d\x18": "lz4", b"PK\x03\x04": "zip"}
_DECOMPRESS_HINT = {"bzip2": "bunzip2 -k", "zstd": "zstd -d", "lz4": "lz4 -d", "zip": "unzip"}


def compression_of(path) -> str | None:
    """'gzip', 'xz', or None for plain text; KprofError for a compression kprof does not read."""
    head = _head(path, 8)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            if kind in ("gzip", "xz"):
                return kind
            raise KprofError(f"{path}: {kind}-compressed; decompress it first ({_DECOMPRESS_HINT[kind]} {path}) "
                             f"or recompress with gzip or xz")
    return None


def _head(path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as e:
        raise file_error(path, e, "an ftrace text file") from None


def open_trace(path) -> BinaryIO:
    """A binary stream of the trace text, decompressed when the file is gzip or xz."""
    kind = compression_of(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


_RAW_SNIFF = re.compile(rb"sys_e(?:nter|xit): *NR -?\d+")


def sniff_raw_syscalls(path) -> bool:
    """Whether the head of a trace holds raw_syscalls lines (syscall numbers, which need an arch)."""
    with open_trace(path) as f:
        head = _read(f, 1 << 20, path)
    return bool(_RAW_SNIFF.search(head))


def _read(stream, n: int, path) -> bytes:
    try:
        return stream.read(n)
    except EOFError:
        raise KprofError(f"{path}: the compressed stream ends early (truncated file?). kprof does not analyse "
                         f"part of a trace silently; if a partial trace is what you want, decompress what is "
                         f"there (zcat/xzcat {path} > trace.txt) and analyse trace.txt") from None
    except (OSError, lzma.LZMAError) as e:
        raise KprofError(f"{path}: damaged compressed data ({e})") from None


# ----------------------------------------------------------------------------- kernel names

def _nr_name(abi: str, nr: int) -> str:
    return syscalls.syscall_name(abi, nr) or f"syscall_{nr}"


@lru_cache(maxsize=None)
def _entry_names(abi: str) -> dict[str, str]:
    """Entry point without ``sys_`` → table name, where unique (``ppoll_time32`` → ``ppoll`` on arm)."""
    seen: dict[str, set] = {}
    for r in read_rows(f"syscalls-{abi}.tsv"):
        if r[2].startswith("sys_"):
            seen.setdefault(r[2][4:], set()).add(r[1])
    return {e: next(iter(n)) for e, n in seen.items() if len(n) == 1}


@lru_cache(maxsize=None)
def event_syscall_name(abi: str, name: str) -> str:
    """The syscall behind a ``syscalls:sys_enter_<name>`` event: the event is named after the
    SYSCALL_DEFINE, which is the table's entry point, not always the table name."""
    canon = syscalls.canonical_name(abi, name)
    if syscalls.syscall_number(abi, canon) is not None:
        return canon
    return _entry_names(abi).get(name, name)


@lru_cache(maxsize=None)
def _rare_numbers(abi: str) -> dict[int, str]:
    out = {}
    for name in _RARE_NAMES:
        nr = syscalls.syscall_number(abi, name)
        if nr is not None:
            out[nr] = name
    return out


# ----------------------------------------------------------------------------- keys → meaning

@dataclass(frozen=True)
class EventKey:
    kind: str                 # "enter" | "exit" | "event"
    event: str                # event name as ftrace names it (sys_enter, sys_exit_openat, irq_handler_entry)
    nr: int | None = None     # raw_syscalls number
    name: str | None = None   # per-syscall event: the syscall named by the event
    err: int | None = None    # errno of a failed exit
    request: int | None = None  # an enter's second argument (an ioctl's request), when the key holds it
    arg0: int | None = None     # an enter's first argument (exit_group's status), when the key holds it
    ret: int | None = None      # an exit's return value, when the key holds it (a fork's child pid)


@lru_cache(maxsize=65536)
def event_key(key: bytes) -> EventKey | None:
    text = key.decode("latin-1").strip()
    m = _ENTER_RAW.match(text)
    if m:
        return EventKey("enter", "sys_enter", nr=int(m.group(1)),
                        request=int(m.group(3), 16) & 0xFFFFFFFF if m.group(3) else None,
                        arg0=int(m.group(2), 16) if m.group(2) else None)
    m = _EXIT_RAW.match(text)
    if m:
        v = int(m.group(2)) if m.group(2) else None
        if v is not None and -4095 <= v < 0:
            return EventKey("exit", "sys_exit", nr=int(m.group(1)), err=-v)
        return EventKey("exit", "sys_exit", nr=int(m.group(1)), ret=v if v is not None and v >= 0 else None)
    m = _ENTER_NAMED.match(text)
    if m:
        return EventKey("enter", f"sys_enter_{m.group(1)}", name=m.group(1))
    m = _EXIT_NAMED.match(text)
    if m:
        err = None
        if m.group(2) and _ERRHEX.match(m.group(2).encode()):
            v = int(m.group(2), 16)
            err = (1 << (64 if len(m.group(2)) > 10 else 32)) - v
        return EventKey("exit", f"sys_exit_{m.group(1)}", name=m.group(1), err=err)
    m = _ENTER_FILE_KEY.match(text)
    if m:
        return EventKey("enter", f"sys_enter_{m.group(1)}", name=m.group(1))
    m = _EVENT_NAME.match(text)
    if m and text.startswith(m.group(1) + ":"):
        return EventKey("event", m.group(1))
    return None


@dataclass(frozen=True)
class Task:
    comm: str
    pid: int
    tgid: int | None


@lru_cache(maxsize=65536)
def task_of(prefix: bytes) -> Task | None:
    m = _PREFIX.match(prefix.decode("utf-8", "replace"))
    if not m or not m.group("comm").strip():
        return None
    tgid = m.group("tgid")
    return Task(m.group("comm").strip(), int(m.group("pid")), int(tgid) if tgid and tgid.isdigit() else None)


def event_group(name: str) -> str:
    """ELISA's "Subsystem usage" grouping: the event name up to its first underscore (irq_*, sched_*)."""
    head, sep, _ = name.partition("_")
    return f"{head}_*" if sep and head else name


class TaskArch:
    """Which ABI a task's syscall numbers are read with: by pid, then by comm, then the trace's arch."""

    def __init__(self, arch: str, spec: dict | None = None):
        self.arch = syscalls.normalize_arch(arch)
        self.by_pid: dict[int, str] = {}
        self.by_comm: dict[str, str] = {}
        for k, v in (spec or {}).items():
            (self.by_pid if isinstance(k, int) else self.by_comm)[k] = syscalls.normalize_arch(v)

    @classmethod
    def parse(cls, arch: str, items: Iterable[str]) -> "TaskArch":
        spec: dict = {}
        for item in items or ():
            who, sep, a = item.partition("=")
            if not sep or not who or not a:
                raise KprofError(f"--task-arch '{item}': use PID=ARCH or COMM=ARCH (e.g. node=arm64-compat)")
            spec[int(who) if who.isdigit() else who] = a
        return cls(arch, spec)

    def abis(self) -> list[str]:
        return list(dict.fromkeys([self.arch, *self.by_pid.values(), *self.by_comm.values()]))

    def of(self, task: Task) -> str:
        return self.by_pid.get(task.pid) or self.by_comm.get(task.comm) or self.arch

    def rare(self) -> dict[str, dict[int, str]]:
        return {abi: _rare_numbers(abi) for abi in self.abis()}


# ----------------------------------------------------------------------------- one pass over a range

@dataclass
class Window:
    """Absolute trace timestamps; a line counts when start <= ts < end."""
    start: float | None = None
    end: float | None = None

    def active(self) -> bool:
        return self.start is not None or self.end is not None

    def inside(self, ts: float) -> bool:
        return (self.start is None or ts >= self.start) and (self.end is None or ts < self.end)


def _hexint(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


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
        if prefixes:
            self._ends(body, lo, hi, prefixes, ms)
        if wanted:
            self._rare_from_chunk(body, lo, hi, wanted)
        if itasks:
            self._ioctl_from_chunk(body, lo, hi, itasks)
        if todo:
            self._sample_from_chunk(body, lo, hi, todo)
        self._ts_from_chunk(body, lo, hi)

    def _ends(self, body: bytes, lo: int, hi: int, prefixes: dict, ms: list) -> None:
        part = self.part
        # each task's last syscall line: searched backwards from the chunk's end when few tasks are in the
        # chunk (cheap), else taken from a dict of the chunk's matches (prefix → its last line's key)
        last_of = dict(ms) if len(prefixes) > 24 else {}
        for pid, pl in prefixes.items():
            if len(pl) == 1 and last_of:
                ev = event_key(last_of[pl[0]])
                if ev is not None and ev.kind != "event":
                    if ev.nr is not None:
                        part.last_raw[pid] = last_of[pl[0]]
                        continue
                    if pid not in part.last_raw:
                        part.last_named[pid] = last_of[pl[0]]
                        continue
            raw, named = self._last_keys(body, lo, hi, pl)
            if raw is not None:
                part.last_raw[pid] = raw
            if named is not None:
                part.last_named[pid] = named

    def _last_keys(self, body: bytes, lo: int, hi: int, prefixes: list) -> tuple:
        """The last raw and per-syscall event keys among lines of these prefixes, searching backwards."""
        best_raw = best_named = None                # (position, key)
        for prefix in prefixes:
            needle = b"\n" + prefix + b"["
            end = hi
            for _ in range(64):
                i = body.rfind(needle, lo, end)
                if i < 0:
                    break
                e = body.find(b"\n", i + 1, hi)
                m = _LINE.match(body, i + 1, e if e >= 0 else hi)
                key = _key_of(m.group(4)) if m else None
                ev = event_key(key) if key is not None else None
                if ev is not None and ev.kind != "event":
                    if ev.nr is not None:
                        if best_raw is None or i > best_raw[0]:
                            best_raw = (i, key)
                        break
                    if best_named is None or i > best_named[0]:
                        best_named = (i, key)
                end = i
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
        m = _LOST.search(line)
        if m:
            part.lost[int(m.group(1))] += int(m.group(2) or m.group(3))
            part.other["lost-events line"] += 1
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
                    part.ioctl_pending[k] = (comm, req)
                    part.ioctl_entered.add(k)
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

    def _rare_raw(self, body: bytes, s: int, j: int, e: int, nr: int) -> None:
        """A raw_syscalls line of a rare number, read in place: body[j] is "(" (enter) or "=" (exit)."""
        c = body[j]
        if c != 40 and c != 61:                     # "(" or "="
            return
        b0 = body.find(b"[", s, j)
        if b0 < 0:
            return
        prefix = body[s + 1:b0]
        hit = self._raw_tasks.get(prefix)
        if hit is None:
            task = task_of(prefix)
            hit = self._raw_tasks[prefix] = (task, self.rare.get(self.ta.of(task), {}) if task else {})
        task, names = hit
        name = names.get(nr)
        if name is None:            # not a task line, or the number is rare for another ABI than this task's
            return
        try:
            if c == 40:
                args = body[j + 1:e].split(b",", 2)
                if name == "ioctl":             # pairing only: the enter itself is counted from its key
                    if len(args) < 3:
                        return
                    part = self.part
                    k = (task.pid, True)
                    part.ioctl_seen.add(k)
                    part.ioctl_pending[k] = (task.comm, int(args[1], 16) & 0xFFFFFFFF)
                    part.ioctl_entered.add(k)
                    return
                self._apply(task, True, name, "enter", int(args[0], 16), None, None, None)
            else:
                v = int(body[j + 1:e])
                self._apply(task, True, name, "exit", None, None, v, -v if -4096 < v < 0 else None)
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

    def _sample_from_chunk(self, body: bytes, lo: int, hi: int, todo: list) -> None:
        samples = self.part.samples
        for prefix in dict.fromkeys(todo):
            pid = task_of(prefix).pid
            needle = b"\n" + prefix + b"["
            i = body.find(needle, lo, hi)
            looked = 0
            while i >= 0 and looked < 4 * SAMPLES:
                looked += 1
                e = body.find(b"\n", i + 1, hi)
                m = _LINE.match(body, i + 1, e if e >= 0 else hi)
                if m and m.group(4).startswith(b"sys_enter:"):
                    self._sample(pid, m.group(4))
                    if samples[pid][0] >= SAMPLES:
                        break
                if e < 0:
                    break
                i = body.find(needle, e, hi)

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


def _key_of(rest: bytes, evre=_EVKEY_RE) -> bytes | None:
    """The event key of one line's event text, in the shape the chunk regex captures."""
    m = _NAMED_EXIT_FILE.match(rest)                     # trace file: "sys_openat -> 0xfffffffffffffffe"
    if m:
        return b"sys_exit_" + m.group(1) + b": " + (m.group(2) if _ERRHEX.match(m.group(2)) else b"")
    m = _NAMED_ENTER_FILE.match(rest)                    # trace file: "sys_openat(dfd: …)", "sys_getpid()"
    if m:
        return b"sys_enter_" + m.group(1) + b": "
    m = evre.match(rest)
    return m.group(0) if m else None


def _args_of(ev: EventKey, rest: bytes) -> list[str]:
    """Argument values as hex digits without 0x, whatever the form."""
    text = rest.decode("latin-1")
    if ev.nr is not None:
        k = text.find("(")
        return [a.strip() for a in text[k + 1:text.rfind(")")].split(",")] if k >= 0 else []
    return [v[2:] if v.lower().startswith("0x") else v for _, v in _ARGS_NAMED.findall(text)]


def _return_value(rest: bytes) -> int | None:
    text = rest.decode("latin-1").rstrip()
    m = re.search(r"(?:= *|-> *|:\s+)(-?(?:0x[0-9a-fA-F]+|\d+))$", text)
    if not m:
        return None
    return int(m.group(1), 0)


# ----------------------------------------------------------------------------- reading a file

def _pass_stream(stream, path, task_arch: TaskArch, window: Window, limit: int | None = None) -> Part:
    """Read a stream chunk by chunk. Each chunk's whole lines are read in place (no copies); the line
    that spans two chunks is joined and read on its own."""
    p = _Pass(task_arch, window)
    carry = b""                 # the unfinished line at the end of the previous chunk
    done = 0
    while limit is None or done < limit:
        data = _read(stream, CHUNK if limit is None else min(CHUNK, limit - done), path)
        if not data:
            break
        done += len(data)
        nl = data.find(b"\n")
        if nl < 0:
            carry += data
            if len(carry) > 16 * CHUNK:
                raise KprofError(f"{path}: no line break in {len(carry) >> 20} MiB: not a text trace")
            continue
        if data.find(b"\0", 0, 65536) >= 0 or carry.find(b"\0") >= 0:
            raise KprofError(f"{path}: binary data (NUL bytes after line {p.part.lines}), not ftrace text. A "
                             f"trace-cmd .dat file must be converted first: trace-cmd report -i {path} > trace.txt")
        line = carry + data[:nl]
        p.part.lines += 1
        p.line(line, p.part.lines)
        k = data.rfind(b"\n")
        if k > nl:
            p.chunk(data, nl, k)
        carry = data[k + 1:]
    p.last(carry, p.part.lines + 1)
    return p.part


def _worker(args) -> Part:
    path, start, end, arch, spec, window = args
    ta = TaskArch(arch, spec)
    with open(path, "rb") as f:
        f.seek(start)
        return _pass_stream(f, path, ta, window, limit=end - start)


def _split_points(path, size: int, jobs: int) -> list[int]:
    cuts = [0]
    with open(path, "rb") as f:
        for i in range(1, jobs):
            f.seek(size * i // jobs)
            f.readline()
            pos = f.tell()
            if cuts[-1] < pos < size:
                cuts.append(pos)
    cuts.append(size)
    return cuts


def default_jobs() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


def edge_timestamps(path) -> tuple[float | None, float | None]:
    """First and last event timestamps (plain files: head and tail; compressed: one extra pass)."""
    first = last = None
    if compression_of(path) is None:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(1 << 20)
            f.seek(max(0, size - (1 << 20)))
            tail = f.read()
    else:
        with open_trace(path) as f:
            head = _read(f, 1 << 20, path)
            tail = head
            while True:
                data = _read(f, CHUNK, path)
                if not data:
                    break
                tail = (tail + data)[-(1 << 20):]
    m = _TS.search(head)
    first = float(m.group(1)) if m else None
    for m in _TS.finditer(tail):
        last = float(m.group(1))
    return first, last


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


def _merge(parts: list[Part]) -> Part:
    total = Part()
    carried: dict = {}                   # (pid, raw?) → request entered in an earlier part
    line_base = 0
    for p in parts:
        total.keys.update(p.keys)
        total.lines += p.lines
        total.outside += p.outside
        total.other.update(p.other)
        total.unparsed += p.unparsed
        total.unparsed_samples += [(n + line_base, t) for n, t in p.unparsed_samples]
        total.lost.update(p.lost)
        total.ioctl.update(p.ioctl)
        total.ioctl_err.update(p.ioctl_err)
        for pid, raw, err in p.ioctl_orphans:
            entered = carried.pop((pid, raw), None)
            if entered is None:
                total.ioctl_orphans.append((pid, raw, err))
            elif err:
                total.ioctl_err[(pid, entered[0], raw, entered[1], err)] += 1
        for k in p.ioctl_seen:
            carried.pop(k, None)
        carried.update(p.ioctl_pending)
        total.ioctl_seen |= p.ioctl_seen
        for a, b in ((total.first_raw, p.first_raw), (total.first_named, p.first_named)):
            for pid, key in b.items():
                a.setdefault(pid, key)
        for k, v in p.child_returns.items():
            total.child_returns.setdefault(k, v)
        total.last_raw.update(p.last_raw)
        total.last_named.update(p.last_named)
        for child, parent in p.parents.items():
            total.parents.setdefault(child, parent)
        total.execs += p.execs
        total.exit_status.update(p.exit_status)
        for pid, (n, w) in p.samples.items():
            s = total.samples.setdefault(pid, [0, 0])
            s[0] += n
            s[1] = max(s[1], w)
        if total.first_ts is None:
            total.first_ts = p.first_ts
        if p.last_ts is not None:
            total.last_ts = p.last_ts
        total.fast_chunks += p.fast_chunks
        total.slow_chunks += p.slow_chunks
        total.incomplete_last_line = p.incomplete_last_line or total.incomplete_last_line
        line_base += p.lines
    total.ioctl_pending = carried
    return total


def read_part(path, task_arch: TaskArch, skip: float | None = None, discard_tail: float | None = None,
              jobs: int | None = None) -> tuple[Part, tuple]:
    """One trace file → Part (all of it inside the window) and (first ts, last ts, Window)."""
    kind = compression_of(path)
    window = Window()
    first = last = None
    if skip or discard_tail:
        first, last = edge_timestamps(path)
        if first is None:
            raise KprofError(f"{path}: no timestamped ftrace lines found, so --skip/--discard-tail cannot apply "
                             f"(is it ftrace text? see docs/ftrace.md)")
        if skip:
            window.start = first + skip
        if discard_tail:
            window.end = last - discard_tail
        if window.start is not None and window.end is not None and window.start >= window.end:
            raise KprofError(f"{path}: the window is empty: the trace covers {last - first:.1f} s, "
                             f"--skip {skip or 0:g} s and --discard-tail {discard_tail or 0:g} s leave nothing")
    jobs = default_jobs() if jobs is None else max(1, jobs)
    size = os.path.getsize(path)
    spec = {**task_arch.by_pid, **task_arch.by_comm}
    if kind is None and jobs > 1 and size >= PARALLEL_MIN:
        # a few pieces per worker, handed out as workers become free: on a shared machine one worker can
        # get less CPU than the other, and equal halves would make the whole run wait for it
        cuts = _split_points(path, size, max(jobs, min(4 * jobs, size // PART_MIN)))
        if len(cuts) > 2:
            import multiprocessing as mp
            try:
                ctx = mp.get_context("fork")
            except ValueError:
                ctx = mp.get_context()
            work = [(str(path), cuts[i], cuts[i + 1], task_arch.arch, spec, window) for i in range(len(cuts) - 1)]
            from profiler.signals import pool_worker
            with ctx.Pool(min(jobs, len(work)), initializer=pool_worker) as pool:
                parts = pool.map(_worker, work, chunksize=1)
            return _merge(parts), (first, last, window)
    with open_trace(path) as f:
        return _merge([_pass_stream(f, path, task_arch, window)]), (first, last, window)


def _check_format(path, part: Part) -> None:
    """No recognisable ftrace line at all: say what the file looks like instead."""
    if part.keys:
        return
    if part.lines == 0 and os.path.getsize(path) == 0:
        raise KprofError(f"{path}: empty file (0 bytes): nothing was captured; was tracing on, were events "
                         f"enabled? see docs/ftrace.md")
    if part.lines == 0 or part.lines == part.other.get("header or blank", 0) + part.other.get("lost-events line", 0):
        if part.outside:
            raise KprofError(f"{path}: every event lies outside the time window (--skip/--discard-tail)")
        raise KprofError(f"{path}: no trace events: the file is empty or holds only headers (was tracing on? "
                         f"were events enabled? see docs/ftrace.md)")
    sample = " | ".join(t for _, t in part.unparsed_samples[:2])
    hint = "not ftrace text"
    if re.search(r"^\d+\s+(\d+\.\d+\s+)?\w+\(", sample) or "+++ exited" in sample or "resumed>" in sample:
        hint = "this looks like a strace log: analyse it with 'kprof analyze'"
    elif re.search(r"^\s*\S+\s+\d+\s+\[\d+\]\s+\d+\.\d+:\s+\S+:", sample):
        hint = "this looks like 'perf script' output, which kprof does not read; record with ftrace (kprof ftrace record)"
    elif sample.lstrip().startswith(("{", "[")):
        hint = "this looks like JSON (a kprof footprint? use it with --alongside or kprof compare)"
    elif re.search(r"\d+us : ", sample):
        hint = "this looks like the latency format (trace-cmd report -l / options/latency-format), which kprof does " \
               "not read; use plain 'trace-cmd report' or the trace file"
    raise KprofError(f"{path}: no ftrace event lines found ({part.unparsed} lines not understood; {hint}). "
                     f"First lines: {sample[:300]}")


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
    from profiler.footprint import Footprint, SyscallStat, new_use

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

    fps: dict = {}

    def fp_of(abi):
        fp = fps.get(abi)
        if fp is None:
            fp = fps[abi] = Footprint(arch=abi, source={**source, "kind": "ftrace", "abi": abi})
        return fp

    fp_of(ta.arch)
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
    images: dict = {}          # (abi, pid) → {comm: Counter}
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
            fp = fp_of(abi)
            stat = fp.syscalls.get(name)
            if stat is None:
                stat = fp.syscalls[name] = SyscallStat()
            stat.calls += calls
            stat.errors.update(errs)
            stat.unfinished += open_calls
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

    for (abi, pid), by_comm in images.items():
        fp = fp_of(abi)
        fp.processes[pid] = {
            "parent": parents.get(pid), "end": ({"exit": exit_status[pid]} if pid in exit_status else None),
            "images": [{"exe": exe_label(pid, comm), "syscalls": Counter(c)} for comm, c in by_comm.items()]
            or [{"exe": None, "syscalls": Counter()}]}
    for _, filename in part.execs:
        use = fp_of(ta.arch).programs.setdefault(filename, new_use())
        use["calls"] += 1

    # ioctl requests: a task's raw_syscalls lines (counted from their keys) when it has them, else its
    # per-syscall lines
    pid_abi = {row.pid: row.abi for row in rows.values()}
    ioctl_nr = {abi: syscalls.syscall_number(abi, "ioctl") for abi in ta.abis()}
    entered = Counter()
    for (prefix, key), n in part.keys.items():
        ev = event_key(key)
        if ev is not None and ev.request is not None and ev.kind == "enter":
            task = task_of(prefix)
            if task is not None and ioctl_nr.get(ta.of(task)) == ev.nr:
                entered[(task.pid, task.comm, True, ev.request)] += n
    for (pid, comm, raw, req), n in (*entered.items(), *part.ioctl.items()):
        if raw != (pid in raw_pids):
            continue
        use = fp_of(pid_abi.get(pid, ta.arch)).ioctls.setdefault((req, ""), new_use())
        use["calls"] += n
        use["syscalls"]["ioctl"] += n
        use["by"][exe_label(pid, comm)] += n
    for (pid, comm, raw, req, err), n in part.ioctl_err.items():
        if raw != (pid in raw_pids):
            continue
        fp_of(pid_abi.get(pid, ta.arch)).ioctls.setdefault((req, ""), new_use())["errors"][err] += n
    if root_pid is not None:
        for fp in fps.values():
            if root_pid in fp.processes:
                fp.root_pid = root_pid

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
        out.append("the ring buffer lost events, so counts are too low: " +
                   ", ".join(f"CPU {c}: {n}" for c, n in sorted(res.lost.items())) +
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
        if ARCH_BITS[abi] == 64 and n >= 8 and widest <= 8:
            narrow.append(f"{comm_of[pid]}-{pid}")
        elif ARCH_BITS[abi] == 32 and widest > 8:
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


# ----------------------------------------------------------------------------- events, one at a time

class FtraceEventReader:
    """ftrace text lines → SyscallEvent / ProcessEvent, exact and in order.

    An event is produced when its sys_exit arrives (or, for a call that never returns, when the task's
    next sys_enter arrives or the input ends). Other events (irq, sched …) are counted in ``events``.
    """

    def __init__(self, arch: str, task_arch: TaskArch | None = None, window: Window | None = None):
        self.ta = task_arch or TaskArch(arch)
        self.window = window or Window()
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
                lm = _LOST.search(line)
                if lm:
                    self.lost[int(lm.group(1))] += int(lm.group(2) or lm.group(3))
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
                yield self._event(task.pid, prev, result, ev.err, ts)

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


def iter_events(path, arch: str, task_arch: TaskArch | None = None,
                window: Window | None = None) -> Iterator[SyscallEvent | ProcessEvent]:
    """Every syscall of a trace file as kprof events, in trace order (exact; slower than analyse_trace)."""
    reader = FtraceEventReader(arch, task_arch, window)
    yield from reader.feed(trace_lines(path))
    yield from reader.finish()


def trace_lines(path) -> Iterator[bytes]:
    """The lines of a (possibly compressed) trace file, without line ends."""
    with open_trace(path) as f:
        rest = b""
        while True:
            data = _read(f, CHUNK, path)
            if not data:
                break
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest
