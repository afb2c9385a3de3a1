"""Device classes from the paths strace -yy prints."""
from __future__ import annotations

import pytest

from profiler.kernel.devices import classify_path, device_classes, is_device

CASES = {
    "/dev/pts/3": "pts",
    "/dev/pts/3<char 136:3>": "pts",
    "/dev/spidev0.0": "spi",
    "/dev/spidev0.0<char 153:0>": "spi",
    "/dev/i2c-1": "i2c",
    "/dev/ttyACM0": "usb-serial",
    "/dev/ttyAMA0": "serial",
    "/dev/ttyS0<char 4:64>": "serial",
    "/dev/ttyUSB0": "serial",
    "/dev/serial0": "serial",
    "/dev/gpiochip0": "gpio",
    "/dev/hidraw0": "hidraw",
    "/dev/usb/hiddev0": "hiddev",
    "/dev/bus/usb/001/002": "usb",
    "/dev/input/event0": "input",
    "/dev/sda1": "block",
    "/dev/mmcblk0p2<block 179:2>": "block",
    "/dev/null": "mem",
    "/dev/null<char 1:3>": "mem",
    "/dev/urandom": "mem",
    "/dev/ptmx": "ptmx",
    "/dev/tty": "tty",
    "/dev/tty1": "tty",
    "/sys/class/gpio/gpio4/value": "sysfs-gpio",
    "/sys/class/gpio/export": "sysfs-gpio",
    "/sys/devices/system/cpu/online": "sysfs",
    "/sys/fs/cgroup/memory/$CGROUP/memory.limit_in_bytes": "cgroup",
    "/sys/fs/cgroup": "cgroup",
    "/proc/self/stat": "proc",
    "TCP:[127.0.0.1:40000->127.0.0.1:80]": "socket:tcp",
    "TCPv6:[[::1]:40000->[::1]:80]": "socket:tcp",
    "UDP:[127.0.0.1:5353]": "socket:udp",
    "UDPv6:[[::]:5353]": "socket:udp",
    "UNIX:[1234->5678]": "socket:unix",
    'UNIX-STREAM:[1234,"/tmp/sock"]': "socket:unix",
    "NETLINK:[ROUTE:1234]": "socket:netlink",
    "socket:[1234]": "socket",
    "PACKET:[4321]": "socket",
    "pipe:[1234]": "pipe",
    "anon_inode:[eventpoll]": "eventpoll",
    "anon_inode:[eventfd]": "eventfd",
    "anon_inode:[timerfd]": "timerfd",
    "anon_inode:[signalfd]": "signalfd",
    "anon_inode:[io_uring]": "io_uring",
    "anon_inode:inotify": "anon",
    "anon_inode:[pidfd]": "anon",
    "/memfd:cffi (deleted)": "file",
    "/home/pi/myopenaps/monitor/status.json": "file",
    "/tmp": "file",
    "relative/path.txt": "file",
    "/dev/shm/sem.x": "file",
    "/dev/watchdog<char 10:130>": "chardev",
    "/dev/some-new-thing": "chardev",
    None: "unknown",
    "": "unknown",
}


@pytest.mark.parametrize("path,expected", list(CASES.items()))
def test_classify_path(path, expected):
    assert classify_path(path) == expected


def test_major_fallback_when_the_name_is_unfamiliar():
    assert classify_path("/dev/renamed<char 136:9>") == "pts"
    assert classify_path("/dev/renamed<char 166:0>") == "usb-serial"
    assert classify_path("/dev/renamed<block 8:1>") == "block"


def test_is_device():
    for cls in ("tty", "pts", "ptmx", "serial", "usb-serial", "spi", "i2c", "gpio", "hidraw", "usb", "input",
                "block", "mem", "chardev"):
        assert is_device(cls), cls
    for cls in ("file", "socket:tcp", "pipe", "proc", "sysfs", "sysfs-gpio", "eventpoll", "anon", "unknown",
                "no-such-class"):
        assert not is_device(cls), cls


def test_every_class_returned_is_documented():
    known = device_classes()
    assert {classify_path(p) for p in CASES} <= set(known)
