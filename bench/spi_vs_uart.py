"""Benchmark: pump-status on the SPI radio path against the UART path, side by side in one run.

The SPI path (radio: spi) is served at the syscall boundary by the ptrace backend: every SPI byte is one
ioctl the tracer stops on, skips and answers (spi-radio.md §8.3), about 27 µs each here against the
client's 1 ms sleep between polls. The UART path runs on a pty with the scenario's own backend (strace),
and, for a like-for-like tracer, with the ptrace backend too.

Each round runs pump-status once per path, in rotating order, through the real runner (fresh workdir,
namespaces, the log analysed while it is written). Reported: the median over rounds of the per-round
ratio SPI / UART of the whole runner.run call and of the recorder's wall, and per path the calls the
kernel executed and the calls served. Target (issue 13): SPI run <= 1.3x the UART run.
Machines here are noisy: ratios, never absolute seconds.

Usage: .venv/bin/python bench/spi_vs_uart.py [--rounds 5] [SCENARIO]   (as root: namespaces; needs the
SPI build of kprof's Go tools, ./setup.sh)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from profiler import runner  # noqa: E402
from profiler.scenario import load_scenario  # noqa: E402

# the SPI client waits 1 s after releasing the radio's reset (spi-radio.md §2.2 h, §4.5): the rig's own wait,
# not tracer cost; the UART client resets nothing. Shown both with it and without it.
RESET_WAIT_S = 1.0
PATHS = {"spi": ("spi", None), "uart": ("uart", "strace"), "uart-ptrace": ("uart", "ptrace")}


def run_once(sc, out: Path) -> tuple[float, float, int, int, bool]:
    start = time.perf_counter()
    outcomes, meta = runner.run(sc, out)
    total = time.perf_counter() - start
    o = outcomes[0]
    fp = o.analysis.footprint
    return total, o.trace.wall, fp.total_calls, fp.total_served, meta.runs[0].ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "pump-status.yaml"))
    args = ap.parse_args()
    base = load_scenario(args.scenario)
    variants = {name: runner.with_overrides(base, radio=radio, backend=backend)
                for name, (radio, backend) in PATHS.items()}
    got = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="kprof-bench-") as tmp:
        for name, sc in variants.items():                    # warm-up: page cache, Go binaries
            run_once(sc, Path(tmp) / f"warm-{name}")
        names = list(variants)
        for i in range(args.rounds):
            for name in names[i % len(names):] + names[:i % len(names)]:
                got[name].append(run_once(variants[name], Path(tmp) / f"{name}{i}"))
    print(f"{base.name}: {args.rounds} rounds, medians of per-round ratios")
    print("| path | run s (median) | recorder s | kernel-executed calls | served calls | runs ok |")
    print("|---|---|---|---|---|---|")
    for name, rows in got.items():
        print(f"| {name} | {statistics.median(r[0] for r in rows):.2f} | {statistics.median(r[1] for r in rows):.2f} | "
              f"{statistics.median(r[2] for r in rows):.0f} | {statistics.median(r[3] for r in rows):.0f} | "
              f"{sum(r[4] for r in rows)}/{len(rows)} |")
    for other in ("uart", "uart-ptrace"):
        run = statistics.median(s[0] / u[0] for s, u in zip(got["spi"], got[other]))
        rec = statistics.median(s[1] / u[1] for s, u in zip(got["spi"], got[other]))
        net = statistics.median((s[0] - RESET_WAIT_S) / u[0] for s, u in zip(got["spi"], got[other]))
        net_rec = statistics.median((s[1] - RESET_WAIT_S) / u[1] for s, u in zip(got["spi"], got[other]))
        print(f"SPI / {other}: whole run {run:.2f}x, recorder {rec:.2f}x; without the client's own 1 s reset "
              f"wait: whole run {net:.2f}x, recorder {net_rec:.2f}x (target <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
