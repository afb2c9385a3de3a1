"""The terminal table format (and the text layout Markdown shares): facts, warnings, then each section as a
table no wider than WIDTH columns."""
from __future__ import annotations

from collections import Counter

from profiler.render.base import Renderer

_TABLEFMT = {"table": "simple", "markdown": "github"}


class TableRenderer(Renderer):
    name = "table"
    output_file_extension = "txt"

    def render(self, report) -> str:
        return render_text(report, self.name)


def render_text(report, fmt: str) -> str:
    """``report`` as a terminal table (``fmt`` table) or Markdown (``fmt`` markdown)."""
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
