"""Report assembly shared by the commands that show a footprint."""
from __future__ import annotations

from pathlib import Path

from profiler.footprint import Footprint, subsystem_label
from profiler.render.report import Report, Section, footprint_sections, subsystem_chart

# syscalls whose work the tracer cannot see; a footprint using them is incomplete, and says so
BLIND_SPOTS = {
    "io_uring_setup": "io_uring in use: operations submitted through io_uring rings never appear as syscalls",
    "io_uring_enter": "io_uring in use: operations submitted through io_uring rings never appear as syscalls",
}


def footprint_warnings(fp: Footprint) -> list[str]:
    out = sorted({msg for name, msg in BLIND_SPOTS.items() if name in fp.syscalls})
    unknown = [n for n in fp.syscalls if fp.syscall_info(n).subsystem == "unknown"]
    if unknown:
        out.append("no subsystem for: " + ", ".join(
            f"{n} ({fp.syscall_info(n).note or 'not in the kernel tables'})" for n in sorted(unknown)))
    return out


def footprint_facts(fp: Footprint) -> list[tuple[str, str]]:
    return [("arch", fp.arch),
            ("totals", f"{fp.total_calls} syscalls ({fp.total_errors} failed), {len(fp.syscalls)} distinct, "
                       f"{len(fp.subsystem_rows())} subsystems, {len(fp.processes)} processes/threads, "
                       f"{sum(d['calls'] for d in fp.programs.values())} exec calls")]


def describe_end(end: dict | None) -> str:
    if end is None:
        return "unknown (the trace holds no exit for the first process)"
    if "signal" in end:
        return f"killed by {end['signal']}" + (" (core dumped)" if end.get("core_dumped") else "")
    return f"exit {end['exit']}"


def run_report(scenario, outcomes, meta: dict, bundle: Path) -> Report:
    report = Report(f"kprof run: {scenario.name}")
    command = scenario.command if isinstance(scenario.command, str) else " ".join(scenario.command)
    report.facts += [("scenario", f"{scenario.path} — {scenario.description}"), ("command", command),
                     ("environment", f"{meta.get('isolation', '?')}; backend strace {meta['versions'].get('strace')}; "
                                     f"kernel {meta['kernel']}"),
                     ("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v))]
    for i, (o, rec) in enumerate(zip(outcomes, meta["runs"]), 1):
        label = f"run {i}" if len(outcomes) > 1 else "result"
        verdict = "as expected" if rec["ok"] else "NOT as expected: " + "; ".join(rec["failures"])
        report.facts.append((label, f"{describe_end(o.exit)} in {o.trace.wall:.2f} s — {verdict}"))
        report.warnings += o.analysis.problems
    first = next((o for o in outcomes if o.footprint is not None), None)
    if first is None:
        report.warnings.append("no trace was recorded")
        return report
    fp = first.footprint
    report.facts += footprint_facts(fp)
    report.facts.append(("bundle", str(bundle)))
    for s in first.services:
        if s["type"] == "pump":
            st = s["state"]
            temp = st.get("temp_basal")
            report.facts.append(("pump", f"emulated Medtronic {st.get('model', '?')} (id {st.get('id', '?')}) behind a "
                                         f"subg_rfspy radio at {s['device']} (pty {s['pty']}), fault "
                                         f"{st.get('fault', 'none')}, {s['exchanges']} radio exchanges; after: reservoir "
                                         f"{st.get('reservoir')} U, temp basal {temp or 'none'}, "
                                         f"{'suspended' if st.get('suspended') else 'not suspended'}, "
                                         f"{st.get('history_length', 0)} history records"))
            client = meta.get("pump_client") or {}
            report.facts.append(("pump client", f"{client.get('kind')}: {client.get('mdt')}"))
            report.warnings.append(RIG_DIFFERENCE)
        else:
            report.facts.append(("service", f"{s['type']} at {s['url']}: {len(s['requests'])} requests"))
    report.warnings += footprint_warnings(fp)
    if first.analysis.mismatches == []:
        report.facts.append(("cross-check", "per-syscall calls and errors equal strace's own -C summary"))
    report.sections = footprint_sections(fp)
    report.charts.append(subsystem_chart({scenario.name: fp}))
    for s in first.services:
        if s["type"] == "pump":
            report.sections.insert(0, device_section(fp, s["device"]))
    if len(outcomes) > 1:
        report.sections.insert(1, variation_section([o.footprint for o in outcomes if o.footprint]))
    return report


RIG_DIFFERENCE = (
    "this is the UART radio path (/dev/serial0, tty subsystem). A rig with an Explorer HAT talks to its radio "
    "over SPI instead: ioctl(SPI_IOC_MESSAGE(1)) on /dev/spidev0.0 per byte (drivers/spi/spidev.c) and sysfs "
    "GPIO writes to reset the radio (drivers/gpio/gpiolib-sysfs.c) - analyse a log from the rig to see that path")


def device_section(fp: Footprint, path: str) -> Section:
    """The device-level footprint: what was done on one device's fds, apart from the runtime's start-up."""
    d = fp.devices.get(path)
    if d is None:
        return Section(f"Device-level footprint: {path}", [], [], f"the command never used {path}")
    ioctls = [r for r in fp.ioctl_rows() if path in r["devices"]]
    rows = []
    opens = fp.files[path]["calls"] if path in fp.files else 0
    if opens:
        name = "openat" if "openat" in fp.syscalls else "open"
        info = fp.syscall_info(name)
        rows.append([name, opens, "opens of the device path", subsystem_label(info.subsystem, info.file)])
    for name, calls in d["syscalls"].most_common():
        info = fp.syscall_info(name)
        detail, sub = "", subsystem_label(info.subsystem, info.file)
        if name == "ioctl" and ioctls:
            detail = ", ".join(f"{r['name'] or r['request']} {r['calls']} ({r['handler']})" for r in ioctls)
            sub = ", ".join(sorted({r["subsystem"] for r in ioctls}))
        rows.append([name, calls, detail, sub])
    return Section(f"Device-level footprint: {path}", ["syscall", "calls", "detail", "subsystem"], rows,
                   f"{path} is a {d['class']} device ({d['dev']}); the rest of the report includes the "
                   "runtime's start-up")


def variation_section(fps: list[Footprint]) -> Section:
    names = sorted(set().union(*(fp.syscalls for fp in fps)))
    rows = []
    for n in names:
        counts = [fp.syscalls[n].calls if n in fp.syscalls else 0 for fp in fps]
        if min(counts) != max(counts):
            rows.append([n, min(counts), max(counts), " ".join(map(str, counts))])
    return Section(f"Variation across {len(fps)} runs", ["syscall", "min", "max", "per run"], rows,
                   "syscalls whose count differed between runs (the rest were identical)")


def diff_report(results: list, fmt: str, title: str) -> str:
    """``results``: (label, Diff, where) per scenario or comparison → the output text in ``fmt``."""
    if fmt == "junit":
        from profiler.render.junit import junit_xml
        return junit_xml([(label, d.changes) for label, d, _ in results])
    from profiler.render.report import Report, render

    report = Report(title)
    for label, d, where in results:
        verdict = "no change" if d.clean else f"{len(d.changes)} change(s)"
        report.facts.append((label, f"{verdict} — {where}"))
        report.warnings += [f"{label}: {n}" for n in d.notes]
        if not d.clean:
            report.sections.append(Section(
                f"{label}: what changed", ["change", "kind", "key", "baseline", "now", "allowed", "by (program, Δ calls)"],
                [[c.kind, c.category, c.key, f"{c.before[0]}" if c.before[0] == c.before[1] else f"{c.before[0]}–{c.before[1]}",
                  c.after, f"{c.allowed[0]}–{c.allowed[1]}" if c.allowed else "", c.by] for c in d.changes],
                row_classes=[c.kind for c in d.changes]))
    return render(report, fmt)


def write_output(text: str, output) -> None:
    if output is None:
        import sys
        sys.stdout.write(text)
    else:
        output.write_text(text)
