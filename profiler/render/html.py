"""One self-contained HTML file: no scripts, fonts, styles or images from anywhere else (the style sheet and
the sorting script, html_resources/report.css and report.js, are copied into the page).

Charts are inline SVG; tables sort when a header is clicked (a few lines of inline script); the page
prints cleanly (no sticky headers, no colours needed to read it).
"""
from __future__ import annotations

import functools
import html
import os

from profiler.render.base import Renderer

_PALETTE = ["#3465a4", "#f57900", "#4e9a06", "#75507b", "#c4a000", "#cc0000", "#06989a", "#8f5902"]


@functools.cache
def resource(name: str) -> str:
    """A file of html_resources/ (package data: an installed kprof has it too). Read beside this module, as the
    kernel tables are (importlib.resources would cost every process that renders a report ~10 ms to import)."""
    with open(os.path.join(os.path.dirname(__file__), "html_resources", name), encoding="utf-8") as f:
        return f.read()


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
             f"<title>{_e(report.title)}</title><style>{resource('report.css')}</style></head><body>", f"<h1>{_e(report.title)}</h1>"]
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
    parts.append(f"<script>{resource('report.js')}</script></body></html>")
    return "\n".join(parts) + "\n"


class HtmlRenderer(Renderer):
    name = "html"
    output_file_extension = "html"

    def render(self, report) -> str:
        return render_html(report)
