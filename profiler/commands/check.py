"""Check scenarios against their baselines: rerun each and report what changed in the kernel footprint.

    kprof check scenarios/*.yaml --baseline baselines/ [--format junit -o check.xml]

Reported as changes: new or vanished syscalls, errors (per syscall, and per file, device, program and
destination), subsystems, ioctl requests, devices, executed programs, network destinations, files, kernel
modules, Kconfig needs and served calls; and counts that leave the range the baseline's runs took, widened
by the tolerance rules (profiler/tolerance.json; a scenario's `tolerance:` overrides them; timing-dependent
syscalls get wide bands). Timing-dependent items
(a syscall in timing_syscalls and every error of it, any syscall's error in timing_errors, the `optional`
items, a subsystem or Kconfig need entered only through timing syscalls) may appear or vanish: that is
shown as a note (a warning line), not a change; their counts are still checked.

Output: a one-line summary first, then each scenario with its changes worst first (failed runs, new,
vanished, then counts furthest out of range). A scenario whose baseline is missing or damaged is
reported as an error (in JUnit an <error> test case) and the other scenarios are still checked.

Exit status: 0 clean, 1 a regression (or a run that did not do what its scenario expects), 2 an
error (missing or damaged baseline, baseline from another architecture or a newer kprof).

A whole workload (a workload file, run for --duration, or a bundle of kprof workload run) is checked
against its baseline by program, syscall, subsystem, ioctl and module: membership strictly, counts per
loop iteration in wide bands (see docs/workload.md)."""
from __future__ import annotations

import sys
from pathlib import Path

from profiler.commands import add_output_arguments, progress_printer
from profiler.render import DIFF_FORMATS


def add_arguments(p) -> None:
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML file(s), workload files or "
                   "workload bundles")
    p.add_argument("--duration", metavar="DUR", help="how long a workload file runs (default: its duration:)")
    from profiler.commands.workload import add_iterations_argument
    add_iterations_argument(p)
    p.add_argument("--baseline", type=Path, default=Path("baselines"), metavar="DIR",
                   help="baseline directory (default baselines/)")
    p.add_argument("--repeat", type=int, default=1, help="check this many consecutive runs (default 1)")
    add_output_arguments(p, formats=DIFF_FORMATS)
    p.add_argument("--results", type=Path, default=Path("kprof-results"),
                   help="where the runs' result bundles go (default kprof-results/)")
    from profiler.parallel import add_jobs_argument
    add_jobs_argument(p)


def _run(sc, bundle, repeat: int):
    """One scenario's runs (a parallel job)."""
    import dataclasses

    from profiler import runner
    return runner.run(dataclasses.replace(sc, repeat=repeat), bundle, progress=progress_printer())


def main(args) -> int:
    from profiler import runner, signals
    from profiler.baseline import Baseline, baseline_path
    from profiler.digest import file_sha256
    from profiler.bundle import new_bundle_dir
    from profiler.commands.pipeline import diff_report, write_output
    from profiler.compare import Change, Diff, diff, merge, rules_for, run_measures
    from profiler.errors import KprofError
    from profiler.kernel import syscalls
    from profiler.outfiles import output_dir
    from profiler.parallel import jobs_from, run_ordered
    from profiler.scenario import load_scenario

    if args.repeat < 1:
        raise KprofError("--repeat must be at least 1")
    from profiler.workload import is_workload_bundle, is_workload_file
    workloads = [Path(s) for s in args.scenarios if is_workload_bundle(s) or is_workload_file(s)]
    scenarios = [load_scenario(s, memo=True) for s in args.scenarios if Path(s) not in workloads]
    # writable, ours: before anything runs; made with the first run's bundle, so a refusal leaves no directory
    output_dir(args.results, bundle=False, create=False)
    arch = syscalls.host_arch()
    baselines = []  # a missing or damaged baseline is that scenario's error; the others are still checked
    for sc in scenarios:
        path = baseline_path(args.baseline, sc.name)
        try:
            b = Baseline.load(path)
        except KprofError as e:
            baselines.append(str(e))
            continue
        if b.meta.get("kind") == "workload" or b.scenario != sc.name:
            what = "a workload's baseline" if b.meta.get("kind") == "workload" else f"the baseline of {b.scenario!r}"
            baselines.append(f"{path}: {what}, not scenario {sc.name!r}'s: save its own with kprof baseline save")
            continue
        if b.meta.get("arch") not in (None, arch):
            baselines.append(f"{path}: baseline recorded on {b.meta['arch']}, this machine is {arch}: check on a "
                             f"{b.meta['arch']} machine, or compare footprints across arches with kprof compare")
            continue
        baselines.append(b)
    results = []
    for w in workloads:
        name, d, bundle, b = check_workload(w, args)
        results.append((name, d, f"baseline {baseline_path(args.baseline, name)} ({b.created}), runs in {bundle}"))
    jobs = jobs_from(args)
    runnable = {id(sc) for sc, b in zip(scenarios, baselines) if not isinstance(b, str) and not runner.missing_tools(sc)}
    for sc in scenarios:   # what would refuse a scenario that can run (a tool gone is a change, said below):
        if id(sc) in runnable:   # before any run and any directory
            runner.check_runnable(sc)
    todo, bundles = [], []
    for sc in scenarios:
        if id(sc) not in runnable:
            bundles.append(None)
            continue
        bundle = new_bundle_dir(sc.name, args.results)
        bundle.mkdir(parents=True)   # claimed now: jobs started in the same second get distinct names
        bundles.append(bundle)
        todo.append((sc, bundle, args.repeat))
    ran = dict(zip((id(t[0]) for t in todo), run_ordered(_run, todo, jobs)))
    for sc, b, bundle in zip(scenarios, baselines, bundles):
        if isinstance(b, str):
            results.append((sc.name, Diff(errors=[b]), f"baseline {baseline_path(args.baseline, sc.name)}"))
            continue
        where = f"baseline {baseline_path(args.baseline, sc.name)} ({b.created})"
        missing = runner.missing_tools(sc)
        if missing:  # e.g. an OpenAPS update that dropped a command: a change, not a usage error
            results.append((sc.name, Diff([Change("failed", "run", f"not installed: {', '.join(missing)}", (0, 0), 0)]),
                            where))
            continue
        outcomes, meta = ran[id(sc)]
        rules = rules_for(sc.tolerance)
        total = Diff(seconds=sum(o.trace.wall for o in outcomes))
        for o, rec in zip(outcomes, meta.runs):
            for failure in rec.failures:
                total.changes.append(Change("failed", "run", failure, (0, 0), 0))
            if o.footprint is not None:
                note = (o.modules or {}).get("note")
                if note and f"kernel modules: {note}" not in total.notes:
                    total.notes.append(f"kernel modules: {note}")
                merge(total, diff(b.runs, b.footprint, run_measures(o.footprint, o.modules), o.footprint, rules))
        if sc.path.is_file() and b.scenario_sha256 and file_sha256(sc.path) != b.scenario_sha256:
            total.notes.append("the scenario file changed since the baseline was saved")
        then_versions = b.meta.get("versions") or {}
        for k in [*meta.versions, *(k for k in then_versions if k not in meta.versions)]:
            then, v = then_versions.get(k), meta.versions.get(k)
            if then != v:
                total.notes.append(f"{k}: {then} at the baseline, {v} now")
        then_tree, now_tree = b.meta.get("oref0_tree") or {}, meta.oref0_tree or {}
        if then_tree.get("files_sha256") and then_tree.get("files_sha256") != now_tree.get("files_sha256"):
            total.notes.append(f"oref0's files differ from the baseline's ({then_tree.get('path')} then, "
                               f"{now_tree.get('path')} now): a patched or another install")
        if b.meta.get("kernel") != meta.kernel:
            total.notes.append(f"kernel: {b.meta.get('kernel')} at the baseline, {meta.kernel} now")
        results.append((sc.name, total, f"{where}, runs in {bundle}"))
        stopped = signals.stop_code(outcomes)
        if stopped:
            return stopped
    write_output(diff_report(results, args.format, "kprof check"), args.output)
    errors = [e for _, d, _ in results for e in d.errors]
    for e in errors:
        print(f"kprof: error: {e}", file=sys.stderr)
    if errors:
        return 2
    return 0 if all(d.clean for _, d, _ in results) else 1


def check_workload(path: Path, args):
    """(name, Diff, bundle, baseline) of a workload run against its baseline."""
    from profiler.baseline import Baseline, baseline_path
    from profiler.compare import Change, diff, rules_for
    from profiler.errors import KprofError
    from profiler.workload import (WORKLOAD_TOLERANCE, bundle_measures, check_usable, is_workload_bundle,
                                   load_bundle_meta, load_workload, run_bundle)

    name = load_bundle_meta(path)["workload"] if is_workload_bundle(path) else load_workload(path).name
    b = Baseline.load(baseline_path(args.baseline, name))      # before running
    if b.meta.get("kind") != "workload":
        raise KprofError(f"{baseline_path(args.baseline, name)}: a scenario's baseline, not a workload's")
    bundle = run_bundle(path, args.results, args.duration, args.iterations)
    meta, fp, m = bundle_measures(bundle)
    if b.meta.get("arch") not in (None, fp.arch):
        raise KprofError(f"{baseline_path(args.baseline, name)}: baseline recorded on {b.meta['arch']}, this run on "
                         f"{fp.arch}")
    total = diff(b.runs, b.footprint, m, fp, rules_for({**WORKLOAD_TOLERANCE, **(b.meta.get("tolerance") or {})}))
    total.changes[:0] = [Change("failed", "run", p, (0, 0), 0) for p in check_usable(bundle, meta)]
    total.notes.append(f"{meta.get('iterations')} iterations now, {b.meta.get('iterations')} at the baseline; "
                       f"counts compared per iteration")
    for k, v in (meta.get("versions") or {}).items():
        then = b.meta.get("versions", {}).get(k)
        if then != v:
            total.notes.append(f"{k}: {then} at the baseline, {v} now")
    return name, total, bundle, b
