"""A report and how to draw it: the model (profiler.render.model), the section builders
(profiler.render.sections) and ``render(report, fmt)``, which hands it to the renderer of that format
(profiler.render.<format>). The names are gathered here for the modules that import them from here."""
from __future__ import annotations

from profiler.render.model import DiffReport, Report, Section, report_from_dict, report_to_dict
from profiler.render.sections import (footprint_facts, footprint_sections, footprint_warnings, kconfig_section,
                                      process_tree_section, subsystem_chart)

__all__ = ["DiffReport", "Report", "Section", "footprint_facts", "footprint_sections", "footprint_warnings",
           "kconfig_section", "process_tree_section", "render", "report_from_dict", "report_to_dict",
           "subsystem_chart", "table_text"]


def render(report: Report, fmt: str) -> str:
    """``report`` drawn in ``fmt`` (profiler.render.FORMATS; junit for a DiffReport)."""
    from profiler.render import renderer
    return renderer(fmt).render(report)


def table_text(headers: list, rows: list, fmt: str, **kw) -> str:
    """A table in ``fmt`` (table or markdown) that fits a terminal (profiler.render.table.table_text)."""
    from profiler.render.table import table_text as draw
    return draw(headers, rows, fmt, **kw)
