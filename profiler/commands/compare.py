"""Compare two footprints: result bundles, footprint.json files or baselines — old vs new OpenAPS,
two kernels, one command vs another, or two architectures (compared by name and subsystem, never
by number). A baseline on the left gives the range its runs took; otherwise counts must match within
the default tolerance rules.

Exit status: 0 no difference, 1 differences, 2 error."""
from __future__ import annotations

from pathlib import Path

FORMATS = ("table", "markdown", "json", "html", "junit")


def add_arguments(p) -> None:
    p.add_argument("a", type=Path, metavar="A", help="result bundle directory, footprint.json or baseline file")
    p.add_argument("b", type=Path, metavar="B", help="the same, compared against A")
    p.add_argument("-f", "--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("-o", "--output", type=Path, help="write the output here instead of stdout")


def main(args) -> int:
    from profiler.commands.common import diff_report, write_output
    from profiler.compare import diff, load_comparable, rules_for

    runs_a, fp_a, meta_a = load_comparable(args.a)
    runs_b, fp_b, meta_b = load_comparable(args.b)
    d = diff(runs_a, fp_a, runs_b[0], fp_b, rules_for(None))
    if fp_a.arch != fp_b.arch:
        d.notes.append(f"architectures differ ({fp_a.arch} vs {fp_b.arch}): compared by name and subsystem")
    for k in sorted(set(meta_a.get("versions", {})) | set(meta_b.get("versions", {}))):
        va, vb = meta_a.get("versions", {}).get(k), meta_b.get("versions", {}).get(k)
        if va != vb:
            d.notes.append(f"{k}: {va} in A, {vb} in B")
    write_output(diff_report([(f"{args.a} → {args.b}", d, f"A: {args.a}; B: {args.b}")], args.format,
                             "kprof compare"), args.output)
    return 0 if d.clean else 1
