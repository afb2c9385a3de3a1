"""Benchmark: what kprof costs over the tracer alone, as ratios measured side by side in one run.

For each scenario (default: simulator-step, the oref0-simulator loop step, and determine-basal), each
round runs, in alternating order:

  baseline  plain `strace -f -o LOG -- COMMAND` in the same kind of environment kprof gives the command
            (fresh workdir with the fixtures, the scenario's namespaces, services and emulated pump, prepare
            steps, same env and PATH);
  same-opts the same with kprof's strace options (-f -yy -ttt -T -X raw -C): what kprof itself adds;
  kprof     `kprof run SCENARIO -q` (all of it: isolation, strace with kprof's options, analysis, bundle);
  analyze   `kprof analyze` of the log kprof just recorded, as a user would run it (a new process).

Reported: the median over rounds of kprof/baseline, kprof/same-opts, same-opts/baseline (what strace's own
work for kprof's options costs) and analyze/recording (recording = the strace wall time kprof measured for
that run), each with its per-round values, plus peak memory of `kprof analyze` on the log and on the same log
repeated 10x (memory must stay flat as the log grows). Targets (issue 2): run overhead <= 1.15x on the
loop step; analysis <= 0.1x of recording. Machines here are noisy: ratios, never absolute seconds.

Usage: .venv/bin/python bench/run_overhead.py [--rounds 5] [SCENARIO ...]   (as root: namespaces)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from profiler import runner  # noqa: E402
from profiler.record.strace import STRACE_OPTIONS  # noqa: E402
from profiler.scenario import load_scenario  # noqa: E402

PY = sys.executable


def timed(cmd, **kw) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def baseline(sc, options=("-f",)) -> float:
    """strace alone, in the environment kprof gives the command: a fresh workdir with the fixtures, the
    scenario's namespaces (private /tmp; loopback only for network: none), its fake services and emulated
    pump at /dev/serial0, the prepare steps, the same env and PATH. Only strace's run is timed."""
    from profiler.environment import namespaces
    workdir = runner.make_workdir(sc)
    try:
        env = runner.command_env(sc, workdir)
        argv = ["/bin/sh", "-c", sc.command] if sc.shell else list(sc.command)
        cmd = ["strace", *options, "-o", str(workdir / "plain.log"), "--", *argv]
        seconds, _ = namespaces.run_isolated(_plain_strace, sc, workdir, env, cmd, net=sc.network == "none",
                                             mount=True)
        return seconds
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _plain_strace(sc, workdir: Path, env: dict, cmd: list) -> float:
    """In the scenario's namespaces: its services, pump and prepare steps, then the timed strace run."""
    from profiler.environment import devfs, nightscout
    devfs.private_tmp([str(workdir), str(ROOT), str(runner.NODE_MODULES)])
    started, resolv = [], None
    try:
        started += [nightscout.start_service(spec.to_dict(), workdir) for spec in sc.services]
        if sc.pump is not None:
            from profiler.pump.config import config_from_mapping
            from profiler.pump.emulator import PumpEmulator
            pump = PumpEmulator(config_from_mapping(sc.pump), env=env).start()
            started.append(pump)
            devfs.private_dev({"serial0": pump.slave_path})
        if sc.network == "none":
            resolv = devfs.loopback_resolver()
        for step in sc.prepare:
            subprocess.run(["/bin/sh", "-c", step], cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return timed(cmd, cwd=workdir, env=env)
    finally:
        for service in started:
            service.stop()
        if resolv:
            os.unlink(resolv)


def peak_rss_kib(cmd) -> int:
    """Peak RSS of one child process (ru_maxrss of a fresh child via a wrapper)."""
    code = ("import resource,subprocess,sys;subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,check=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    return int(subprocess.run([PY, "-c", code, *cmd], capture_output=True, text=True, check=True).stdout)


def bench(path: Path, rounds: int) -> dict:
    sc = load_scenario(path)
    run_ratios, same_ratios, options_ratios, analyze_ratios = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="kprof-bench-") as tmp:
        for i in range(rounds):
            bundle = Path(tmp) / f"b{i}"
            kprof_cmd = [PY, "-m", "profiler", "run", str(path), "-q", "--out", str(bundle)]
            if i % 2:
                t_kprof, t_base, t_same = timed(kprof_cmd, cwd=ROOT), baseline(sc), baseline(sc, STRACE_OPTIONS)
            else:
                t_same, t_base, t_kprof = baseline(sc, STRACE_OPTIONS), baseline(sc), timed(kprof_cmd, cwd=ROOT)
            run_ratios.append(t_kprof / t_base)
            same_ratios.append(t_kprof / t_same)
            options_ratios.append(t_same / t_base)
            recording = json.loads((bundle / "meta.json").read_text())["runs"][0]["wall_seconds"]
            t_analyze = timed([PY, "-m", "profiler", "analyze", str(bundle / "trace.log"), "-f", "json"], cwd=ROOT)
            analyze_ratios.append(t_analyze / recording)
        log = Path(tmp) / "b0" / "trace.log"
        big = Path(tmp) / "big.log"
        body = log.read_text()
        body = body[:body.index("% time")] if "% time" in body else body
        big.write_text(body * 10)
        analyze = [PY, "-m", "profiler", "analyze", "-f", "json"]
        rss1, rss10 = peak_rss_kib([*analyze, str(log)]), peak_rss_kib([*analyze, str(big)])
        lines = body.count("\n")
    return {"scenario": sc.name, "rounds": rounds, "log_lines": lines,
            "run_over_strace_median": round(statistics.median(run_ratios), 3),
            "run_over_strace_all": [round(r, 3) for r in run_ratios],
            "run_over_strace_same_options_median": round(statistics.median(same_ratios), 3),
            "run_over_strace_same_options_all": [round(r, 3) for r in same_ratios],
            "strace_options_over_plain_median": round(statistics.median(options_ratios), 3),
            "strace_options_over_plain_all": [round(r, 3) for r in options_ratios],
            "analyze_over_recording_median": round(statistics.median(analyze_ratios), 3),
            "analyze_over_recording_all": [round(r, 3) for r in analyze_ratios],
            "analyze_peak_rss_kib": {"1x": rss1, "10x": rss10, "ratio": round(rss10 / rss1, 2)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", type=Path,
                    default=[ROOT / "scenarios" / "simulator-step.yaml", ROOT / "scenarios" / "determine-basal.yaml"])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    results = [bench(p, args.rounds) for p in args.scenarios]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
