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
    text: "Section | None" = None          # a narrower form for the terminal and Markdown (JSON/HTML: this one)


@dataclass
class Report:
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)   # "label: value" lines under the title
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)   # {"title", "series": {label: {category: value}}}
    data: dict = field(default_factory=dict)           # more top-level keys of the JSON form (e.g. "cross_check")


def _section_dict(s: Section) -> dict:
    return {"title": s.title, "headers": s.headers, "rows": s.rows, "note": s.note, "row_classes": s.row_classes,
            "code": s.code, "code_lang": s.code_lang, "text": _section_dict(s.text) if s.text else None}


def _section_from(x: dict) -> Section:
    return Section(str(x["title"]), [str(h) for h in x["headers"]], [list(r) for r in x["rows"]], x.get("note"),
                   x.get("row_classes"), x.get("code"), x.get("code_lang") or "",
                   _section_from(x["text"]) if x.get("text") else None)


def report_to_dict(report: Report) -> dict:
    """Everything of a report, to render it again later exactly as it was (report.json in a bundle)."""
    return {"format": "kprof-report", "version": 1, "title": report.title, "facts": [list(f) for f in report.facts],
            "warnings": report.warnings, "charts": report.charts, "data": report.data,
            "sections": [_section_dict(s) for s in report.sections]}


def report_from_dict(data, origin: str) -> Report:
    from profiler.errors import KprofError
    try:
        if not isinstance(data, dict) or data.get("format") != "kprof-report":
            raise ValueError("not a kprof report")
        facts = [(str(k), str(v)) for k, v in data["facts"]]
        sections = [_section_from(x) for x in data["sections"]]
        warnings = [str(w) for w in data["warnings"]]
        charts = list(data.get("charts", []))
        extra = data.get("data") or {}
        if not isinstance(extra, dict):
            raise ValueError("'data' is not a mapping")
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as e:
        raise KprofError(f"{origin}: damaged report ({type(e).__name__}: {e})") from None
    return Report(str(data["title"]), facts, sections, warnings, charts, extra)


def subsystem_chart(footprints: dict[str, Footprint]) -> dict:
    """Calls per subsystem, one series per footprint (a command, or the whole workload)."""
    return {"title": "Kernel subsystems (calls)",
            "series": {label: {r["subsystem"]: r["calls"] for r in fp.subsystem_rows()}
                       for label, fp in footprints.items()}}


def _errors(counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])) if counter else ""


def _counts(counter, most: int | None = None) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common(most))


def _with_served(calls: int, served: int):
    """A count of calls the kernel executed, with those an emulated device answered beside it (never added)."""
    return f"{calls} (+{served} emulated)" if served else calls


def _handled_by(handler: str | None, subsystem: str) -> str:
    """``drivers/tty/pty.c`` (its subsystem is its directory); ``fs/ioctl.c (fs.io)``."""
    if not handler:
        return subsystem
    return handler if handler.startswith(subsystem + "/") else f"{handler} ({subsystem})"


_DEVICE_CELL = 14


def _devices_cell(paths: list[str]) -> str:
    """The devices an ioctl row reached, within a terminal column: one short path, else their number."""
    if len(paths) == 1 and len(paths[0]) <= _DEVICE_CELL and paths[0].isprintable():
        return paths[0]
    return f"{len(paths)} paths" if paths else ""


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
        where = info.defined_in or info.note or ""
        rows.append([name, info.number if info.number is not None else "", _with_served(s.calls, s.served),
                     _errors(s.errors),
                     f"{s.time * 1000:.2f}", subsystem_label(info.subsystem, info.file), where])
    secs.append(Section("System calls", ["syscall", "nr", "calls", "errors", "time ms", "subsystem",
                                         "defined in (Linux 6.19.9)"], rows))
    io = fp.ioctl_rows()
    if io:
        full = Section("ioctl requests", ["request", "name", "handled by", "subsystem", "device class",
                                          "devices", "calls", "errors"],
                       [[r["request"], r["name"] or "(unknown)", r["handler"] or "", r["subsystem"],
                         r["device_class"], list(r["devices"]), _with_served(r["calls"], r["served"]),
                         _errors(r["errors"])]
                        for r in io])
        full.text = Section(full.title, ["request", "name", "handled by", "class", "devices", "calls", "errors"],
                            [[r["request"], r["name"] or "(unknown)", _handled_by(r["handler"], r["subsystem"]),
                              r["device_class"], _devices_cell(r["devices"]), _with_served(r["calls"], r["served"]),
                              _errors(r["errors"])]
                             for r in io],
                            "handled by (subsystem, when not the file's directory); every device path: "
                            "-f json or html")
        secs.append(full)
    if fp.devices:
        secs.append(Section("Devices and sysfs files behind fds", ["path", "class", "dev", "calls", "syscalls", "by"],
                            [[p, d["class"], d["dev"] or "", d["calls"], _counts(d["syscalls"]), _counts(d["by"], 3)]
                             for p, d in sorted(fp.devices.items(), key=lambda kv: -kv[1]["calls"])]))
    if fp.network:
        secs.append(Section("Network destinations", ["address", "syscalls", "errors", "by"],
                            [[a, _counts(d["syscalls"]), _errors(d["errors"]), _counts(d["by"], 3)]
                             for a, d in sorted(fp.network.items())]))
    runs = fp.program_runs()
    if sum(r["runs"] for r in runs.values()) > 1:
        secs.append(process_tree_section(fp, runs))
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
    secs.append(kconfig_section(fp))
    return secs


def process_tree_section(fp: Footprint, runs: dict[str, dict]) -> Section:
    """Which programs the command's process tree ran, how often, started by what, and their share of calls."""
    total = fp.total_calls or 1
    rows = [[name, r["runs"], _counts(r["started_by"], 3), r["processes"], r["calls"],
             f"{100 * r['calls'] / total:.1f}", " ".join(sorted(r["paths"]))]
            for name, r in sorted(runs.items(), key=lambda kv: (-kv[1]["runs"], -kv[1]["calls"], kv[0]))]
    n = sum(r["runs"] for r in runs.values())
    return Section("Process tree: programs run", ["program", "runs", "started by", "processes/threads", "calls",
                                                  "% calls", "path"], rows,
                   f"{n} programs started (successful execs; failed PATH probes are under Programs executed); "
                   "calls include a program's forked children that did not exec (a shell's subshells) and "
                   "its threads")


def kconfig_section(fp: Footprint) -> Section:
    """The kernel configuration the footprint needs, grouped by subsystem (``kprof config`` has the detail)."""
    from profiler.kernel import kconfig

    by_sub: dict[str, list] = {}
    for r in kconfig.needed_symbols(fp):
        by_sub.setdefault(kconfig.subsystem_of(r), []).append(r)
    rows = [[sub, ", ".join(r.condition for r in reqs), ", ".join(m for r in reqs for m in kconfig.module_names(r))]
            for sub, reqs in sorted(by_sub.items())]
    return Section("Kernel configuration (Linux 6.19.9 Kconfig)", ["subsystem", "needs", "can be modules"], rows,
                   "what the kernel must be built with for these syscalls, ioctls and devices; `kprof config RESULT` "
                   "shows why, and --check CONFIG checks a kernel's config")


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"title": report.title, "facts": dict(report.facts), "warnings": report.warnings,
                           **report.data, "charts": report.charts,
                           "sections": [{"title": s.title, "headers": s.headers, "rows": s.rows, "note": s.note,
                                         **({"code": s.code, "code_lang": s.code_lang} if s.code else {})}
                                        for s in report.sections]}, indent=1, default=str)
    if fmt == "html":
        from profiler.render.html import render_html
        return render_html(report)
    md = fmt == "markdown"
    out = [f"# {report.title}" if md else report.title, "" if md else "=" * len(report.title)]
    for label, value in report.facts:
        out.append(f"- **{label}:** {value}" if md else f"{label}: {value}")
    for w in report.warnings:
        out.append(f"> **Warning:** {w}" if md else f"WARNING: {w}")
    for s in report.sections:
        s = s.text or s
        out += ["", f"## {s.title}" if md else s.title, "" if md else "-" * len(s.title)]
        if s.rows:
            out.append(table_text(s.headers, s.rows, fmt))
        else:
            out.append("(none)")
        if s.note:
            out += ["", f"_{s.note}_" if md else f"note: {s.note}"]
        if s.code and md:
            out += ["", f"```{s.code_lang}", s.code, "```"]
    return "\n".join(out) + "\n"


WIDTH = 100   # terminal and Markdown tables fit this many columns; JSON and HTML keep every cell whole
_MAX_LINES = 4  # a path list longer than this many lines of its terminal cell is summarised per directory


def table_text(headers: list, rows: list, fmt: str, width: int = WIDTH) -> str:
    """A table in ``fmt`` (table or markdown) no wider than ``width``: the widest columns are narrowed until
    it fits; a long cell wraps (terminal) or is cut with its length said (Markdown: JSON/HTML have it all);
    a long list of paths becomes counts per directory."""
    import tabulate as tb  # imported only when a table is drawn

    md = fmt == "markdown"
    texts = [[_md_cell(c) if md else str(c) for c in r] for r in rows]
    heads = [str(h) for h in headers]
    # a terminal column is as wide as its widest line, 2 spaces between; Markdown adds "| " and " |"
    budget = width - (3 * len(heads) + 1 if md else 2 * (len(heads) - 1))
    widths = _fit_widths(heads, texts, budget, headers_wrap=not md)
    # a path list too long for its cell becomes counts per directory; then the widths are fitted again
    texts = [[_summarise_paths(c, w * (1 if md else _MAX_LINES)) for c, w in zip(r, widths)] for r in texts]
    widths = _fit_widths(heads, texts, budget, headers_wrap=not md)
    cut = _cut_md if md else _wrap
    texts = [[cut(c, w) for c, w in zip(r, widths)] for r in texts]
    heads = [h if md else _wrap(h, w) for h, w in zip(heads, widths)]
    padding, tb.MIN_PADDING = tb.MIN_PADDING, 0   # no extra room around headers: widths are ours
    try:
        return tb.tabulate(texts, headers=heads, tablefmt=_TABLEFMT[fmt], disable_numparse=True)
    finally:
        tb.MIN_PADDING = padding


def _fit_widths(headers: list[str], rows: list[list[str]], budget: int, headers_wrap: bool) -> list[int]:
    """Column widths summing to at most ``budget`` where possible: the widest are capped at the largest cap
    that fits, never below the floors below (a table whose floors do not fit is wider)."""
    cols = list(zip(*rows)) if rows else [[] for _ in headers]
    natural = [max([len(h)] + [max(map(len, c.split("\n"))) for c in col]) for h, col in zip(headers, cols)]
    # a column is never narrower than its longest word (up to 32 characters: a CONFIG_ name, a path part),
    # so wrapping breaks between words; in Markdown, where headers cannot wrap, than its header
    words = [min(32, max([len(w) for c in col for w in c.split()] + [0])) for col in cols]
    floor = [min(n, max(8, w)) if headers_wrap else max(min(n, max(8, w)), len(h))
             for n, w, h in zip(natural, words, headers)]
    if sum(natural) <= budget:
        return natural
    lo, hi = 0, max(natural)
    while lo < hi:  # the largest cap whose widths fit
        mid = (lo + hi + 1) // 2
        if sum(max(f, min(n, mid)) for n, f in zip(natural, floor)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return [max(f, min(n, lo)) for n, f in zip(natural, floor)]


def _summarise_paths(text: str, room: int) -> str:
    """A list of paths too long for its cell → how many under each directory ("60 under /dev/pts")."""
    paths = text.split()
    if len(text) <= room or len(paths) < 4 or not all(p.startswith(("/", "$")) for p in paths):
        return text
    dirs = Counter(p.rsplit("/", 1)[0] or "/" for p in paths)
    return ", ".join(f"{n} under {d}" if n > 1 else next(p for p in paths if p.startswith(d + "/"))
                     for d, n in sorted(dirs.items(), key=lambda kv: (-kv[1], kv[0])))


def _wrap(text: str, width: int) -> str:
    import textwrap
    if len(text) <= width and "\n" not in text:
        return text
    text = _summarise_paths(text, width * _MAX_LINES)
    # wrapped whole: nothing of a terminal table is lost, it only grows taller
    return "\n".join(ln for part in text.split("\n")
                     for ln in (textwrap.wrap(part, width, break_on_hyphens=False) or [""]))


def _cut_md(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    text = _summarise_paths(text, width)
    if len(text) <= width:
        return text
    for more in (f"… ({len(text)} chars in all)", f"… ({len(text)} chars)", "…"):  # all of it: JSON/HTML
        if len(more) <= width // 2 or more == "…":  # at least half of the cell keeps the text
            break
    return text[:width - len(more)].rstrip("\\") + more


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
