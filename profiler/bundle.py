"""Result bundles: the directory ``kprof run`` writes, and its typed run metadata (meta.json).

A bundle holds::

    scenario.yaml   the scenario file as run
    meta.json       RunMeta: versions, kernel, arch, backend, command, how each run ended, checks
    trace.log       the raw trace (trace.bpf.json for the bpf backend), kept whatever happens
    stdout.txt, stderr.txt
    footprint.json  the footprint (only when the command made syscalls)
    report.txt, report.md, report.html, report.json   the rendered report
    run-N/          the same files for runs 2..N when the scenario repeats
    normal-path/    a bundle of its own: the scenario without its faults (fault scenarios only)

``RunMeta`` is modelled on memray's ``Metadata``: one typed record of what ran where and how it ended.
``to_dict``/``from_dict`` keep meta.json's keys, their order and their values exactly as kprof has written
them (tests and readers outside kprof read the file). Keys kprof writes only for some runs (``radio`` for
a pump scenario, ``strace_options`` for the strace backend, ``isolation`` once a run has started,
``workdirs`` with --keep-workdir) are ``ABSENT`` when not written; keys this kprof does not know are kept
in ``extra`` and written back after the known ones.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from profiler.errors import KprofError


class _Absent:
    """A meta.json key that is not written (not the same as a key written as null); reads as empty."""

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


ABSENT = _Absent()

META = "meta.json"
SCENARIO = "scenario.yaml"
FOOTPRINT = "footprint.json"
REPORT_FILES = (("table", "report.txt"), ("markdown", "report.md"), ("html", "report.html"))
REPORT_JSON = "report.json"
NORMAL_PATH = "normal-path"


def trace_name(backend: str) -> str:
    """The raw trace in a bundle: a strace-format log, or the bpf backend's in-kernel aggregates."""
    return "trace.bpf.json" if backend == "bpf" else "trace.log"


@dataclass
class RunRecord:
    """What meta.json says of one run of the command (``runs[i]``)."""

    dir: str                         # "." for the first run, "run-N" for the others
    exit: dict | None                # {"exit": N} or {"signal": NAME, "core_dumped": bool}; None: not recorded
    wall_seconds: float
    timed_out: bool
    interrupted: bool
    left_running: list
    services: list
    parse_problems: list
    modules_loaded: dict
    summary_mismatches: list | None
    failures: list[str]
    ok: bool
    incomplete: bool                 # crashed, killed, timed out or interrupted: only a partial trace

    def fail(self, *reasons: str) -> None:
        """The run did not do what the scenario expects, for ``reasons`` (found after the run, e.g. an
        injection rule that matched no call)."""
        self.failures += reasons
        if reasons:
            self.ok = False

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "RunRecord":
        names = [f.name for f in fields(cls)]
        return cls(**{n: data.get(n) for n in names})


@dataclass
class RunMeta:
    """meta.json of a scenario bundle. Field order is the file's key order."""

    kprof_format: int = 1
    scenario: str | None = None
    scenario_file: str | None = None
    description: str | None = None
    command: list[str] | str | None = None
    shell: bool = False
    backend: str | None = None
    radio: object = ABSENT           # pump scenarios: uart, spi or edison
    radio_fault: object = ABSENT     # pump scenarios: an SPI set-up fault, or None
    inject: list = field(default_factory=list)
    strace_options: object = ABSENT  # the strace backend: the options kprof ran strace with
    network: str | None = None
    arch: str | None = None
    kernel: str | None = None        # the kernel release (uname -r)
    machine: str | None = None       # uname -m
    started: str | None = None       # ISO 8601, UTC
    versions: dict | None = None     # kprof, python, strace, node, oref0
    oref0_tree: dict | None = None   # which OpenAPS install ran (runner.oref0_tree)
    runs: list[RunRecord] = field(default_factory=list)
    pump_client: dict | None = None  # the pump toolset (runner.pump_client), None without a pump
    isolation: object = ABSENT       # the namespaces the command ran in (set once a run has started)
    workdirs: object = ABSENT        # --keep-workdir: the working directories kept
    extra: dict = field(default_factory=dict)   # keys this kprof does not know, written back as they were

    # ---- what the runs say, typed (callers used to search messages for it)

    @property
    def outcome(self) -> str:
        """``incomplete`` (no run, or one crashed, was killed, timed out or was interrupted: only a partial
        trace), ``failed`` (a run did not do what the scenario expects) or ``ok``."""
        if not self.runs or any(r.incomplete for r in self.runs):
            return "incomplete"
        return "ok" if all(r.ok for r in self.runs) else "failed"

    @property
    def exit_status(self) -> int:
        """kprof run's exit status for this bundle: 2 incomplete, 1 failed, 0 ok."""
        return {"incomplete": 2, "failed": 1, "ok": 0}[self.outcome]

    def keep_workdir(self, path) -> None:
        if self.workdirs is ABSENT:
            self.workdirs = []
        self.workdirs.append(str(path))

    @classmethod
    def for_scenario(cls, scenario, network: str, arch: str) -> "RunMeta":
        """A scenario's meta.json before it runs: versions, oref0 tree and runs are filled in as it runs."""
        import datetime

        pump = scenario.pump is not None
        strace_options = ABSENT
        if scenario.backend == "strace":
            from profiler.record.strace import STRACE_OPTIONS
            strace_options = STRACE_OPTIONS
        return cls(scenario=scenario.name, scenario_file=str(scenario.path), description=scenario.description,
                   command=scenario.command, shell=scenario.shell, backend=scenario.backend,
                   radio=scenario.radio if pump else ABSENT, radio_fault=scenario.radio_fault if pump else ABSENT,
                   inject=[rule.to_dict() for rule in scenario.inject], strace_options=strace_options,
                   network=network, arch=arch,
                   kernel=os.uname().release, machine=os.uname().machine,
                   started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))

    # ---- meta.json

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not ABSENT:
                out[f.name] = [r.to_dict() for r in value] if f.name == "runs" else value
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        """meta.json's text, as kprof has always written it."""
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: dict, origin: str = META) -> "RunMeta":
        """A meta.json's content; a shape kprof never wrote is a KprofError naming ``origin``."""
        if not isinstance(data, dict) or not isinstance(data.get("versions", {}), dict) \
                or not isinstance(data.get("runs", []), list) \
                or not all(isinstance(r, dict) for r in data.get("runs", [])):
            raise KprofError(f"{origin}: damaged bundle meta.json (meta, versions or runs of the wrong type)")
        known = [f.name for f in fields(cls) if f.name != "extra"]
        values = {k: data.get(k, ABSENT) for k in known}   # a key the file does not have is not written back
        if "runs" in data:
            values["runs"] = [RunRecord.from_dict(r) for r in data["runs"]]
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def from_json(cls, text: str, origin: str = META) -> "RunMeta":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise KprofError(f"{origin}: damaged bundle meta.json ({e or 'nested too deeply'})") from None
        return cls.from_dict(data, origin)


# ---- a run's record: did it do what the scenario expects

def temp_basal_mismatch(enacted_file: Path, services: list[dict]) -> str | None:
    """Why the emulated pump's temp basal at the end is not the one the command says it enacted, or None."""
    pump = next((s for s in services if s.get("type") == "pump"), None)
    if pump is None:
        return "expect.pump_temp_basal needs an emulated pump (pump:)"
    try:
        enacted = json.loads(enacted_file.read_text())
        rate, duration = float(enacted["rate"]), float(enacted["duration"])
    except (OSError, ValueError, TypeError, KeyError) as e:
        return f"no enacted temp basal in {enacted_file.name} ({type(e).__name__}: {e})"
    running = pump["state"].get("temp_basal")
    if duration == 0:
        return None if not running or not running["duration"] else f"the pump still runs a temp basal: {running}"
    want = f"{rate:g} U/h for up to {duration:g} min"
    if not running or not running["duration"]:
        return f"the pump runs no temp basal; {enacted_file.name} says {want}"
    if running["temp"] != "absolute" or abs(running["rate"] - rate) > 1e-6 or running["duration"] > duration:
        return (f"the pump runs {running['rate']:g}{' %' if running['temp'] == 'percent' else ' U/h'} with "
                f"{running['duration']:g} min left; {enacted_file.name} says {want}")
    return None


def run_record(scenario, o, workdir: Path | None = None) -> RunRecord:
    """What meta.json says of one run (a ``runner.RunOutcome``), including whether it did what the scenario
    expects."""
    failures = []
    end = o.exit
    if o.trace.timed_out:
        failures.append(f"timed out after {scenario.timeout:g} s: process tree killed, partial trace analysed")
    if o.trace.interrupted:
        from profiler.signals import name
        failures.append(f"interrupted ({name(o.trace.signal or 2)}): process tree killed, partial trace analysed")
    if end is None:
        failures.append("no exit status recorded for the command"
                        + (": " + "; ".join(o.trace.strace_messages) if o.trace.strace_messages else ""))
    elif "signal" in end:
        failures.append(f"command killed by {end['signal']}" + (" (core dumped)" if end.get("core_dumped") else ""))
    elif end["exit"] != scenario.expected_exit:
        failures.append(f"exit status {end['exit']}, expected {scenario.expected_exit}")
    for stream in ("stdout", "stderr"):
        want = getattr(scenario.expect, f"{stream}_contains")
        path = o.run_dir / f"{stream}.txt"
        if want is not None and want not in (path.read_text(errors="replace") if path.exists() else ""):
            failures.append(f"{stream} does not contain {want!r}")
    enacted = scenario.expect.pump_temp_basal
    if enacted is not None and workdir is not None:
        problem = temp_basal_mismatch(workdir / enacted, o.services)
        if problem:
            failures.append(problem)
    broken = [f"the emulated pump stopped serving: {s['error']} (its state after the run is not known)"
              for s in o.services if s.get("type") == "pump" and s.get("error")]
    failures += broken
    mismatches = o.analysis.mismatches
    if mismatches is None and o.footprint is not None and scenario.backend == "strace":
        failures.append("the log has no strace -C summary to check kprof's counts against")
    elif mismatches:
        failures.append(("the bpf backend's counts are incomplete or wrong: " if scenario.backend == "bpf" else
                         "kprof's counts differ from strace's own summary: ") + "; ".join(mismatches[:5]))
    return RunRecord(dir=str(o.run_dir.name if o.run_dir.name.startswith("run-") else "."), exit=end,
                     wall_seconds=round(o.trace.wall, 3), timed_out=o.trace.timed_out,
                     interrupted=o.trace.interrupted, left_running=o.trace.left_running or [],
                     services=o.services, parse_problems=o.analysis.problems, modules_loaded=o.modules,
                     summary_mismatches=mismatches, failures=failures, ok=not failures,
                     incomplete=bool(o.trace.timed_out or o.trace.interrupted or end is None or "signal" in end
                                     or broken))


class Bundle:
    """A result bundle directory: where its files are, and its meta.json read and written as RunMeta."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r})"

    @classmethod
    def create(cls, path) -> "Bundle":
        """The bundle at ``path`` (an absolute path: the command runs elsewhere), made if missing."""
        path = Path(path).resolve()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            from profiler.outfiles import write_error
            raise write_error(path, e, "create the directory") from None
        return cls(path)

    @classmethod
    def open(cls, path) -> "Bundle":
        """An existing result bundle (a directory with meta.json or scenario.yaml)."""
        from profiler.outfiles import is_bundle
        path = Path(path)
        if not path.is_dir() or not is_bundle(path):
            raise KprofError(f"{path}: not a result bundle (no meta.json)")
        return cls(path)

    # ---- where things are

    @property
    def meta_path(self) -> Path:
        return self.path / META

    def run_dir(self, i: int) -> Path:
        """Run ``i`` (from 1) of a repeated scenario: the bundle itself for the first."""
        return self.path if i == 1 else self.path / f"run-{i}"

    def trace_path(self, backend: str, i: int = 1) -> Path:
        return self.run_dir(i) / trace_name(backend)

    def later_runs(self) -> dict[int, Path]:
        """The directories of runs 2..N there are (run-N), by number; other names are not runs."""
        found = {}
        for d in self.path.glob("run-*"):
            n = d.name[4:]
            if d.is_dir() and n.isascii() and n.isdigit():
                found[int(n)] = d
        return dict(sorted(found.items()))

    def footprint_paths(self) -> list[Path]:
        """footprint.json of every run that has one, run 1 first, then run-2, run-3 …"""
        runs = [self.path, *self.later_runs().values()]
        return [d / FOOTPRINT for d in runs if (d / FOOTPRINT).is_file()]

    def footprints(self) -> list:
        from profiler.footprint import Footprint
        return [Footprint.load(p) for p in self.footprint_paths()]

    def report_path(self, fmt: str) -> Path:
        return self.path / (REPORT_JSON if fmt == "json" else dict(REPORT_FILES)[fmt])

    @property
    def normal_path(self) -> "Bundle":
        """The scenario without its faults, run first for a fault scenario."""
        return Bundle(self.path / NORMAL_PATH)

    # ---- reading and writing

    def read_meta(self) -> RunMeta | None:
        """meta.json, or None when the bundle has none; a damaged one is a KprofError."""
        try:
            text = self.meta_path.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise KprofError(f"{self.meta_path}: damaged bundle meta.json ({e})") from None
        return RunMeta.from_json(text, str(self.meta_path))

    def write_meta(self, meta: RunMeta) -> None:
        from profiler.outfiles import write_atomic
        write_atomic(self.meta_path, meta.to_json())

    def save_scenario(self, scenario_path: Path) -> None:
        """The scenario file as run."""
        from profiler.outfiles import write_atomic
        write_atomic(self.path / SCENARIO, Path(scenario_path).read_bytes())

    def write_reports(self, texts: dict[str, str]) -> None:
        """The rendered report, one file per format given (table, markdown, html, json)."""
        from profiler.outfiles import write_atomic
        for fmt, text in texts.items():
            write_atomic(self.report_path(fmt), text)


def new_bundle_dir(scenario_name: str, parent: Path) -> Path:
    """A bundle directory name under ``parent`` that does not exist yet: NAME-YYYYmmdd-HHMMSS[-N]."""
    base = parent / f"{scenario_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 2
    while path.exists():
        path, n = Path(f"{base}-{n}"), n + 1
    return path
