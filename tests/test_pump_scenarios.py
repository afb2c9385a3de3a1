"""The pump scenarios end to end: kprof run → private /dev/serial0 → emulator ← client, under real strace."""
from __future__ import annotations

import hashlib
import json
import os

from .conftest import ROOT, kprof, needs_root, needs_strace, run_again_if_late

PUMP_SCENARIOS = ROOT / "scenarios"


def dev_listing() -> list[str]:
    return sorted(os.listdir("/dev"))


def _procs():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            yield pid


def marked(marker: str) -> list[str]:
    """Processes whose environment carries ``marker`` (the scenario's own, so other work on the machine
    does not count)."""
    out = []
    for pid in _procs():
        try:
            if marker.encode() in open(f"/proc/{pid}/environ", "rb").read():
                out.append(pid)
        except OSError:
            pass
    return out


def holders(path: str) -> list[str]:
    """Processes of this test's tree (a subreaper: kprof's leftovers are re-parented to it) with ``path`` open.
    Not every process: another test's run may have a pty of the same name (in its own /dev) open."""
    from profiler.record.core import descendants
    out = []
    for pid in map(str, descendants(os.getpid())):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    out.append(pid)
            except OSError:
                pass
    return out


def pump_service(bundle) -> dict:
    meta = json.loads((bundle / "meta.json").read_text())
    return next(s for s in meta["runs"][0]["services"] if s["type"] == "pump")


def assert_nothing_left(bundle, marker: str | None = None) -> None:
    assert not os.path.exists("/dev/serial0"), "the host's /dev got a serial0"
    pty = pump_service(bundle)["pty"]
    assert not holders(pty), f"{pty} still open"
    if marker:
        assert not marked(marker), "processes of the scenario are still running"


@needs_strace
@needs_root
def test_pump_status_prints_the_reservoir_and_the_device_level_footprint(tmp_path, subreaper):
    before = dev_listing()
    bundle = tmp_path / "b"
    p = run_again_if_late(PUMP_SCENARIOS / "pump-status-uart.yaml", bundle)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (bundle / "stdout.txt").read_text().strip() == "135.5"
    out = p.stdout
    assert "Device-level footprint: /dev/serial0" in out
    assert "TCSETS 1 (drivers/tty/" in out and "drivers/tty" in out
    assert "kprof's Go tools (uart build)" in out and "SPI" in out, "the report says which client ran and the rig path"
    tools = json.loads((bundle / "meta.json").read_text())["pump_client"]["tools"]
    mdt = ROOT / "build" / "rig-tools" / "uart" / "mdt"
    assert tools["mdt"]["path"] == str(mdt) and str(mdt) in out
    assert tools["mdt"]["sha256"] == hashlib.sha256(mdt.read_bytes()).hexdigest()
    fp = json.loads((bundle / "footprint.json").read_text())
    serial = fp["devices"]["/dev/serial0"]
    assert serial["class"] == "serial" and serial["syscalls"]["ioctl"] == 1
    assert serial["syscalls"]["write"] >= 4 and serial["syscalls"]["read"] > serial["syscalls"]["write"]
    tcsets = [r for r in fp["ioctls"] if r["name"] == "TCSETS"]
    assert tcsets and tcsets[0]["devices"] == ["/dev/serial0"] and tcsets[0]["calls"] == 1
    assert not any(r["name"] == "TCGETS" and "/dev/serial0" in r["devices"] for r in fp["ioctls"])
    pump = pump_service(bundle)
    assert pump["state"]["reservoir"] == 135.5 and pump["exchanges"] >= 4
    # the host's /dev is unchanged and nothing is left behind
    assert "serial0" not in set(dev_listing()) - set(before)
    assert_nothing_left(bundle)


@needs_strace
@needs_root
def test_set_temp_basal_then_tempbasal_in_one_emulator_session(scenario_run):
    bundle = scenario_run(PUMP_SCENARIOS / "set-temp-basal.yaml")[1]
    assert json.loads((bundle / "stdout.txt").read_text()) == {"duration": 30, "temp": "absolute", "rate": 0.9}
    meta = json.loads((bundle / "meta.json").read_text())
    state = next(s for s in meta["runs"][0]["services"] if s["type"] == "pump")["state"]
    assert state["temp_basal"]["rate"] == 0.9
    assert state["history"][-1]["type"] == "TempBasal" and state["history"][-1]["rate"] == 0.9


@needs_strace
@needs_root
def test_pump_timeout_leaves_no_process_pty_or_dev_entry(tmp_path, subreaper):
    """Clients polling the pump until the timeout kills them mid-session: nothing may be left behind."""
    sc = tmp_path / "dead-pump.yaml"
    marker = f"kprof-test-{os.getpid()}-{id(tmp_path)}"
    sc.write_text('name: dead-pump\ndescription: pump polled until killed\n'
                  'command: "while true; do mdt model; done"\nshell: true\npump: {fault: no-response}\ntimeout: 3\n'
                  f'env: {{KPROF_TEST_MARK: {marker}}}\n')
    bundle = tmp_path / "b"
    p = kprof("run", sc, "--out", bundle, check=2)
    assert "timed out after 3 s" in p.stdout
    assert json.loads((bundle / "footprint.json").read_text())["devices"]["/dev/serial0"]
    assert_nothing_left(bundle, marker)


@needs_strace
@needs_root
def test_pump_faults_reach_the_client(tmp_path):
    sc = tmp_path / "crc-pump.yaml"
    sc.write_text('name: crc-pump\ndescription: CRC errors\ncommand: [mdt, reservoir]\n'
                  'pump: {fault: crc, latency: false}\ntimeout: 30\nexpect: {exit: 1}\n')
    bundle = tmp_path / "b"
    kprof("run", sc, "--out", bundle, check=0)
    assert "CRC" in (bundle / "stderr.txt").read_text()


def test_pump_key_is_validated(tmp_path):
    sc = tmp_path / "bad-pump.yaml"
    sc.write_text('name: bad-pump\ndescription: d\ncommand: [mdt, reservoir]\npump: {id: "12345G", fault: on-fire}\n')
    p = kprof("validate", sc, check=2)
    assert ":4: pump.id:" in p.stderr and ":4: pump.fault:" in p.stderr
