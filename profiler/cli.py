"""kprof command line: parse arguments, call a command, map errors to exit codes.

Exit codes: 0 success; 1 the run finished but something did not hold (the
command failed its scenario's expectations, a check found a regression);
2 a usage or input error (message on stderr, no traceback); 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP (handled
alike: the traced tree is killed, the partial trace kept and analysed, temporary files removed).
"""
from __future__ import annotations

import argparse
import gc
import importlib
import signal
import sys

import profiler
from profiler.errors import KprofError

# subcommand → (module in profiler.commands, one-line help)
COMMANDS = {
    "run": ("run", "run scenarios under strace and report their kernel footprint"),
    "analyze": ("analyze", "analyse a strace log recorded elsewhere (e.g. on a rig)"),
    "validate": ("validate", "check scenario files against the scenario schema"),
    "syscall": ("syscall", "look up a syscall by name or number: numbers per arch, definition, subsystem"),
    "baseline": ("baseline", "save baselines: scenarios run several times, with the range of every count"),
    "check": ("check", "rerun scenarios and compare with their baselines (exit 1 on a regression)"),
    "compare": ("compare", "compare two result bundles, footprints or baselines"),
    "ftrace": ("ftrace", "whole-workload ftrace: record one (root) or analyse one, e.g. ELISA's, next to the commands"),
    "workload": ("workload", "a whole workload (a rig's crontab) run here, recorded with ftrace, beside the scenarios"),
    "config": ("config", "the kernel configuration a footprint needs, and whether a kernel config has it"),
    "modules": ("modules", "kernel modules: loaded by the workload vs the default system, built in vs loadable"),
    "pump": ("pump", "run the emulated Medtronic pump + radio on a pty (for testing pump tools)"),
    "report": ("report", "render saved results again (table, Markdown, JSON, self-contained HTML)"),
    "new": ("new", "write a new, commented scenario skeleton"),
    "list": ("list", "list scenarios and whether they can run on this machine"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the ``argv`` about to be parsed, only the command it names (its first
    word that is not an option) is imported and given its arguments, the others keep their one-line help
    for ``kprof --help``: importing all fifteen command modules took ~10 ms of every run."""
    wanted = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    parser = argparse.ArgumentParser(
        prog="kprof", description="Per-command kernel-footprint profiler for OpenAPS: which kernel subsystems, "
        "syscalls, ioctls and devices a command uses, traced back to the kernel's own sources.",
        epilog="Exit status: 0 ok, 1 a run or check did not hold, 2 usage or input error, "
               "128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).")
    parser.add_argument("--version", action="version", version=f"kprof {profiler.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, helptext) in COMMANDS.items():
        if wanted is not None and name != wanted:
            sub.add_parser(name, help=helptext)
            continue
        mod = importlib.import_module(f"profiler.commands.{module}")
        p = sub.add_parser(name, help=helptext, description=(mod.__doc__ or helptext).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(func=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    code = _main(sys.argv[1:] if argv is None else argv)
    if argv is None:
        # kprof is about to exit: the interpreter's last garbage collections would walk every object it
        # loaded (kernel tables, footprints, reports) for nothing; frozen, they are skipped (10-30 ms a run)
        gc.freeze()
    return code


def _main(argv: list[str]) -> int:
    from profiler import signals

    parser = build_parser(argv)
    args = parser.parse_args(argv)
    signals.install()
    try:
        return args.func(args) or 0
    except KprofError as e:
        print(f"kprof: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        signals.defer()
        sig = getattr(e, "signum", signal.SIGINT)
        print(f"kprof: interrupted ({signals.name(sig)})", file=sys.stderr)
        return signals.exit_code(e)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
