"""The report of a whole-workload ftrace (kprof ftrace analyze): the trace and how it was read (recording,
arch, time window, lines, lost events, call pairing), the subsystem chart, event groups, an ausyscall table
against the kernel's, the footprint's sections per ABI, tasks, events and, with scenarios beside it, what
they explain."""
from __future__ import annotations

from profiler.kernel import KERNEL_VERSION
from profiler.render.model import Report, Section
from profiler.render.sections import footprint_facts, footprint_sections, footprint_warnings, subsystem_chart


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _adapt(sections, prefix: str = ""):
    """Footprint sections as an ftrace footprint shows them: no time column (ftrace analysis does not
    measure time in calls), no empty per-path tables (ftrace does not see paths)."""
    out = []
    for s in sections:
        if "time ms" in s.headers:
            k = s.headers.index("time ms")
            s.headers = s.headers[:k] + s.headers[k + 1:]
            s.rows = [r[:k] + r[k + 1:] for r in s.rows]
        if s.title == "Files opened" and not s.rows:
            continue
        s.title = prefix + s.title
        out.append(s)
    return out


def ftrace_report(res, traces: list, st: dict, limit: int = 50, ausyscall: tuple | None = None,
                  alongside: dict | None = None) -> Report:
    """``res``: the FtraceResult of ``traces`` read with the settings ``st`` (wholetrace.resolve_trace_settings);
    ``limit``: rows in the task and event tables; ``ausyscall``: (its path, ausyscall_rows(…)) to show;
    ``alongside``: scenario footprints by label to show beside the whole workload."""
    from profiler.parse.ftrace_text import event_group

    if alongside:
        from profiler.alongside import alongside_chart, alongside_sections
    names = ", ".join(str(t) for t in traces)
    report = Report(f"kprof ftrace analyze: {names}")
    facts = report.facts
    facts.append(("trace", f"{names} — {', '.join(res.formats)}"))
    for t, m in zip(traces, st["metas"]):
        if m:
            cmd = " ".join(m["command"]) if m.get("command") else "the whole system"
            end = m.get("exit")
            facts.append(("recorded", f"{t}: {cmd} on {m.get('hostname')} (Linux {m.get('kernel_release')}, "
                                      f"{m.get('machine')}), events: {m.get('events')}, {fmt_duration(m.get('duration_s'))}"
                                      + (f", command {('exit ' + str(end['exit'])) if 'exit' in end else end['signal']}"
                                         if end else "") + (", interrupted" if m.get("interrupted") else "")))
    ta = res.task_arch
    over = [f"{k}={v}" for k, v in {**ta.by_pid, **ta.by_comm}.items()]
    facts.append(("arch", f"{res.arch}: syscall numbers read with the Linux {KERNEL_VERSION} {res.arch} table"
                          + (f"; tasks {', '.join(over)}" if over else "")
                          + {"option": "", "recording": " (from the recording)",
                             "host": " (this machine's: the trace has no syscall numbers)"}[st["arch_source"]]))
    for path, (first, last, w) in zip(traces, res.windows):
        if w.active():
            facts.append(("window", f"{path}: trace {first:.6f}–{last:.6f} s ({fmt_duration(last - first)}); counted "
                                    f"{w.start if w.start is not None else first:.6f}–"
                                    f"{w.end if w.end is not None else last:.6f} s"
                                    + (f" (--skip {fmt_duration(st['skip'])})" if st["skip"] else "")
                                    + (f" (--discard-tail {fmt_duration(st['discard_tail'])})" if st["discard_tail"] else "")))
    span = (res.last_ts - res.first_ts) if res.first_ts is not None and res.last_ts is not None else None
    facts.append(("lines", f"{res.lines:,} lines, {sum(res.events.values()):,} events counted over {fmt_duration(span)}"
                           + (f", {res.outside:,} outside the window" if res.outside else "")
                           + (f", {res.unparsed:,} not understood" if res.unparsed else "")))
    if res.lost:
        facts.append(("lost events", ", ".join(f"CPU {c}: {n:,}" for c, n in sorted(res.lost.items()))))
    facts.append(("pairing", f"{res.orphan_exits} calls began before the window (only their exit is in it), "
                             f"{res.unfinished} had not returned at its end (exit_group never returns)"))
    report.warnings += res.warnings
    multi = len(res.footprints) > 1
    for abi, fp in res.footprints.items():
        prefix = f"{abi} tasks: " if multi else ""
        facts += [(prefix + k, v) for k, v in footprint_facts(fp) if k != "arch"]
        report.warnings += [prefix + w for w in footprint_warnings(fp)]
    report.charts.append(subsystem_chart({("whole workload" if not multi else abi): fp
                                          for abi, fp in res.footprints.items()}))

    other = {e: n for e, n in res.events.items() if not e.startswith("sys_")}
    if other:
        groups = res.groups()
        total = sum(groups.values())
        report.sections.append(Section("Event groups (ELISA's \"Subsystem usage\")", ["event group", "events", "%"],
                                       [[g, f"{n:,}", f"{100 * n / total:.1f}"] for g, n in groups.most_common()],
                                       "Lines counted by event name up to its first underscore (irq_handler_entry → "
                                       "irq_*); sys_* holds the syscall events."))
    if ausyscall is not None:
        table_path, rows, table, compared = ausyscall
        report.sections.append(Section(
            f"{table_path} (ausyscall, '{table}' table) against the Linux {KERNEL_VERSION} {res.arch} table",
            ["nr", "ausyscall", "kernel table", "calls in this trace", "note"], rows,
            f"{len(rows)} of {compared} numbers disagree; kprof names every number from the kernel tables "
            "(ELISA's 'perf_event_open??' for 336 on arm was such a disagreement: 336 is ppoll)."))
        if rows:
            hit = [r for r in rows if r[3]]
            report.warnings.append(f"{table_path}: {len(rows)} numbers disagree with the kernel tables"
                                   + (f", {len(hit)} of them used in this trace ("
                                      + ", ".join(f"{r[0]}: ausyscall {r[1]}, kernel {r[2]}" for r in hit[:6]) + ")"
                                      if hit else "") + "; the report uses the kernel tables")
    for abi, fp in res.footprints.items():
        report.sections += _adapt(footprint_sections(fp), f"{abi} tasks: " if multi else "")
    tasks = res.tasks[:limit]
    report.sections.append(Section(
        "Tasks (comm-pid, as the trace names them)", ["task", "abi", "syscalls", "failed", "other events",
                                                       "top syscalls"],
        [[f"{t.comm}-{t.pid}", t.abi, t.calls, t.errors, t.events,
          ", ".join(f"{k} {v}" for k, v in t.syscalls.most_common(5))] for t in tasks],
        (f"{len(res.tasks) - len(tasks)} more tasks (--limit). " if len(res.tasks) > len(tasks) else "")
        + "ftrace prints the name a pid had when the text was produced (its comm cache), so a task that "
        "exec'd shows under both names; '<...>' is a pid the cache had lost."))
    if other:
        evs = sorted(res.events.items(), key=lambda kv: -kv[1])
        report.sections.append(Section("Events", ["event", "group", "lines"],
                                       [[e, event_group(e), f"{n:,}"] for e, n in evs[:limit]],
                                       f"{len(evs) - limit} more events in JSON output" if len(evs) > limit
                                       else None))
    if alongside:
        report.sections += alongside_sections(alongside, res.footprint)
        report.charts.append(alongside_chart(alongside, res.footprint))
    return report
