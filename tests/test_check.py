"""Regression checks: baselines, kprof check, kprof compare — real runs, injected changes, bad baselines."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from .conftest import ROOT, kprof, needs_oref0, needs_root, needs_strace

BASE = "cat /etc/hostname > /dev/null"
INJECTED = {
    "device": (BASE + "; head -c 1 /dev/urandom > /dev/null", "new device: /dev/urandom"),
    "network": (BASE + "; exec 3<>/dev/tcp/127.0.0.1/9 || true", "new network: inet:127.0.0.1:9"),
    "program": (BASE + "; /bin/true", "new program: /bin/true"),
}


def scenario(directory, command, name="probe"):
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / f"{name}.yaml"
    p.write_text(f"name: {name}\ndescription: a small probe for kprof check\ncommand: {json.dumps(command)}\n"
                 f"shell: true\nrequires: [bash]\ntimeout: 20\n")
    return p


def bash(command):  # /dev/tcp needs bash, not dash
    return f"bash -c {json.dumps(command)}"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A baseline of the plain probe, saved once for the module (3 runs)."""
    tmp = tmp_path_factory.mktemp("check")
    base = scenario(tmp / "base", bash(BASE))
    p = kprof("baseline", "save", base, "--repeat", "3", "--dir", tmp / "baselines", "--results", tmp / "results",
              check=0)
    assert "saved" in p.stdout
    return tmp


@needs_strace
@needs_root
def test_unchanged_scenario_checks_clean(saved):
    p = kprof("check", saved / "base" / "probe.yaml", "--baseline", saved / "baselines", "--repeat", "3",
              "--results", saved / "results", check=0)
    assert "probe: no change" in p.stdout


@needs_strace
@needs_root
@pytest.mark.parametrize("what", sorted(INJECTED))
def test_injected_change_is_reported_with_exit_1(saved, what, tmp_path):
    command, message = INJECTED[what]
    variant = scenario(tmp_path / what, bash(command))
    p = kprof("check", variant, "--baseline", saved / "baselines", "--results", tmp_path / "r", "-f", "json",
              check=1)
    report = json.loads(p.stdout)
    changes = [f"{row[0]} {row[1]}: {row[2]}" for s in report["sections"] for row in s["rows"]]
    assert any(c.startswith(message) for c in changes), changes
    # the diff says which program did it
    row = next(r for s in report["sections"] for r in s["rows"] if f"{r[0]} {r[1]}: {r[2]}".startswith(message))
    assert row[-1], "no program named for the change"


@needs_strace
@needs_root
def test_junit_and_markdown_outputs(saved, tmp_path):
    command, message = INJECTED["program"]
    variant = scenario(tmp_path / "v", bash(command))
    out = tmp_path / "check.xml"
    kprof("check", variant, "--baseline", saved / "baselines", "--results", tmp_path / "r", "-f", "junit",
          "-o", out, check=1)
    root = valid_junit(out)
    failures = [f.get("message") for f in root.iter("failure")]
    assert any(m.startswith(message) for m in failures), failures
    assert root.find("testsuite").get("name") == "probe"
    p = kprof("check", variant, "--baseline", saved / "baselines", "--results", tmp_path / "r", "-f", "markdown",
              check=1)
    assert "| change" in p.stdout and "/bin/true" in p.stdout and "<" not in p.stdout.replace("<-", "")


@needs_strace
@needs_root
def test_compare_two_bundles(saved, tmp_path):
    runs = sorted((saved / "results").glob("probe-*"))
    p = kprof("compare", runs[0], runs[0] / "footprint.json", check=0)
    assert "no change" in p.stdout
    variant = scenario(tmp_path / "v", bash(INJECTED["device"][0]))
    kprof("run", variant, "--out", tmp_path / "b", "-q", check=0)
    p = kprof("compare", saved / "baselines" / "probe.json", tmp_path / "b", check=1)
    assert "/dev/urandom" in p.stdout


@needs_strace
@needs_root
def test_what_may_come_and_go_is_shown_as_a_note_in_every_format(saved, tmp_path):
    """An item the scenario's tolerance makes optional (here a new program and its file) is not a regression,
    and it is said (a warning line): a check that passes hides nothing it saw."""
    variant = scenario(tmp_path / "v", bash(INJECTED["program"][0]))
    variant.write_text(variant.read_text() + "tolerance: {optional: [program:/bin/true, file:/bin/true]}\n")
    args = ("check", variant, "--baseline", saved / "baselines", "--results", tmp_path / "r")
    notes = {fmt: kprof(*args, "-f", fmt, check=0).stdout for fmt in ("table", "markdown", "json")}
    said = "new program: /bin/true (1 calls)"
    for fmt, out in notes.items():
        assert "PASS: 1 checked: 1 without change" in out, (fmt, out)
        assert said in out and "(listed as optional: not a regression)" in out, (fmt, out)
    assert any(said in w for w in json.loads(notes["json"])["warnings"])


def test_compare_across_architectures_by_name(tmp_path):
    logs = {}
    for arch, nr_line in (("arm", "set_tls(0x76f3d4c0) = 0\n"), ("x86_64", "arch_prctl(0x1002, 0x7f) = 0\n")):
        log = tmp_path / f"{arch}.log"
        log.write_text('1 openat(AT_FDCWD</>, "/etc/hosts", O_RDONLY) = 3</etc/hosts>\n'
                       '1 read(3</etc/hosts>, "x", 1) = 1\n' + "1 " + nr_line)
        logs[arch] = tmp_path / f"{arch}.json"
        kprof("analyze", log, "--arch", arch, "--footprint", logs[arch], check=0)
    p = kprof("compare", logs["arm"], logs["x86_64"], check=1)
    assert "architectures differ (arm vs x86_64)" in p.stdout
    assert "set_tls" in p.stdout and "arch_prctl" in p.stdout
    assert " read " not in p.stdout.replace("|", " "), "read is the same on both: no change"


def baseline_bundle(saved):
    """The bundle of the runs the module's baseline was saved from: the first in its results (checks add theirs)."""
    return sorted((saved / "results").glob("probe-*"))[0]


@needs_strace
@needs_root
def test_a_baseline_from_runs_already_made_is_the_baseline_of_those_runs(saved, tmp_path):
    """kprof baseline save of the bundle the module's baseline was saved from (its three runs) saves that same
    baseline; beside new runs of the scenario file it adds its runs where it is given; a check against it is clean."""
    bundle = baseline_bundle(saved)
    want = json.loads((saved / "baselines" / "probe.json").read_text())
    kprof("baseline", "save", bundle, "--dir", tmp_path / "b1", "--results", tmp_path / "r", check=0)
    got = json.loads((tmp_path / "b1" / "probe.json").read_text())
    assert {k: v for k, v in got.items() if k != "created"} == {k: v for k, v in want.items() if k != "created"}
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir()), "nothing was to be run"
    p = kprof("baseline", "save", saved / "base" / "probe.yaml", bundle, "--repeat", "1", "--dir", tmp_path / "b2",
              "--results", tmp_path / "r", check=0)
    assert "4 runs" in p.stdout and str(bundle) in p.stdout, p.stdout
    both = json.loads((tmp_path / "b2" / "probe.json").read_text())
    assert len(both["runs"]) == 4 and both["runs"][1:] == want["runs"]
    kprof("check", saved / "base" / "probe.yaml", "--baseline", tmp_path / "b2", "--results", tmp_path / "r",
          check=0)


@needs_strace
@needs_root
@needs_oref0
def test_runs_a_baseline_cannot_take_exit_2_and_save_nothing(saved, tmp_path):
    import shutil
    bundle = baseline_bundle(saved)
    other = tmp_path / "other"
    kprof("run", saved / "base" / "probe.yaml", "--backend", "ptrace", "-q", "-o", other, check=0)
    failed = tmp_path / "failed"
    shutil.copytree(bundle, failed)
    meta = json.loads((failed / "meta.json").read_text())
    meta["runs"][1].update(ok=False, failures=["exit 1, expected 0"])
    (failed / "meta.json").write_text(json.dumps(meta))
    edited = tmp_path / "edited"
    shutil.copytree(bundle, edited)
    with open(edited / "scenario.yaml", "a") as f:
        f.write("# edited\n")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(bundle, elsewhere)
    meta = json.loads((elsewhere / "meta.json").read_text())
    meta["kernel"] = "5.10.0-other"
    (elsewhere / "meta.json").write_text(json.dumps(meta))
    aborted = tmp_path / "aborted"
    shutil.copytree(bundle, aborted)
    (aborted / "run-4").mkdir()          # kprof run stopped in its fourth run: meta.json holds three
    host = tmp_path / "host"
    kprof("run", saved / "base" / "probe.yaml", "--network", "host", "-q", "-o", host, check=0)
    fault = tmp_path / "fault"
    kprof("run", ROOT / "scenarios" / "determine-basal-enospc.yaml", "-q", "-o", fault, check=0)
    (tmp_path / "plain").mkdir()
    probe = saved / "base" / "probe.yaml"
    cases = {
        "another network": ([host], "run with --network host (the scenario: none)"),
        "the normal path": ([fault / "normal-path"], "without the faults determine-basal-enospc injects"),
        "a run begun, not recorded": ([aborted], "run-4 was begun but its run is not recorded"),
        "a bundle twice": ([bundle, bundle], "given twice"),
        "a file and another kernel's runs": ([probe, elsewhere], "measured on another kernel than"),
        "another backend": ([other], "run with --backend ptrace (the scenario: strace)"),
        "a failed run": ([failed], "not taking its runs into a baseline: failed (exit 1, expected 0)"),
        "another text": ([probe, edited], "its scenario.yaml is not the text of"),
        "another kernel": ([bundle, elsewhere], "measured on another kernel than"),
        "not a bundle": ([tmp_path / "plain"], "not a result bundle"),
        "a file twice": ([probe, probe], "given twice"),
    }
    for case, (sources, message) in cases.items():
        p = kprof("baseline", "save", *sources, "--dir", tmp_path / "b", "--results", tmp_path / "r", check=2)
        assert message in p.stderr and "Traceback" not in p.stderr, (case, p.stderr)
        assert not (tmp_path / "b").exists() and not (tmp_path / "r").exists(), case    # refused before any run
    kprof("baseline", "save", fault, "--dir", tmp_path / "b", "--results", tmp_path / "r", check=0)  # its fault path


def test_bad_baselines_exit_2_with_a_clear_message(tmp_path):
    sc = ROOT / "scenarios" / "determine-basal.yaml"
    cases = {
        "missing": (None, "no baseline here"),
        "garbage": ("{not json", "damaged baseline, not valid JSON"),
        "foreign": ('{"hello": 1}', "not a kprof baseline"),
        "newer": ('{"format": "kprof-baseline", "version": 99}', "newer than this kprof understands"),
        "damaged": ('{"format": "kprof-baseline", "version": 1, "scenario": "x"}', "damaged baseline"),
    }
    for case, (content, message) in cases.items():
        d = tmp_path / case
        d.mkdir()
        if content is not None:
            (d / "determine-basal.json").write_text(content)
        p = kprof("check", sc, "--baseline", d, check=2, cwd=tmp_path)
        assert message in p.stderr and "Traceback" not in p.stderr, (case, p.stderr)
        assert not (tmp_path / "kprof-results").exists(), case     # nothing ran: no results directory either


def test_baseline_from_another_arch_exits_2(tmp_path):
    log = tmp_path / "arm.log"
    log.write_text("1 getpid() = 1\n")
    fp = tmp_path / "fp.json"
    kprof("analyze", log, "--arch", "aarch64", "--footprint", fp, check=0)
    baseline = {"format": "kprof-baseline", "version": 1, "scenario": "determine-basal",
                "meta": {"arch": "aarch64"}, "runs": [{"syscall": {"getpid": 1}}],
                "footprint": json.loads(fp.read_text())}
    (tmp_path / "determine-basal.json").write_text(json.dumps(baseline))
    p = kprof("check", ROOT / "scenarios" / "determine-basal.yaml", "--baseline", tmp_path, check=2, cwd=tmp_path)
    assert "recorded on aarch64" in p.stderr and not (tmp_path / "kprof-results").exists()
    # another scenario's baseline under this one's name, and a workload's: nothing is compared, exit 2
    for change, said in (({"scenario": "get-profile"}, "the baseline of 'get-profile', not scenario 'determine-basal'"),
                         ({"meta": {"arch": "aarch64", "kind": "workload"}}, "a workload's baseline, not scenario")):
        (tmp_path / "determine-basal.json").write_text(json.dumps({**baseline, **change}))
        p = kprof("check", ROOT / "scenarios" / "determine-basal.yaml", "--baseline", tmp_path, check=2, cwd=tmp_path)
        assert said in p.stderr and "Traceback" not in p.stderr, p.stderr


def valid_junit(path):
    """The file validates against the JUnit schema written down from Jenkins xunit's junit-10.xsd."""
    from lxml import etree
    schema = etree.XMLSchema(etree.parse(str(ROOT / "tests" / "data" / "junit-10.xsd")))
    doc = etree.parse(str(path))
    assert schema.validate(doc), schema.error_log
    return ET.parse(path).getroot()


def test_junit_schema_rejects_what_ci_cannot_read(tmp_path):
    """The schema file is not a formality: a suite without errors= or time= does not validate."""
    from lxml import etree
    schema = etree.XMLSchema(etree.parse(str(ROOT / "tests" / "data" / "junit-10.xsd")))
    for attrs in ('tests="1" failures="0" time="0"', 'tests="1" failures="0" errors="0"'):
        doc = etree.fromstring(f'<testsuites><testsuite name="x" {attrs}><testcase name="c"/></testsuite>'
                               f'</testsuites>')
        assert not schema.validate(doc)


@needs_strace
@needs_root
def test_junit_when_a_run_fails_and_a_baseline_is_missing(saved, tmp_path):
    """A run failing its expectations is a <failure>; a scenario without baseline an <error>; both in one valid
    file, with the clean scenario still checked; summary first and the failed run first among the changes."""
    failing = scenario(tmp_path / "v", bash(BASE + "; /bin/true; exit 3"))
    orphan = scenario(tmp_path / "o", bash(BASE), name="nobaseline")
    out = tmp_path / "check.xml"
    p = kprof("check", failing, orphan, saved / "base" / "probe.yaml", "--baseline", saved / "baselines",
              "--results", tmp_path / "r", "-f", "junit", "-o", out, check=2)
    assert "Traceback" not in p.stderr and "nobaseline" in p.stderr
    root = valid_junit(out)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["probe", "nobaseline", "probe"]
    assert root.get("errors") == "1" and suites[1].get("errors") == "1"
    assert "no baseline" in suites[1].find("testcase/error").get("message")
    run_case = suites[0].find("testcase[@name='run footprint']")
    assert run_case.find("failure").get("message").startswith("run failed: exit status 3, expected 0")
    assert suites[2].get("failures") == "0", "the scenario after the missing baseline was still checked"
    p = kprof("check", failing, orphan, "--baseline", saved / "baselines", "--results", tmp_path / "r", check=2)
    lines = p.stdout.splitlines()
    assert lines[2].startswith("summary: FAIL: 2 checked: 1 error(s) (nobaseline), 1 failed run(s) (probe)"), lines
    table = p.stdout[p.stdout.index("probe: what changed"):]
    assert table.index("failed") < table.index("new"), "the failed run comes before the new program"


def test_a_timing_errno_of_a_32_bit_call_is_timing_dependent_too():
    """A compat task's error key carries its ABI ("futex (i386) EAGAIN", "read (i386) EINTR"): its errno is the
    last word, so a timing errno there comes and goes as a note, like a 64-bit one."""
    from profiler.compare import _timing, rules_for
    rules = rules_for(None)
    assert _timing(rules, "error", "read (i386) EINTR") and _timing(rules, "error", "read EAGAIN")
    assert not _timing(rules, "error", "openat (i386) ENOENT") and _timing(rules, "syscall", "futex (i386)")


def test_an_errno_no_kernel_returns_in_an_old_baseline_comes_and_goes_as_a_note():
    """Before 2026-12-07 kprof counted strace's "-1 (errno 18446744073709551602)" (a task killed at a call's exit,
    its result misread) as an error: a baseline saved then still has it. Its vanishing is a note; an unnamed
    errno the kernel can return (41) is still a change."""
    from collections import Counter

    from profiler.compare import diff, measures, rules_for
    from profiler.footprint import Footprint, SyscallStat

    def fp(errors):
        f = Footprint(arch="x86_64")
        f.syscalls["rt_sigprocmask"] = SyscallStat(40, Counter(errors))
        f.syscalls["read"] = SyscallStat(5, Counter())
        return f
    now = fp({})
    for errno, change in (("errno 18446744073709551602", False), ("errno 41", True), ("EFAULT", True)):
        base = fp({errno: 1})
        d = diff([measures(base)], base, measures(now), now, rules_for(None))
        changed = [c.message for c in d.changes if c.category == "error"]
        assert bool(changed) == change, (errno, changed, d.notes)
        if not change:
            assert any("errno 18446744073709551602" in n and "timing-dependent" in n for n in d.notes), d.notes


def test_a_subsystem_entered_only_by_timing_dependent_syscalls_may_come_and_go():
    """A Go client that gives up early may exit before its runtime sleeps (nanosleep, the time subsystem's only
    call there): a note. A subsystem with any other call that vanishes is a change, even with a sleep in it."""
    from collections import Counter

    from profiler.compare import diff, measures, rules_for
    from profiler.footprint import Footprint, SyscallStat

    def fp(*names):
        f = Footprint(arch="x86_64")
        for n in names:
            f.syscalls[n] = SyscallStat(2, Counter())
        return f
    base, now = fp("openat", "read", "nanosleep"), fp("openat", "read")
    time_sub = next(r["subsystem"] for r in base.subsystem_rows() if r["syscalls"] == ["nanosleep"])
    d = diff([measures(base)], base, measures(now), now, rules_for(None))
    assert not [c for c in d.changes if c.category == "subsystem"], [c.message for c in d.changes]
    assert any(time_sub in n and "timing-dependent" in n for n in d.notes), d.notes
    d = diff([measures(now)], now, measures(base), base, rules_for(None))        # and when it appears
    assert not [c for c in d.changes if c.category == "subsystem"]
    base, now = fp("openat", "read", "nanosleep", "timer_settime"), fp("openat", "read")
    assert {"nanosleep", "timer_settime"} <= set(next(r["syscalls"] for r in base.subsystem_rows()
                                                  if r["subsystem"] == time_sub)), "timer_settime moved"
    d = diff([measures(base)], base, measures(now), now, rules_for(None))
    assert any(c.kind == "vanished" and c.category == "subsystem" and c.key == time_sub for c in d.changes)


def test_a_file_that_now_fails_is_a_change_though_the_error_total_stays_in_its_band():
    """Errors are compared per file, device, program and destination too: a settings file that opened in the
    baseline and now fails with ENOENT is a change (the syscall's ENOENT total, 40 → 41, stays in its band);
    a timing errno on a device may come and go (a note); a scenario that ignores or makes optional a file
    does so for its errors too; a baseline saved before this measure is not compared on it (a note)."""
    from collections import Counter

    from profiler.compare import diff, measures, rules_for
    from profiler.footprint import Footprint, SyscallStat, new_use

    def fp(settings_error=None, serial_error=None):
        f = Footprint(arch="x86_64")
        f.syscalls["openat"] = SyscallStat(50, Counter({"ENOENT": 40 + bool(settings_error)}))
        f.files["/etc/openaps/settings.json"] = new_use(calls=1, syscalls=Counter(openat=1),
                                                        errors=Counter({settings_error: 1} if settings_error else {}),
                                                        by=Counter({"/usr/bin/node": 1}))
        f.devices["/dev/serial0"] = new_use(calls=9, syscalls=Counter(read=9), errors=Counter(
            {serial_error: 2} if serial_error else {}), **{"class": "serial", "dev": "char 4:64"})
        return f
    base, now = fp(), fp(settings_error="ENOENT")
    d = diff([measures(base)], base, measures(now), now, rules_for(None))
    assert [c.message for c in d.changes] == [
        "new file error: /etc/openaps/settings.json ENOENT (1 calls) — by /usr/bin/node (+1)"], d.changes
    d = diff([measures(now)], now, measures(base), base, rules_for(None))       # and when it works again
    assert [(c.kind, c.category, c.key) for c in d.changes] == [("vanished", "file error",
                                                                 "/etc/openaps/settings.json ENOENT")]
    flaky = fp(serial_error="EAGAIN")
    d = diff([measures(base)], base, measures(flaky), flaky, rules_for(None))
    assert not d.changes and any("new device error: /dev/serial0 EAGAIN" in n for n in d.notes), d.notes
    for rules in ({"ignore": ["file:/etc/openaps/settings.json"]}, {"ignore": ["file"]},
                  {"optional": ["file:/etc/openaps/settings.json"]}):
        d = diff([measures(base)], base, measures(now), now, rules_for(rules))
        assert not [c for c in d.changes if c.category == "file error"], (rules, d.changes)
    old = {k: v for k, v in measures(base).items() if not k.endswith(" error") or k == "error"}
    d = diff([old], base, measures(now), now, rules_for(None))
    assert not d.changes and any("predates the file error measure" in n for n in d.notes), d.notes
    d = diff([measures(now)], now, old, base, rules_for(None))       # kprof compare NEW OLD-BASELINE
    assert not [c for c in d.changes if c.category.endswith(" error") and c.category != "error"], d.changes
    # an errno without a name ("errno 41", errno_name's form) is one word of the key, like ENOENT
    odd = fp(settings_error="errno 41")
    d = diff([measures(base)], base, measures(odd), odd, rules_for({"ignore": ["file:/etc/openaps/settings.json"]}))
    assert not [c for c in d.changes if c.category == "file error"], d.changes
    d = diff([measures(base)], base, measures(odd), odd, rules_for({"timing_errors": ["errno 41"]}))
    assert not d.changes, d.changes


def _fp(calls: dict, errors: dict | None = None, served: dict | None = None, programs: dict | None = None):
    """A footprint of these syscall counts ({name: calls}), errors ({name: {errno: n}}), served calls
    ({name: n}) and per-program calls ({exe: {name: calls}})."""
    from collections import Counter

    from profiler.footprint import Footprint, SyscallStat
    f = Footprint(arch="x86_64")
    for name in {*calls, *(served or {})}:
        f.syscalls[name] = SyscallStat(calls.get(name, 0), Counter((errors or {}).get(name, {})),
                                       served=(served or {}).get(name, 0))
    for pid, (exe, counts) in enumerate((programs or {}).items(), 1):
        f.processes[pid] = {"images": [{"exe": exe, "syscalls": Counter(counts)}]}
    return f


def _changes(base, now, rules=None) -> tuple[list[str], list[str]]:
    from profiler.compare import diff, measures, rules_for
    d = diff([measures(base)], base, measures(now), now, rules_for(rules))
    return [c.message for c in d.changes], d.notes


def test_a_timing_syscall_that_comes_or_goes_is_still_held_to_its_band():
    """A timing-dependent syscall may appear or vanish between runs (a note), but its count is still checked:
    a new nanosleep of 10,000 calls, or a futex of 5,000 calls at the baseline that vanishes, is a change (its
    band, ×5 + 60, says by how much); a few sleeps more or a rare futex gone are notes."""
    base = _fp({"openat": 5, "read": 5, "futex": 5000})
    changes, notes = _changes(base, _fp({"openat": 5, "read": 5, "futex": 5000, "nanosleep": 10000}))
    assert "new syscall: nanosleep (10000 calls; allowed 0–60)" in changes, (changes, notes)
    changes, notes = _changes(base, _fp({"openat": 5, "read": 5, "futex": 5000, "nanosleep": 10}))
    assert not changes and any("new syscall: nanosleep (10 calls) (timing-dependent" in n for n in notes), notes
    changes, notes = _changes(base, _fp({"openat": 5, "read": 5}))
    assert "vanished syscall: futex (baseline 5000, now 0; allowed 940–25060)" in changes, (changes, notes)
    changes, notes = _changes(_fp({"openat": 5, "futex": 20}), _fp({"openat": 5}))
    assert not changes and any("vanished syscall: futex" in n for n in notes), (changes, notes)


def test_a_new_error_of_a_timing_syscall_is_a_change_unless_its_errno_is_a_timing_one():
    """futex and wait4 are timing-dependent, which makes their counts vary, not their failures: a futex that now
    fails EINVAL is a change; one that fails EAGAIN (a timing errno) a note. A scenario's own timing_syscalls
    (get-ns-entries declares read and write) widen counts, and do not hide a write that now fails EBADF. A call
    whose result is not its own (rt_sigreturn) may fail with any errno."""
    base = _fp({"futex": 50, "write": 9})
    changes, notes = _changes(base, _fp({"futex": 50, "write": 9}, {"futex": {"EINVAL": 1}}))
    assert changes == ["new error: futex EINVAL (1 calls)"], (changes, notes)
    changes, notes = _changes(base, _fp({"futex": 50, "write": 9}, {"futex": {"EAGAIN": 3}}))
    assert not changes and any("new error: futex EAGAIN" in n for n in notes), (changes, notes)
    changes, notes = _changes(base, _fp({"futex": 50, "write": 9}, {"write": {"EBADF": 1}}),
                              {"timing_syscalls": ["read", "write"]})
    assert changes == ["new error: write EBADF (1 calls)"], (changes, notes)
    changes, notes = _changes(base, _fp({"futex": 50, "write": 30}), {"timing_syscalls": ["read", "write"]})
    assert not changes, changes          # its count in the timing band: 9 → 30
    # rt_sigreturn's result is the interrupted code's register (a handler that ran just after a failed openat): any
    # errno of it may come and go (the ptrace backend's parity run of get-ns-entries met rt_sigreturn ENOENT)
    changes, notes = _changes(_fp({"rt_sigreturn": 4}), _fp({"rt_sigreturn": 4}, {"rt_sigreturn": {"ENOENT": 1}}))
    assert not changes and any("new error: rt_sigreturn ENOENT" in n for n in notes), (changes, notes)


def test_an_error_is_blamed_on_a_program_only_when_it_alone_makes_the_call():
    """A footprint keeps a syscall's errors, not which program got them: with node and the shell both reading,
    a new read EIO names neither (node's 10 more good reads say nothing of it); with the shell alone reading,
    it is the shell's."""
    base = _fp({"read": 13}, programs={"/bin/sh": {"read": 3}, "/usr/bin/node": {"read": 10}})
    now = _fp({"read": 23}, {"read": {"EIO": 1}}, programs={"/bin/sh": {"read": 3}, "/usr/bin/node": {"read": 20}})
    changes, _ = _changes(base, now)
    assert "new error: read EIO (1 calls)" in changes, changes
    alone = _fp({"read": 3}, programs={"/bin/sh": {"read": 3}})
    changes, _ = _changes(alone, _fp({"read": 3}, {"read": {"EIO": 1}}, programs={"/bin/sh": {"read": 3}}))
    assert changes == ["new error: read EIO (1 calls) — by /bin/sh"], changes


def test_calls_an_emulated_device_served_are_compared_whatever_the_syscall():
    """Served calls other than ioctls (Go's epoll_ctl on the emulated GPIO files) are compared under served: gone,
    or a hundred times as many, is a change."""
    base = _fp({"read": 5}, served={"epoll_ctl": 8})
    changes, _ = _changes(base, _fp({"read": 5}))
    assert "vanished served: epoll_ctl (baseline 8, now 0)" in changes, changes
    assert not [c for c in changes if "subsystem" in c], changes      # the kernel ran none of them
    changes, _ = _changes(base, _fp({"read": 5}, served={"epoll_ctl": 800}))
    assert changes == ["served epoll_ctl: 800, baseline 8 (allowed 0–100)"], changes
    assert _changes(base, _fp({"read": 5}, served={"epoll_ctl": 9})) == ([], [])


def test_kernel_modules_are_compared_only_where_a_run_recorded_them():
    """A run's record says which modules it made the kernel load; a footprint.json alone, or a run whose
    /proc/modules could not be read, says nothing: not "none loaded" (no vanished module), a note instead."""
    from profiler.compare import diff, rules_for, run_measures
    fp = _fp({"socket": 1})
    none, sctp = {"loaded": [], "note": None}, {"loaded": ["sctp"], "note": None}
    d = diff([run_measures(fp, none)], fp, run_measures(fp, sctp), fp, rules_for(None))
    assert [c.message for c in d.changes] == ["new module: sctp (1 calls)"], d.changes
    for unknown in (None, {"loaded": [], "note": "/proc/modules: not readable"}):
        d = diff([run_measures(fp, sctp)], fp, run_measures(fp, unknown), fp, rules_for(None))
        assert not d.changes and any("modules not compared" in n for n in d.notes), (unknown, d.changes, d.notes)


@needs_strace
@needs_root
def test_compare_reads_every_run_of_b_and_its_modules(saved, tmp_path):
    """kprof compare A B compares each of B's runs with A (a change in B's second run is found, not only its
    first), and the kernel modules B's runs loaded, from B's meta.json."""
    import shutil
    first = sorted((saved / "results").glob("probe-*"))[0]      # the baseline's first bundle: 3 runs
    b = tmp_path / "b"
    shutil.copytree(first, b)
    def changes(a):
        report = json.loads(kprof("compare", a, b, "-f", "json", check=None).stdout)
        return [f"{row[0]} {row[1]}: {row[2]}" for s in report["sections"] for row in s["rows"]]
    assert changes(saved / "baselines" / "probe.json") == []
    fp = json.loads((b / "run-2" / "footprint.json").read_text())
    fp["devices"]["/dev/urandom"] = {**next(iter(fp["devices"].values())), "calls": 1, "errors": {}}
    (b / "run-2" / "footprint.json").write_text(json.dumps(fp))
    assert changes(saved / "baselines" / "probe.json") == ["new device: /dev/urandom"]
    shutil.copy(first / "run-2" / "footprint.json", b / "run-2" / "footprint.json")
    a = tmp_path / "a"                  # (a kernel with loadable modules; this one may have none)
    shutil.copytree(first, a)
    for bundle, loaded in ((a, []), (b, ["sctp"])):
        meta = json.loads((bundle / "meta.json").read_text())
        for i, run in enumerate(meta["runs"]):
            run["modules_loaded"] = {"loaded": loaded if i == 1 else [], "note": None}
        (bundle / "meta.json").write_text(json.dumps(meta))
    assert changes(a) == ["new module: sctp"]
    assert kprof("compare", a, b, check=1).returncode == 1
