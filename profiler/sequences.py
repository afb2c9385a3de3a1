"""Every process's calls in the order it made them, consecutive repeats collapsed (``read ×158
/dev/serial0``): what a fault scenario's sequence view (``profiler.faults``) is drawn from.

Built from the same events the footprint is (``SequenceBuilder.add``): while the log is analysed, as kprof
records it (``StraceAnalysis(..., sequences=True)``), or afterwards from a log file (``read_sequences``). The threads of a process (clone with CLONE_THREAD: a Go program's calls move between
5-8 of them) make one sequence, under the process's pid.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from profiler.events import ProcessEvent, SyscallEvent
from profiler.kernel import syscalls
from profiler.kernel.ioctls import decode_ioctl
from profiler.parse.strace_log import StraceLogParser

_EXECS = syscalls.syscall_group("exec")


def call_target(ev: SyscallEvent) -> str | None:
    """The object a call acts on: the path behind its fd, or its path argument (openat's file)."""
    if ev.fd is not None and ev.fd.text:
        return ev.fd.path
    if ev.result_fd is not None and ev.result_fd.text and ev.name in ("open", "openat", "openat2", "creat"):
        return ev.result_fd.path
    return ev.path


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


class SequenceBuilder:
    """Events in, sequences out. Each event is kept as a small record until ``finish``: a thread's first calls
    can be logged before the clone that made it returns, so which process a thread belongs to is known only
    at the end."""

    def __init__(self, arch: str):
        self.arch = arch
        self._records: list[tuple] = []       # (pid, end) or (pid, name, target, errno, injected, detail, exec'd, path)
        self._leader: dict[int, int] = {}     # thread id → the task that cloned it

    def add(self, ev) -> None:
        if isinstance(ev, ProcessEvent):       # its process has a sequence; an exit or a kill ends it
            end = (f"exit {ev.status}" if ev.kind == "exit" else f"killed by {ev.signal}" if ev.kind == "killed"
                   else None)
            self._records.append((ev.pid, end))
            return
        if ev.thread and isinstance(ev.result, int) and ev.result > 0:
            self._leader[ev.result] = ev.pid
        detail = ""
        if ev.name == "ioctl":
            req = ev.request
            if req is not None:
                detail = decode_ioctl(req, ev.fd.text if ev.fd is not None else None, self.arch).name or f"{req:#x}"
        elif ev.name in ("read", "recvfrom") and ev.result == 0:
            detail = "= 0 (nothing received)"
        self._records.append((ev.pid, ev.name, call_target(ev), ev.errno, ev.injected, detail,
                              ev.name in _EXECS and ev.result == 0, ev.path))

    def finish(self) -> dict[int, ProcessSequence]:
        seqs: dict[int, ProcessSequence] = {}
        leader = self._leader
        for rec in self._records:
            pid = rec[0]
            while pid in leader:
                pid = leader[pid]
            seq = seqs.get(pid)
            if seq is None:
                seq = seqs[pid] = ProcessSequence(pid, None)
            if len(rec) == 2:
                if rec[1] is not None:
                    seq.end = rec[1]
                continue
            _, name, target, errno, injected, detail, execd, path = rec
            if execd:             # the program it runs now (None: an exec whose path the log does not show)
                seq.exe = path
            last = seq.steps[-1] if seq.steps else None
            if last and (last.name, last.target, last.errno, last.injected, last.detail) == (
                    name, target, errno, injected, detail):
                last.count += 1
            else:
                seq.steps.append(Step(name, target, 1, errno, injected, detail))
        return seqs


def read_sequences(log: Path, arch: str) -> dict[int, ProcessSequence]:
    """The sequences of a strace log file (what ``kprof run`` keeps as trace.log)."""
    parser = StraceLogParser(lambda n: syscalls.canonical_name(arch, n), arch=arch, paths=True)
    builder = SequenceBuilder(arch)
    with open(log, encoding="utf-8", errors="surrogateescape") as f:
        for ev in parser.feed(f):
            builder.add(ev)
    for ev in parser.finish():
        builder.add(ev)
    return builder.finish()
