"""Kernel modules: /proc/modules and lsmod parsing, ELISA's workload-vs-default table, the kernel config
(built in vs loadable) and saying plainly when it cannot be read."""
from __future__ import annotations

import gzip
import json
import os

import pytest

from profiler.errors import KprofError
from profiler.kernel import modules as km

from .test_ftrace_parse import kp

# ELISA's Raspberry Pi: lsmod while OpenAPS runs, and on the default system
LSMOD_OPENAPS = """Module                  Size  Used by
ecdh_generic           16384  1 bluetooth
ecc                    40960  1 ecdh_generic
spidev                 20480  2
i2c_bcm2835            16384  1
spi_bcm2835            20480  0
i2c_dev                20480  2
ipv6                  454656  26
bluetooth             389120  5 ecdh_generic
"""
LSMOD_DEFAULT = """Module                  Size  Used by
cmac                   16384  1
ecdh_generic           16384  2 bluetooth
ecc                    40960  1 ecdh_generic
ipv6                  454656  24
bluetooth             389120  5 ecdh_generic
"""
PROC_MODULES = """spidev 20480 2 - Live 0x0000000000000000
ecdh_generic 16384 1 bluetooth, Live 0x0000000000000000
ipv6 454656 26 [permanent], Live 0x0000000000000000
"""


def test_parse_lsmod_and_proc_modules():
    mods = km.parse_modules(LSMOD_OPENAPS)
    assert mods["ecdh_generic"] == km.Module("ecdh_generic", 16384, 1, ("bluetooth",))
    assert mods["spidev"].use_count == 2 and mods["spidev"].users == ()
    proc = km.parse_modules(PROC_MODULES)
    assert proc["ecdh_generic"].users == ("bluetooth",) and proc["ecdh_generic"].state == "Live"
    assert proc["ipv6"].users == () and proc["ipv6"].use_count == 26
    with pytest.raises(KprofError, match="neither /proc/modules nor lsmod"):
        km.parse_modules("hello world\n", "x.txt")
    with pytest.raises(KprofError, match="x.txt:2: not an lsmod line"):
        km.parse_modules("Module Size Used by\nspidev many 2\n", "x.txt")


def test_elisa_table_shape():
    rows = km.module_table(km.parse_modules(LSMOD_OPENAPS), km.parse_modules(LSMOD_DEFAULT))
    table = {r[0]: r[1:3] for r in rows}
    # exactly ELISA's published table
    assert table == {"cmac": ["not loaded", "1"], "ecdh_generic": ["1 (bluetooth)", "2 (bluetooth)"],
                     "ecc": ["1 (ecdh_generic)", "1 (ecdh_generic)"], "spidev": ["2", "not loaded"],
                     "i2c_bcm2835": ["1", "not loaded"], "spi_bcm2835": ["0", "not loaded"],
                     "i2c_dev": ["2", "not loaded"], "ipv6": ["26", "24"],
                     "bluetooth": ["5 (ecdh_generic)", "5 (ecdh_generic)"]}
    changes = {r[0]: r[3] for r in rows}
    assert changes["spidev"] == "loaded by the workload" and changes["cmac"] == "unloaded while the workload ran"
    assert changes["ipv6"] == "use count changed" and changes["bluetooth"] == ""
    assert {r[0] for r in rows[-2:]} == {"bluetooth", "ecc"}          # unchanged modules last


def test_kernel_config(tmp_path):
    text = "# comment\nCONFIG_MODULES=y\nCONFIG_SPI_SPIDEV=m\nCONFIG_I2C_CHARDEV=m\nCONFIG_IPV6=y\n" \
           "# CONFIG_CRYPTO_CMAC is not set\nCONFIG_LOCALVERSION=\"-v7l\"\n"
    plain = tmp_path / "config"
    plain.write_text(text)
    gz = tmp_path / "config.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    for p in (plain, gz):
        cfg = km.read_config(str(p))
        assert cfg.readable and cfg.modules_supported
        assert cfg.counts() == {"built in (=y)": 2, "loadable (=m)": 2, "not set": 1}
        assert cfg.options["CONFIG_CRYPTO_CMAC"] == "n"
    with pytest.raises(KprofError, match="not a kernel config"):
        bad = tmp_path / "bad"
        bad.write_text("hello\n")
        km.read_config(str(bad))
    nowhere = km.read_config(release="0.0.0-no-such-kernel") if not os.path.exists("/proc/config.gz") else \
        km.KernelConfig(None, note="kernel config not readable, so built-in vs loadable is unknown; looked at: x")
    if not nowhere.readable:
        assert "not readable" in nowhere.note and "built-in vs loadable is unknown" in nowhere.note


def test_cli_default_vs_workload(tmp_path):
    (tmp_path / "w.txt").write_text(LSMOD_OPENAPS)
    (tmp_path / "d.txt").write_text(LSMOD_DEFAULT)
    (tmp_path / "config").write_text("CONFIG_MODULES=y\nCONFIG_SPI_SPIDEV=m\n")
    (tmp_path / "modules.builtin").write_text("kernel/drivers/spi/spi-bcm2835aux.ko\nkernel/net/unix/unix.ko\n")
    p = kp("modules", "--default", tmp_path / "d.txt", "--workload", tmp_path / "w.txt", "--config",
           tmp_path / "config", "--builtin", tmp_path / "modules.builtin", "-f", "json", check=0)
    report = json.loads(p.stdout)
    [sec] = [s for s in report["sections"] if "ELISA" in s["title"]]
    rows = {r[0]: r for r in sec["rows"]}
    assert rows["spidev"][1:5] == ["2", "not loaded", "loaded by the workload", "loadable (loaded)"]
    assert "1 options built in (=y), 1 loadable (=m); CONFIG_MODULES=y" in report["facts"]["kernel config"]
    assert report["facts"]["built in"].startswith("2 modules")
    bad = tmp_path / "bad.txt"
    bad.write_text("not lsmod\n")
    p = kp("modules", "--default", bad, "--workload", tmp_path / "w.txt", check=2)
    assert "bad.txt:1" in p.stderr


def test_cli_this_machine():
    p = kp("modules", "-f", "json", check=0)
    report = json.loads(p.stdout)
    if os.path.exists("/proc/modules"):
        assert "loaded now" in report["facts"]
    else:                                   # a kernel without module support: said plainly
        assert any("no loadable module support" in w for w in report["warnings"])
    if not any(os.path.exists(c) for c in km.config_candidates()):
        assert any("kernel config not readable" in w for w in report["warnings"])
    else:
        assert "kernel config" in report["facts"]


def test_cli_with_a_recording(tmp_path):
    trace = tmp_path / "t.txt"
    trace.write_text("")
    (tmp_path / "t.txt.modules-before").write_text(PROC_MODULES.replace("spidev 20480 2 - Live 0x0000000000000000\n", ""))
    (tmp_path / "t.txt.modules-during").write_text(PROC_MODULES)
    meta = {"format": "kprof-ftrace-recording", "version": 1, "kernel_release": "6.1.21-v7+", "hostname": "rig",
            "command": ["oref0-pump-loop"], "modules": {"before": "t.txt.modules-before",
                                                        "during": "t.txt.modules-during", "during_at_s": 12.0},
            "kernel_config": {"copy": None}}
    (tmp_path / "t.txt.meta.json").write_text(json.dumps(meta))
    p = kp("modules", "--trace", trace, "-f", "json", check=0)
    report = json.loads(p.stdout)
    [sec] = [s for s in report["sections"] if "ELISA" in s["title"]]
    assert sec["rows"][0][:4] == ["spidev", "2", "not loaded", "loaded by the workload"]
    p = kp("modules", "--trace", tmp_path / "nometa.txt", check=2)
    assert "kprof ftrace record" in p.stderr
