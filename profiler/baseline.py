"""Baselines: a scenario's footprint measured over several runs, with the versions it was measured on.

File: ``baselines/<scenario>.json``::

    {"format": "kprof-baseline", "version": 1, "scenario": NAME, "scenario_sha256": …, "created": …,
     "meta": {"arch", "kernel", "versions": {kprof, oref0, node, strace, python}},
     "runs": [measures of run 1, run 2, …],      # category → key → count (profiler.compare.measures)
     "footprint": footprint of run 1}             # for "which program did it"
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

from profiler.errors import KprofError
from profiler.footprint import Footprint, counts

FORMAT = "kprof-baseline"
VERSION = 1


@dataclass
class Baseline:
    scenario: str
    runs: list[dict]
    footprint: Footprint
    meta: dict = field(default_factory=dict)
    scenario_sha256: str | None = None
    created: str = ""

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "scenario": self.scenario,
                "scenario_sha256": self.scenario_sha256, "created": self.created, "meta": self.meta,
                "runs": self.runs, "footprint": self.footprint.to_dict()}

    @classmethod
    def from_dict(cls, data: dict, origin: str) -> "Baseline":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KprofError(f"{origin}: not a kprof baseline (no \"format\": \"{FORMAT}\")")
        version = data.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise KprofError(f"{origin}: baseline format version {version} is newer than this kprof understands "
                             f"({VERSION}): upgrade kprof, or save the baseline again with this one")
        try:
            runs = data["runs"]
            if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
                raise ValueError("'runs' is not a list of runs")
            runs = [{cat: counts(m, f"runs[{i}].{cat}") for cat, m in r.items()} for i, r in enumerate(runs)]
            meta = data.get("meta", {})
            if not isinstance(meta, dict):
                raise ValueError("'meta' is not a mapping")
            for key in ("versions", "oref0_tree", "tolerance", "pump_client"):   # read as mappings by check
                if meta.get(key) is not None and not isinstance(meta[key], dict):
                    raise ValueError(f"'meta.{key}' is not a mapping")
            for key in ("versions", "tolerance"):          # absent or null: none recorded
                if meta.get(key) is None:
                    meta[key] = {}
            for key in ("arch", "kernel", "kind"):
                if not isinstance(meta.get(key) or "", str):
                    raise ValueError(f"'meta.{key}' is not a string")
            if not isinstance(data["scenario"], str) or not isinstance(data.get("created", ""), str):
                raise ValueError("'scenario' or 'created' is not a string")
            return cls(scenario=data["scenario"], runs=runs,
                       footprint=Footprint.from_dict(data["footprint"], f"{origin} (footprint)"),
                       meta=meta, scenario_sha256=data.get("scenario_sha256"),
                       created=data.get("created", ""))
        except (KeyError, TypeError, ValueError) as e:
            raise KprofError(f"{origin}: damaged baseline ({type(e).__name__}: {e}); save it again with "
                             f"kprof baseline save") from None

    @classmethod
    def load(cls, path: Path) -> "Baseline":
        from profiler.errors import check_input
        if not Path(path).exists():
            raise KprofError(f"{path}: no baseline here: save one with kprof baseline save SCENARIO "
                             f"--dir {Path(path).parent}")
        check_input(path, "a baseline (JSON)")
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise KprofError(f"{path}: no baseline here: save one with kprof baseline save SCENARIO "
                             f"--dir {Path(path).parent}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise KprofError(f"{path}: cannot read baseline: {e}") from None
        except (ValueError, RecursionError) as e:
            raise KprofError(f"{path}: damaged baseline, not valid JSON ({e or 'nested too deeply'})") from None
        return cls.from_dict(data, str(path))

    def save(self, path: Path) -> None:
        from profiler.outfiles import output_dir, write_atomic
        output_dir(path.parent, bundle=False)
        write_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")  # never a half-written baseline


def baseline_path(directory: Path, scenario_name: str) -> Path:
    return Path(directory) / f"{scenario_name}.json"


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_meta(meta) -> dict:
    """What a baseline keeps of a bundle's meta.json (a dict, or a bundle's RunMeta): what the footprint was
    measured on."""
    if not isinstance(meta, dict):
        meta = meta.to_dict()
    return {"arch": meta.get("arch"), "kernel": meta.get("kernel"), "versions": meta.get("versions", {}),
            "network": meta.get("network"), "pump_client": meta.get("pump_client"),
            "oref0_tree": meta.get("oref0_tree")}
