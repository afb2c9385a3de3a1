"""Render saved results again, in any format. One result bundle: the report `kprof run` printed (versions,
result, cross-check, warnings, device-level table …, kept in the bundle's report.json). Several bundles (or
footprint.json files): their footprints in one report, with the subsystems side by side in one chart.

    kprof report kprof-results/determine-basal-*/ kprof-results/meal-*/ -f html -o report.html"""
from __future__ import annotations

from pathlib import Path

from profiler.commands import add_whole_workload_arguments
from profiler.render import FORMATS


def add_arguments(p) -> None:
    p.add_argument("results", nargs="+", type=Path, metavar="RESULT", help="result bundle directory or footprint.json")
    p.add_argument("-f", "--format", choices=FORMATS, help="output format (default: from -o's suffix, else table)")
    p.add_argument("-o", "--output", type=Path, help="write the report here instead of stdout")
    add_whole_workload_arguments(p)


def saved_report(bundle: Path):
    """The report ``kprof run`` made for a bundle (its report.json), or None for a bundle without one."""
    import json

    from profiler.errors import KprofError, check_input
    from profiler.render.report import report_from_dict

    path = bundle / "report.json"
    if not path.exists():
        return None
    check_input(path, "a kprof report (JSON)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise KprofError(f"{path}: damaged report ({e or 'nested too deeply'})") from None
    return report_from_dict(data, str(path))


_SUFFIX = {".html": "html", ".htm": "html", ".md": "markdown", ".json": "json", ".txt": "table"}


def main(args) -> int:
    from profiler.alongside import alongside_chart, alongside_sections, load_footprints, load_whole_workload
    from profiler.commands.common import footprint_facts, footprint_warnings, write_output
    from profiler.render.report import Report, footprint_sections, render, subsystem_chart

    fmt = args.format or (_SUFFIX.get(args.output.suffix, "table") if args.output else "table")
    if len(args.results) == 1 and args.results[0].is_dir() and not args.whole_workload:
        saved = saved_report(args.results[0])
        if saved is not None:  # the report kprof run printed, in any format
            write_output(render(saved, fmt), args.output)
            return 0
    loaded = load_footprints(args.results)
    report = Report("kprof report: " + ", ".join(loaded))
    if args.whole_workload:
        whole = load_whole_workload(args.whole_workload, arch=args.whole_arch)
        report.charts.append(alongside_chart(loaded, whole))
        report.sections += alongside_sections(loaded, whole)
    else:
        report.charts.append(subsystem_chart(loaded))
    for label, fp in loaded.items():
        prefix = f"{label}: " if len(loaded) > 1 else ""
        report.facts += [(f"{prefix}{k}", v) for k, v in footprint_facts(fp)]
        report.warnings += [prefix + w for w in footprint_warnings(fp)]
        for s in footprint_sections(fp):
            s.title = prefix + s.title
            report.sections.append(s)
    write_output(render(report, fmt), args.output)
    return 0
