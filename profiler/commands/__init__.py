"""One module per kprof subcommand: add_arguments(parser) and main(args) -> exit status."""
import sys


def progress_printer():
    """Progress lines on a terminal; nothing when stderr is not one (CI logs, pipes)."""
    if sys.stderr.isatty():
        return lambda msg: print(f"kprof: {msg}", file=sys.stderr)
    return None
