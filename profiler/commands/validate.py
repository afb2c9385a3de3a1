"""Check scenario files against the scenario schema (profiler/schema/scenario.schema.json), and workload
files (kind: workload) against the workload schema (profiler/schema/workload.schema.json).

Every problem is reported as FILE:LINE: KEY: what is wrong. Exit status 0 when all files are valid, 2
otherwise."""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="scenario YAML file(s)")


def main(args) -> int:
    from profiler.errors import KprofError
    from profiler.scenario import load_scenario
    from profiler.workload import is_workload_file, load_workload

    bad = 0
    for path in args.files:
        try:
            (load_workload if is_workload_file(path) else load_scenario)(path)
            print(f"ok: {path}")
        except KprofError as e:
            bad += 1
            print(str(e), file=sys.stderr)
    if bad:
        print(f"kprof: {bad} of {len(args.files)} scenario file(s) invalid", file=sys.stderr)
        return 2
    return 0
