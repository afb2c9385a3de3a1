"""What kprof's recorders share: how a recording ended (``TraceOutcome``), the process tree below kprof
(``processes``, ``descendants``, ``kill_tree``; kprof is the subreaper of what it traces, so daemonising
tracees are re-parented to it and reaped by ``reap_orphans``), and the supervision of a run: Ctrl-C,
SIGTERM and SIGHUP, the deadline, the end of the command's own process (``stop_at_root``), and nothing
left running afterwards. ``supervise`` follows a tracer that writes a log (strace, kprof's ptrace tracer);
``wait_tree`` a command that leaves no log to follow (the bpf backend counts in the kernel).

The backends (``record.strace``, ``record.ptrace``, ``record.bpf``, ``record.ftrace``) import this module,
not one another.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass

GRACE = 10.0  # seconds a tracer gets to end (strace: to write its summary) once its tracees are killed


@dataclass
class TraceOutcome:
    returncode: int | None          # the tracer's exit status (strace's mirrors the command's)
    wall: float                     # seconds from start to the tracer's exit
    timed_out: bool = False
    interrupted: bool = False
    strace_messages: list[str] | None = None   # what the tracer said on its stderr (strace, bpftrace)
    device: dict | None = None      # what an emulated device served at the syscall boundary (ptrace backend)
    signal: int | None = None       # what interrupted it: SIGINT (Ctrl-C), SIGTERM or SIGHUP
    left_running: list[str] | None = None   # what was still running when the root process exited (killed)


def processes():
    """(pid, state, ppid) of every process in /proc, e.g. (412, b"S", 1)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the comm field may hold spaces and parens: the state and ppid follow the last ')'
        fields = stat[stat.rfind(b")") + 2:].split()
        yield int(entry), fields[0], int(fields[1])


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (from /proc; children may have left its process group)."""
    children: dict[int, list[int]] = {}
    for pid, state, ppid in processes():
        if state != b"Z":  # a zombie is already dead, waiting for its parent to reap it
            children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(root: int, spare: int | None = None) -> None:
    """SIGKILL everything below ``root`` except ``spare`` (which keeps running) until nothing is left."""
    for _ in range(50):
        pids = [p for p in descendants(root) if p != spare]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def signal_name(n: int) -> str:
    """A signal's name (SIGTERM), or "signal N" for a number Python does not name."""
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def become_subreaper() -> None:
    """Daemonising tracees (double fork) are re-parented to us, not to init, so we can find and reap them."""
    from profiler.libc import libc
    libc().prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_orphans() -> None:
    """Kill and reap what the traced command left behind (processes it daemonised, now our children)."""
    kill_tree(os.getpid())
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def supervise(start, log_path: str, timeout: float, outcome: TraceOutcome, consume, stop_at_root: bool = False):
    """Start a tracer (``start()`` returns a Popen-like object) and follow its log until it ends.

    Ctrl-C, SIGTERM and SIGHUP only set a flag here (the traced tree is then killed, the tracer finishes
    the log), the deadline is enforced, and whatever happens nothing is left running (we are the subreaper
    of the traced tree). With ``stop_at_root``, the run ends when the command's own process exits: what
    it left running is named in ``outcome.left_running`` and killed, so a daemonising command does not
    cost the whole timeout. The signal handlers are restored, unless a signal came: then kprof is
    stopping, and later signals are only noted while it writes its files. Sets ``outcome.wall``; returns
    the tracer.
    """
    from profiler import signals

    become_subreaper()
    interrupted = []
    previous = signals.watch(interrupted)
    started = time.monotonic()
    proc = None
    try:
        proc = start()
        follow_log(proc, log_path, started + timeout, outcome, interrupted, consume or (lambda lines: None),
                   RootWatch(proc.pid, from_log=isinstance(proc, subprocess.Popen)) if stop_at_root else None)
    finally:
        if proc is not None and proc.returncode is None:  # an exception in consume: leave nothing behind
            kill_tree(proc.pid)
            proc.kill()
            proc.wait()
        reap_orphans()
        if interrupted:  # also one that came after the tracer ended: kprof still stops with its code
            outcome.interrupted, outcome.signal = True, outcome.signal or interrupted[0]
            signals.defer()
        else:
            signals.restore(previous)
        outcome.wall = time.monotonic() - started
    return proc


class RootWatch:
    """Whether the traced command's own process has exited. Its pid: with strace, the first pid in the log
    (its execve; strace writes the log at once, and its own probe children come first among its children);
    with kprof's ptrace tracer, whose log is buffered, its traced child, looked for right after it starts
    (it holds the command stopped before exec, so it cannot be missed; later, a daemon re-parented to the
    tracer could be taken for it)."""

    def __init__(self, tracer: int, from_log: bool):
        self.tracer = tracer
        self.from_log = from_log
        self.root: int | None = None
        self.next_check = 0.0

    def find(self, proc, wait: float = 5.0) -> None:
        end = time.monotonic() + wait if not self.from_log else 0
        while self.root is None and time.monotonic() < end and proc.poll() is None:
            try:
                with open(f"/proc/{self.tracer}/task/{self.tracer}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except (OSError, ValueError):
                kids = []
            traced = [k for k in kids if _tracer_of(k) == self.tracer]  # not a helper the tracer ran itself
            self.root = min(traced) if traced else None
            time.sleep(0.001)

    def first_line(self, line: str) -> None:
        head = line.split(None, 1)[0] if line.strip() else ""
        if self.root is None and head.isdigit():
            self.root = int(head)

    def exited(self, now: float) -> bool:
        if self.root is None or now < self.next_check:
            return False
        self.next_check = now + 0.05
        try:
            with open(f"/proc/{self.root}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return True
        return stat[stat.rfind(b")") + 2:].split()[0] in (b"Z", b"X")


def _tracer_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def describe_process(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().rstrip(b"\0").split(b"\0")
    except OSError:
        return f"pid {pid}"
    return f"pid {pid} ({' '.join(a.decode(errors='replace') for a in argv)[:120]})"


class _ExitWait:
    """Waits up to a timeout, woken early when the process exits: a pidfd (Linux 5.3+) polled with the
    timeout, so the end of the trace is seen at once rather than at the next 10 ms tick; a plain sleep
    where there is no pidfd."""

    def __init__(self, pid: int):
        try:
            self.fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.fd = None

    def wait(self, seconds: float) -> None:
        if self.fd is None:
            time.sleep(seconds)
        else:
            select.select([self.fd], [], [], seconds)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def follow_log(proc, log_path: str, deadline: float, outcome: TraceOutcome, interrupted: list, consume,
               root: RootWatch | None = None) -> None:
    """Follow the growing log until the tracer exits; enforce the deadline, Ctrl-C and (``root``) the end of the
    command's own process on the way."""
    exit_wait = _ExitWait(proc.pid)
    try:
        _follow(proc, log_path, deadline, outcome, interrupted, consume, root, exit_wait)
    finally:
        exit_wait.close()


def _open_log(log_path: str):
    """The tracer's log, once the tracer has created it (None before)."""
    try:
        return open(log_path, encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None


def _follow(proc, log_path: str, deadline: float, outcome: TraceOutcome, interrupted: list, consume,
            root: RootWatch | None, exit_wait: _ExitWait) -> None:
    log = None
    partial = ""
    killed_at = None
    if root is not None:
        root.find(proc)
    while True:
        if log is None:
            log = _open_log(log_path)
        chunk = log.read(1 << 16) if log is not None else ""
        if chunk:
            lines = (partial + chunk).split("\n")
            partial = lines.pop()
            if root is not None and root.root is None and lines:
                root.first_line(lines[0])
            consume(lines)
            continue
        if proc.poll() is not None:
            break
        now = time.monotonic()
        if root is not None and killed_at is None and outcome.left_running is None and root.exited(now):
            left = [p for p in descendants(os.getpid()) if p != proc.pid]
            outcome.left_running = [describe_process(p) for p in left]
            if left:
                kill_tree(os.getpid(), spare=proc.pid)
        if killed_at is None and (interrupted or now > deadline):
            outcome.interrupted, outcome.timed_out = bool(interrupted), not interrupted
            outcome.signal = interrupted[0] if interrupted else None
            kill_tree(os.getpid(), spare=proc.pid)
            killed_at = now
        elif killed_at is not None and now > killed_at + GRACE:
            proc.kill()  # strace itself is stuck: the log ends where it ends
        exit_wait.wait(0.01)
    if log is None:      # the tracer may have written the whole log and exited between two looks
        log = _open_log(log_path)
    if log is not None:
        rest = partial + log.read()
        log.close()
        if rest:
            consume(rest.split("\n"))


def children_of(pid: int) -> list[tuple[int, bool]]:
    """Direct children of ``pid`` (pid, is a zombie)."""
    return [(child, state == b"Z") for child, state, ppid in processes() if ppid == pid]


def reap_zombies(spare: int | None) -> list[int]:
    """Reap our zombie children except ``spare``; returns the live ones left (``spare`` excluded)."""
    live = []
    for pid, zombie in children_of(os.getpid()):
        if pid == spare:
            continue
        if zombie:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        else:
            live.append(pid)
    return live


def wait_tree(child, tracer_pid: int, deadline: float, outcome: TraceOutcome, interrupted: list,
              stop_at_root: bool = False) -> None:
    """Until the command (``child``: a Popen-like object) and everything it left behind (re-parented to us,
    the subreaper) have ended, the tracer ``tracer_pid`` aside; with ``stop_at_root``, what is left when the
    command's own process exits is named and killed. The deadline and ``interrupted`` as in ``supervise``."""
    killed_at = None
    pause = 0.002
    while True:
        child.poll()
        if child.returncode is not None and not reap_zombies(tracer_pid) and not live_below(tracer_pid):
            return
        now = time.monotonic()
        if stop_at_root and child.returncode is not None and killed_at is None and outcome.left_running is None:
            left = [p for p in descendants(os.getpid()) if p != tracer_pid]
            outcome.left_running = [describe_process(p) for p in left]
            if left:
                kill_tree(os.getpid(), spare=tracer_pid)
        if killed_at is None and (interrupted or now > deadline):
            outcome.interrupted, outcome.timed_out = bool(interrupted), not interrupted
            outcome.signal = interrupted[0] if interrupted else None
            kill_tree(os.getpid(), spare=tracer_pid)
            killed_at = now
        elif killed_at is not None and now > killed_at + GRACE:
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def live_below(tracer_pid: int) -> bool:
    """Any live process under us other than the tracer (bpftrace, and its unshare/sh wrapper, which it
    replaced)?"""
    return any(p != tracer_pid for p in descendants(os.getpid()))
