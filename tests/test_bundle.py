"""Result bundles (profiler/bundle.py): meta.json typed as RunMeta, written byte for byte as kprof always has,
and the bundle's files found in one place."""
from __future__ import annotations

import json

import pytest

from profiler.bundle import ABSENT, Bundle, RunMeta, RunRecord, new_bundle_dir
from profiler.errors import KprofError
from profiler.scenario import load_scenario

from .conftest import ROOT

RUN = {"dir": ".", "exit": {"exit": 0}, "wall_seconds": 0.25, "timed_out": False, "interrupted": False,
       "left_running": [], "services": [], "parse_problems": [], "modules_loaded": {"loaded": [], "note": None},
       "summary_mismatches": [], "failures": [], "ok": True, "incomplete": False}
META = {"kprof_format": 1, "scenario": "pump-status", "scenario_file": "/x/pump-status.yaml", "description": "d",
        "command": ["oref0-mdt", "status"], "shell": False, "backend": "ptrace", "radio": "spi", "radio_fault": None,
        "inject": [], "network": "none", "arch": "x86_64", "kernel": "6.1.0", "machine": "x86_64",
        "started": "2026-01-01T00:00:00+00:00", "versions": {"kprof": "0.1.0"}, "oref0_tree": {"files": 1},
        "runs": [RUN], "pump_client": {"client": "kprof"}, "isolation": "host network"}


def test_meta_json_round_trips_byte_for_byte():
    text = json.dumps(META, indent=1) + "\n"
    meta = RunMeta.from_json(text)
    assert meta.to_json() == text
    assert meta.radio == "spi" and meta.strace_options is ABSENT and isinstance(meta.runs[0], RunRecord)
    # a strace run without a pump: no radio keys, strace_options written; unknown keys kept, after the known
    data = {k: v for k, v in META.items() if k not in ("radio", "radio_fault")}
    data = {**data, "strace_options": ["-f"], "workdirs": ["/tmp/w"], "future_key": 1}
    text = json.dumps(data, indent=1) + "\n"
    meta = RunMeta.from_json(text)
    assert meta.radio is ABSENT and meta.extra == {"future_key": 1}
    assert json.loads(meta.to_json()) == data


def test_the_outcome_is_typed_not_searched_for():
    meta = RunMeta.from_dict(META)
    assert (meta.outcome, meta.exit_status) == ("ok", 0)
    meta.runs[0].fail("injection rule 'read error=EIO' matched no call: nothing was injected")
    assert (meta.outcome, meta.exit_status) == ("failed", 1) and not meta.to_dict()["runs"][0]["ok"]
    meta.runs[0].incomplete = True
    assert meta.outcome == "incomplete"
    assert RunMeta().outcome == "incomplete"   # no run at all


def test_damaged_meta_json_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(KprofError, match="meta.json: damaged bundle meta.json"):
        Bundle(tmp_path).read_meta()
    (tmp_path / "meta.json").write_text('{"runs": 3}')
    with pytest.raises(KprofError, match="runs of the wrong type"):
        Bundle(tmp_path).read_meta()
    assert Bundle(tmp_path / "none").read_meta() is None


def test_bundle_files(tmp_path):
    b = Bundle.create(tmp_path / "b")
    assert b.path.is_absolute() and b.path.is_dir()
    assert b.run_dir(1) == b.path and b.run_dir(3) == b.path / "run-3"
    assert b.trace_path("strace").name == "trace.log" and b.trace_path("bpf", 2) == b.path / "run-2" / "trace.bpf.json"
    assert b.report_path("table").name == "report.txt" and b.report_path("json").name == "report.json"
    for d in ("", "run-10", "run-2"):
        (b.path / d).mkdir(exist_ok=True)
        (b.path / d / "footprint.json").write_text("{}")
    assert [p.parent.name for p in b.footprint_paths()] == ["b", "run-2", "run-10"]
    b.write_meta(RunMeta.from_dict(META))
    assert Bundle.open(b.path).read_meta().scenario == "pump-status"
    with pytest.raises(KprofError, match="not a result bundle"):
        Bundle.open(tmp_path)
    assert new_bundle_dir("x", tmp_path).name.startswith("x-")


def test_meta_for_a_scenario_has_the_keys_kprof_writes():
    sc = load_scenario(ROOT / "scenarios" / "pump-status.yaml")
    keys = list(RunMeta.for_scenario(sc, "none", "x86_64").to_dict())
    assert keys[:9] == ["kprof_format", "scenario", "scenario_file", "description", "command", "shell", "backend",
                        "radio", "radio_fault"]
    sc = load_scenario(ROOT / "scenarios" / "determine-basal.yaml")
    keys = list(RunMeta.for_scenario(sc, "none", "x86_64").to_dict())
    assert "radio" not in keys and keys[keys.index("inject") + 1] == "strace_options"
