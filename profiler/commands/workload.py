"""Whole workloads: ELISA's experiment on any machine — a rig's crontab run here (the emulated pump, the fake
Nightscout), recorded with ftrace, and every per-command scenario put alongside it.

  kprof workload run scenarios/workloads/openaps-rig.yaml                    CI length (3m), syscall events
  kprof workload run scenarios/workloads/openaps-rig.yaml --duration 30m --discard-tail 5m --events all \\
      --whole-system -o elisa-replica                                        ELISA's replica
  kprof workload report BUNDLE --alongside kprof-results/*                   coverage by the scenarios
  kprof workload run FILE --scenarios scenarios/*.yaml                        … running them too

The bundle holds the trace (+ meta, /proc/modules before and during), the loops' logs, footprint.json,
programs.json, coverage.json and report.txt: ELISA's three tables (syscalls with subsystem and definition,
event groups, modules default vs workload), the programs of the workload and, given scenario results, what
they cover. Root is needed (tracefs, namespaces). See docs/workload.md."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from profiler.commands import add_output_arguments
from profiler.commands.pipeline import ReportCommand


def positive_int(text: str) -> int:
    import argparse
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1 expected, got {text!r}")
    return n


def add_iterations_argument(p) -> None:
    p.add_argument("--iterations", type=positive_int, metavar="N", help="end a workload file's run once N loop "
                   "iterations have completed (its iteration: marker, counted in the loop's log), or at --duration "
                   "if that comes first (default: run for the whole duration)")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="workload_command", metavar="{run,report}")
    sub.required = True
    r = sub.add_parser("run", help="run a workload file and record it with ftrace (root)",
                       description="Run a workload (kind: workload) in its own namespaces and record it with "
                       "kprof's tracefs instance: the driver's process tree (pid filter following forks), or with "
                       "--whole-system every process. Ctrl-C or SIGTERM stops it cleanly (processes, mounts and "
                       "tracing state restored; what was recorded is kept and analysed).")
    r.add_argument("workload", type=Path, metavar="FILE", help="workload YAML (kind: workload)")
    r.add_argument("--duration", metavar="DUR", help="how long (default: the file's duration:, else 3m; ELISA "
                   "ran 30m)")
    add_iterations_argument(r)
    r.add_argument("--discard-tail", metavar="DUR", help="leave the last DUR out of the analysis (ELISA: 5m; "
                   "default: none)")
    r.add_argument("--events", default="syscalls", metavar="syscalls|all|LIST",
                   help="syscalls (raw_syscalls + fork/exec, default), all (every event, as ELISA did), or a "
                   "comma list of systems and system:event names")
    r.add_argument("--whole-system", action="store_true", help="trace every process of the machine while the "
                   "workload runs (as ELISA did), not only the workload's")
    r.add_argument("--buffer-kb", type=int, default=16384, metavar="KB", help="ring buffer per CPU (default "
                   "16384)")
    r.add_argument("--alongside", nargs="+", type=Path, metavar="RESULT", help="scenario result bundles (or "
                   "footprint.json files) to put beside the workload in the report")
    r.add_argument("--scenarios", nargs="+", type=Path, metavar="SCENARIO", help="run these per-command "
                   "scenarios too (after the workload, into BUNDLE/scenarios/) and put them beside it")
    r.add_argument("-o", "--output", type=Path, metavar="DIR", help="bundle directory (default "
                   "kprof-results/NAME-TIME)")
    add_output_arguments(r, output=False, extra="; report.txt is always a table")
    r.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    r.set_defaults(workload_func=run_main)

    rep = sub.add_parser("report", help="the report of a workload bundle, alongside scenario results",
                         description="ELISA's tables of a recorded workload and, with --alongside, per program and "
                         "per syscall/ioctl/subsystem which scenario explains it, what none does, and the "
                         "scenarios whose command the workload never ran.")
    REPORT.add_arguments(rep)


def main(args) -> int:
    return args.workload_func(args)


def _fmt_s(seconds) -> str:
    from profiler.render.ftrace_report import fmt_duration
    return fmt_duration(seconds)


def build_report(bundle: Path, alongside=None, discard_tail: float | None = None):
    """(Report, coverage or None) of a workload bundle; writes footprint.json, programs.json and
    coverage.json into it."""
    from profiler.alongside import alongside_chart, alongside_sections, load_footprints
    from profiler.coverage import coverage, coverage_sections, headline
    from profiler.kernel import modules as km
    from profiler.record.ftrace import load_meta, sidecar
    from profiler.render.model import Report, Section
    from profiler.render.sections import footprint_warnings, subsystem_chart
    from profiler.workload import analyse_bundle, save_programs

    meta, res, fp, programs = analyse_bundle(bundle, discard_tail)
    fp.save(bundle / "footprint.json")
    save_programs(bundle / "programs.json", programs)
    trace = bundle / meta.get("trace", "trace.txt")
    tmeta = load_meta(trace) or {}
    rep = Report(f"kprof workload: {meta.get('workload')} ({bundle})")
    f = rep.facts
    cmd = meta.get("command") or []
    f.append(("workload", f"{meta.get('workload_file')}: {' '.join(cmd)}; cron every "
                          f"{meta['cron']['interval_s']:g} s: " + ", ".join(lp["command"] for lp in meta["cron"]["loops"])))
    cron = meta.get("cron_every_minute") or {}
    if cron.get("parses") is False:
        err = (cron["error"] or "").splitlines()[0].replace(cron["script"] + ": ", "")
        f.append(("oref0-cron-every-minute", f"{cron['script']} does not parse (bash -n: {err}): a rig with "
                                             "this oref0 starts no loop from cron. kprof's driver starts the loops "
                                             "the script would start (pump-loop, ns-loop, autosens-loop, "
                                             "shared-node-loop) itself"))
    f.append(("recorded", f"Linux {tmeta.get('kernel_release')} ({tmeta.get('machine')}), events: {meta.get('events')}, "
                          + ("the whole system (kprof's own pid left out)" if meta.get("whole_system") else
                             "the workload's process tree (set_event_pid + event-fork)")
                          + f", {_fmt_s(tmeta.get('duration_s'))} of {_fmt_s(meta.get('duration_limit_s'))}"
                          + (f", ended after {meta['iterations_limit']} iterations" if meta.get("iterations_reached")
                             else "")
                          + (", interrupted" if meta.get("interrupted") else "")))
    if meta.get("iterations") is not None:
        f.append(("iterations", f"{meta['iterations']} ('{meta.get('iteration', {}).get('marker')}' lines in "
                                f"logs/{meta.get('iteration', {}).get('log')}.log, the loop's own log)"))
    f.append(("emulated", meta.get("emulated", "")))
    f.append(("isolation", meta.get("isolation", "")))
    for s in meta.get("services", []):
        if s.get("type") == "nightscout":
            f.append(("nightscout", f"{s['url']}: {s['requests']} requests; uploads taken: "
                                    + ", ".join(f"{k} {v}" for k, v in s.get("uploads", {}).items())))
        elif s.get("type") == "pump":
            f.append(("pump", f"{s['device']}: {s['exchanges']} radio exchanges"))
        elif s.get("type") == "syslog":
            f.append(("syslog", f"{s['device']}: {s['messages']} messages (kprof's sink, {s['log']})"))
    f.append(("tracing state", "restored (checked file by file)" if tmeta.get("tracing_state_restored")
              else "NOT restored: " + "; ".join(tmeta.get("tracing_state_changes", []))))
    lost = sum((tmeta.get("lost_events") or {}).values())
    f.append(("trace", f"{res.lines:,} lines, {sum(res.events.values()):,} events, lost {lost}"
                       + (f", last {_fmt_s(res.windows[0][2].end and res.last_ts - res.windows[0][2].end)} left out"
                          if res.windows and res.windows[0][2].end is not None else "")))
    rep.warnings += res.warnings + footprint_warnings(fp) + list(tmeta.get("warnings") or [])
    if not tmeta.get("tracing_state_restored"):
        rep.warnings.append("the tracing state was NOT restored")

    # ELISA's table 1: syscalls with counts, subsystem and definition
    rows = []
    for name, s in sorted(fp.syscalls.items(), key=lambda kv: (-kv[1].calls, kv[0])):
        info = fp.syscall_info(name)
        rows.append([name, info.number if info.number is not None else "", f"{s.calls:,}",
                     sum(s.errors.values()) or "", _subsystem(fp, name),
                     f"{info.file}:{info.line}" if info.file else (info.note or "")])
    rep.sections.append(Section(
        "System calls in use (ELISA's table)", ["syscall", "nr", "calls", "errors", "subsystem", "defined in"],
        rows, f"{len(rows)} distinct syscalls, {sum(s.calls for s in fp.syscalls.values()):,} calls ({fp.arch} numbers); "
              "the subsystem is the kernel directory of the SYSCALL_DEFINE, as ELISA sorted them by hand."))
    # ELISA's table 2: event groups
    groups = res.groups()
    total = sum(groups.values()) or 1
    rep.sections.append(Section(
        "Subsystem usage: event groups (ELISA's table)", ["event group", "events", "%"],
        [[g, f"{n:,}", f"{100 * n / total:.1f}"] for g, n in groups.most_common()],
        "Trace lines counted by event name up to its first underscore (irq_handler_entry → irq_*). With "
        "--events syscalls only sys_* and the fork/exec sched_* are recorded; --events all gives ELISA's table."))
    # ELISA's table 3: modules
    mods = tmeta.get("modules") or {}
    if mods.get("before") and mods.get("during"):
        default, _ = km.read_modules(str(sidecar(trace, "modules-before")))
        during, _ = km.read_modules(str(sidecar(trace, "modules-during")))
        mrows = km.module_table(during, default)
        changed = [r for r in mrows if r[3]]
        rep.sections.append(Section(
            "Modules: workload vs default system (ELISA's table)", ["module", "workload", "default", "change"],
            mrows, f"/proc/modules before the workload and {mods.get('during_at_s')} s into it; "
                   f"{len(changed)} of {len(mrows)} modules changed."))
    else:
        rep.sections.append(Section("Modules: workload vs default system (ELISA's table)", ["module"], [],
                                    f"no module snapshots: {mods.get('note') or 'not taken'}"))
    ioc = fp.ioctl_rows()
    if ioc:
        rep.sections.append(Section("ioctl requests", ["request", "code", "handled by", "subsystem", "calls", "made by"],
                                    [[r["name"] or r["request"], r["request"], r["handler"] or "", r["subsystem"],
                                      r["calls"], ", ".join(f"{k} {v}" for k, v in r["by"].most_common(3))]
                                     for r in ioc]))
    rep.charts.append(subsystem_chart({"whole workload": fp}))

    cov = None
    if alongside:
        scen = load_footprints(alongside)
        cov = coverage(programs, fp, scen)
        f.extend(headline(cov))
        rep.sections += coverage_sections(cov)
        rep.sections += alongside_sections(scen, fp)
        rep.charts.append(alongside_chart(scen, fp))
        (bundle / "coverage.json").write_text(json.dumps(cov.to_dict(), indent=1) + "\n")
    else:
        tot = sum(r["calls"] for r in programs.values()) or 1
        rep.sections.append(Section(
            "Programs of the workload", ["program", "processes", "calls", "% of calls", "top syscalls"],
            [[p, r["processes"], f"{r['calls']:,}", f"{100 * r['calls'] / tot:.1f}",
              ", ".join(f"{k} {v}" for k, v in r["syscalls"].most_common(4))]
             for p, r in sorted(programs.items(), key=lambda kv: -kv[1]["calls"])],
            "No scenario results given (--alongside): coverage not computed."))
    return rep, cov


def _subsystem(fp, name) -> str:
    from profiler.kernel.subsystems import subsystem_label
    info = fp.syscall_info(name)
    return subsystem_label(info.subsystem, info.file)


def run_scenarios(files, where: Path) -> list[Path]:
    """Run per-command scenarios into ``where``/NAME (as kprof run does); their bundles."""
    from profiler import runner
    from profiler.bundle import FOOTPRINT
    from profiler.scenario import load_scenario
    out = []
    for f in files:
        sc = load_scenario(f)
        bundle = where / sc.name
        runner.run(sc, bundle)
        if (bundle / FOOTPRINT).is_file():
            out.append(bundle)
    return out


def default_alongside(bundle: Path) -> list[Path]:
    """The scenario results a workload bundle holds (kprof workload run --scenarios)."""
    return sorted(p for p in (Path(bundle) / "scenarios").glob("*") if (p / "footprint.json").is_file())


def run_main(args) -> int:
    from profiler.commands.pipeline import write_output
    from profiler.errors import KprofError
    from profiler.parse.ftrace_text import parse_duration
    from profiler.bundle import new_bundle_dir
    from profiler.render import renderer
    from profiler.workload import load_bundle_meta, load_workload, run_workload

    wl = load_workload(args.workload)
    duration = parse_duration(args.duration, "--duration") if args.duration else (wl.duration or 180.0)
    if duration <= 0:
        raise KprofError("--duration must be more than 0")
    tail = parse_duration(args.discard_tail, "--discard-tail")
    if tail is not None and tail >= duration:
        raise KprofError(f"--discard-tail {args.discard_tail} leaves nothing of a {_fmt_s(duration)} recording")
    if args.buffer_kb < 64:
        raise KprofError("--buffer-kb: at least 64")
    for a in args.alongside or []:
        if not a.exists():
            raise KprofError(f"--alongside {a}: no such result bundle or file")
    if args.scenarios:
        from profiler.scenario import load_scenario
        for f in args.scenarios:
            load_scenario(f)                   # a bad scenario file fails before the workload runs
    out = args.output or new_bundle_dir(wl.name, Path("kprof-results"))
    if not args.quiet:
        until = f" or until {args.iterations} iterations complete" if args.iterations else ""
        print(f"kprof: running {wl.name} for {_fmt_s(duration)}{until} into {out} (Ctrl-C stops it cleanly)",
              file=sys.stderr)
    interrupted = False
    try:
        meta = run_workload(wl, out, duration=duration, discard_tail=tail, events=args.events,
                            whole_system=args.whole_system, buffer_kb=args.buffer_kb, iterations=args.iterations)
    except KeyboardInterrupt:
        interrupted = True
        meta = load_bundle_meta(out) if (out / "meta.json").is_file() else {}
        if not (out / "trace.txt").is_file():
            raise
    interrupted = interrupted or bool(meta.get("interrupted"))
    alongside = list(args.alongside or [])
    if args.scenarios and not interrupted:
        alongside += run_scenarios(args.scenarios, out / "scenarios")
    rep, cov = build_report(out.resolve(), alongside or default_alongside(out))
    (out / "report.txt").write_text(renderer("table").render(rep))
    if not args.quiet:
        write_output(renderer(args.format).render(rep), None)
    its = meta.get("iterations")
    print(f"kprof: {out}: {'no iteration marker' if its is None else f'{its} iterations'}, tracing state "
          f"{'restored' if meta.get('tracing_state_restored') else 'NOT restored'}"
          + (f"; coverage {100 * cov.calls_share:.1f} % of calls, {100 * cov.syscalls_share:.1f} % of syscalls"
             if cov else "") + (", interrupted" if interrupted else ""), file=sys.stderr)
    if interrupted:
        return 130
    if not meta.get("tracing_state_restored"):
        return 2
    return 0


class WorkloadReport(ReportCommand):
    """kprof workload report: a bundle → its report (build_report), alongside scenario results."""

    def add_input_arguments(self, rep) -> None:
        rep.add_argument("bundle", type=Path, metavar="BUNDLE", help="a bundle written by kprof workload run")
        rep.add_argument("--alongside", nargs="+", type=Path, metavar="RESULT", help="scenario result bundles or "
                         "footprint.json files (default: the bundle's scenarios/, when run with --scenarios)")
        rep.add_argument("--discard-tail", metavar="DUR", help="leave the last DUR out (default: what the run "
                         "asked)")

    def add_arguments(self, rep) -> None:
        super().add_arguments(rep)
        rep.set_defaults(workload_func=self.main)

    def validate(self, args) -> None:
        from profiler.errors import KprofError

        if not args.bundle.is_dir():
            raise KprofError(f"{args.bundle}: no such workload bundle (a directory written by kprof workload run)")
        for a in args.alongside or []:
            if not a.exists():
                raise KprofError(f"--alongside {a}: no such result bundle or file")

    def read(self, args):
        """The report: analysing the bundle writes its footprint.json, programs.json (and coverage.json)."""
        from profiler.parse.ftrace_text import parse_duration

        rep, _ = build_report(args.bundle.resolve(), args.alongside or default_alongside(args.bundle),
                              parse_duration(args.discard_tail, "--discard-tail"))
        return rep

    def build(self, args, report):
        return report


REPORT = WorkloadReport()
