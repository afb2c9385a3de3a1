"""Shared test helpers.

Tests use the real tools (strace, node, oref0). Outside CI a test whose tool or privilege is missing is
skipped with the reason; in CI (CI=true, as root) nothing is skipped for that reason: it runs, and fails
if the machine lacks what it needs, so a missing install step cannot hide behind a skip.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
IN_CI = os.environ.get("CI") == "true"


def _needs(ok: bool, reason: str):
    return pytest.mark.skipif(not ok and not IN_CI, reason=reason)


needs_strace = _needs(shutil.which("strace") is not None, "strace is not installed (./setup.sh installs it)")
needs_root = _needs(os.geteuid() == 0, "needs root (network namespaces, tracefs)")
needs_oref0 = _needs((ROOT / "node_modules" / "oref0").is_dir() and shutil.which("node") is not None,
                     "oref0/node not installed (./setup.sh runs npm ci)")


def kprof(*args, check=None, cwd=None, timeout=300, env=None):
    """Run the real CLI in a subprocess, as a user would; returns the CompletedProcess."""
    p = subprocess.run([sys.executable, "-m", "profiler", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd or ROOT, timeout=timeout, env={**os.environ, **(env or {})})
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    return p


def per_thread_logs_in_order(paths) -> list[str]:
    """strace -ff -ttt logs (one per thread, so no <unfinished ...> splits: Go tools run on several threads)
    merged by time, timestamps removed. A call interrupted by a signal (Go's preemption SIGURG) and restarted
    by the kernel is logged twice, "= ? ERESTARTSYS" and then again: it is one call of the program, kept once."""
    lines = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            stamp, _, call = line.partition(" ")
            if " = ? ERESTART" not in call:
                lines.append((float(stamp), call))
    return [call for _, call in sorted(lines, key=lambda x: x[0])]
