"""The report of a kprof run: the scenario, its environment, each run's result, the pump and its client, the
footprint's sections with the device-level ones first; with injected faults, the error path next to the normal
path (what was injected, what the command did then, the footprint difference, a sequence view per process)."""
from __future__ import annotations

from pathlib import Path

from profiler.bundle import RunMeta
from profiler.render.model import Report, Section
from profiler.render.sections import (RADIO_FAULTS, describe_end, device_section, device_users_section,
                                      footprint_facts, footprint_sections, footprint_warnings, spi_device_section,
                                      spi_served_text, subsystem_chart, variation_section)
from profiler.parse.strace_text import is_strace_message


def run_report(scenario, outcomes, meta: RunMeta, bundle: Path) -> Report:
    report = Report(f"kprof run: {scenario.name}")
    command = scenario.command if isinstance(scenario.command, str) else " ".join(scenario.command)
    report.facts += [("scenario", f"{scenario.path} — {scenario.description}"), ("command", command),
                     ("environment", f"{meta.isolation or '?'}; backend {meta.backend}"
                                     f"{' ' + str(meta.versions.get('strace')) if meta.backend == 'strace' else ''}; "
                                     f"kernel {meta.kernel}"),
                     ("versions", ", ".join(f"{k} {v}" for k, v in meta.versions.items() if v))]
    tree = meta.oref0_tree or {}
    if tree.get("files_sha256"):
        report.facts.append(("oref0 tree", f"{tree['path']}: {tree['files']} files, sha256 {tree['files_sha256'][:16]}"))
    for i, (o, rec) in enumerate(zip(outcomes, meta.runs), 1):
        label = f"run {i}" if len(outcomes) > 1 else "result"
        verdict = "as expected" if rec.ok else "NOT as expected: " + "; ".join(rec.failures)
        report.facts.append((label, f"{describe_end(o.exit)} in {o.trace.wall:.2f} s — {verdict}"))
        report.warnings += o.analysis.problems
        if rec.left_running:
            report.warnings.append(f"{label + ': ' if len(outcomes) > 1 else ''}the command exited leaving {len(rec.left_running)} process(es) "
                                   f"running, killed then (stop: root): " + "; ".join(rec.left_running[:5]))
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
            if s.get("scheduling"):      # the UART radio's own process
                where += f"; its process {s['scheduling']}"
            report.facts.append(("pump", f"emulated Medtronic {st.get('model', '?')} (id {st.get('id', '?')}) behind a "
                                         f"subg_rfspy radio at {s['device']} ({where}), fault "
                                         f"{st.get('fault', 'none')}, {s['exchanges']} radio exchanges; after: reservoir "
                                         f"{st.get('reservoir')} U, temp basal {temp or 'none'}, "
                                         f"{'suspended' if st.get('suspended') else 'not suspended'}, "
                                         f"{st.get('history_length', 0)} history records"))
            client = meta.pump_client or {}
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
    if meta.backend == "bpf":
        from profiler.record.bpf import LIMITS
        report.warnings.append(LIMITS)
    if first.analysis.mismatches == []:
        report.facts.append(("cross-check", first.analysis.cross_check("strace's own -C summary")))
    elif first.analysis.mismatches is None and meta.backend != "strace":
        report.facts.append(("cross-check", f"none: the {meta.backend} backend's log has no strace -C summary "
                                            f"(tests/test_{meta.backend}_backend.py compares its footprints with "
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


def error_path_report(report: Report, scenario, normal, error, arch: str) -> list[str]:
    """Add to ``report`` the error path next to the normal path: injected calls, what the command did
    afterwards, the footprint difference, and a sequence view per process (phases, Mermaid).

    Returns what it warned of the injection rules that matched no call (a fault scenario that injected
    nothing did not do what it expects)."""
    from profiler import faults, inject
    from profiler.compare import diff, measures, rules_for

    rules = inject.rules_from(scenario.inject, str(scenario.path), arch) if scenario.inject else []
    if scenario.backend == "bpf":    # it counts calls in the kernel: it keeps no order of them
        report.warnings.append("no sequence view: the bpf backend counts calls and keeps no order of them (run "
                               "with --backend strace or ptrace for it)")
    # built while each path was recorded (runner.run(..., sequences=True)); the bpf backend's analysis has none
    seqs = (error.analysis.sequences or {}) if error.footprint else {}
    injected = [(pid, step) for pid, seq in seqs.items() for step in seq.steps if step.injected]
    rows, unmatched = [], []
    for rule in rules:
        hits = [(pid, st) for pid, st in injected if rule.matches(st.name, st.target)]
        n = sum(st.count for _, st in hits)
        rows.append([rule.describe(), n, "; ".join(f"pid {pid} ({seqs[pid].exe or '?'}): {st.label()}"
                                                    for pid, st in hits[:4])])
        if n == 0:
            unmatched.append(f"injection rule '{rule.describe()}' matched no call: nothing was injected")
    report.warnings += unmatched
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
        # (timing-dependent items that only one path has are left out, as kprof check notes them: with no band
        # here, their count alone would make them changes)
        shown = [c for c in d.changes if c.category != "file" and (c.kind != "count" or c.category == "subsystem")
                 and not (c.kind in ("new", "vanished") and c.allowed)]
        files = sum(c.category == "file" for c in d.changes)
        report.sections.insert(2, Section(
            "Footprint difference: error path vs normal path", ["change", "kind", "key", "normal", "error", "by"],
            [[c.kind, c.category, c.key, c.before[1], c.after, c.by] for c in shown],
            f"new and vanished syscalls, errors (per syscall and per file, device, program, destination), subsystems, "
            f"ioctls, devices, programs and network destinations, "
            f"and subsystem counts; {files} opened files differ too (footprint.json of each path has them)",
            [c.kind for c in shown]))
    # sequence views: the process that met the fault, on both paths
    pid = injected[0][0] if injected else _device_pid(seqs, error.footprint)
    if pid is None:
        return unmatched
    targets = {st.target for _, st in injected if st.target}
    if pump is not None:
        targets.add(pump["device"])
    if not targets and error.footprint:
        targets = {p for p, d in error.footprint.devices.items() if d["class"] != "mem"}
    normal_seqs = (normal.analysis.sequences or {}) if normal.footprint else {}
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
    return unmatched


def _device_pid(seqs, fp):
    if fp is None:
        return None
    for pid, seq in seqs.items():
        if any(st.target in fp.devices for st in seq.steps):
            return pid
    return None
