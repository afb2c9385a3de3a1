"""ioctl request decoding and handler attribution (Linux 6.19.9)."""
from __future__ import annotations

import pytest

from profiler.kernel import read_rows
from profiler.kernel.ioctls import decode_ioctl
from profiler.kernel.subsystems import SUBSYSTEMS

PTS = "/dev/pts/3<char 136:3>"
TCP = "TCP:[127.0.0.1:40000->127.0.0.1:80]"


def test_tcgets_on_a_pts():
    i = decode_ioctl(0x5401, PTS)
    assert (i.name, i.header, i.handler, i.subsystem, i.device_class) == \
        ("TCGETS", "asm-generic/ioctls.h", "drivers/tty/tty_ioctl.c", "drivers", "pts")
    assert (i.dir, i.type, i.nr, i.size) == ("NONE", ord("T"), 1, 0)


def test_tcsets_on_a_pts_despite_the_soundcard_collision():
    i = decode_ioctl(0x5402, PTS)
    assert (i.name, i.handler) == ("TCSETS", "drivers/tty/tty_ioctl.c")
    assert "SNDCTL_TMR_START" in i.note and "/dev/pts/3" in i.note


@pytest.mark.parametrize("path,handler,subsystem", [
    (PTS, "drivers/tty/n_tty.c", "drivers"),
    ("/dev/ttyACM0", "drivers/tty/n_tty.c", "drivers"),
    (TCP, "net/ipv4/tcp.c", "net"),
    ("UDP:[0.0.0.0:68]", "net/ipv4/udp.c", "net"),
    ("UNIX:[1->2]", "net/unix/af_unix.c", "net"),
    ("pipe:[77]", "fs/pipe.c", "fs.io"),
    ("/home/pi/file.json", "fs/ioctl.c", "fs.io"),
])
def test_fionread_depends_on_the_fd(path, handler, subsystem):
    i = decode_ioctl(0x541B, path)
    assert (i.name, i.handler, i.subsystem) == ("FIONREAD", handler, subsystem)


@pytest.mark.parametrize("path", ["socket:[1234]", "UDP:[1]", TCP, "NETLINK:[ROUTE:1]"])
def test_siocgifflags_on_sockets(path):
    i = decode_ioctl(0x8913, path)
    assert (i.name, i.handler, i.subsystem) == ("SIOCGIFFLAGS", "net/core/dev_ioctl.c", "net")


def test_spidev_message_on_arm():
    i = decode_ioctl(0x40206B00, "/dev/spidev0.0", arch="arm")
    assert (i.name, i.header, i.handler, i.subsystem) == \
        ("SPI_IOC_MESSAGE(1)", "linux/spi/spidev.h", "drivers/spi/spidev.c", "drivers")
    assert (i.dir, i.size) == ("WRITE", 32)
    assert "kyro" in i.note                                     # the 'k' registry collision is named
    assert decode_ioctl(0x40406B00, "/dev/spidev0.1", arch="armv7l").name == "SPI_IOC_MESSAGE(2)"
    assert decode_ioctl(0x40206B00, "/dev/spidev0.0", arch="aarch64").handler == "drivers/spi/spidev.c"


def test_spidev_settings_requests():
    i = decode_ioctl(0x40046B04, "/dev/spidev0.0", arch="arm")
    assert (i.name, i.handler) == ("SPI_IOC_WR_MAX_SPEED_HZ", "drivers/spi/spidev.c")


def test_i2c_slave():
    i = decode_ioctl(0x0703, "/dev/i2c-1")
    assert (i.name, i.header, i.handler, i.subsystem) == \
        ("I2C_SLAVE", "linux/i2c-dev.h", "drivers/i2c/i2c-dev.c", "drivers")


@pytest.mark.parametrize("path", [PTS, TCP, "/tmp/x", "/dev/spidev0.0", "pipe:[1]", None])
def test_fioclex_is_generic(path):
    i = decode_ioctl(0x5451, path)
    assert (i.name, i.handler, i.subsystem) == ("FIOCLEX", "fs/ioctl.c", "fs.io")


def test_arm_fioqsize_uses_the_arch_table():
    assert decode_ioctl(0x545E, "/tmp/x", arch="arm").name == "FIOQSIZE"
    assert decode_ioctl(0x5460, "/tmp/x", arch="arm").name != "FIOQSIZE"
    assert decode_ioctl(0x5460, "/tmp/x", arch="x86_64").name == "FIOQSIZE"


def test_tty_request_on_a_regular_file_is_explained():
    i = decode_ioctl(0x5401, "/home/pi/out.log")       # isatty() on a redirected stdout
    assert i.name == "TCGETS" and i.handler == "fs/ioctl.c" and i.device_class == "file"
    assert "but the fd is" in i.note


def test_hid_collision_resolved_by_device():
    assert decode_ioctl(0x80044801, "/dev/hidraw0").name == "HIDIOCGRDESCSIZE"
    assert decode_ioctl(0x80044801, "/dev/usb/hiddev0").name == "HIDIOCGVERSION"
    i = decode_ioctl(0xC0404807, "/dev/hidraw0")
    assert (i.name, i.handler) == ("HIDIOCGFEATURE(64)", "drivers/hid/hidraw.c")


def test_size_differences_match_on_dir_type_nr():
    i = decode_ioctl(0x80046601, "/tmp/x", arch="x86_64")      # 32-bit-sized FS_IOC_GETFLAGS on a 64-bit table
    assert i.name in ("FS_IOC_GETFLAGS", "FS_IOC32_GETFLAGS") and i.handler == "fs/ioctl.c"


def test_evdev_parameterised():
    i = decode_ioctl(0x80FF4506, "/dev/input/event0")
    assert (i.name, i.handler) == ("EVIOCGNAME(255)", "drivers/input/evdev.c")


def test_unknown_requests_never_raise():
    i = decode_ioctl(0x12345678, None)
    assert i.name is None and i.handler is None and i.subsystem == "unknown" and "not in" in i.note
    i = decode_ioctl(0xDEADBEEF, PTS)
    assert i.name is None and i.handler == "drivers/tty/tty_io.c" and i.note
    assert decode_ioctl(-1, None).request == 0xFFFFFFFF
    assert decode_ioctl(0, "").name is None or decode_ioctl(0, "").note


def test_decode_is_cached():
    assert decode_ioctl(0x5401, PTS) is decode_ioctl(0x5401, PTS)


def test_rule_data_is_consistent():
    rules = {r[0]: r for r in read_rows("ioctl-rules.tsv")}
    files = {r[0]: r[1] for r in read_rows("kernel-files.tsv")}
    for name in ("ioctls-64.tsv", "ioctls-32.tsv"):
        for req, _, _, ids in read_rows(name):
            assert int(req, 16) <= 0xFFFFFFFF
            for rid in filter(None, ids.split(",")):
                assert rid in rules, (name, req, rid)
    for r in rules.values():
        assert files[r[2]] in SUBSYSTEMS
    for cls, handler, _ in read_rows("ioctl-class-defaults.tsv"):
        assert files[handler] in SUBSYSTEMS


@pytest.mark.parametrize("name,arch,code", [
    ("TCGETS", "x86_64", 0x5401),
    ("SNDCTL_TMR_START or TCSETS", "x86_64", 0x5402),
    ("SPI_IOC_MESSAGE(1)", "arm", 0x40206B00),
    ("_IOC(_IOC_WRITE, 0x6b, 0, 0x20)", "arm", 0x40206B00),
    ("_IOC(_IOC_READ|_IOC_WRITE, 0x48, 0x7, 0x40)", "x86_64", 0xC0404807),
    ("HIDIOCGFEATURE(64)", "x86_64", 0xC0404807),
    ("EVIOCGBIT(0x1, 96)", "x86_64", 0x80604521),
    ("I2C_SLAVE", "arm", 0x0703),
    ("FIOQSIZE", "arm", 0x545E),
    ("FIOQSIZE", "x86_64", 0x5460),
    ("0x5401", "x86_64", 0x5401),
    ("NO_SUCH_REQUEST", "x86_64", None),
    ("_IOC(_IOC_BOGUS, 1, 2, 3)", "x86_64", None),
])
def test_ioctl_code_from_strace_names(name, arch, code):
    from profiler.kernel.ioctls import ioctl_code
    assert ioctl_code(name, arch) == code


def test_names_round_trip_through_decode():
    from profiler.kernel.ioctls import ioctl_code
    for name, path, arch in [("TCGETS", PTS, "x86_64"), ("SPI_IOC_MESSAGE(1)", "/dev/spidev0.0", "arm"),
                             ("I2C_SLAVE", "/dev/i2c-1", "arm"), ("SIOCGIFFLAGS", "socket:[1]", "aarch64")]:
        assert decode_ioctl(ioctl_code(name, arch), path, arch).name == name


def test_collisions_on_non_devices_prefer_the_request_kprof_knows():
    i = decode_ioctl(0x5402, "socket:[9]")           # TCSETS vs SNDCTL_TMR_START, neither fits a socket
    assert i.name == "TCSETS" and i.handler == "net/socket.c" and "but the fd is" in i.note
