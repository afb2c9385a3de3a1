"""What a report is, independent of its format: a title, "label: value" facts, warnings, charts and sections
(tables). Builders (``profiler.render.sections``) make them; renderers (one module per format) draw them."""
from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass
class DiffReport(Report):
    """A report of comparisons (kprof check, kprof compare): also the (label, profiler.compare.Diff) pairs it
    was built from, which the JUnit renderer draws instead of the sections."""
    diffs: list[tuple[str, object]] = field(default_factory=list)


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
