"""The renderer interface: one class per format (profiler/render/<format>.py)."""
from __future__ import annotations


class Renderer:
    """Draws a report (profiler.render.model.Report) in one format."""
    name = ""                    # the -f value
    output_file_extension = ""   # what a file of this format is called (report.html)

    def render(self, report) -> str:
        raise NotImplementedError
