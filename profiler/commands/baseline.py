"""Save baselines: run each scenario several times and keep its footprint with the range every count
took across the runs, plus the versions it was measured on (kprof, oref0, node, strace, kernel, arch).

    kprof baseline save scenarios/*.yaml --repeat 5 --dir baselines/

A baseline is only saved from runs that did what the scenario expects."""
from __future__ import annotations

from pathlib import Path

from profiler.commands import progress_printer


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    save = sub.add_parser("save", help="run scenarios and save their baselines")
    save.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML file(s)")
    save.add_argument("--repeat", type=int, default=5, help="runs per scenario (default 5)")
    save.add_argument("--dir", type=Path, default=Path("baselines"), help="baseline directory (default baselines/)")
    save.add_argument("--results", type=Path, default=Path("kprof-results"),
                      help="where the runs' result bundles go (default kprof-results/)")


def main(args) -> int:
    import dataclasses

    from profiler import runner, signals
    from profiler.baseline import Baseline, baseline_path, now_iso, run_meta, sha256_of
    from profiler.compare import run_measures
    from profiler.errors import KprofError
    from profiler.outfiles import output_dir
    from profiler.scenario import load_scenario

    if args.repeat < 1:
        raise KprofError("--repeat must be at least 1")
    scenarios = [load_scenario(s) for s in args.scenarios]
    output_dir(args.results, bundle=False)  # writable, ours: before anything runs
    for sc in scenarios:
        bundle = runner.new_bundle_dir(sc.name, args.results)
        outcomes, meta = runner.run_scenario(dataclasses.replace(sc, repeat=args.repeat), bundle,
                                             progress=progress_printer())
        stopped = signals.stop_code(outcomes)
        if stopped:
            return stopped
        failed = [r for r in meta["runs"] if not r["ok"]]
        if failed or len(outcomes) < args.repeat:
            raise KprofError(f"{sc.name}: not saving a baseline: {len(failed)} of {len(meta['runs'])} runs did not "
                             f"do what the scenario expects ({'; '.join(failed[0]['failures']) if failed else '?'}); "
                             f"see {bundle}")
        fps = [o.footprint for o in outcomes]
        b = Baseline(scenario=sc.name, runs=[run_measures(o.footprint, o.modules) for o in outcomes],
                     footprint=fps[0], meta=run_meta(meta),
                     scenario_sha256=sha256_of(sc.path), created=now_iso())
        path = baseline_path(args.dir, sc.name)
        b.save(path)
        print(f"saved {path}: {len(fps)} runs, {len(fps[0].syscalls)} syscalls, "
              f"{len(fps[0].subsystem_rows())} subsystems (runs in {bundle})")
    return 0

