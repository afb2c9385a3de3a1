"""Benchmark: kprof's Go pump tools against the recorded profile of ecc1's real tools (real-tools/).

The real tools cannot run here, so the comparison is with what ../shared/reference/real-tools/ recorded for
them against the same emulator (default latencies, pump 123456, model 522, TZ=UTC, 916.55 MHz):
  wall   the plain run's wall time ("wall time of the plain run", which includes ~0.03 s of namespace
         set-up); kprof's tool is timed through the private-/dev wrapper, minus the wrapper's own time
         (the same wrapper running /bin/true, measured side by side), plus those 0.03 s;
  calls  the total syscalls of `strace -f -c` (syscall-profiles.tsv), which follow the 1-ms polling.
For each command: the median over rounds of kprof's value, and its ratio to the recorded one (goal for
pump-status, i.e. `mdt reservoir`: wall <= 1.1x).

Usage: .venv/bin/python bench/pump_tools.py [--rounds 5] [COMMAND ...]   (as root: mount namespace)
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from profiler.pump.config import PumpConfig  # noqa: E402
from profiler.pump.emulator import PumpEmulator  # noqa: E402

REAL = ROOT.parent / "shared" / "reference" / "real-tools"
TOOLS = ROOT / "build" / "rig-tools" / "uart"
WRAP = [sys.executable, str(ROOT / "tests" / "helpers" / "with_serial0.py")]
ENV = {"PATH": "/usr/bin:/bin", "TZ": "UTC", "MEDTRONIC_PUMP_ID": "123456", "MEDTRONIC_FREQUENCY": "916.55"}
DEFAULT = ["reservoir", "model", "status", "clock", "battery", "tempbasal"]


def recorded(command: str) -> tuple[float, int]:
    text = (REAL / f"{command}.txt").read_text()
    wall = float(re.search(r"wall time of the plain run ([\d.]+) s", text).group(1))
    tsv = (REAL / "syscall-profiles.tsv").read_text().splitlines()
    calls = next(int(r.split("\t")[3]) for r in tsv[1:] if r.split("\t")[0] == command)
    return wall, calls


NAMESPACE_SETUP = 0.03   # real-tools/README.md: each recorded wall time includes about 0.03 s of set-up


def wrapper_alone(tmp: Path) -> float:
    t0 = time.monotonic()
    subprocess.run([*WRAP, "/dev/null", "/bin/true"], env=ENV, cwd=tmp, check=True, timeout=60)
    return time.monotonic() - t0


def one(command: str, strace: bool, tmp: Path) -> float:
    emu = PumpEmulator(PumpConfig(), env=ENV).start()
    try:
        argv = [*WRAP, emu.slave_path]
        if strace:
            argv += ["strace", "-f", "-c", "-o", str(tmp / "c.txt")]
        t0 = time.monotonic()
        subprocess.run([*argv, str(TOOLS / "mdt"), command], env=ENV, cwd=tmp, capture_output=True, check=True,
                       timeout=60)
        wall = time.monotonic() - t0
    finally:
        emu.stop()
    if strace:
        total = [line for line in (tmp / "c.txt").read_text().splitlines() if line.rstrip().endswith("total")]
        return float(total[0].split()[3 if len(total[0].split()) == 6 else 2])
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("commands", nargs="*", default=DEFAULT)
    args = ap.parse_args()
    print("| command | kprof wall (s) | recorded wall (s) | ratio | kprof calls | recorded calls | ratio |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for cmd in args.commands:
            walls = [one(cmd, False, tmp) - wrapper_alone(tmp) + NAMESPACE_SETUP for _ in range(args.rounds)]
            calls = [one(cmd, True, tmp) for _ in range(args.rounds)]
            rw, rc = recorded(cmd)
            w, c = statistics.median(walls), statistics.median(calls)
            print(f"| mdt {cmd} | {w:.3f} | {rw:.2f} | {w / rw:.2f}x | {c:.0f} | {rc} | {c / rc:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
