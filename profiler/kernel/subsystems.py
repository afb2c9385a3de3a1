"""kprof's kernel subsystem taxonomy and its mapping to ELISA's coarse categories.

Data: ``data/subsystems.tsv`` (id, default ELISA category, description) and ``data/elisa-syscalls.tsv``
(per-syscall categories that differ from the default, as in the kernel's workload-tracing document).
"""
from __future__ import annotations

from functools import lru_cache

from profiler.kernel import read_rows

_ROWS = read_rows("subsystems.tsv")
SUBSYSTEMS: dict[str, str] = {r[0]: r[2] for r in _ROWS}
_DEFAULT_ELISA = {r[0]: r[1] for r in _ROWS}


@lru_cache(maxsize=None)
def _elisa_syscalls() -> dict[str, str]:
    return {r[0]: r[1] for r in read_rows("elisa-syscalls.tsv")}


def elisa_category(subsystem: str, syscall: str | None = None) -> str:
    """ELISA category for a subsystem id, refined by syscall name where ELISA's documents differ."""
    if syscall is not None:
        cat = _elisa_syscalls().get(syscall)
        if cat:
            return cat
    return _DEFAULT_ELISA.get(subsystem, "Unknown")


def subsystem_label(subsystem: str, kernel_file: str | None) -> str:
    """Split ``drivers`` by the driver's own directory (``drivers/tty``, ``drivers/spi``, ``drivers/char``)."""
    if subsystem == "drivers" and kernel_file and kernel_file.startswith("drivers/"):
        parts = kernel_file.split("/")
        if len(parts) > 2:
            return f"drivers/{parts[1]}"
    return subsystem
