"""strace log lines → footprint, checked against strace's own summary of the same log.

Used both after the fact (``kprof analyze``) and live, fed the lines of a log
as strace writes them (``kprof run``): the parser and the footprint builder are
streaming, so memory stays flat and the work overlaps the recording. The bpf
backend's aggregates (``record.bpf``) are read at the end (``BpfAnalysis``).
"""
from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path

from profiler.errors import KprofError, check_input, file_error
from profiler.footprint import Footprint, FootprintBuilder
from profiler.kernel import syscalls
from profiler.kernel.errnos import MAX_ERRNO
from profiler.parse.strace_log import StraceLogParser, StraceSummary

RECORD_HINT = "strace -f -yy -ttt -T -X raw -C -o LOG -- COMMAND"


@dataclass
class Analysis:
    footprint: Footprint
    problems: list[str] = field(default_factory=list)     # unparsed lines, with where
    mismatches: list[str] | None = None                   # vs strace's -C summary; None: the log has none
    summary: StraceSummary | None = None                  # that summary (its columns: what was compared)
    sequences: dict | None = None                         # pid → ProcessSequence, when asked for (sequences.py)

    def cross_check(self, against: str = "the log's own strace -c summary") -> str:
        return cross_check_text(self.footprint, self.summary, self.mismatches, against)


class StraceAnalysis:
    """``sequences``: also build every process's call sequence from the same events (a fault scenario's report
    draws them: profiler/sequences.py), so that the log is not read a second time for them."""

    def __init__(self, arch: str, path_aliases: dict[str, str] | None = None, source: dict | None = None,
                 name: str = "trace.log", sequences: bool = False):
        self.arch = syscalls.normalize_arch(arch)
        self.name = name
        self.sequences = None
        if sequences:
            from profiler.sequences import SequenceBuilder
            self.sequences = SequenceBuilder(self.arch)
        self.parser = self._new_parser(0)
        self.builder = FootprintBuilder(self.arch, path_aliases, source)
        self._done: list[tuple[str, StraceLogParser]] = []   # -ff: the files already read

    def _new_parser(self, pid: int) -> StraceLogParser:
        return StraceLogParser(lambda n: syscalls.canonical_name(self.arch, n), pid=pid, arch=self.arch,
                               paths=self.sequences is not None)     # a sequence names every call's path

    def _add(self, events) -> None:
        """Each event to the footprint builder, and to the sequence builder when there is one (the loop chosen
        once: this is the hot path of a live analysis)."""
        add = self.builder.add
        if self.sequences is None:
            for ev in events:
                add(ev)
            return
        also = self.sequences.add
        for ev in events:
            add(ev)
            also(ev)

    def next_file(self, name: str, pid: int) -> "StraceAnalysis":
        """The next file of a -ff run (one file per process, no pid on its lines: ``pid`` is from its name)."""
        self._add(self.parser.finish())
        if self.parser.stats.lines:
            self._done.append((self.name, self.parser))
        self.name, self.parser = name, self._new_parser(pid)
        return self

    def feed(self, lines) -> "StraceAnalysis":
        self._add(self.parser.feed(lines))
        return self

    def finish(self, require_events: bool = True) -> Analysis:
        self._add(self.parser.finish())
        parsers = self._done + [(self.name, self.parser)]
        events = sum(p.stats.events for _, p in parsers)
        summaries = [p.summary for _, p in parsers if p.summary is not None]
        if require_events and events == 0:
            if summaries:
                raise KprofError(f"{self.name}: the log holds only strace's summary table (recorded with -c, "
                                 f"--summary-only): no calls to profile; record with -C (the calls, then the "
                                 f"summary) instead: {RECORD_HINT}")
            detached = [n for _, p in parsers for n in p.stats.detached]
            if detached:
                raise KprofError(
                    f"{self.name}: the log holds no call that completed, only {len(detached)} strace detached "
                    f"from while it ran ({', '.join(sorted(set(detached)))} <detached ...>): a strace -p attach "
                    f"that ended while the process waited. Nothing to profile: attach for longer (until the "
                    f"work is done), or record the command from its start: {RECORD_HINT}")
            raise KprofError(f"{self.name}: no strace events found: empty, truncated at the start, or not a "
                             f"strace log (record with: {RECORD_HINT})")
        problems = []
        for name, p in parsers:
            problems += [f"{name}:{n}: unparsed line: {text}" for n, text in p.stats.first_unparsed]
            if p.stats.unparsed > len(p.stats.first_unparsed):
                problems.append(f"{name}: {p.stats.unparsed} unparsed lines in all")
        fp = self.builder.finish()
        if fp.syscalls and all(st.unfinished == st.calls for st in fp.syscalls.values()):
            problems.append(f"{self.name}: no call in the log returned (each is <unfinished ...> at its end): "
                            f"a strace -p attach, or a log cut short, taken while the process waited; the "
                            f"footprint is only the calls it was waiting in")
        summary = merge_summaries(summaries) if summaries else None
        return Analysis(fp, problems, None if summary is None else summary_mismatches(fp, summary), summary,
                        self.sequences.finish() if self.sequences is not None else None)


class BpfAnalysis:
    """The bpf counterpart of StraceAnalysis: nothing to feed, the aggregates (``record.bpf``'s counted
    events) are read at the end."""

    def __init__(self, arch: str, path_aliases: dict[str, str] | None = None, source: dict | None = None,
                 name: str | None = None):
        from profiler.record import bpf
        self.arch = syscalls.normalize_arch(arch)
        self.aliases = path_aliases
        self.source = source
        self.name = name or bpf.TRACE_NAME

    def feed(self, lines) -> "BpfAnalysis":
        return self

    def finish(self, require_events: bool = True) -> Analysis:
        import json

        from profiler.record import bpf
        builder = FootprintBuilder(self.arch, self.aliases, self.source)
        problems = []
        try:
            with open(self.name) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            if require_events:
                raise KprofError(f"{self.name}: cannot read the bpf aggregates: {e}") from None
            return Analysis(builder.finish(), [f"{self.name}: no bpf aggregates ({e})"], None)
        if doc.get("format") != bpf.FORMAT:
            raise KprofError(f"{self.name}: not kprof bpf aggregates (no \"format\": \"{bpf.FORMAT}\")")
        builder.add_all(bpf.events(doc))
        # a full map dropped counts: the footprint is short, which fails the run as counts strace's own summary
        # disagrees with do (None: nothing to check against, as for every complete bpf run)
        full = [f"bpf map @{name} reached {bpf.MAP_KEYS} entries: calls are missing from the counts"
                for name in doc.get("full_maps", [])]
        compat = sorted(f[0] for f, _ in doc.get("maps", {}).get("compat", []))
        if compat:
            full.append(f"{len(compat)} task{'s' if len(compat) > 1 else ''} (pid {', '.join(map(str, compat[:5]))}) "
                        f"made calls through the 32-bit ABI, whose numbers the bpf backend reads as {self.arch}'s: "
                        f"their rows are wrong (run with --backend strace or ptrace)")
        return Analysis(builder.finish(), problems, full or None)


def merge_summaries(summaries: list[StraceSummary]) -> StraceSummary:
    if len(summaries) == 1:
        return summaries[0]
    out = StraceSummary()
    for s in summaries:
        out.tables += s.tables
        out.columns &= s.columns
        for n, c in s.calls.items():
            out.calls[n] = out.calls.get(n, 0) + c
            out.errors[n] = out.errors.get(n, 0) + s.errors.get(n, 0)
    return out


_FF_NAME = re.compile(r"(.*)\.(\d+)")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as e:     # a directory this user may not enter: Path.exists raises PermissionError
        raise file_error(path, e, "a strace log") from None


def log_files(paths: list[Path]) -> list[tuple[Path, int]]:
    """The files of one run, each with the pid of a file of ``strace -ff -o PREFIX`` (0: lines carry pids).

    One existing file is read as it is. Several files, or a PREFIX whose files are PREFIX.PID, are one -ff run.
    """
    if len(paths) == 1 and not _exists(paths[0]):
        prefix = paths[0]
        found = sorted((p for p in prefix.parent.glob(glob.escape(prefix.name) + ".*")
                        if _FF_NAME.fullmatch(p.name) and p.name.rsplit(".", 1)[0] == prefix.name),
                       key=lambda p: int(p.name.rsplit(".", 1)[1]))
        if not found:
            raise KprofError(f"{prefix}: no such file (nor files {prefix}.PID of a strace -ff run)")
        paths = found
    elif len(paths) == 1:   # one file; one of a -ff run names its pid
        m = _FF_NAME.fullmatch(paths[0].name)
        return [(paths[0], int(m.group(2)) if m else 0)]
    out = []
    for p in paths:
        m = _FF_NAME.fullmatch(p.name)
        if m is None:
            raise KprofError(f"{p}: several logs are read as the files of one strace -ff run, named PREFIX.PID; "
                             f"this name has no .PID (analyse separate runs one at a time)")
        out.append((p, int(m.group(2))))
    return sorted(out, key=lambda fp: fp[1])


def analyse_log(path, arch: str, path_aliases=None, source=None) -> Analysis:
    return analyse_logs([(Path(path), 0)], arch, path_aliases, source)


def analyse_logs(files: list[tuple[Path, int]], arch: str, path_aliases=None, source=None) -> Analysis:
    for path, _ in files:  # a device such as /dev/zero never ends (a pipe is fine)
        check_input(path, "a strace log", stream_ok=True)
    analysis = StraceAnalysis(arch, path_aliases, source, name=str(files[0][0]))
    for i, (path, pid) in enumerate(files):
        if i or pid:
            analysis.next_file(str(path), pid)
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                analysis.feed(f)
        except OSError as e:
            raise file_error(path, e, "a strace log") from None
    return analysis.finish()


# Paths a log shows when programs start (the dynamic loader and the multiarch library directory): the arch
# the programs were built for. Debian/Ubuntu multiarch triplets and glibc/musl loader names.
_ARCH_EVIDENCE = (
    ("aarch64", re.compile(r"/lib/aarch64-linux-gnu/|ld-linux-aarch64\.so|ld-musl-aarch64\.so")),
    ("arm", re.compile(r"/lib/arm-linux-gnueabi(?:hf)?/|ld-linux-armhf\.so|ld-linux\.so\.3|ld-musl-armhf?\.so")),
    ("riscv64", re.compile(r"/lib/riscv64-linux-gnu/|ld-linux-riscv64|ld-musl-riscv64\.so")),
    ("i386", re.compile(r"/lib/i386-linux-gnu/|/usr/lib32/|ld-linux\.so\.2|ld-musl-i386\.so")),
    ("x86_64", re.compile(r"/lib/x86_64-linux-gnu/|ld-linux-x86-64\.so|ld-musl-x86_64\.so")),
)


def arch_evidence(text: str) -> dict[str, str]:
    """arch → the first path in ``text`` that shows a program built for it, in order of appearance."""
    found = []
    for arch, pattern in _ARCH_EVIDENCE:
        m = pattern.search(text)
        if m:
            found.append((m.start(), arch, m.group(0)))
    return {arch: ev for _, arch, ev in sorted(found)}


# calls that end the task: they never return by design, and strace -c never counts them
_NO_RETURN = {"exit", "exit_group"}


def summary_mismatches(fp: Footprint, summary: StraceSummary) -> list[str]:
    """Where kprof's per-syscall counts differ from strace's own -c table, in the columns the table has.

    strace counts a call when it returns, so calls that never return (exit,
    exit_group, a call cut short by a kill or by another thread's execve: ``= ?``)
    are compared without them (``never_returned`` names them). The log prints
    such a call as ``= ?`` with no errno, yet strace's table sometimes counts one
    of them, as a call, an error or both, from what the kernel reported when the
    thread died (seen with Go programs whose threads wait in futex at exit: 1 call
    and/or 1 error more among ~120 ``= ?`` futex calls). So strace may have more
    calls and errors than the log shows, each by at most the number of that
    syscall's ``= ?`` calls. strace's table also counts as an error a call whose result it printed as an
    errno no kernel returns (past MAX_ERRNO: a task killed at the call's exit stop, see parse_result): kprof
    counts that call as made, its result not read (``unread``, with ``= ? <unavailable>``), so strace may
    have at most that many more errors. When the differences are exactly the failed (or the
    successful) calls, the log was recorded with -z (-Z): the first line says so.
    Without a calls column (``-U``) the syscalls strace lists are compared with
    those kprof saw return.
    """
    out = []
    cols = summary.columns
    mine = {n: (s.calls - s.unfinished, sum(s.errors.values())) for n, s in fp.syscalls.items()}
    theirs: dict[str, tuple[int, int]] = {}
    for n, c in summary.calls.items():
        name = summary_row_key(fp.arch, n)
        old = theirs.get(name, (0, 0))
        theirs[name] = (old[0] + c, old[1] + summary.errors.get(n, 0))
    for name in sorted(set(mine) | set(theirs)):
        a, b = mine.get(name, (0, 0)), theirs.get(name, (0, 0))
        row = fp.syscalls.get(name)
        unknown, unread = (row.unfinished, row.unread) if row else (0, 0)
        if (a != b or "calls" not in cols) and ("calls" not in cols or 0 <= b[0] - a[0] <= unknown) \
                and ("errors" not in cols or 0 <= b[1] - a[1] <= unknown + unread) \
                and ("calls" in cols or (a[0] + unknown > 0) == (name in theirs)):
            continue       # (without a calls column: strace lists a call that returned, or one cut short)
        if "calls" in cols and "errors" in cols:
            if a != b:
                out.append(f"{name}: kprof {a[0]} calls/{a[1]} errors, strace -c {b[0]}/{b[1]}")
        elif "calls" in cols:
            if a[0] != b[0]:
                out.append(f"{name}: kprof {a[0]} calls, strace -c {b[0]} (its table has no errors column)")
        else:
            if "errors" in cols and a[1] != b[1]:
                out.append(f"{name}: kprof {a[1]} errors, strace -c {b[1]}")
            if (a[0] > 0) != (name in theirs):
                out.append(f"{name}: kprof {a[0]} calls that returned, strace -c "
                           + ("lists it" if name in theirs else "does not list it"))
    if out and cols == {"calls", "errors"}:
        calls, errors = (sum(v[i] for v in mine.values()) for i in (0, 1))
        their_calls, their_errors = (sum(v[i] for v in theirs.values()) for i in (0, 1))
        lost = sum(s.unread for s in fp.syscalls.values())   # strace counts these as errors; -Z shows them
        if errors == 0 and their_errors > lost:
            out.insert(0, FILTERED.format(opt="-z (--successful-only)", shown="succeeded"))
        elif calls - lost == errors and their_calls > their_errors:
            out.insert(0, FILTERED.format(opt="-Z (--failed-only)", shown="failed"))
    return out


_MODE_ROW = re.compile(r"(.+) \((\d+) bit mode\)")


def summary_row_key(arch: str, row: str) -> str:
    """A row of strace's summary → the footprint row it counts: ``getpid (32 bit mode)`` on x86_64 is
    ``getpid (i386)``, the 32-bit ABI's call (one of its own tables: strace -C's "for 32 bit mode")."""
    m = _MODE_ROW.fullmatch(row)
    compat = syscalls.COMPAT.get(arch)
    if m is None or compat is None:
        return syscalls.canonical_name(arch, m.group(1) if m else row)
    return syscalls.abi_key(syscalls.canonical_name(arch, m.group(1)), compat)


def never_returned(fp: Footprint) -> dict[str, int]:
    """Calls kprof counted that never returned (``= ?``, cut by a kill or an execve), other than exit/exit_group:
    strace -c does not count them, so the cross-check compares without them and must say so."""
    return {n: s.unfinished for n, s in sorted(fp.syscalls.items())
            if s.unfinished and syscalls.split_abi_key(n)[0] not in _NO_RETURN}


def results_unread(fp: Footprint) -> dict[str, int]:
    """Calls kprof counted as made whose result strace could not read (``= ? <unavailable>``, an errno past
    MAX_ERRNO): strace -c may count each as an error, so the cross-check allows that many more and must say so."""
    return {n: s.unread for n, s in sorted(fp.syscalls.items()) if s.unread}


def cross_check_text(fp: Footprint, summary: StraceSummary | None, mismatches: list[str] | None,
                     against: str = "the log's own strace -c summary") -> str:
    """One sentence: what the cross-check compared, and its outcome."""
    if mismatches is None:
        return f"none: {against} is missing"
    if mismatches:
        return f"FAILED: counts differ from {against}"
    cols = summary.columns
    if cols == {"calls", "errors"}:
        what, caveat = "per-syscall calls and errors equal", ""
    elif "calls" in cols:
        what, caveat = "per-syscall calls equal", " (its table has no errors column: errors not checked)"
    elif "errors" in cols:
        what, caveat = ("per-syscall errors and the syscalls called equal",
                        " (its table has no calls column: call counts not checked)")
    else:
        what, caveat = "the syscalls called equal", " (its table has no calls or errors column: counts not checked)"
    text = f"{what} {against}{caveat}"
    cut = never_returned(fp)
    if cut:
        names = ", ".join(f"{c} {name}" for name, c in cut.items())
        text += (f", except {names} that never returned (= ?, or killed before a result), which strace -c does "
                 "not count")
    unread = results_unread(fp)
    if unread:
        names = ", ".join(f"{c} {name}" for name, c in unread.items())
        text += (f"; {names} returned in a task killed at the call's exit, the result unread (= ? <unavailable>, "
                 f"or an errno past {MAX_ERRNO}): calls without an error here, which strace -c may count as errors")
    return text


FILTERED = ("the log was recorded with {opt}: strace printed only the calls that {shown} but counted them all, "
            "so kprof's counts cannot match; record without it: " + RECORD_HINT)
