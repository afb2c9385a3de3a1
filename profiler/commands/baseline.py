"""Save baselines: run each scenario several times and keep its footprint with the range every count
took across the runs, plus the versions it was measured on (kprof, oref0, node, strace, kernel, arch).

    kprof baseline save scenarios/*.yaml --repeat 5 --dir baselines/

A baseline is only saved from runs that did what the scenario expects.

Runs already made count too: a result bundle of ``kprof run`` (of the scenario as written: its own backend,
radio, pump tools, network and faults) adds its runs to the baseline of its scenario, beside the new runs of the scenario's
file when that is given as well (``--repeat`` new runs), in the order given:

    kprof baseline save scenarios/pump-loop.yaml kprof-results/pump-loop-20261207-101500 --repeat 2

A whole workload (kind: workload) is accepted too: its file (run once for --duration) or a bundle that
kprof workload run wrote; its baseline holds counts per loop iteration (see docs/workload.md)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from profiler.commands import progress_printer


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    save = sub.add_parser("save", help="run scenarios and save their baselines")
    save.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML file(s), result bundles of "
                      "kprof run (their runs count, beside new runs of the same scenario), workload files or "
                      "workload bundles")
    save.add_argument("--duration", metavar="DUR", help="how long a workload file runs (default: its duration:)")
    from profiler.commands.workload import add_iterations_argument
    add_iterations_argument(save)
    save.add_argument("--repeat", type=int, default=5, help="new runs per scenario file (default 5)")
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


@dataclass
class Recorded:
    """The runs of a result bundle of ``kprof run``, as a baseline takes them."""

    bundle: Path
    name: str                       # the scenario's (as a Scenario's: runs group by it)
    sha256: str                     # of the scenario file as run (the bundle's scenario.yaml)
    meta: dict                      # what a baseline keeps of meta.json (baseline.run_meta)
    footprints: list
    runs: list                      # run_measures of each run


def recorded(path: Path) -> Recorded:
    """A result bundle's runs; a bundle whose runs a baseline cannot take is a KprofError saying why."""
    from profiler.baseline import run_meta
    from profiler.digest import file_sha256
    from profiler.bundle import Bundle
    from profiler.compare import run_measures
    from profiler.errors import KprofError
    from profiler.scenario import scenario_from_text

    bundle = Bundle.open(path)
    meta = bundle.read_meta()
    text_path = path / "scenario.yaml"
    if meta is None or not meta.scenario or not text_path.is_file():
        raise KprofError(f"{path}: not a complete result bundle of kprof run (meta.json or scenario.yaml missing)")
    if meta.outcome != "ok":
        bad = next((r for r in meta.runs if r.incomplete or not r.ok), None)
        why = "; ".join(bad.failures) if bad and bad.failures else "a run did not complete"
        raise KprofError(f"{path}: not taking its runs into a baseline: {meta.outcome} ({why})")
    begun = [d for n, d in bundle.later_runs().items() if n > len(meta.runs)]
    if begun:
        raise KprofError(f"{path}: {begun[0].name} was begun but its run is not recorded (kprof run stopped during "
                         f"it): not taking its runs into a baseline")
    # what the scenario asks for, from the file as run, read as if at its place then (a relative pump client
    # directory is relative to it; the file's name is the scenario's)
    origin = Path(meta.scenario_file) if isinstance(meta.scenario_file, str) else path / f"{meta.scenario}.yaml"
    declared = scenario_from_text(origin, text_path.read_bytes(), True)
    _ran_as_written(path, meta, declared)
    paths = bundle.footprint_paths()
    if len(paths) != len(meta.runs):
        raise KprofError(f"{path}: {len(meta.runs)} runs but {len(paths)} footprint.json files (a run that made no "
                         f"syscall has none): not a baseline's runs")
    footprints = bundle.footprints()
    return Recorded(bundle=path, name=declared.name, sha256=file_sha256(text_path), meta=run_meta(meta),
                    footprints=footprints,
                    runs=[run_measures(fp, r.modules_loaded) for fp, r in zip(footprints, meta.runs)])


def _ran_as_written(path: Path, meta, declared) -> None:
    """A bundle's runs were made of the scenario as written (what kprof check runs): no --backend, --radio,
    --pump-client or --network other than its own, and its faults (the normal path of a fault scenario, its
    ``normal-path/`` bundle, is the scenario without them)."""
    from profiler.bundle import ABSENT
    from profiler.errors import KprofError
    pump = declared.pump is not None
    unrecorded = [key for key in ("backend", "network", "inject") + (("radio", "radio_fault") if pump else ())
                  if getattr(meta, key) is ABSENT] + (["pump_client"] if pump and not meta.pump_client else [])
    if unrecorded:
        raise KprofError(f"{path}: its meta.json does not say which {unrecorded[0]} its runs had (a bundle of an older "
                         f"kprof): not taking its runs into a baseline")
    client = meta.pump_client.get("client") if isinstance(meta.pump_client, dict) else None
    settings = (("--backend", meta.backend, declared.backend),
                ("--radio", meta.radio if isinstance(meta.radio, str) else None, declared.radio if pump else None),
                ("--pump-client", client, declared.pump_client if pump else None),
                ("--network", meta.network, declared.network))
    diff = [f"{name} {got} (the scenario: {want})" for name, got, want in settings if got != want]
    if diff:
        raise KprofError(f"{path}: run with {', '.join(diff)}; a baseline holds runs of the scenario as written, "
                         f"which kprof check runs")
    # the emulated pump's fault, as each run's record of it says (none recorded: none)
    pump_faults = {str(s["state"].get("fault", "none")) if isinstance(s.get("state"), dict) else "none"
                   for r in meta.runs for s in (r.services if isinstance(r.services, list) else [])
                   if isinstance(s, dict) and s.get("type") == "pump"} or {"none"}
    faulted = (meta.inject == [rule.to_dict() for rule in declared.inject]
               and (not pump or (meta.radio_fault if meta.radio_fault is not ABSENT else None) == declared.radio_fault)
               and pump_faults == {str(declared.pump.get("fault", "none")).strip() if pump else "none"})
    if not faulted:
        raise KprofError(f"{path}: its runs were made without the faults {declared.name} injects (the normal path of a "
                         f"fault scenario is the scenario without them): not runs of {declared.name} as written")


def main(args) -> int:
    from profiler import signals
    from profiler.baseline import Baseline, baseline_path, now_iso, run_meta
    from profiler.digest import file_sha256
    from profiler.bundle import new_bundle_dir
    from profiler.compare import run_measures
    from profiler.errors import KprofError
    from profiler.outfiles import output_dir
    from profiler.parallel import jobs_from, run_ordered
    from profiler.scenario import load_scenario

    if args.repeat < 1:
        raise KprofError("--repeat must be at least 1")
    from profiler.workload import is_workload_bundle, is_workload_file
    sources = [Path(s) for s in args.scenarios]
    workloads = [s for s in sources if is_workload_bundle(s) or is_workload_file(s)]
    # in the order given: a scenario file (its new runs) or a bundle of runs already made
    given = [recorded(s) if s.is_dir() else load_scenario(s, memo=True)
             for s in sources if s not in workloads]
    scenarios = [g for g in given if not isinstance(g, Recorded)]
    _check_sources(given)
    from profiler import runner
    for sc in scenarios:            # what would refuse a scenario: before any run and any directory
        runner.check_runnable(sc)
    # writable, ours: before anything runs; made with the first run's bundle, so a refusal leaves no directory
    output_dir(args.results, bundle=False, create=False)
    for w in workloads:
        save_workload_baseline(w, args)
    todo = []
    for sc in scenarios:
        bundle = new_bundle_dir(sc.name, args.results)
        bundle.mkdir(parents=True)   # claimed now: jobs started in the same second get distinct names
        todo.append((sc, bundle, args.repeat))
    made = {}
    for (sc, bundle, _), (outcomes, meta) in zip(todo, run_ordered(_run, todo, jobs_from(args))):
        stopped = signals.stop_code(outcomes)
        if stopped:
            return stopped
        failed = [r for r in meta.runs if not r.ok]
        if failed or len(outcomes) < args.repeat:
            raise KprofError(f"{sc.name}: not saving a baseline: {len(failed)} of {len(meta.runs)} runs did not "
                             f"do what the scenario expects ({'; '.join(failed[0].failures) if failed else '?'}); "
                             f"see {bundle}")
        made[id(sc)] = Recorded(bundle=bundle, name=sc.name, sha256=file_sha256(sc.path), meta=run_meta(meta),
                                footprints=[o.footprint for o in outcomes],
                                runs=[run_measures(o.footprint, o.modules) for o in outcomes])
    groups: dict[str, list[Recorded]] = {}
    for g in given:
        groups.setdefault(g.name, []).append(made.get(id(g), g))
    for runs in groups.values():
        for r in runs[1:]:
            _same_setup(r, runs[0])
    for name, runs in groups.items():
        first = runs[0]
        b = Baseline(scenario=name, runs=[m for r in runs for m in r.runs], footprint=first.footprints[0],
                     meta=first.meta, scenario_sha256=first.sha256, created=now_iso())
        path = baseline_path(args.dir, name)
        b.save(path)
        fp = first.footprints[0]
        print(f"saved {path}: {len(b.runs)} runs, {len(fp.syscalls)} syscalls, {len(fp.subsystem_rows())} subsystems "
              f"(runs in {', '.join(str(r.bundle) for r in runs)})")
    return 0


def _check_sources(given: list) -> None:
    """Runs of one scenario make one baseline: one scenario file at most, each bundle once, bundles of the same
    scenario text (each run as that text asks: ``recorded``), on one setup."""
    from profiler.digest import file_sha256
    from profiler.errors import KprofError

    by_name: dict[str, list] = {}
    for g in given:
        by_name.setdefault(g.name, []).append(g)
    for name, group in by_name.items():
        files = [g for g in group if not isinstance(g, Recorded)]
        if len(files) > 1:
            raise KprofError(f"{name}: given twice ({files[0].path}, {files[1].path}): one baseline per scenario")
        bundles = [g for g in group if isinstance(g, Recorded)]
        seen: dict = {}
        for r in bundles:
            twice = seen.setdefault(r.bundle.resolve(), r.bundle)
            if twice is not r.bundle:
                raise KprofError(f"{r.bundle}: given twice ({twice}): its runs would count twice")
        if not bundles:
            continue
        ref_sha = file_sha256(files[0].path) if files else bundles[0].sha256
        ref = files[0].path if files else bundles[0].bundle
        for r in bundles:
            if r.sha256 != ref_sha:
                raise KprofError(f"{r.bundle}: its scenario.yaml is not the text of {ref}: runs of another version "
                                 f"of {name} do not make one baseline")
            _same_setup(r, bundles[0])
        if files:               # the new runs' setup, known before they are made
            from profiler.baseline import run_meta
            from profiler.runner import setup_meta
            _same_setup(bundles[0], Recorded(bundle=files[0].path, name=name, sha256=ref_sha,
                                             meta=run_meta(setup_meta(files[0])), footprints=[], runs=[]))


def _same_setup(r: Recorded, first: Recorded) -> None:
    """Runs of one baseline were measured on one setup (the versions, kernel, tools a baseline records)."""
    from profiler.errors import KprofError
    if r.meta != first.meta:
        key = next(k for k in r.meta if r.meta[k] != first.meta.get(k))
        raise KprofError(f"{r.bundle}: measured on another {key} than {first.bundle} ({r.meta[key]} against "
                         f"{first.meta.get(key)}): the runs of one baseline are of one setup")


def save_workload_baseline(path: Path, args) -> None:
    from profiler.baseline import Baseline, baseline_path, now_iso, run_meta
    from profiler.digest import file_sha256
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
                 scenario_sha256=file_sha256(bundle / "workload.yaml"), created=now_iso())
    out = baseline_path(args.dir, meta["workload"])
    b.save(out)
    print(f"saved {out}: workload {meta['workload']}, {meta.get('iterations')} iterations, {len(fp.syscalls)} syscalls, "
          f"{len(m['program'])} programs (run in {bundle})")
