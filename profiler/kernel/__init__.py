"""Kernel knowledge for kprof: syscall tables, subsystems, device classes, ioctl decoding.

All facts come from the generated TSV files in ``profiler/kernel/data`` (made by ``tools/gen_kernel_data.py``;
KERNEL_VERSION, the Linux version they describe, is read from their headers). Each submodule loads only the
files it needs, on first use (``arches`` on import).
"""
from __future__ import annotations

import os
import re

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def data_kernel_version(name: str = "arches.tsv") -> str:
    """The Linux version a generated data file is for (its ``# kernel: Linux X`` header line); "unknown" if the
    file is missing or has no such line (read_rows says what to do then)."""
    try:
        with open(os.path.join(DATA_DIR, name), encoding="utf-8") as f:
            for line in f:
                if not line.startswith("#"):
                    break
                m = re.match(r"# kernel: Linux (\S+)", line)
                if m:
                    return m.group(1)
    except OSError:
        pass
    return "unknown"


KERNEL_VERSION = data_kernel_version()


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
