"""Report assembly shared by the commands that show a footprint."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from profiler.footprint import Footprint, program_name, subsystem_label
from profiler.parse.strace_text import is_strace_message
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
            ("totals", f"{fp.total_calls} syscalls ({fp.total_errors} failed), {fp.executed_syscalls} distinct, "
                       f"{len(fp.subsystem_rows())} subsystems, {len(fp.processes)} processes/threads, "
                       f"{sum(d['calls'] for d in fp.programs.values())} exec calls"
                       + (f"; {fp.total_served} more calls emulated at the syscall boundary (served, not counted)"
                          if fp.total_served else ""))]


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
                     ("environment", f"{meta.get('isolation', '?')}; backend {meta['backend']}"
                                     f"{' ' + str(meta['versions'].get('strace')) if meta['backend'] == 'strace' else ''}; "
                                     f"kernel {meta['kernel']}"),
                     ("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v))]
    tree = meta.get("oref0_tree") or {}
    if tree.get("files_sha256"):
        report.facts.append(("oref0 tree", f"{tree['path']}: {tree['files']} files, sha256 {tree['files_sha256'][:16]}"))
    for i, (o, rec) in enumerate(zip(outcomes, meta["runs"]), 1):
        label = f"run {i}" if len(outcomes) > 1 else "result"
        verdict = "as expected" if rec["ok"] else "NOT as expected: " + "; ".join(rec["failures"])
        report.facts.append((label, f"{describe_end(o.exit)} in {o.trace.wall:.2f} s — {verdict}"))
        report.warnings += o.analysis.problems
        if rec.get("left_running"):
            report.warnings.append(f"{label + ': ' if len(outcomes) > 1 else ''}the command exited leaving {len(rec['left_running'])} process(es) "
                                   f"running, killed then (stop: root): " + "; ".join(rec["left_running"][:5]))
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
            where = f"pty {s['pty']}" if s.get("radio", "uart") == "uart" else \
                f"SPI, {s['board']}, served at the syscall boundary"
            report.facts.append(("pump", f"emulated Medtronic {st.get('model', '?')} (id {st.get('id', '?')}) behind a "
                                         f"subg_rfspy radio at {s['device']} ({where}), fault "
                                         f"{st.get('fault', 'none')}, {s['exchanges']} radio exchanges; after: reservoir "
                                         f"{st.get('reservoir')} U, temp basal {temp or 'none'}, "
                                         f"{'suspended' if st.get('suspended') else 'not suspended'}, "
                                         f"{st.get('history_length', 0)} history records"))
            client = meta.get("pump_client") or {}
            report.facts.append(("pump client", f"{client.get('client')}: {client.get('kind')}"))
            for name, tool in (client.get("tools") or {}).items():
                report.facts.append((f"  {name}", f"{tool['path']} (sha256 {tool['sha256'][:16]}…)" if tool
                                     else "not found"))
            if s.get("radio", "uart") == "uart":
                report.warnings.append(RIG_DIFFERENCE)
            else:
                report.facts.append(("emulated", spi_served_text(fp, s)))
        else:
            report.facts.append(("service", f"{s['type']} at {s['url']}: {len(s['requests'])} requests"))
    report.warnings += footprint_warnings(fp)
    if meta["backend"] == "bpf":
        from profiler.record.bpf import LIMITS
        report.warnings.append(LIMITS)
    if first.analysis.mismatches == []:
        report.facts.append(("cross-check", first.analysis.cross_check("strace's own -C summary")))
    elif first.analysis.mismatches is None and meta["backend"] != "strace":
        report.facts.append(("cross-check", f"none: the {meta['backend']} backend's log has no strace -C summary "
                                            f"(tests/test_{meta['backend']}_backend.py compares its footprints with "
                                            f"strace's)"))
    report.sections = footprint_sections(fp)
    report.charts.append(subsystem_chart({scenario.name: fp}))
    for s in first.services:
        if s["type"] == "pump":
            report.sections.insert(0, device_section(fp, s["device"]) if s.get("radio", "uart") == "uart"
                                   else spi_device_section(fp, s))
            users = device_users_section(fp, s["device"])
            if users is not None:
                report.sections.insert(1, users)
    if len(outcomes) > 1:
        report.sections.insert(1, variation_section([o.footprint for o in outcomes if o.footprint]))
    return report


RIG_DIFFERENCE = (
    "this is the UART radio path (/dev/serial0, tty subsystem). A rig with an Explorer HAT talks to its radio "
    "over SPI instead: ioctl(SPI_IOC_MESSAGE(1)) on /dev/spidev0.0 per byte (drivers/spi/spidev.c) and sysfs "
    "GPIO writes to reset the radio (drivers/gpio/gpiolib-sysfs.c): pump-status.yaml runs that path, and "
    "kprof run --radio spi serves it for any pump scenario")


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
    note = (f"{path} is a {d['class']} device ({d['dev']}); the rest of the report includes the "
            "runtime's start-up")
    if sum(r["runs"] for r in fp.program_runs().values()) > 1:
        note += "; summed over every program that used it (per program below)"
    return Section(f"Device-level footprint: {path}", ["syscall", "calls", "detail", "subsystem"], rows, note)


def device_users_section(fp: Footprint, path: str) -> Section | None:
    """Who made the device-level calls: per program, its runs and its calls on the device (None: one run)."""
    d = fp.devices.get(path)
    runs = fp.program_runs()
    if d is None or sum(r["runs"] for r in runs.values()) <= 1:
        return None
    users = Counter()
    for exe, calls in d["by"].items():
        users[program_name(exe)] += calls
    rows = []
    for name, calls in users.most_common():
        n = runs.get(name, {}).get("runs", 0)
        rows.append([name, n, calls, f"{calls / n:.0f}" if n else ""])
    return Section(f"Device-level footprint by program: {path}", ["program", "runs", "calls on the device",
                                                                   "per run"], rows,
                   f"the {sum(users.values())} calls on {path} (opens not included) by the programs that made them")


EMULATED = "emulated at the syscall boundary"
RADIO_FAULTS = {"device-in-use": "set-up: kprof holds an exclusive flock on {device} while the command runs",
                "not-exported": "set-up: the GPIO pins are not exported in the fake /sys/class/gpio"}
_SPIDEV_CODE = {"flock": "fs/locks.c (spidev has no lock handler)", "close": "drivers/spi/spidev.c (spidev_release)"}
_SYSFS_CODE = {"close": "fs/kernfs/file.c (kernfs_fop_release)", "epoll_ctl": "fs/kernfs/file.c (kernfs_fop_poll)",
               "fcntl": "fs/fcntl.c"}


def _handler(device_class: str) -> str:
    """The kernel file a device class's description names (device-classes.tsv: '..., drivers/spi/spidev.c')."""
    from profiler.kernel.devices import device_classes
    return device_classes().get(device_class, "").rsplit(", ", 1)[-1]


def spi_served_text(fp: Footprint, s: dict) -> str:
    served = s.get("served") or {}
    frames = served.get("frames") or {}
    return (f"{fp.total_served} calls {EMULATED} (kept apart from the {fp.total_calls} the kernel executed): "
            f"{served.get('served_ioctls', 0)} ioctls on {s['device']}, {served.get('transfers', 0)} SPI bytes in "
            f"{frames.get('command', 0)} command, {frames.get('data', 0)} data and {frames.get('empty', 0)} empty "
            f"frames, {served.get('resets', 0)} radio resets" + poll_period_text(served))


def poll_period_text(served: dict) -> str:
    """How often the client polled while the emulated radio was busy: the count of empty polls (2 ioctls each)
    follows the emulated latency divided by this period, and the period is the client's 1 ms sleep plus the
    tracer's stops and the scheduler's delays: slower machines and heavier tracers poll less often."""
    empty, latency = (served.get("frames") or {}).get("empty", 0), served.get("latency_s")
    if not empty or not latency:
        return ""
    return (f"; the empty polls: {empty} over {latency:.3f} s of emulated radio latency, one every "
            f"{1000 * latency / empty:.1f} ms (the client sleeps 1 ms between polls; the rest is the tracer's stops "
            f"and scheduling, so the count depends on the machine and the backend)")


def spi_device_section(fp: Footprint, s: dict) -> Section:
    """The device-level footprint of the SPI radio path (spi-radio.md §2, §8.6): the spidev node and the sysfs GPIO
    files, each call named with the kernel code a rig runs for it, and whether it ran here."""
    path = s["device"]
    rows = []
    spidev, gpio = _handler("spi"), _handler("sysfs-gpio")
    opens = fp.files.get(path, {}).get("calls", 0)
    if opens:
        name = "openat" if "openat" in fp.syscalls else "open"
        rows.append([name, opens, path, f"{spidev} (spidev_open)", "ran: the placeholder is a regular file"])
    d = fp.devices.get(path)
    if d is not None:
        for name, calls in d["syscalls"].most_common():
            rows.append([name, calls, path, _SPIDEV_CODE.get(name, spidev), "ran: real semantics on the placeholder"])
        for r in fp.ioctl_rows():
            if path in r["devices"] and r["served"]:
                rows.append(["ioctl", r["served"], f"{r['name'] or r['request']} on {path}",
                             f"{r['handler']} (device class {r['device_class']})",
                             f"**{EMULATED}** (the kernel's spidev and SPI controller code did not run here)"])
    here = "ran on a tmpfs stand-in, counted as executed (the kernel's gpiolib-sysfs code did not run here)"
    for p, use in sorted(fp.files.items()):
        if p.startswith("/sys/class/gpio/"):
            rows.append(["openat", use["calls"], p, "fs/kernfs/file.c (kernfs_fop_open)", here])
            dev = fp.devices.get(p)
            for name, calls in (dev["syscalls"].most_common() if dev else []):
                rows.append([name, calls, p, gpio if name == "write" else _SYSFS_CODE.get(name, "fs/kernfs/file.c"),
                             "ran: the same VFS code as on a rig" if name == "fcntl" else here])
    polled = fp.syscalls["epoll_ctl"].served if "epoll_ctl" in fp.syscalls else 0
    if polled:
        rows.append(["epoll_ctl", polled, "the GPIO files (ADD after each open, DEL before each close)",
                     _SYSFS_CODE["epoll_ctl"], f"**{EMULATED}**: answered 0 as sysfs would (tmpfs says EPERM)"])
    note = (f"{s['board']}. What a rig's kernel runs for each call, and what ran here: the spidev ioctls were "
            f"answered by kprof's emulated radio at the syscall boundary and are counted apart from the calls the "
            f"kernel executed (footprint.json: 'served'); the sysfs GPIO writes ran on a tmpfs stand-in, with Go's "
            f"netpoller registration of each file answered as real sysfs would (tmpfs refuses it with EPERM). The rest of the report includes "
            f"the runtime's start-up.")
    return Section(f"Device-level footprint: {path} (SPI radio)", ["syscall", "calls", "on", "kernel code on a rig",
                                                                    "here"], rows, note)


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
    """``results``: (label, Diff, where) per scenario or comparison → the output text in ``fmt``: a one-line
    summary first, then each scenario with its changes worst first."""
    if fmt == "junit":
        from profiler.render.junit import junit_xml
        return junit_xml([(label, d) for label, d, _ in results], title)
    from profiler.render.report import Report, render

    report = Report(title)
    report.facts.append(("summary", diff_summary([(label, d) for label, d, _ in results])))
    for label, d, where in results:
        if d.errors:
            verdict = "ERROR: " + "; ".join(d.errors)
        else:
            verdict = "no change" if d.clean else f"{len(d.changes)} change(s)"
        report.facts.append((label, f"{verdict} — {where}"))
        report.warnings += [f"{label}: {n}" for n in d.notes]
        if d.changes:
            changes = d.worst_first()
            report.sections.append(Section(
                f"{label}: what changed", ["change", "kind", "key", "baseline", "now", "allowed", "by (program, Δ calls)"],
                [[c.kind, c.category, c.key, f"{c.before[0]}" if c.before[0] == c.before[1] else f"{c.before[0]}–{c.before[1]}",
                  c.after, f"{c.allowed[0]}–{c.allowed[1]}" if c.allowed else "", c.by] for c in changes],
                row_classes=[c.kind for c in changes]))
    return render(report, fmt)


def diff_summary(results: list) -> str:
    """One line: how many scenarios were checked and how they came out, the worst named first."""
    errors = [label for label, d in results if d.errors]
    failed = [label for label, d in results if not d.errors and any(c.kind == "failed" for c in d.changes)]
    changed = [label for label, d in results if not d.errors and d.changes and label not in failed]
    clean = len(results) - len(errors) - len(failed) - len(changed)
    parts = [f"{len(errors)} error(s) ({', '.join(errors)})" if errors else "",
             f"{len(failed)} failed run(s) ({', '.join(failed)})" if failed else "",
             f"{len(changed)} changed ({', '.join(changed)})" if changed else "",
             f"{clean} without change" if clean else ""]
    verdict = "FAIL" if errors or failed or changed else "PASS"
    return f"{verdict}: {len(results)} checked: " + ", ".join(p for p in parts if p)


def write_output(text: str, output) -> None:
    if output is None:
        import sys
        sys.stdout.write(text)
    else:
        from profiler.outfiles import write_atomic
        write_atomic(output, text)


def error_path_report(report: Report, scenario, normal, error, arch: str) -> None:
    """Add to ``report`` the error path next to the normal path: injected calls, what the command did
    afterwards, the footprint difference, and a sequence view per process (phases, Mermaid)."""
    from profiler import faults
    from profiler.compare import diff, measures, rules_for

    rules = faults.rules_from(scenario.inject, str(scenario.path), arch) if scenario.inject else []
    seqs = faults.read_sequences(error.run_dir / "trace.log", arch) if error.footprint else {}
    injected = [(pid, step) for pid, seq in seqs.items() for step in seq.steps if step.injected]
    rows = []
    for rule in rules:
        hits = [(pid, st) for pid, st in injected if rule.matches(st.name, st.target)]
        n = sum(st.count for _, st in hits)
        rows.append([rule.describe(), n, "; ".join(f"pid {pid} ({seqs[pid].exe or '?'}): {st.label()}"
                                                    for pid, st in hits[:4])])
        if n == 0:
            report.warnings.append(f"injection rule '{rule.describe()}' matched no call: nothing was injected")
    pump = next((s for s in error.services if s["type"] == "pump"), None)
    if pump is not None and pump["state"].get("fault", "none") != "none":
        rows.append([f"pump emulator fault {pump['state']['fault']}", pump["exchanges"],
                     f"{pump['exchanges']} radio exchanges with the faulty device"])
    if getattr(scenario, "radio_fault", None):
        rows.append([f"radio_fault {scenario.radio_fault}", "",
                     RADIO_FAULTS[scenario.radio_fault].format(device=pump["device"] if pump else "the spidev node")])
    report.sections.insert(0, Section("Injected faults", ["rule", "calls injected", "where"], rows))

    def behaviour(o, label):
        fp = o.footprint
        err = (o.run_dir / "stderr.txt").read_text(errors="replace").splitlines() if (o.run_dir / "stderr.txt").exists() else []
        err = [line for line in err if not is_strace_message(line)]
        sleeps = sum(fp.syscalls[n].calls for n in ("nanosleep", "clock_nanosleep") if fp and n in fp.syscalls)
        return [label, describe_end(o.exit), f"{o.trace.wall:.2f}", fp.total_calls if fp else 0,
                fp.total_errors if fp else 0, sleeps, " | ".join(err[-3:])]
    report.sections.insert(1, Section("What the command did: normal path vs error path",
                                      ["path", "end", "seconds", "calls", "failed calls", "sleeps",
                                       "last lines of stderr"],
                                      [behaviour(normal, "normal"), behaviour(error, "error")]))
    if normal.footprint and error.footprint:
        d = diff([measures(normal.footprint)], normal.footprint, measures(error.footprint), error.footprint,
                 rules_for({"margin": 0, "slack": 0, "timing_margin": 0, "timing_slack": 0}))
        shown = [c for c in d.changes if c.category != "file" and (c.kind != "count" or c.category == "subsystem")]
        files = sum(c.category == "file" for c in d.changes)
        report.sections.insert(2, Section(
            "Footprint difference: error path vs normal path", ["change", "kind", "key", "normal", "error", "by"],
            [[c.kind, c.category, c.key, c.before[1], c.after, c.by] for c in shown],
            f"new and vanished syscalls, errors, subsystems, ioctls, devices, programs and network destinations, "
            f"and subsystem counts; {files} opened files differ too (footprint.json of each path has them)",
            [c.kind for c in shown]))
    # sequence views: the process that met the fault, on both paths
    pid = injected[0][0] if injected else _device_pid(seqs, error.footprint)
    if pid is None:
        return
    targets = {st.target for _, st in injected if st.target}
    if pump is not None:
        targets.add(pump["device"])
    if not targets and error.footprint:
        targets = {p for p, d in error.footprint.devices.items() if d["class"] != "mem"}
    normal_seqs = faults.read_sequences(normal.run_dir / "trace.log", arch) if normal.footprint else {}
    npid = next((p for p, s in normal_seqs.items() if s.exe == seqs[pid].exe and any(
        st.target in targets for st in s.steps)), None)
    for label, sq in (("normal path", normal_seqs.get(npid)), ("error path", seqs[pid])):
        if sq is None:
            continue
        ph = faults.phases(sq, targets)
        report.sections.append(Section(f"Sequence, {label}: pid {sq.pid} ({sq.exe or '?'}) — {sq.end or '?'}",
                                       ["phase", "calls", "what happened"], faults.phase_rows(ph),
                                       code=faults.mermaid(f"{scenario.name} {label}", ph, sq.end, targets),
                                       code_lang="mermaid"))


def _device_pid(seqs, fp):
    if fp is None:
        return None
    for pid, seq in seqs.items():
        if any(st.target in fp.devices for st in seq.steps):
            return pid
    return None
