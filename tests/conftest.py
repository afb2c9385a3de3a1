"""Shared test helpers.

Tests use the real tools (strace, node, oref0). Outside CI a test whose tool or privilege is missing is
skipped with the reason; in CI (CI=true, as root) nothing is skipped for that reason: it runs, and fails
if the machine lacks what it needs, so a missing install step cannot hide behind a skip.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import stat
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .helpers.subreaped import LEFT_RUNNING

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
IN_CI = os.environ.get("CI") == "true"


def _needs(ok: bool, reason: str):
    return pytest.mark.skipif(not ok and not IN_CI, reason=reason)


needs_strace = _needs(shutil.which("strace") is not None, "strace is not installed (./setup.sh installs it)")
needs_root = _needs(os.geteuid() == 0, "needs root (network namespaces, tracefs)")
needs_oref0 = _needs((ROOT / "node_modules" / "oref0").is_dir() and shutil.which("node") is not None,
                     "oref0/node not installed (./setup.sh runs npm ci)")


HOST_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def device_state(paths=HOST_DEVICES) -> dict:
    """path → (file type, device number), None when absent."""
    out = {}
    for path in paths:
        try:
            st = os.lstat(path)
            out[path] = (stat.S_IFMT(st.st_mode), st.st_rdev)
        except OSError:
            out[path] = None
    return out


def restore_device(path: str, state) -> None:
    """Put a character device of the host's /dev back as it was (a failing test must not break the machine)."""
    if state is None or state[0] != stat.S_IFCHR or os.geteuid() != 0:
        return
    if os.path.lexists(path):
        os.unlink(path)
    os.mknod(path, 0o666 | stat.S_IFCHR, state[1])
    os.chmod(path, 0o666)


@pytest.fixture(scope="session", autouse=True)
def host_devices_unchanged():
    """The suite leaves the machine's /dev as it found it. A command renaming a file over /dev/null as root
    (an oref0 script did, in a run without a private /dev) breaks every later redirect on the machine: reported
    as an error of the last test, and put right."""
    before = device_state()
    yield
    changed = {path: was for path, was in before.items() if device_state((path,))[path] != was}
    for path, was in changed.items():
        restore_device(path, was)
    assert not changed, f"the suite changed the host's devices (restored): {sorted(changed)}"


WORKER = os.environ.get("PYTEST_XDIST_WORKER")     # gw0, gw1 … when the suite runs on several workers (-n)


def pytest_configure(config):
    """Each worker of a parallel suite gets a temp directory of its own ($TMPDIR for it and for every kprof it
    starts): the suite's checks that nothing is left in the temp directory then see only their own worker's
    runs, never another worker's run in progress."""
    if WORKER and not hasattr(config, "_kprof_tmp"):
        config._kprof_tmp = tempfile.mkdtemp(prefix=f"suite-{WORKER}-", dir=tempfile.gettempdir())
        os.chmod(config._kprof_tmp, 0o755)         # tests that run kprof as another user make their dirs in it
        os.environ["TMPDIR"] = config._kprof_tmp
        tempfile.tempdir = None


# Tests that must run on one worker, one after another (a parallel suite, pytest -n): each group's tests
# compare machine-wide state (the whole tracing state, the mount table) before and after, or share a module
# fixture that would otherwise be set up once per worker. Every other test is scheduled on its own. (By file:
# pytest-xdist's xdist_group marks reach the scheduler through the node id, which pytest 9.2 no longer lets
# a plugin rename.)
SHARED_WORKER = {
    "test_ftrace_record.py": "tracefs", "test_ftrace_faults.py": "tracefs", "test_workload.py": "workload",
    "test_check.py": "check", "test_check_real.py": "check-real", "test_strace_corpus.py": "strace-corpus",
}
# the longest first, so that the last minutes are not one long test on one worker (collection order otherwise)
LONGEST_FIRST = ("test_check_real.py", "test_workload.py", "test_pump_loop.py", "test_ptrace_backend.py",
                 "test_bpf_backend.py", "test_run.py", "test_faults.py")


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def _group(nodeid: str) -> str:
    group = SHARED_WORKER.get(_file(nodeid), nodeid)
    return group + "[slow]" if group == "check-real" and nodeid.endswith("[slow]") else group


def pytest_collection_modifyitems(config, items):
    def rank(item):   # a file's group is as early as the earliest of its files in LONGEST_FIRST
        group = SHARED_WORKER.get(_file(item.nodeid), _file(item.nodeid))
        return min((i for i, f in enumerate(LONGEST_FIRST) if SHARED_WORKER.get(f, f) == group),
                   default=len(LONGEST_FIRST))
    items.sort(key=rank)          # stable: collection order within a rank


def pytest_xdist_auto_num_workers(config):
    """-n auto: two workers more than there are CPUs. Much of the suite waits (a silent pump's radio timeouts,
    the rig's cron minute, the emulated pump's latency), so on this 2-core machine a third worker shortened it
    (~300 s against ~390 s with two) and a fourth again (266 s against 303 s, the same tree side by side:
    the CPUs were busy 93 % of the time, against 81 %)."""
    return (os.cpu_count() or 1) + 2


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)
    config.option.loadscopereorder = False          # keep the order above
    return Scheduling(config, log)


def pytest_unconfigure(config):
    if getattr(config, "_kprof_tmp", None):
        shutil.rmtree(config._kprof_tmp, ignore_errors=True)


@dataclass
class _Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def scenario_run(tmp_path_factory):
    """``kprof run`` of a shipped scenario as a user runs it (its own backend and settings), once per suite run:
    ``scenario_run(path)`` → (its result: returncode, stdout, stderr; bundle); ``scenario_run(path, 2)``, a second
    such run. test_run checks every scenario's run against strace's own summary, and the ptrace and bpf parity
    tests compare their runs with the same strace run: one strace run of each scenario serves them all, on
    whichever worker asks first (a lock per scenario in the directory the workers share; the others wait for it
    and read its bundle)."""
    shared = _shared_dir(tmp_path_factory) / "scenario-runs"
    shared.mkdir(exist_ok=True)

    def get(path: Path, n: int = 1):
        """The shared run ``n`` of the scenario (test_check_real's baseline takes two of the slow ones; test_pump_loop
        asks for pump-loop's second first). Made under a child subreaper: a run that left a process running fails
        every test that asks for it."""
        name = path.stem if n == 1 else f"{path.stem}.{n}"
        bundle = shared / name
        done = shared / f"{name}.result.json"
        with open(shared / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                shutil.rmtree(bundle, ignore_errors=True)     # what a worker killed in the middle left
                # the subprocess's own limit is past every shipped scenario's timeout (at most 300 s): a hang
                # is kprof's to report
                attempts = []       # a first attempt made again (a lost radio exchange): its leftovers count too
                p = again_if_the_radio_was_late(lambda: attempts.append(kprof(
                    "run", path, "--out", bundle, "--format", "json", timeout=600, subreaped=True)) or attempts[-1],
                    bundle, f"kprof run {path.name}")
                left = [line for a in attempts[:-1] for line in a.stderr.splitlines() if line.startswith(LEFT_RUNNING)]
                part = done.with_suffix(".part")
                part.write_text(json.dumps([p.returncode, p.stdout, "\n".join([p.stderr, *left])]))
                part.replace(done)          # whole or not at all: a worker killed here leaves no half result
        p = _Run(*json.loads(done.read_text()))
        assert p.returncode == 0, f"kprof run {path.name}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        left = [line for line in p.stderr.splitlines() if line.startswith(LEFT_RUNNING)]
        assert not left, f"kprof run {path.name} left processes running: {left}"
        return p, bundle
    return get


def _shared_dir(tmp_path_factory) -> Path:
    """A directory every worker of a parallel suite sees (pytest's base temp directory of the run)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if WORKER else base


@pytest.fixture(scope="session")
def shared_mount(tmp_path_factory):
    """``with shared_mount(fstype, path):`` that filesystem is mounted at ``path`` while the block runs. On a
    parallel suite's workers: mounted by the first that needs it (when it was not), unmounted by the last (a count
    under a lock in the directory the workers share), so that no worker unmounts it under another."""
    shared = _shared_dir(tmp_path_factory)

    def mounted_now(fstype: str, path: str) -> bool:
        with open("/proc/mounts") as f:
            return any(ln.split()[1:3] == [path, fstype] for ln in f)

    def count(fstype: str, path: str, users: int) -> None:
        with open(shared / f"mount-{fstype}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = shared / f"mount-{fstype}.json"
            st = json.loads(state.read_text()) if state.exists() else {"users": 0, "ours": False}
            if users > 0 and st["users"] == 0:
                st["ours"] = not mounted_now(fstype, path)
                if st["ours"]:
                    subprocess.run(["mount", "-t", fstype, "nodev", path], check=True)
            st["users"] += users
            if st["users"] == 0 and st["ours"]:
                subprocess.run(["umount", path], check=False)
            state.write_text(json.dumps(st))

    @contextlib.contextmanager
    def mounted(fstype: str, path: str):
        count(fstype, path, 1)
        try:
            yield
        finally:
            count(fstype, path, -1)
    return mounted


@pytest.fixture(scope="session", autouse=True)
def host_tmp_unchanged():
    """The suite leaves no kprof temp directory (a run's workdir, kprof-NAME-*) in the host's /tmp (or $TMPDIR): reported as
    an error of the last test, and removed."""
    tmp = tempfile.gettempdir()     # /tmp, or the TMPDIR a run was given (two suites side by side)

    def ours() -> set[str]:
        return {n for n in os.listdir(tmp) if n.startswith("kprof-")}
    before = ours()
    yield
    left = sorted(ours() - before)
    for name in left:
        shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
    assert not left, f"the suite left these in {tmp} (removed): {left}"


@pytest.fixture
def subreaper():
    """The test's process as a child subreaper while the test runs: whatever a kprof run leaves running is
    re-parented to it, so leftovers are found among its own descendants and never confused with the processes
    of other tests (a parallel suite runs other kprofs beside it)."""
    from profiler.libc import libc
    PR_SET_CHILD_SUBREAPER = 36
    assert libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        libc().prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def host_mounts(own: Path | None = None) -> list[str]:
    """The host's mount table (mountinfo lines), less what other tests of a parallel suite mount meanwhile: a
    tmpfs under pytest's directories (test_outputs' small_tmpfs), tracefs (the ftrace tests' fixture mounts it
    where it is not). Mounts under ``own`` (a test's tmp_path) are kept."""
    def theirs(line: str) -> bool:
        point = line.split()[4]
        return (("/pytest-of-" in point and not (own and point.startswith(str(own))))
                or point == "/sys/kernel/tracing")
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if not theirs(line)]


def outcome_of_bundle(bundle: Path):
    """The fields of a RunOutcome the parity tests read, from a bundle of kprof run (scenario_run's: the suite's
    shared strace run of a scenario)."""
    from types import SimpleNamespace

    from profiler.footprint import Footprint
    run = json.loads((bundle / "meta.json").read_text())["runs"][0]
    return SimpleNamespace(trace=SimpleNamespace(timed_out=run["timed_out"]), exit=run["exit"], run_dir=bundle,
                           analysis=SimpleNamespace(problems=run["parse_problems"],
                                                    footprint=Footprint.load(bundle / "footprint.json")))


def strace_outcome(path: Path, sc, shipped, out: Path, scenario_run):
    """The strace run a parity test compares another backend's with: the suite's shared run of the scenario at
    ``path`` when ``sc`` is it as shipped (``shipped``, strace its backend), else a run of ``sc`` of its own."""
    if sc is shipped and sc.backend == "strace":
        return outcome_of_bundle(scenario_run(path)[1])
    return run_backend(sc, "strace", out)


def run_backend(sc, backend: str, out: Path):
    """One run of scenario ``sc`` through the real runner, with the scenario's ``backend:`` set to ``backend``
    (made again if it lost a radio exchange to the host: ``again_if_the_radio_was_late``)."""
    import dataclasses

    from profiler import runner
    return again_if_the_radio_was_late(lambda: runner.run(dataclasses.replace(sc, backend=backend), out)[0][0], out,
                                       f"{sc.name} under {backend}")


def parity_changes(d, rules) -> list[str]:
    """What a footprint from one backend changed against another's of the same scenario, as ``kprof check``
    would say it, less the counts of timing-dependent items (futex timeouts, polls, sleeps) and of the
    allocator's calls (brk, mmap, madvise …): those follow the tracer's own speed, not what the backend sees
    (a Go client's futex ETIMEDOUT: 11 under strace, 122 under ptrace, in one CI run; node's garbage collector
    returning memory with madvise: 492 under strace, 296 under ptrace, in the pump loop, in another), including
    the count a timing-dependent item that comes or goes is held to (a change with its band: the pump loop's futex
    EAGAIN, 1,582-1,722 under strace, 56-78 under bpf), and whether a timing-dependent syscall fails at all (a
    signal that lands elsewhere under another tracer: wait4 ECHILD, rt_sigreturn's restored register). Whether any
    other item occurs at all is still compared, and every other count."""
    from profiler import compare

    def paced(c) -> bool:
        return compare._timing(rules, c.category, c.key) or (
            c.category == "syscall" and c.key in rules["allocator_syscalls"])
    return [c.message for c in d.changes
            if not ((c.kind == "count" or c.allowed or c.category == "error") and paced(c))]


LOOP_UNSUCCESSFUL = "Unsuccessful oref0-pump-loop"
LOOP_LOGS = ("stdout.txt", "pump-loop.log")     # where the loop's lines are: a scenario's output, a workload's log
# oref0-pump-loop.sh's try_return/retry_return giving up on a step that queries the pump, of those whose "Couldn't"
# line reaches the scenario's stdout (check_status, check_model, read_settings … write theirs to the loop's fd 4,
# /dev/null; oref0-meal, check_cp_meal, openaps report … query no pump)
LOOP_GAVE_UP = re.compile(r"Couldn't (?:invoke_pumphistory_etc|invoke_reservoir_etc|read_full_pumphistory|smb_bolus|mdt)"
                          r"\b.* - continuing")
# what a pump tool says when a radio exchange was lost (the real tools' messages: real-tools/): a radio command
# unanswered, a pump command unanswered, or the line out of step behind a late reply (pump-protocol.md §1.5)
RADIO_LOST = re.compile(r"cc111x: no response|no response to |unexpected response|Receive: "
                        r"|unexpected firmware version")


def _loop_lines(bundle: Path) -> list[str]:
    return [line for name in LOOP_LOGS for f in bundle.rglob(name)
            for line in f.read_text(errors="replace").splitlines()]


# the failures a lost radio exchange causes in a pump tool's run: its exit status and output (bundle.run_record);
# any other (a timeout, the emulator stopped serving, counts that differ from strace's) is never made again
_TOOL_FAILURE = re.compile(r"exit status -?\d+, expected -?\d+|(stdout|stderr) does not contain ")


def _fault_free(bundle: Path, meta: dict) -> bool:
    """The bundle's emulated pump has no fault of its own (no pump fault, radio fault or injected error) and never
    stopped serving: such a pump answers every request, so an exchange lost was lost by the host."""
    try:
        spec = next(yaml.safe_load(f.read_text()) for f in (bundle / "scenario.yaml", bundle / "workload.yaml")
                    if f.is_file())
        pump = spec.get("pump")
    except (StopIteration, OSError, yaml.YAMLError, AttributeError):
        return False
    services = [s for run in meta.get("runs", []) for s in run.get("services", [])] + meta.get("services", [])
    # the fault the pump ran with, as its emulator recorded it: a parity test runs a fault scenario's normal path
    # (faults.normal_variant), and the bundle's scenario.yaml is still the file as written, fault and all
    ran = [s["state"]["fault"] for s in services if s.get("type") == "pump" and "fault" in (s.get("state") or {})]
    fault = ran[0] if ran and len(set(ran)) == 1 else pump.get("fault", "none") if isinstance(pump, dict) else None
    return (isinstance(pump, dict) and fault == "none" and not meta.get("radio_fault")
            and not meta.get("inject") and not any(s.get("type") == "pump" and s.get("error") for s in services))


def _lost_lines(bundle: Path) -> list[str]:
    """What the runs in ``bundle`` said of an exchange the host lost, in a bundle whose pump is fault-free
    (``_fault_free``): oref0-pump-loop's lines of an unsuccessful iteration, or of a scenario's iteration that went
    on without a pump query, or the radio errors of a pump tool's run that failed only in its exit status or output."""
    try:
        meta = json.loads((bundle / "meta.json").read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(meta, dict) or not _fault_free(bundle, meta):
        return []
    loop = _loop_lines(bundle)
    if any(LOOP_UNSUCCESSFUL in line for line in loop):
        return [line for line in loop if "Retry" in line or "Couldn't" in line or LOOP_UNSUCCESSFUL in line]
    # a scenario's iteration that went on without a pump query ("Couldn't invoke_reservoir_etc - continuing": mdt
    # failed after the loop's retries): it did less work (one determine-basal where the loop otherwise runs two),
    # a footprint no other run of the scenario has
    gave_up = [line for f in bundle.rglob("stdout.txt") for line in f.read_text(errors="replace").splitlines()
               if LOOP_GAVE_UP.search(line)]
    if gave_up:
        return gave_up
    out = []
    for run in meta.get("runs", []):
        failures = run.get("failures") or []
        if not run.get("ok", True) and failures and all(_TOOL_FAILURE.match(f) for f in failures):
            err = bundle / run.get("dir", ".") / "stderr.txt"
            text = err.read_text(errors="replace") if err.is_file() else ""
            out += [line for line in text.splitlines() if RADIO_LOST.search(line)]
    return out


def radio_lost(results: Path, before: frozenset = frozenset()) -> dict[Path, list[str]]:
    """The result bundles new in ``results`` (or ``results``, a bundle itself) whose run lost a radio exchange to
    the host, with what the run said of it (``_lost_lines``): oref0-pump-loop had an unsuccessful iteration, or
    a pump tool failed with a radio error, against an emulated pump without a fault of its own. On this suite's
    loaded 2-vCPU machine a radio request now and then reaches kprof's emulator after the pump tool's 55 polls:
    measured beside a whole parallel suite, 5 of 17,252 round trips (and 10 of 17,448 with the workers at nice
    5), each delivered 110-166 ms late while the tool kept polling, the emulator being a real-time thread. The
    line is then out of step (pump-protocol.md §1.5): the tool fails, or the loop its iteration, as on a rig
    whose radio answered late: a run that did other work than the one a test is about."""
    if (results / "meta.json").exists():
        found = [results]
    else:
        found = [b for b in results.iterdir() if b.is_dir() and b not in before] if results.is_dir() else []
    return {b: said for b in found if (said := _lost_lines(b))}


def set_aside(lost: dict[Path, list[str]], what: str) -> None:
    """Bundles of runs that lost a radio exchange (``radio_lost``): renamed ...-unsuccessful (kept, and their
    paths free for the run made again), with a warning in the test summary quoting the loop's log or the tool's
    errors."""
    said = [line for lines in lost.values() for line in lines][:8]
    warnings.warn(f"{what}: a radio exchange was lost (e.g. a request delivered late on this loaded machine): "
                  f"made again. The run said:\n" + "\n".join(said))
    for b in lost:
        n, aside = 1, b.with_name(b.name + "-unsuccessful")
        while aside.exists():       # one set aside before, by a worker killed before its run was made again
            n, aside = n + 1, b.with_name(f"{b.name}-unsuccessful-{n + 1}")
        b.rename(aside)


def again_if_the_radio_was_late(make, results: Path, what: str):
    """``make()`` (a run whose bundles go to ``results``), made once more when a run in it lost a radio exchange
    to the host (``radio_lost``, ``set_aside``). A second failure is the test's to report."""
    before = frozenset(results.iterdir()) if results.is_dir() and not (results / "meta.json").exists() else frozenset()
    out = make()
    lost = radio_lost(results, before)
    if lost:
        set_aside(lost, what)
        out = make()
    return out


def run_again_if_late(scenario, bundle: Path, *args, **kw):
    """``kprof run scenario --out bundle *args`` (``kw``: as for ``kprof``), made once more if it lost a radio
    exchange to the host (``again_if_the_radio_was_late``); the test checks the exit status."""
    return again_if_the_radio_was_late(lambda: kprof("run", scenario, "--out", bundle, *args, **kw), bundle,
                                       f"kprof run {Path(scenario).name}")


# kprof as the child of a child subreaper (tests/helpers/subreaped.py): what its tree leaves running is named on
# stderr (LEFT_RUNNING) and killed
_SUBREAPED = Path(__file__).parent / "helpers" / "subreaped.py"


def kprof(*args, check=None, cwd=None, timeout=300, env=None, subreaped=False):
    """Run the real CLI in a subprocess, as a user would; returns the CompletedProcess. ``subreaped``: under a
    child subreaper that names in stderr (LEFT_RUNNING) and kills what the run left running."""
    cmd = [sys.executable, "-m", "profiler", *map(str, args)]
    if subreaped:
        cmd = [sys.executable, str(_SUBREAPED), *cmd]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})}) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGTERM: kprof stops its tree and keeps its partial trace (the wrapper passes it on and sweeps), so
            # nothing of the run is still writing when the caller goes on
            proc.terminate()
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            raise
    p = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
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


def assert_kconfig_explains(fp, uses=None) -> int:
    """kprof config's acceptance on a footprint (issue 18): every syscall, ioctl handler and device class in it
    has a Kconfig condition (a symbol, "y" = always built, or "n" = the arch has no such syscall, with the
    reason), and any use without a kernel file says why. In-process and cheap: no scenario is run for it.
    ``uses`` (default: kprof's own) lets a test show that the check can fail. Returns the number of uses."""
    from profiler.kernel import kconfig as kc
    from profiler.kernel.devices import classify_path, is_device

    uses = kc.footprint_uses(fp) if uses is None else uses
    for u in uses:
        assert (u.condition and u.file) or u.note, f"unexplained use: {u}"
        if u.condition:
            kc.parse(u.condition)
    syscalls = {u.what: u for u in uses if u.kind == "syscall"}
    assert set(syscalls) == set(fp.syscalls), set(fp.syscalls) ^ set(syscalls)
    for name, u in syscalls.items():
        assert u.condition and u.note and (u.file or u.condition == "n"), f"syscall {name}: {u}"
    for r in fp.ioctl_rows():
        what = f"{r['name'] or r['request']} on {r['device_class']}"
        mine = [u for u in uses if u.kind == "ioctl" and u.what == what]
        assert mine and all(u.condition or u.note for u in mine), f"ioctl {what}: {mine}"
        fd = [u for u in uses if u.kind == "ioctl fd" and u.what.startswith(f"of class {r['device_class']}")]
        assert fd, f"device class {r['device_class']} of ioctl {what}: no use"
    opened = [p for p, d in fp.files.items() if d["calls"] > sum(d["errors"].values()) and p not in fp.devices
              and (classify_path(p) in ("proc", "sysfs", "sysfs-gpio", "cgroup") or is_device(classify_path(p)))]
    for path, cls in [(p, d["class"]) for p, d in fp.devices.items()] + [(p, classify_path(p)) for p in opened]:
        mine = [u for u in uses if u.kind in ("device", "file") and u.what.startswith(f"{path} ({cls})")]
        assert mine, f"{path} (class {cls}): no use"
        assert any(u.condition for u in mine) or all(u.note for u in mine), f"{path} (class {cls}): {mine}"
    return len(uses)
