"""The UART pump emulator in a process of its own, for ``kprof run`` and ``kprof workload``.

A :class:`~profiler.pump.emulator.PumpEmulator` served by a thread shares its interpreter (the GIL, the
garbage collector) with whatever else that process does, and the client gives the radio 50 ms to answer
(pump-protocol.md §1.6): kprof's own work beside it once made a client fail with "cannot connect to CC111x
radio".  :class:`EmulatorProcess` has the interface ``runner.uart_pump``'s callers use — ``start()`` returns
it serving, then ``slave_path``; ``stop()``; after the stop ``exchanges``, ``state``, ``error`` and
``requests`` — while a fresh Python process serves the pty and hands its report back at the stop.

The child is a new interpreter (fork + exec, not a bare fork): it holds none of the parent's threads, locks
or pipe ends (a bare fork of a parent that runs several scenarios at once could keep another run's result
pipe open, and that run would never see its end).  The parent opens the pty and passes both of its fds; the
child sets PR_SET_PDEATHSIG (it dies with the parent), runs in a process group of its own (a Ctrl-C at the
terminal or a signal to kprof's group reaches kprof, which stops the emulator itself), and talks over its
stdin and stdout, one JSON line at a time:

* parent → child: the spec ``{"config": PumpConfig fields, "env": {TZ, MEDTRONIC_FREQUENCY} or null,
  "parent": pid}``; later any byte (or the pipe's end) means stop;
* child → parent: ``{"ready": true, "scheduling": "…"}`` once it serves (or ``{"error": "…"}``), and after the
  stop the report
  ``{"exchanges": […], "state": {…}, "error": null or "…", "requests": n}``.

The pump CLI (``kprof pump serve``) still serves in a thread of its own process: it shows each exchange as
it happens (``on_exchange``), and nothing else runs there.
"""
from __future__ import annotations

import atexit
import dataclasses
import datetime as _dt
import gc
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from profiler.errors import KprofError
from profiler.pump.config import PumpConfig
from profiler.pump.emulator import PumpEmulator, normal_scheduling, radio_scheduling

READY_TIMEOUT_S = 60.0     # a fresh interpreter on a loaded machine (2 cores, -j): seconds, not ms
REPORT_TIMEOUT_S = 10.0    # as long as a serving thread's stop waited for it
EXIT_GRACE_S = 5.0
_ENV_KEYS = ("TZ", "MEDTRONIC_FREQUENCY")   # all PumpEmulator reads of the command's env
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
PR_SET_PDEATHSIG = 1

_live: set = set()         # started and not yet reaped: killed when kprof exits


def _json_default(value):
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


class EmulatorProcess:
    """The radio + pump of ``PumpEmulator(config, env)`` served on a pty by a child process.

    Before ``stop()`` ``exchanges`` is empty and ``state`` is the pump's state at the start; after it they
    are the child's (``PumpEmulator.exchanges`` and ``.state``).  ``error`` says why serving failed or why
    no report came."""

    def __init__(self, config: PumpConfig, env: dict | None = None):
        # built here too: a bad setting or TZ is the caller's KprofError, and its state stands in until the stop
        self._local = PumpEmulator(config, env)
        self.config = config
        self._env = None if env is None else {k: env[k] for k in _ENV_KEYS if k in env}
        self.slave_path: str | None = None
        self.exchanges: list = []
        self.error: str | None = None
        self.requests = 0
        self.scheduling: str | None = None    # how the child serves (emulator.radio_scheduling)
        self._state: dict | None = None
        self._proc: subprocess.Popen | None = None
        self._stopped = False
        self._buf = b""

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._stopped and self._proc.poll() is None

    @property
    def state(self) -> dict:
        return self._state if self._state is not None else self._local.state

    def start(self) -> "EmulatorProcess":
        if self._proc is not None:
            return self
        spec = json.dumps({"config": dataclasses.asdict(self.config), "env": self._env, "parent": os.getpid()},
                          default=_json_default) + "\n"
        master, slave = self._local.open_pty()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                 "from profiler.pump.uart_process import main; main(sys.argv[2:])",
                 _PACKAGE_ROOT, str(master), str(slave)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, pass_fds=(master, slave),
                process_group=0)
        finally:
            os.close(master)       # the child holds both sides now
            os.close(slave)
        _live.add(self)
        try:
            try:
                data = memoryview(spec.encode())
                while data:
                    data = data[os.write(self._proc.stdin.fileno(), data):]
            except BrokenPipeError:
                pass                               # it ended at once: its line below says why
            line = self._read_line(READY_TIMEOUT_S)
            if line is None or not line.get("ready"):
                why = (line or {}).get("error") or f"no word from it in {READY_TIMEOUT_S:g} s"
                raise KprofError(f"the pump emulator's process did not start: {why}")
            self.scheduling = line.get("scheduling")
        except BaseException:
            self._stopped = True
            self._reap(grace=0)
            raise
        self.slave_path = self._local.slave_path
        return self

    def stop(self) -> None:
        """Ask the child for its report and wait for it; the child is reaped (killed if need be) whatever
        happens, Ctrl-C included."""
        if self._proc is None or self._stopped:
            return
        self._stopped = True
        try:
            try:
                os.write(self._proc.stdin.fileno(), b"x")
            except OSError:
                pass
            report = self._read_line(REPORT_TIMEOUT_S)
            if report is None or "state" not in report:
                self.error = (report or {}).get("error") or "the pump emulator's process sent no report"
            else:
                self.exchanges, self._state = report["exchanges"], report["state"]
                self.error, self.requests = report.get("error"), report.get("requests", 0)
        finally:
            self._reap(EXIT_GRACE_S)

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _read_line(self, timeout: float) -> dict | None:
        """The child's next JSON line, or None at its end, on a timeout or when it is not JSON."""
        fd = self._proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(max(1, round(left * 1000))):
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            out = json.loads(line)
        except ValueError:
            return None
        return out if isinstance(out, dict) else None

    def _reap(self, grace: float) -> None:
        """Wait up to ``grace`` s for the child to exit, then kill it; always reap it and close the pipes.
        A Ctrl-C meanwhile kills it at once and is raised after."""
        proc, pending = self._proc, None
        deadline = time.monotonic() + grace
        while True:
            try:
                left = deadline - time.monotonic()
                if left > 0:
                    proc.wait(timeout=left)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                break
            except subprocess.TimeoutExpired:
                continue
            except KeyboardInterrupt as e:     # profiler.signals.Interrupted too
                pending, deadline = pending or e, 0
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        _live.discard(self)
        if pending is not None:
            raise pending


@atexit.register
def _kill_left_over() -> None:
    """A caller that never stopped its emulator (it should, in a finally): no child outlives kprof."""
    for emu in list(_live):
        emu._stopped = True
        emu._reap(grace=0)


# --- the child ---------------------------------------------------------------------------------------

def _die_with_parent(parent: int) -> None:
    from profiler.libc import libc
    libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:          # the parent died before the prctl: nobody will stop this process
        os._exit(1)


def _read_spec() -> dict:
    data = b""
    while not data.endswith(b"\n"):        # unbuffered: the stop byte must stay in the pipe for poll
        chunk = os.read(0, 65536)
        if not chunk:
            os._exit(1)
        data += chunk
    return json.loads(data)


def _send(obj) -> None:
    data = memoryview((json.dumps(obj) + "\n").encode())
    while data:
        data = data[os.write(1, data):]


def main(argv: list[str]) -> None:
    """The child: serve the pty fds ``argv`` until the parent's word on stdin, then report on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # only the parent stops it (or its death)
    master, slave = int(argv[0]), int(argv[1])
    try:
        spec = _read_spec()
        _die_with_parent(spec["parent"])
        emu = PumpEmulator(PumpConfig(**spec["config"]), env=spec["env"])
    except Exception as e:  # noqa: BLE001 - the parent reports it
        _send({"error": f"{type(e).__name__}: {e}"})
        os._exit(1)
    gc.freeze()          # the modules and tables loaded so far stay out of every later collection
    emu.scheduling = radio_scheduling()            # the thread that serves: this one
    _send({"ready": True, "scheduling": emu.scheduling})
    emu.serve(master, slave, 0)
    normal_scheduling()                            # the report is no radio work
    if emu.error is not None:                      # serving failed: the report waits for the parent's stop
        select.select([0], [], [])
    try:
        _send({"exchanges": emu.exchanges, "state": emu.state, "error": emu.error, "requests": emu.requests})
    except OSError:        # the parent is gone
        pass
    os._exit(0)
