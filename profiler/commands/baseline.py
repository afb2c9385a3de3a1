"""Save baselines: run each scenario several times and keep its footprint with the range every count
took across the runs, plus the versions it was measured on (kprof, oref0, node, strace, kernel, arch).

    kprof baseline save scenarios/*.yaml --repeat 5 --dir baselines/

A baseline is only saved from runs that did what the scenario expects.

A whole workload (kind: workload) is accepted too: its file (run once for --duration) or a bundle that
kprof workload run wrote; its baseline holds counts per loop iteration (see docs/workload.md)."""
from __future__ import annotations

from pathlib import Path

from profiler.commands import progress_printer


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    save = sub.add_parser("save", help="run scenarios and save their baselines")
    save.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML file(s), workload files or "
                      "workload bundles")
    save.add_argument("--duration", metavar="DUR", help="how long a workload file runs (default: its duration:)")
    from profiler.commands.workload import add_iterations_argument
    add_iterations_argument(save)
    save.add_argument("--repeat", type=int, default=5, help="runs per scenario (default 5)")
    save.add_argument("--dir", type=Path, default=Path("baselines"), help="baseline directory (default baselines/)")
    save.add_argument("--results", type=Path, default=Path("kprof-results"),
                      help="where the runs' result bundles go (default kprof-results/)")
    from profiler.parallel import add_jobs_argument
    add_jobs_argument(save)


def _run(sc, bundle, repeat: int):
    """One scenario's runs (a parallel job)."""
    import dataclasses

    from profiler import runner
    return runner.run(dataclasses.replace(sc, repeat=repeat), bundle, progress=progress_printer())


def main(args) -> int:
    from profiler import signals
    from profiler.baseline import Baseline, baseline_path, now_iso, run_meta, sha256_of
    from profiler.bundle import new_bundle_dir
    from profiler.compare import run_measures
    from profiler.errors import KprofError
    from profiler.outfiles import output_dir
    from profiler.parallel import jobs_from, run_ordered
    from profiler.scenario import load_scenario

    if args.repeat < 1:
        raise KprofError("--repeat must be at least 1")
    from profiler.workload import is_workload_bundle, is_workload_file
    workloads = [Path(s) for s in args.scenarios if is_workload_bundle(s) or is_workload_file(s)]
    scenarios = [load_scenario(s, memo=True) for s in args.scenarios if Path(s) not in workloads]
    output_dir(args.results, bundle=False)  # writable, ours: before anything runs
    from profiler import runner
    for sc in scenarios:            # what would refuse a scenario: before any run and any directory
        runner.check_runnable(sc)
    for w in workloads:
        save_workload_baseline(w, args)
    todo = []
    for sc in scenarios:
        bundle = new_bundle_dir(sc.name, args.results)
        bundle.mkdir(parents=True)   # claimed now: jobs started in the same second get distinct names
        todo.append((sc, bundle, args.repeat))
    for (sc, bundle, _), (outcomes, meta) in zip(todo, run_ordered(_run, todo, jobs_from(args))):
        stopped = signals.stop_code(outcomes)
        if stopped:
            return stopped
        failed = [r for r in meta.runs if not r.ok]
        if failed or len(outcomes) < args.repeat:
            raise KprofError(f"{sc.name}: not saving a baseline: {len(failed)} of {len(meta.runs)} runs did not "
                             f"do what the scenario expects ({'; '.join(failed[0].failures) if failed else '?'}); "
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



def save_workload_baseline(path: Path, args) -> None:
    from profiler.baseline import Baseline, baseline_path, now_iso, run_meta, sha256_of
    from profiler.errors import KprofError
    from profiler.workload import bundle_measures, check_usable, run_bundle

    bundle = run_bundle(path, args.results, getattr(args, "duration", None), getattr(args, "iterations", None))
    meta, fp, m = bundle_measures(bundle)
    problems = check_usable(bundle, meta)
    if problems:
        raise KprofError(f"{meta['workload']}: not saving a baseline: {'; '.join(problems)} (see {bundle})")
    b = Baseline(scenario=meta["workload"], runs=[m], footprint=fp,
                 meta={**run_meta(meta), "kind": "workload", "iterations": meta.get("iterations"),
                       "arch": fp.arch, "kernel": (meta.get("versions") or {}).get("kernel") or meta.get("kernel")},
                 scenario_sha256=sha256_of(bundle / "workload.yaml"), created=now_iso())
    out = baseline_path(args.dir, meta["workload"])
    b.save(out)
    print(f"saved {out}: workload {meta['workload']}, {meta.get('iterations')} iterations, {len(fp.syscalls)} syscalls, "
          f"{len(m['program'])} programs (run in {bundle})")
