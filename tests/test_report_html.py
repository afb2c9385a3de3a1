"""Reports people look at: the self-contained HTML report opened in real headless Chromium; kprof new/list."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from .conftest import IN_CI, ROOT, kprof, needs_oref0, needs_root, needs_strace

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not IN_CI,
                                    reason="chromium is not installed (./setup.sh installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(page, tmp_path, *extra):
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                           "--v=0", *extra, page.as_uri()], capture_output=True, text=True, timeout=120)


@needs_strace
@needs_oref0
@needs_root
@needs_chromium
def test_html_report_of_a_real_run_renders_in_chromium(tmp_path):
    bundle = tmp_path / "bundle"
    kprof("run", ROOT / "scenarios" / "determine-basal.yaml", "--out", bundle, "-q", check=0)
    page = tmp_path / "report.html"
    kprof("report", bundle, "-o", page, check=0)
    text = page.read_text()
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|<link\b|@import|url\(""", text, re.I)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-determine-basal.png"
    p = chromium(page, tmp_path, "--window-size=1280,2000", f"--screenshot={shot}")
    assert p.returncode == 0 and shot.stat().st_size > 10_000, p.stderr[-2000:]
    console = [line for line in p.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    dom = chromium(page, tmp_path, "--dump-dom").stdout
    assert dom.count('class="bar"') >= 8, "the subsystem chart has a bar per subsystem"
    assert "fs.io" in dom and "fs/read_write.c" in dom
    tables = re.findall(r'<table class="sortable">', dom)
    assert len(tables) >= 6
    for title in ("Kernel subsystems", "System calls", "ioctl requests", "Per executable", "Errors by errno"):
        assert f"<h2>{title}" in dom, title
    # the bundle has its own copy, identical in content
    assert (bundle / "report.html").read_text().count('class="bar"') == text.count('class="bar"')


def test_html_diff_rows_are_highlighted(tmp_path):
    from profiler.commands.pipeline import diff_report
    from profiler.compare import Change, Diff

    html = diff_report([("probe", Diff([Change("new", "program", "/bin/true", (0, 0), 1, by="/bin/sh (+1)")]),
                         "here")], "html", "kprof check")
    assert '<tr class="new">' in html and "/bin/true" in html


def test_one_renderer_per_format_and_the_format_from_the_file_name():
    from profiler.render import DIFF_FORMATS, FORMATS, guess_format, renderer
    from profiler.render.model import Report, Section

    report = Report("t", [("a", "b")], [Section("s", ["h"], [[1]])], ["w"])
    exts = {}
    for fmt in DIFF_FORMATS:
        r = renderer(fmt)
        assert r.name == fmt
        exts[fmt] = r.output_file_extension
        if fmt in FORMATS:
            assert "s" in r.render(report)
    assert exts == {"table": "txt", "markdown": "md", "json": "json", "html": "html", "junit": "xml"}
    for fmt in FORMATS:   # an output file named after a format's extension is guessed as that format
        assert guess_format(ROOT / f"report.{exts[fmt]}") == fmt
    assert guess_format(ROOT / "report.htm") == "html" and guess_format(ROOT / "report.xyz") == "table"
    assert guess_format(None, "json") == "json"


def test_html_style_and_script_are_package_data():
    from importlib import resources

    from profiler.render.html import render_html
    from profiler.render.model import Report

    files = resources.files("profiler.render") / "html_resources"
    css, js = (files / "report.css").read_text(), (files / "report.js").read_text()
    page = render_html(Report("t"))
    assert f"<style>{css}</style>" in page and f"<script>{js}</script>" in page
    package_data = (ROOT / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert '"render/html_resources/*"' in package_data   # a non-editable install has them too


@needs_strace
@needs_root
def test_new_scenario_validates_and_runs(tmp_path):
    kprof("new", "my-command", "--dir", tmp_path, "--command", "cat", "/etc/hostname", check=0)
    path = tmp_path / "my-command.yaml"
    kprof("validate", path, check=0)
    p = kprof("run", path, "--out", tmp_path / "b", check=0)
    assert "Kernel subsystems" in p.stdout
    assert "exists already" in kprof("new", "my-command", "--dir", tmp_path, check=2).stderr
    assert "lower-case" in kprof("new", "Bad Name", "--dir", tmp_path, check=2).stderr


def test_list_marks_missing_tools(tmp_path):
    shutil.copy(ROOT / "scenarios" / "determine-basal.yaml", tmp_path)
    (tmp_path / "needs-tool.yaml").write_text(
        "name: needs-tool\ndescription: d\ncommand: [kprof-missing-tool]\nrequires: [kprof-missing-tool]\n")
    rows = {r["scenario"]: r for r in __import__("json").loads(kprof("list", tmp_path, "-f", "json", check=0).stdout)}
    assert rows["needs-tool"]["runs here"].startswith("no: missing kprof-missing-tool")
    if shutil.which("node") and shutil.which("strace"):
        assert rows["determine-basal"]["runs here"].startswith("yes")
