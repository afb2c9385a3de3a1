"""Private files for one scenario, in its own mount namespace: an empty /tmp of its own, a /dev of its own
(what the command does there — a script that renames a file over ``/dev/null`` as root — never reaches the
host's) where device paths a client hard-codes (``/dev/serial0``) are bound to emulators, and a resolv.conf
that points at loopback.

Runs inside the scenario's own mount namespace (the caller has unshared
CLONE_NEWNS and called make_mounts_private()). The host's /dev is never written: /dev is replaced, in this
namespace only, by an overlay whose lower layer is the host's /dev and whose
upper layer is a private tmpfs; the host's /dev submounts (pts, shm, mqueue …)
are bound back in; each wanted path is an empty file in the upper layer with
the emulator's device (e.g. its pty slave) bind-mounted over it, so the
traced program sees, and strace -yy prints, ``/dev/serial0``. A device served at the syscall boundary
(the SPI radio's ``/dev/spidev0.0``) is a placeholder instead: an empty regular file, enough for
``openat``, ``flock`` and ``close`` to run for real (spi-radio.md §8.1).

``fake_gpio`` gives the same namespace a legacy sysfs GPIO tree (``/sys/class/gpio/export``, ``gpioN/{
active_low,direction,value,edge}``) on tmpfs, for kernels without CONFIG_GPIOLIB (spi-radio.md §8.2); the
host's /sys is never written.
"""
from __future__ import annotations

import ctypes
import os
import tempfile

from profiler.errors import KprofError
from profiler.libc import MS_PRIVATE, MS_REC, libc

MS_BIND = 0x1000
MS_MOVE = 0x2000
MNT_DETACH = 2


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None,
           what: str = "/dev") -> None:
    enc = [None if v is None else v.encode() for v in (source, target, fstype, data)]
    if libc().mount(enc[0], enc[1], enc[2], flags, enc[3]) != 0:
        e = ctypes.get_errno()
        raise KprofError(f"cannot set up the scenario's private {what}: mount {source or ''} on {target}"
                         f"{' (' + fstype + ')' if fstype else ''}: {os.strerror(e)}")


def make_mounts_private() -> None:
    """In a fresh mount namespace: no mount made here propagates back to the host (and none from it)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def private_tmp(keep: list[str], path: str = "/tmp") -> None:
    """Give this mount namespace an empty /tmp of its own (a tmpfs), like systemd's PrivateTmp.

    Whatever the command writes there (oref0-pump-loop's ``/tmp/pump_loop_*``, the shared node's socket
    ``/tmp/oaps_shared_node``, ``mktemp`` files) never reaches the host's /tmp and vanishes with the
    namespace. ``keep`` lists host directories under /tmp that the run itself needs (its workdir, the
    result bundle, kprof's own tree when it lives there): each is bind-mounted back at the same path.
    """
    real = os.path.realpath(path)
    inside = sorted({q for q in map(os.path.realpath, keep)
                     if q != real and os.path.commonpath([q, real]) == real and os.path.isdir(q)}, key=len)
    wanted: list[str] = []
    for q in inside:  # a directory inside one already kept comes along with it
        if not any(os.path.commonpath([q, w]) == w for w in wanted):
            wanted.append(q)
    # reach each kept directory through an O_PATH fd: the host's /tmp is hidden once the tmpfs is on it
    fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in wanted}
    try:
        _mount("kprof-tmp", real, "tmpfs", 0, "mode=1777", what="/tmp")
        for p, fd in fds.items():
            os.makedirs(p, mode=0o700, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC, what="/tmp")
    finally:
        for fd in fds.values():
            os.close(fd)


def _dev_submounts() -> list[str]:
    """Mount points below /dev, outermost first (/dev/pts before anything mounted inside it)."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp.startswith("/dev/") and mp not in points:
                points.append(mp)
    return sorted(points, key=lambda p: p.count("/"))


def private_dev(devices: dict[str, str | None]) -> None:
    """Make each ``/dev/NAME`` in ``devices`` exist in this mount namespace: NAME → the device path to bind
    there, or None for a placeholder (an empty regular file, mode 0660)."""
    for name in devices:
        if "/" in name or name in ("", ".", ".."):
            raise KprofError(f"device name {name!r}: a plain name under /dev is expected (e.g. serial0)")
    stage = tempfile.mkdtemp(prefix="kprof-dev-")
    try:
        _mount("kprof-dev", stage, "tmpfs", 0, "mode=755")
        upper, work, dev = (os.path.join(stage, d) for d in ("upper", "work", "dev"))
        for d in (upper, work, dev):
            os.mkdir(d)
        _mount("kprof-dev", dev, "overlay", 0, f"lowerdir=/dev,upperdir={upper},workdir={work}")
        for mp in _dev_submounts():
            target = os.path.join(dev, os.path.relpath(mp, "/dev"))
            if os.path.isdir(mp):
                os.makedirs(target, exist_ok=True)
            _mount(mp, target, None, MS_BIND | MS_REC)
        for name, source in devices.items():
            target = os.path.join(dev, name)
            if os.path.lexists(target):
                os.unlink(target)  # a host entry of that name, hidden in this namespace only
            open(target, "w").close()
            if source is None:
                os.chmod(target, 0o660)
            else:
                _mount(source, target, None, MS_BIND)
        _mount(dev, "/dev", None, MS_MOVE)
    finally:
        libc().umount2(stage.encode(), MNT_DETACH)
        os.rmdir(stage)


def fake_gpio(pins, exported: bool = True, root: str = "/sys/class") -> None:
    """Put a legacy sysfs GPIO tree at ``root``/gpio in this mount namespace, on tmpfs.

    ``root`` becomes a tmpfs holding the fake ``gpio`` directory and, bound back from the host, every
    other entry the real ``root`` had (net, tty, …), so nothing else in /sys changes for the command.
    ``exported``: the pins' ``gpioN`` directories exist already (a rig after boot), else only ``export``
    does and a write to it creates them (profiler.pump.spi.SpiDevice.gpio_write).
    """
    from profiler.pump.spi import make_pin

    stage = tempfile.mkdtemp(prefix="kprof-sys-")
    try:
        _mount("kprof-sys", stage, "tmpfs", 0, "mode=755")
        real = sorted(os.listdir(root)) if os.path.isdir(root) else []
        for name in real:
            if name == "gpio":
                continue              # a real legacy GPIO tree (CONFIG_GPIOLIB): the fake one replaces it
            target = os.path.join(stage, name)
            os.mkdir(target)
            _mount(os.path.join(root, name), target, None, MS_BIND | MS_REC)
        gpio = os.path.join(stage, "gpio")
        os.mkdir(gpio)
        open(os.path.join(gpio, "export"), "w").close()
        open(os.path.join(gpio, "unexport"), "w").close()
        if exported:
            for pin in pins:
                make_pin(pin, gpio)
        _mount(stage, root, None, MS_MOVE)
    except BaseException:
        libc().umount2(stage.encode(), MNT_DETACH)
        raise
    finally:
        try:
            os.rmdir(stage)           # empty once the tmpfs moved (or was unmounted)
        except OSError:
            pass


def loopback_resolver(path: str = "/etc/resolv.conf") -> str | None:
    """Bind a resolv.conf naming only 127.0.0.1 over the host's, in this mount namespace.

    In a network namespace with loopback only, a DNS lookup would otherwise try the host's nameserver
    (and fail with ENETUNREACH): with this, every machine gives the same footprint (a query to
    127.0.0.1:53, refused) and no address but loopback is ever named. Returns the file bound there, for
    the caller to remove once the command is done (removed earlier, the paths behind fds would read
    "/etc/resolv.conf (deleted)"), or None when the host has no resolv.conf to cover.
    """
    if not os.path.exists(path):
        return None
    fd, source = tempfile.mkstemp(prefix="kprof-resolv-")
    with os.fdopen(fd, "w") as f:
        f.write("# kprof: this scenario's network namespace has loopback only\nnameserver 127.0.0.1\n")
    try:
        _mount(source, path, None, MS_BIND)
    except BaseException:
        os.unlink(source)
        raise
    return source
