"""Kernel knowledge for kprof: syscall tables, subsystems, device classes, ioctl decoding.

All facts come from the generated TSV files in ``profiler/kernel/data`` (Linux 6.19.9, made by
``tools/gen_kernel_data.py``). Each submodule loads only the files it needs, on first use.
"""
from __future__ import annotations

import os

KERNEL_VERSION = "6.19.9"
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def read_rows(name: str) -> list[list[str]]:
    """Rows of a generated TSV file (comment lines and the column-title line dropped)."""
    path = os.path.join(DATA_DIR, name)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        from profiler.errors import KprofError
        raise KprofError(f"kernel data file {path} cannot be read ({e.strerror}); "
                         "regenerate it with: .venv/bin/python tools/gen_kernel_data.py") from None
    rows = [ln.split("\t") for ln in text.split("\n") if ln and ln[0] != "#"]
    return rows[1:]
