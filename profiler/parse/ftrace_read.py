"""ftrace text, reading whole files: a file → one :class:`~profiler.parse.ftrace_chunks.Part`, streamed
chunk by chunk, large plain files split between worker processes and their Parts merged in file order;
the time window (--skip/--discard-tail) from the file's edge timestamps; a file that is not ftrace text
diagnosed.
"""
from __future__ import annotations

import os
import re

from profiler.errors import KprofError
from profiler.parse import ftrace_format
from profiler.parse.ftrace_chunks import Part, _Pass
from profiler.parse.ftrace_format import _TS, TaskArch, Window, _read, compression_of, open_trace

PARALLEL_MIN = 48 << 20         # plain files at least this big are split between worker processes
PART_MIN = 16 << 20             # ... in pieces of at least this size, a few per worker


def _pass_stream(stream, path, task_arch: TaskArch, window: Window, limit: int | None = None) -> Part:
    """Read a stream chunk by chunk. Each chunk's whole lines are read in place (no copies); the line
    that spans two chunks is joined and read on its own."""
    p = _Pass(task_arch, window)
    carry = b""                 # the unfinished line at the end of the previous chunk
    done = 0
    while limit is None or done < limit:
        data = _read(stream, ftrace_format.CHUNK if limit is None else min(ftrace_format.CHUNK, limit - done), path)
        if not data:
            break
        done += len(data)
        nl = data.find(b"\n")
        if nl < 0:
            carry += data
            if len(carry) > 16 * ftrace_format.CHUNK:
                raise KprofError(f"{path}: no line break in {len(carry) >> 20} MiB: not a text trace")
            continue
        if data.find(b"\0", 0, 65536) >= 0 or carry.find(b"\0") >= 0:
            raise KprofError(f"{path}: binary data (NUL bytes after line {p.part.lines}), not ftrace text. A "
                             f"trace-cmd .dat file must be converted first: trace-cmd report -i {path} > trace.txt")
        line = carry + data[:nl]
        p.part.lines += 1
        p.line(line, p.part.lines)
        k = data.rfind(b"\n")
        if k > nl:
            p.chunk(data, nl, k)
        carry = data[k + 1:]
    p.last(carry, p.part.lines + 1)
    return p.part


def _worker(args) -> Part:
    path, start, end, arch, spec, window = args
    ta = TaskArch(arch, spec)
    with open(path, "rb") as f:
        f.seek(start)
        return _pass_stream(f, path, ta, window, limit=end - start)


def _split_points(path, size: int, jobs: int) -> list[int]:
    cuts = [0]
    with open(path, "rb") as f:
        for i in range(1, jobs):
            f.seek(size * i // jobs)
            f.readline()
            pos = f.tell()
            if cuts[-1] < pos < size:
                cuts.append(pos)
    cuts.append(size)
    return cuts


def default_jobs() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


def edge_timestamps(path) -> tuple[float | None, float | None]:
    """First and last event timestamps (plain files: head and tail; compressed: one extra pass)."""
    first = last = None
    if compression_of(path) is None:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(1 << 20)
            f.seek(max(0, size - (1 << 20)))
            tail = f.read()
    else:
        with open_trace(path) as f:
            head = _read(f, 1 << 20, path)
            tail = head
            while True:
                data = _read(f, ftrace_format.CHUNK, path)
                if not data:
                    break
                tail = (tail + data)[-(1 << 20):]
    m = _TS.search(head)
    first = float(m.group(1)) if m else None
    for m in _TS.finditer(tail):
        last = float(m.group(1))
    return first, last



def _merge(parts: list[Part]) -> Part:
    total = Part()
    carried: dict = {}                   # (pid, raw?) → request entered in an earlier part
    line_base = 0
    for p in parts:
        total.keys.update(p.keys)
        total.lines += p.lines
        total.outside += p.outside
        total.other.update(p.other)
        total.unparsed += p.unparsed
        total.unparsed_samples += [(n + line_base, t) for n, t in p.unparsed_samples]
        total.lost.update(p.lost)
        total.ioctl.update(p.ioctl)
        total.ioctl_err.update(p.ioctl_err)
        for pid, raw, err in p.ioctl_orphans:
            entered = carried.pop((pid, raw), None)
            if entered is None:
                total.ioctl_orphans.append((pid, raw, err))
            elif err:
                total.ioctl_err[(pid, entered[0], raw, entered[1], err)] += 1
        for k in p.ioctl_seen:
            carried.pop(k, None)
        carried.update(p.ioctl_pending)
        total.ioctl_seen |= p.ioctl_seen
        for a, b in ((total.first_raw, p.first_raw), (total.first_named, p.first_named)):
            for pid, key in b.items():
                a.setdefault(pid, key)
        for k, v in p.child_returns.items():
            total.child_returns.setdefault(k, v)
        total.last_raw.update(p.last_raw)
        total.last_named.update(p.last_named)
        for child, parent in p.parents.items():
            total.parents.setdefault(child, parent)
        total.execs += p.execs
        total.exit_status.update(p.exit_status)
        for pid, (n, w) in p.samples.items():
            s = total.samples.setdefault(pid, [0, 0])
            s[0] += n
            s[1] = max(s[1], w)
        if total.first_ts is None:
            total.first_ts = p.first_ts
        if p.last_ts is not None:
            total.last_ts = p.last_ts
        total.fast_chunks += p.fast_chunks
        total.slow_chunks += p.slow_chunks
        total.incomplete_last_line = p.incomplete_last_line or total.incomplete_last_line
        line_base += p.lines
    total.ioctl_pending = carried
    return total


def read_part(path, task_arch: TaskArch, skip: float | None = None, discard_tail: float | None = None,
              jobs: int | None = None) -> tuple[Part, tuple]:
    """One trace file → Part (all of it inside the window) and (first ts, last ts, Window)."""
    kind = compression_of(path)
    window = Window()
    first = last = None
    if skip or discard_tail:
        first, last = edge_timestamps(path)
        if first is None:
            raise KprofError(f"{path}: no timestamped ftrace lines found, so --skip/--discard-tail cannot apply "
                             f"(is it ftrace text? see docs/ftrace.md)")
        if skip:
            window.start = first + skip
        if discard_tail:
            window.end = last - discard_tail
        if window.start is not None and window.end is not None and window.start >= window.end:
            raise KprofError(f"{path}: the window is empty: the trace covers {last - first:.1f} s, "
                             f"--skip {skip or 0:g} s and --discard-tail {discard_tail or 0:g} s leave nothing")
    jobs = default_jobs() if jobs is None else max(1, jobs)
    size = os.path.getsize(path)
    spec = {**task_arch.by_pid, **task_arch.by_comm}
    if kind is None and jobs > 1 and size >= PARALLEL_MIN:
        # a few pieces per worker, handed out as workers become free: on a shared machine one worker can
        # get less CPU than the other, and equal halves would make the whole run wait for it
        cuts = _split_points(path, size, max(jobs, min(4 * jobs, size // PART_MIN)))
        if len(cuts) > 2:
            import multiprocessing as mp
            try:
                ctx = mp.get_context("fork")
            except ValueError:
                ctx = mp.get_context()
            work = [(str(path), cuts[i], cuts[i + 1], task_arch.arch, spec, window) for i in range(len(cuts) - 1)]
            from profiler.signals import pool_worker
            with ctx.Pool(min(jobs, len(work)), initializer=pool_worker) as pool:
                parts = pool.map(_worker, work, chunksize=1)
            return _merge(parts), (first, last, window)
    with open_trace(path) as f:
        return _merge([_pass_stream(f, path, task_arch, window)]), (first, last, window)


def _check_format(path, part: Part) -> None:
    """No recognisable ftrace line at all: say what the file looks like instead."""
    if part.keys:
        return
    if part.lines == 0 and os.path.getsize(path) == 0:
        raise KprofError(f"{path}: empty file (0 bytes): nothing was captured; was tracing on, were events "
                         f"enabled? see docs/ftrace.md")
    if part.lines == 0 or part.lines == part.other.get("header or blank", 0) + part.other.get("lost-events line", 0):
        if part.outside:
            raise KprofError(f"{path}: every event lies outside the time window (--skip/--discard-tail)")
        raise KprofError(f"{path}: no trace events: the file is empty or holds only headers (was tracing on? "
                         f"were events enabled? see docs/ftrace.md)")
    sample = " | ".join(t for _, t in part.unparsed_samples[:2])
    hint = "not ftrace text"
    if re.search(r"^\d+\s+(\d+\.\d+\s+)?\w+\(", sample) or "+++ exited" in sample or "resumed>" in sample:
        hint = "this looks like a strace log: analyse it with 'kprof analyze'"
    elif re.search(r"^\s*\S+\s+\d+\s+\[\d+\]\s+\d+\.\d+:\s+\S+:", sample):
        hint = "this looks like 'perf script' output, which kprof does not read; record with ftrace (kprof ftrace record)"
    elif sample.lstrip().startswith(("{", "[")):
        hint = "this looks like JSON (a kprof footprint? use it with --alongside or kprof compare)"
    elif re.search(r"\d+us : ", sample):
        hint = "this looks like the latency format (trace-cmd report -l / options/latency-format), which kprof does " \
               "not read; use plain 'trace-cmd report' or the trace file"
    raise KprofError(f"{path}: no ftrace event lines found ({part.unparsed} lines not understood; {hint}). "
                     f"First lines: {sample[:300]}")
