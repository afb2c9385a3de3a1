"""The one event model every recorder and parser produces.

A strace log, a live ptrace session and an ftrace text file all end up as a
stream of these two event types; everything after (kernel mapping, counting,
comparing, rendering) is written once against them.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Fd:
    """What is behind a file descriptor: a file or device node's path, or a socket, pipe, anon inode.

    Recorders make one with ``Fd.of``; a parser shares one value between the calls on the same fd.
    """

    path: str                      # the path (escapes undone), or the object's name: TCP:[1.2.3.4:5->6.7.8.9:10]
    text: str                      # path + "<char M:N>" when the device number is shown: an ioctl's key
    dev_type: str | None = None    # "char" | "block" for a device node whose number was shown
    major: int | None = None
    minor: int | None = None
    shown: str | None = field(default=None, repr=False, compare=False)   # the recorder's own text for it
    _class: str | None = field(default=None, repr=False, compare=False)

    @property
    def dev(self) -> str | None:
        """The device number as the footprint keeps it: ``char 136:0``."""
        return None if self.dev_type is None else f"{self.dev_type} {self.major}:{self.minor}"

    @property
    def device_class(self) -> str:
        """profiler.kernel.devices.classify_path's class ("pts", "socket:tcp", "file"): read when first asked
        (most files opened are never asked about)."""
        cls = self._class
        if cls is None:
            from profiler.kernel.devices import classify_path
            cls = self._class = classify_path(self.shown or self.text)
        return cls

    @classmethod
    def of(cls, path: str, dev_type: str | None = None, major: int | None = None, minor: int | None = None,
           shown: str | None = None) -> "Fd":
        """``shown``: the recorder's own text for the fd when it has one (what the class is read from)."""
        text = path if dev_type is None else f"{path}<{dev_type} {major}:{minor}>"
        return cls(path, text, dev_type, major, minor, shown)


@dataclass(slots=True)
class SyscallEvent:
    """One system call made by one task, entry and (usually) exit."""

    pid: int
    name: str                      # kernel table name (strace spellings canonicalised)
    args: str = ""                 # argument text as the recorder printed it, for reading by eye: the
                                   # fields below are what the footprint and the fault analysis read
    result: int | None = None      # return value; None when the call never returned ("= ?")
    errno: str | None = None       # e.g. "ENOENT" when the call failed
    duration: float | None = None  # seconds spent in the call, when the recorder measured it
    time: float | None = None      # wall-clock time of entry (seconds since the epoch)
    fd: Fd | None = None           # what is behind the first argument when it is an fd (and the recorder showed it)
    result_fd: Fd | None = None    # what is behind a returned fd (openat, socket, accept …)
    injected: bool = False         # an injection rule applied: the result was injected by the tracer, not
                                   # produced by the kernel, or the call was delayed (it ran, late)
    served: bool = False           # the kernel never ran it: an emulated device answered it (ptrace "(SERVED)")
    number: int | None = None      # syscall number when the source gave one (ftrace, ptrace)
    # aggregated input (the bpf backend counts in the kernel): one event stands for ``count`` identical calls,
    # ``duration`` is their total
    count: int = 1
    # typed arguments, filled for the calls that have them (a recorder may leave out what it did not see):
    path: str | None = None        # the path argument, the first string among the first two arguments: exec*'s
                                   # program; open*'s file (openat's relative path joined to its dirfd's path;
                                   # left out when result_fd shows the file opened); stat's, chdir's … when the
                                   # recorder reads those (the strace parser with paths=True)
    address: str | None = None     # the network address in kprof's form (inet:1.2.3.4:80, unix:/path): the sockaddr
                                   # of connect/bind/sendto, the listening side of the connection accept returned
    request: int | None = None     # the ioctl request number
    thread: bool = False           # clone/clone3 made a thread (CLONE_THREAD), not a process
    # the call returned but its value could not be read, a task killed at the call's exit stop: strace's "= ?
    # <unavailable>", or an errno past MAX_ERRNO (its registers misread). strace's -c counts it as a call made
    # (the second form as an error too); it is not an unfinished call
    result_lost: bool = False

    @property
    def never_returned(self) -> bool:
        """Entered and not seen to return ("= ?" of exit_group, a task killed inside the call)."""
        return self.result is None and self.errno is None and not self.result_lost


@dataclass(slots=True)
class ProcessEvent:
    """A task-level event: exit, death by signal, a signal delivered; and what a kernel trace shows of a task
    without a call (ftrace: the program it runs, a program started, its parent)."""

    pid: int
    kind: str                      # "exit" | "killed" | "signal" | "renamed" | "image" | "exec" | "forked"
    status: int | None = None      # exit status for "exit"; the task's real pid for "renamed" (a strace log
                                   # on stderr prints no pid until a second task exists: it was 0 until then)
    signal: str | None = None      # signal name for "killed" and "signal"
    time: float | None = None
    core_dumped: bool = False
    # "image": the task runs ``path`` from here on, known without an exec call (ftrace names a task's calls by
    # its comm, or by the file sched_process_exec showed for that comm); ``abi``: the ABI its calls are read
    # with there. "exec": a program start seen by an event that is not a call (ftrace's sched_process_exec):
    # ``path`` is the file. "forked": the task's ``parent`` (ftrace's sched_process_fork).
    path: str | None = None
    abi: str | None = None
    parent: int | None = None
