"""Render saved results again, in any format: one or more result bundles (or footprint.json files) in
one report, with the subsystems of all of them side by side in one chart.

    kprof report kprof-results/determine-basal-*/ kprof-results/meal-*/ -f html -o report.html"""
from __future__ import annotations

from pathlib import Path

from profiler.render import FORMATS


def add_arguments(p) -> None:
    p.add_argument("results", nargs="+", type=Path, metavar="RESULT", help="result bundle directory or footprint.json")
    p.add_argument("-f", "--format", choices=FORMATS, help="output format (default: from -o's suffix, else table)")
    p.add_argument("-o", "--output", type=Path, help="write the report here instead of stdout")


_SUFFIX = {".html": "html", ".htm": "html", ".md": "markdown", ".json": "json", ".txt": "table"}


def main(args) -> int:
    import json

    from profiler.commands.common import footprint_facts, footprint_warnings, write_output
    from profiler.errors import KprofError
    from profiler.footprint import Footprint
    from profiler.render.report import Report, footprint_sections, render, subsystem_chart

    loaded = {}
    for r in args.results:
        fp_path = r / "footprint.json" if r.is_dir() else r
        if r.is_dir() and not fp_path.is_file():
            raise KprofError(f"{r}: not a result bundle (no footprint.json)")
        label = r.name if r.is_dir() else str(r)
        meta_path = fp_path.parent / "meta.json"
        if meta_path.is_file():
            try:
                label = json.loads(meta_path.read_text()).get("scenario") or label
            except ValueError:
                pass
        while label in loaded:
            label += "'"
        loaded[label] = Footprint.load(fp_path)
    fmt = args.format or (_SUFFIX.get(args.output.suffix, "table") if args.output else "table")
    report = Report("kprof report: " + ", ".join(loaded))
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
