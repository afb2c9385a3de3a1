"""Run a scenario: fresh workdir with fixtures, its network, its services, the command under a recorder.

Each run writes a result bundle directory (profiler/bundle.py: its files, and meta.json as RunMeta):
the scenario as run, meta.json, the raw trace (kept whatever happens: reports are regenerated from it),
what the command printed, footprint.json, the reports, and run-N/ for runs 2..N when the scenario repeats.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import profiler
from profiler.errors import KprofError
from profiler.analysis import Analysis, StraceAnalysis
from profiler.bundle import SCENARIO, Bundle, RunMeta, run_record, trace_name
from profiler.digest import file_sha256
from profiler.footprint import Footprint
from profiler.kernel import syscalls
from profiler.record import core as record_core
from profiler.record import strace as strace_rec
from profiler.scenario import Scenario

ROOT = Path(os.environ.get("KPROF_ROOT") or Path(__file__).resolve().parent.parent)
# the OpenAPS software under test: the pinned install, or another one (e.g. an oref0 update to check)
NODE_MODULES = Path(os.environ.get("KPROF_NODE_MODULES") or ROOT / "node_modules")


def oref0_dir() -> Path:
    return NODE_MODULES / "oref0"


# The commands' PATH is fixed, not inherited: shell scripts and `#!/usr/bin/env node` search it, and every
# failed execve on the way is part of the footprint, so the same PATH gives the same counts on every machine.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


SERIAL_DEVICE = "/dev/serial0"  # ecc1's UART build of mdt hard-codes it

# The pump tools a rig runs (ecc1's names). Which toolset serves a scenario is its own choice (pump.client, or
# kprof run --pump-client), never whatever happens to be on the host's PATH:
#   kprof   kprof's Go tools, built by ./setup.sh into build/rig-tools/<variant>/ (the default)
#   system  the tools found on the system PATH (e.g. a real ecc1 install)
#   DIR     a directory holding mdt, pumphistory, listen and mmtune (e.g. a real ecc1 build)
PUMP_TOOLS = ("mdt", "pumphistory", "listen", "mmtune")
RIG_TOOLS = ROOT / "build" / "rig-tools"
PUMP_VARIANTS = ("uart", "spi", "edison")


def pump_tool_dir(variant: str = "uart") -> Path:
    """Where ./setup.sh builds kprof's tools for a radio variant: uart, spi (Pi + Explorer HAT) or edison."""
    if variant not in PUMP_VARIANTS:
        raise KprofError(f"unknown radio variant {variant!r} (one of {', '.join(PUMP_VARIANTS)})")
    return RIG_TOOLS / variant


def pump_variant(scenario: Scenario) -> str:
    """The radio variant of kprof's tools a scenario runs: its radio (uart, spi or edison)."""
    return scenario.radio


def _tool_dir(scenario: Scenario) -> Path | None:
    """The directory of the scenario's pump tools, put first on its PATH (None: the system's PATH)."""
    choice = scenario.pump_client
    if choice == "system":
        return None
    if choice == "kprof":
        return pump_tool_dir(pump_variant(scenario))
    return Path(choice).expanduser().resolve()


def pump_client(scenario: Scenario) -> dict | None:
    """The scenario's pump toolset, each tool resolved (path and sha256) for meta.json and the report.

    A choice that cannot be honoured is a KprofError naming what is missing: nothing falls back to another
    toolset.
    """
    if scenario.pump is None:
        return None
    choice = scenario.pump_client
    where = _tool_dir(scenario)
    if where is None:
        found = {t: shutil.which(t, path=SYSTEM_PATH) for t in PUMP_TOOLS}
        if not any(found.values()):
            raise KprofError(f"{scenario.path}: pump client 'system': none of {', '.join(PUMP_TOOLS)} is on the "
                             f"system PATH ({SYSTEM_PATH})")
        kind = "the system's tools (system PATH)"
    else:
        if choice != "kprof" and not where.is_dir():
            raise KprofError(f"{scenario.path}: pump client directory {where} does not exist (give kprof, system "
                             f"or a directory holding {', '.join(PUMP_TOOLS)})")
        found = {t: str(where / t) if os.access(where / t, os.X_OK) and (where / t).is_file() else None
                 for t in PUMP_TOOLS}
        missing = [t for t, p in found.items() if p is None]
        if missing and choice == "kprof":
            raise KprofError(f"kprof's pump tools are not built ({where / missing[0]} is missing): run ./setup.sh "
                             f"(it builds them with Go into {RIG_TOOLS})")
        if missing:
            raise KprofError(f"{scenario.path}: pump client directory {where}: no executable "
                             f"{', '.join(missing)} there (it must hold {', '.join(PUMP_TOOLS)})")
        kind = (f"kprof's Go tools ({pump_variant(scenario)} build)" if choice == "kprof"
                else f"the tools in {where}")
    tools = {t: ({"path": p, "sha256": file_sha256(p)} if p else None) for t, p in found.items()}
    return {"client": choice, "kind": kind, "dir": None if where is None else str(where), "tools": tools}


def search_path(scenario: Scenario | None = None) -> str:
    """The command's PATH: oref0's node_modules/.bin, the scenario's pump tools, then the system PATH."""
    parts = [str(NODE_MODULES / ".bin")]
    if scenario is not None and scenario.pump is not None:
        where = _tool_dir(scenario)
        if where is not None:
            parts.append(str(where))
    return os.pathsep.join(parts + [SYSTEM_PATH])


def with_overrides(scenario: Scenario, radio: str | None = None, backend: str | None = None,
                   pump_client: str | None = None) -> Scenario:
    """``kprof run --radio/--backend/--pump-client``: an SPI radio implies the ptrace backend unless one was asked
    for.  The pump options belong to pump scenarios: given for another one, they are an error, not ignored."""
    import dataclasses
    for option, value in (("--radio", radio), ("--pump-client", pump_client)):
        if value is not None and scenario.pump is None:
            raise KprofError(f"{scenario.path}: {option} {value or repr(value)}: the option belongs to a pump "
                             f"scenario (this one has no 'pump:' section)")
    if pump_client is not None:
        if not pump_client:
            raise KprofError("--pump-client: empty; give kprof, system or a directory holding mdt, pumphistory, "
                             "listen and mmtune")
        if pump_client not in ("kprof", "system"):
            pump_client = str(Path(pump_client).expanduser().resolve())
    radio = radio or scenario.radio
    if radio != "uart":
        serial_rules = [r for r in scenario.inject
                        if r.get("path") == SERIAL_DEVICE or r.get("fd_class") == "serial"]
        if serial_rules:
            raise KprofError(f"{scenario.path}: --radio {radio}: its inject: rules act on the UART device "
                             f"({SERIAL_DEVICE}), which the {radio} radio path never opens; the SPI path's faults "
                             f"are radio_fault: and the pump-spi-* scenarios")
    backend = backend or scenario.raw.get("backend") or ("strace" if radio == "uart" else "ptrace")
    return dataclasses.replace(scenario, radio=radio, backend=backend,
                               radio_fault=scenario.radio_fault if radio != "uart" else None,
                               pump_client=pump_client or scenario.pump_client)


def missing_tools(scenario: Scenario) -> list[str]:
    """Executables the scenario needs that are not on kprof's PATH (node_modules/.bin first)."""
    path = search_path(scenario)
    wanted = list(scenario.requires)
    if not scenario.shell:
        wanted.insert(0, scenario.command[0])
    return [t for t in dict.fromkeys(wanted) if shutil.which(t, path=path) is None]


def check_runnable(scenario: Scenario) -> None:
    rules = inject_rules(scenario, syscalls.host_arch())  # bad rules fail before anything runs
    if scenario.backend == "strace" and any(r.restricted for r in rules):
        raise KprofError(f"{scenario.path}: inject: a rule restricted to a path or fd class needs the ptrace "
                         f"backend (add 'backend: ptrace'): strace cannot restrict an injection by path")
    if scenario.radio != "uart":
        if scenario.pump is None:
            raise KprofError(f"{scenario.path}: radio: {scenario.radio}: the radio path belongs to a pump scenario")
        if scenario.backend != "ptrace":
            raise KprofError(f"{scenario.path}: radio: {scenario.radio} is served at the syscall boundary by kprof's "
                             f"ptrace backend (strace cannot answer an ioctl); drop 'backend: {scenario.backend}' "
                             f"(or --backend {scenario.backend}), or run the UART path with --radio uart")
    if scenario.pump is not None:
        scenario.pump_config  # noqa: B018 (a bad pump: section fails here, before anything runs)
        pump_client(scenario)  # the chosen toolset exists, or a clear error before anything runs
    missing = missing_tools(scenario)
    if missing:
        raise KprofError(
            f"{scenario.path}: needs {', '.join(repr(t) for t in missing)}, not found on PATH "
            f"(node_modules/.bin included). Install it (./setup.sh installs strace, node, oref0, jq, bc, "
            f"socat) or fix 'command'/'requires'.")
    if scenario.backend == "strace":
        strace_rec.strace_path()
    elif scenario.backend == "bpf":
        from profiler.record import bpf
        if scenario.inject:
            raise KprofError(f"{scenario.path}: inject: fault injection needs the strace or ptrace backend; the bpf "
                             f"backend only counts")
        bpf.bpftrace_path()


def expand(value: str, variables: dict[str, str]) -> str:
    for k, v in variables.items():
        value = value.replace("${" + k + "}", v)
    return value


def command_env(scenario: Scenario, workdir: Path) -> dict[str, str]:
    variables = {"WORKDIR": str(workdir), "OREF0_DIR": str(oref0_dir()), "KPROF_ROOT": str(ROOT)}
    env = dict(os.environ)
    env.update(variables)
    env["PATH"] = search_path(scenario)
    if scenario.pump is not None:
        env["MEDTRONIC_PUMP_ID"] = scenario.pump_config.id
    for k, v in scenario.env.items():
        env[k] = expand(v, variables)
    return env


def make_workdir(scenario: Scenario) -> Path:
    """A fresh temp dir holding copies of the scenario's fixtures."""
    workdir = Path(tempfile.mkdtemp(prefix=f"kprof-{scenario.name}-"))
    try:
        for item in scenario.fixtures:
            try:
                src = (scenario.base_dir / item).resolve(strict=False)
            except (RuntimeError, OSError) as e:       # a symbolic link loop
                raise KprofError(f"{scenario.path}: fixtures: '{item}' cannot be followed ({e})") from None
            try:
                if src.is_dir():
                    shutil.copytree(src, workdir, dirs_exist_ok=True, symlinks=True)
                elif src.is_file():
                    shutil.copy2(src, workdir / src.name)
                elif src.exists():
                    raise KprofError(f"{scenario.path}: fixtures: '{item}' is not a file or a directory ({src})")
                else:
                    raise KprofError(f"{scenario.path}: fixtures: '{item}' does not exist (looked at {src})")
            except shutil.Error as e:     # copytree's list of what it could not copy (a FIFO, a socket in it)
                what = "; ".join(f"{a}: {why}" for a, _, why in e.args[0][:3]) if e.args and isinstance(
                    e.args[0], list) else str(e)
                raise KprofError(f"{scenario.path}: fixtures: '{item}' cannot be copied: {what}") from None
            except OSError as e:
                raise KprofError(f"{scenario.path}: fixtures: '{item}' cannot be copied: {e}") from None
        os.chmod(workdir, 0o700)  # copytree gave it the fixtures directory's mode (a 777 one, for instance)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return workdir


@dataclass
class RunOutcome:
    """One run of the command: where its files are, how it ended, what the analysis found."""

    run_dir: Path
    trace: record_core.TraceOutcome
    analysis: Analysis
    services: list[dict] = field(default_factory=list)
    modules: dict = field(default_factory=dict)   # kernel modules loaded while the command ran (see below)

    @property
    def footprint(self) -> Footprint | None:
        return self.analysis.footprint if self.analysis.footprint.syscalls else None

    @property
    def exit(self) -> dict | None:
        return self.analysis.footprint.exit


def _execute(scenario: Scenario, workdir: Path, env: dict, run_dir: Path, analysis: StraceAnalysis,
             network: str = "host", serial: str | None = None):
    """Services, emulated devices, prepare steps and the traced command, in the scenario's namespaces.

    ``serial``: the pty of the UART pump emulator, served by a process of its own (see ``uart_pump``), bound
    at /dev/serial0 here. The log is analysed while strace writes it; returns (trace outcome, service
    reports, analysis).
    """
    from profiler.environment import devfs

    started = []
    resolv = None
    spi = holder = None
    devfs.private_tmp(host_dirs_needed(scenario, workdir, run_dir, env))
    record_core.become_subreaper()  # what prepare steps or the command leave running is ours to kill
    try:
        if scenario.services:
            from profiler.environment import nightscout  # services are rare: keep them out of start-up
            for spec in scenario.services:
                started.append(nightscout.start_service(spec.to_dict(), workdir))
        if scenario.pump is not None and scenario.radio != "uart":
            spi, holder = _spi_radio(scenario, env)
        elif serial is not None:
            devfs.private_dev({Path(SERIAL_DEVICE).name: serial})
        else:   # nothing the command does under /dev (a script's mv over /dev/null, as root) reaches the host's
            devfs.private_dev({})
        if network == "none":
            resolv = devfs.loopback_resolver()
        for step in scenario.prepare:
            prepare(scenario, step, workdir, env)
        argv = ["/bin/sh", "-c", scenario.command] if scenario.shell else list(scenario.command)
        outcome = recorder(scenario.backend)(
            argv, str(run_dir / trace_name(scenario.backend)), cwd=str(workdir), env=env, timeout=scenario.timeout,
            stdout_path=str(run_dir / "stdout.txt"), stderr_path=str(run_dir / "stderr.txt"),
            consume=analysis.feed, inject=inject_rules(scenario, analysis.arch),
            stop_at_root=scenario.stop == "root", **({"spi": spi} if spi else {}))
    finally:
        if holder is not None:
            holder.close()
        for s in started:
            s.stop()
        if resolv:
            os.unlink(resolv)
        record_core.reap_orphans()
    strace_rec.check_ptrace_failure(outcome.strace_messages or [])
    reports = [service_report(s) for s in started]
    if spi is not None:
        reports.insert(0, spi_report(spi, outcome.device))
    return outcome, reports, analysis.finish(require_events=False)


def _spi_radio(scenario: Scenario, env: dict):
    """The SPI radio path in this mount namespace (spi-radio.md §8): a placeholder spidev node, a fake sysfs
    GPIO tree, and the emulated radio + pump the ptrace backend serves the ioctls from. Returns (the
    device, the file holding the spidev's flock for radio_fault: device-in-use, else None)."""
    import fcntl

    from profiler.environment import devfs
    from profiler.pump.emulator import PumpEmulator
    from profiler.pump.spi import BOARDS, SpiDevice

    board = BOARDS[scenario.radio]
    # served by the tracer, never started; the command's env gives the pump clock's zone and frequency
    emulator = PumpEmulator(scenario.pump_config, env=env)
    devfs.private_dev({Path(board.device).name: None})
    devfs.fake_gpio(board.pins, exported=scenario.radio_fault != "not-exported")
    holder = None
    if scenario.radio_fault == "device-in-use":   # another process (kprof, here) holds the radio (§2.1)
        holder = open(board.device, "rb")
        fcntl.flock(holder, fcntl.LOCK_EX)
    return SpiDevice(board, emulator), holder


def spi_report(spi, served: dict | None) -> dict:
    """What the emulated SPI radio served, for meta.json and the report (made in the tracer process)."""
    served = served or {}
    return {"type": "pump", "radio": spi.board.radio, "device": spi.board.device, "board": spi.board.title,
            "exchanges": len(served.get("exchanges", [])), "state": served.get("state", spi.emu.state),
            "served": {k: served.get(k) for k in ("served_ioctls", "transfers", "frames", "resets", "processes",
                                                 "latency_s", "gpio_writes")},
            "radio_exchanges": served.get("exchanges", [])[-200:]}


def prepare(scenario: Scenario, step: str, workdir: Path, env: dict) -> None:
    """One prepare step, under the scenario's timeout. Its output goes to an unlinked temp file, not a
    pipe, so a daemon it starts cannot hold kprof up; what it leaves running is killed with the command's
    tree (kprof is the subreaper)."""
    with tempfile.TemporaryFile(dir=workdir) as out:  # unlinked at once: the command never sees it
        p = subprocess.Popen(["/bin/sh", "-c", step], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.STDOUT)
        try:
            code = p.wait(timeout=scenario.timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:  # a timeout, Ctrl-C, SIGTERM: the step's whole tree goes
            record_core.kill_tree(p.pid)
            p.kill()
            p.wait()
        if code is None:
            raise KprofError(f"{scenario.path}: prepare step timed out after {scenario.timeout:g} s "
                             f"(killed): {step}")
        if code != 0:
            out.seek(0)
            text = out.read(1 << 16).decode(errors="replace").strip()
            raise KprofError(f"{scenario.path}: prepare step failed (exit {code}): {step}" +
                             (f"\n{text}" if text else ""))


def host_dirs_needed(scenario: Scenario, workdir: Path, run_dir: Path, env: dict) -> list[str]:
    """Host directories the run uses: kept visible when they lie under the /tmp the scenario replaces."""
    dirs = [workdir, run_dir, ROOT, NODE_MODULES, scenario.base_dir, Path(sys.prefix)]
    dirs += [Path(p) for p in env.get("PATH", "").split(os.pathsep) if p]
    return [str(d) for d in dirs]


def recorder(backend: str):
    """The function that runs a command under the scenario's tracer (same contract for all)."""
    if backend == "ptrace":
        from profiler.record.ptrace import record_ptrace
        return record_ptrace
    if backend == "bpf":
        from profiler.record.bpf import record_bpf
        return record_bpf
    return strace_rec.record_strace


def inject_rules(scenario: Scenario, arch: str) -> list:
    if not scenario.inject:
        return []
    from profiler.inject import rules_from
    return rules_from(scenario.inject, str(scenario.path), arch)


def uart_pump(scenario: Scenario, env: dict):
    """The UART radio + pump emulator for one run, started and serving, or None when the scenario has none.

    It is served by a process of its own (profiler.pump.uart_process), not by a thread of kprof's: the radio
    must answer within the client's 50 ms (pump-protocol.md §1.6) on a loaded machine too, and in kprof's
    processes other Python work (the live log analysis, the trace streaming, the tool facts) holds the
    interpreter for long stretches. The child dies with kprof; ``stop()`` (in the callers' finally) fetches
    its report (``exchanges``, ``state``) and reaps it. The pty it serves is reached from the namespaces'
    child through the host's /dev/pts, bound there at /dev/serial0."""
    if scenario.pump is None or scenario.radio != "uart":
        return None
    from profiler.pump.uart_process import EmulatorProcess
    # the command's env: its TZ is the pump clock's zone, its MEDTRONIC_FREQUENCY the pump's frequency
    return EmulatorProcess(scenario.pump_config, env=env).start()


def service_report(service) -> dict:
    """What a started service or emulated device did, for meta.json and the report."""
    if hasattr(service, "slave_path"):  # the pump emulator
        out = {"type": "pump", "radio": "uart", "device": SERIAL_DEVICE, "pty": service.slave_path,
               "exchanges": len(service.exchanges), "state": service.state,
               "radio_exchanges": service.exchanges[-200:]}
        if service.scheduling:      # how the thread serving the radio got the CPU
            out["scheduling"] = service.scheduling
        if service.error:    # the emulator stopped serving (its process died, or its serving raised)
            out["error"] = service.error
        return out
    return {"type": "nightscout", "url": service.url, "requests": list(service.requests)}


def versions() -> dict:
    """kprof's and the traced tools' versions (the probes run side by side: node alone takes ~50 ms)."""
    probes = {"strace": [strace_rec.strace_path(), "-V"], "node": ["node", "--version"]}
    running = {}
    for name, cmd in probes.items():
        try:
            running[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                             env={**os.environ, "PATH": search_path()})
        except OSError:
            pass
    out = {"kprof": profiler.__version__, "python": sys.version.split()[0], "strace": None, "node": None}
    for name, proc in running.items():
        try:
            first = (proc.communicate(timeout=10)[0].splitlines() or [""])[0].strip()
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            continue
        if proc.returncode == 0 and first:
            out[name] = first.rsplit(" ", 1)[-1] if name == "strace" else first
    try:
        out["oref0"] = json.loads((oref0_dir() / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        out["oref0"] = None
    return out


def oref0_tree() -> dict:
    """Which OpenAPS install ran: where, its version, the lockfile's hash and a hash of oref0's own files
    (a patched copy under KPROF_NODE_MODULES has the pinned version and lockfile, not the same files)."""
    import hashlib

    def sha256(path: Path) -> str | None:
        try:
            return file_sha256(path)
        except OSError:
            return None

    tree = oref0_dir()
    out = {"path": str(tree), "version": None, "lockfile": None, "lockfile_sha256": None, "files_sha256": None,
           "files": 0}
    try:
        out["version"] = json.loads((tree / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for lock in (NODE_MODULES / ".package-lock.json", NODE_MODULES.parent / "package-lock.json"):
        if lock.is_file():
            out["lockfile"], out["lockfile_sha256"] = str(lock), sha256(lock)
            break
    if tree.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = str(f.relative_to(tree)).encode()
            h.update(len(rel).to_bytes(4, "big") + rel + (sha256(f) or "unreadable").encode())
            out["files"] += 1
        out["files_sha256"] = h.hexdigest()
    return out


def _tool_facts(meta: RunMeta) -> None:
    """meta.json's versions and oref0 tree, unless known already (the first run finds them while it records)."""
    if meta.versions is None:
        meta.versions = versions()
    if meta.oref0_tree is None:
        meta.oref0_tree = oref0_tree()


def setup_meta(scenario: Scenario, network: str | None = None, tool_facts: bool = True) -> RunMeta:
    """The RunMeta a run of ``scenario`` starts with (run() starts from it): kernel, arch, network, pump tools and,
    with ``tool_facts``, the versions and oref0 tree (run() finds those while its first run records). Without
    running it, this is what a baseline records its runs were measured on."""
    meta = RunMeta.for_scenario(scenario, network or scenario.network, syscalls.host_arch())
    meta.pump_client = pump_client(scenario)
    if tool_facts:
        _tool_facts(meta)
    return meta


def run(scenario: Scenario, bundle: Path | Bundle, *, network: str | None = None, keep_workdir: bool = False,
        progress=None, meanwhile=None, sequences: bool = False) -> tuple[list[RunOutcome], RunMeta]:
    """Run every repetition of ``scenario`` into ``bundle``; returns the outcomes and the bundle's RunMeta.
    ``sequences``: each outcome's analysis also holds every process's call sequence, built from the events
    the footprint is built from (a fault scenario's report draws them; profiler/sequences.py).

    The tool versions and the oref0 tree's hash are found while the first run records (~30 ms: two version
    probes and hashing oref0's ~200 files), and so is ``meanwhile`` (a callable, e.g. imports the report
    needs afterwards), in a thread of this process: neither delays the command."""
    check_runnable(scenario)
    # absolute: the command (and strace) run in the workdir, where relative paths would point
    where = Path(bundle.path if isinstance(bundle, Bundle) else bundle)
    fresh = not where.exists()
    bundle = Bundle.create(where)
    network = network or scenario.network
    bundle.save_scenario(scenario.path)
    meta = setup_meta(scenario, network, tool_facts=False)
    arch = meta.arch
    outcomes = []
    for i in range(1, scenario.repeat + 1):
        if progress:
            progress(f"{scenario.name}: run {i}/{scenario.repeat}")
        run_dir = bundle.run_dir(i)
        run_dir.mkdir(exist_ok=True)
        modules_before = loaded_modules()
        try:
            workdir = make_workdir(scenario)
        except BaseException:
            if i == 1:      # nothing ran (a fixture missing or not copyable): the bundle is not begun either
                (bundle.path / SCENARIO).unlink(missing_ok=True)
                if fresh:
                    shutil.rmtree(bundle.path, ignore_errors=True)
            raise
        try:
            env = command_env(scenario, workdir)
            aliases = {str(workdir): "$WORKDIR", str(workdir.resolve()): "$WORKDIR", str(ROOT): "$KPROF_ROOT",
                       str(NODE_MODULES): "$NODE_MODULES", str(run_dir.resolve()): "$RESULT"}
            source = {"kind": "bpf" if scenario.backend == "bpf" else "strace",
                      "log": trace_name(scenario.backend), "scenario": scenario.name}
            if scenario.backend == "bpf":
                from profiler.analysis import BpfAnalysis
                analysis = BpfAnalysis(arch, aliases, source, name=str(run_dir / trace_name(scenario.backend)))
            else:
                analysis = StraceAnalysis(arch, aliases, source, name=str(run_dir / "trace.log"),
                                          sequences=sequences and i == 1)    # the report draws the first run's
            # every scenario runs in its own mount namespace (private /tmp and /dev, emulated devices in it);
            # the network namespace only for network: none
            from profiler.environment import namespaces

            def alongside(first=i == 1):     # the UART pump's emulator is a process of its own: no GIL shared
                if first:
                    _tool_facts(meta)
                    if meanwhile is not None:
                        meanwhile()
            pump = uart_pump(scenario, env)
            try:
                (trace, services, result), how = namespaces.run_isolated(
                    _execute, scenario, workdir, env, run_dir, analysis, network, pump and pump.slave_path,
                    net=network == "none", mount=True, meanwhile=alongside)
            finally:
                if pump is not None:
                    pump.stop()
            if pump is not None:
                services.append(service_report(pump))
            dev = ("private /dev" if scenario.pump is None or scenario.radio == "uart" else
                   "private /dev with a placeholder spidev node and a fake /sys/class/gpio")
            meta.isolation = "; ".join(
                [f"network namespace ({how}), loopback only, resolv.conf naming 127.0.0.1" if network == "none"
                 else "host network", f"mount namespace ({how}): private /tmp, {dev}"])
            outcome = RunOutcome(run_dir=run_dir, trace=trace, services=services, analysis=result)
            if result.footprint.syscalls:
                result.footprint.save(run_dir / "footprint.json")
            outcome.modules = modules_loaded_during(modules_before, loaded_modules())
            outcomes.append(outcome)
            meta.runs.append(run_record(scenario, outcome, workdir))
        finally:
            _tool_facts(meta)  # a run that failed before it recorded
            if keep_workdir:
                meta.keep_workdir(workdir)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
            bundle.write_meta(meta)
        if trace.interrupted:
            break
    return outcomes, meta


def loaded_modules() -> tuple[dict | None, str]:
    from profiler.kernel.modules import read_modules
    try:
        return read_modules()
    except KprofError as e:
        return None, str(e)


def modules_loaded_during(before: tuple, after: tuple) -> dict:
    """Kernel modules that appeared while the command ran (the workload made the kernel load them)."""
    if before[0] is None or after[0] is None:
        return {"loaded": [], "note": after[1] if after[0] is None else before[1]}
    return {"loaded": sorted(set(after[0]) - set(before[0])), "note": None}
