"""One module per kprof subcommand: add_arguments(parser) and main(args) -> exit status."""
import sys


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
