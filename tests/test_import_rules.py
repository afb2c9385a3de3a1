"""The package's layering (issue 11), read from the source with ``ast``: the command-line layer is on top and
nothing below imports it; the footprint does not read strace syntax; the recorders sit below the footprint
and the fault rules. Violations not yet mended are listed here by name, so a new one fails the test, and so
does mending one without taking it off the list. The whole layer order (docs/architecture.md, "Layers") is
checked too: a module imports only from its own layer or the layers below."""
from __future__ import annotations

import ast

from .conftest import ROOT

PACKAGE = ROOT / "profiler"
# (importing module, imported module) still to mend (issue 11: typed events, record/ below faults): none left
KNOWN: set[tuple[str, str]] = set()


def _imports() -> set[tuple[str, str]]:
    """(module, module it imports) for every import in the package, at the top or inside a function."""
    out = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        mod = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                out |= {(mod, a.name) for a in node.names if a.name.startswith("profiler")}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("profiler"):
                out.add((mod, node.module))
                out |= {(mod, f"{node.module}.{a.name}") for a in node.names
                        if (PACKAGE.parent / f"{node.module}.{a.name}".replace(".", "/")).with_suffix(".py").exists()}
    return out


def _breaks(importer: str, imported: str) -> bool:
    if imported.startswith("profiler.commands") and not importer.startswith(("profiler.commands", "profiler.cli")):
        return True                               # the CLI layer imports the domain, never the reverse
    if importer == "profiler.footprint" and imported.startswith("profiler.parse"):
        return True                               # strace syntax stays in parse/
    return importer.startswith("profiler.record") and imported in ("profiler.footprint", "profiler.faults")


def test_layering():
    found = {pair for pair in _imports() if _breaks(*pair)}
    assert found - KNOWN == set(), f"new layering violations: {sorted(found - KNOWN)}"
    assert KNOWN - found == set(), f"mended (take them off KNOWN): {sorted(KNOWN - found)}"


# docs/architecture.md's layers, top down; a module's layer is its longest prefix listed here
LAYERS = [
    ("profiler.cli", "profiler.commands", "profiler.__main__"),
    ("profiler.render", "profiler.alongside", "profiler.coverage"),
    ("profiler.compare", "profiler.faults", "profiler.baseline", "profiler.workload", "profiler.wholetrace"),
    ("profiler.runner", "profiler.bundle", "profiler.scenario", "profiler.parallel", "profiler.environment",
     "profiler.pump"),
    ("profiler.footprint", "profiler.analysis", "profiler.sequences", "profiler.parse.ftrace_text"),
    ("profiler.record", "profiler.inject"),
    ("profiler.parse",),
    ("profiler.events", "profiler.kernel", "profiler.errors", "profiler.outfiles", "profiler.libc", "profiler.digest",
     "profiler.signals", "profiler.validated", "profiler"),
]


def _layer(module: str) -> int:
    best = max((p for layer in LAYERS for p in layer if module == p or module.startswith(p + ".")), key=len)
    return next(i for i, layer in enumerate(LAYERS) if best in layer)


def test_every_import_goes_down_the_layers():
    up = sorted(f"{a} imports {b}" for a, b in _imports() if _layer(b) < _layer(a))
    assert up == [], "imports up the layers (docs/architecture.md): " + "; ".join(up)


def test_the_layers_see_an_import_upwards():
    assert _layer("profiler.parse.ftrace_text") < _layer("profiler.parse.strace_log") < _layer("profiler.kernel.kconfig")
    assert _layer("profiler.record.ptrace") < _layer("profiler.parse.strace_text")      # index 0 is the top
    assert _layer("profiler.commands.run") == 0 and _layer("profiler.render.html") == 1


def test_the_rules_see_a_violation():
    assert _breaks("profiler.alongside", "profiler.commands.ftrace")
    assert _breaks("profiler.record.strace", "profiler.faults")
    assert not _breaks("profiler.commands.ftrace", "profiler.wholetrace")
    assert ("profiler.commands.ftrace", "profiler.wholetrace") in _imports()
