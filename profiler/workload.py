"""Whole workloads (``kind: workload``): a rig's crontab run here, recorded with ftrace, put beside the commands.

A workload file (``scenarios/workloads/*.yaml``, schema ``profiler/schema/workload.schema.json``) names the
driver that stands in for the rig's cron, the loops cron starts and how often, and the same environment a
scenario has (fixtures, prepare steps, env, the fake Nightscout, the pump emulator, required tools).
``kprof workload run`` gives it what a scenario gets — a fresh workdir, a private /tmp, a private /dev with the
emulated pump at /dev/serial0 (and a syslog sink at /dev/log, so the loops' ``logger`` never reaches the
host's), a network namespace with loopback only — and records it with kprof's own tracefs instance
(:func:`profiler.record.ftrace.record_ftrace`: the driver's process tree, or with ``whole_system`` every
process, as ELISA did), then writes a bundle::

    workload.yaml              the workload file as run
    trace.txt (+ .meta.json, .modules-before, .modules-during, .config)   the recording
    logs/                      the loops' own logs (pump-loop.log …) and the rig's syslog
    meta.json                  what ran, iterations, services, state checks
    footprint.json             the whole workload's footprint (processes, syscalls, ioctls)
    programs.json              per program: processes, calls, syscalls (for coverage)
    report.txt                 ELISA's tables, the process table and, given scenario results, coverage
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import profiler
from profiler.errors import KprofError
from profiler.scenario import Scenario, load_yaml, validate_data

SCHEMA_PATH = Path(__file__).parent / "schema" / "workload.schema.json"
BUNDLE_FORMAT = "kprof-workload"
TRACE = "trace.txt"


# ----------------------------------------------------------------------------- the file

_SCHEMA = None


def workload_schema() -> dict:
    """The workload schema; its ``$ref``s into the scenario schema resolve there when it validates."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads(SCHEMA_PATH.read_text())
    return _SCHEMA


def is_workload_file(path) -> bool:
    """A YAML file with ``kind: workload`` at its top (cheap: reads the text, not the schema)."""
    p = Path(path)
    if not p.is_file() or p.suffix not in (".yaml", ".yml"):
        return False
    try:
        return re.search(r"^kind:\s*workload\s*$", p.read_text(errors="replace"), re.M) is not None
    except OSError:
        return False


@dataclass
class Workload:
    path: Path
    name: str
    description: str
    loops: list[tuple[str, str]]
    cron_interval: float
    iteration_log: str | None
    iteration_marker: str | None
    duration: float | None
    scenario: Scenario          # the environment (fixtures, prepare, env, services, pump, requires) and driver
    raw: dict


def load_workload(path) -> Workload:
    """Load and validate a workload file; problems are KprofErrors naming file:line and key."""
    from profiler.parse.ftrace_text import parse_duration

    path = Path(path)
    data, lines = load_yaml(path)
    if data is None:
        raise KprofError(f"{path}:1: empty workload file")
    if isinstance(data, dict) and data.get("kind") != "workload":
        raise KprofError(f"{path}:1: not a workload file (no 'kind: workload'); a scenario runs with kprof run")
    errors = validate_data(data, workload_schema(), str(path), lines)
    keyline = lines.get(id(data), {}) if isinstance(data, dict) else {}
    if not errors and data["name"] != path.stem:
        errors.append(f"{path}:{keyline.get('name', 1)}: name: '{data['name']}' differs from the file name "
                      f"'{path.stem}'")
    loops = [(lp["name"], lp["command"]) for lp in data["cron"]["loops"]] if not errors else []
    it = data.get("iteration") if not errors else None
    if it and it["log"] not in {n for n, _ in loops}:
        errors.append(f"{path}:{keyline.get('iteration', 1)}: iteration.log: '{it['log']}' is not one of the "
                      f"cron loops ({', '.join(n for n, _ in loops)})")
    if errors:
        raise KprofError("\n".join(errors))
    pump, client = data.get("pump"), "kprof"
    if isinstance(pump, dict) and "client" in pump:
        pump = {k: v for k, v in pump.items() if k != "client"}
        client = data["pump"]["client"]
        if client not in ("kprof", "system"):
            client = str((path.parent / Path(client).expanduser()).resolve())
    fixtures = data.get("fixtures", [])
    sc = Scenario(path=path, name=data["name"], description=data["description"].strip(), command=data["command"],
                  fixtures=[fixtures] if isinstance(fixtures, str) else fixtures, prepare=data.get("prepare", []),
                  env={k: str(v) for k, v in data.get("env", {}).items()}, timeout=600.0, network="none",
                  services=data.get("services", []), pump=pump, pump_client=client,
                  tolerance=data.get("tolerance"), requires=data.get("requires", []), raw=data)
    return Workload(path=path, name=data["name"], description=sc.description, loops=loops,
                    cron_interval=float(data["cron"]["interval"]), iteration_log=it["log"] if it else None,
                    iteration_marker=it["marker"] if it else None,
                    duration=parse_duration(data.get("duration"), "duration"), scenario=sc, raw=data)


# ----------------------------------------------------------------------------- running

class SyslogSink:
    """A datagram socket standing in for /dev/log: what the workload sends to syslog goes to a file."""

    def __init__(self, socket_path: Path, log_path: Path):
        self.path = socket_path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(socket_path))
        self.sock.settimeout(0.2)
        self.log = open(log_path, "ab")
        self.messages = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, name="kprof-syslog", daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, OSError):
                continue
            self.messages += 1
            self.log.write(data.rstrip(b"\n\0") + b"\n")
            self.log.flush()

    def stop(self):
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()
        self.log.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


_interrupted: list[int] = []


def _execute(wl: Workload, workdir: Path, env: dict, out: Path, rec_opts: dict, serial: str | None = None) -> dict:
    """In the workload's namespaces: private /tmp and /dev, services, prepare, then the recording. ``serial``:
    the pty of the pump emulator the parent serves (runner.uart_pump says why there), bound at /dev/serial0."""
    from profiler import runner
    from profiler.environment import devfs
    from profiler.record.ftrace import record_ftrace

    sc = wl.scenario
    started, reports = [], []
    resolv = None
    sink = None
    _interrupted.clear()
    # Ctrl-C / SIGTERM while the environment is set up: remembered, acted on before the recording starts
    # (record_ftrace installs its own handlers for the recording itself)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda n, f: _interrupted.append(n))
    devfs.private_tmp(runner.host_dirs_needed(sc, workdir, out, env))
    try:
        for spec in sc.services:
            from profiler.environment import nightscout
            started.append(nightscout.start_service(spec.to_dict(), workdir))
        devices = {}
        if serial is not None:
            devices[Path(runner.SERIAL_DEVICE).name] = serial
        sink = SyslogSink(Path("/tmp/kprof-syslog.sock"), out / "logs" / "syslog.log")   # in the private /tmp
        devices["log"] = str(sink.path)
        devfs.private_dev(devices)
        resolv = devfs.loopback_resolver()
        for step in sc.prepare:
            p = subprocess.run(["/bin/sh", "-c", step], cwd=workdir, env=env, capture_output=True, text=True,
                               timeout=300)
            if p.returncode != 0:
                raise KprofError(f"{sc.path}: prepare step failed (exit {p.returncode}): {step}\n{p.stderr.strip()}")
        if _interrupted:
            raise KprofError("interrupted before the recording started: nothing recorded, everything stopped")
        if rec_opts.get("untraced"):          # bench/workload_overhead.py: the same run, nothing recorded
            result = _run_untraced(list(sc.command), workdir, env, rec_opts["duration"])
        else:
            iterations = rec_opts.pop("iterations", None)
            until = (lambda: (count_iterations(wl, out / "logs") or 0) >= iterations) if iterations else None
            rec = record_ftrace(out / TRACE, command=list(sc.command), cwd=str(workdir), env=env,
                                stop=_interrupted, until=until, **rec_opts)
            result = {"exit": rec.exit, "interrupted": rec.interrupted, "timed_out": rec.timed_out,
                      "iterations_reached": rec.done,
                      "warnings": rec.warnings}
    finally:
        for s in started:
            s.stop()
            reports.append(_service_report(s))
        if sink is not None:
            sink.stop()
            reports.append({"type": "syslog", "device": "/dev/log", "messages": sink.messages,
                            "log": "logs/syslog.log"})
        if resolv:
            os.unlink(resolv)
    result["services"] = reports
    return result


def _run_untraced(command: list[str], workdir: Path, env: dict, duration: float) -> dict:
    """Run the driver for ``duration`` without tracing, then stop its process group as a recording does."""
    p = subprocess.Popen(command, cwd=workdir, env=env, process_group=0, stdin=subprocess.DEVNULL)
    try:
        p.wait(timeout=duration)
    except subprocess.TimeoutExpired:
        pass
    for sig, wait in ((signal.SIGINT, 4), (signal.SIGTERM, 4), (signal.SIGKILL, 10)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            break
        try:
            p.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return {"exit": {"exit": p.returncode}, "interrupted": False, "timed_out": True, "warnings": [],
            "untraced": True}


def _service_report(s) -> dict:
    from profiler import runner
    rep = runner.service_report(s)
    if rep.get("type") == "nightscout":
        rep["uploads"] = {name: len(s.uploaded(name)) for name in ("devicestatus", "treatments", "entries")}
        rep["requests"] = len(rep["requests"])
    elif rep.get("type") == "pump":
        rep.pop("pty", None)
    return rep


def count_iterations(wl: Workload, logs: Path) -> int | None:
    """Iterations the workload completed, counted from its own log (the marker line, e.g. "Completed
    oref0-pump-loop"); None when the workload names no iteration."""
    if not wl.iteration_log:
        return None
    p = logs / f"{wl.iteration_log}.log"
    if not p.is_file():
        return 0
    return sum(1 for line in p.read_text(errors="replace").splitlines() if wl.iteration_marker in line)


def run_workload(wl: Workload, out: Path, *, duration: float, discard_tail: float | None = None,
                 events: str = "syscalls", whole_system: bool = False, buffer_kb: int = 16384,
                 progress=None, untraced: bool = False, iterations: int | None = None) -> dict:
    """Run and record the workload into the bundle ``out``; returns meta.json's content. It ends after
    ``duration``, or once ``iterations`` loop iterations have completed (the workload's iteration marker),
    whichever comes first. Ctrl-C or SIGTERM stops it early (everything is stopped and restored; the partial
    recording is kept and analysed)."""
    from profiler import runner
    from profiler.environment import namespaces

    sc = wl.scenario
    runner.check_runnable(sc)
    if iterations is not None and not wl.iteration_log:
        raise KprofError(f"{wl.path}: --iterations needs the workload's iteration: (a log and a marker to count)")
    out = out.resolve()
    if out.exists() and any(out.iterdir()):
        raise KprofError(f"{out}: exists and is not empty: give a new -o directory")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    shutil.copy2(wl.path, out / "workload.yaml")
    meta = {"format": BUNDLE_FORMAT, "version": 1, "kprof": profiler.__version__, "workload": wl.name,
            "workload_file": str(wl.path), "description": wl.description, "command": sc.command,
            "cron": {"interval_s": wl.cron_interval, "loops": [{"name": n, "command": c} for n, c in wl.loops]},
            "iteration": {"log": wl.iteration_log, "marker": wl.iteration_marker},
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "duration_limit_s": duration, "iterations_limit": iterations, "discard_tail_s": discard_tail,
            "events": events,
            "whole_system": whole_system, "trace": TRACE, "versions": runner.versions(),
            "pump_client": runner.pump_client(sc),
            "isolation": "network namespace, loopback only; mount namespace: private /tmp, private /dev "
                         "(/dev/serial0 = kprof's pump emulator, /dev/log = kprof's syslog sink)",
            "emulated": "the pump and its radio (kprof's emulator behind kprof's Go mdt/pumphistory/listen), "
                        "Nightscout (kprof's fake one on loopback), syslog (/dev/log)",
            "cron_every_minute": cron_script_check()}
    workdir = runner.make_workdir(sc)
    env = runner.command_env(sc, workdir)
    env.update({"KPROF_CRON_INTERVAL": f"{wl.cron_interval:g}", "KPROF_RIG_LOGS": str(out / "logs"),
                "KPROF_LOOPS": " ".join(f"{n}={c}" for n, c in wl.loops)})
    rec_opts = {"events": events, "duration": duration, "discard_tail": discard_tail, "buffer_kb": buffer_kb,
                "whole_system": whole_system, "iterations": iterations,
                "own_pids": (os.getpid(),)}     # this kprof, which serves the emulated pump: its tasks are not the rig's
    if untraced:
        rec_opts = {"untraced": True, "duration": duration}
    old_term = signal.signal(signal.SIGTERM, _term_to_interrupt)
    started = time.monotonic()
    try:
        pump = runner.uart_pump(sc, env)     # a workload's pump is always on the UART path
        try:
            result, how = namespaces.run_isolated(_execute, wl, workdir, env, out, rec_opts,
                                                  pump and pump.slave_path, net=True, mount=True)
        finally:
            if pump is not None:
                pump.stop()
        if pump is not None:
            result["services"].append(_service_report(pump))
    finally:
        signal.signal(signal.SIGTERM, old_term)
        shutil.rmtree(workdir, ignore_errors=True)
        meta["wall_seconds"] = round(time.monotonic() - started, 1)
        (out / "meta.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    meta.update(result)
    meta["isolation"] += f" ({how})"
    meta["iterations"] = count_iterations(wl, out / "logs")
    from profiler.record.ftrace import load_meta
    tmeta = load_meta(out / TRACE) or {}
    meta["tracing_state_restored"] = tmeta.get("tracing_state_restored")
    meta["lost_events"] = tmeta.get("lost_events")
    (out / "meta.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    return meta


def _term_to_interrupt(signum, frame):
    raise KeyboardInterrupt


def cron_script_check() -> dict:
    """Whether the installed oref0-cron-every-minute.sh parses (``bash -n``): oref0 0.7.1's does not."""
    from profiler import runner
    script = runner.oref0_dir() / "bin" / "oref0-cron-every-minute.sh"
    if not script.is_file():
        return {"script": str(script), "parses": None, "error": "not installed"}
    p = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    return {"script": str(script), "parses": p.returncode == 0, "error": p.stderr.strip() or None}


# ----------------------------------------------------------------------------- analysis

_EXEC_RE = re.compile(rb"sched_process_exec: filename=(\S+) pid=(\d+)")
INTERPRETERS = {"env", "node", "nodejs", "bash", "sh", "dash", "python3", "python"}


def process_programs(trace: Path) -> dict[int, str]:
    """pid → the program the process ran: the first file it exec'd that is not an interpreter (a script's own
    path: a #! script's first exec event names the script), else its first exec."""
    first: dict[int, str] = {}
    named: dict[int, str] = {}
    with open(trace, "rb") as f:
        for line in f:
            if b"sched_process_exec" not in line:
                continue
            m = _EXEC_RE.search(line)
            if not m:
                continue
            pid, filename = int(m.group(2)), m.group(1).decode("utf-8", "replace")
            first.setdefault(pid, filename)
            if pid not in named and os.path.basename(filename) not in INTERPRETERS:
                named[pid] = filename
    return {pid: named.get(pid, f) for pid, f in first.items()}


def program_rows(fp, programs_by_pid: dict[int, str]) -> dict[str, dict]:
    """Per program (basename of what each process ran): processes, calls, syscalls. A process's calls are
    its images' (what it ran after each exec, as the footprint has them: a pid reused by another program is
    two), a later image's under the file it exec'd when that is a program of its own; its first image, an
    interpreter's (node, bash) or one whose file the trace does not show, go under what the process ran (its
    script, the first program it exec'd), and a process that exec'd nothing in the trace under its parent's
    program (a bash subshell, a node worker)."""
    out: dict[str, dict] = {}

    def program_of(pid, seen=0):
        if pid in programs_by_pid:
            return os.path.basename(programs_by_pid[pid])
        parent = fp.processes.get(pid, {}).get("parent")
        if parent is None or seen > 64:
            return "(started before the trace)"
        return program_of(parent, seen + 1)

    for pid, proc in fp.processes.items():
        for i, image in enumerate(proc["images"]):
            calls = image["syscalls"]
            if not calls:
                continue
            exe = image.get("exe") or ""
            # (a first image's file may be its parent's, inherited at the fork: its calls before the exec go
            # under what the process ran, as before)
            own = i > 0 and "/" in exe and os.path.basename(exe) not in INTERPRETERS
            row = out.setdefault(os.path.basename(exe) if own else program_of(pid),
                                 {"processes": set(), "calls": 0, "syscalls": Counter(), "paths": set()})
            row["processes"].add(pid)
            row["calls"] += sum(calls.values())
            row["syscalls"].update(calls)
            if own:
                row["paths"].add(exe)
            elif pid in programs_by_pid:
                row["paths"].add(programs_by_pid[pid])
    for row in out.values():
        row["processes"] = len(row["processes"])
    return out


def analyse_bundle(bundle: Path, discard_tail: float | None = None):
    """(meta, FtraceResult, footprint, program rows) of a workload bundle."""
    from profiler.wholetrace import resolve_trace_settings
    from profiler.parse.ftrace_text import analyse_trace

    bundle = Path(bundle)
    meta = load_bundle_meta(bundle)
    trace = bundle / meta.get("trace", TRACE)
    st = resolve_trace_settings([trace], None, None, None if discard_tail is None else f"{discard_tail}s")
    res = analyse_trace([trace], st["arch"], st["task_arch"], st["skip"], st["discard_tail"],
                        source={"workload": meta.get("workload"), "trace": TRACE}, root_pid=st["root_pid"])
    fp = res.footprint
    programs = program_rows(fp, process_programs(trace))
    return meta, res, fp, programs


def load_bundle_meta(bundle: Path) -> dict:
    p = Path(bundle) / "meta.json"
    try:
        meta = json.loads(p.read_text())
    except FileNotFoundError:
        raise KprofError(f"{bundle}: not a workload bundle (no meta.json); make one with kprof workload run") from None
    except (OSError, ValueError) as e:
        raise KprofError(f"{p}: unreadable ({e})") from None
    if meta.get("format") != BUNDLE_FORMAT:
        raise KprofError(f"{bundle}: not a workload bundle (meta.json has no \"format\": \"{BUNDLE_FORMAT}\")")
    return meta


def is_workload_bundle(path) -> bool:
    p = Path(path) / "meta.json"
    try:
        return p.is_file() and json.loads(p.read_text()).get("format") == BUNDLE_FORMAT
    except (OSError, ValueError):
        return False


def save_programs(path: Path, programs: dict[str, dict]) -> None:
    path.write_text(json.dumps({name: {"processes": r["processes"], "calls": r["calls"],
                                       "paths": sorted(r["paths"]), "syscalls": dict(r["syscalls"].most_common())}
                                for name, r in sorted(programs.items(), key=lambda kv: -kv[1]["calls"])},
                               indent=1) + "\n")


def load_programs(path: Path) -> dict[str, dict]:
    data = json.loads(Path(path).read_text())
    return {name: {"processes": r["processes"], "calls": r["calls"], "paths": set(r["paths"]),
                   "syscalls": Counter(r["syscalls"])} for name, r in data.items()}


# ----------------------------------------------------------------------------- regression (baseline / check)

# A time-driven run: which programs, syscalls, subsystems, ioctl requests and modules it used is compared
# strictly (new or vanished is a regression); counts are per loop iteration and compared with wide bands
# (how much a loop does per iteration depends on what it finds: a fresh BG, a pump history to refresh; a
# program's calls depend on how long it waits — the driver's sleep, listen — so programs get the timing band).
WORKLOAD_TOLERANCE = {"margin": 1.0, "slack": 20, "timing_margin": 4.0, "timing_slack": 100,
                      "allocator_margin": 1.5, "allocator_slack": 50, "timing_categories": ["program"],
                      "ignore": ["error", "device", "network", "file"]}


def workload_measures(fp, programs: dict[str, dict], iterations: int | None, modules_loaded: list[str]) -> dict:
    """category → key → count per loop iteration (per run when the workload counts no iterations)."""
    from profiler.compare import measures
    per = max(1, iterations or 1)
    m = measures(fp)
    out = {cat: {k: max(1, round(v / per)) for k, v in m[cat].items()} for cat in ("syscall", "subsystem", "ioctl")}
    out["program"] = {name: max(1, round(r["calls"] / per)) for name, r in programs.items()}
    out["module"] = {name: 1 for name in modules_loaded}
    return out


def modules_loaded(bundle: Path) -> list[str]:
    """Modules in /proc/modules during the workload that were not there before it."""
    from profiler.kernel import modules as km
    from profiler.record.ftrace import sidecar
    trace = Path(bundle) / TRACE
    before, _ = km.read_modules(str(sidecar(trace, "modules-before"))) if sidecar(trace, "modules-before").is_file() \
        else (None, "")
    during, _ = km.read_modules(str(sidecar(trace, "modules-during"))) if sidecar(trace, "modules-during").is_file() \
        else (None, "")
    return sorted(set(during) - set(before)) if before is not None and during is not None else []


def bundle_measures(bundle: Path):
    """(meta, footprint, measures) of a workload bundle, analysed afresh from its trace."""
    meta, _, fp, programs = analyse_bundle(bundle)
    return meta, fp, workload_measures(fp, programs, meta.get("iterations"), modules_loaded(bundle))


def check_usable(bundle: Path, meta: dict) -> list[str]:
    """Why a workload run cannot serve as (or be compared with) a baseline: failures of the run itself."""
    problems = []
    if meta.get("interrupted"):
        problems.append("the run was interrupted")
    if not meta.get("tracing_state_restored"):
        problems.append("the tracing state was not restored")
    if meta.get("iterations") is not None and meta["iterations"] < 1:
        problems.append("no loop iteration completed")
    if meta.get("lost_events"):
        problems.append(f"the ring buffer lost events ({meta['lost_events']})")
    return problems


def run_bundle(path: Path, results: Path, duration: str | None = None, iterations: int | None = None) -> Path:
    """A workload bundle: ``path`` itself, or a fresh run of the workload file ``path`` under ``results``."""
    from profiler.parse.ftrace_text import parse_duration
    from profiler.bundle import new_bundle_dir

    path = Path(path)
    if is_workload_bundle(path):
        return path.resolve()
    wl = load_workload(path)
    out = new_bundle_dir(wl.name, Path(results))
    run_workload(wl, out, duration=parse_duration(duration, "--duration") if duration else (wl.duration or 180.0),
                 iterations=iterations)
    return out.resolve()
