"""Benchmark: the ptrace backend's wall time over the strace backend's, measured side by side in one run.

For each scenario (default: simulator-step, the oref0-simulator loop step with its ~140 processes, and
determine-basal), each round runs the scenario once with each backend, in alternating order, through
the real runner (fresh workdir with the fixtures, prepare steps, network namespace, the log analysed
while it is written). Reported per scenario, as the median over rounds of the per-round ratio
ptrace/strace:

  record   the recorder's own wall time (TraceOutcome.wall: start of the tracer to its exit)
  run      the whole runner.run call (isolation, recording, analysis, bundle)

and the syscalls each backend recorded (they should agree within the timing-dependent noise).
Target (issue 3): <= 2x. Machines here are noisy: ratios, never absolute seconds.

Usage: .venv/bin/python bench/ptrace_vs_strace.py [--rounds 5] [SCENARIO ...]   (as root: namespaces)
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from profiler import runner  # noqa: E402
from profiler.scenario import load_scenario  # noqa: E402


def run_once(sc, backend: str, out: Path) -> tuple[float, float, int]:
    """(recording wall, whole run wall, syscalls recorded) of one run of ``sc`` with ``backend``."""
    start = time.perf_counter()
    outcomes, _ = runner.run(dataclasses.replace(sc, backend=backend), out)
    total = time.perf_counter() - start
    o = outcomes[0]
    return o.trace.wall, total, o.analysis.footprint.total_calls


def bench(path: Path, rounds: int) -> dict:
    sc = load_scenario(path)
    rec_ratios, run_ratios, calls = [], [], {"strace": [], "ptrace": []}
    with tempfile.TemporaryDirectory(prefix="kprof-bench-") as tmp:
        run_once(sc, "strace", Path(tmp) / "warm")       # page cache, node's code cache
        for i in range(rounds):
            order = ("ptrace", "strace") if i % 2 else ("strace", "ptrace")
            got = {b: run_once(sc, b, Path(tmp) / f"{b}{i}") for b in order}
            rec_ratios.append(got["ptrace"][0] / got["strace"][0])
            run_ratios.append(got["ptrace"][1] / got["strace"][1])
            for b in got:
                calls[b].append(got[b][2])
            print(f"  {sc.name} round {i + 1}: strace {got['strace'][0]:.3f} s, ptrace {got['ptrace'][0]:.3f} s "
                  f"(record ratio {rec_ratios[-1]:.2f}, run ratio {run_ratios[-1]:.2f})", file=sys.stderr)
    return {"scenario": sc.name, "rounds": rounds,
            "record_ratio_median": round(statistics.median(rec_ratios), 3),
            "record_ratios": [round(r, 3) for r in rec_ratios],
            "run_ratio_median": round(statistics.median(run_ratios), 3),
            "syscalls": {b: f"{min(v)}-{max(v)}" for b, v in calls.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("scenarios", nargs="*", default=["simulator-step", "determine-basal"])
    args = ap.parse_args()
    rows = []
    for name in args.scenarios:
        path = Path(name) if name.endswith(".yaml") else ROOT / "scenarios" / f"{name}.yaml"
        rows.append(bench(path, args.rounds))
    print(f"{'scenario':<18} {'record ptrace/strace':>21} {'run ptrace/strace':>18}  syscalls strace | ptrace")
    for r in rows:
        print(f"{r['scenario']:<18} {r['record_ratio_median']:>20.2f}x {r['run_ratio_median']:>17.2f}x  "
              f"{r['syscalls']['strace']} | {r['syscalls']['ptrace']}")
    print("target: <= 2x (median of per-round ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
