"""The pump emulator and kprof's mdt-compatible Go tools, end to end over a real pty.

The tools (build/rig-tools/uart/, built by ./setup.sh) run as real subprocesses with /dev/serial0 bound to
the emulator's pty slave in a private mount namespace (tests/helpers/with_serial0.py), as kprof run does.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import threading
import time
import tty
import warnings
from pathlib import Path

import pytest

from profiler.errors import KprofError
from profiler.pump import protocol as P
from profiler.pump.config import PumpConfig, config_from_mapping, parse_fault
from profiler.pump.emulator import PumpEmulator
from tests.conftest import ROOT, needs_root, needs_strace, per_thread_logs_in_order

BIN = ROOT / "build" / "rig-tools" / "uart"
WITH_SERIAL0 = [sys.executable, str(ROOT / "tests" / "helpers" / "with_serial0.py")]
SERIAL0 = "/dev/serial0"
ALL = ("-s", "2000-01-01T00:00:00Z")            # pumphistory: every record
pytestmark = needs_root                         # the private mount namespace that holds /dev/serial0
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"   # what kprof's runner uses
CLIENT_ENV = {**os.environ, "MEDTRONIC_FREQUENCY": "916.55"}    # the pump is where the client tunes


@pytest.fixture
def pump():
    """pump(**PumpConfig fields) → a started emulator (latency off unless asked); all stopped at teardown."""
    started = []

    def make(**kw):
        kw.setdefault("latency", False)
        e = PumpEmulator(PumpConfig(**kw), env=CLIENT_ENV).start()
        started.append(e)
        return e
    yield make
    for e in started:
        e.stop()


def run(emu: PumpEmulator, *args, env: dict | None = None, prefix: list | None = None, timeout: float = 60,
        again: bool = True):
    """Run the client tool (mdt unless args[0] is pumphistory/listen) against ``emu``.

    The emulated radio always answers GetVersion unless its fault is busy aimed at it (busy:version or busy:all;
    every other fault, the pump's crc or asleep among them, leaves GetVersion alone); a tool that still could not connect lost it to a
    host stall (test_200_reservoir_reads_then_clean_stop, tests/conftest.py radio_lost: the request
    reached the emulator after the tool's 55 polls). With ``again``, such a session is made once more, after
    the late reply is read off the line (it would otherwise answer the next request), and a warning says so."""
    args = [str(a) for a in args]
    tool = args.pop(0) if args and args[0] in ("pumphistory", "listen") else "mdt"
    e = {**CLIENT_ENV, "PATH": SYSTEM_PATH, "MEDTRONIC_PUMP_ID": emu.config.id}
    e.update(env or {})
    e = {k: v for k, v in e.items() if v is not None}
    cmd = [*WITH_SERIAL0, emu.slave_path, *(prefix or []), str(BIN / tool), *args]
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout)
    fault = parse_fault(emu.config.fault)
    refused = fault.mode == "busy" and fault.targets is not None and {"version", "all"} & set(fault.targets)
    if again and not refused and p.returncode == 1 and "cannot connect to CC111x radio" in p.stderr:
        warnings.warn(f"{tool} {' '.join(args)}: could not connect to the emulated radio, which answers GetVersion "
                      f"under fault {emu.config.fault!r} (a host stall): made again. It said: {p.stderr.strip()}")
        _drain(emu.slave_path)
        p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout)
    return p


def _drain(slave_path: str) -> None:
    """Read what is left on the client's side of the line (a reply that came after the client gave up)."""
    time.sleep(0.2)
    fd = os.open(slave_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        tty.setraw(fd)
        while select.select([fd], [], [], 0)[0] and os.read(fd, 4096):
            pass
    finally:
        os.close(fd)


def ok(p) -> str:
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


def pump_exchanges(emu, command=None) -> list:
    return [x for x in emu.exchanges if x["radio"] == "SendAndListen" and (command is None or x["command"] == command)]


# --- the main job: reservoir ---

def test_reservoir_exchange_is_section6(pump):
    """`mdt reservoir` against a 522 at 135 U: the bytes on the line are the worked example of §6.

    Two documented differences: this radio answers "subg_rfspy 1.0" (ecc1's firmware fork; the prototype
    said 2.2) and counts its packets (01, 02; the prototype always sent 01).
    """
    emu = pump(model="522", reservoir=135.0, latency=True)
    p = run(emu, "reservoir")
    assert ok(p) == "135\n"
    got = [(bytes.fromhex(x["request"]), bytes.fromhex(x["response"])) for x in emu.exchanges]
    enc = "55" * 90
    assert got == [
        (bytes.fromhex("02"), b"subg_rfspy 1.0\0"),
        (bytes.fromhex("060926"), b"\x01\0"), (bytes.fromhex("060a30"), b"\x01\0"),
        (bytes.fromhex("060b89"), b"\x01\0"),
        (bytes.fromhex("0500000000000001f400a96c728f496668d55558d500"),
         bytes.fromhex("3001a96c728f496668d5745638e58f28f2" + enc + "95a500")),
        (bytes.fromhex("0500000000000001f400a96c728f49665a355536a500"),
         bytes.fromhex("3002a96c728f49665a3572565d26" + "55" * 93 + "395500")),
    ]
    lines = p.stderr.splitlines()
    assert [re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", line) for line in lines] == [
        f"connected to CC111x radio on {SERIAL0}", "setting frequency to 916.550", "model 522 pump",
        f"disconnecting CC111x radio on {SERIAL0}"]


@pytest.mark.parametrize("model, reservoir, printed", [
    ("522", 135.5, "135.5"), ("722", 42.3, "42.3"), ("523", 80.875, "80.875"), ("723", 135.0, "135"),
    ("554", 12.025, "12.025"), ("754", 0.0, "0"),
])
def test_reservoir_formats(pump, model, reservoir, printed):
    emu = pump(model=model, reservoir=reservoir)
    assert ok(run(emu, "reservoir")) == printed + "\n"
    body = bytes.fromhex(pump_exchanges(emu, "reservoir")[0]["response"])
    assert len(body) == 110


def test_default_frequency(pump):
    emu = pump()
    ok(run(emu, "model", env={"MEDTRONIC_FREQUENCY": None}))
    assert [x["request"] for x in emu.exchanges[1:4]] == ["060926", "060a31", "060b11"]
    assert emu.state["frequency_mhz"] == 916.6


def test_queries(pump):
    emu = pump(model="722", battery=1.45, clock_offset=3600)
    assert ok(run(emu, "model")) == '"722"\n'
    assert len(pump_exchanges(emu, "model")) == 2          # the wake-up step, then the verb
    assert json.loads(ok(run(emu, "status"))) == {"status": "normal", "bolusing": False, "suspended": False}
    assert ok(run(emu, "status")) == '{\n  "status": "normal",\n  "bolusing": false,\n  "suspended": false\n}\n'
    assert json.loads(ok(run(emu, "battery"))) == {"voltage": 1.45, "status": "normal"}
    assert json.loads(ok(run(emu, "tempbasal"))) == {"duration": 0, "temp": "absolute", "rate": 0}
    clock = dt.datetime.fromisoformat(json.loads(ok(run(emu, "clock"))).replace("Z", "+00:00"))
    assert abs((clock - dt.datetime.now(dt.timezone.utc)).total_seconds() - 3600) < 5
    assert json.loads(ok(run(emu, "pumpid"))) == "123456"
    assert json.loads(ok(run(emu, "firmware"))) == "VER 2.4A1.1"
    assert ok(run(emu, "wakeup")) == ""
    assert emu.state["requests"] == 8 * 6 + 5            # GetVersion, 3 registers, model, the verb


def test_low_battery(pump):
    emu = pump(battery=1.25)
    assert json.loads(ok(run(emu, "battery"))) == {"voltage": 1.25, "status": "low"}


# --- state changes persist in one emulator ---

def test_settempbasal_then_tempbasal(pump, tmp_path):
    emu = pump(model="522")
    before = emu.state["history_length"]
    f = tmp_path / "temp.json"
    f.write_text(json.dumps({"temp": "absolute", "rate": 0.925, "duration": 30, "units": 0}))
    assert ok(run(emu, "settempbasal", f)) == ""
    long = [x for x in pump_exchanges(emu, "setAbsoluteTempBasal") if len(x["request"]) == 2 * 118]
    assert len(long) == 1 and long[0]["request"].startswith("05000000000000" + "03e800")
    assert json.loads(ok(run(emu, "tempbasal"))) == {"duration": 30, "temp": "absolute", "rate": 0.9}
    assert emu.state["history_length"] == before + 1
    assert emu.state["temp_basal"] == {"temp": "absolute", "duration": 30, "rate": 0.9}
    history = json.loads(ok(run(emu, "pumphistory")))
    assert [r["Type"] for r in history] == ["TempBasalRate", "TempBasalDuration"]
    assert history[0]["Info"] == {"Type": "Absolute", "Value": 0.9} and history[1]["Info"] == "30m0s"
    # percent temp, -f internal form
    assert ok(run(emu, "-f", "internal", "settempbasal", "50", "60", "percent")) == ""
    assert json.loads(ok(run(emu, "tempbasal"))) == {"duration": 60, "temp": "percent", "rate": 50}
    assert emu.state["history_length"] == before + 2


def test_settempbasal_checks_duration_before_any_traffic(pump, tmp_path):
    emu = pump()
    f = tmp_path / "temp.json"
    f.write_text(json.dumps({"temp": "absolute", "rate": 1.0, "duration": 45}))
    p = run(emu, "settempbasal", f)
    assert p.returncode == 1 and "not a multiple of 30" in p.stderr
    assert emu.exchanges == []


def test_temp_basal_above_max_basal_is_refused(pump):
    emu = pump(max_basal=2.0)
    p = run(emu, "-f", "internal", "settempbasal", "3", "30")
    assert p.returncode == 1 and "setAbsoluteTempBasal error: SettingOutOfRange" in p.stderr
    assert emu.state["temp_basal"] is None


@pytest.mark.parametrize("model, param_bytes", [("522", 1), ("523", 2)])
def test_bolus_lowers_reservoir(pump, tmp_path, model, param_bytes):
    emu = pump(model=model, reservoir=100.0)
    f = tmp_path / "bolus.json"
    f.write_text(json.dumps({"units": 1.5}))
    assert ok(run(emu, "bolus", f)) == ""
    long = [x for x in pump_exchanges(emu, "bolus") if len(x["request"]) == 2 * 118][0]
    assert emu.state["reservoir"] == 98.5
    assert ok(run(emu, "reservoir")) == "98.5\n"
    assert json.loads(ok(run(emu, "status")))["bolusing"] is True
    again = run(emu, "bolus", f)
    assert again.returncode == 1 and "bolus error: BolusInProgress" in again.stderr
    assert emu.state["reservoir"] == 98.5
    history = json.loads(ok(run(emu, "pumphistory")))
    assert history[0]["Type"] == "Bolus" and history[0]["Info"]["Amount"] == 1.5
    pkt = P.decode_packet(bytes.fromhex(long["request"])[10:-1])
    assert pkt[5] == param_bytes and pkt[6:6 + param_bytes] == (b"\x0f" if param_bytes == 1 else b"\x00\x3c")


def test_suspend_resume_button_setclock(pump):
    emu = pump()
    assert ok(run(emu, "suspend")) == ""
    assert json.loads(ok(run(emu, "status")))["suspended"] is True
    assert emu.state["suspended"] is True
    assert ok(run(emu, "resume")) == ""
    assert json.loads(ok(run(emu, "status")))["suspended"] is False
    assert ok(run(emu, "-f", "internal", "button", "esc", "esc")) == ""
    assert emu.state["buttons"] == ["esc", "esc"]
    assert ok(run(emu, "-f", "internal", "setclock", "2030-01-02 03:04:05")) == ""
    assert json.loads(ok(run(emu, "clock"))).startswith("2030-01-02T03:04:0")
    types = [r["Type"] for r in json.loads(ok(run(emu, "pumphistory", *ALL)))]
    assert types == ["ResumePump", "SuspendPump"]


def test_pumphistory_initial_records_x23(pump):
    now = dt.datetime.now().replace(microsecond=0)
    hist = [{"type": "Bolus", "time": (now - dt.timedelta(hours=30)).isoformat(), "amount": 2.0},
            {"type": "TempBasal", "time": (now - dt.timedelta(hours=2)).isoformat(), "rate": 1.2, "duration": 60},
            {"type": "Bolus", "time": (now - dt.timedelta(hours=1)).isoformat(), "amount": 0.325,
             "unabsorbed": 0.1}]
    emu = pump(model="754", history=hist)
    recent = json.loads(ok(run(emu, "pumphistory", "-n", "6")))
    assert [r["Type"] for r in recent] == ["Bolus", "TempBasalRate", "TempBasalDuration"]
    assert recent[0]["Info"]["Amount"] == 0.325 and recent[0]["Info"]["Unabsorbed"] == 0.1
    assert recent[1]["Info"]["Value"] == 1.2 and recent[2]["Info"] == "1h0m0s"
    everything = json.loads(ok(run(emu, "pumphistory", *ALL)))
    assert len(everything) == 4 and everything[-1]["Info"]["Amount"] == 2.0


def test_pumphistory_several_pages(pump):
    start = dt.datetime(2026, 1, 1)
    hist = [{"type": "Bolus", "time": (start + dt.timedelta(minutes=i)).isoformat(), "amount": 0.1}
            for i in range(250)]                 # 9 bytes each: 113 per page → 3 pages
    emu = pump(model="522", history=hist)
    assert emu.state["history_pages"] == 3
    records = json.loads(ok(run(emu, "pumphistory", *ALL)))
    assert len(records) == 250
    assert records[0]["Time"].startswith("2026-01-01T04:09:00")
    assert len([x for x in pump_exchanges(emu) if x["command"] == "historyPage"
                and len(x["request"]) == 2 * 118]) == 3


def test_listen_times_out(pump):
    emu = pump(latency=True)
    p = run(emu, "listen", "-t", "1s")
    assert p.returncode == 1 and p.stderr.rstrip().endswith("timeout")
    assert emu.exchanges[-1]["request"] == "0300000003e8" and emu.exchanges[-1]["response"] == "aa00"


# --- client errors and signals ---

def test_client_errors(pump):
    emu = pump()
    p = run(emu, "reservoir", env={"MEDTRONIC_PUMP_ID": None})
    assert p.returncode == 1 and "MEDTRONIC_PUMP_ID environment variable is not set" in p.stderr
    assert [x["request"] for x in emu.exchanges] == ["02"]        # checked after GetVersion
    p = subprocess.run([str(BIN / "mdt"), "reservoir"], capture_output=True, text=True, timeout=30,
                       env={"PATH": SYSTEM_PATH, "MEDTRONIC_PUMP_ID": "123456"})     # no /dev/serial0 here
    assert p.returncode == 1 and "cannot connect to CC111x radio on /dev/serial0" in p.stderr
    p = run(emu, "reservoir", env={"MEDTRONIC_PUMP_ID": "654321"})   # another pump: silence, then wake-up
    assert p.returncode == 2 and "no response to wakeup" in p.stderr
    p = run(emu, "frobnicate")
    assert p.returncode == 1 and "unknown command" in p.stderr


def test_sigterm_closes_and_exits_0(pump):
    emu = pump(fault="busy:listen")               # the radio never answers GetPacket: listen waits
    e = {**os.environ, "PATH": SYSTEM_PATH, "MEDTRONIC_PUMP_ID": "123456"}
    proc = subprocess.Popen([*WITH_SERIAL0, emu.slave_path, str(BIN / "listen"), "-t", "1h"], env=e,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not any(x["radio"] == "GetPacket" for x in emu.exchanges) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


# --- the device-level syscalls (§1.2-§1.7) ---

@needs_strace
def test_strace_device_calls(pump, tmp_path):
    emu = pump(latency=True)
    log = tmp_path / "strace.log"
    p = run(emu, "reservoir", prefix=["strace", "-ff", "-ttt", "-X", "raw", "-yy", "-o", str(log)])
    assert ok(p) == "135\n"
    text = per_thread_logs_in_order(tmp_path.glob("strace.log.*"))
    dev = SERIAL0
    opens = [line for line in text if re.search(r'\bopenat\(.*"' + re.escape(dev) + '"', line)]
    assert len(opens) == 1, opens
    m = re.search(r'openat\((-100)<[^>]*>, "' + re.escape(dev) + r'", (0x[0-9a-f]+)\) = (\d+)<', opens[0])
    assert m, opens[0]
    flags, fd = int(m.group(2), 16), m.group(3)
    assert flags == 0x902 and not flags & 0o2000000          # O_RDWR|O_NOCTTY|O_NONBLOCK, no O_CLOEXEC
    on_fd = [re.sub(r"^\d+\s+", "", line) for line in text if f"({fd}<{dev}<char" in line]
    names = [re.match(r"(\w+)\(", c).group(1) for c in on_fd]
    assert set(names) == {"ioctl", "fcntl", "write", "read", "close"}
    assert names[:4] == ["ioctl", "fcntl", "fcntl", "write"] and names[-1] == "close"
    ioctls = [c for c in on_fd if c.startswith("ioctl(")]
    assert len(ioctls) == 1 and ", 0x5402, " in ioctls[0] and "c_iflag=0x4" in ioctls[0]
    assert not any(", 0x5401" in c for c in on_fd)
    assert re.search(r"^fcntl\(\d+<.*>, 0x3\) = 0x8802", on_fd[1])
    assert re.search(r"^fcntl\(\d+<.*>, 0x4, 0x8002\) = 0$", on_fd[2])
    writes = [c for c in on_fd if c.startswith("write(")]
    assert [int(c.rsplit("= ", 1)[1]) for c in writes] == [1, 3, 3, 3, 22, 22]
    reads = [c for c in on_fd if c.startswith("read(")]
    assert all(re.search(r", 256\) = \d+$", c) for c in reads)
    data = [int(c.rsplit("= ", 1)[1]) for c in reads if not c.endswith("= 0")]
    assert data == [15, 2, 2, 2, 110, 110]
    # between the writes: only reads (one response per request; the replies took > 1 ms, so polling shows)
    assert len(reads) > len(data)
    assert sum(1 for c in on_fd if c.startswith("close(")) == 1


# --- faults (§5.5) ---

def unheard(x: dict) -> bool:
    """A radio exchange the pump did not answer: the radio's timeout (AA 00), or, when the client gave up first on a
    loaded machine and its next command reached the radio while it listened, BB 00 (pump-protocol.md: interrupted)."""
    return x["response"] == "aa00" or (x["response"] == "bb00" and bool(x.get("interrupted")))


def test_fault_no_response_goes_through_the_wake_up_path(pump):
    emu = pump(fault="no-response")
    p = run(emu, "reservoir")
    assert p.returncode == 2
    assert "waking pump" in p.stderr and p.stderr.rstrip().endswith("no response to wakeup")
    sal = pump_exchanges(emu)
    assert [x["command"] for x in sal] == ["model"] * 3 + ["wakeup"] * 101
    timeouts = [int(x["request"][10:18], 16) for x in sal]
    assert timeouts == [500] * 3 + [10] * 100 + [10000]
    assert all(map(unheard, sal)), [(x["response"], x.get("interrupted")) for x in sal if not unheard(x)]


def test_fault_no_response_for_one_command(pump):
    emu = pump(fault="no-response:reservoir")
    p = run(emu, "reservoir")
    assert p.returncode == 2 and p.stderr.rstrip().endswith("no response to reservoir")
    assert "waking pump" not in p.stderr
    assert len(pump_exchanges(emu, "reservoir")) == 3


def test_fault_busy(pump):
    emu = pump(fault="busy")
    p = run(emu, "reservoir")
    assert p.returncode == 1 and p.stderr.rstrip().endswith("cc111x: no response")
    assert "waking pump" not in p.stderr
    sal = pump_exchanges(emu, "model")
    assert len(sal) == 3 and all(x["response"] is None and x["fault"] == "busy" for x in sal)


def test_fault_busy_radio_commands(pump):
    emu = pump(fault="busy:version")
    p = run(emu, "reservoir")
    assert p.returncode == 1 and f"cannot connect to CC111x radio on {SERIAL0}" in p.stderr
    emu = pump(fault="busy:register")        # a silent FREQ0 write leaves the radio error: nothing is sent
    p = run(emu, "reservoir")
    assert p.returncode == 1 and p.stderr.rstrip().endswith("cc111x: no response")
    assert pump_exchanges(emu) == []


def test_fault_crc_always(pump):
    emu = pump(fault="crc")
    p = run(emu, "reservoir")
    assert p.returncode == 1 and re.search(r"computed CRC 58 but received [0-9A-F]{2}$", p.stderr.rstrip())
    assert len(pump_exchanges(emu, "model")) == 3


def test_fault_crc_some_tries(pump):
    emu = pump(fault="crc:reservoir@2")
    p = run(emu, "reservoir")
    assert ok(p) == "135\n" and "reservoir command required 2 retries" in p.stderr
    assert [x["fault"] for x in pump_exchanges(emu, "reservoir")] == ["crc", "crc", None]


def test_fault_asleep_wakes_after_the_flood(pump):
    emu = pump(fault="asleep", latency=True)
    assert emu.state["awake"] is False
    p = run(emu, "reservoir")
    assert ok(p) == "135\n" and "waking pump" in p.stderr
    sal = pump_exchanges(emu)
    cmds = [x["command"] for x in sal]
    assert cmds == ["model"] * 3 + ["wakeup"] * 21 + ["reservoir", "model"]
    # model ×3, 19 wake-ups unheard
    assert all(map(unheard, sal[:22])), [(x["response"], x.get("interrupted")) for x in sal[:22]]
    ack = "a96c728f496656655535a5"                                       # the 20th wake-up wakes the pump
    assert sal[22]["response"][4:-2] == ack and sal[23]["response"][4:-2] == ack
    assert [int(x["request"][10:18], 16) for x in sal[21:24]] == [10, 10, 10000]
    assert emu.state["awake"] is True
    p = run(emu, "reservoir")                 # awake now: the normal path
    assert ok(p) == "135\n" and "waking pump" not in p.stderr


@pytest.mark.parametrize("fault, code, message", [
    ("zero-data", 1, "Receive: ErrorZeroData"),
    ("encoding", 1, "6b/4b decoding failure"),
    ("wrong-pump", 1, "unexpected response to model: A7 03 25 47 8D"),
    ("nak", 1, "model error: CommandRefused"),
    ("interrupted", 0, None),
    ("late", 1, "unexpected response to reservoir"),
])
def test_other_faults(pump, fault, code, message):
    emu = pump(fault=fault)
    p = run(emu, "reservoir")
    assert p.returncode == code, p.stderr
    if message:
        assert message in p.stderr
    else:
        assert p.stdout == "135\n"


def test_fault_ack_lost_changes_state_anyway(pump):
    emu = pump(fault="ack-lost")
    p = run(emu, "-f", "internal", "settempbasal", "0.9", "30")
    assert p.returncode == 2 and p.stderr.rstrip().endswith("no response to setAbsoluteTempBasal")
    assert emu.state["temp_basal"]["rate"] == 0.9


def test_fault_history_fragments(pump):
    emu = pump(fault="lost-fragment@2", history=[{"type": "PumpSuspend", "time": "2026-01-01T00:00:00"}])
    p = run(emu, "pumphistory", *ALL)
    assert [r["Type"] for r in json.loads(ok(p))] == ["SuspendPump"]
    assert "received fragment 2 after 1 NAK" in p.stderr and "received fragment 3 after 1 NAK" in p.stderr
    emu = pump(fault="page-crc@1", history=[{"type": "PumpResume", "time": "2026-01-01T00:00:00"}])
    p = run(emu, "pumphistory", *ALL)
    assert [r["Type"] for r in json.loads(ok(p))] == ["ResumePump"]
    assert "history page 0: computed CRC" in p.stderr
    emu = pump(fault="duplicate-fragment@3", history=[{"type": "PumpResume", "time": "2026-01-01T00:00:00"}])
    assert [r["Type"] for r in json.loads(ok(run(emu, "pumphistory", *ALL)))] == ["ResumePump"]


# --- robustness ---

def _ptmx_fds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == "/dev/ptmx"
        except OSError:
            pass
    return n


def _children() -> list:
    me = str(os.getpid())
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                out.append(pid)
    return out


TIMEOUT_CLASS = ("cannot connect to CC111x radio", "cc111x: no response")


def test_200_reservoir_reads_then_clean_stop():
    """200 sessions, one after another, against one emulator; then stop() leaves nothing behind.

    The emulator answers every request at once (latency off) and every session must print 135.  The
    one tolerated exception is a host stall: on an overloaded machine the kernel can take more than the
    client's 50 ms radio timeout to carry a request through the pty, and the faithful client then fails
    with a timeout although the emulator answered within milliseconds of receiving it.  Such sessions are
    listed in the failure message when they exceed 2.
    """
    ptmx_before = _ptmx_fds()
    emu = PumpEmulator(PumpConfig(latency=False, reservoir=135.0)).start()
    slave = emu.slave_path
    try:
        stalls, failures = [], []
        for i in range(200):
            p = run(emu, "reservoir", again=False)       # host stalls are counted here
            if p.returncode == 0 and p.stdout == "135\n":
                continue
            last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
            if p.returncode == 1 and any(m in last for m in TIMEOUT_CLASS) and not stalls[-1:] == [i - 1]:
                stalls.append(i)
            else:
                failures.append((i, p.returncode, p.stdout, p.stderr))
        assert failures == [] and len(stalls) <= 2, (failures, stalls)
        assert emu.state["requests"] >= 200 * 6 - 5 * len(stalls)
    finally:
        emu.stop()
    emu.stop()                                      # idempotent
    assert not emu.running
    assert not any(t.name == "kprof-pump-emulator" for t in threading.enumerate())
    assert _ptmx_fds() == ptmx_before
    assert not os.path.exists(slave)                # the pty is gone with both its sides closed
    assert _children() == []


# --- served by a process of its own (kprof run, kprof workload) ---

def _gone(pid: int) -> bool:
    """No such process, or only its zombie (dead, waiting for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_emulator_process_serves_and_reports_like_the_thread(tmp_path):
    """The runner's emulator: a child process serves the pty; stop() brings its exchanges and state back, the
    same as a serving thread's, and leaves no process, pty or fd behind."""
    from profiler.pump.uart_process import EmulatorProcess
    ptmx_before, children_before = _ptmx_fds(), _children()
    history = [{"type": "Bolus", "time": dt.datetime(2026, 11, 27, 3, 19, 28), "amount": 1.5}]
    temp = tmp_path / "temp.json"
    temp.write_text(json.dumps({"temp": "absolute", "rate": 0.9, "duration": 30, "units": 0}))
    results = []
    for kind in (PumpEmulator, EmulatorProcess):
        emu = kind(PumpConfig(latency=False, reservoir=135.0, history=history), env=CLIENT_ENV).start()
        pid = getattr(emu, "pid", None)
        assert emu.running and os.path.exists(emu.slave_path)
        assert ok(run(emu, "reservoir")) == "135\n"
        assert ok(run(emu, "settempbasal", temp)) == ""
        slave = emu.slave_path
        emu.stop()
        emu.stop()                                  # idempotent
        assert not emu.running and emu.error is None
        assert not os.path.exists(slave)
        results.append(([(x["radio"], x["command"], x["request"], x["response"]) for x in emu.exchanges],
                        {k: v if k != "history" else [{**h, "time": None} for h in v]   # clocks tick
                         for k, v in emu.state.items() if k != "clock"}))
        if pid is not None:
            assert _gone(pid)
    assert results[0] == results[1]
    assert results[1][1]["temp_basal"] == {"temp": "absolute", "duration": 30, "rate": 0.9}
    assert results[1][1]["history_length"] == 2
    assert _ptmx_fds() == ptmx_before and _children() == children_before


def test_the_radio_is_served_in_real_time_and_says_so():
    """The radio answers within the client's 50 ms on a loaded machine: the thread serving it, in the runner's
    emulator process and in a serving thread alike, asks for SCHED_FIFO (this module runs as root; children
    would not inherit it), and the run's report says how it was scheduled. Where root may not have a real-time
    priority (a container without CAP_SYS_NICE) it must say nice -10; as another user (no real-time budget)
    the request is refused, and said."""
    from profiler.pump.uart_process import EmulatorProcess
    allowed = subprocess.run([sys.executable, "-c", "import os; os.sched_setscheduler(0, os.SCHED_FIFO, "
                              "os.sched_param(1))"], capture_output=True).returncode == 0
    for emu in (EmulatorProcess(PumpConfig(latency=False)).start(), PumpEmulator(PumpConfig(latency=False)).start()):
        tid = emu.pid if isinstance(emu, EmulatorProcess) else emu._thread.native_id
        try:
            deadline = time.monotonic() + 5
            while emu.scheduling is None and time.monotonic() < deadline:     # the thread has just started
                time.sleep(0.01)
            if allowed:
                assert os.sched_getscheduler(tid) == os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
                assert os.sched_getparam(tid).sched_priority == 1
                assert emu.scheduling == "real-time (SCHED_FIFO, priority 1)"
            else:
                assert os.sched_getscheduler(tid) == os.SCHED_OTHER and os.getpriority(os.PRIO_PROCESS, tid) == -10
                assert emu.scheduling.startswith("normal, nice -10 (")
        finally:
            emu.stop()
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from profiler.pump.emulator import radio_scheduling; "
            "print(radio_scheduling())")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", sys.executable, "-c",
                        code, str(ROOT)], capture_output=True, text=True, timeout=60, cwd="/",
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0)))
    assert p.stdout.strip() == "normal (Operation not permitted for a real-time priority)", p.stderr


def test_emulator_process_bad_settings_are_the_callers_error():
    from profiler.pump.uart_process import EmulatorProcess
    children_before = _children()
    with pytest.raises(KprofError, match="model"):
        EmulatorProcess(PumpConfig(model="999"))
    with pytest.raises(KprofError, match="TZ"):
        EmulatorProcess(PumpConfig(), env={"TZ": "Nowhere/Atlantis+25:99x"})
    assert _children() == children_before


def test_emulator_process_killed_is_reported_not_raised():
    """A child that died (killed from outside) leaves an error and the starting state; stop() reaps it."""
    from profiler.pump.uart_process import EmulatorProcess
    emu = EmulatorProcess(PumpConfig(reservoir=80.0), env=CLIENT_ENV).start()
    os.kill(emu.pid, signal.SIGKILL)
    emu.stop()
    assert "no report" in emu.error and emu.state["reservoir"] == 80.0 and emu.exchanges == []
    assert _gone(emu.pid) and not emu.running


@pytest.mark.parametrize("how", ["exit", "killed", "no-stop"])
def test_emulator_process_dies_with_kprof(tmp_path, how):
    """Its parent gone (os._exit, SIGKILL) or never stopping it (atexit): no emulator process is left."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from profiler.pump.config import PumpConfig\n"
        "from profiler.pump.uart_process import EmulatorProcess\n"
        "e = EmulatorProcess(PumpConfig()).start()\n"
        "print(e.pid, flush=True)\n"
        "sys.stdin.readline()\n"               # the test has seen the emulator running
        f"how = {how!r}\n"
        "if how == 'exit':\n    os._exit(0)\n"
        "if how == 'no-stop':\n    sys.exit(0)\n"
        "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert not _gone(pid)
        if how == "killed":
            parent.kill()
        else:
            parent.stdin.write("go\n")
            parent.stdin.flush()
        parent.wait(timeout=30)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def _emulator_children(pid: int) -> list[int]:
    out = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1]
            argv = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        if ppid == str(pid) and b"profiler.pump.uart_process" in argv:
            out.append(int(d))
    return out


def _poll_pump_run(tmp_path, command: str, then, wait: float, timeout: float = 60):
    """``kprof run`` of a scenario polling the emulated pump with ``command``; once its emulator's process is
    serving and ``wait`` seconds passed, ``then(kprof_pid, emulator_pid)``. Returns (process, stderr, emulator
    pid, bundle); nothing is left running whatever happens."""
    sc = tmp_path / "poll-pump.yaml"
    sc.write_text(f"name: poll-pump\ndescription: the emulated pump polled\ncommand: '{command}'\nshell: true\n"
                  "timeout: 60\npump: {latency: false}\n")
    bundle = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-m", "profiler", "run", str(sc), "--out", str(bundle)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline, emulator = time.monotonic() + 60, []
        while not emulator and time.monotonic() < deadline and proc.poll() is None:
            emulator = _emulator_children(proc.pid)
            time.sleep(0.05)
        assert len(emulator) == 1, "kprof serves the pump from a child process"
        time.sleep(wait)
        then(proc.pid, emulator[0])
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc, err, emulator[0], bundle


@needs_strace
@pytest.mark.parametrize("sig,to_group", [(signal.SIGINT, True), (signal.SIGTERM, False)], ids=["int-group", "term"])
def test_kprof_run_interrupted_leaves_no_emulator_process(tmp_path, sig, to_group):
    """Ctrl-C (to kprof's process group, as a terminal sends it) or SIGTERM during a pump scenario: kprof
    stops the emulator's process itself, keeps its report, and no emulator process is left."""
    proc, err, emulator, bundle = _poll_pump_run(
        tmp_path, "while true; do mdt reservoir; sleep 0.2; done",
        lambda kprof_pid, _: (os.killpg if to_group else os.kill)(kprof_pid, sig), wait=2)
    assert proc.returncode == 128 + sig and "Traceback" not in err, err
    assert _gone(emulator)
    pump = next(s for s in json.loads((bundle / "meta.json").read_text())["runs"][0]["services"]
                if s["type"] == "pump")
    assert pump["exchanges"] > 0 and pump["state"]["reservoir"] == 135.0


@needs_strace
def test_an_emulator_process_that_dies_makes_the_run_incomplete(tmp_path):
    """The emulated pump's process killed from outside during a run (OOM, a stray kill): the run is incomplete
    (exit 2) and says why, never reported as the pump's state after the run."""
    proc, err, _, bundle = _poll_pump_run(
        tmp_path, "for i in 1 2 3 4 5 6 7 8 9 10; do mdt reservoir; sleep 0.3; done; true",
        lambda _, emulator_pid: os.kill(emulator_pid, signal.SIGKILL), wait=1, timeout=90)
    assert proc.returncode == 2 and "Traceback" not in err, (proc.returncode, err)
    run = json.loads((bundle / "meta.json").read_text())["runs"][0]
    assert run["incomplete"] and any("the emulated pump stopped serving" in f for f in run["failures"]), run
    assert next(s for s in run["services"] if s["type"] == "pump")["error"]


# --- configuration ---

def test_config_from_mapping():
    cfg = config_from_mapping({"id": 654321, "model": 723, "reservoir": 80, "fault": "crc:reservoir@1"}, "s.yaml: pump")
    assert (cfg.id, cfg.model, cfg.reservoir, cfg.fault) == ("654321", "723", 80.0, "crc:reservoir@1")
    assert config_from_mapping({}) == PumpConfig()
    for spec, words in [
        ({"colour": "blue"}, ["s.yaml: pump", "colour"]),
        ({"id": "12345"}, ["s.yaml: pump", "id"]),
        ({"id": 12345}, ["id", "quote"]),
        ({"model": "999"}, ["model", "522"]),
        ({"reservoir": -1}, ["reservoir"]),
        ({"reservoir": "lots"}, ["reservoir"]),
        ({"fault": "gremlins"}, ["fault", "no-response"]),
        ({"fault": "crc:toaster"}, ["fault", "toaster"]),
        ({"latency": "yes"}, ["latency"]),
        ({"history": [{"type": "Bolus"}]}, ["history[0]", "time"]),
        ({"history": [{"type": "Bolus", "time": "2026-01-01T00:00:00"}]}, ["history[0]", "amount"]),
        ({"history": [{"type": "TempBasal", "time": "2026-01-01T00:00:00", "rate": 1, "duration": 45}]},
         ["history[0].duration", "30"]),
        ({"history": [{"type": "Nap", "time": "2026-01-01T00:00:00"}]}, ["history[0].type"]),
    ]:
        with pytest.raises(KprofError) as e:
            config_from_mapping(spec, "s.yaml: pump")
        assert all(w in str(e.value) for w in words), (spec, str(e.value))


def test_parse_fault():
    f = parse_fault("crc:reservoir,8D@2")
    assert f.mode == "crc" and f.targets == {0x73, 0x8D} and f.count == 2
    assert parse_fault("asleep@5").count == 5 and parse_fault("none").targets is None
    assert parse_fault("busy:version").targets == {"version"}
    for bad in ("crc@0", "crc:version", "nope", ""):
        with pytest.raises(ValueError):
            parse_fault(bad)


# --- kprof pump serve ---

SERVE = ("import argparse, sys\nfrom profiler.commands import pump\nfrom profiler.errors import KprofError\n"
         "p = argparse.ArgumentParser(); pump.add_arguments(p)\n"
         "try:\n    sys.exit(pump.main(p.parse_args(sys.argv[1:])))\n"
         "except KprofError as e:\n    print(e, file=sys.stderr); sys.exit(2)\n")


def test_pump_serve(tmp_path):
    link = tmp_path / "serial0"
    config = tmp_path / "pump.yaml"
    config.write_text("model: 554\nreservoir: 10\nfrequency: 916.7\nmax_bolus: 15\n")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--config", str(config), "--reservoir", "135.5",
                             "--model", "523", "--no-latency", "--link", str(link)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        slave = proc.stdout.readline().strip()
        assert slave.startswith("/dev/pts/") and os.readlink(link) == slave
        e = {**os.environ, "PATH": SYSTEM_PATH, "MEDTRONIC_PUMP_ID": "123456"}
        for _ in range(2):                                        # sessions one after another
            p = subprocess.run([*WITH_SERIAL0, str(link), str(BIN / "mdt"), "reservoir"], env=e, capture_output=True,
                               text=True, timeout=30)
            assert p.stdout == "135.5\n", p.stderr
        p = subprocess.run([*WITH_SERIAL0, str(link), str(BIN / "mdt"), "-f", "internal", "bolus", "1"], env=e,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    state = json.loads(out)
    assert state["reservoir"] == 134.5 and state["model"] == "523" and state["history_length"] == 1
    assert state["pump_frequency_mhz"] == 916.7                   # from --config; the options override it
    assert not os.path.lexists(link)


def test_pump_serve_rejects_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args, words in [(["--id", "xyz"], ["id"]), (["--fault", "gremlins"], ["fault"]),
                        (["--link", str(blocker)], ["not a symlink"]),
                        (["--config", str(blocker)], ["--config", "mapping"]),
                        (["--config", str(tmp_path / "none.yaml")], ["--config", "cannot read"])]:
        p = subprocess.run([sys.executable, "-c", SERVE, "serve", *args], cwd=ROOT, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 2 and all(w in p.stderr for w in words), p.stderr


def test_pump_serve_never_replaces_an_existing_link(tmp_path):
    """On a Pi /dev/serial0 -> ttyAMA0 is the real UART: --link refuses it and leaves it as it was; only a
    link kprof left behind (to a pty that no longer exists) is reused, and removed on exit."""
    real = tmp_path / "serial0"
    real.symlink_to("ttyAMA0")
    existing = tmp_path / "live"
    existing.symlink_to("/dev/ptmx")
    for link in (real, existing):
        p = subprocess.run([sys.executable, "-c", SERVE, "serve", "--link", str(link)], cwd=ROOT,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "exists already" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert os.readlink(real) == "ttyAMA0" and os.readlink(existing) == "/dev/ptmx"
    stale = tmp_path / "stale"
    stale.symlink_to("/dev/pts/4711999")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--no-latency", "--link", str(stale)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        slave = proc.stdout.readline().strip()
        assert os.readlink(stale) == slave
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not os.path.lexists(stale)


# --- the framing-agnostic core: handle_request on an emulator that is never start()ed (no pty) ---
#
# Reply bodies are decoded here from the layouts documented in ../shared/reference/real-tools/*.txt, and
# compared with the bytes those files quote, not with the emulator's own encoders.

REAL_TOOLS = ROOT.parent / "shared" / "reference" / "real-tools"
needs_reference = pytest.mark.skipif(not REAL_TOOLS.is_dir(), reason=f"reference data {REAL_TOOLS} is absent")


def core(env=None, **kw):
    """A never-started emulator (latency off unless asked), tuned like a client with MEDTRONIC_FREQUENCY."""
    kw.setdefault("latency", False)
    env = {"TZ": "UTC", "MEDTRONIC_FREQUENCY": "916.55", **(env or {})}
    emu = PumpEmulator(PumpConfig(**kw), env=env)
    tune(emu, P.parse_frequency(env["MEDTRONIC_FREQUENCY"]))
    return emu


def tune(emu, hz: int) -> None:
    for req in P.frequency_requests(hz):
        assert b"".join(d for _, d in emu.handle_request(req).steps) == b"\x01\0"


def exchange(emu, cmd: int, params: bytes | None = None, timeout_ms: int = 500):
    """One SendAndListen: (RSSI byte, decoded packet without CRC), or None when the radio answers AA 00."""
    addr = P.pump_address(emu.config.id)
    pkt = P.short_packet(addr, cmd) if params is None else P.long_packet(addr, cmd, params)
    reply = emu.handle_request(P.send_and_listen_request(P.encode_packet(pkt), timeout_ms))
    data = b"".join(d for _, d in reply.steps)
    if data == b"\xaa\0":
        return None
    assert data[-1:] == b"\0" and len(data) > 3, data.hex()
    return data[0], P.decode_packet(data[2:-1])


def body(emu, cmd: int, params: bytes | None = None, expect: int | None = None) -> bytes:
    """The 65-byte body of the data response to ``cmd``, whose command byte must be ``expect`` (or ``cmd``)."""
    got = exchange(emu, cmd, params)
    want = cmd if expect is None else expect
    assert got is not None and got[1][:4] == b"\xa7" + P.pump_address(emu.config.id) and got[1][4] == want, got
    assert len(got[1]) == 70                     # a long data response: 5 header bytes + 65 body bytes
    return got[1][5:]


def quoted_hex(name: str, label: str) -> bytes:
    """The bytes a reference file quotes after ``label`` (e.g. "Body used"), between backticks."""
    text = (REAL_TOOLS / name).read_text()
    m = re.search(re.escape(label) + r"[^`]*`([0-9A-F ]+)`", text)
    assert m, (name, label)
    return bytes.fromhex(m.group(1))


def extended(emu, cmd: int) -> list:
    """An extended response (pump-protocol.md §4.3 P3): the first reply, then one ACK per fragment."""
    frags = [body(emu, cmd)]
    while not frags[-1][0] & 0x80:
        assert frags[-1][0] == len(frags)         # sequence numbers 1, 2, …
        frags.append(body(emu, P.ACK, expect=cmd))
    return frags


def half_hours(start: int) -> str:
    return f"{start // 2:02d}:{30 * (start % 2):02d}"


@needs_reference
@pytest.mark.parametrize("model", ["522", "722", "515", "523", "754", "512"])
def test_settings_reply(model):
    """settings.txt's table: byte 0 names the layout; maxBolus, maxBasal, action at family-dependent offsets."""
    emu = core(model=model, max_bolus=15, max_basal=3.5, insulin_action_curve=4 if model != "512" else 8)
    family = P.family_of(model)
    cmd, refused = (0x91, 0xC0) if family <= 12 else (0xC0, 0x91)
    b = body(emu, cmd)
    first, bolus_at = (18, 6) if family <= 12 else (21, 6) if family <= 22 else (25, 7)
    assert b[0] == first
    assert b[bolus_at] * 0.1 == pytest.approx(15)
    assert int.from_bytes(b[bolus_at + 1:bolus_at + 3], "big") * 0.025 == pytest.approx(3.5)
    assert b[1] == 0 and b[10] == 0 and b[12] == 0 and b[13] == 1 and b[14] == 0   # auto-off, U-100, pattern, RF
    assert (b[18] != 0) if family <= 12 else b[18] == 4                              # 8 h on a 512; else hours
    if model in ("522", "722"):
        assert b[:22] == quoted_hex("settings.txt", "Body used")                   # ecc1's family-22 vector
    assert exchange(emu, refused)[1][4:6] == b"\x15\x08"                             # the other family's opcode


def test_refusing_the_settings_commands_is_a_fault_target():
    """The refused runs of real-tools/*.txt (NAK 08) stay reproducible: fault nak:settings,basal,..."""
    emu = core(fault="nak:settings,basal,targets,sensitivities,carbratios")
    for cmd in (0xC0, 0x92, 0x9F, 0x8B, 0x8A):
        assert exchange(emu, cmd)[1][4:6] == b"\x15\x08", hex(cmd)
    assert exchange(emu, P.MODEL)[1][4] == P.MODEL


def _basal(frags) -> list:
    data = b"".join(f[1:] for f in frags)
    out = []
    for i in range(0, len(data) - 2, 3):
        rate, start = int.from_bytes(data[i:i + 2], "little"), data[i + 2]
        if out and rate == 0 and start == 0:
            break
        out.append((half_hours(start), rate * 0.025))
    return out


@needs_reference
def test_basal_is_an_extended_response_of_two_fragments():
    emu = core()
    frags = extended(emu, P.BASAL_RATES)
    assert len(frags) == 2 and [f[0] for f in frags] == [0x01, 0x82]
    ref = quoted_hex("basal.txt", "Fragments used: `01` + ")
    assert frags[0] == b"\x01" + ref.ljust(64, b"\0") and frags[1] == b"\x82" + bytes(64)
    assert _basal(frags) == [("00:00", pytest.approx(1.0)), ("09:00", pytest.approx(1.2))]
    assert exchange(emu, P.ACK) is None                       # no transfer left: an ACK is not answered
    assert emu.exchanges == []                                  # handle_request alone logs nothing (record does)
    schedule = [{"start": half_hours(i), "rate": 0.025 * (i + 1)} for i in range(48)]
    frags = extended(core(basal_schedule=schedule), P.BASAL_RATES)
    assert [f[0] for f in frags] == [1, 2, 0x83]               # 48 entries = 144 bytes: a third fragment
    assert _basal(frags) == [(e["start"], pytest.approx(e["rate"])) for e in schedule]


def _entries(b: bytes, first: int, size: int) -> list:
    n = b[0] - 1
    assert n % size == 0
    data, out = b[first:first + n], []
    for i in range(0, n, size):
        if out and data[i] & 0x3F == 0:
            break
        out.append(data[i:i + size])
    return out


@needs_reference
def test_targets_sensitivities_carb_ratios_defaults_are_the_documented_bodies():
    emu = core()
    for cmd, name in [(P.GLUCOSE_TARGETS, "targets.txt"), (P.INSULIN_SENSITIVITIES, "sensitivities.txt"),
                      (P.CARB_RATIOS, "carbratios.txt")]:
        ref = quoted_hex(name, "Body used")
        assert body(emu, cmd) == ref.ljust(65, b"\0"), name


def test_schedules_from_the_config_decode_per_the_documented_layouts():
    targets = [{"start": "00:00", "low": 5.5, "high": 6.7}, {"start": 390, "low": 4.4, "high": 5.0}]
    sens = [{"start": "00:00", "sensitivity": 2.5}, {"start": "12:30", "sensitivity": 30.1}]
    ratios = [{"start": "00:00", "ratio": 12.5}, {"start": "18:00", "ratio": 300}]
    emu = core(model="723", bg_units="mmol/L", bg_targets=targets, sensitivities=sens, carb_ratios=ratios)
    b = body(emu, P.GLUCOSE_TARGETS)                         # n+1, units, then start low high
    assert b[1] == 2                                         # mmol/L
    assert [(half_hours(e[0]), e[1] / 10, e[2] / 10) for e in _entries(b, 2, 3)] == [
        ("00:00", 5.5, 6.7), ("06:30", 4.4, 5.0)]
    b = body(emu, P.INSULIN_SENSITIVITIES)                   # start in bits 0-5, value bit 8 in bit 6
    assert b[1] == 2
    assert [(half_hours(e[0] & 0x3F), (((e[0] >> 6) & 1) << 8 | e[1]) / 10) for e in _entries(b, 2, 2)] == [
        ("00:00", 2.5), ("12:30", 30.1)]
    b = body(emu, P.CARB_RATIOS)                             # x23: 3-byte entries from byte 3, tenths of g/U
    assert b[1] == 1
    assert [(half_hours(e[0]), int.from_bytes(e[1:3], "big") / 10) for e in _entries(b, 3, 3)] == [
        ("00:00", 12.5), ("18:00", 300.0)]
    x22 = [{"start": "00:00", "ratio": 12}, {"start": "18:00", "ratio": 30}]
    b = body(core(model="522", carb_ratios=x22), P.CARB_RATIOS)   # x22: 2-byte entries from byte 2, g/U
    assert [(half_hours(e[0]), e[1]) for e in _entries(b, 2, 2)] == [("00:00", 12), ("18:00", 30)]
    b = body(core(model="512", bg_targets=[{"start": "00:00", "low": 90, "high": 110}]), 0x8C)
    assert [tuple(e) for e in _entries(b, 2, 2)] == [(0, 100)]   # x12: start target


def test_schedule_config_errors():
    for spec, words in [
        ({"basal_schedule": [{"start": "01:00", "rate": 1}]}, ["basal_schedule[0].start", "00:00"]),
        ({"basal_schedule": [{"start": "00:00", "rate": 1.01}]}, ["basal_schedule[0].rate", "0.025"]),
        ({"basal_schedule": [{"start": "00:15", "rate": 1}]}, ["half hour"]),
        ({"basal_schedule": []}, ["basal_schedule", "list"]),
        ({"bg_targets": [{"start": "00:00", "low": 120, "high": 80}]}, ["bg_targets[0]", "above"]),
        ({"bg_targets": [{"start": "00:00", "low": 80}]}, ["bg_targets[0]", "high"]),
        ({"sensitivities": [{"start": "00:00", "sensitivity": 50}, {"start": "00:00", "sensitivity": 40}]},
         ["sensitivities[1].start"]),
        ({"carb_ratios": [{"start": "00:00", "ratio": 10.5}]}, ["carb_ratios[0].ratio", "whole"]),
        ({"bg_units": "mg"}, ["bg_units"]),
        ({"insulin_action_curve": 12}, ["insulin_action_curve"]),
        ({"frequency": 433}, ["frequency"]),
    ]:
        with pytest.raises(KprofError) as e:
            config_from_mapping(spec, "s.yaml: pump")
        assert all(w in str(e.value) for w in words), (spec, str(e.value))
    cfg = config_from_mapping({"model": 523, "carb_ratios": [{"start": "00:00", "ratio": 10.5}], "frequency": 916.7})
    assert cfg.frequency == 916.7


# --- history ids: the bytes the real pumphistory prints as Data (pumphistory-*.txt) ---

FIXTURE = [   # real-tools/README.md, "History fixture", oldest first
    {"type": "Bolus", "time": "2026-11-30T08:00:00", "amount": 2.5},
    {"type": "TempBasal", "time": "2026-11-30T08:05:00", "temp": "absolute", "rate": 1.2, "duration": 30},
    {"type": "TempBasal", "time": "2026-12-01T12:05:00", "temp": "percent", "rate": 50, "duration": 60},
    {"type": "PumpSuspend", "time": "2026-12-01T13:00:00"},
    {"type": "PumpResume", "time": "2026-12-01T13:10:00"},
]


def _printed(name: str) -> list:
    text = (REAL_TOOLS / name).read_text()
    block = re.search(r"### stdout, exact \(plain run\)\n\n[^\n]*\n\n```\n(.*?)\n```", text, re.S).group(1)
    return json.loads(block)


def history_records(emu) -> list:
    """Page 0 as the client reads it (two-step 80, ACKs), cut into records with the documented lengths."""
    assert exchange(emu, P.HISTORY_PAGE)[1][4] == P.ACK
    frags = [body(emu, P.HISTORY_PAGE, b"\x00")]
    while frags[-1][0] != 0x90:
        frags.append(body(emu, P.ACK, expect=P.HISTORY_PAGE))
    page = b"".join(f[1:] for f in frags)
    assert [f[0] for f in frags] == list(range(1, 16)) + [0x90] and len(page) == 1024
    assert P.crc16(page[:1022]) == int.from_bytes(page[1022:], "big")
    lengths = {0x01: 9, 0x16: 7, 0x1E: 7, 0x1F: 7, 0x33: 8}   # §4.6.11, x22 bolus
    recs, pos = [], 0
    while any(page[pos:1022]):
        n = lengths[page[pos]]
        recs.append(page[pos:pos + n])
        pos += n
    return recs[::-1]                                       # newest first, as printed


@needs_reference
def test_history_records_carry_the_documented_ids():
    import base64
    ids = [base64.b64encode(r).decode() for r in history_records(core(history=FIXTURE))]
    assert ids == [r["Data"] for r in _printed("pumphistory-f-unknown.txt")]          # all 7 records
    # -f ID: the records newer than the one whose Data is ID
    stop = "HgDAAA0BGg=="
    assert ids[:ids.index(stop)] == [r["Data"] for r in _printed("pumphistory-f.txt")]
    # -s TIME: the records newer than TIME (the timestamps are bytes 2.. of 7/8-byte records, 4.. of a bolus)
    recs = history_records(core(history=FIXTURE))
    newer = [base64.b64encode(r).decode() for r in recs
             if P.decode_timestamp(r[4:9] if r[0] == 0x01 else r[2:7]) > dt.datetime(2026, 12, 1, 12)]
    assert newer == [r["Data"] for r in _printed("pumphistory-s.txt")]


def test_duplicate_fragment_without_count_ends():
    """Once per page: the client ACKs a duplicate again, so duplicating every fragment never ended."""
    emu = core(fault="duplicate-fragment", history=FIXTURE)
    for _ in range(2):                                      # two page downloads, one duplicate each
        assert exchange(emu, P.HISTORY_PAGE)[1][4] == P.ACK
        seqs = [body(emu, P.HISTORY_PAGE, b"\x00")[0]]
        while seqs[-1] != 0x90 and len(seqs) < 40:
            seqs.append(body(emu, P.ACK, expect=P.HISTORY_PAGE)[0])
        assert seqs == [1, 1] + list(range(2, 16)) + [0x90]


# --- mmtune: the pump is heard only near its frequency ---

def scan(emu, lo_mhz: float, hi_mhz: float) -> list:
    """What ecc1's mmtune does (mmtune.txt): per 50 kHz step, the three FREQ writes and 3 model queries."""
    out = []
    for k in range(round((hi_mhz - lo_mhz) * 20) + 1):
        hz = round(lo_mhz * 1e6) + 50_000 * k
        tune(emu, hz)
        rssi = [P.rssi_dbm(got[0]) for got in (exchange(emu, P.MODEL) for _ in range(3)) if got is not None]
        out.append((hz, len(rssi), sum(rssi) / len(rssi) if rssi else -128))
    return out


def test_mmtune_scan_finds_the_pumps_frequency():
    for env, cfg, best in [({"MEDTRONIC_FREQUENCY": "916.55"}, {}, 916_550_000),
                           ({"MEDTRONIC_FREQUENCY": "916.55"}, {"frequency": 916.7}, 916_700_000),
                           ({"MEDTRONIC_FREQUENCY": "916600000"}, {}, 916_600_000)]:
        emu = core(env=env, **cfg)
        result = scan(emu, 916.3, 916.9)
        top = max(r[2] for r in result)
        assert [r[0] for r in result if r[2] == top] == [best]          # one peak, at the pump
        for hz, count, mean in result:
            off = abs(hz - best)
            assert count == (3 if off <= 150_000 else 0), (hz, count)   # silent off-band
            if count:
                assert mean == -49 - 7 * off // 50_000                 # 7 dB per 50 kHz
    assert all(count == 0 for _, count, _ in scan(core(), 868.15, 868.75))   # -ww: nobody on 868 MHz
    emu = core()
    tune(emu, 868_350_000)
    x = exchange(emu, P.MODEL)
    assert x is None and "off frequency" in emu.handle_request(P.send_and_listen_request(
        P.encode_packet(P.short_packet(P.pump_address("123456"), P.MODEL)), 500)).note


def test_register_reads():
    """pump-protocol.md §2.6: the last value written, else the power-up default; 22 and unknowns read 5A."""
    emu = PumpEmulator(PumpConfig(latency=False))

    def radio(*req):
        return b"".join(d for _, d in emu.handle_request(bytes(req)).steps)
    assert [radio(9, a) for a in (0x09, 0x0A, 0x0B, 0x06)] == [b"\x26\0", b"\x30\0", b"\x70\0", b"\x02\0"]
    tune(emu, 868_350_000)
    assert [radio(9, a) for a in (0x09, 0x0A, 0x0B)] == [b"\x24\0", b"\x2e\0", b"\x66\0"]
    assert radio(6, 0x22, 1) == b"\x01\0" and radio(9, 0x22) == b"\x5a\0"
    assert radio(6, 0x30, 1) == b"\x02\0" and radio(9, 0x30) == b"\x5a\0"
    assert emu.state["frequency_mhz"] == 868.35


# --- real radio timing: an RX timeout takes the whole listen (lower bounds the emulator enforces) ---

def _ask(fd: int, req: bytes, wait: float = 5.0) -> bytes:
    os.write(fd, req)
    out, deadline = b"", time.monotonic() + wait
    while not out.endswith(b"\0") and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            out += os.read(fd, 256)
    return out


def test_rx_timeouts_take_the_requested_time(pump):
    emu = pump(latency=True, fault="no-response")
    fd = os.open(emu.slave_path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        assert _ask(fd, P.get_packet_request(300)) == b"\xaa\0"
        silent = P.encode_packet(P.short_packet(P.pump_address("123456"), P.MODEL))
        assert _ask(fd, P.send_and_listen_request(silent, 250)) == b"\xaa\0"
    finally:
        os.close(fd)
    deadline = time.monotonic() + 5     # the emulator records an exchange just after it writes the reply
    while len(emu.exchanges) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    listen, sal = emu.exchanges
    assert listen["t"] - listen["rx"] >= 0.3 and sal["t"] - sal["rx"] >= 0.25
    fast = pump(latency=False, fault="no-response")              # latency off: at once (not timed here)
    assert fast.handle_request(P.get_packet_request(300)).steps == [(0.0, b"\xaa\0")]
    assert core(latency=True).handle_request(P.get_packet_request(10_000)).steps == [(10.0, b"\xaa\0")]


# --- the pump clock follows the command's TZ ---

@pytest.mark.parametrize("tz, zone", [("UTC", "UTC"), ("Asia/Kathmandu", "Asia/Kathmandu"),
                                      (":America/St_Johns", "America/St_Johns"), ("UTC0", "UTC"),
                                      ("<+0330>-3:30", "Asia/Tehran"), ("", "UTC")])
def test_pump_clock_follows_tz(tz, zone):
    from zoneinfo import ZoneInfo
    emu = core(env={"TZ": tz})
    b = body(emu, P.CLOCK)                                   # 07 hh mm ss YYYY MM DD (§4.4)
    clock = dt.datetime(int.from_bytes(b[4:6], "big"), b[6], b[7], b[1], b[2], b[3])
    now = dt.datetime.now(ZoneInfo(zone)).replace(tzinfo=None)
    if zone == "Asia/Tehran":                                # a fixed +03:30, whatever Tehran's rules say
        now = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3, minutes=30)).replace(tzinfo=None)
    assert abs((clock - now).total_seconds()) < 5, (clock, now)
    # setclock in that zone: the pump's clock reads what was set
    target = dt.datetime(2030, 1, 2, 3, 4, 5)
    assert exchange(emu, P.SET_CLOCK)[1][4] == P.ACK
    params = bytes([3, 4, 5]) + (2030).to_bytes(2, "big") + bytes([1, 2])
    assert exchange(emu, P.SET_CLOCK, params, 1000)[1][4] == P.ACK
    b = body(emu, P.CLOCK)
    assert abs((dt.datetime(int.from_bytes(b[4:6], "big"), b[6], b[7], b[1], b[2], b[3]) - target)
               .total_seconds()) < 5


def test_bad_tz_is_a_clear_error():
    with pytest.raises(KprofError, match="TZ='Mars/Olympus_Mons'"):
        PumpEmulator(PumpConfig(), env={"TZ": "Mars/Olympus_Mons"})


def test_malformed_requests_get_no_answer():
    emu = core()
    for req in (b"", b"\x06\x09", b"\x09", b"\x03\x00\x00", b"\x05" + bytes(9), b"\x02\x02"):
        reply = emu.handle_request(req)
        assert reply.steps == [] and "malformed" in reply.note, req


def test_record_without_a_pty():
    emu = core()
    req = P.get_version_request()
    reply = emu.handle_request(req)
    emu.record(req, reply, [d for _, d in reply.steps], False, emu.started_at + 0.5)
    assert emu.exchanges == [{"rx": 0.5, "t": emu.exchanges[0]["t"], "radio": "GetVersion", "command": None,
                              "request": "02", "response": b"subg_rfspy 1.0\0".hex(), "fault": None}]


@needs_strace
def test_kprof_run_pump_clock_is_in_the_scenarios_tz(tmp_path):
    """The runner hands the command's env to the emulator: the pump's clock is local time in the scenario's TZ,
    whatever kprof's own zone (here forced to another one)."""
    from tests.conftest import run_again_if_late
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("kprof run with a pump needs root (mount namespace)")
    sc = tmp_path / "clock-tz.yaml"
    sc.write_text("name: clock-tz\ndescription: the pump clock in the scenario's zone\ncommand: [mdt, clock]\n"
                  "pump: {latency: false}\nenv: {TZ: Asia/Kathmandu}\ntimeout: 30\n")
    p = run_again_if_late(sc, tmp_path / "b", env={"TZ": "America/Los_Angeles"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    printed = json.loads((tmp_path / "b" / "stdout.txt").read_text())
    clock = dt.datetime.fromisoformat(printed)
    assert clock.utcoffset() == dt.timedelta(hours=5, minutes=45), printed
    assert abs((clock - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60, printed
