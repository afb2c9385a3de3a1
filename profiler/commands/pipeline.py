"""The report commands' one pipeline: validate the input → read it → build the report (sections) → render it
in the chosen format → write it (stdout, or -o's file through ``write_atomic``: never half a file).

A report command is a ``ReportCommand`` subclass saying what differs: its input arguments, how it reads its
input into a model and how it builds a Report (profiler.render.model) from that model; its module exposes
``add_arguments`` and ``main`` of one instance, as every command module does."""
from __future__ import annotations

from pathlib import Path

from profiler.commands import add_output_arguments


def write_output(text: str, output) -> None:
    """``text`` to stdout, or to the file ``output`` (written atomically)."""
    if output is None:
        import sys
        sys.stdout.write(text)
    else:
        from profiler.outfiles import write_atomic
        write_atomic(output, text)


class ReportCommand:
    """validate → read → build → (save) → render → write; exit status from ``status``."""
    formats: tuple[str, ...] | None = None   # the -f choices (None: profiler.render.FORMATS)
    default_format = "table"
    guess_format = False        # -f from -o's file name when not given (kprof report)
    format_help = ""            # more after the -f help (e.g. an extra format)
    has_output = True           # -o FILE

    # ---- what a command says
    def add_input_arguments(self, p) -> None:
        """The command's own arguments (its input and options)."""

    def validate(self, args) -> None:
        """Refuse bad input before reading it (raise KprofError)."""

    def read(self, args):
        """The model the report is built from (a Footprint, an analysis, a Diff …)."""
        raise NotImplementedError

    def build(self, args, model):
        """The Report of ``model``."""
        raise NotImplementedError

    def save(self, args, model) -> None:
        """Other files the command writes beside its report (e.g. --footprint), before the report."""

    def status(self, args, model, report) -> int:
        """The exit status once the report is written."""
        return 0

    # ---- the pipeline
    def add_arguments(self, p) -> None:
        self.add_input_arguments(p)
        add_output_arguments(p, formats=self.formats, default=self.default_format, guess=self.guess_format,
                             extra=self.format_help, output=self.has_output)

    def format(self, args) -> str:
        if args.format:
            return args.format
        from profiler.render import guess_format
        return guess_format(getattr(args, "output", None) if self.guess_format else None, self.default_format)

    def render(self, report, fmt: str) -> str:
        from profiler.render import renderer
        return renderer(fmt).render(report)

    def write(self, args, text: str) -> None:
        write_output(text, getattr(args, "output", None))

    def main(self, args) -> int:
        _refuse_output_over_input(args)
        self.validate(args)
        model = self.read(args)
        report = self.build(args, model)
        self.save(args, model)
        self.write(args, self.render(report, self.format(args)))
        return self.status(args, model, report)


_OUTPUTS = ("output", "fragment", "footprint")     # the options that name a file a command writes


def _refuse_output_over_input(args) -> None:
    """An output file that is one of the command's inputs (``analyze LOG -o LOG``), or what an input bundle is
    made of (``config BUNDLE --fragment BUNDLE/footprint.json``), is refused before anything is read: it would
    replace what it was made from."""
    import os

    from profiler.bundle import FOOTPRINT, META, SCENARIO
    from profiler.errors import KprofError

    inputs = []
    for key, value in vars(args).items():
        if key not in _OUTPUTS:
            inputs += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, Path)]
    for key in _OUTPUTS:
        out = getattr(args, key, None)
        if not isinstance(out, Path) or not out.is_file():
            continue
        for given in inputs:
            made_of = [given / name for name in (FOOTPRINT, META, SCENARIO, "trace.log")] if given.is_dir() else [given]
            for f in made_of:
                if f.is_file() and os.path.samefile(out, f):
                    raise KprofError(f"{out}: is {'an input' if f == given else 'part of the input ' + str(given)}: "
                                     f"give another file for --{key} (it would replace what it is made from)")


def diff_report_of(results: list, title: str):
    """``results``: (label, Diff, where) per scenario or comparison → their DiffReport (check, compare)."""
    from profiler.render.model import DiffReport
    from profiler.render.sections import diff_sections

    facts, warnings, sections = diff_sections(results)
    return DiffReport(title, facts, sections, warnings, diffs=[(label, d) for label, d, _ in results])


def diff_report(results: list, fmt: str, title: str) -> str:
    """The output text of ``results`` in ``fmt``: a one-line summary first, then each with its changes worst
    first (JUnit: a test suite each)."""
    from profiler.render import renderer
    return renderer(fmt).render(diff_report_of(results, title))
