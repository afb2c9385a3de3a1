"""The package's layering (issue 11), read from the source with ``ast``: the command-line layer is on top and
nothing below imports it; the footprint does not read strace syntax; the recorders sit below the footprint
and the fault rules. Violations not yet mended are listed here by name, so a new one fails the test, and so
does mending one without taking it off the list."""
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


def test_the_rules_see_a_violation():
    assert _breaks("profiler.alongside", "profiler.commands.ftrace")
    assert _breaks("profiler.record.strace", "profiler.faults")
    assert not _breaks("profiler.commands.ftrace", "profiler.wholetrace")
    assert ("profiler.commands.ftrace", "profiler.wholetrace") in _imports()
