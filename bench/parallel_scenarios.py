"""Benchmark: every shipped scenario with `kprof run -j N` against `-j 1`, side by side, in alternating order.

`kprof check` and `kprof baseline save` run scenarios through the same parallel path (profiler/parallel.py),
so `run -q` measures it without baselines to prepare. Reported: the median over rounds of the per-round
wall-time ratio (-j N)/(-j 1). Machines here are noisy (2 cores shared): ratios, never absolute seconds.

Usage: .venv/bin/python bench/parallel_scenarios.py [--rounds 5] [--jobs 2]   (as root: namespaces)
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_all(jobs: int, out: Path) -> float:
    scenarios = sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "profiler", "run", *scenarios, "-q", "-j", str(jobs), "-o", str(out)],
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    ratios = []
    with tempfile.TemporaryDirectory(prefix="kprof-bench-") as tmp:
        for i in range(args.rounds):
            order = (1, args.jobs) if i % 2 == 0 else (args.jobs, 1)
            got = {j: run_all(j, Path(tmp) / f"r{i}-j{j}") for j in order}
            ratios.append(got[args.jobs] / got[1])
            print(f"  round {i + 1}: -j 1 {got[1]:.1f} s, -j {args.jobs} {got[args.jobs]:.1f} s "
                  f"(ratio {ratios[-1]:.2f})", file=sys.stderr)
    print({"rounds": args.rounds, "jobs": args.jobs, "ratio_median": round(statistics.median(ratios), 3),
           "ratios": [round(r, 3) for r in ratios]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
