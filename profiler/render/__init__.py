"""Renderers: report sections drawn as a terminal table, Markdown, JSON or one self-contained HTML file."""
FORMATS = ("table", "markdown", "json", "html")
