"""ftrace text, read: the files (plain, gzip, xz), the line shapes, event keys and tasks.

The shared vocabulary of the ftrace modules: ``ftrace_chunks`` (the fast chunked pass), ``ftrace_events``
(the exact line-by-line event path) and ``ftrace_text`` (the public API, ``analyse_trace``) read lines with
these regexes and name what they read with these types. The text forms themselves are described in
``ftrace_text``'s docstring and docs/ftrace.md.
"""
from __future__ import annotations

import gzip
import lzma
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO, Iterable, Iterator

from profiler.errors import KprofError, file_error
from profiler.kernel import read_rows, syscalls
from profiler.kernel.errnos import is_error_value

CHUNK = 1 << 22                 # bytes read at a time; memory stays a few chunks whatever the trace size

# ----------------------------------------------------------------------------- line shapes (bytes)

# an error return in hex (-1 … -4095, 64- or 32-bit): 0x…fffff001 to 0x…ffffffff; 0x…fffff000 is -4096, an address
_ERRHEX_TEXT = rb"0x(?:f{8})?fffff(?!000)[0-9a-f]{3}"
_EOL = rb"(?=[ \t]*$)"          # the line's end, past any trailing blanks (the exact path strips them too)


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
        alts += b"(?:%s) = -?\\d+%s|" % (nrs(fork_nrs), _EOL)
    return name + rb": *(?:NR (?:" + alts + rb"-?\d+ (?:\(|= (?:-\d{1,4}" + _EOL + rb"|)))|" + _ERRHEX_TEXT + _EOL + rb"|)"


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
# (the timestamp: seconds with a fraction; a whole number with trace_clock counter, uptime or x86-tsc)
_LINE = re.compile(rb"([^\[]*)\[(\d+)\]\s+(?:[^\s:]+\s+)?(\d+(?:\.\d+)?):\s+(.*?)\s*$")
_TS = re.compile(rb"\[\d+\]\s+(?:[^\s:]+\s+)?(\d+(?:\.\d+)?): ")
_NAMED_ENTER_FILE = re.compile(rb"sys_(\w+)\((.*)\)$")              # trace file: sys_openat(dfd: …)
_NAMED_EXIT_FILE = re.compile(rb"sys_(\w+) -> (\S+)$")              # trace file: sys_openat -> 0x3
_ERRHEX = re.compile(_ERRHEX_TEXT + rb"$")
# "[LOST EVENTS]" without a number: the kernel could not count them (the reader was overrun)
_LOST = re.compile(rb"CPU:?\s*(\d+)\s*\[(?:LOST (\d+) EVENTS|(\d+) EVENTS DROPPED|LOST EVENTS)\]")
LOST_UNCOUNTED = "lost-events line without a number"


def lost_events(line: bytes) -> tuple[int, int, bool] | None:
    """A lost-events line → (cpu, events lost, whether the kernel counted them: else at least one), or None."""
    m = _LOST.search(line)
    if m is None:
        return None
    counted = m.group(2) or m.group(3)
    return int(m.group(1)), int(counted) if counted else 1, bool(counted)
_OTHER_LINE = re.compile(rb"\s*(#.*|cpus=\d+|version = .*|CPU \d+ is empty|#+ CPU \d+ buffer started #+|)\s*")

# Task column: optional trace-cmd buffer name, comm, pid, optional "(tgid)" column. trace-cmd right-aligns the
# buffer (or file) names ("%*s: "), then prints the comm in its 16-wide column ("%16s-%-5d", as the kernel does):
# a name is only taken when at least 17 characters (the space and that column) follow its colon, so a comm with
# ": " in it ("node: worker") stays one comm.
_PREFIX = re.compile(r"\s*(?:(?P<buf>[^\s:]+):(?=\s.{16,}-\d+)\s+)?(?P<comm>.*)-(?P<pid>\d+)\s*"
                     r"(?:\(\s*(?P<tgid>\d+|-+)\s*\))?\s*$")
_ARGS_NAMED = re.compile(r"(\w+): ((?:0x)?[0-9a-fA-F]+)")

_ENTER_RAW = re.compile(r"sys_enter: *NR (-?\d+) \((?:([0-9a-f]+)(?:, ([0-9a-f]+))?)?$")
_EXIT_RAW = re.compile(r"sys_exit: *NR (-?\d+) = *(-?\d+)?$")
_ENTER_NAMED = re.compile(r"sys_enter_(\w+): *$")
_EXIT_NAMED = re.compile(r"sys_exit_(\w+): *(0x[0-9a-f]+)?$")
_ENTER_FILE_KEY = re.compile(r"sys_(\w+)\(")
_EVENT_NAME = re.compile(r"([^\s:(]+)")

# syscalls whose lines are parsed in full: ioctl (request), process creation (child pid), exit_group (status)
_RARE_NAMES = ("ioctl", "clone", "clone3", "fork", "vfork", "exit_group")
_FORKS = syscalls.syscall_group("fork")
_SCHED = (b"sched_process_fork:", b"sched_process_exec:")

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
        if v is not None and is_error_value(v):
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



# ----------------------------------------------------------------------------- time window

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


_LINE_PREFIX = re.compile(rb"\n([^[\n]*)\[")     # a line's text before its first "[": its task column


class _Starts:
    """Where the lines of each prefix (task column) start in ``body[lo:hi]`` (the b"\\n" before each), in order,
    for a chunk with many tasks: one pass over the chunk, made when first asked."""

    def __init__(self, body: bytes, lo: int, hi: int):
        self._chunk = (body, lo, hi)
        self._at: dict[bytes, list[int]] | None = None

    def get(self, prefix: bytes) -> list[int]:
        if self._at is None:
            body, lo, hi = self._chunk
            at = self._at = {}
            for m in _LINE_PREFIX.finditer(body, lo, hi):
                starts = at.get(m.group(1))
                if starts is None:
                    at[m.group(1)] = [m.start()]
                else:
                    starts.append(m.start())
        return self._at.get(prefix, [])


def _found(body: bytes, needle: bytes, lo: int, hi: int):
    """Where ``needle`` (b"\\n" + a prefix + b"[") starts in ``body[lo:hi]``, first to last, found as needed."""
    i = body.find(needle, lo, hi)
    while i >= 0:
        yield i
        i = body.find(needle, i + 1, hi)      # it starts with b"\n": from i + 1 only a later line can match


def _found_back(body: bytes, needle: bytes, lo: int, hi: int):
    """The same, last to first."""
    i = body.rfind(needle, lo, hi)
    while i >= 0:
        yield i
        i = body.rfind(needle, lo, i)
