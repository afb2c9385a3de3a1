"""Compare two footprints: result bundles, footprint.json files or baselines — old vs new OpenAPS,
two kernels, one command vs another, or two architectures (compared by name and subsystem, never
by number). A baseline on the left gives the range its runs took; otherwise counts must match within
the default tolerance rules. Every run of B (a bundle of kprof run --repeat, or a baseline) is compared with A;
each change is shown once.

Exit status: 0 no difference, 1 differences, 2 error."""
from __future__ import annotations

from pathlib import Path

from profiler.commands.pipeline import ReportCommand
from profiler.render import DIFF_FORMATS


class Compare(ReportCommand):
    formats = DIFF_FORMATS

    def add_input_arguments(self, p) -> None:
        p.add_argument("a", type=Path, metavar="A", help="result bundle directory, footprint.json or baseline file")
        p.add_argument("b", type=Path, metavar="B", help="the same, compared against A")

    def read(self, args):
        from profiler.compare import Diff, diff, load_comparable, merge, rules_for

        runs_a, fps_a, meta_a = load_comparable(args.a)
        runs_b, fps_b, meta_b = load_comparable(args.b)
        d = Diff()
        for run, fp in zip(runs_b, fps_b):
            merge(d, diff(runs_a, fps_a[0], run, fp, rules_for(None)))
        fp_a, fp_b = fps_a[0], fps_b[0]
        if len(runs_b) > 1:
            d.notes.append(f"B's {len(runs_b)} runs each compared with A")
        if fp_a.arch != fp_b.arch:
            d.notes.append(f"architectures differ ({fp_a.arch} vs {fp_b.arch}): compared by name and subsystem")
        for k in sorted(set(meta_a.get("versions", {})) | set(meta_b.get("versions", {}))):
            va, vb = meta_a.get("versions", {}).get(k), meta_b.get("versions", {}).get(k)
            if va != vb:
                d.notes.append(f"{k}: {va} in A, {vb} in B")
        return d

    def build(self, args, d):
        from profiler.commands.pipeline import diff_report_of
        return diff_report_of([(f"{args.a} → {args.b}", d, f"A: {args.a}; B: {args.b}")], "kprof compare")

    def status(self, args, d, report) -> int:
        return 0 if d.clean else 1


COMMAND = Compare()
add_arguments, main = COMMAND.add_arguments, COMMAND.main
