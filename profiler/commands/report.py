"""Render saved results again, in any format. One result bundle: the report `kprof run` printed (versions,
result, cross-check, warnings, device-level table …, kept in the bundle's report.json). Several bundles (or
footprint.json files): their footprints in one report, with the subsystems side by side in one chart.

    kprof report kprof-results/determine-basal-*/ kprof-results/meal-*/ -f html -o report.html"""
from __future__ import annotations

from pathlib import Path

from profiler.commands import add_whole_workload_arguments
from profiler.commands.pipeline import ReportCommand


def saved_report(bundle: Path):
    """The report ``kprof run`` made for a bundle (its report.json), or None for a bundle without one."""
    import json

    from profiler.bundle import Bundle
    from profiler.errors import KprofError, check_input
    from profiler.render.model import report_from_dict

    path = Bundle(bundle).report_path("json")
    if not path.exists():
        return None
    check_input(path, "a kprof report (JSON)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise KprofError(f"{path}: damaged report ({e or 'nested too deeply'})") from None
    return report_from_dict(data, str(path))


class ReportAgain(ReportCommand):
    guess_format = True

    def add_input_arguments(self, p) -> None:
        p.add_argument("results", nargs="+", type=Path, metavar="RESULT",
                       help="result bundle directory or footprint.json")

    def add_arguments(self, p) -> None:
        super().add_arguments(p)
        add_whole_workload_arguments(p)

    def read(self, args):
        """The saved report of one bundle, else the footprints (and the whole workload beside them)."""
        from profiler.alongside import load_footprints
        from profiler.commands import whole_workload

        if len(args.results) == 1 and args.results[0].is_dir() and not args.whole_workload:
            saved = saved_report(args.results[0])
            if saved is not None:  # the report kprof run printed, in any format
                return saved
        loaded = load_footprints(args.results)
        return loaded, *whole_workload(args)

    def build(self, args, model):
        from profiler.alongside import alongside_chart, alongside_sections
        from profiler.render.model import Report
        from profiler.render.sections import footprint_facts, footprint_sections, footprint_warnings, subsystem_chart

        if isinstance(model, Report):
            return model
        loaded, whole, whole_warnings = model
        report = Report("kprof report: " + ", ".join(loaded), warnings=list(whole_warnings))
        if whole is not None:
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
        return report


COMMAND = ReportAgain()
add_arguments, main = COMMAND.add_arguments, COMMAND.main
