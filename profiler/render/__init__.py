"""Renderers: a report drawn as a terminal table, Markdown, JSON or one self-contained HTML file (and a
comparison also as JUnit XML). One module per format, each with a class whose ``render(report) -> str``
draws it and whose ``output_file_extension`` names its files; ``renderer(fmt)`` imports only the one asked
for."""
from __future__ import annotations

from pathlib import Path

FORMATS = ("table", "markdown", "json", "html")          # every report
DIFF_FORMATS = FORMATS + ("junit",)                      # reports of comparisons (check, compare)

# format → (module in profiler.render, class)
_RENDERERS = {"table": ("table", "TableRenderer"), "markdown": ("markdown", "MarkdownRenderer"),
              "json": ("jsonfmt", "JsonRenderer"), "html": ("html", "HtmlRenderer"),
              "junit": ("junit", "JUnitRenderer")}
# an output file's suffix → the format it is written in when -f is not given (kprof report)
SUFFIXES = {".html": "html", ".htm": "html", ".md": "markdown", ".json": "json", ".txt": "table"}


def renderer(fmt: str):
    """The renderer of ``fmt`` (one of DIFF_FORMATS)."""
    import importlib

    module, cls = _RENDERERS[fmt]
    return getattr(importlib.import_module(f"profiler.render.{module}"), cls)()


def guess_format(path: Path | None, default: str = "table") -> str:
    """The format an output file's name asks for (report.html → html), else ``default``."""
    return SUFFIXES.get(path.suffix, default) if path is not None else default
