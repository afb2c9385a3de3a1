"""The static view (kprof config): Kconfig symbols a footprint needs, why, and --check against kernel configs.

Ground truth: the reference files of ../shared/reference/kernel/kconfig/ parsed here, the running kernel's own
config (/proc/config.gz or /boot/config-RELEASE, grepped here) and /proc/kallsyms (which syscalls are linked)."""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from profiler.compare import diff, measures, rules_for
from profiler.footprint import Footprint, SyscallStat, new_use
from profiler.kernel import kconfig as kc
from profiler.kernel.devices import classify_path, device_classes
from profiler.kernel.syscalls import syscall_names

from .conftest import ROOT, assert_kconfig_explains, kprof, needs_oref0, needs_root, needs_strace

KCONFIG_REF = ROOT.parent / "shared" / "reference" / "kernel" / "kconfig"
needs_reference = pytest.mark.skipif(not KCONFIG_REF.is_dir(), reason=f"reference data {KCONFIG_REF} is absent")
FIXTURE = ROOT / "tests" / "data" / "kconfig-rig.config"
SPI_IOC_MESSAGE_1 = 0x40206B00

# one path per device class, as strace -yy shows it
CLASS_PATHS = {
    "tty": "/dev/tty1", "pts": "/dev/pts/3", "ptmx": "/dev/ptmx", "serial": "/dev/ttyS0",
    "usb-serial": "/dev/ttyACM0", "spi": "/dev/spidev0.0", "i2c": "/dev/i2c-1", "gpio": "/dev/gpiochip0",
    "sysfs-gpio": "/sys/class/gpio/gpio17/value", "hidraw": "/dev/hidraw0", "hiddev": "/dev/usb/hiddev0",
    "usb": "/dev/bus/usb/001/002", "input": "/dev/input/event0", "block": "/dev/sda", "mem": "/dev/urandom",
    "chardev": "/dev/kprof-test-node", "sysfs": "/sys/kernel/mm/transparent_hugepage/enabled",
    "cgroup": "/sys/fs/cgroup/$CGROUP/memory.max",
    "proc": "/proc/self/status", "socket:tcp": "TCP:[127.0.0.1:1->127.0.0.1:2]", "socket:udp": "UDP:[3]",
    "socket:unix": "UNIX-STREAM:[4]", "socket:netlink": "NETLINK:[ROUTE:5]", "socket": "socket:[6]",
    "pipe": "pipe:[7]", "eventpoll": "anon_inode:[eventpoll]", "eventfd": "anon_inode:[eventfd]",
    "timerfd": "anon_inode:[timerfd]", "signalfd": "anon_inode:[signalfd]", "io_uring": "anon_inode:[io_uring]",
    "anon": "anon_inode:inotify", "file": "/etc/hostname", "unknown": "",
}


def footprint(arch="x86_64", syscalls=(), ioctls=(), devices=(), network=(), files=(), programs=()) -> Footprint:
    """A footprint built by hand: syscall names, (request, fd path) ioctls, device paths, addresses, ..."""
    fp = Footprint(arch=arch)

    def use(**extra):
        u = new_use(**extra)
        u["calls"] = 1
        u["by"]["/bin/probe"] = 1
        return u
    for name in syscalls:
        fp.syscalls[name] = SyscallStat(1, Counter())
    for req, path in ioctls:
        fp.syscalls.setdefault("ioctl", SyscallStat(0, Counter())).calls += 1
        fp.ioctls[(req, path)] = use()
    for path in devices:
        fp.devices[path] = use(dev=None, **{"class": classify_path(path)})
    for addr in network:
        fp.network[addr] = use()
    for path in files:
        fp.files[path] = use()
    for path in programs:
        fp.programs[path] = use()
    return fp


def spi_footprint() -> Footprint:
    return footprint(syscalls=["openat", "epoll_pwait", "futex"], ioctls=[(SPI_IOC_MESSAGE_1, "/dev/spidev0.0")],
                     devices=["/dev/spidev0.0"])


def running_config() -> Path | None:
    for p in ("/proc/config.gz", f"/boot/config-{os.uname().release}"):
        if os.path.isfile(p) and os.access(p, os.R_OK):
            return Path(p)
    return None


def grep_config(path: Path) -> dict[str, str]:
    """The config's values, read with nothing of kprof's."""
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
    out = dict(re.findall(r"^(CONFIG_\w+)=(\S+)$", text, re.M))
    out.update({s: "n" for s in re.findall(r"^# (CONFIG_\w+) is not set$", text, re.M)})
    return out


def ref_rows(name: str) -> list[dict]:
    lines = [ln for ln in (KCONFIG_REF / name).read_text().splitlines() if ln and not ln.startswith("#")]
    cols = lines[0].split("\t")
    return [dict(zip(cols, ln.split("\t"))) for ln in lines[1:]]


# ----------------------------------------------------------------------------- the worked examples

@needs_reference
def test_worked_examples_match_the_reference_files():
    files = {r["file"]: r for r in ref_rows("file-config.tsv")}
    spidev = kc.file_config("drivers/spi/spidev.c")
    assert (spidev.condition, spidev.kind, spidev.module) == ("CONFIG_SPI_SPIDEV", "tristate", "spidev")
    assert files["drivers/spi/spidev.c"]["minimal_expression"] == spidev.condition
    assert "SPI" in kc.depends_text(kc.symbol_info("CONFIG_SPI_SPIDEV")).split(" && ")
    cond = {(r["kind"], r["name"]): r for r in ref_rows("cond-syscalls.tsv")}
    for name, file, symbol in (("epoll_pwait", "fs/eventpoll.c", "CONFIG_EPOLL"),
                               ("futex", "kernel/futex/syscalls.c", "CONFIG_FUTEX"),
                               ("socket", "net/socket.c", "CONFIG_NET")):
        f, c, source = kc.syscall_condition("x86_64", name)
        assert (f, c) == (file, symbol) == (file, cond[("COND_SYSCALL", name)]["x86_64"])
        assert "COND_SYSCALL" in source
    uses = kc.footprint_uses(footprint(syscalls=["socket", "connect"], network=["inet:127.0.0.1:80"]))
    inet = [u for u in uses if u.kind == "network"]
    assert [(u.file, u.condition) for u in inet] == [("net/ipv4/af_inet.c", "CONFIG_INET")]
    assert files["net/ipv4/af_inet.c"]["minimal_expression"] == "CONFIG_INET"


@needs_reference
def test_every_file_and_cond_syscall_agrees_with_the_reference():
    files = {r["file"]: r for r in ref_rows("file-config.tsv")}
    symbols = {r["symbol"]: r for r in ref_rows("kconfig-symbols.tsv")}
    hand_read = 0
    for f, fc in kc._files().items():
        if f not in files:        # the cgroup files: hand-read Kbuild facts, their symbols from the reference
            assert "hand-read: tools/kernel_facts/kconfig-extra-files.tsv" in fc.kbuild_chain, f
            assert symbols[fc.condition]["type"] == fc.kind == "bool", f
            hand_read += 1
            continue
        r = files[f]
        assert (fc.condition, fc.literal, fc.kind) == (r["minimal_expression"], r["config_expression"], r["tristate"])
    assert hand_read == 4
    column = {"x86_64": "x86_64", "i386": "i386", "arm": "arm", "aarch64": "arm64", "riscv64": "riscv64"}
    cond = {(r["kind"], r["name"]): r for r in ref_rows("cond-syscalls.tsv")}
    checked = 0
    for arch, col in column.items():
        for name, (f, c, source) in kc._syscalls(arch).items():
            m = re.match(r"kernel/sys_ni\.c:\d+ (COND_SYSCALL(?:_COMPAT)?)\((\w+)\)$", source)
            if m:
                cell = cond[(m.group(1), m.group(2))][col]
                assert c == cell or (cell.startswith("n (") and c == "n"), (arch, name, c, cell)
                checked += 1
    assert checked > 800


def test_every_x86_64_syscall_maps_to_a_condition_or_a_stated_reason():
    names = syscall_names("x86_64")
    assert len(names) > 360
    counts = Counter()
    for name in names:
        f, c, source = kc.syscall_condition("x86_64", name)
        kc.parse(c)                                     # every condition parses
        assert c and source, name
        if c == "n":
            assert f is None or "no definition" in source or "sys_ni" in source, (name, source)
        counts["y" if c == "y" else "n" if c == "n" else "config"] += 1
    assert counts["y"] > 200 and counts["config"] > 80 and 0 < counts["n"] < 40, counts


@needs_reference
def test_one_rule_for_syscalls_with_and_without_a_sys_ni_stub():
    """kernel/sys_ni.c is the only place a syscall can be configured out. Its COND_SYSCALL cells already apply
    the arch (mprotect: CONFIG_MMU, y on x86_64 where MMU is forced); a syscall with no stub is linked by every
    kernel of the arch (brk/munmap: mm/mmap.c under MMU, mm/nommu.c otherwise), so it is y too, never its
    file's Kbuild condition."""
    cond = {(r["kind"], r["name"]): r for r in ref_rows("cond-syscalls.tsv")}
    stubbed = {name for (_, name) in cond}
    defs = {}
    for r in ref_rows("syscall-config.tsv"):
        defs.setdefault(r["name"], set()).add(r["file_config"])
    for arch in ("x86_64", "i386", "arm", "aarch64", "riscv64"):
        for name in syscall_names(arch):
            f, c, source = kc.syscall_condition(arch, name)
            if "sys_ni.c" not in source and c != "n":
                assert c == "y", (arch, name, c, source)
    assert kc.syscall_condition("x86_64", "mprotect")[1] == cond[("COND_SYSCALL", "mprotect")]["x86_64"] == "y"
    for name in ("brk", "munmap"):
        assert name not in stubbed and {"CONFIG_MMU", "!CONFIG_MMU"} <= defs[name]     # both variants exist
        for arch in ("x86_64", "arm"):
            assert kc.syscall_condition(arch, name)[1] == "y", (arch, name)
    assert kc.syscall_condition("arm", "mprotect")[1] == cond[("COND_SYSCALL", "mprotect")]["arm"] == "CONFIG_MMU"
    assert kc.syscall_condition("arm64-compat", "brk")[1] == "CONFIG_COMPAT"


# ----------------------------------------------------------------------------- footprints

def test_every_device_class_is_explained():
    for cls, path in CLASS_PATHS.items():
        if path:
            assert classify_path(path) == cls, (path, classify_path(path))
    assert set(CLASS_PATHS) == set(device_classes())
    fp = footprint(syscalls=["ioctl"], ioctls=[(0x5401, p) for p in CLASS_PATHS.values()],
                   devices=[p for p in CLASS_PATHS.values() if p.startswith(("/dev/", "/sys/"))],
                   files=["/proc/self/status", "/sys/class/net"], network=["inet:1.2.3.4:80", "inet6:[::1]:80",
                                                                             "unix:/run/x", "netlink"],
                   programs=["/usr/bin/node"])
    uses = kc.footprint_uses(fp)
    for cls in CLASS_PATHS:
        mine = [u for u in uses if u.kind == "ioctl fd" and u.what.split(" (")[0] == f"of class {cls}"]
        assert mine, f"class {cls}: no use"
        for u in mine:
            assert u.condition or u.note, (cls, u)
    for u in uses:
        assert (u.condition and u.file) or u.note, u
        if u.condition:
            kc.parse(u.condition)
    conds = {u.condition for u in uses}
    for expected in ("CONFIG_SPI_SPIDEV", "CONFIG_I2C_CHARDEV", "CONFIG_GPIO_CDEV", "CONFIG_GPIO_SYSFS && CONFIG_GPIO_SYSFS_LEGACY",
                     "CONFIG_HIDRAW", "CONFIG_USB_HIDDEV", "CONFIG_USB_ACM", "CONFIG_INPUT_EVDEV", "CONFIG_SERIAL_8250",
                     "CONFIG_INET", "CONFIG_IPV6", "CONFIG_UNIX", "CONFIG_PROC_FS", "CONFIG_SYSFS", "CONFIG_BINFMT_ELF",
                     "CONFIG_TTY", "CONFIG_BLOCK"):
        assert expected in conds, expected
    # platform drivers are listed, never required
    reqs = kc.requirements(uses)
    context = {r.condition for r in reqs if r.mode == "context"}
    assert "CONFIG_SPI_BCM2835" in context
    assert "CONFIG_SPI_BCM2835" not in {r.condition for r in kc.needed_symbols(fp)}


def test_the_every_scenario_check_can_fail():
    """tests/test_run.py runs assert_kconfig_explains on every shipped scenario's footprint; here it is shown
    to reject what it must: a syscall, an ioctl or a device with no Kconfig condition and no reason."""
    fp = footprint(syscalls=["openat", "epoll_pwait"], ioctls=[(SPI_IOC_MESSAGE_1, "/dev/spidev0.0")],
                   devices=["/dev/spidev0.0", "/sys/class/gpio/gpio4/value"],
                   files=["/sys/fs/cgroup/$CGROUP/memory.max", "/proc/meminfo"])
    uses = kc.footprint_uses(fp)
    assert assert_kconfig_explains(fp, uses) == len(uses)
    import dataclasses
    for broken in (
            [u for u in uses if u.what != "epoll_pwait"],                                  # a syscall not named
            [dataclasses.replace(u, condition="", note="") if u.kind == "ioctl" else u for u in uses],
            [u for u in uses if not u.what.startswith("/sys/class/gpio/gpio4/value")],      # a device not named
            [u for u in uses if not u.what.startswith("/sys/fs/cgroup")]):                  # an opened file
        with pytest.raises(AssertionError):
            assert_kconfig_explains(fp, broken)


def test_path_rules_pick_the_driver_of_the_device():
    conds = {u.condition for u in kc.footprint_uses(footprint(devices=["/dev/ttyAMA0"]))}
    assert "CONFIG_SERIAL_AMBA_PL011" in conds and "CONFIG_SERIAL_8250" not in conds
    reqs = kc.needed_symbols(footprint(devices=["/dev/ttyUSB0"]))
    one_of = [r for r in reqs if r.mode == "one-of"]
    assert len(one_of) == 1 and "CONFIG_USB_SERIAL_FTDI_SIO" in one_of[0].condition
    assert "CONFIG_USB_SERIAL_CP210X" in one_of[0].condition
    # /dev/serial0 on a Pi (arm, aarch64) is the PL011 or the mini UART; the emulated pump's is a pty (char 136:N)
    pi_uarts = "CONFIG_SERIAL_8250_BCM2835AUX || CONFIG_SERIAL_AMBA_PL011"
    for arch in ("arm", "aarch64"):
        fp = footprint(arch=arch, devices=["/dev/serial0"])
        fp.devices["/dev/serial0"]["dev"] = "char 136:4"
        reqs = kc.needed_symbols(fp)
        assert [r.condition for r in reqs if r.mode == "one-of"] == [pi_uarts], arch
        stand_in = [u for u in kc.footprint_uses(fp) if "a pts device in this trace" in u.what]
        assert "drivers/tty/pty.c" in {u.file for u in stand_in}
        assert "CONFIG_SERIAL_CORE" in {r.condition for r in reqs}


def test_platform_drivers_are_needed_only_on_their_platforms_arches():
    """The Pi's UART drivers behind /dev/serial0 are needed (one of them) on arm/aarch64; on x86_64 (where the
    UART scenario runs here) they are context, like the Pi's SPI controller, and never counted as missing.
    The arches come from the reference: the platform symbol ARCH_BCM2835 is defined only in arch/arm and
    arch/arm64, and each such driver's Kconfig symbol depends on it (or on ARM_AMBA, which it selects)."""
    rows = [r for r in ref_rows("kconfig-symbols.tsv") if r["symbol"] == "CONFIG_ARCH_BCM2835"]
    assert sorted(r["arches"] for r in rows) == ["arm", "arm64"]
    pi_files = {"drivers/tty/serial/8250/8250_bcm2835aux.c", "drivers/tty/serial/amba-pl011.c",
                "drivers/spi/spi-bcm2835.c", "drivers/i2c/busses/i2c-bcm2835.c",
                "drivers/pinctrl/bcm/pinctrl-bcm2835.c"}
    for arch in ("x86_64", "i386", "riscv64"):
        fp = footprint(arch=arch, devices=["/dev/serial0", "/dev/spidev0.0", "/dev/i2c-1", "/dev/gpiochip0",
                                           "/dev/ttyAMA0"])
        uses = kc.footprint_uses(fp)
        pi = [u for u in uses if u.file in pi_files]
        assert {u.file for u in pi} == pi_files, arch
        assert all(u.mode == "context" for u in pi), [(u.file, u.mode) for u in pi if u.mode != "context"]
        assert all("Raspberry Pi" in u.note for u in pi)
        needed = kc.needed_symbols(fp)
        assert not [r for r in needed if set(r.files) & pi_files], arch
        assert "CONFIG_SERIAL_CORE" in {r.condition for r in needed}
        # checked against a config without any Pi driver: nothing of the Pi is missing
        missing = [r.condition for r in needed if kc.check(r, {"CONFIG_SERIAL_CORE": "y", "CONFIG_TTY": "y"},
                                                          arch)[0] == 0]
        assert not [m for m in missing if "BCM2835" in m or "PL011" in m], missing
    # on the Pi's arches the platform rule changes nothing: spi-bcm2835 stays context (its own mode)
    uses = kc.footprint_uses(footprint(arch="aarch64", devices=["/dev/spidev0.0", "/dev/ttyAMA0"]))
    modes = {u.file: u.mode for u in uses}
    assert modes["drivers/spi/spi-bcm2835.c"] == "context" and modes["drivers/tty/serial/amba-pl011.c"] == "needs"


def test_uart_scenario_check_passes_on_this_machine(tmp_path):
    """pump-status-uart (a pty stands in for the Pi's UART) succeeds here, so --check of this x86_64
    machine's own config must not report a missing symbol for it."""
    cfg = running_config()
    if cfg is None or os.uname().machine != "x86_64":
        pytest.skip("needs an x86_64 kernel with a readable config")
    fp = footprint(arch="x86_64", syscalls=["openat", "ioctl", "read", "write"],
                   ioctls=[(0x5402, "/dev/serial0")], devices=["/dev/serial0"])
    fp.devices["/dev/serial0"]["dev"] = "char 136:0"
    fp_path = tmp_path / "uart.json"
    fp.save(fp_path)
    p = kprof("config", fp_path, "--check", cfg, check=None)
    assert p.returncode == 0, p.stdout[-3000:]
    assert "CONFIG_SERIAL_8250_BCM2835AUX" in p.stdout          # listed, as context


@needs_reference
def test_legacy_gpio_sysfs_needs_gpio_sysfs_legacy():
    """The rig's client writes /sys/class/gpio/export and uses gpioN/: in 6.19 those sit under
    CONFIG_GPIO_SYSFS_LEGACY, a #if inside drivers/gpio/gpiolib-sysfs.c (the reference's in_file_ifdefs; the
    symbol "Enable legacy functionalities of the sysfs interface" depends on GPIO_SYSFS)."""
    ref = {r["file"]: r for r in ref_rows("file-config.tsv")}["drivers/gpio/gpiolib-sysfs.c"]
    assert "CONFIG_GPIO_SYSFS_LEGACY" in ref["in_file_ifdefs"].split(",")
    assert ref["minimal_expression"] == "CONFIG_GPIO_SYSFS"
    legacy = next(r for r in ref_rows("kconfig-symbols.tsv") if r["symbol"] == "CONFIG_GPIO_SYSFS_LEGACY")
    assert legacy["depends_on"] == "GPIO_SYSFS"
    for path in ("/sys/class/gpio/export", "/sys/class/gpio/unexport", "/sys/class/gpio/gpio4/value",
                 "/sys/devices/platform/soc/3f200000.gpio/gpio/gpio4/direction"):
        fp = footprint(devices=[path])
        assert classify_path(path) == "sysfs-gpio", path
        needed = {r.condition for r in kc.needed_symbols(fp)}
        assert "CONFIG_GPIO_SYSFS && CONFIG_GPIO_SYSFS_LEGACY" in needed, (path, needed)
        req = next(r for r in kc.needed_symbols(fp) if "LEGACY" in r.condition)
        value, detail = kc.check(req, {"CONFIG_GPIOLIB": "y", "CONFIG_GPIO_SYSFS": "y"}, "x86_64")
        assert value == 0 and "CONFIG_GPIO_SYSFS_LEGACY" in detail
        assert kc.check(req, {"CONFIG_GPIO_SYSFS": "y", "CONFIG_GPIO_SYSFS_LEGACY": "y"}, "x86_64")[0] == 2
    # the chip-based interface of 6.19 (/sys/class/gpio/chipN/...) needs only GPIO_SYSFS
    needed = {r.condition for r in kc.needed_symbols(footprint(devices=["/sys/class/gpio/chip512/export"]))}
    assert "CONFIG_GPIO_SYSFS" in needed and not [c for c in needed if "LEGACY" in c], needed


CGROUP_LOG = """\
10387 1796566755.099160 openat(-100</tmp/w>, "/proc/self/cgroup", 0x80000) = 17</proc/10387/cgroup> <0.000013>
10387 1796566755.099247 openat(-100</tmp/w>, "/sys/fs/cgroup/memory/process_api/9098b7/memory.soft_limit_in_bytes", \
0x80000) = 17</sys/fs/cgroup/memory/process_api/9098b7/memory.soft_limit_in_bytes> <0.000019>
10387 1796566755.099282 read(17</sys/fs/cgroup/memory/process_api/9098b7/memory.soft_limit_in_bytes>, "9\\n", 31) = 2 \
<0.000006>
10387 1796566755.099300 openat(-100</tmp/w>, "/sys/fs/cgroup/user.slice/user-0.slice/session-4.scope/memory.max", \
0x80000) = 18</sys/fs/cgroup/user.slice/user-0.slice/session-4.scope/memory.max> <0.000019>
10387 1796566755.099400 openat(-100</tmp/w>, "/sys/fs/cgroup/cgroup.controllers", 0x80000) = 19</sys/fs/cgroup/cgroup.controllers> \
<0.000019>
10387 1796566755.099500 openat(-100</tmp/w>, "/sys/fs/cgroup/cpuset/a/b/cpuset.cpus", 0x80000) = 20</sys/fs/cgroup/cpuset/a/b/cpuset.cpus> \
<0.000019>
10387 1796566755.099600 exit_group(0) = ?
10387 1796566755.099700 +++ exited with 0 +++
""".replace("\\\n", "")


def test_cgroup_files_are_cgroupfs_with_normalised_keys(tmp_path):
    """libuv reads the memory limit of its own cgroup (/sys/fs/cgroup/<its cgroup path>/memory.*): that is
    cgroupfs (CONFIG_CGROUPS, and MEMCG for the memory controller's files), not sysfs, and the cgroup path
    (process_api/<hash>, a systemd scope) is run-specific, so the footprint's key does not carry it."""
    log = tmp_path / "trace.log"
    log.write_text(CGROUP_LOG)
    fp_path = tmp_path / "fp.json"
    kprof("analyze", log, "--footprint", fp_path, "-f", "json", check=0)
    fp = Footprint.load(fp_path)
    cg = sorted(p for p in fp.files if "cgroup" in p)
    assert cg == ["/proc/PID/cgroup", "/sys/fs/cgroup/$CGROUP/memory.max", "/sys/fs/cgroup/cgroup.controllers",
                  "/sys/fs/cgroup/cpuset/$CGROUP/cpuset.cpus",
                  "/sys/fs/cgroup/memory/$CGROUP/memory.soft_limit_in_bytes"], cg
    assert not [p for p in fp.devices if "cgroup" in p], fp.devices        # not the device model
    for p in cg[1:]:
        assert classify_path(p) == "cgroup", p
    uses = [u for u in kc.footprint_uses(fp) if "/sys/fs/cgroup" in u.what]
    by_path = defaultdict(set)
    for u in uses:
        by_path[u.what.split(" (")[0]].add(u.condition)
    assert by_path["/sys/fs/cgroup/memory/$CGROUP/memory.soft_limit_in_bytes"] == {"CONFIG_CGROUPS", "CONFIG_MEMCG"}
    assert by_path["/sys/fs/cgroup/$CGROUP/memory.max"] == {"CONFIG_CGROUPS", "CONFIG_MEMCG"}
    assert by_path["/sys/fs/cgroup/cgroup.controllers"] == {"CONFIG_CGROUPS"}
    assert by_path["/sys/fs/cgroup/cpuset/$CGROUP/cpuset.cpus"] == {"CONFIG_CGROUPS", "CONFIG_CPUSETS"}
    needed = {r.condition for r in kc.needed_symbols(fp)}
    assert {"CONFIG_CGROUPS", "CONFIG_MEMCG", "CONFIG_CPUSETS"} <= needed and "CONFIG_SYSFS" not in needed
    # the symbols are the reference's (Kconfig facts of 6.19.9)
    syms = {r["symbol"]: r for r in ref_rows("kconfig-symbols.tsv")}
    assert syms["CONFIG_MEMCG"]["enclosing_if_menu"] == "CGROUPS" and syms["CONFIG_CGROUPS"]["type"] == "bool"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A real small command under strace: /proc, /sys, a pty, /dev/urandom, a TCP connect, epoll, a pipe."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    tmp = tmp_path_factory.mktemp("kconfig")
    script = ("import os,socket,select\n"
              "open('/proc/self/status').read(); os.listdir('/sys/class'); open('/dev/urandom','rb').read(4)\n"
              "m,s=os.openpty(); os.close(m); os.close(s)\n"
              "c=socket.socket(); c.settimeout(1)\ntry: c.connect(('127.0.0.1',9))\nexcept OSError: pass\n"
              "e=select.epoll(); e.close(); r,w=os.pipe()\n")
    log = tmp / "trace.log"
    subprocess.run(["strace", "-f", "-yy", "-ttt", "-T", "-X", "raw", "-C", "-o", str(log), "--", "sh", "-c",
                    f"cat /etc/hostname >/dev/null; python3 -c \"{script}\""], check=True, capture_output=True,
                   timeout=60)
    fp_path = tmp / "footprint.json"
    kprof("analyze", log, "--footprint", fp_path, "-f", "json", check=0)
    return fp_path


@needs_strace
def test_real_run_every_use_named(real_run):
    p = kprof("config", real_run, "-f", "json", check=0)
    report = json.loads(p.stdout)
    uses = next(s for s in report["sections"] if s["title"].startswith("Every use"))
    fp = Footprint.load(real_run)
    named = {r[1] for r in uses["rows"] if r[0] == "syscall"}
    assert named == set(fp.syscalls)
    for kind, what, file, cond, note in uses["rows"]:
        assert (cond != "(none)" and file) or note, (kind, what)
    needed = next(s for s in report["sections"] if s["title"] == "Kconfig symbols needed")
    conds = {r[0] for r in needed["rows"]}
    assert {"CONFIG_EPOLL", "CONFIG_INET", "CONFIG_NET", "CONFIG_PROC_FS", "CONFIG_SYSFS"} <= conds, conds
    assert any("UNIX98_PTYS" in c for c in conds), conds       # os.openpty(): /dev/ptmx + devpts
    # the report of the same result has the short section, grouped by subsystem
    rep = json.loads(kprof("report", real_run, "-f", "json", check=0).stdout)
    sec = next(s for s in rep["sections"] if s["title"].startswith("Kernel configuration"))
    assert any("CONFIG_EPOLL" in row[1] for row in sec["rows"])


def test_x86_64_predictions_agree_with_kallsyms():
    """Each x86_64 syscall sys_ni.c can stub: its condition holds on this kernel's config <=> a real
    __x64_sys_<name> is linked (T in /proc/kallsyms; W = only the -ENOSYS weak alias)."""
    cfg = running_config()
    if cfg is None or os.uname().machine != "x86_64" or not os.access("/proc/kallsyms", os.R_OK):
        pytest.skip("needs an x86_64 kernel with a readable config and /proc/kallsyms")
    options = grep_config(cfg)
    linked = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2].startswith("__x64_sys_"):
                linked[parts[2][10:]] = parts[1] in "Tt"
    compared = 0
    for name in syscall_names("x86_64"):
        f, c, source = kc.syscall_condition("x86_64", name)
        m = re.match(r"kernel/sys_ni\.c:\d+ COND_SYSCALL\((\w+)\)$", source)
        if not m or m.group(1) not in linked:
            continue
        assert (kc.evaluate(kc.parse(c), options) > 0) == linked[m.group(1)], (name, c)
        compared += 1
    assert compared > 150


@needs_strace
@needs_root
@needs_oref0
def test_shipped_scenarios_every_use_named(scenario_run):
    """Two shipped scenarios run for real (the emulated pump on /dev/serial0, and oref0 under node): the suite's
    shared runs of them (conftest's scenario_run)."""
    bundles = {name: scenario_run(ROOT / "scenarios" / f"{name}.yaml")[1] for name in ("pump-model", "calculate-iob")}
    for name, bundle in bundles.items():
        report = json.loads(kprof("config", bundle, "-f", "json", check=0).stdout)
        uses = next(s for s in report["sections"] if s["title"].startswith("Every use"))["rows"]
        fp = Footprint.load(bundle / "footprint.json")
        assert {r[1] for r in uses if r[0] == "syscall"} == set(fp.syscalls)
        for kind, what, file, cond, note in uses:
            assert (cond != "(none)" and file) or note, (name, kind, what)
        needed = {r[0] for s in report["sections"] if s["title"] == "Kconfig symbols needed" for r in s["rows"]}
        assert {"CONFIG_FUTEX", "CONFIG_EPOLL"} <= needed, needed   # brk/mmap: y (no sys_ni.c stub)
        if name == "pump-model":
            assert {"CONFIG_TTY", "CONFIG_SERIAL_CORE"} <= needed, needed


def test_whole_workload_ftrace_footprint(tmp_path):
    """ELISA's form of trace (arm, raw numbers, no fd paths) → ftrace analyze --footprint → kprof config."""
    from .test_ftrace_parse import ELISA
    trace = tmp_path / "pi.txt"
    trace.write_text(ELISA)
    fp_path = tmp_path / "pi.json"
    kprof("ftrace", "analyze", trace, "--arch", "arm", "--footprint", fp_path, check=0)
    p = kprof("config", fp_path, "--check", FIXTURE, "-f", "json", check=1)
    report = json.loads(p.stdout)
    rows = {r[0]: r for s in report["sections"] if s["title"] == "Kconfig symbols needed" for r in s["rows"]}
    assert rows["CONFIG_SPI_SPIDEV"][6] == "module (=m)"              # SPI_IOC_MESSAGE(1) → spidev
    assert rows["CONFIG_COMPAT_32BIT_TIME"][6] == "missing"           # arm's ppoll is ppoll_time32
    assert "syscall_999" in report["facts"]["not on arm"]


# ----------------------------------------------------------------------------- --check

@needs_reference
def test_check_running_kernel_hand_checked_symbols(tmp_path):
    """Ten symbols checked by hand on the machine host-check.tsv was made on, against the running config."""
    cfg = running_config()
    if cfg is None:
        pytest.skip("no readable kernel config (/proc/config.gz, /boot/config-RELEASE)")
    ten = ["CONFIG_EPOLL", "CONFIG_FUTEX", "CONFIG_NET", "CONFIG_INET", "CONFIG_TTY", "CONFIG_UNIX98_PTYS",
           "CONFIG_PROC_FS", "CONFIG_SPI", "CONFIG_I2C", "CONFIG_GPIOLIB"]
    truth = grep_config(cfg)
    host = {r["name"]: r["value_or_result"] for r in ref_rows("host-check.tsv") if r["kind"] == "symbol"}
    release = os.uname().release
    same_machine = release.startswith("6.18.") and truth.get("CONFIG_SPI", "n") == "n"
    from profiler.kernel.modules import read_config
    options = read_config(str(cfg)).options
    for sym in ten:
        req = kc.Requirement(sym, "needs")
        value, _ = kc.check(req, options, "x86_64")
        want = {"y": 2, "m": 1}.get(truth.get(sym, "n"), 0)
        assert value == want, sym
        if same_machine:                       # the hand-checked list of host-check.tsv
            assert value == {"y": 2, "m": 1}.get(host[sym], 0), sym


def test_spi_footprint_on_this_kernel_exits_1_when_spi_is_missing(tmp_path):
    cfg = running_config()
    if cfg is None:
        pytest.skip("no readable kernel config (/proc/config.gz, /boot/config-RELEASE)")
    fp_path = tmp_path / "spi.json"
    spi_footprint().save(fp_path)
    has_spi = grep_config(cfg).get("CONFIG_SPI_SPIDEV", "n") != "n"
    p = kprof("config", fp_path, "--check", cfg, "-f", "json", check=0 if has_spi else 1)
    rows = next(s for s in json.loads(p.stdout)["sections"] if s["title"] == "Kconfig symbols needed")["rows"]
    spidev = next(r for r in rows if r[0] == "CONFIG_SPI_SPIDEV")
    assert spidev[2] == "can be a module: spidev" and "SPI" in spidev[3].split(" && ")
    if not has_spi:
        assert spidev[6] == "missing" and "CONFIG_SPI_SPIDEV" in spidev[7] and "CONFIG_SPI," in spidev[7] + ","
    epoll = next(r for r in rows if r[0] == "CONFIG_EPOLL")
    assert epoll[6] == ("present (=y)" if grep_config(cfg).get("CONFIG_EPOLL") == "y" else epoll[6])


def test_check_committed_fixture_plain_and_gzip(tmp_path):
    fp_path = tmp_path / "spi.json"
    spi_footprint().save(fp_path)
    gz = tmp_path / "config.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    for cfg in (FIXTURE, gz):
        p = kprof("config", fp_path, "--check", cfg, "-f", "json", check=1)
        rows = {r[0]: r for r in next(s for s in json.loads(p.stdout)["sections"]
                                      if s["title"] == "Kconfig symbols needed")["rows"]}
        assert rows["CONFIG_SPI_SPIDEV"][6] == "module (=m)"
        assert rows["CONFIG_SPI_MASTER"][6] == "present (=y)"
        assert rows["CONFIG_EPOLL"][6] == "present (=y)"
        assert rows["CONFIG_FUTEX"][6] == "missing" and "CONFIG_FUTEX" in rows["CONFIG_FUTEX"][7]
    # without futex in the footprint, nothing is missing
    ok = footprint(syscalls=["epoll_pwait"], ioctls=[(SPI_IOC_MESSAGE_1, "/dev/spidev0.0")])
    ok.save(fp_path)
    kprof("config", fp_path, "--check", FIXTURE, check=0)


def test_bad_configs_exit_2_with_one_message(tmp_path):
    fp_path = tmp_path / "spi.json"
    spi_footprint().save(fp_path)
    not_config = tmp_path / "notes.txt"
    not_config.write_text("hello\n")
    bad_gz = tmp_path / "bad.gz"
    bad_gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    for cfg in (tmp_path / "absent", not_config, bad_gz, tmp_path):
        p = kprof("config", fp_path, "--check", cfg, check=2)
        assert p.stderr.count("kprof: error:") == 1 and "Traceback" not in p.stderr, p.stderr
        assert p.stdout == ""
    for args in ([tmp_path / "nothing.json"], [fp_path, "--fragment", tmp_path / "no" / "f.config"],
                 [fp_path, "-o", tmp_path], [fp_path, "--arch", "vax"]):
        p = kprof("config", *args, check=2)
        assert p.stderr.count("kprof: error:") == 1 and "Traceback" not in p.stderr, p.stderr


def test_fragment_sets_dependencies_first(tmp_path):
    fp_path = tmp_path / "spi.json"
    spi_footprint().save(fp_path)
    frag_file = tmp_path / "frag.config"
    p = kprof("config", fp_path, "-f", "config", "--fragment", frag_file, check=0)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("CONFIG_")]
    assert all(re.fullmatch(r"CONFIG_\w+=[ym]", ln) for ln in lines), lines   # merge_config.sh reads VALUE whole
    assert lines.index("CONFIG_SPI=y") < lines.index("CONFIG_SPI_SPIDEV=m")
    assert "CONFIG_EPOLL=y" in lines and "CONFIG_FUTEX=y" in lines
    # SPI_MASTER has no prompt (default SPI): a fragment cannot set it, and says so
    assert "CONFIG_SPI_MASTER=y" not in lines and "# CONFIG_SPI_MASTER has no prompt" in p.stdout
    assert frag_file.read_text() == p.stdout



def test_a_repeated_run_is_configured_from_every_run(tmp_path):
    """A bundle of several runs (baseline save, check) and a baseline (run 1's footprint, every run's
    measures): a Kconfig condition only a later run needed is in the view and the fragment."""
    from profiler.baseline import Baseline
    plain, spi = footprint(syscalls=["openat", "read"]), spi_footprint()
    bundle = tmp_path / "bundle"
    (bundle / "run-2").mkdir(parents=True)
    plain.save(bundle / "footprint.json")
    spi.save(bundle / "run-2" / "footprint.json")
    base = tmp_path / "base.json"
    base.write_text(json.dumps(Baseline("s", [measures(plain), measures(spi)], plain).to_dict()))
    for result in (bundle, base):
        p = kprof("config", result, "-f", "config", check=0)
        assert "CONFIG_SPI_SPIDEV=m" in p.stdout.splitlines(), result
    p = kprof("config", base, "-f", "json", check=0)
    uses = next(s for s in json.loads(p.stdout)["sections"] if s["title"].startswith("Every use"))["rows"]
    recorded = {r[3]: r[1] for r in uses if r[0] == "run"}
    only_spi = {r.condition for r in kc.needed_symbols(spi)} - {r.condition for r in kc.needed_symbols(plain)}
    assert recorded == dict.fromkeys(only_spi, "run 2") and "CONFIG_SPI_SPIDEV" in recorded

# ----------------------------------------------------------------------------- per arch

def test_syscall_availability_per_arch(tmp_path):
    fp = footprint(syscalls=["open", "mbind", "epoll_wait", "read"])
    rows, _ = kc.availability(fp, "aarch64")
    got = {r[0]: r[1] for r in rows}
    assert got["open"] == "absent" and got["epoll_wait"] == "absent"      # generic table: openat, epoll_pwait
    assert got["mbind"] == "configurable" and "read" not in got
    rows, _ = kc.availability(fp, "arm")
    assert {r[0]: r[1] for r in rows}["mbind"] == "never"                  # no NUMA on arm
    fp = footprint(syscalls=["seccomp", "execve"])
    _, feats = kc.availability(fp, "arm")
    assert {f[0]: f[2] for f in feats}["seccomp-filter"] == "ok"
    fp_path = tmp_path / "fp.json"
    footprint(syscalls=["open", "futex"]).save(fp_path)
    p = kprof("config", fp_path, "--arch", "riscv64", "-f", "json", check=0)
    avail = next(s for s in json.loads(p.stdout)["sections"] if s["title"].startswith("Syscall availability"))
    assert ["open", "absent"] == avail["rows"][[r[0] for r in avail["rows"]].index("open")][:2]


# ----------------------------------------------------------------------------- check / compare

def test_newly_needed_symbol_is_a_change():
    before = footprint(syscalls=["openat", "read"])
    after = footprint(syscalls=["openat", "read"], ioctls=[(SPI_IOC_MESSAGE_1, "/dev/spidev0.0")])
    d = diff([measures(before)], before, measures(after), after, rules_for(None))
    assert any(c.kind == "new" and c.category == "kconfig" and c.key == "CONFIG_SPI_SPIDEV" for c in d.changes)
    # a symbol only timing-dependent syscalls need (futex) comes and goes: a note, not a change
    later = footprint(syscalls=["openat", "read", "futex"])
    d = diff([measures(before)], before, measures(later), later, rules_for(None))
    assert not [c for c in d.changes if c.category == "kconfig"]
    assert any("CONFIG_FUTEX" in n for n in d.notes)
    # a baseline saved before the kconfig measure existed is not compared on it
    old = measures(before)
    del old["kconfig"]
    d = diff([old], before, measures(after), after, rules_for(None))
    assert not [c for c in d.changes if c.category == "kconfig"]
    assert any("predates the kconfig measure" in n for n in d.notes)
