"""Device class of an fd from the path strace -yy prints for it (or a plain path).

Data: ``data/device-paths.tsv`` (regex -> class, first match wins), ``data/device-majors.tsv`` (fallback on the
``<char M:N>`` / ``<block M:N>`` suffix) and ``data/device-classes.tsv``.
"""
from __future__ import annotations

import re
from functools import lru_cache

from profiler.kernel import read_rows

_SUFFIX = re.compile(r"<(char|block) (\d+):(\d+)>$")


@lru_cache(maxsize=None)
def _patterns() -> tuple:
    return tuple((re.compile(rx), cls) for rx, cls in read_rows("device-paths.tsv"))


@lru_cache(maxsize=None)
def _majors() -> tuple:
    out = []
    for typ, major, lo, hi, cls in read_rows("device-majors.tsv"):
        out.append((typ, None if major == "*" else int(major), None if lo == "*" else int(lo),
                    None if hi == "*" else int(hi), cls))
    return tuple(out)


@lru_cache(maxsize=None)
def _classes() -> dict[str, tuple[bool, tuple[str, ...], str]]:
    return {r[0]: (r[1] == "yes", tuple(filter(None, r[2].split(","))), r[3]) for r in read_rows("device-classes.tsv")}


def device_classes() -> dict[str, str]:
    """Every class id classify_path() can return -> its description."""
    return {k: v[2] for k, v in _classes().items()}


@lru_cache(maxsize=4096)
def classify_path(path: str | None) -> str:
    """Short class id for what is behind an fd: "pts", "spi", "socket:tcp", "file", ... ("unknown" if no path)."""
    if not path:
        return "unknown"
    p = path.strip()
    dev = None
    m = _SUFFIX.search(p)
    if m:
        dev = (m.group(1), int(m.group(2)), int(m.group(3)))
        p = p[: m.start()]
    for rx, cls in _patterns():
        if rx.match(p):
            return cls
    if dev:
        typ, major, minor = dev
        for t, mj, lo, hi, cls in _majors():
            if t == typ and (mj is None or mj == major) and (lo is None or lo <= minor <= hi):
                return cls
    if p.startswith("/dev/") and not p.startswith(("/dev/shm/", "/dev/mqueue/", "/dev/fd/")):
        return "chardev"
    return "file"


def is_device(device_class: str) -> bool:
    c = _classes().get(device_class)
    return bool(c and c[0])
