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
from collections import Counter
from pathlib import Path

import pytest

from profiler.compare import diff, measures, rules_for
from profiler.footprint import Footprint, SyscallStat, new_use
from profiler.kernel import kconfig as kc
from profiler.kernel.devices import classify_path, device_classes
from profiler.kernel.syscalls import syscall_names

from .conftest import ROOT, kprof, needs_oref0, needs_root, needs_strace

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
    for f, fc in kc._files().items():
        r = files[f]
        assert (fc.condition, fc.literal, fc.kind) == (r["minimal_expression"], r["config_expression"], r["tristate"])
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
    for expected in ("CONFIG_SPI_SPIDEV", "CONFIG_I2C_CHARDEV", "CONFIG_GPIO_CDEV", "CONFIG_GPIO_SYSFS",
                     "CONFIG_HIDRAW", "CONFIG_USB_HIDDEV", "CONFIG_USB_ACM", "CONFIG_INPUT_EVDEV", "CONFIG_SERIAL_8250",
                     "CONFIG_INET", "CONFIG_IPV6", "CONFIG_UNIX", "CONFIG_PROC_FS", "CONFIG_SYSFS", "CONFIG_BINFMT_ELF",
                     "CONFIG_TTY", "CONFIG_BLOCK"):
        assert expected in conds, expected
    # platform drivers are listed, never required
    reqs = kc.requirements(uses)
    context = {r.condition for r in reqs if r.mode == "context"}
    assert "CONFIG_SPI_BCM2835" in context
    assert "CONFIG_SPI_BCM2835" not in {r.condition for r in kc.needed_symbols(fp)}


def test_path_rules_pick_the_driver_of_the_device():
    conds = {u.condition for u in kc.footprint_uses(footprint(devices=["/dev/ttyAMA0"]))}
    assert "CONFIG_SERIAL_AMBA_PL011" in conds and "CONFIG_SERIAL_8250" not in conds
    reqs = kc.needed_symbols(footprint(devices=["/dev/ttyUSB0"]))
    one_of = [r for r in reqs if r.mode == "one-of"]
    assert len(one_of) == 1 and "CONFIG_USB_SERIAL_FTDI_SIO" in one_of[0].condition
    assert "CONFIG_USB_SERIAL_CP210X" in one_of[0].condition
    # /dev/serial0 on a Pi is the PL011 or the mini UART; the emulated pump's is a pty (char 136:N)
    fp = footprint(devices=["/dev/serial0"])
    fp.devices["/dev/serial0"]["dev"] = "char 136:4"
    reqs = kc.needed_symbols(fp)
    assert [r.condition for r in reqs if r.mode == "one-of"] == [
        "CONFIG_SERIAL_8250_BCM2835AUX || CONFIG_SERIAL_AMBA_PL011"]
    stand_in = [u for u in kc.footprint_uses(fp) if "a pts device in this trace" in u.what]
    assert "drivers/tty/pty.c" in {u.file for u in stand_in}
    assert "CONFIG_SERIAL_CORE" in {r.condition for r in reqs}


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
def test_shipped_scenarios_every_use_named(tmp_path):
    """Two shipped scenarios run for real (the emulated pump on /dev/serial0, and oref0 under node)."""
    kprof("run", ROOT / "scenarios" / "pump-model.yaml", ROOT / "scenarios" / "calculate-iob.yaml",
          "--out", tmp_path, "-q", check=0)
    bundles = {b.name.rsplit("-", 2)[0]: b for b in tmp_path.iterdir() if b.is_dir()}
    assert set(bundles) == {"pump-model", "calculate-iob"}
    for name, bundle in bundles.items():
        report = json.loads(kprof("config", bundle, "-f", "json", check=0).stdout)
        uses = next(s for s in report["sections"] if s["title"].startswith("Every use"))["rows"]
        fp = Footprint.load(bundle / "footprint.json")
        assert {r[1] for r in uses if r[0] == "syscall"} == set(fp.syscalls)
        for kind, what, file, cond, note in uses:
            assert (cond != "(none)" and file) or note, (name, kind, what)
        needed = {r[0] for s in report["sections"] if s["title"] == "Kconfig symbols needed" for r in s["rows"]}
        assert {"CONFIG_FUTEX", "CONFIG_MMU"} <= needed, needed
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
