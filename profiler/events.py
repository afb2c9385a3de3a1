"""The one event model every recorder and parser produces.

A strace log, a live ptrace session and an ftrace text file all end up as a
stream of these two event types; everything after (kernel mapping, counting,
comparing, rendering) is written once against them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SyscallEvent:
    """One system call made by one task, entry and (usually) exit."""

    pid: int
    name: str                      # kernel table name (strace spellings canonicalised)
    args: str = ""                 # argument text as the recorder printed it (raw numbers for constants)
    result: int | None = None      # return value; None when the call never returned ("= ?")
    errno: str | None = None       # e.g. "ENOENT" when the call failed
    duration: float | None = None  # seconds spent in the call, when the recorder measured it
    time: float | None = None      # wall-clock time of entry (seconds since the epoch)
    fd_path: str | None = None     # what is behind the first argument when it is an fd (strace -yy form)
    result_path: str | None = None  # what is behind a returned fd (openat, socket, accept …)
    injected: bool = False         # the result was injected by the tracer, not produced by the kernel
    served: bool = False           # the kernel never ran it: an emulated device answered it (ptrace "(SERVED)")
    number: int | None = None      # syscall number when the source gave one (ftrace, ptrace)
    # aggregated input (the bpf backend counts in the kernel): one event stands for ``count`` identical calls,
    # ``duration`` is their total, and what the footprint reads is given decoded instead of as strace text
    count: int = 1
    path: str | None = None        # the path argument (open*, exec*): as the call named it
    address: str | None = None     # the sockaddr argument (connect, bind, sendto) in kprof's form (inet:1.2.3.4:80)
    request: int | None = None     # the ioctl request number


@dataclass(slots=True)
class ProcessEvent:
    """A task-level event: exit, death by signal, or a signal delivered."""

    pid: int
    kind: str                      # "exit" | "killed" | "signal" | "renamed"
    status: int | None = None      # exit status for "exit"; the task's real pid for "renamed" (a strace log
                                   # on stderr prints no pid until a second task exists: it was 0 until then)
    signal: str | None = None      # signal name for "killed" and "signal"
    time: float | None = None
    core_dumped: bool = False
