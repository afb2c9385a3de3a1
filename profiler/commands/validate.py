"""Check scenario files against the scenario schema (profiler/schema/scenario.schema.json), and workload
files (kind: workload) against the workload schema (profiler/schema/workload.schema.json).

Every problem is reported as FILE:LINE: KEY: what is wrong. The check is always in full. With --keep,
jsonschema's verdict on each valid scenario file's exact text is kept in kprof's virtual environment
(.venv/kprof-validated; setup.sh does this for the shipped scenarios), so that kprof run, check and baseline
save of that text, unchanged, need not load jsonschema again. Exit status 0 when all files are valid (and,
with --keep, their verdicts kept), 2 otherwise."""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="scenario YAML file(s)")
    p.add_argument("--keep", action="store_true",
                   help="keep the valid scenario files' verdicts in kprof's virtual environment "
                        "(.venv/kprof-validated): kprof run, check and baseline save of such a file, unchanged, "
                        "do not check it again")


def main(args) -> int:
    from profiler import validated
    from profiler.errors import KprofError
    from profiler.scenario import keep_checked, read_scenario_file, scenario_from_text
    from profiler.workload import is_workload_file, load_workload

    bad = 0
    passed = []
    for path in args.files:
        try:
            if is_workload_file(path):
                load_workload(path)
            else:
                raw = read_scenario_file(path)
                scenario_from_text(path, raw)
                passed.append(raw)
            print(f"ok: {path}")
        except KprofError as e:
            bad += 1
            print(str(e), file=sys.stderr)
    if bad:
        print(f"kprof: {bad} of {len(args.files)} scenario file(s) invalid", file=sys.stderr)
    if args.keep:
        try:
            held = keep_checked(passed)
        except KprofError as e:
            print(f"kprof: error: {e}", file=sys.stderr)
            return 2
        print(f"kprof: {len(passed)} valid scenario file(s) kept as checked ({held} in all, "
              f"{validated.MEMO})", file=sys.stderr)
    return 2 if bad else 0
