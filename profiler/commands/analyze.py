"""Analyse a strace log recorded elsewhere, e.g. on a rig, with the same report as kprof run.

Record it with the options kprof uses itself (-X raw gives every ioctl request as a number):

    strace -f -yy -ttt -T -X raw -C -o trace.log -- COMMAND ARGS…

Logs recorded with other options still work (see README, "strace logs kprof reads"): what they lack is left
out of the report. A log of strace -ff (one file per process) is read from its prefix or from its files
(PREFIX.PID). Exit status: 0, or 1 when kprof's counts differ from the log's own strace -C summary (with -z/-Z
they always do). Without --arch the architecture is this machine's, unless the log's programs show another
(their loader and library paths): a Raspberry Pi running 32-bit Raspberry Pi OS is arm; 64-bit is aarch64."""
from __future__ import annotations

from pathlib import Path

from profiler.commands.pipeline import ReportCommand


def _head(path: Path, size: int = 1 << 20) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""   # analyse_logs reports it


class Analyze(ReportCommand):
    def add_input_arguments(self, p) -> None:
        p.add_argument("log", type=Path, nargs="+",
                       help="strace log file; or the files of one strace -ff run (PREFIX.PID …), or their PREFIX")
        p.add_argument("--arch", help="architecture the log was recorded on (x86_64, i386, arm, aarch64, riscv64, "
                       "arm64-compat); default: this machine's, or the one the log's programs were built for")
        p.add_argument("--footprint", type=Path, metavar="FILE", help="also save the footprint as JSON here")

    def validate(self, args) -> None:
        from profiler.analysis import log_files
        from profiler.errors import KprofError, check_input
        from profiler.kernel import syscalls

        self.given = syscalls.normalize_arch(args.arch) if args.arch else None   # a bad --arch first
        self.files = log_files(args.log)
        first = self.files[0][0]
        check_input(first, "a strace log", stream_ok=True)    # (a device such as /dev/ptmx: read, it never ends)
        self.head = _head(first) if Path(first).is_file() else b""   # a pipe is read once: by the analysis
        if b"\0" in self.head[:4096]:
            raise KprofError(f"{self.files[0][0]}: binary file, not a strace text log")

    def read(self, args):
        from profiler.analysis import analyse_logs, arch_evidence
        from profiler.kernel import syscalls

        files, given = self.files, self.given
        self.warnings, self.abi_facts = [], []
        if given:
            arch, self.how = given, "given with --arch"
        else:
            arch, self.how = syscalls.host_arch(), "this machine's"
            evidence = arch_evidence(self.head.decode("utf-8", "replace"))
            if evidence and arch not in evidence:
                arch = next(iter(evidence))
                self.how = f"detected from the log: {evidence[arch]}"
            compat = syscalls.COMPAT.get(arch)
            if compat in evidence:   # a 32-bit program on a 64-bit kernel: its calls are its own ABI's rows
                self.abi_facts.append((f"{compat} programs", f"built for {compat} ({evidence[compat]}): their calls "
                                       f"are counted with the {compat} tables, as rows 'NAME ({compat})'"))
            others = {a: e for a, e in evidence.items() if a not in (arch, compat)}
            if others:
                self.warnings.append(f"the log also shows programs built for {', '.join(others)} "
                                     f"({', '.join(others.values())}); counted with the {arch} tables (pass --arch "
                                     f"to choose)")
        source = {"kind": "strace", "log": str(files[0][0]) if len(files) == 1 else [str(p) for p, _ in files]}
        return analyse_logs(files, arch, source=source)

    def build(self, args, result):
        from profiler.analysis import never_returned, results_unread
        from profiler.render.model import Report
        from profiler.render.sections import footprint_facts, footprint_sections, footprint_warnings

        files = self.files
        fp, problems, mismatches = result.footprint, result.problems, result.mismatches
        names = " ".join(str(p) for p, _ in files) if len(files) <= 3 else f"{files[0][0]} … ({len(files)} files)"
        report = Report(f"kprof analyze: {names}")
        report.facts += footprint_facts(fp)
        report.facts[0] = ("arch", f"{fp.arch} ({self.how})")
        report.facts[1:1] = self.abi_facts
        report.warnings += self.warnings + problems + footprint_warnings(fp)
        if fp.root_pid is not None and fp.exit is None:
            report.warnings.append(
                f"the log holds no exit of its first process (pid {fp.root_pid}: no '+++ exited' or '+++ killed' "
                f"line): strace stopped before the command ended (it was killed, or died: strace -k does when a "
                f"task dies while it unwinds the stack), a strace -p attach detached, or the log was recorded "
                f"with -qq; the footprint holds only the calls the log shows")
        if mismatches:
            report.warnings.append("counts differ from the log's own strace -c summary: " + "; ".join(mismatches))
        check = result.cross_check()
        if mismatches is None:
            check = "none: the log has no strace -c/-C summary" + (
                " (strace -ff cannot write one)" if len(files) > 1 or files[0][1] else "")
        report.facts.append(("cross-check", check))
        report.data["cross_check"] = {"summary": mismatches is not None, "ok": mismatches is None or not mismatches,
                                      "mismatches": mismatches or [],
                                      "columns": sorted(result.summary.columns) if result.summary else [],
                                      "never_returned": never_returned(fp),
                                      "unread": results_unread(fp)}
        report.sections = footprint_sections(fp)
        return report

    def save(self, args, result) -> None:
        if args.footprint:
            result.footprint.save(args.footprint)

    def status(self, args, result, report) -> int:
        return 1 if result.mismatches else 0


COMMAND = Analyze()
add_arguments, main = COMMAND.add_arguments, COMMAND.main
