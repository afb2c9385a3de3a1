"""Renderers: report sections drawn as a terminal table, Markdown or JSON."""
FORMATS = ("table", "markdown", "json")
