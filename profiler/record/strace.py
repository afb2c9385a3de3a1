"""Run a command under strace, following every child, and keep the raw log.

The options are the ones ``kprof analyze`` expects from logs recorded
elsewhere (see README, "Recording on a rig"):

    strace -f -yy -ttt -T -X raw -C -o LOG -- COMMAND…

``-X raw`` keeps ioctl requests (and every other constant) as numbers, so one
decoder serves strace, ptrace and ftrace; ``-yy`` names what is behind each fd;
``-C`` appends strace's own per-syscall summary, the ground truth kprof checks
its counts against.
"""
from __future__ import annotations

import shutil
import subprocess

from profiler.errors import KprofError
from profiler.inject import strace_options
from profiler.parse.strace_text import is_strace_message
from profiler.record.core import TraceOutcome, supervise

STRACE_OPTIONS = ["-f", "-yy", "-ttt", "-T", "-X", "raw", "-C"]


def strace_path() -> str:
    path = shutil.which("strace")
    if path is None:
        raise KprofError("strace is not installed (or not on PATH): install it with "
                         "'apt-get install strace', or run ./setup.sh")
    return path


def _strace_messages(stderr_path: str) -> list[str]:
    try:
        with open(stderr_path, errors="replace") as f:
            return [line.rstrip("\n") for line in f if is_strace_message(line)]
    except OSError:
        return []


def check_ptrace_failure(messages: list[str]) -> None:
    """strace could not trace at all: name the setting that forbids it."""
    text = "\n".join(messages)
    if "Operation not permitted" in text and ("ptrace" in text.lower() or "PTRACE" in text):
        raise KprofError(
            "ptrace is not permitted here, so strace cannot trace the command:\n  " + "\n  ".join(messages) +
            "\nFix: run as root or with CAP_SYS_PTRACE; check kernel.yama.ptrace_scope "
            "(sysctl kernel.yama.ptrace_scope=1 or lower); in a container, allow ptrace "
            "(docker run --cap-add SYS_PTRACE, or a seccomp profile that permits ptrace).")


def record_strace(argv: list[str], log_path: str, *, cwd: str, env: dict, timeout: float,
                  stdout_path: str, stderr_path: str, consume=None, inject=(),
                  stop_at_root: bool = False) -> TraceOutcome:
    """Run ``argv`` under strace; on timeout or Ctrl-C kill the traced tree and keep the partial log.

    ``inject`` holds fault rules (profiler.inject.Rule) applied through strace's -e inject=.
    While strace writes the log, its complete lines are handed to ``consume``
    (a callable taking a list of lines) as they appear, so the analysis runs on
    the other core during the recording instead of after it.

    strace runs in its own session, and Ctrl-C only sets a flag here: kprof then
    kills the tracees (not strace), so strace still ends the log and writes its
    summary; a second Ctrl-C changes nothing (see record.core.supervise).
    """
    cmd = [strace_path(), *STRACE_OPTIONS, *strace_options(list(inject)), "-o", log_path, "--", *argv]
    outcome = TraceOutcome(returncode=None, wall=0.0)

    def start():
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            return subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True)

    proc = supervise(start, log_path, timeout, outcome, consume, stop_at_root)
    outcome.returncode = proc.returncode
    outcome.strace_messages = _strace_messages(stderr_path)
    return outcome
