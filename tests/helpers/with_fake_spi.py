"""Run a command with a fake SPI radio device and a fake sysfs GPIO tree, in a private mount namespace
(spi-radio.md §8.1, §8.2): /dev/NAME is PLACEHOLDER (a regular file: openat, flock and close work for real,
the spidev ioctls fail with ENOTTY), /sys/class is a tmpfs holding gpio/export and gpio/gpioN/{active_low,
direction,value,edge} for each pin in PINS. The host's /dev and /sys are not changed.
Usage: with_fake_spi.py NAME PLACEHOLDER PINS COMMAND ARGS…   (PINS: e.g. "4", "110,14", or "" for none;
"4:novalue" makes gpio4/ without its value file)"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from profiler.environment import devfs, namespaces  # noqa: E402

name, placeholder, pins, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
namespaces._enter_namespaces(net=False, mount=True)
devfs.private_dev({name: placeholder})
devfs._mount("kprof-fake-sysfs", "/sys/class", "tmpfs", 0, "mode=755")
os.makedirs("/sys/class/gpio")
open("/sys/class/gpio/export", "w").close()
for spec in filter(None, pins.split(",")):
    pin, _, how = spec.partition(":")
    os.makedirs(f"/sys/class/gpio/gpio{pin}")
    for f in ("active_low", "direction", "value", "edge"):
        if not (f == "value" and how == "novalue"):
            open(f"/sys/class/gpio/gpio{pin}/{f}", "w").close()
os.execvp(argv[0], argv)
