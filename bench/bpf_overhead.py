"""Benchmark: what tracing costs the traced command — bpf backend, strace backend and no tracer, side by side.

For each scenario (default: simulator-step, the oref0-simulator loop step, ~150 processes; pump-status-uart, one
`mdt reservoir` against the emulated pump: pump-status on the UART path, since only kprof's ptrace tracer can
serve the SPI radio that scenarios/pump-status.yaml uses), each round runs the scenario through the real runner (fresh
workdir, prepare steps, namespaces, emulated pump) three ways, in rotating order:

  untraced  the command alone (a recorder that only runs it: the same environment, no tracer)
  bpf       --backend bpf (bpftrace counting in the kernel)
  strace    --backend strace (kprof's default)

Reported per scenario, medians over rounds of per-round ratios:

  command   the command's own wall time (TraceOutcome.wall: from the command's start to the end of its
            process tree; for bpf from the gate's opening, after bpftrace has attached — its compile and
            attach time, ~0.75 s to READY since kernel fields are read at BTF offsets (1.2-1.9 s
            before, bench/README.md), is paid before the command starts)
  run       the whole runner.run call (for bpf including bpftrace's start-up and map dump)

Targets (issue 17): bpf/untraced <= 1.15x on the loop step, <= 1.3x on pump-status (the command).
Machines here are noisy: ratios, never absolute seconds.

Usage: .venv/bin/python bench/bpf_overhead.py [--rounds 5] [SCENARIO ...]   (as root: BPF, namespaces)
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from profiler import runner  # noqa: E402
from profiler.record.core import TraceOutcome, reap_orphans  # noqa: E402
from profiler.scenario import load_scenario  # noqa: E402

BACKENDS = ("untraced", "bpf", "strace")


def record_untraced(argv, log_path, *, cwd, env, timeout, stdout_path, stderr_path, consume=None, inject=(),
                    stop_at_root=False):
    """The command alone, in the scenario's environment: the baseline every tracer is measured against (the
    recorders' contract; it waits for the command's own process whatever ``stop_at_root`` says)."""
    start = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        p = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout)
    reap_orphans()
    return TraceOutcome(returncode=p.returncode, wall=time.monotonic() - start, strace_messages=[])


_real_recorder = runner.recorder
runner.recorder = lambda backend: record_untraced if backend == "untraced" else _real_recorder(backend)


def run_once(sc, backend: str, out: Path) -> tuple[float, float]:
    start = time.perf_counter()
    outcomes, _ = runner.run(dataclasses.replace(sc, backend=backend), out)
    return outcomes[0].trace.wall, time.perf_counter() - start


def bench(path: Path, rounds: int) -> dict:
    sc = load_scenario(path)
    walls = {b: [] for b in BACKENDS}
    runs = {b: [] for b in BACKENDS}
    with tempfile.TemporaryDirectory(prefix="kprof-bench-") as tmp:
        for b in BACKENDS:
            run_once(sc, b, Path(tmp) / f"warm-{b}")       # page cache, node's code cache
        for i in range(rounds):
            order = BACKENDS[i % 3:] + BACKENDS[:i % 3]
            for b in order:
                w, r = run_once(sc, b, Path(tmp) / f"{b}{i}")
                walls[b].append(w)
                runs[b].append(r)
            print(f"  {sc.name} round {i + 1}: " + ", ".join(f"{b} {walls[b][-1]:.3f} s (run {runs[b][-1]:.2f} s)"
                                                          for b in BACKENDS), file=sys.stderr)

    def ratio(table, a, b):
        return round(statistics.median(x / y for x, y in zip(table[a], table[b])), 3)
    return {"scenario": sc.name, "rounds": rounds,
            "command_bpf_over_untraced": ratio(walls, "bpf", "untraced"),
            "command_strace_over_untraced": ratio(walls, "strace", "untraced"),
            "command_bpf_over_strace": ratio(walls, "bpf", "strace"),
            "run_bpf_over_untraced": ratio(runs, "bpf", "untraced"),
            "run_strace_over_untraced": ratio(runs, "strace", "untraced")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("scenarios", nargs="*", default=["simulator-step", "pump-status-uart"])
    args = ap.parse_args()
    for name in args.scenarios:
        path = Path(name) if name.endswith(".yaml") else ROOT / "scenarios" / f"{name}.yaml"
        print(bench(path, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
