"""The JSON format: every cell whole (terminal and Markdown tables narrow them), the report's extra data
(e.g. "cross_check") as top-level keys."""
from __future__ import annotations

import json

from profiler.render.base import Renderer


class JsonRenderer(Renderer):
    name = "json"
    output_file_extension = "json"

    def render(self, report) -> str:
        return json.dumps({"title": report.title, "facts": dict(report.facts), "warnings": report.warnings,
                           **report.data, "charts": report.charts,
                           "sections": [{"title": s.title, "headers": s.headers, "rows": s.rows, "note": s.note,
                                         **({"code": s.code, "code_lang": s.code_lang} if s.code else {})}
                                        for s in report.sections]}, indent=1, default=str)
