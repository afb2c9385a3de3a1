"""Whole-workload ftrace: record one (kprof ftrace record) or analyse one recorded elsewhere, e.g. the
all-events trace ELISA took on a Raspberry Pi (kprof ftrace analyze).

  kprof ftrace record --duration 30m --events all -o trace.txt          the whole system, ELISA's way
  kprof ftrace record -o trace.txt -- oref0-determine-basal …            one command and its children
  kprof ftrace analyze trace.txt --arch arm --discard-tail 5m            their file: 32-bit Raspberry Pi OS
  kprof ftrace analyze trace.txt --alongside kprof-results/*             next to per-command results

ftrace's raw_syscalls lines carry numbers, not names, and no ABI: --arch says which kernel table reads them
(a kprof recording says it itself). A 32-bit task on a 64-bit kernel reports 32-bit numbers: name such
tasks with --task-arch COMM=arm64-compat (or PID=ARCH). See docs/ftrace.md."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from profiler.commands.pipeline import ReportCommand
from profiler.render.ftrace_report import fmt_duration as _fmt_s
from profiler.wholetrace import ausyscall_rows, check_arch_source, resolve_trace_settings


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="ftrace_command", metavar="{analyze,record}")
    sub.required = True
    a = sub.add_parser("analyze", help="analyse ftrace text: syscalls, subsystems, ioctls, tasks, event groups",
                       description="Analyse ftrace text (the trace file, trace_pipe output, or trace-cmd report "
                       "output; plain, .gz or .xz): per syscall and subsystem, per task (comm-pid), ioctl requests "
                       "decoded from the raw arguments, and event groups (irq_*, sched_* …) when other events are "
                       "present.", formatter_class=argparse.RawDescriptionHelpFormatter)
    ANALYZE.add_arguments(a)

    r = sub.add_parser("record", help="record ftrace in kprof's own tracefs instance (root)",
                       description="Record ftrace into a file in kprof's own tracefs instance, never the global "
                       "buffer; the tracing state is restored afterwards (also after Ctrl-C or an error) and checked "
                       "file by file. Without a command the whole system is traced for --duration; with one, the "
                       "command and its children until it ends (--duration: time limit).",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--duration", metavar="DUR", help="how long (e.g. 30m; default without a command: 30m; with "
                   "one: until it ends)")
    r.add_argument("--events", default="syscalls", metavar="syscalls|all|LIST",
                   help="syscalls (raw_syscalls + process fork/exec, default), all (every event, as ELISA did), or "
                   "a comma list of systems and system:event names")
    r.add_argument("--discard-tail", metavar="DUR", help="record everything, but note that analysis should leave "
                   "out the last DUR (ELISA: 5m); ftrace analyze applies it")
    r.add_argument("-o", "--output", type=Path, metavar="FILE", help="trace file (default ./kprof-ftrace-TIME.txt)")
    r.add_argument("--buffer-kb", type=int, default=4096, metavar="KB", help="ring buffer per CPU (default 4096)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    r.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="command to trace, after --")
    r.set_defaults(ftrace_func=record_main)


def main(args) -> int:
    return args.ftrace_func(args)


# ----------------------------------------------------------------------------- analyze

class FtraceAnalyze(ReportCommand):
    def add_input_arguments(self, a) -> None:
        a.add_argument("traces", nargs="+", type=Path, metavar="TRACE", help="ftrace text file(s); several are "
                       "counted together, the time window applies to each")
        a.add_argument("--arch", help="ABI of the syscall numbers: x86_64, i386, arm, aarch64, riscv64, arm64-compat "
                       "(required for a trace kprof did not record)")
        a.add_argument("--task-arch", action="append", default=[], metavar="WHO=ARCH",
                       help="ABI of some tasks' numbers (PID=ARCH or COMM=ARCH), for 32-bit tasks on a 64-bit "
                       "kernel; repeatable")
        a.add_argument("--syscall-table", type=Path, metavar="FILE", help="an 'ausyscall --dump' file: shown "
                       "against the kernel tables, every number where they disagree listed; names always come from "
                       "the kernel tables")
        a.add_argument("--skip", metavar="DUR", help="leave out the first DUR of each trace (e.g. 30s)")
        a.add_argument("--discard-tail", metavar="DUR", help="leave out the last DUR of each trace (ELISA: 5m); "
                       "default: what the recording asked for")

    def add_arguments(self, a) -> None:
        super().add_arguments(a)
        a.add_argument("--footprint", type=Path, metavar="OUT", help="also save the footprint as JSON (with "
                       "several ABIs in the trace, one file per extra ABI: OUT with -ABI before .json)")
        a.add_argument("--alongside", nargs="+", type=Path, metavar="RESULT", help="result bundles or "
                       "footprint.json files of scenarios: show them next to this whole workload, and what no "
                       "scenario explains")
        a.add_argument("--jobs", type=int, metavar="N", help="worker processes for large plain files (default: up "
                       "to 4, one per CPU)")
        a.add_argument("--limit", type=int, default=50, metavar="N", help="rows in the task and event tables "
                       "(default 50)")
        a.set_defaults(ftrace_func=self.main)

    def validate(self, args) -> None:
        from profiler.errors import check_input
        for t in args.traces:  # a device such as /dev/zero never ends; a pipe is fine
            check_input(t, "an ftrace text file", stream_ok=True)

    def read(self, args):
        """(the analysis, the settings it was read with, the ausyscall comparison, the scenarios beside it)."""
        from profiler.parse.ftrace_text import analyse_trace

        st = resolve_trace_settings(args.traces, args.arch, args.skip, args.discard_tail, args.task_arch)
        res = analyse_trace(args.traces, st["arch"], st["task_arch"], st["skip"], st["discard_tail"],
                            jobs=args.jobs, source={"traces": [str(t) for t in args.traces]}, root_pid=st["root_pid"])
        check_arch_source(st, res)
        ausyscall = None
        if args.syscall_table:
            used = {}
            for fp in res.footprints.values():
                for name, s in fp.syscalls.items():
                    nr = fp.syscall_info(name).number
                    if nr is not None:
                        used[nr] = used.get(nr, 0) + s.calls
            ausyscall = (args.syscall_table, *ausyscall_rows(args.syscall_table, res.arch, used))
        alongside = None
        if args.alongside:
            from profiler.alongside import load_footprints
            alongside = load_footprints(args.alongside)
        return res, st, ausyscall, alongside

    def build(self, args, model):
        from profiler.render.ftrace_report import ftrace_report
        res, st, ausyscall, alongside = model
        return ftrace_report(res, args.traces, st, args.limit, ausyscall, alongside)

    def save(self, args, model) -> None:
        res = model[0]
        if args.footprint:
            for i, (abi, fp) in enumerate(res.footprints.items()):
                out = args.footprint if i == 0 else args.footprint.with_name(
                    f"{args.footprint.stem}-{abi}{args.footprint.suffix or '.json'}")
                fp.save(out)
                if i:
                    print(f"kprof: {abi} tasks' footprint: {out}", file=sys.stderr)


ANALYZE = FtraceAnalyze()


# ----------------------------------------------------------------------------- record

def record_main(args) -> int:
    import datetime
    import time

    from profiler.errors import KprofError
    from profiler.parse.ftrace_text import parse_duration
    from profiler.record.ftrace import record_ftrace

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    duration = parse_duration(args.duration, "--duration")
    if duration is None and not command:
        duration = 1800.0
    if duration is not None and duration <= 0:
        raise KprofError("--duration must be more than 0")
    if args.buffer_kb < 64:
        raise KprofError("--buffer-kb: at least 64")
    out = args.output or Path(f"kprof-ftrace-{datetime.datetime.now():%Y%m%d-%H%M%S}.txt")
    tty = sys.stderr.isatty() and not args.quiet

    def progress(elapsed, limit, written, lost):
        if not tty:
            return
        left = f", {_fmt_s(max(0.0, limit - elapsed))} left" if limit else ""
        sys.stderr.write(f"\rkprof: recording {_fmt_s(elapsed)}{left}, {written / 1e6:.1f} MB, lost {lost}   ")
        sys.stderr.flush()

    if not args.quiet:
        what = " ".join(command) if command else f"the whole system for {_fmt_s(duration)}"
        print(f"kprof: tracing {what} into {out} (Ctrl-C stops and keeps what was captured)", file=sys.stderr)
    started = time.monotonic()
    rec = record_ftrace(out, events=args.events, duration=duration, command=command or None,
                        discard_tail=parse_duration(args.discard_tail, "--discard-tail"), buffer_kb=args.buffer_kb,
                        progress=progress)
    if tty:
        sys.stderr.write("\n")
    meta = rec.meta
    for w in rec.warnings:
        print(f"kprof: warning: {w}", file=sys.stderr)
    end = rec.exit
    how = "" if end is None else (f", command exit {end['exit']}" if "exit" in end else f", command killed by {end['signal']}")
    print(f"kprof: {out}: {meta.get('bytes', 0) / 1e6:.1f} MB in {_fmt_s(time.monotonic() - started)}{how}"
          f"{', interrupted' if rec.interrupted else ''}{', time limit reached' if rec.timed_out else ''}; "
          f"tracing state {'restored' if meta.get('tracing_state_restored') else 'NOT restored'}; "
          f"lost events: {sum(meta.get('lost_events', {}).values())}", file=sys.stderr)
    print(f"kprof: analyse with: kprof ftrace analyze {out}", file=sys.stderr)
    if rec.interrupted:
        return 128 + (meta.get("signal") or 2)  # 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
    if not meta.get("tracing_state_restored"):
        return 2
    if end and end.get("exit", 1) != 0:
        return 1
    return 0
