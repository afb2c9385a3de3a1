"""Damaged and hostile inputs: deep YAML, NaN where a number belongs, a bad errno, damaged baselines,
footprints and bundles, a device as input, a huge Nightscout count, ftrace analyze on a strace log.
Each is one message and exit 2 (the CLI's output is grepped for a traceback), never a crash or a hang."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT, kprof
from .test_bad_input import no_traceback

SCENARIO = 'name: {name}\ndescription: x\ncommand: ["true"]\n'
LOG = '1 1.0 openat(-100</>, "/etc/hosts", 0x80000) = 3</etc/hosts> <0.1>\n1 1.1 close(3</etc/hosts>) = 0 <0.1>\n'


def one_message(p, *words):
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    no_traceback(p)
    assert all(w in p.stderr for w in words), p.stderr


@pytest.mark.parametrize("body,words", [
    ("x: " + "[" * 300 + "]" * 300 + "\n", ["nested too deeply"]),
    ("x: " + "{a: " * 300 + "1" + "}" * 300 + "\n", ["missing required key"]),
    ("timeout: .nan\n", ["timeout: must be a finite number"]),
    ("timeout: .inf\n", ["timeout: must be a finite number"]),
    ("inject: [{syscall: read, error: EFOO}]\n", ["inject[0].error: 'EFOO' is not an errno name"]),
    # the kernel's execve cannot pass these: a ValueError traceback and a partial bundle before
    ('env: {"A=B": x}\n', ["env: 'A=B': an environment variable's name holds no '='"]),
    ('env: {A: "x\\0y"}\n', ["env.A: 'x\\x00y'", "NUL"]),
    ('prepare: ["tr\\0ue"]\n', ["prepare[0]: 'tr\\x00ue'", "NUL"]),
    # injection rules strace refuses: said before the run (they ran the command, then strace refused them)
    ("inject: [{syscall: [], error: EIO}]\n", ["inject[0]: syscall: name at least one syscall"]),
    ("inject: [{syscall: read, retval: 99999999999999999999999}]\n", ["inject[0]: retval", "out of range"]),
    ("inject: [{syscall: read, error: EIO, when: '5..2'}]\n", ["inject[0]: when: '5..2': the last call"]),
    ("inject: [{syscall: read, error: EIO, when: '70000'}]\n", ["inject[0]: when: '70000'", "1 to 65534"]),
    ("inject: [{syscall: read, error: EIO, retval: 1}]\n", ["inject[0]: error or retval, not both"]),
], ids=["deep-list", "deep-map", "nan-timeout", "inf-timeout", "bad-errno", "env-name", "env-nul", "prepare-nul",
        "inject-no-syscall", "inject-retval", "inject-when-order", "inject-when-range", "inject-both"])
def test_bad_scenarios_are_one_message(tmp_path, body, words):
    f = tmp_path / "bad.yaml"
    f.write_text((SCENARIO.format(name="bad") + body) if not body.startswith("x:") else body)
    one_message(kprof("validate", f), *words)
    one_message(kprof("run", f, "-o", tmp_path / "b"), *words)


def test_device_as_input_is_refused_before_reading(tmp_path):
    trace = tmp_path / "t.txt"
    trace.write_text("          node-1234  [000] .... 1.000000: sys_enter: NR 3 (3, 0, 0, 0, 0, 0)\n")
    for args, what in ((["validate", "/dev/zero"], "not a scenario file"), (["analyze", "/dev/zero"], "/dev/zero: "),
                       (["report", "/dev/zero"], "a device"), (["compare", "/dev/zero", "/dev/zero"], "a device"),
                       (["ftrace", "analyze", "/dev/zero"], "a device, not an ftrace text file"),
                       # options naming a file to read: read whole, /dev/zero filled the machine's memory (24 GB)
                       (["ftrace", "analyze", trace, "--arch", "arm", "--syscall-table", "/dev/zero"],
                        "a device, not an 'ausyscall --dump' file"),
                       (["modules", "--default", "/dev/zero"], "a device, not an lsmod"),
                       (["modules", "--config", "/dev/zero"], "a device, not a kernel config"),
                       (["modules", "--builtin", "/dev/zero"], "a device, not a modules.builtin list"),
                       (["config", tmp_path / "none.json", "--check", "/dev/zero"], "a device, not a kernel config"),
                       (["pump", "serve", "--config", "/dev/zero"], "a device, not a --config file")):
        p = kprof(*args, timeout=60)
        one_message(p, what)



def test_a_fifo_scenario_is_refused_and_a_piped_log_is_read_once(tmp_path):
    """A scenario file that is a FIFO: refused (opening it waited for a writer, for ever). A strace log on a
    pipe (/dev/stdin) is read once, by the analysis (a first look at its head used to eat it: 'no strace events')."""
    import os
    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)
    for cmd in ("validate", "run"):
        one_message(kprof(cmd, fifo, timeout=30), "not a regular file, not a scenario file")
    subprocess.run(["strace", "-f", "-C", "-o", str(tmp_path / "t.log"), "true"], check=True)
    with open(tmp_path / "t.log") as log:
        p = subprocess.run([sys.executable, "-m", "profiler", "analyze", "/dev/stdin", "-f", "json"], stdin=log,
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["facts"]["cross-check"].startswith("per-syscall calls and errors equal")

def test_list_goes_on_past_a_bad_file(tmp_path):
    (tmp_path / "deep.yaml").write_text("x: " + "[" * 300 + "]" * 300 + "\n")
    (tmp_path / "nan.yaml").write_text(SCENARIO.format(name="nan") + "timeout: .nan\n")
    (tmp_path / "good.yaml").write_text(SCENARIO.format(name="good"))
    p = kprof("list", tmp_path, "-f", "json", check=0)
    no_traceback(p)
    rows = {r["scenario"]: r["runs here"] for r in json.loads(p.stdout)}
    assert rows["good"].startswith("yes") or rows["good"].startswith("no: ")
    assert "nested too deeply" in rows["deep"] and "finite number" in rows["nan"]


@pytest.fixture
def footprint(tmp_path):
    log = tmp_path / "x.log"
    log.write_text(LOG)
    fp = tmp_path / "fp.json"
    kprof("analyze", log, "--footprint", fp, check=0)
    return json.loads(fp.read_text())


def damaged_footprints(fp):
    def changed(f):
        d = json.loads(json.dumps(fp))
        f(d)
        return d
    yield "string count", changed(lambda d: d["syscalls"]["openat"].update(calls="7"))
    yield "NaN count", changed(lambda d: d["syscalls"]["openat"].update(calls=float("nan")))
    yield "negative count", changed(lambda d: d["syscalls"]["openat"].update(calls=-1))
    yield "huge count", changed(lambda d: d["syscalls"]["openat"].update(calls=10 ** 400))   # (OverflowError)
    yield "NaN time", changed(lambda d: d["syscalls"]["openat"].update(time=float("nan")))
    yield "errors not a mapping", changed(lambda d: d["syscalls"]["openat"].update(errors=[1]))
    yield "file count a string", changed(lambda d: next(iter(d["files"].values())).update(calls="x"))


def test_damaged_footprints(tmp_path, footprint):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(footprint))
    for case, data in damaged_footprints(footprint):
        f = tmp_path / "bad.json"
        f.write_text(json.dumps(data))
        for args in (["report", f], ["compare", good, f]):
            p = kprof(*args)
            assert p.returncode == 2, (case, p.stdout, p.stderr)
            no_traceback(p)
            assert "damaged footprint" in p.stderr, (case, p.stderr)


def test_damaged_baselines(tmp_path, footprint):
    good = {"format": "kprof-baseline", "version": 1, "scenario": "determine-basal", "created": "now",
            "meta": {"arch": "x86_64", "versions": {}}, "runs": [{"syscall": {"openat": 1}}], "footprint": footprint}
    cases = {"runs a mapping": {"runs": {"syscall": {"openat": 1}}}, "runs a string": {"runs": "abc"},
             "string count": {"runs": [{"syscall": {"openat": "1"}}]},
             "NaN count": {"runs": [{"syscall": {"openat": float("nan")}}]},
             "huge count": {"runs": [{"syscall": {"openat": 10 ** 400}}]},
             "category a list": {"runs": [{"syscall": [1]}]},
             "meta a list": {"meta": []}, "versions a string": {"meta": {"versions": "1.0"}},
             "oref0 tree a string": {"meta": {"arch": "x86_64", "versions": {}, "oref0_tree": "garbage"}},
             "tolerance a list": {"meta": {"arch": "x86_64", "versions": {}, "tolerance": [1]}},
             "kernel a number": {"meta": {"arch": "x86_64", "versions": {}, "kernel": 6}},
             "version a string": {"version": "1"}}
    for case, change in cases.items():
        d = tmp_path / case.replace(" ", "-")
        d.mkdir()
        (d / "determine-basal.json").write_text(json.dumps({**good, **change}))
        for args in (["compare", d / "determine-basal.json", d / "determine-basal.json"],
                     ["check", ROOT / "scenarios" / "determine-basal.yaml", "--baseline", d, "--results", tmp_path]):
            p = kprof(*args)
            assert p.returncode == 2, (case, args[0], p.stdout[-1000:], p.stderr[-1000:])
            no_traceback(p)
            assert "baseline" in p.stderr, (case, p.stderr)


def test_a_baseline_with_null_versions_is_read_as_none_recorded(tmp_path, footprint):
    """null where a mapping is kept (versions, tolerance) means none recorded: compare and check read it as
    such (they used to fail with a traceback on compare)."""
    base = {"format": "kprof-baseline", "version": 1, "scenario": "determine-basal", "created": "now",
            "meta": {"arch": "x86_64", "versions": None, "tolerance": None}, "runs": [{"syscall": {"openat": 1}}],
            "footprint": footprint}
    (tmp_path / "determine-basal.json").write_text(json.dumps(base))
    p = kprof("compare", tmp_path / "determine-basal.json", tmp_path / "determine-basal.json")
    assert p.returncode == 0, p.stderr
    no_traceback(p)


def test_damaged_bundles(tmp_path, footprint):
    for case, meta in {"meta a list": "[1, 2]", "versions a string": '{"versions": "x"}',
                       "runs a mapping": '{"runs": {"a": 1}}', "not JSON": "{", "deep": "[" * 100000}.items():
        b = tmp_path / case.replace(" ", "-")
        b.mkdir()
        (b / "footprint.json").write_text(json.dumps(footprint))
        (b / "meta.json").write_text(meta)
        for args in (["report", b], ["compare", b, b]):
            p = kprof(*args)
            assert p.returncode == 2, (case, p.stdout[-500:], p.stderr[-500:])
            no_traceback(p)
            assert "meta.json" in p.stderr, (case, p.stderr)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000)
    one_message(kprof("report", deep), "nested too deeply")


def test_ftrace_analyze_on_a_strace_log_is_linear(tmp_path):
    """Input that is not ftrace (here 100k strace lines, which hold no '[') is refused with a message at once:
    no pattern spans a line break (one did, and every line's match attempt scanned the rest: > 10 min)."""
    from profiler.parse.ftrace_text import _chunk_regexes
    for regex in _chunk_regexes(()):
        m = regex.search(b"\nnot ftrace at all\n  cat-1 [000] 1.0: sys_enter: NR 0 (0\n")
        assert m and b"\n" not in m.group(0).strip(b"\n"), m.group(0)
    log = tmp_path / "strace.log"
    log.write_text("".join(f'{1000 + i % 7} 1.{i:06d} openat(AT_FDCWD</>, "/etc/hosts", O_RDONLY) = 3</etc/hosts> '
                           f'<0.000010>\n' for i in range(100_000)))
    p = subprocess.run([sys.executable, "-m", "profiler", "ftrace", "analyze", str(log), "--arch", "x86_64"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)   # a hang guard, not a measurement
    one_message(p, "no ftrace event lines found", "kprof analyze")


def test_an_output_that_is_an_input_is_refused(tmp_path):
    """analyze LOG -o LOG replaced the strace log with its report, config BUNDLE --fragment BUNDLE/footprint.json
    the footprint with a .config fragment (both exit 0): refused, the input kept."""
    log = tmp_path / "t.log"
    log.write_text(LOG)
    one_message(kprof("analyze", log, "-o", log), "is an input: give another file for --output")
    assert log.read_text() == LOG
    bundle = tmp_path / "b"
    bundle.mkdir()
    assert kprof("analyze", log, "--footprint", bundle / "footprint.json").returncode == 0
    before = (bundle / "footprint.json").read_text()
    one_message(kprof("config", bundle, "--fragment", bundle / "footprint.json"),
                f"is part of the input {bundle}: give another file for --fragment")
    assert (bundle / "footprint.json").read_text() == before


def test_fixtures_that_cannot_be_copied_are_one_message_and_leave_no_bundle(tmp_path):
    """A fixture that is a symbolic link loop, a directory holding a FIFO, a device: one message (they were
    RuntimeError and shutil.Error tracebacks), and the -o directory is not left holding a begun bundle (a
    scenario.yaml, which made the next run there refuse it)."""
    import os
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "pipe")
    for item, words in (("loop", "cannot be followed"), ("d", "is a named pipe"),
                        ("/dev/zero", "is not a file or a directory")):
        sc = tmp_path / "fx.yaml"
        sc.write_text(SCENARIO.format(name="fx") + f"fixtures: {item}\n")
        one_message(kprof("run", sc, "-q", "-o", tmp_path / "out"), f"fixtures: '{item}'", words)
        assert not (tmp_path / "out").exists(), item
