"""Benchmark: what recording costs the whole workload — pump-loop iteration wall time, traced vs untraced.

Each round runs scenarios/workloads/openaps-rig.yaml twice, in alternating order, in the same environment
(namespaces, emulated pump, fake Nightscout): once recorded as `kprof workload run` records it (syscall
events, pid filter following forks), once with nothing recorded. Measured: the first pump-loop iteration's
wall time ("Starting oref0-pump-loop at …" to "Completed oref0-pump-loop at …" in the loop's own log; the
first iteration never waits for a new BG, so it is all work). Reported: per-round ratios and their median.
Timestamps have 1-second resolution (the loop's own `date`): an iteration takes ~20 s, so ±5 %.

Usage (root): .venv/bin/python bench/workload_overhead.py [--rounds 3] [--duration 45]
"""
from __future__ import annotations

import argparse
import datetime
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from profiler.workload import load_workload, run_workload  # noqa: E402

RIG = ROOT / "scenarios" / "workloads" / "openaps-rig.yaml"
_AT = re.compile(r"(Starting|Completed) oref0-pump-loop at (\w{3} \w{3} +\d+ [\d:]{8} \w+ \d{4})")


def first_iteration(log: Path) -> float | None:
    start = None
    for kind, when in _AT.findall(log.read_text(errors="replace")):
        t = datetime.datetime.strptime(re.sub(" +", " ", when), "%a %b %d %H:%M:%S %Z %Y")
        if kind == "Starting":
            start = t
        elif start is not None:
            return (t - start).total_seconds()
    return None


def one(traced: bool, duration: float) -> float | None:
    out = Path(tempfile.mkdtemp(prefix="kprof-bench-wl-")) / "b"
    try:
        run_workload(load_workload(RIG), out, duration=duration, untraced=not traced)
        return first_iteration(out / "logs" / "pump-loop.log")
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=45.0)
    a = ap.parse_args()
    ratios = []
    for r in range(a.rounds):
        order = (True, False) if r % 2 == 0 else (False, True)
        times = {t: one(t, a.duration) for t in order}
        if None in times.values():
            print(f"round {r + 1}: an iteration did not complete: {times}")
            continue
        ratios.append(times[True] / times[False])
        print(f"round {r + 1}: traced {times[True]:.0f} s, untraced {times[False]:.0f} s, "
              f"ratio {ratios[-1]:.2f}", flush=True)
    if ratios:
        print(f"median traced/untraced: {statistics.median(ratios):.2f} ({len(ratios)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
