"""A footprint (plus what we know of its run) → report sections → terminal table, Markdown or JSON.

The sections are built once; the formats only differ in how a table is drawn.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from profiler.footprint import Footprint, subsystem_label

_TABLEFMT = {"table": "simple", "markdown": "github"}


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list]
    note: str | None = None
    row_classes: list[str] | None = None   # e.g. a diff's change kinds, highlighted in HTML
    code: str | None = None                # a diagram or listing shown after the table (Mermaid in Markdown)
    code_lang: str = ""


@dataclass
class Report:
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)   # "label: value" lines under the title
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)   # {"title", "series": {label: {category: value}}}


def report_to_dict(report: Report) -> dict:
    """Everything of a report, to render it again later exactly as it was (report.json in a bundle)."""
    return {"format": "kprof-report", "version": 1, "title": report.title, "facts": [list(f) for f in report.facts],
            "warnings": report.warnings, "charts": report.charts,
            "sections": [{"title": s.title, "headers": s.headers, "rows": s.rows, "note": s.note,
                          "row_classes": s.row_classes, "code": s.code, "code_lang": s.code_lang}
                         for s in report.sections]}


def report_from_dict(data, origin: str) -> Report:
    from profiler.errors import KprofError
    try:
        if not isinstance(data, dict) or data.get("format") != "kprof-report":
            raise ValueError("not a kprof report")
        facts = [(str(k), str(v)) for k, v in data["facts"]]
        sections = [Section(str(x["title"]), [str(h) for h in x["headers"]], [list(r) for r in x["rows"]],
                            x.get("note"), x.get("row_classes"), x.get("code"), x.get("code_lang") or "")
                    for x in data["sections"]]
        warnings = [str(w) for w in data["warnings"]]
        charts = list(data.get("charts", []))
    except (KeyError, TypeError, ValueError) as e:
        raise KprofError(f"{origin}: damaged report ({type(e).__name__}: {e})") from None
    return Report(str(data["title"]), facts, sections, warnings, charts)


def subsystem_chart(footprints: dict[str, Footprint]) -> dict:
    """Calls per subsystem, one series per footprint (a command, or the whole workload)."""
    return {"title": "Kernel subsystems (calls)",
            "series": {label: {r["subsystem"]: r["calls"] for r in fp.subsystem_rows()}
                       for label, fp in footprints.items()}}


def _errors(counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])) if counter else ""


def _counts(counter, most: int | None = None) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common(most))


def footprint_sections(fp: Footprint, limit: int | None = 40) -> list[Section]:
    """The footprint's tables: subsystems, syscalls, ioctls, devices, network, programs, executables, files."""
    secs = []
    subs = fp.subsystem_rows()
    secs.append(Section("Kernel subsystems", ["subsystem", "calls", "errors", "syscalls"],
                        [[r["subsystem"], r["calls"], r["errors"], " ".join(r["syscalls"])] for r in subs],
                        "An ioctl counts for the subsystem of the code that handles its request "
                        "(the ioctl row below shows fs/ioctl.c, where the call enters)."))
    rows = []
    for name, s in sorted(fp.syscalls.items(), key=lambda kv: (-kv[1].calls, kv[0])):
        info = fp.syscall_info(name)
        where = f"{info.file}:{info.line}" if info.file else (info.note or "")
        rows.append([name, info.number if info.number is not None else "", s.calls, _errors(s.errors),
                     f"{s.time * 1000:.2f}", subsystem_label(info.subsystem, info.file), where])
    secs.append(Section("System calls", ["syscall", "nr", "calls", "errors", "time ms", "subsystem",
                                         "defined in (Linux 6.19.9)"], rows))
    io = fp.ioctl_rows()
    if io:
        secs.append(Section("ioctl requests", ["request", "name", "handled by", "subsystem", "device class",
                                               "devices", "calls", "errors"],
                            [[r["request"], r["name"] or "(unknown)", r["handler"] or "", r["subsystem"],
                              r["device_class"], " ".join(r["devices"]), r["calls"], _errors(r["errors"])]
                             for r in io]))
    if fp.devices:
        secs.append(Section("Devices and sysfs files behind fds", ["path", "class", "dev", "calls", "syscalls", "by"],
                            [[p, d["class"], d["dev"] or "", d["calls"], _counts(d["syscalls"]), _counts(d["by"], 3)]
                             for p, d in sorted(fp.devices.items(), key=lambda kv: -kv[1]["calls"])]))
    if fp.network:
        secs.append(Section("Network destinations", ["address", "syscalls", "errors", "by"],
                            [[a, _counts(d["syscalls"]), _errors(d["errors"]), _counts(d["by"], 3)]
                             for a, d in sorted(fp.network.items())]))
    if fp.programs:
        secs.append(Section("Programs executed", ["program", "execs", "errors", "by"],
                            [[p, d["calls"], _errors(d["errors"]), _counts(d["by"], 3)]
                             for p, d in sorted(fp.programs.items())]))
    exes = fp.executables()
    secs.append(Section("Per executable (which program did what)", ["executable", "processes/threads", "calls",
                                                                    "top syscalls"],
                        [[e, d["processes"], d["calls"], _counts(d["syscalls"], 6)]
                         for e, d in sorted(exes.items(), key=lambda kv: -kv[1]["calls"])]))
    by_errno: dict[str, Counter] = {}
    for name, st in fp.syscalls.items():
        for errno, n in st.errors.items():
            by_errno.setdefault(errno, Counter())[name] += n
    secs.append(Section("Errors by errno", ["errno", "calls", "syscalls"],
                        [[e, sum(c.values()), _counts(c)] for e, c in
                         sorted(by_errno.items(), key=lambda kv: -sum(kv[1].values()))]))
    files = sorted(fp.files.items(), key=lambda kv: (-kv[1]["calls"], kv[0]))
    shown = files if limit is None else files[:limit]
    note = None if len(shown) == len(files) else f"{len(files) - len(shown)} more in footprint.json"
    secs.append(Section("Files opened", ["path", "opens", "errors", "by"],
                        [[p, d["calls"], _errors(d["errors"]), _counts(d["by"], 2)] for p, d in shown], note))
    return secs


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"title": report.title, "facts": dict(report.facts), "warnings": report.warnings,
                           "charts": report.charts,
                           "sections": [{"title": s.title, "headers": s.headers, "rows": s.rows, "note": s.note,
                                         **({"code": s.code, "code_lang": s.code_lang} if s.code else {})}
                                        for s in report.sections]}, indent=1, default=str)
    if fmt == "html":
        from profiler.render.html import render_html
        return render_html(report)
    from tabulate import tabulate  # imported only when a table is drawn

    md = fmt == "markdown"
    out = [f"# {report.title}" if md else report.title, "" if md else "=" * len(report.title)]
    for label, value in report.facts:
        out.append(f"- **{label}:** {value}" if md else f"{label}: {value}")
    for w in report.warnings:
        out.append(f"> **Warning:** {w}" if md else f"WARNING: {w}")
    for s in report.sections:
        out += ["", f"## {s.title}" if md else s.title, "" if md else "-" * len(s.title)]
        if s.rows:
            rows = [[_md_cell(c) for c in r] for r in s.rows] if md else s.rows
            out.append(tabulate(rows, headers=s.headers, tablefmt=_TABLEFMT[fmt], disable_numparse=True))
        else:
            out.append("(none)")
        if s.note:
            out += ["", f"_{s.note}_" if md else f"note: {s.note}"]
        if s.code and md:
            out += ["", f"```{s.code_lang}", s.code, "```"]
    return "\n".join(out) + "\n"


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
