"""Analyse a strace log recorded elsewhere, e.g. on a rig, with the same report as kprof run.

Record it with the options kprof uses itself (ioctl requests must be raw numbers):

    strace -f -yy -ttt -T -X raw -C -o trace.log -- COMMAND ARGS…

Logs recorded with fewer options still work (no timestamps, no -yy paths, no -T times), with what they
lack left out of the report. Use --arch for a log from another architecture (a Raspberry Pi running
32-bit Raspberry Pi OS is arm; 64-bit is aarch64)."""
from __future__ import annotations

import sys
from pathlib import Path

from profiler.render import FORMATS


def add_arguments(p) -> None:
    p.add_argument("log", type=Path, help="strace log file")
    p.add_argument("--arch", help="architecture the log was recorded on (x86_64, i386, arm, aarch64, riscv64, "
                   "arm64-compat); default: this machine's")
    p.add_argument("-f", "--format", choices=FORMATS, default="table", help="report format (default: table)")
    p.add_argument("--footprint", type=Path, metavar="FILE", help="also save the footprint as JSON here")


def main(args) -> int:
    from profiler.commands.common import footprint_facts, footprint_warnings
    from profiler.errors import KprofError
    from profiler.kernel import syscalls
    from profiler.render.report import Report, footprint_sections, render
    from profiler.analysis import analyse_log

    arch = syscalls.normalize_arch(args.arch) if args.arch else syscalls.host_arch()
    if args.log.is_file():
        with open(args.log, "rb") as f:
            head = f.read(4096)
        if b"\0" in head:
            raise KprofError(f"{args.log}: binary file, not a strace text log")
    result = analyse_log(args.log, arch, source={"kind": "strace", "log": str(args.log)})
    fp, problems, mismatches = result.footprint, result.problems, result.mismatches
    report = Report(f"kprof analyze: {args.log}")
    report.facts += footprint_facts(fp)
    report.warnings += problems + footprint_warnings(fp)
    if mismatches:
        report.warnings.append("counts differ from the log's own strace -c summary: " + "; ".join(mismatches))
    report.sections = footprint_sections(fp)
    if args.footprint:
        fp.save(args.footprint)
    sys.stdout.write(render(report, args.format))
    return 0
