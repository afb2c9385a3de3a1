"""One module per kprof subcommand: add_arguments(parser) and main(args) -> exit status."""
import sys
from pathlib import Path

FORMAT_HELP = "output format (default: {default})"
GUESS_HELP = "output format (default: from -o's file name, else {default})"
OUTPUT_HELP = "write the output here instead of stdout"


def add_output_arguments(p, formats=None, default: str = "table", guess: bool = False, extra: str = "",
                         output: bool = True) -> None:
    """-f/--format (``formats``, default profiler.render.FORMATS) and -o/--output FILE, the same in every
    command that has them. ``guess``: without -f the format follows -o's suffix (report.html → html), which
    leaves -f's default None; ``extra``: more help after -f's (e.g. an extra format)."""
    from profiler.render import FORMATS
    p.add_argument("-f", "--format", choices=formats or FORMATS, default=None if guess else default,
                   help=(GUESS_HELP if guess else FORMAT_HELP).format(default=default) + extra)
    if output:
        p.add_argument("-o", "--output", type=Path, metavar="FILE", help=OUTPUT_HELP)


def progress_printer():
    """Progress lines on a terminal; nothing when stderr is not one (CI logs, pipes)."""
    if sys.stderr.isatty():
        return lambda msg: print(f"kprof: {msg}", file=sys.stderr)
    return None


def add_whole_workload_arguments(p) -> None:
    p.add_argument("--whole-workload", metavar="TRACE", help="show the footprints alongside a whole-workload "
                   "ftrace (a trace file, e.g. ELISA's, or a saved footprint.json / bundle of one)")
    p.add_argument("--whole-arch", metavar="ARCH", help="architecture of the whole-workload trace (arm for a "
                   "32-bit Raspberry Pi OS); default: what kprof's recording wrote next to it")
    p.add_argument("--whole-skip", metavar="DUR", help="leave out the first DUR of the whole-workload trace")
    p.add_argument("--whole-discard-tail", metavar="DUR", help="leave out the last DUR of the whole-workload trace "
                   "(ELISA: 5m); default: what kprof's recording asked for")


def whole_workload(args):
    """The whole-workload footprint the options name (--whole-workload and its settings) and the warnings
    that go with it (prefixed for a report), or (None, [])."""
    if not args.whole_workload:
        return None, []
    from profiler.alongside import load_whole_workload
    whole, warnings = load_whole_workload(args.whole_workload, arch=args.whole_arch, skip=args.whole_skip,
                                          discard_tail=args.whole_discard_tail)
    return whole, [f"whole workload: {w}" for w in warnings]
