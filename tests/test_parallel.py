"""-j N (profiler/parallel.py): jobs side by side in forked processes, results and output in scenario order,
errors raised as if the job had run alone, and distinct bundles for scenarios started in the same second."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from profiler.errors import KprofError
from profiler.parallel import run_ordered

from .conftest import ROOT, needs_oref0, needs_root, needs_strace


def _job(i: int, pause: float):
    time.sleep(pause)
    if i == 3:
        raise KprofError("job 3 failed")
    return i, os.getpid()


def test_results_in_order_from_separate_processes():
    got = run_ordered(_job, [(0, 0.3), (1, 0.0), (2, 0.1)], jobs=2)
    assert [i for i, _ in got] == [0, 1, 2]
    assert len({pid for _, pid in got} | {os.getpid()}) == 4      # each job its own process
    assert [i for i, _ in run_ordered(_job, [(0, 0), (1, 0)], jobs=1)] == [0, 1]


def test_a_failed_job_raises_its_error_in_order():
    with pytest.raises(KprofError, match="job 3 failed"):
        run_ordered(_job, [(0, 0.0), (3, 0.0), (2, 0.2)], jobs=3)


@needs_strace
@needs_oref0
@needs_root
def test_run_j2_writes_each_bundle_and_prints_in_order(tmp_path):
    names = ["get-profile", "calculate-iob", "meal"]
    p = subprocess.run([sys.executable, "-m", "profiler", "run", *(str(ROOT / "scenarios" / f"{n}.yaml") for n in names),
                        "-j", "2", "-o", str(tmp_path), "-f", "json"], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr
    bundles = [line.split(": ")[-1] for line in p.stderr.splitlines() if "result bundle:" in line]
    assert [os.path.basename(b).rsplit("-", 2)[0] for b in bundles] == names
    for b in bundles:
        assert os.path.exists(os.path.join(b, "footprint.json")) and os.path.exists(os.path.join(b, "report.txt"))
    assert p.stdout.index("get-profile") < p.stdout.index("calculate-iob") < p.stdout.index("meal")


def test_bad_jobs_value_is_one_clear_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "profiler", "run", str(ROOT / "scenarios" / "meal.yaml"), "-j", "0"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 2 and "-j/--jobs must be at least 1" in p.stderr and "Traceback" not in p.stderr
