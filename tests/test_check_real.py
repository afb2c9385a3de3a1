"""kprof check on the shipped scenarios: no false alarm in a check of every one, and a real oref0 update
detected.

docs/regression.md reports what these found; if they change, that page must change too.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import IN_CI, ROOT, SCENARIOS, kprof, needs_oref0, needs_root, needs_strace, radio_lost, set_aside

pytestmark = [needs_strace, needs_oref0, needs_root]


# Scenarios whose one run takes 10 s or more by design: a silent pump's real radio timeouts (~13 s), a whole
# oref0-pump-loop iteration (~25 s). Their baselines and check are a test of their own, which a parallel suite
# runs beside the others' (tests/conftest.py: SHARED_WORKER).
SLOW = {"pump-no-response", "pump-spi-pump-silent", "pump-loop"}
KINDS = {"fast": [s for s in SCENARIOS if s.stem not in SLOW], "slow": [s for s in SCENARIOS if s.stem in SLOW]}
# scenarios side by side, each in its own namespaces, baselines and checks alike: the three slow ones all at
# once (two of them mostly wait for the radio's timeouts)
JOBS = {"fast": "2", "slow": "3"}
# of each baseline's three runs, the suite's shared runs of the scenario (tests/conftest.py: scenario_run): the
# first serves test_run and the parity tests too, the second of pump-loop test_pump_loop
SHARED = {"fast": 1, "slow": 2}


@pytest.fixture(scope="module")
def baselines(tmp_path_factory, request, scenario_run):
    """Baselines of three runs of each scenario of one kind (request.param: fast or slow): the suite's shared runs of
    the scenario (SHARED) and new ones. kprof baseline save takes the shared runs' bundles beside the scenario file."""
    from concurrent.futures import ThreadPoolExecutor

    kind = request.param
    tmp = tmp_path_factory.mktemp(f"baselines-{kind}")
    # first runs first: test_pump_loop asks for pump-loop's second first (made there when it starts beside this)
    wanted = [(path, n) for n in range(1, SHARED[kind] + 1) for path in KINDS[kind]]
    with ThreadPoolExecutor(int(JOBS[kind])) as pool:      # made here when no other test has yet
        shared = [bundle for _, bundle in pool.map(lambda w: scenario_run(*w), wanted)]
    p = save_each(kind, tmp, shared)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert p.stdout.count(": 3 runs,") == len(KINDS[kind]), p.stdout
    return kind, tmp


def _scenario(bundle) -> str:
    return json.loads((bundle / "meta.json").read_text())["scenario"]


def save_each(kind: str, tmp, shared: list):
    """kprof baseline save of one kind's scenarios: the suite's shared runs and new ones. When a new run lost a radio
    exchange (radio_lost), the save is made once more from the runs already made whole (their bundles: a save that
    stopped at a failed run made no baseline) and new runs of the other scenarios only, not all of them again."""
    results, repeat = tmp / "r", 3 - SHARED[kind]

    def save(*sources):
        return kprof("baseline", "save", *sources, "--repeat", str(repeat), "--dir", tmp / "b", "--results", results,
                     "-j", JOBS[kind], timeout=900)
    before = frozenset(results.iterdir()) if results.is_dir() else frozenset()
    p = save(*shared, *KINDS[kind])
    lost = radio_lost(results, before)
    if not lost:
        return p
    whole = []
    for b in sorted(set(results.iterdir()) - before - set(lost)):
        runs = json.loads((b / "meta.json").read_text())["runs"] if (b / "meta.json").is_file() else []
        if len(runs) == repeat and all(r.get("ok") is True for r in runs):
            whole.append(b)
    set_aside(lost, "kprof baseline save")
    done = {_scenario(b) for b in whole}
    return save(*shared, *whole, *(s for s in KINDS[kind] if s.stem not in done))


def check_each(kind: str, tmp):
    """kprof check of every scenario of one kind → {scenario: (its verdict, the check's exit status, its output)}. A
    scenario whose run lost a radio exchange (radio_lost) is checked once more on its own, not the whole kind again
    (the slow kind's check alone is ~25 s of the suite); a second loss is the test's to report."""
    results, todo, verdicts = tmp / "r", KINDS[kind], {}
    for again in (False, True):
        before = frozenset(results.iterdir()) if results.is_dir() else frozenset()
        p = kprof("check", *todo, "--baseline", tmp / "b", "--results", results, "-j", JOBS[kind], "-f", "json",
                  timeout=900)
        try:
            facts = json.loads(p.stdout)["facts"]
        except ValueError:
            facts = {}
        lost = {} if again else radio_lost(results, before)
        names = {_scenario(b) for b in lost}
        verdicts.update({s.stem: (facts.get(s.stem), p.returncode if not lost else None, p.stdout[-3000:] + p.stderr)
                         for s in todo if s.stem not in names})
        if not lost:
            return verdicts
        set_aside(lost, "kprof check")
        todo = [s for s in todo if s.stem in names]
    return verdicts


@pytest.mark.parametrize("baselines", ["fast", "slow"], indirect=True)
def test_no_false_alarm_in_a_check_of_every_scenario(baselines):
    """A fresh check of every shipped scenario against the baselines of three runs passes. Ten consecutive
    checks of each (issue 6) take ~5 minutes: docs/regression.md gives the command and what it printed."""
    kind, tmp = baselines
    assert len(KINDS["slow"]) == len(SLOW), "a slow scenario was renamed: update SLOW"
    verdicts = check_each(kind, tmp)
    assert sorted(verdicts) == sorted(s.stem for s in KINDS[kind])
    for name, (verdict, status, said) in verdicts.items():
        assert (verdict or "").startswith("no change"), f"{name}: {verdict}\n{said}"
        # None: a check that also held a run made again, whose exit status says nothing of this scenario
        assert status in (0, None), f"{name}: exit {status}\n{said}"
    assert any(status == 0 for _, status, _ in verdicts.values())


@pytest.fixture(scope="module")
def oref0_070(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oref070")
    p = subprocess.run(["npm", "install", "--prefix", str(tmp), "--no-audit", "--no-fund", "oref0@0.7.0"],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        if IN_CI:
            pytest.fail(f"npm install oref0@0.7.0 failed: {p.stderr[-2000:]}")
        pytest.skip("npm registry not reachable")
    return tmp / "node_modules"


@pytest.mark.parametrize("baselines", ["fast"], indirect=True)
def test_oref0_update_is_detected_and_explained(baselines, oref0_070):
    _, tmp = baselines
    wanted = [ROOT / "scenarios" / f"{n}.yaml" for n in ("determine-basal", "get-profile", "detect-sensitivity",
                                                         "simulator-step")]
    p = kprof("check", *wanted, "--baseline", tmp / "b", "--results", tmp / "r", "-f", "json",
              env={"KPROF_NODE_MODULES": str(oref0_070)}, timeout=600)
    assert p.returncode == 1, p.stderr
    report = json.loads(p.stdout)
    facts = report["facts"]
    assert facts["determine-basal"].startswith("no change")
    rows = {s["title"].split(":")[0]: [" ".join(map(str, r[:3])) for r in s["rows"]] for s in report["sections"]}
    assert "failed run not installed: oref0-simulator" in rows["simulator-step"]
    assert any("vanished file $NODE_MODULES/oref0/bin/oref0-shared-node-utils.js" in r for r in rows["get-profile"])
    assert "new file $WORKDIR/retrospective" in rows["detect-sensitivity"]
    assert any("oref0: 0.7.1 at the baseline, 0.7.0 now" in w for w in report["warnings"])
    # no new kernel subsystem, syscall or ioctl between the two versions (docs/regression.md says so)
    assert not [r for rs in rows.values() for r in rs if r.split()[1] in ("subsystem", "syscall", "ioctl")
                and r.split()[0] in ("new", "vanished")]
