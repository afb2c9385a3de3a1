"""List scenarios: name, description, what they need, and whether they can run on this machine
(a missing tool, no privilege for their network or mount namespace, a pump that will be emulated)."""
from __future__ import annotations

from pathlib import Path

from profiler.commands import add_output_arguments


def add_arguments(p) -> None:
    p.add_argument("dir", nargs="?", type=Path, default=Path("scenarios"), help="scenario directory (default scenarios/)")
    add_output_arguments(p, formats=("table", "markdown", "json"), output=False)


def main(args) -> int:
    import json
    import os

    from profiler.render.table import table_text

    from profiler import runner
    from profiler.errors import KprofError
    from profiler.record.strace import strace_path
    from profiler.scenario import load_scenario

    files = sorted(args.dir.glob("*.yaml"))
    if not files:
        raise KprofError(f"{args.dir}: no scenario files (*.yaml) here")
    try:
        strace_path()
        no_strace = None
    except KprofError:
        no_strace = "strace is not installed"
    rows = []
    for f in files:
        try:
            sc = load_scenario(f)
        except KprofError as e:
            rows.append({"scenario": f.stem, "description": "", "needs": "", "runs here": f"invalid: {e}"})
            continue
        problems = [f"missing {t}" for t in runner.missing_tools(sc)]
        if no_strace:
            problems.append(no_strace)
        if (sc.network == "none" or sc.pump is not None) and os.geteuid() != 0 and not _userns_possible():
            problems.append("no privilege for namespaces (run as root)")
        notes = []
        if sc.pump is not None:
            try:
                notes.append(f"pump emulated, radio {sc.radio}; client: {runner.pump_client(sc)['client']}")
            except KprofError as e:
                problems.append(str(e))
        needs = ", ".join(sc.requires + (["network namespace"] if sc.network == "none" else []) +
                          (["pump emulator"] if sc.pump is not None else []))
        status = "no: " + "; ".join(problems) if problems else "yes" + (f" ({'; '.join(notes)})" if notes else "")
        rows.append({"scenario": sc.name, "description": " ".join(sc.description.split())[:100], "needs": needs,
                     "runs here": status})
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        print(table_text(list(rows[0]), [list(r.values()) for r in rows], args.format))
    return 0


def _userns_possible() -> bool:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            return int(f.read()) > 0
    except (OSError, ValueError):
        return False
