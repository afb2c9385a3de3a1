"""Run a command (kprof) as the child of a child subreaper: whatever its tree leaves running is re-parented here,
named on stderr (LEFT_RUNNING, one line each) and killed once the command has ended. Exit status: the command's
(128 + N when a signal N ended it). SIGINT, SIGTERM and SIGHUP are passed on to the command, and the command gets
SIGTERM if this process dies, so kprof stops its tree as on Ctrl-C (tests/conftest.py's kprof() sends this process
SIGTERM at a test's time limit, and waits for both).

Usage: python subreaped.py COMMAND [ARG...]"""
import ctypes
import os
import signal
import subprocess
import sys
import time

LEFT_RUNNING = "suite: left running:"
PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG = 36, 1
libc = ctypes.CDLL(None, use_errno=True)


def children() -> list[int]:
    out = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return out


def state_and_command(pid: int) -> tuple[str, str]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return state, f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (OSError, IndexError):
        return "?", "?"


def main() -> int:
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("subreaped.py: cannot become a child subreaper", file=sys.stderr)
        return 2
    me = os.getpid()

    def die_with_me() -> None:       # in the child: SIGTERM when this process dies (and if it already has, now)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != me:
            os.kill(os.getpid(), signal.SIGTERM)
    command = subprocess.Popen(sys.argv[1:], preexec_fn=die_with_me)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _f: command.send_signal(n))
    code = command.wait()
    named: set[int] = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:     # until nothing is left: a killed process's children come here next
        alive = False
        for pid in children():
            state, cmd = state_and_command(pid)
            if state in ("Z", "X", "?"):     # ended (a zombie to reap), or gone
                continue
            alive = True
            if pid not in named:
                named.add(pid)
                print("\n" + LEFT_RUNNING, pid, cmd, file=sys.stderr, flush=True)   # on a line of its own
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        while True:                          # reap what has ended
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if not alive:
            break
        time.sleep(0.05)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
