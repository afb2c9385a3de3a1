"""Run scenario files: each command runs under strace (or kprof's ptrace tracer: backend ptrace, and the SPI
radio path, whose spidev ioctls it serves) in a fresh temp workdir (and, unless the scenario
says network: host, a fresh network namespace with loopback only). Every run writes a result bundle
(scenario, meta.json, raw trace, footprint.json, report) and prints the report.

Exit status: 0 when every scenario did what it expects; 1 when one ran to its end but not as expected
(wrong exit status, missing output, counts that disagree with strace's own summary); 2 on errors: a bad
scenario file, a missing tool, no permission, and a command that crashed, was killed or hung past its
timeout (its partial trace is kept in the bundle and analysed all the same)."""
from __future__ import annotations

import sys
from pathlib import Path

from profiler.commands import add_output_arguments, add_whole_workload_arguments, progress_printer

BUNDLE_FORMATS = ("table", "markdown", "html")   # the reports written into a result bundle


def add_arguments(p) -> None:
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario YAML file(s)")
    p.add_argument("-o", "--out", type=Path, help="result bundle directory (with several scenarios: a parent "
                   "directory holding one bundle each; default ./kprof-results/NAME-TIMESTAMP)")
    p.add_argument("--force", action="store_true", help="-o names an existing result bundle: replace it (without "
                   "--force kprof refuses, so two runs never mix in one bundle)")
    add_output_arguments(p, output=False)
    p.add_argument("--network", choices=("none", "host"), help="override the scenario's network setting")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temporary working directory")
    p.add_argument("--backend", choices=("strace", "ptrace", "bpf"),
                   help="override the scenario's tracer (bpf: counted in the kernel by bpftrace, needs root)")
    p.add_argument("--radio", choices=("uart", "spi", "edison"),
                   help="pump scenarios: the radio path (uart: /dev/serial0; spi: Pi + Explorer HAT, /dev/spidev0.0; "
                        "edison: Explorer Board, /dev/spidev5.1); spi and edison are served at the syscall boundary "
                        "by the ptrace backend")
    p.add_argument("--pump-client", metavar="kprof|system|DIR",
                   help="the pump tools a pump scenario runs (overrides its pump.client): kprof (kprof's Go tools, "
                        "the default), system (mdt, pumphistory, listen, mmtune from the system PATH) or DIR "
                        "(a directory holding those four, e.g. a real ecc1 build)")
    add_whole_workload_arguments(p)
    from profiler.parallel import add_jobs_argument
    add_jobs_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print no report, only where the bundle is")


def main(args) -> int:
    import json

    from profiler import runner, signals
    from profiler.bundle import Bundle, new_bundle_dir
    from profiler.outfiles import output_dir
    from profiler.parallel import jobs_from, run_ordered
    from profiler.render import renderer
    from profiler.render.model import report_to_dict
    from profiler.render.run_report import error_path_report, run_report
    from profiler.scenario import load_scenario

    scenarios = [load_scenario(s, memo=True) for s in args.scenarios]  # all errors before anything runs
    from profiler.commands import whole_workload
    whole, whole_warnings = whole_workload(args)
    if args.backend or args.radio or args.pump_client is not None:
        scenarios = [runner.with_overrides(sc, radio=args.radio, backend=args.backend, pump_client=args.pump_client)
                     for sc in scenarios]
    for sc in scenarios:   # what would refuse a scenario (a missing tool, a rule strace cannot restrict): before
        runner.check_runnable(sc)   # any run and any directory (a fault scenario's normal path runs first)
    footprints = {}
    status = 0
    jobs = jobs_from(args)
    todo = []
    single = args.out is not None and len(scenarios) == 1
    # checked before any run; a single bundle is created by the run itself (a scenario refused on the way
    # leaves no directory)
    parent = output_dir(args.out or Path("kprof-results"), force=args.force, bundle=single, create=not single)
    for sc in scenarios:
        if single:
            bundle = parent
        else:
            bundle = new_bundle_dir(sc.name, parent)
            bundle.mkdir(parents=True)   # claimed now: jobs started in the same second get distinct names
        todo.append((sc, bundle, args.network, args.keep_workdir))
    for (sc, bundle, _, _), (normal, outcomes, meta) in zip(todo, run_ordered(_run_one, todo, jobs)):
        report = run_report(sc, outcomes, meta, bundle)
        if normal and outcomes:
            unmatched = error_path_report(report, sc, normal[0], outcomes[0], meta.arch)
            if unmatched:  # a fault scenario that injected nothing must not pass
                meta.runs[0].fail(*unmatched)
                Bundle(bundle).write_meta(meta)
        # report.txt, report.md, report.html (named by their renderers) and report.json (the report's model)
        texts = {fmt: renderer(fmt).render(report) for fmt in BUNDLE_FORMATS}
        Bundle(bundle).write_reports({**texts, "json": json.dumps(report_to_dict(report), indent=1, default=str)
                                      + "\n"})
        if not args.quiet:  # the format asked for is one of those just written (json: rendered now)
            sys.stdout.write(texts.get(args.format) or renderer(args.format).render(report))
        print(f"kprof: result bundle: {bundle}", file=sys.stderr)
        # 2: crashed, killed or timed out: only a partial trace (kept and analysed); 1: not as expected
        status = max(status, meta.exit_status)
        first = next((o.footprint for o in outcomes if o.footprint is not None), None)
        if first is not None:
            footprints[sc.name] = first
        stopped = signals.stop_code(outcomes)
        if stopped:
            return stopped
    if whole is not None and footprints:
        write_alongside(footprints, whole, whole_warnings, args, bundle if len(scenarios) == 1 else bundle.parent)
    return status


def _run_one(sc, bundle: Path, network, keep_workdir: bool):
    """One scenario (a parallel job): its normal path first when it injects faults, then the scenario."""
    from profiler import faults, runner
    from profiler.bundle import Bundle

    normal = None
    if faults.has_faults(sc):  # the error path is shown next to the normal path: run that first
        normal, normal_meta = runner.run(faults.normal_variant(sc), Bundle(bundle).normal_path,
                                         network=network, progress=progress_printer(), sequences=True)
        if any(o.trace.interrupted for o in normal):  # stopped by a signal: no error path after it
            return None, normal, normal_meta
    outcomes, meta = runner.run(sc, bundle, network=network, keep_workdir=keep_workdir,
                                progress=progress_printer(), meanwhile=_load_report_code,
                                sequences=normal is not None)     # both paths' sequence views
    return normal, outcomes, meta


def _load_report_code() -> None:
    """The modules and kernel tables writing the bundle's reports needs, loaded while the command records
    instead of after it (tabulate ~20 ms to import; the ioctl, device and Kconfig tables ~10 ms)."""
    import tabulate  # noqa: F401

    from profiler.kernel import kconfig, syscalls
    from profiler.kernel.ioctls import decode_ioctl
    from profiler.render import html, renderer

    for fmt in BUNDLE_FORMATS:
        renderer(fmt)
    html.resource("report.css"), html.resource("report.js")   # read once, kept

    arch = syscalls.host_arch()
    decode_ioctl(0x5401, "/dev/pts/0", arch)   # TCGETS on a terminal: reads the ioctl and device tables
    kconfig.syscall_condition(arch, "read")    # the syscalls' Kconfig conditions
    kconfig.file_config("fs/read_write.c")     # the kernel files' conditions


def write_alongside(footprints, whole, whole_warnings, args, where: Path) -> None:
    """The commands next to the whole workload: subsystem × (each scenario, whole workload), and what the
    whole workload used that no scenario explains."""
    from profiler.alongside import alongside_chart, alongside_sections
    from profiler.outfiles import write_atomic
    from profiler.render import renderer
    from profiler.render.model import Report

    report = Report("kprof: commands alongside the whole workload", sections=alongside_sections(footprints, whole),
                    charts=[alongside_chart(footprints, whole)], warnings=list(whole_warnings))
    for fmt in BUNDLE_FORMATS:   # alongside.txt, alongside.md, alongside.html
        r = renderer(fmt)
        write_atomic(where / f"alongside.{r.output_file_extension}", r.render(report))
    if not args.quiet:
        sys.stdout.write(renderer(args.format).render(report))
    print(f"kprof: alongside the whole workload: {where / 'alongside.txt'}", file=sys.stderr)
