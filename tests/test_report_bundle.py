"""`kprof report BUNDLE` renders the report `kprof run` printed; meta.json names the oref0 tree that ran."""
from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest

from .conftest import ROOT, kprof, needs_root, needs_strace
from .test_bad_input import no_traceback, scenario


@needs_strace
@needs_root
def test_report_of_a_bundle_is_what_run_printed(tmp_path):
    sc = scenario(tmp_path, "again", "cat /etc/hostname; ls /nonexistent 2>/dev/null; true", shell=True)
    bundle = tmp_path / "b"
    printed = kprof("run", sc, "--out", bundle, check=0).stdout
    assert "versions:" in printed and "cross-check:" in printed and "result:" in printed
    assert kprof("report", bundle, check=0).stdout == printed
    for fmt, name in (("markdown", "report.md"), ("html", "report.html")):
        assert kprof("report", bundle, "-f", fmt, check=0).stdout == (bundle / name).read_text(), fmt
    (bundle / "report.json").write_text('{"format": "kprof-report", "facts": 3}')
    p = kprof("report", bundle, check=2)
    no_traceback(p)
    assert "damaged report" in p.stderr


@needs_strace
@needs_root
def test_meta_names_the_oref0_tree(tmp_path):
    sc = scenario(tmp_path, "tree", "true", shell=True, network="host")
    kprof("run", sc, "--out", tmp_path / "pinned", "-q", check=0)
    pinned = json.loads((tmp_path / "pinned" / "meta.json").read_text())["oref0_tree"]
    lock = ROOT / "node_modules" / ".package-lock.json"
    version = json.loads((ROOT / "node_modules" / "oref0" / "package.json").read_text())["version"]
    assert pinned["path"] == str(ROOT / "node_modules" / "oref0") and pinned["version"] == version
    assert pinned["lockfile_sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    # a patched copy: same version and lockfile, other files
    copy = tmp_path / "nm"
    shutil.copytree(ROOT / "node_modules" / "oref0", copy / "oref0", symlinks=True)
    shutil.copy2(lock, copy / ".package-lock.json")
    target = next(p for p in sorted((copy / "oref0" / "lib").rglob("*.js")))
    target.write_text(target.read_text() + "\n// patched\n")
    kprof("run", sc, "--out", tmp_path / "patched", "-q", check=0, env={"KPROF_NODE_MODULES": str(copy)})
    patched = json.loads((tmp_path / "patched" / "meta.json").read_text())["oref0_tree"]
    assert patched["version"] == pinned["version"] and patched["lockfile_sha256"] == pinned["lockfile_sha256"]
    assert patched["files"] == pinned["files"] and patched["files_sha256"] != pinned["files_sha256"]
    assert patched["path"] == str(copy / "oref0")


@pytest.mark.parametrize("words", [["--netdev", "1"], ["--currentTime", "2024-01-01", "-x"]])
def test_new_accepts_commands_with_dash_arguments(tmp_path, words):
    p = kprof("new", "dashes", "--dir", tmp_path, "--command", "stress-ng", *words, check=0)
    no_traceback(p)
    text = (tmp_path / "dashes.yaml").read_text()
    assert f"command: {json.dumps(['stress-ng', *words])}" in text


@needs_strace
@needs_root
def test_unedited_skeleton_with_missing_inputs_is_not_as_expected(tmp_path):
    """`true` exits 0 whatever its arguments, as OpenAPS commands do when their input files are missing."""
    kprof("new", "skeleton", "--dir", tmp_path, "--command", "true", "iob.json", "profile.json", check=0)
    p = kprof("run", tmp_path / "skeleton.yaml", "--out", tmp_path / "b", check=1)
    assert "NOT as expected" in p.stdout and "TODO" in p.stdout
    kprof("new", "plain", "--dir", tmp_path, "--command", "true", "--flag", check=0)
    assert "NOT as expected" not in kprof("run", tmp_path / "plain.yaml", "--out", tmp_path / "c", check=0).stdout


def table_lines(text: str, fmt: str) -> list[str]:
    """The lines of the tables in a report: Markdown rows, or the blocks holding a '----  ---' rule."""
    if fmt == "markdown":
        return [line for line in text.splitlines() if line.startswith("|")]
    blocks = [b.splitlines() for b in text.split("\n\n")]
    return [line for b in blocks if any(re.fullmatch(r"-+(  -+)*", x) for x in b) for line in b
            if not re.fullmatch(r"-+", line) or len(b) < 3]


def test_terminal_and_markdown_tables_fit_100_columns(tmp_path):
    """An ioctl used on 60 devices (a 700-character cell) and kprof list: no table line over 100 columns;
    the JSON report keeps the whole list."""
    log = tmp_path / "ioctl.log"
    log.write_text("".join(f"1 1.{k:03d} ioctl(3</dev/pts/{k}<char 136:{k}>>, 0x5401, 0x7ffd0000) = 0 <0.000010>\n"
                           for k in range(60)))
    for fmt in ("table", "markdown"):
        out = kprof("analyze", log, "-f", fmt, check=0).stdout
        assert "TCGETS" in out
        wide = [line for line in table_lines(out, fmt) if len(line) > 100]
        assert table_lines(out, fmt) and not wide, wide[:3]
    report = json.loads(kprof("analyze", log, "-f", "json", check=0).stdout)
    row = next(s for s in report["sections"] if s["title"] == "ioctl requests")["rows"][0]
    devices = row[5] if isinstance(row[5], list) else row[5].split()
    assert devices == [f"/dev/pts/{k}" for k in sorted(range(60), key=str)]
    for fmt in ("table", "markdown"):
        out = kprof("list", ROOT / "scenarios", "-f", fmt, check=0).stdout
        assert max(map(len, table_lines(out, fmt))) <= 100


def test_section_builders_need_no_run():
    """The section builders are functions of a model: a footprint built here, no tracer, no command."""
    from profiler.events import SyscallEvent
    from profiler.footprint import FootprintBuilder
    from profiler.kernel import KERNEL_VERSION
    from profiler.render.sections import (diff_sections, footprint_facts, footprint_sections, footprint_warnings,
                                          variation_section)
    from profiler.compare import Change, Diff

    b = FootprintBuilder("x86_64")
    b.add(SyscallEvent(pid=10, name="io_uring_setup", args="8, 0x7ffd0000", result=3))
    b.add(SyscallEvent(pid=10, name="getpid", args="", result=10))
    fp = b.finish()
    titles = [s.title for s in footprint_sections(fp)]
    assert titles[:2] == ["Kernel subsystems", "System calls"]
    assert f"Kernel configuration (Linux {KERNEL_VERSION} Kconfig)" in titles
    assert dict(footprint_facts(fp))["arch"] == "x86_64"
    assert any("io_uring" in w for w in footprint_warnings(fp))
    assert variation_section([fp, fp]).rows == []
    facts, warnings, sections = diff_sections([("x", Diff([Change("new", "syscall", "getpid", (0, 0), 1)]), "here")])
    assert facts[0] == ("summary", "FAIL: 1 checked: 1 changed (x)") and sections[0].row_classes == ["new"]
