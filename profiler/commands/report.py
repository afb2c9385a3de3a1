"""Render saved results again, in any format: one or more result bundles (or footprint.json files) in
one report, with the subsystems of all of them side by side in one chart.

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


_SUFFIX = {".html": "html", ".htm": "html", ".md": "markdown", ".json": "json", ".txt": "table"}


def main(args) -> int:
    from profiler.alongside import alongside_chart, alongside_sections, load_footprints, load_whole_workload
    from profiler.commands.common import footprint_facts, footprint_warnings, write_output
    from profiler.render.report import Report, footprint_sections, render, subsystem_chart

    loaded = load_footprints(args.results)
    fmt = args.format or (_SUFFIX.get(args.output.suffix, "table") if args.output else "table")
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
