"""kprof run on the shipped scenarios: real strace, real oref0 under real node, real network namespaces.

Ground truth: strace's own -C summary of the same run (the table at the end of trace.log, read here with a
regex of the test's own) must equal kprof's per-syscall call and error counts.
"""
from __future__ import annotations

import json
import re

import pytest

from profiler.footprint import Footprint

from .conftest import ROOT, SCENARIOS, assert_kconfig_explains, kprof, needs_oref0, needs_root, needs_strace

ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*(\w+)\s*$")


def strace_summary(log_text: str) -> dict[str, tuple[int, int]]:
    table = log_text[log_text.index("% time"):]
    out = {}
    for line in table.splitlines():
        m = ROW.match(line)
        if m and m.group(3) != "total":
            out[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    return out


@needs_strace
@needs_oref0
@needs_root
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario_runs_and_counts_equal_strace_summary(scenario, scenario_run):
    p, bundle = scenario_run(scenario)
    for name in ("scenario.yaml", "meta.json", "trace.log", "stdout.txt", "stderr.txt", "footprint.json",
                 "report.txt", "report.md"):
        assert (bundle / name).is_file(), name
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["runs"][0]["ok"], meta["runs"][0]["failures"]
    assert meta["isolation"].startswith("network namespace") or meta["network"] == "host"
    fp = json.loads((bundle / "footprint.json").read_text())
    # every syscall has a subsystem and a definition, or says why not
    for name, s in fp["syscalls"].items():
        assert s["subsystem"] != "unknown" or s["note"], name
        assert s["defined_in"] or s["note"], name
    # the report printed is the footprint's
    report = json.loads(p.stdout)
    titles = [s["title"] for s in report["sections"]]
    i = titles.index("Kernel subsystems")
    assert titles[i + 1] == "System calls"
    if meta.get("radio") == "spi":      # the rig's SPI radio path (pump-status, pump-spi-*)
        assert "Device-level footprint: /dev/spidev0.0 (SPI radio)" in titles
    elif "pump" in scenario.stem or scenario.stem == "set-temp-basal":
        assert "Device-level footprint: /dev/serial0" in titles
    if meta["backend"] == "strace":  # strace's summary is strace's: the ptrace backend has parity tests
        truth = strace_summary((bundle / "trace.log").read_text())
        assert truth, "no strace -C summary in trace.log"
        # strace -c counts a call when it returns: calls that never return (exit, exit_group, calls cut by
        # a kill) are in kprof's "unfinished" and not in strace's table
        mine = {n: (s["calls"] - s["unfinished"], sum(s["errors"].values())) for n, s in fp["syscalls"].items()
                if s["calls"] > s["unfinished"]}
        mine.pop("exit_group", None)
        truth.pop("exit_group", None)
        # a thread that dies inside a call (Go's futex waits at exit) leaves "= ?" in the log, but strace's
        # table may still count some of those, as calls and/or errors: at most that many more of each. A call
        # whose result strace printed as an errno past MAX_ERRNO (a dying task misread) is in its errors, not
        # in kprof's, which counts it as a call whose result was not read
        for n, (calls, errors) in list(truth.items()):
            row = fp["syscalls"].get(n, {})
            unknown, unread = row.get("unfinished", 0), row.get("unread", 0)
            if n in mine and 0 <= calls - mine[n][0] <= unknown and 0 <= errors - mine[n][1] <= unknown + unread:
                truth[n] = mine[n]
        assert mine == truth
    assert "node" in " ".join(fp["programs"]) or "simulator" in scenario.stem or fp["programs"]
    # kprof config (issue 18): every syscall, ioctl handler and device class of this footprint has a Kconfig
    # condition (or y), or says why not; in-process, on the bundle's own footprint.json
    assert assert_kconfig_explains(Footprint.load(bundle / "footprint.json")) > len(fp["syscalls"])


@needs_strace
@needs_oref0
@needs_root
def test_determine_basal_report_shows_the_real_oref0_result(tmp_path):
    bundle = tmp_path / "b"
    p = kprof("run", ROOT / "scenarios" / "determine-basal.yaml", "--out", bundle, check=0)
    out = p.stdout
    assert "Kernel subsystems" in out and "fs/read_write.c" in out and "ioctl requests" in out
    stdout = (bundle / "stdout.txt").read_text()
    suggestion = json.loads(stdout)
    assert "rate" in suggestion or "reason" in suggestion
    fp = json.loads((bundle / "footprint.json").read_text())
    assert any(p.endswith("/node") for p in fp["programs"]) or any("node" in e["exe"] or ""
                                                                   for e in fp["processes"] if e["exe"])
    assert "$WORKDIR/glucose.json" in fp["files"], "fixture reads are shown relative to the workdir"
    assert fp["network"] == {}, "determine-basal makes no network calls"
