"""ioctl decoding end to end: real ioctls made on this machine, and a recorded rig log (arm, spidev, i2c)."""
from __future__ import annotations

import json
import sys

from .conftest import kprof, needs_root, needs_strace

PROGRAM = r"""
import fcntl, os, socket, struct, termios
master, slave = os.openpty()
attrs = termios.tcgetattr(slave)            # TCGETS
termios.tcsetattr(slave, termios.TCSANOW, attrs)   # TCSETS
fcntl.ioctl(slave, termios.FIONREAD, b"\0" * 4)    # FIONREAD on a pts
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0" * 4)           # FIONREAD on a socket
fcntl.ioctl(s.fileno(), 0x8913, struct.pack("16sH14x", b"lo", 0))  # SIOCGIFFLAGS
"""


@needs_strace
@needs_root
def test_real_tty_and_socket_ioctls_are_decoded_with_their_handlers(tmp_path):
    sc = tmp_path / "ioctls.yaml"
    sc.write_text(f"name: ioctls\ndescription: real ioctls\ncommand: {json.dumps([sys.executable, '-c', PROGRAM])}\n")
    bundle = tmp_path / "b"
    kprof("run", sc, "--out", bundle, check=0)
    fp = json.loads((bundle / "footprint.json").read_text())
    rows = {(r["name"], r["device_class"]): r for r in fp["ioctls"]}
    tcgets = rows[("TCGETS", "pts")]
    assert tcgets["handler"].startswith("drivers/tty/") and tcgets["subsystem"] == "drivers/tty"
    assert tcgets["devices"] and tcgets["devices"][0].startswith("/dev/pts/")
    assert rows[("TCSETS", "pts")]["subsystem"] == "drivers/tty"
    assert rows[("FIONREAD", "pts")]["subsystem"] == "drivers/tty"
    assert rows[("FIONREAD", "socket:udp")]["subsystem"] == "net"
    siocgifflags = rows[("SIOCGIFFLAGS", "socket:udp")]
    assert siocgifflags["handler"].startswith("net/") and siocgifflags["subsystem"] == "net"
    subsystems = {r["subsystem"] for r in fp["subsystems"]}
    assert {"drivers/tty", "net"} <= subsystems
    # the pts device shows up with its own syscalls
    assert any(d["class"] == "pts" and "ioctl" in d["syscalls"] for d in fp["devices"].values())


RIG_LOG = """\
812   1650000000.000001 openat(AT_FDCWD</home/pi>, "/dev/spidev0.0", O_RDWR) = 3</dev/spidev0.0<char 153:0>> <0.000100>
812   1650000000.000201 flock(3</dev/spidev0.0<char 153:0>>, 0x6) = 0 <0.000010>
812   1650000000.000301 ioctl(3</dev/spidev0.0<char 153:0>>, 0x40206b00, 0x7e8f1234) = 1 <0.000050>
812   1650000000.000401 ioctl(3</dev/spidev0.0<char 153:0>>, 0x40206b00, 0x7e8f1234) = 1 <0.000050>
812   1650000000.000501 ppoll([{fd=3, events=0x1}], 1, {tv_sec=0, tv_nsec=1000000}, NULL, 0) = 0 (Timeout) <0.001100>
812   1650000000.002001 openat(AT_FDCWD</home/pi>, "/dev/i2c-1", O_RDWR) = 4</dev/i2c-1<char 89:1>> <0.000100>
812   1650000000.002101 ioctl(4</dev/i2c-1<char 89:1>>, 0x703, 0x3c) = 0 <0.000010>
812   1650000000.002201 write(5</sys/class/gpio/gpio4/value>, "1", 1) = 1 <0.000020>
812   1650000000.002301 set_tls(0x76f3d4c0) = 0 <0.000005>
812   1650000000.002401 exit_group(0) = ?
812   1650000000.002501 +++ exited with 0 +++
"""


def test_rig_log_from_arm_maps_spidev_i2c_and_arm_private_syscalls(tmp_path):
    log = tmp_path / "rig.log"
    log.write_text(RIG_LOG)
    out = tmp_path / "fp.json"
    kprof("analyze", log, "--arch", "arm", "--footprint", out, check=0)
    fp = json.loads(out.read_text())
    assert fp["arch"] == "arm"
    rows = {r["request"]: r for r in fp["ioctls"]}
    spi = rows["0x40206b00"]
    assert (spi["name"], spi["handler"], spi["calls"], spi["devices"]) == (
        "SPI_IOC_MESSAGE(1)", "drivers/spi/spidev.c", 2, ["/dev/spidev0.0"])
    i2c = rows["0x703"]
    assert (i2c["name"], i2c["handler"]) == ("I2C_SLAVE", "drivers/i2c/i2c-dev.c")
    assert fp["syscalls"]["ppoll"]["number"] == 336
    assert fp["syscalls"]["set_tls"]["subsystem"] == "arch" and fp["syscalls"]["set_tls"]["number"] == 983045
    assert fp["devices"]["/dev/spidev0.0"]["class"] == "spi"
    assert fp["devices"]["/sys/class/gpio/gpio4/value"]["class"] == "sysfs-gpio"
    subsystems = {r["subsystem"] for r in fp["subsystems"]}
    assert {"drivers/spi", "drivers/i2c"} <= subsystems


def test_syscall_lookup_command():
    p = kprof("syscall", "336", "--arch", "arm", check=0)
    assert "ppoll" in p.stdout and "fs/select.c" in p.stdout and "fs.events" in p.stdout
    p = kprof("syscall", "read", check=0)
    assert "fs/read_write.c" in p.stdout
    rows = dict(line.split()[:2] for line in p.stdout.splitlines()[-7:] if line and not line.startswith("-"))
    assert rows["x86_64"] == "0" and rows["arm"] == "3" and rows["aarch64"] == "63"
    assert "no syscall named" in kprof("syscall", "no_such_call", check=2).stderr
    assert "no syscall number 9999" in kprof("syscall", "9999", check=2).stderr


def test_log_without_raw_numbers_still_decodes_ioctl_names(tmp_path):
    log = tmp_path / "named.log"
    log.write_text('9 ioctl(0</dev/pts/2<char 136:2>>, TCGETS, {c_iflag=ICRNL|IXON}) = 0\n'
                   '9 ioctl(3</dev/spidev0.0<char 153:0>>, SPI_IOC_MESSAGE(1), 0x7e) = 1\n')
    out = tmp_path / "fp.json"
    kprof("analyze", log, "--arch", "arm", "--footprint", out, check=0)
    names = {r["name"]: r["request"] for r in json.loads(out.read_text())["ioctls"]}
    assert names == {"TCGETS": "0x5401", "SPI_IOC_MESSAGE(1)": "0x40206b00"}
