"""The Markdown format: the terminal layout with GitHub tables, headings and Mermaid code blocks."""
from __future__ import annotations

from profiler.render.table import TableRenderer


class MarkdownRenderer(TableRenderer):
    name = "markdown"
    output_file_extension = "md"
