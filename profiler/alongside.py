"""Each command's footprint next to the whole-workload ftrace: what the scenarios explain, and what not.

ELISA's central result is one whole-workload trace (all of OpenAPS for 30 minutes); kprof's is one footprint
per command. Put side by side they answer the question a safety engineer asks of the scenario set: *which
command do we still need a scenario for?* — everything the whole workload asked of the kernel that no
scenario explains.

Footprints are compared by syscall **name** and **subsystem**, never by number: the scenarios may have been
recorded on x86_64 and the workload on a 32-bit Raspberry Pi, where the numbers differ. Some calls have
another name on another arch (``fstatat64`` / ``newfstatat``, ``_llseek`` / ``lseek``); those stay
unexplained, with a hint naming the scenario syscalls defined in the same kernel file. A call an emulated
device answered in a scenario (the SPI radio's ioctls, served by kprof's tracer) explains nothing: the
kernel's code for it did not run there; the rows say which scenario made it, emulated.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from profiler.errors import KprofError
from profiler.footprint import Footprint
from profiler.kernel.subsystems import subsystem_label
from profiler.render.model import Section

WHOLE = "whole workload"


def _calls(n) -> str:
    return str(n) if n else "-"


def _subsystem(fp: Footprint, name: str) -> str:
    info = fp.syscall_info(name)
    return subsystem_label(info.subsystem, info.file)


def _users(fp: Footprint, name: str, most: int = 3) -> str:
    """Which programs (or task names, in an ftrace footprint) made a syscall, most calls first."""
    by = Counter()
    for proc in fp.processes.values():
        for image in proc["images"]:
            n = image["syscalls"].get(name)
            if n:
                by[image["exe"] or "(before the first exec)"] += n
    return ", ".join(f"{exe} {n}" for exe, n in by.most_common(most)) + (" …" if len(by) > most else "")


def _ioctl_label(row: dict) -> str:
    return row["name"] or row["request"]


def alongside_sections(per_command: dict[str, Footprint], whole: Footprint, whole_label: str = WHOLE) -> list[Section]:
    """Subsystems and syscalls × (each scenario, the whole workload), then what the whole workload used that
    no scenario explains: syscalls, ioctl requests, subsystems."""
    labels = list(per_command)
    subs = {label: {r["subsystem"]: r["calls"] for r in fp.subsystem_rows()} for label, fp in per_command.items()}
    whole_subs = {r["subsystem"]: r["calls"] for r in whole.subsystem_rows()}
    covered_subs = set().union(*subs.values()) if subs else set()
    emulated = _emulated(per_command)

    def nobody(kind: str, key: str) -> str:
        where = emulated[kind].get(key)
        return "NO SCENARIO" + (f" (emulated in {', '.join(where)})" if where else "")
    order = sorted(set(whole_subs) | covered_subs, key=lambda s: (-whole_subs.get(s, 0), s))
    secs = [Section(
        f"Kernel subsystems: each scenario and the {whole_label}", ["subsystem", *labels, whole_label, "explained by"],
        [[s, *(_calls(subs[lb].get(s, 0)) for lb in labels), _calls(whole_subs.get(s, 0)),
          ", ".join(lb for lb in labels if subs[lb].get(s)) or (nobody("subsystem", s) if whole_subs.get(s) else "")]
         for s in order],
        "Calls per subsystem; an ioctl counts for the subsystem of the code that handles its request. "
        "Compared by subsystem name, never by syscall number. 'emulated': a scenario made such calls, answered "
        "by kprof's emulated device, so the kernel's code did not run there.")]

    names = {label: {n: s.calls for n, s in fp.syscalls.items() if s.calls} for label, fp in per_command.items()}
    whole_names = {n: s.calls for n, s in whole.syscalls.items()}
    explained = set().union(*names.values()) if names else set()
    order = sorted(set(whole_names) | explained, key=lambda n: (-whole_names.get(n, 0), n))
    secs.append(Section(
        f"System calls: each scenario and the {whole_label}", ["syscall", "subsystem", *labels, whole_label],
        [[n, _subsystem(whole if n in whole_names else next(fp for fp in per_command.values() if n in fp.syscalls), n),
          *(_calls(names[lb].get(n, 0)) for lb in labels), _calls(whole_names.get(n, 0))] for n in order]))

    # what no scenario explains
    by_file = _by_file((fp, n) for fp in per_command.values()
                       for n, st in fp.syscalls.items() if st.calls)     # what the kernel ran
    rows = []
    for n in sorted(set(whole_names) - explained, key=lambda n: (-whole_names[n], n)):
        info = whole.syscall_info(n)
        same = sorted(by_file.get(info.file, set()) - {n}) if info.file else []
        hint = "; ".join(h for h in (
            f"emulated in {', '.join(emulated['syscall'][n])}" if n in emulated["syscall"] else "",
            f"scenarios make {', '.join(same)} ({info.file})" if same else "") if h)
        rows.append([n, _subsystem(whole, n), whole_names[n], _users(whole, n),
                     info.defined_in or info.note or "", hint])
    secs.append(Section(
        f"Used by the {whole_label}, explained by no scenario (which command still needs a scenario?)",
        ["syscall", "subsystem", "calls", "made by", "defined in", "hint"], rows,
        "Every syscall the whole workload made that no scenario made. 'made by' names the programs (task names "
        "in an ftrace trace) that made it: the commands that still need a scenario, or system activity that "
        "is not OpenAPS." if rows else "Every syscall of the whole workload is made by at least one scenario."))

    scen_ioctls = {_ioctl_label(r) for fp in per_command.values() for r in fp.ioctl_rows() if r["calls"]}
    io_rows = [[_ioctl_label(r), r["request"], r["handler"] or "", r["subsystem"], r["calls"],
                ", ".join(f"{k} {v}" for k, v in r["by"].most_common(3)),
                f"emulated in {', '.join(emulated['ioctl'][_ioctl_label(r)])}"
                if _ioctl_label(r) in emulated["ioctl"] else ""]
               for r in whole.ioctl_rows() if _ioctl_label(r) not in scen_ioctls]
    if io_rows or whole.ioctls:
        secs.append(Section(f"ioctl requests of the {whole_label} no scenario makes",
                            ["request", "code", "handled by", "subsystem", "calls", "made by", "note"], io_rows,
                            "Compared by decoded name (the code of one request differs between 32- and 64-bit "
                            "ABIs when its argument struct does). A request only an emulated device answered in "
                            "a scenario is listed: the kernel's handler did not run there."))
    missing = [s for s in whole_subs if s not in covered_subs]

    def entered_by(sub: str) -> str:       # its syscalls, and the ioctl requests its code handles
        return " ".join(sorted(n for n in whole.syscalls if _subsystem(whole, n) == sub) +
                        sorted({f"ioctl {_ioctl_label(r)}" for r in whole.ioctl_rows() if r["subsystem"] == sub}))
    secs.append(Section(f"Subsystems the {whole_label} uses and no scenario reaches",
                        ["subsystem", "calls", "syscalls", "note"],
                        [[s, whole_subs[s], entered_by(s),
                          f"emulated in {', '.join(emulated['subsystem'][s])}" if s in emulated["subsystem"] else ""]
                         for s in sorted(missing, key=lambda s: -whole_subs[s])]))
    only = sorted(explained - set(whole_names))
    if only:
        whole_by_file = _by_file((whole, n) for n in whole_names)

        def seen_as(fp: Footprint, n: str) -> str:      # the same kernel code, entered by another syscall there
            info = fp.syscall_info(n)
            same = sorted(whole_by_file.get(info.file, set()) - {n}) if info.file else []
            return f"the {whole_label} makes {', '.join(same)} ({info.file})" if same else ""
        rows = []
        for n in only:
            fp = next(fp for fp in per_command.values() if n in fp.syscalls)
            rows.append([n, _subsystem(fp, n), ", ".join(lb for lb in labels if n in names[lb]), seen_as(fp, n)])
        secs.append(Section(f"Made by scenarios, not seen in the {whole_label}", ["syscall", "subsystem", "scenarios",
                                                                                  "hint"], rows,
                            "The whole-workload trace may come from another machine, arch or OpenAPS setup; or a "
                            "scenario exercises a path the recorded workload did not take. 'hint': the same kernel "
                            "file entered by another syscall there (an arm trace's fstatat64 for newfstatat)."))
    return secs


def _by_file(calls) -> dict[str, set]:
    """(footprint, syscall name) pairs → kernel file → the names defined in it (fstatat64 and newfstatat: fs/stat.c)."""
    out: dict[str, set] = {}
    for fp, n in calls:
        info = fp.syscall_info(n)
        if info.file:
            out.setdefault(info.file, set()).add(n)
    return out


def _emulated(per_command: dict[str, Footprint]) -> dict[str, dict[str, list[str]]]:
    """kind (syscall, ioctl, subsystem) → key → the scenarios in which an emulated device answered such calls
    and the kernel ran none of them."""
    out: dict[str, dict[str, list[str]]] = {"syscall": {}, "ioctl": {}, "subsystem": {}}
    for label, fp in per_command.items():
        ran = {r["subsystem"] for r in fp.subsystem_rows()}
        keys = {"syscall": {n for n, st in fp.syscalls.items() if st.served and not st.calls},
                "ioctl": {_ioctl_label(r) for r in fp.ioctl_rows() if r["served"]} -
                         {_ioctl_label(r) for r in fp.ioctl_rows() if r["calls"]},
                "subsystem": {r["subsystem"] for r in fp.ioctl_rows() if r["served"]} - ran}
        for kind, found in keys.items():
            for key in found:
                out[kind].setdefault(key, []).append(label)
    return out


def alongside_chart(per_command: dict[str, Footprint], whole: Footprint, whole_label: str = WHOLE) -> dict:
    from profiler.render.sections import subsystem_chart
    return subsystem_chart({**per_command, whole_label: whole})


def load_footprints(paths) -> dict[str, Footprint]:
    """Result bundles (directories with footprint.json) or footprint.json files → label → Footprint."""
    out: dict[str, Footprint] = {}
    for r in map(Path, paths):
        fp_path = r / "footprint.json" if r.is_dir() else r
        if r.is_dir() and not fp_path.is_file():
            raise KprofError(f"{r}: not a result bundle (no footprint.json)")
        label = r.name if r.is_dir() else r.stem
        if r.is_dir():
            from profiler.bundle import Bundle
            meta = Bundle(r).read_meta()
            label = (meta.scenario if meta is not None else None) or label
        while label in out:
            label += "'"
        out[label] = Footprint.load(fp_path)
    return out


def load_whole_workload(path, arch: str | None = None, skip: float | None = None,
                        discard_tail: float | None = None) -> tuple[Footprint, list[str]]:
    """The whole workload from a saved footprint (JSON, or a bundle) or an ftrace text file, and what the
    report must warn of (a trace's lost events, 64-bit arguments read as 32-bit, tasks of another ABI, which
    the alongside view leaves out). For a trace the arch comes from ``arch``, else from kprof's recording
    metadata; a trace of raw syscall numbers with neither is refused (reading an arm trace with x86_64 numbers
    gives wrong names)."""
    p = Path(path)
    if p.is_dir() or p.suffix == ".json":
        return Footprint.load(p / "footprint.json" if p.is_dir() else p), []
    from profiler.wholetrace import check_arch_source, resolve_trace_settings
    from profiler.parse.ftrace_text import analyse_trace

    settings = resolve_trace_settings([p], arch, skip, discard_tail,
                                      options=("--whole-skip", "--whole-discard-tail", "--whole-arch"))
    res = analyse_trace([p], settings["arch"], settings["task_arch"], settings["skip"], settings["discard_tail"],
                        root_pid=settings["root_pid"])
    check_arch_source(settings, res)
    warnings = list(res.warnings)
    for abi, fp in res.footprints.items():
        if fp is not res.footprint:
            calls = sum(s.calls for s in fp.syscalls.values())
            warnings.append(f"the alongside view reads the trace's {res.footprint.arch} tasks only: its {abi} "
                            f"tasks' {calls} calls are left out (kprof ftrace analyze shows them)")
    return res.footprint, warnings
