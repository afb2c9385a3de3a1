"""The rig's SPI radio path served at the syscall boundary (profiler/pump/spi.py, the ptrace backend, the
scenario's placeholder spidev node and fake sysfs GPIO tree), checked against ../shared/reference/spi-radio.md,
which the tests parse: the §8.3 table of kernel answers, the §7.2 worked frames, the §10 failure messages.

The tracees are programs of the tests' own (tests/helpers/spi_shapes.c, spi_client.c, compiled here with gcc),
not kprof's pump client: whatever issues the ioctls gets spidev's answers.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from profiler import runner
from profiler.analysis import analyse_log
from profiler.errors import KprofError
from profiler.kernel import syscalls
from profiler.pump import protocol as P
from profiler.pump.config import PumpConfig
from profiler.pump.emulator import PumpEmulator
from profiler.pump.spi import BOARDS, Board, SpiDevice, SpiFirmware, reverse
from profiler.record.ptrace import record_ptrace
from profiler.scenario import load_scenario

from .conftest import IN_CI, ROOT, host_mounts, kprof, needs_root

REFERENCE = ROOT.parent / "shared" / "reference" / "spi-radio.md"
HELPERS = Path(__file__).parent / "helpers"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None and not IN_CI, reason="gcc is not installed")
x86_64_only = pytest.mark.skipif(syscalls.host_arch() != "x86_64" and not IN_CI,
                                 reason="the ioctl layout checked here is x86_64's")



def table_lines(bundle) -> str:
    """The report's table rows, one line each with cells two spaces apart (report.json: no cell wrapped)."""
    report = json.loads((bundle / "report.json").read_text())
    return "\n".join("  ".join(map(str, r)) for sec in report["sections"] for r in sec["rows"])

def reference_section(number: str) -> str:
    text = REFERENCE.read_text()
    start = re.search(rf"^#+ {re.escape(number)}\.? ", text, re.M)
    assert start, f"section {number} not in {REFERENCE}"
    end = re.search(r"^#+ \d", text[start.end():], re.M)
    return text[start.start(): start.end() + end.start() if end else len(text)]


def table_rows(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[1:]   # without the header


def hex_bytes(cell: str) -> bytes:
    """`99 F0` + `CE AE …` → the bytes; ``N × `00` `` repeats; cells with '…' are cut there."""
    out = b""
    for m in re.finditer(r"(\d+) × `([0-9A-Fa-f ]+)`|`([0-9A-Fa-f ]+)`", cell.split("…")[0]):
        if m.group(1):
            out += bytes.fromhex(m.group(2)) * int(m.group(1))
        else:
            out += bytes.fromhex(m.group(3))
    return out


def compile_c(tmp_path: Path, name: str) -> str:
    exe = tmp_path / name
    subprocess.run(["gcc", "-O1", "-Wall", "-o", str(exe), str(HELPERS / f"{name}.c")], check=True)
    return str(exe)


# ---- §8.3: what spidev answers, for a tracee that is not kprof's client ----------------------------------

def kernel_answers() -> dict[str, str]:
    """§8.3's table: request condition → what the kernel would do (its second column)."""
    rows = table_rows(reference_section("8.3"))
    return {r[0]: r[1] for r in rows}


def expected_result(condition_words: str) -> tuple[str, int | None]:
    """The row of §8.3 whose first column contains ``condition_words`` → ('sum', None) or ('errno', N) or ('zero', 0)."""
    rows = table_rows(reference_section("8.3"))
    row = next(r for r in rows if condition_words in r[0])
    answer = row[2]
    m = re.search(r"-E[A-Z]+ \((\d+)\)", answer)
    if m:
        return "errno", int(m.group(1))
    if "Σ len" in answer:
        return "sum", None
    assert answer.startswith("0"), answer
    return "zero", 0


@needs_gcc
@x86_64_only
def test_spidev_answers_every_shape_as_the_kernel_documents(tmp_path):
    exe = compile_c(tmp_path, "spi_shapes")
    node, other = tmp_path / "spidev0.0", tmp_path / "other"
    node.touch()
    other.touch()
    device = SpiDevice(Board("spi", str(node), 4, None, "test"), PumpEmulator(PumpConfig(latency=False)))
    outcome = record_ptrace([exe, str(node), str(other)], str(tmp_path / "trace.log"), cwd=str(tmp_path),
                            env=dict(os.environ), timeout=30, stdout_path=str(tmp_path / "out"),
                            stderr_path=str(tmp_path / "err"), spi=device)
    assert outcome.returncode == 0, (tmp_path / "err").read_text()
    cases = {}
    for line in (tmp_path / "out").read_text().splitlines():
        f = dict(kv.split("=", 1) for kv in line.split())
        cases[f["case"]] = (int(f["ret"]), int(f["errno"]), bytes.fromhex(f["rx"]))

    # which §8.3 row each case is, and the transfer lengths the program gave (Σ len)
    plan = {"msg3-version": ("SPI_IOC_MESSAGE(N), size 32·N", 3), "msg2-mixed": ("SPI_IOC_MESSAGE(N), size 32·N", 17),
            "msg1": ("SPI_IOC_MESSAGE(N), size 32·N", 1), "msg3-mixed": ("SPI_IOC_MESSAGE(N), size 32·N", 3),
            "bad-pointer": ("bad pointer", None), "bad-tx-buf": ("bad pointer", None),
            "oversize": ("total length > 4096", None), "size-not-multiple": ("not a multiple of 32", None),
            "wr-max-speed": ("RD/WR MODE", None), "rd-max-speed": ("RD/WR MODE", None), "rd-mode": ("RD/WR MODE", None),
            "other-k-nr": ("any other type", None), "other-type": ("any other type", None)}
    for case, (row, total) in plan.items():
        ret, err, _ = cases[case]
        kind, value = expected_result(row)
        if kind == "sum":
            assert (ret, err) == (total, 0), case
        elif kind == "errno":
            assert (ret, err) == (-1, value), case
        else:
            assert (ret, err) == (0, 0), case
    assert cases["rd-max-speed"][2] == (62500).to_bytes(4, "little")   # the WR value is remembered
    assert cases["rd-mode"][2] == b"\0"                                   # spidev's default mode 0
    # an fd on another file is never served: the kernel answers (a regular file has no ioctl)
    assert cases["other-file"][:2] == (-1, 25)

    # the bytes: the GetVersion frame and the poll that fetches the reply are §7.2's worked frames
    frames = {r[0]: r for r in table_rows(reference_section("7.2"))}
    assert cases["msg3-version"][2] == hex_bytes(frames["GetVersion command"][2])
    assert cases["msg2-mixed"][2] == hex_bytes(frames["version data poll"][2])

    # the log: every ioctl on the placeholder is marked served (the kernel never ran it), the other one is not
    log = (tmp_path / "trace.log").read_text().splitlines()
    served = [ln for ln in log if " ioctl(" in ln and ln.split(" <")[0].endswith("(SERVED)")]
    assert len(served) == len(plan) and all(f"<{node}>" in ln for ln in served)
    assert [ln for ln in log if f"<{other}>, 0x40206b00" in ln and "(SERVED)" not in ln]
    fp = analyse_log(tmp_path / "trace.log", "x86_64", {}).footprint
    assert fp.syscalls["ioctl"].served == len(plan) and fp.syscalls["ioctl"].calls == 1   # only other-file ran
    assert outcome.device["served_ioctls"] == len(plan)   # made in the tracer process


# ---- §4 and §7: the firmware's framing, frame by frame -------------------------------------------------

class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def frame(fw: SpiFirmware, wire: bytes) -> bytes:
    return b"".join(fw.transfer(bytes([b])) for b in wire)


def test_frames_are_the_worked_frames_of_the_reference():
    rows = {r[0]: r for r in table_rows(reference_section("7.2"))}
    clock = Clock()
    emu = PumpEmulator(PumpConfig())            # latencies on: replies are due after their delay
    fw = SpiFirmware(emu, clock)
    ask, answer = (hex_bytes(rows["GetVersion command"][i]) for i in (1, 2))
    assert frame(fw, ask) == answer
    assert reverse(ask[1:]) == bytes([1, P.CMD_GET_VERSION])        # logical n = 1, command 02
    empty = rows["empty poll"]
    assert frame(fw, hex_bytes(empty[1])) == hex_bytes(empty[2])    # the reply is not due yet
    clock.t += 1.0
    poll = rows["version data poll"]
    assert frame(fw, hex_bytes(poll[1])) == hex_bytes(poll[2])
    write, reply = rows["FREQ2 write"], rows["register reply poll"]
    assert frame(fw, hex_bytes(write[1])) == hex_bytes(write[2])
    clock.t += 1.0
    assert frame(fw, hex_bytes(reply[1])) == hex_bytes(reply[2])
    assert emu.registers[P.REG_FREQ2] == 0x26
    assert [e["radio"] for e in emu.exchanges] == ["GetVersion", "UpdateRegister"]


def test_a_pump_reply_is_polled_whole_after_its_latency():
    rows = {r[0]: r for r in table_rows(reference_section("7.2"))}
    example = reference_section("4.1")
    wire = bytes.fromhex(re.search(r"goes on the wire as `([0-9A-F ]+)`", example).group(1))
    clock = Clock()
    # model 522, reservoir 135 and 916.55 MHz, as the reference's runs; the radio tuned as the client tunes it
    emu = PumpEmulator(PumpConfig(), env={"MEDTRONIC_FREQUENCY": "916.55"})
    fw = SpiFirmware(emu, clock)
    for register in ("06 09 26", "06 0A 30", "06 0B 89"):
        frame(fw, reverse(bytes([0x99, 3]) + bytes.fromhex(register)))
        clock.t += 1.0
        frame(fw, b"\x99\x00" + bytes(2))
    assert frame(fw, wire) == hex_bytes(rows["reservoir SendAndListen"][2])
    empty = frame(fw, bytes([0x99, 0]))
    assert empty == b"\x99\x00"                  # the pump's reply takes air time: nothing to poll yet
    clock.t += 1.0
    got = frame(fw, b"\x99\x00" + bytes(110))
    want = hex_bytes(rows["reservoir reply poll"][2])
    assert got[:3] == want[:3]                   # 99, c = 110 (wire 76), RSSI 30 (wire 0C)
    assert got[4:len(want)] == want[4:]          # the encoded reply (the counter differs: first packet here)
    assert got[-1] == 0 and len(got) == 112      # whole, with its 00: never a partial response (§4.2)
    assert emu.exchanges[-1]["command"] == "reservoir"


def test_a_command_interrupts_a_listen_and_polls_do_not():
    clock = Clock()
    emu = PumpEmulator(PumpConfig())
    fw = SpiFirmware(emu, clock)
    listen = bytes([P.CMD_GET_PACKET, 0]) + (0).to_bytes(4, "big")     # listen for ever
    frame(fw, reverse(bytes([0x99, len(listen)]) + listen))
    clock.t += 5
    assert frame(fw, b"\x99\x00") == b"\x99\x00"                        # a poll frame is no command
    frame(fw, reverse(bytes([0x99, 1, P.CMD_GET_VERSION])))
    got = reverse(frame(fw, b"\x99\x00" + bytes(2)))
    assert got[1:] == bytes([2, P.ERR_INTERRUPTED, 0])                  # BB 00 (PP §2.1), then the version
    assert emu.exchanges[0].get("interrupted") is True


def test_the_reset_pulse_clears_the_radio():
    clock = Clock()
    emu = PumpEmulator(PumpConfig(latency=False))
    device = SpiDevice(BOARDS["spi"], emu, clock)
    fw = device.radio(7)
    frame(fw, reverse(bytes([0x99, 3, P.CMD_UPDATE_REGISTER, P.REG_FREQ2, 0x26])))
    assert emu.registers[P.REG_FREQ2] == 0x26 and fw.pending          # its reply is queued
    for value in (b"1", b"0"):                   # §2.2 e and g: logical 1 asserts reset, 0 releases it
        device.gpio_write(7, "/sys/class/gpio/gpio4/value", value)
    assert fw.resets == 1
    assert frame(fw, b"\x99\x00") == b"\x99\x00"                       # the queued reply is gone
    assert emu.registers == P.REGISTER_DEFAULTS
    device.gpio_write(8, "/sys/class/gpio/gpio4/value", b"0")           # another process: no pulse seen
    assert device.radio(8).resets == 0


# ---- scenarios: the placeholder node and fake GPIO tree in the scenario's own mount namespace --------------

def _host_state() -> dict:
    mounts = host_mounts()
    return {"spidev": [p for p in os.listdir("/dev") if p.startswith("spidev")],
            "gpio": sorted(os.listdir("/sys/class/gpio")) if os.path.isdir("/sys/class/gpio") else None,
            "sys_class": sorted(os.listdir("/sys/class")),
            "mounts": len(mounts), "kprof_mounts": [ln for ln in mounts if "kprof" in ln]}


def toolset(tmp_path: Path, exe: str) -> Path:
    """A pump-client directory (--pump-client DIR) whose four tools are the tests' own SPI client."""
    d = tmp_path / "tools"
    d.mkdir(exist_ok=True)
    for tool in runner.PUMP_TOOLS:
        if not (d / tool).exists():
            os.symlink(exe, d / tool)
    return d


def scenario(tmp_path: Path, exe: str, extra: str = "", name: str = "spi-probe") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: {name}
        description: the tests' own SPI radio client on the emulated Explorer HAT
        command: [mdt, /dev/spidev0.0]
        radio: spi
        pump: {{client: {toolset(tmp_path, exe)}}}
        timeout: 30
        """) + textwrap.dedent(extra))
    return path


@needs_root
@needs_gcc
def test_spi_scenario_runs_in_its_namespace_and_leaves_the_host_untouched(tmp_path):
    exe = compile_c(tmp_path, "spi_client")
    before = _host_state()
    sc = scenario(tmp_path, exe, 'expect:\n  stdout_contains: "subg_rfspy 1.0"\n')
    p = kprof("run", sc, "-o", tmp_path / "bundle", "-q", check=0)
    assert _host_state() == before, p.stderr
    assert not os.path.exists("/dev/spidev0.0")
    fp = json.loads((tmp_path / "bundle" / "footprint.json").read_text())
    meta = json.loads((tmp_path / "bundle" / "meta.json").read_text())
    assert meta["backend"] == "ptrace" and meta["radio"] == "spi"
    served = meta["runs"][0]["services"][0]["served"]
    assert served["resets"] == 1 and served["frames"]["command"] == 1 and served["frames"]["data"] == 1
    spi = [r for r in fp["ioctls"] if r["name"] == "SPI_IOC_MESSAGE(1)"]
    assert len(spi) == 1 and spi[0]["handler"] == "drivers/spi/spidev.c" and spi[0]["device_class"] == "spi"
    # GetVersion (3) + its data poll (2 + 15) + 2 per empty poll: counted as served, never as kernel calls
    assert spi[0]["calls"] == 0 and spi[0]["served"] == served["served_ioctls"] == served["transfers"]
    assert (spi[0]["served"] - 20) == 2 * served["frames"]["empty"]
    assert fp["syscalls"]["ioctl"]["served"] == spi[0]["served"] and fp["totals"]["served"] == spi[0]["served"]
    assert "drivers/spi" not in {s["subsystem"] for s in fp["subsystems"]}   # the kernel's spidev never ran
    assert fp["devices"]["/dev/spidev0.0"]["syscalls"] == {"close": 1, "flock": 1}
    gpio = {p: d for p, d in fp["devices"].items() if p.startswith("/sys/class/gpio/")}
    assert {p: d["syscalls"]["write"] for p, d in gpio.items()} == {
        "/sys/class/gpio/gpio4/active_low": 1, "/sys/class/gpio/gpio4/direction": 1, "/sys/class/gpio/gpio4/value": 2}
    assert all(d["class"] == "sysfs-gpio" for d in gpio.values())
    report = (tmp_path / "bundle" / "report.txt").read_text()
    assert "Device-level footprint: /dev/spidev0.0 (SPI radio)" in report
    rows = table_lines(tmp_path / "bundle")
    assert "**emulated at the syscall boundary**" in rows and "drivers/gpio/gpiolib-sysfs.c" in rows


def failure_row(condition: str) -> list[str]:
    return next(r for r in table_rows(reference_section("10")) if condition in r[0])


@needs_root
@needs_gcc
@pytest.mark.parametrize("case", ["device-in-use", "export-refused", "not-exported", "radio-silent"])
def test_spi_faults_give_the_clients_messages(tmp_path, case):
    exe = compile_c(tmp_path, "spi_client")
    extra, row = {
        "device-in-use": ("radio_fault: device-in-use\n", "spidev locked by another process"),
        "export-refused": ("radio_fault: not-exported\nbackend: ptrace\ninject:\n"
                           "  - {syscall: write, path: /sys/class/gpio/export, error: EINVAL}\n",
                           "export write fails with EINVAL"),
        "not-exported": ("radio_fault: not-exported\n", None),
        "radio-silent": ("", "ioctl not served"),
    }[case]
    path = scenario(tmp_path, exe, extra, name=f"spi-{case}")
    if case == "radio-silent":   # the radio never answers GetVersion: the emulator's busy fault
        path.write_text(path.read_text().replace("pump: {", "pump: {fault: 'busy:version', "))
    before = _host_state()
    p = kprof("run", path, "-o", tmp_path / "bundle", "-q")
    assert _host_state() == before
    meta = json.loads((tmp_path / "bundle" / "meta.json").read_text())
    end = meta["runs"][0]["exit"]
    stderr = (tmp_path / "bundle" / "stderr.txt").read_text()
    if row is None:              # the export path: written, the pin appears, the radio answers
        assert p.returncode == 0 and end == {"exit": 0}, stderr
        assert "/sys/class/gpio/export <- 4" in meta["runs"][0]["services"][0]["served"]["gpio_writes"]
        return
    ref = failure_row(row)
    assert end == {"exit": int(ref[3])}
    messages = re.findall(r'"([^"]+)"', ref[2])
    last = messages[-1].replace("…", "").replace("/dev/spidev0.0: ", "")
    assert last.lower() in stderr.lower(), (ref, stderr)
    assert "cannot connect to CC111x radio on /dev/spidev0.0" in stderr


def test_radio_needs_a_pump_and_the_ptrace_backend(tmp_path):
    bad = tmp_path / "no-pump.yaml"
    bad.write_text("name: no-pump\ndescription: x\ncommand: ['true']\nradio: spi\n")
    with pytest.raises(KprofError, match="belongs to a pump scenario"):
        load_scenario(bad)
    sc = tmp_path / "spi-strace.yaml"
    sc.write_text("name: spi-strace\ndescription: x\ncommand: ['true']\nradio: spi\nbackend: strace\npump: {}\n")
    p = kprof("run", sc, "-o", tmp_path / "b")
    assert p.returncode == 2 and "ptrace backend" in p.stderr and "Traceback" not in p.stderr
    assert load_scenario(scenario(tmp_path, "/bin/true")).backend == "ptrace"
    p = kprof("run", sc, "--backend", "ptrace", "--radio", "uart", "-o", tmp_path / "b2", "-q")
    assert "Traceback" not in p.stderr
    p = kprof("run", ROOT / "scenarios" / "determine-basal.yaml", "--radio", "spi", "-o", tmp_path / "b3")
    assert p.returncode == 2 and "belongs to a pump scenario" in p.stderr and "Traceback" not in p.stderr
    for option in (["--radio", "uart"], ["--pump-client", "/nonexistent"], ["--pump-client="]):
        p = kprof("run", ROOT / "scenarios" / "determine-basal.yaml", *option, "-o", tmp_path / "b4")
        assert p.returncode == 2 and "belongs to a pump scenario" in p.stderr, option
        assert not (tmp_path / "b4").exists()
    p = kprof("run", ROOT / "scenarios" / "pump-model.yaml", "--pump-client=", "-o", tmp_path / "b5")
    assert p.returncode == 2 and "--pump-client: empty" in p.stderr and "Traceback" not in p.stderr


def test_uart_faults_are_refused_on_the_spi_path(tmp_path):
    """pump-reservoir-eio injects EIO on /dev/serial0: on the SPI path it would inject nothing and pass for the
    wrong reason, so --radio spi is refused with a message naming the SPI path's own faults."""
    p = kprof("run", ROOT / "scenarios" / "pump-reservoir-eio.yaml", "--radio", "spi", "-o", tmp_path / "b")
    assert p.returncode == 2 and "never opens" in p.stderr and "radio_fault" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "b").exists()


# ---- one command on both paths: they differ exactly where the reference says -----------------------------

spi_tools = pytest.mark.skipif(
    not ((runner.pump_tool_dir("spi") / "mdt").exists() or IN_CI),
    reason="the SPI build of kprof's Go pump tools is not built (./setup.sh)")


def _run(sc, out: Path):
    outcomes, meta = runner.run(sc, out)
    assert meta.runs[0].ok, meta.runs[0].failures
    return outcomes[0], meta.runs[0].services[0], (out / "trace.log").read_text()


def _device_calls(log: str, path: str) -> list[str]:
    return [re.sub(r"^\d+ +[\d.]+ ", "", ln) for ln in log.splitlines() if f"<{path}" in ln or f'"{path}"' in ln]


@needs_root
@spi_tools
def test_uart_and_spi_footprints_of_one_command_differ_where_the_reference_says(tmp_path):
    base = load_scenario(ROOT / "scenarios" / "pump-status.yaml")
    uart, uart_pump, uart_log = _run(runner.with_overrides(base, radio="uart"), tmp_path / "uart")
    spi, spi_pump, spi_log = _run(runner.with_overrides(base, radio="spi"), tmp_path / "spi")
    ufp, sfp = uart.analysis.footprint, spi.analysis.footprint

    # above the framing nothing differs (§7.1 "Equivalence"): the same subg_rfspy requests, the same output
    requests = [[e["request"] for e in p["radio_exchanges"]] for p in (uart_pump, spi_pump)]
    assert requests[0] == requests[1] and requests[0][:4] == ["02", "060926", "060a30", "060b89"]
    assert (uart.run_dir / "stdout.txt").read_text() == (spi.run_dir / "stdout.txt").read_text()

    # the device: /dev/serial0 (tty) on UART, /dev/spidev0.0 (spi) on SPI
    assert "/dev/spidev0.0" not in ufp.devices and "/dev/serial0" not in sfp.devices
    assert sfp.devices["/dev/spidev0.0"]["class"] == "spi"
    # §2.1: openat O_RDWR only (PP §1.2: O_RDWR|O_NOCTTY|O_NONBLOCK = 0x902 on UART), then flock(LOCK_EX|LOCK_NB)
    spi_calls = _device_calls(spi_log, "/dev/spidev0.0")
    assert re.match(r'openat\(-100<[^>]*>, "/dev/spidev0.0", 0x2\b', spi_calls[0]), spi_calls[0]
    assert re.match(r"flock\(3</dev/spidev0.0>, 0x6\) = 0", spi_calls[1]), spi_calls[1]
    uart_open = next(c for c in _device_calls(uart_log, "/dev/serial0") if c.startswith("openat("))
    assert ", 0x902" in uart_open
    assert "flock" not in ufp.devices["/dev/serial0"]["syscalls"]            # PP §1.2: never flock
    # §3.1: on the spidev fd only SPI_IOC_MESSAGE(1), every one served; no read/write/termios on it
    spi_ioctls = [r for r in sfp.ioctl_rows() if "/dev/spidev0.0" in r["devices"]]
    assert [(r["name"], r["calls"]) for r in spi_ioctls] == [("SPI_IOC_MESSAGE(1)", 0)]
    assert set(sfp.devices["/dev/spidev0.0"]["syscalls"]) == {"flock", "close"}
    assert {"read", "write"} <= set(ufp.devices["/dev/serial0"]["syscalls"])
    assert any(r["name"] == "TCSETS" for r in ufp.ioctl_rows())
    # §6: served ioctls = the command's fixed part + 2 per empty poll; frames as the table counts them
    row = next(r for r in table_rows(reference_section("6")) if r[0] == "`mdt reservoir`")
    commands, data, _ = (int(x) for x in row[1].split(" / "))
    served = spi_pump["served"]
    assert (served["frames"]["command"], served["frames"]["data"]) == (commands, data)
    assert sfp.syscalls["ioctl"].served == served["served_ioctls"] == int(row[2]) + 2 * served["frames"]["empty"]
    # §2.2 c–g: the reset pin's writes, exactly these values in this order; the UART path touches no GPIO
    assert served["gpio_writes"] == ["/sys/class/gpio/gpio4/active_low <- 1", "/sys/class/gpio/gpio4/direction <- high",
                                     "/sys/class/gpio/gpio4/value <- 1", "/sys/class/gpio/gpio4/value <- 0"]
    assert served["resets"] == 1
    assert not [p for p in ufp.devices if p.startswith("/sys/class/gpio")]
    # §2.2: each GPIO write is the 7 syscalls of a real sysfs file (Go's netpoller registers it)
    block = reference_section("2.2").split("**Real sysfs**")[1].split("\n- **tmpfs**")[0]
    sysfs_write = re.findall(r"^\s+\d+\. `(\w+)\(", block, re.M)
    assert len(sysfs_write) == 7
    for pin_file in ("active_low", "direction"):
        calls = [c.split("(", 1)[0] for c in _device_calls(spi_log, f"/sys/class/gpio/gpio4/{pin_file}")]
        assert calls == sysfs_write, (pin_file, calls)
    # the kernel never ran spidev here: no drivers/spi among the subsystems the kernel executed
    assert "drivers/spi" not in {r["subsystem"] for r in sfp.subsystem_rows()}


@needs_root
@spi_tools
def test_pump_status_reads_the_reservoir_over_the_spi_path(tmp_path):
    before = _host_state()
    bundle = tmp_path / "b"
    p = kprof("run", ROOT / "scenarios" / "pump-status.yaml", "--out", bundle, check=0)
    assert _host_state() == before
    assert (bundle / "stdout.txt").read_text().strip() == "135.5"
    out = p.stdout
    assert "Device-level footprint: /dev/spidev0.0 (SPI radio)" in out
    fp = json.loads((bundle / "footprint.json").read_text())
    served = fp["syscalls"]["ioctl"]["served"]
    fixed = int(next(r for r in table_rows(reference_section("6")) if r[0] == "`mdt reservoir`")[2])
    assert served > fixed and (served - fixed) % 2 == 0          # 319 fixed + 2 per empty poll
    rows = table_lines(bundle)  # the terminal table wraps its long cells at 100 columns
    row = re.search(rf"^ioctl +{served} +SPI_IOC_MESSAGE\(1\) on /dev/spidev0.0 +drivers/spi/spidev.c .*"
                    rf"\*\*emulated at the syscall boundary\*\*", rows, re.M)
    assert row, rows
    assert re.search(r"^flock +1 +/dev/spidev0.0 ", rows, re.M)
    for pin_file in ("active_low", "direction", "value"):
        assert re.search(rf"^write +\d +/sys/class/gpio/gpio4/{pin_file} +drivers/gpio/gpiolib-sysfs.c +"
                         r"ran on a tmpfs stand-in, counted as executed", rows, re.M), pin_file
    assert f"{served} ioctls on /dev/spidev0.0" in out


@needs_root
@needs_gcc
def test_an_injected_fault_on_the_spidev_wins_over_serving(tmp_path):
    """A rule on the placeholder's ioctls (a controller error) is injected, not served: the radio never hears it."""
    exe = compile_c(tmp_path, "spi_client")
    path = scenario(tmp_path, exe, "inject:\n  - {syscall: ioctl, error: EIO, path: /dev/spidev0.0}\n",
                    name="spi-ioctl-eio")
    kprof("run", path, "-o", tmp_path / "bundle", "-q")
    meta = json.loads((tmp_path / "bundle" / "meta.json").read_text())
    assert meta["runs"][0]["exit"] == {"exit": 1}
    assert "cc111x: no response" in (tmp_path / "bundle" / "stderr.txt").read_text()
    log = (tmp_path / "bundle" / "trace.log").read_text()
    spi = [ln for ln in log.splitlines() if " ioctl(" in ln and "</dev/spidev0.0>" in ln]
    assert spi and all(ln.split(" <")[0].endswith("-1 EIO (Input/output error) (INJECTED)") for ln in spi)
    assert meta["runs"][0]["services"][0]["served"]["transfers"] == 0


edison_tools = pytest.mark.skipif(not ((runner.pump_tool_dir("edison") / "mdt").exists() or IN_CI),
                                  reason="the Edison build of kprof's Go pump tools is not built (./setup.sh)")


@needs_root
@edison_tools
def test_edison_wraps_every_spi_byte_in_its_chip_select(tmp_path):
    """§9: /dev/spidev5.1, chip-select GPIO 110 set up before the reset pin 14, and CS written 1 before and 0
    after every SPI byte."""
    base = load_scenario(ROOT / "scenarios" / "pump-status.yaml")
    o, pump, log = _run(runner.with_overrides(base, radio="edison"), tmp_path / "edison")
    fp = o.analysis.footprint
    assert (o.run_dir / "stdout.txt").read_text().strip() == "135.5"
    served = fp.syscalls["ioctl"].served
    assert served == pump["served"]["served_ioctls"] and fp.devices["/dev/spidev5.1"]["class"] == "spi"
    cs = fp.devices["/sys/class/gpio/gpio110/value"]["syscalls"]["write"]
    assert cs == 2 * served
    first = [w.split(" <- ")[0].split("/")[4] for w in pump["served"]["gpio_writes"][:6]]
    assert first == ["gpio110", "gpio110", "gpio14", "gpio14", "gpio14", "gpio14"]   # CS set-up, then reset
    assert pump["served"]["resets"] == 1


# ---- every pump scenario has both paths: its own file's radio, and the other one through --radio -----------

UART_SCENARIOS = sorted(p for p in (ROOT / "scenarios").glob("pump-*.yaml")
                        if load_scenario(p).radio == "uart" and not load_scenario(p).inject
                        # a silent pump costs its real ~13 s of radio timeouts: pump-spi-pump-silent is that case
                        and p.stem != "pump-no-response"
                        # pump-loop's prepare step sets the previous temp basal with mdt, and on the SPI path the
                        # radio exists only for the traced command (the ptrace backend serves it)
                        and p.stem != "pump-loop")


@needs_root
@pytest.mark.parametrize("path", UART_SCENARIOS, ids=lambda p: p.stem)
def test_every_uart_pump_scenario_also_runs_on_the_spi_path(path, tmp_path):
    """The radio matrix is one flag: each UART pump scenario, run with --radio spi, still does what it expects
    (the same stdout checks hold for both framings) and its device footprint is the spidev node, served."""
    bundle = tmp_path / "b"
    p = kprof("run", path, "--radio", "spi", "-o", bundle, "-q")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    fp = json.loads((bundle / "footprint.json").read_text())
    assert fp["syscalls"]["ioctl"]["served"] > 0
    assert "/dev/spidev0.0" in fp["devices"] and "/dev/serial0" not in fp["devices"]
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["backend"] == "ptrace"
