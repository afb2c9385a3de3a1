"""One self-contained HTML file: no scripts, fonts, styles or images from anywhere else.

Charts are inline SVG; tables sort when a header is clicked (a few lines of inline script); the page
prints cleanly (no sticky headers, no colours needed to read it).
"""
from __future__ import annotations

import html

_PALETTE = ["#3465a4", "#f57900", "#4e9a06", "#75507b", "#c4a000", "#cc0000", "#06989a", "#8f5902"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.3em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dl.facts dt{font-weight:600}dl.facts dd{margin:0}
.warning{background:#fff4e5;border-left:4px solid #f57900;padding:.4em .8em;margin:.4em 0}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none}th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr.new td{background:#e6f4ea}tr.vanished td{background:#fdecea}
tr.count td{background:#fff8e1}tr.failed td{background:#fdecea;font-weight:600}.note{color:#555;font-style:italic}
svg text{font:12px system-ui,sans-serif}.legend span{display:inline-block;margin-right:1.2em}
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
@media print{body{margin:0;max-width:none}th{cursor:auto;background:#eee}h2{page-break-after:avoid}tr{page-break-inside:avoid}}
"""

_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th, _) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var rows = Array.prototype.slice.call(body.rows);
    var key = function (r) { var t = r.cells[col].textContent.trim(); var n = parseFloat(t.replace(/,/g, ""));
                             return isNaN(n) || !/^-?[\\d.,]+$/.test(t) ? t.toLowerCase() : n; };
    rows.sort(function (a, b) { var x = key(a), y = key(b); var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
                                : (typeof x === "number" ? -1 : 1); return dir === "ascending" ? c : -c; });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _cell(value) -> str:
    """A cell; a list (e.g. every path an ioctl reached) one item a line."""
    return "<br>".join(_e(v) for v in value) if isinstance(value, list) else _e(value)


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or (
        isinstance(value, str) and value.replace(".", "", 1).isdigit())


def bar_chart(title: str, series: dict[str, dict[str, float]]) -> str:
    """Horizontal grouped bars: one group per category (e.g. subsystem), one bar per series (e.g. command)."""
    categories = sorted({c for s in series.values() for c in s}, key=lambda c: (-max(s.get(c, 0) for s in series.values()), c))
    names = list(series)
    peak = max((v for s in series.values() for v in s.values()), default=1) or 1
    bar, gap, label_w, width = 14, 8, 170, 900
    group = bar * len(names) + gap
    height = group * len(categories) + 10
    out = [f'<figure class="chart"><svg role="img" aria-label="{_e(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, cat in enumerate(categories):
        y0 = i * group
        out.append(f'<text x="{label_w - 6}" y="{y0 + group / 2}" text-anchor="end" dominant-baseline="middle">'
                   f'{_e(cat)}</text>')
        for j, name in enumerate(names):
            v = series[name].get(cat, 0)
            w = (width - label_w - 80) * v / peak
            y = y0 + j * bar
            out.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 2}" '
                       f'fill="{_PALETTE[j % len(_PALETTE)]}"><title>{_e(name)}: {_e(cat)} {v:g}</title></rect>'
                       f'<text x="{label_w + w + 4:.1f}" y="{y + bar / 2}" dominant-baseline="middle">{v:g}</text>')
    out.append("</svg>")
    if len(names) > 1:
        out.append('<figcaption class="legend">' + "".join(
            f'<span><i style="background:{_PALETTE[j % len(_PALETTE)]}"></i>{_e(n)}</span>'
            for j, n in enumerate(names)) + "</figcaption>")
    out.append("</figure>")
    return "".join(out)


def render_html(report) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_e(report.title)}</title><style>{_CSS}</style></head><body>", f"<h1>{_e(report.title)}</h1>"]
    if report.facts:
        parts.append('<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in report.facts)
                     + "</dl>")
    parts += [f'<p class="warning">{_e(w)}</p>' for w in report.warnings]
    for chart in report.charts:
        parts.append(f"<h2>{_e(chart['title'])}</h2>{bar_chart(chart['title'], chart['series'])}")
    for s in report.sections:
        parts.append(f"<h2>{_e(s.title)}</h2>")
        if s.rows:
            head = "".join(f'<th scope="col">{_e(h)}</th>' for h in s.headers)
            body = []
            for i, row in enumerate(s.rows):
                cls = f' class="{_e(s.row_classes[i])}"' if s.row_classes and s.row_classes[i] else ""
                cells = "".join(f'<td class="num">{_e(c)}</td>' if _is_num(c) else f"<td>{_cell(c)}</td>" for c in row)
                body.append(f"<tr{cls}>{cells}</tr>")
            parts.append(f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
        else:
            parts.append("<p>(none)</p>")
        if s.note:
            parts.append(f'<p class="note">{_e(s.note)}</p>')
        if s.code:
            parts.append(f'<details><summary>{_e(s.code_lang or "source")}</summary><pre>{_e(s.code)}</pre></details>')
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"
