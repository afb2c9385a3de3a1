"""Scenarios side by side (``-j N``): each job runs in a forked process of its own, results come back in order.

A scenario run already has everything of its own (temp workdir, namespaces, emulated pump, bundle
directory), so jobs share nothing but the machine. Each job is a forked kprof process: it becomes the
subreaper of its own traced tree, handles Ctrl-C like a single run (the terminal sends SIGINT to every job;
each kills its tree and keeps its partial trace), and sends its result back pickled. Errors raised in a
job (KprofError and the rest) are raised in the caller when that job's turn comes, as if it had run alone.
"""
from __future__ import annotations

import os
import pickle
import select
from collections.abc import Callable, Sequence

from profiler.errors import KprofError


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def add_jobs_argument(p) -> None:
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="run N scenarios side by side, each in its own namespaces and bundle; output stays in "
                        "scenario order (default: the number of CPUs)")


def jobs_from(args) -> int:
    jobs = default_jobs() if args.jobs is None else args.jobs
    if jobs < 1:
        raise KprofError(f"-j/--jobs must be at least 1 (got {jobs})")
    return jobs


def run_ordered(fn: Callable, items: Sequence[tuple], jobs: int) -> list:
    """``[fn(*item) for item in items]``, up to ``jobs`` at a time in forked processes; in order; raises the
    first failed item's exception (in item order) after every started job has ended."""
    if jobs <= 1 or len(items) <= 1:
        return [fn(*item) for item in items]
    results: dict[int, tuple] = {}
    running: dict[int, tuple[int, int, bytearray]] = {}   # read fd → (index, pid, data)
    todo = list(enumerate(items))
    while todo or running:
        while todo and len(running) < jobs:
            i, item = todo.pop(0)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the job
                os.close(r)
                try:
                    payload = ("ok", fn(*item))
                except BaseException as e:  # noqa: BLE001 - handed to the parent, raised there
                    import traceback
                    payload = ("error", e if _picklable(e) else KprofError("".join(
                        traceback.format_exception_only(type(e), e)).strip()))
                try:
                    data = pickle.dumps(payload)
                except Exception as e:  # noqa: BLE001
                    data = pickle.dumps(("error", KprofError(f"a parallel job's result could not be sent: {e}")))
                with os.fdopen(w, "wb") as f:
                    f.write(data)
                os._exit(0)
            os.close(w)
            running[r] = (i, pid, bytearray())
        ready, _, _ = select.select(list(running), [], [])
        for r in ready:
            chunk = os.read(r, 1 << 20)
            if chunk:
                running[r][2].extend(chunk)
                continue
            i, pid, data = running.pop(r)
            os.close(r)
            os.waitpid(pid, 0)
            results[i] = pickle.loads(bytes(data)) if data else (
                "error", KprofError("a parallel job ended without a result (killed?)"))
    out = []
    for i in range(len(items)):
        kind, value = results[i]
        if kind == "error":
            raise value
        out.append(value)
    return out


def _picklable(e: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(e))
        return True
    except Exception:  # noqa: BLE001
        return False
