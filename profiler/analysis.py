"""strace log lines → footprint, checked against strace's own summary of the same log.

Used both after the fact (``kprof analyze``) and live, fed the lines of a log
as strace writes them (``kprof run``): the parser and the footprint builder are
streaming, so memory stays flat and the work overlaps the recording.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from profiler.errors import KprofError, check_input, file_error
from profiler.footprint import Footprint, FootprintBuilder
from profiler.kernel import syscalls
from profiler.parse.strace_log import StraceLogParser, StraceSummary

RECORD_HINT = "strace -f -yy -ttt -T -X raw -C -o LOG -- COMMAND"


@dataclass
class Analysis:
    footprint: Footprint
    problems: list[str] = field(default_factory=list)     # unparsed lines, with where
    mismatches: list[str] | None = None                   # vs strace's -C summary; None: the log has none


class StraceAnalysis:
    def __init__(self, arch: str, path_aliases: dict[str, str] | None = None, source: dict | None = None,
                 name: str = "trace.log"):
        self.arch = syscalls.normalize_arch(arch)
        self.name = name
        self.parser = StraceLogParser(lambda n: syscalls.canonical_name(self.arch, n))
        self.builder = FootprintBuilder(self.arch, path_aliases, source)

    def feed(self, lines) -> "StraceAnalysis":
        add = self.builder.add
        for ev in self.parser.feed(lines):
            add(ev)
        return self

    def finish(self, require_events: bool = True) -> Analysis:
        for ev in self.parser.finish():
            self.builder.add(ev)
        stats = self.parser.stats
        if require_events and stats.events == 0:
            raise KprofError(f"{self.name}: no strace events found: empty, truncated at the start, or not a "
                             f"strace log (record with: {RECORD_HINT})")
        problems = [f"{self.name}:{n}: unparsed line: {text}" for n, text in stats.first_unparsed]
        if stats.unparsed > len(problems):
            problems.append(f"… {stats.unparsed} unparsed lines in all")
        fp = self.builder.finish()
        summary = self.parser.summary
        return Analysis(fp, problems, None if summary is None else summary_mismatches(fp, summary))


def analyse_log(path, arch: str, path_aliases=None, source=None) -> Analysis:
    check_input(path, "a strace log", stream_ok=True)
    analysis = StraceAnalysis(arch, path_aliases, source, name=str(path))
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            analysis.feed(f)
    except OSError as e:
        raise file_error(path, e, "a strace log") from None
    return analysis.finish()


def summary_mismatches(fp: Footprint, summary: StraceSummary) -> list[str]:
    """Where kprof's per-syscall counts differ from strace's own -c table.

    strace counts a call when it returns, so calls that never return (exit,
    exit_group, a call cut short by a kill) are compared without them.
    """
    out = []
    mine = {n: (s.calls - s.unfinished, sum(s.errors.values())) for n, s in fp.syscalls.items()}
    theirs = {syscalls.canonical_name(fp.arch, n): (c, summary.errors.get(n, 0)) for n, c in summary.calls.items()}
    for name in sorted(set(mine) | set(theirs)):
        a, b = mine.get(name, (0, 0)), theirs.get(name, (0, 0))
        if a != b:
            out.append(f"{name}: kprof {a[0]} calls/{a[1]} errors, strace -c {b[0]}/{b[1]}")
    return out
