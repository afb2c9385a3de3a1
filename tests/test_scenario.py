"""Scenario files: the schema, line-numbered errors, and kprof validate."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from profiler.errors import KprofError
from profiler.scenario import SCHEMA_PATH, load_scenario

from .conftest import ROOT, SCENARIOS, kprof

GOOD = """\
name: demo
description: a demo
command: [/bin/true]
timeout: 5
"""


def write(tmp_path, text, name="demo"):
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return p


def error_of(path) -> str:
    with pytest.raises(KprofError) as e:
        load_scenario(path)
    return str(e.value)


def test_good_file_loads_with_defaults(tmp_path):
    sc = load_scenario(write(tmp_path, GOOD))
    assert sc.command == ["/bin/true"] and sc.network == "none" and sc.repeat == 1 and sc.expected_exit == 0


def test_malformed_yaml_names_file_and_line(tmp_path):
    p = write(tmp_path, GOOD + "env: {TZ: UTC\nrepeat: 2\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:") and "malformed YAML" in msg
    assert int(msg.split(":")[1]) in (5, 6, 7)


def test_unknown_key_names_line_and_known_keys(tmp_path):
    p = write(tmp_path, GOOD + "netwrok: none\n")
    msg = error_of(p)
    assert f"{p}:5: unknown key 'netwrok'" in msg and "network" in msg


def test_nested_errors_name_their_key_path_and_line(tmp_path):
    p = write(tmp_path, GOOD + "services:\n  - type: nightscout\n    port: 99999\nexpect:\n  exit: zero\n")
    msg = error_of(p)
    assert f"{p}:7: services[0].port: must be at most 65535" in msg
    assert f"{p}:9: expect.exit: must be integer" in msg


def test_missing_required_and_wrong_types(tmp_path):
    msg = error_of(write(tmp_path, "name: demo\ncommand: [/bin/true]\ntimeout: -1\nnetwork: internet\n"))
    assert "missing required key 'description'" in msg
    assert ":3: timeout: must be greater than 0" in msg
    assert ":4: network: must be one of none, host" in msg


def test_string_command_needs_shell_and_name_must_match_file(tmp_path):
    msg = error_of(write(tmp_path, "name: other\ndescription: d\ncommand: echo hi\n"))
    assert ":3: command: a string command needs 'shell: true'" in msg
    assert ":1: name: 'other' differs from the file name 'demo'" in msg
    sc = load_scenario(write(tmp_path, "name: demo\ndescription: d\ncommand: echo hi | cat\nshell: true\n"))
    assert sc.shell and sc.command == "echo hi | cat"


def test_empty_duplicate_and_missing_files(tmp_path):
    assert "empty scenario file" in error_of(write(tmp_path, ""))
    assert ":2: duplicate key 'name'" in error_of(write(tmp_path, "name: demo\nname: demo\n"))
    assert "no such scenario file" in error_of(tmp_path / "absent.yaml")


def test_schema_is_valid_json_schema_and_documents_every_key():
    import jsonschema
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    for key, sub in schema["properties"].items():
        assert sub.get("description"), f"schema key {key} has no description for editors"


def test_shipped_scenarios_validate():
    assert SCENARIOS, "no scenarios shipped"
    p = kprof("validate", *SCENARIOS, check=0)
    assert p.stdout.count("ok: ") == len(SCENARIOS)
    for path in SCENARIOS:
        first = path.read_text().splitlines()[0]
        assert "yaml-language-server: $schema=" in first, f"{path.name}: no schema reference for editors"


def test_validate_cli_reports_all_bad_files_without_traceback(tmp_path):
    bad = write(tmp_path, GOOD + "bogus: 1\n")
    broken = write(tmp_path, "name: [\n", "broken")
    p = kprof("validate", bad, broken, ROOT / "scenarios" / "determine-basal.yaml", check=2)
    assert "Traceback" not in p.stderr
    assert f"{bad}:5: unknown key 'bogus'" in p.stderr and f"{broken}:" in p.stderr
    assert "2 of 3 scenario file(s) invalid" in p.stderr


def test_every_keyword_of_the_schema_is_checked(tmp_path):
    """jsonschema checks what the hand-written subset it replaced skipped (maxItems), worded the kprof way."""
    targets = ", ".join(f"{{start: {i * 60}, low: 90, high: 110}}" for i in range(9))
    msg = error_of(write(tmp_path, GOOD + f"pump:\n  bg_targets: [{targets}]\n"))
    assert msg.endswith(":6: pump.bg_targets: takes at most 8 item(s)")


def test_each_missing_key_is_said_once(tmp_path):
    msg = error_of(write(tmp_path, "description: 3\n"))
    assert msg.count("missing required key 'name'") == 1 and msg.count("missing required key 'command'") == 1
    msg = error_of(write(tmp_path, GOOD + "pump: {basal_schedule: [{}]}\n"))
    assert len(msg.splitlines()) == len(set(msg.splitlines())), msg


def test_numbers_too_big_for_a_float_are_messages_not_tracebacks(tmp_path):
    huge = "1" + "0" * 400
    msg = error_of(write(tmp_path, GOOD.replace("timeout: 5", f"timeout: {huge}\nrepeat: {huge}")))
    assert ":4: timeout: must be at most 86400" in msg and ":5: repeat: must be at most 1000" in msg
    assert load_scenario(write(tmp_path, GOOD + f"tolerance: {{margin: {huge}}}\n")).tolerance.margin == int(huge)


def test_numbers_are_finite_and_integers_are_not_floats(tmp_path):
    msg = error_of(write(tmp_path, GOOD.replace("timeout: 5", "timeout: .inf\nrepeat: 2.0")))
    assert ":4: timeout: must be a finite number (got inf)" in msg
    assert ":5: repeat: must be integer (got float 2.0)" in msg


def test_errors_come_in_file_order_and_a_wrong_type_hides_the_rest_of_its_node(tmp_path):
    msg = error_of(write(tmp_path, GOOD + "services:\n  - type: nightscout\n    port: 0\n    bogus: 1\n"
                                          "expect: 3\nnetwork: lan\n"))
    lines = [line.split(": ", 1)[1] for line in msg.splitlines()]
    assert lines == ["services[0].port: must be at least 1",
                     "services[0]: unknown key 'bogus' (known keys: entries, lag, moving, next_reading, port, "
                     "redate, type, uploads)",
                     "expect: must be object (got int 3)",
                     "network: must be one of none, host (got 'lan')"]


def test_sections_are_typed_and_defaults_are_the_schemas(tmp_path):
    from profiler.scenario import Expect, Injection, Service, Tolerance, default
    sc = load_scenario(write(tmp_path, GOOD + "services: [{type: nightscout, port: 17580}]\n"
                                              "inject: [{syscall: read, error: EIO}]\n"
                                              "tolerance: {margin: 0.5}\nexpect: {stdout_contains: ok}\n"))
    assert isinstance(sc.services[0], Service) and sc.services[0].port == 17580 and sc.services[0].lag is None
    assert isinstance(sc.inject[0], Injection) and sc.inject[0].error == "EIO"
    assert isinstance(sc.tolerance, Tolerance) and sc.tolerance.margin == 0.5 and dict(sc.tolerance) == {"margin": 0.5}
    assert isinstance(sc.expect, Expect) and sc.expect.exit == default("expect", "exit") == sc.expected_exit
    assert sc.expect.get("exit") is None and dict(sc.expect) == {"stdout_contains": "ok"}   # as the file has it
    assert sc.stop == default("stop") and sc.backend == default("backend") and sc.shell is default("shell")
    assert sc.pump is None and sc.pump_config is None


def test_the_pump_config_is_parsed_once(tmp_path):
    import dataclasses
    sc = load_scenario(write(tmp_path, GOOD + "pump: {id: '123456', fault: busy}\n"))
    assert sc.pump_client == "kprof" and sc.pump_config is sc.pump_config and sc.pump_config.id == "123456"
    normal = dataclasses.replace(sc, pump=dict(sc.pump, fault="none"), expect={})
    assert normal.pump_config.fault == "none" and normal.expect.exit == 0


def test_a_kept_scenario_text_is_not_checked_again_an_edited_one_is(tmp_path, monkeypatch):
    """kprof validate --keep (setup.sh, for the shipped scenarios) keeps jsonschema's verdict on a text
    (profiler/validated.py): a later load of that text, in a new process, loads no jsonschema (50-100 ms); the
    same file with one key added is checked in full, and fails."""
    from profiler import validated
    from profiler.commands import validate

    memo = tmp_path / "memo"
    monkeypatch.setattr(validated, "MEMO", memo)
    (tmp_path / "kept").mkdir()
    (tmp_path / "edited").mkdir()
    text = (ROOT / "scenarios" / "determine-basal.yaml").read_bytes()
    kept, edited = tmp_path / "kept" / "determine-basal.yaml", tmp_path / "edited" / "determine-basal.yaml"
    kept.write_bytes(text)
    edited.write_bytes(text + b"bogus: 1\n")
    assert validate.main(argparse.Namespace(files=[kept], keep=True)) == 0
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from profiler import validated\n"
        "from profiler.errors import KprofError\n"
        "from profiler.scenario import load_scenario\n"
        f"validated.MEMO = Path({str(memo)!r})\n"
        f"load_scenario({str(kept)!r}, memo=True)\n"
        "after_kept = 'jsonschema' in sys.modules\n"
        f"try:\n    load_scenario({str(edited)!r}, memo=True); error = None\n"
        "except KprofError as e:\n    error = str(e)\n"
        "print(json.dumps([after_kept, 'jsonschema' in sys.modules, error]))\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    after_kept, after_edited, error = json.loads(p.stdout)
    assert (after_kept, after_edited) == (False, True)
    assert error and f"{edited}:" in error and "unknown key 'bogus'" in error


def test_the_memo_is_used_only_when_asked_and_only_if_nobody_else_can_write_it(tmp_path, monkeypatch):
    from profiler import scenario, validated
    from profiler.commands import validate

    memo = tmp_path / "memo"
    monkeypatch.setattr(validated, "MEMO", memo)
    good = write(tmp_path, GOOD)
    (tmp_path / "b").mkdir()
    bad = write(tmp_path / "b", GOOD + "bogus: 1\n")
    assert validate.main(argparse.Namespace(files=[good, bad], keep=True)) == 2
    assert len(memo.read_text().splitlines()) == 3        # the header, the context, the good file's digest only
    raw = good.read_bytes()

    def known(text: bytes) -> bool:
        return validated.known(text, scenario._rules())
    assert known(raw) and not known(raw + b"\n") and not known(GOOD.encode() + b"x: 1\n")
    other = write(tmp_path, GOOD, "other")                # the same text: known, and its name is still checked
    assert "differs from the file name 'other'" in str(pytest.raises(KprofError, load_scenario, other, memo=True).value)

    # a forged memo that lists a bad text: used by run/check/baseline (memo=True), never by validate or by default
    forged = memo.read_text() + validated._digest(validated.context(scenario._rules()), bad.read_bytes()) + "\n"
    memo.write_text(forged)
    assert load_scenario(bad, memo=True).name == "demo"
    assert "unknown key 'bogus'" in error_of(bad)
    assert validate.main(argparse.Namespace(files=[bad], keep=False)) == 2
    assert known(raw)

    memo.chmod(0o664)                                      # others may write it: not read
    assert not known(raw)
    memo.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(memo)
    monkeypatch.setattr(validated, "MEMO", link)           # a symbolic link: not followed, not replaced
    assert not known(raw)
    assert validate.main(argparse.Namespace(files=[good], keep=True)) == 2 and link.is_symlink()
    monkeypatch.setattr(validated, "MEMO", memo)
    if os.geteuid() == 0:
        os.chown(memo, 65534, 65534)                       # another user's file: not read
        assert not known(raw)
        os.chown(memo, 0, 0)
    assert known(raw)

    # other rules or another library version: a new context, so every text is checked again
    monkeypatch.setattr(scenario, "_SCHEMA_TEXT", scenario._SCHEMA_TEXT)
    assert known(raw)
    monkeypatch.setattr(scenario, "_SCHEMA_TEXT", scenario._SCHEMA_TEXT + b" ")
    assert not known(raw)
    monkeypatch.undo()
    monkeypatch.setattr(validated, "MEMO", memo)
    monkeypatch.setattr(scenario, "_SOURCE", scenario._SOURCE + b"#")
    assert not known(raw)
    monkeypatch.undo()
    monkeypatch.setattr(validated, "MEMO", memo)
    monkeypatch.setattr(validated, "_libraries", ["jsonschema-0.1.dist-info"])
    assert not known(raw)
    assert validate.main(argparse.Namespace(files=[good], keep=True)) == 0    # kept under the new context alone
    assert len(memo.read_text().splitlines()) == 3 and known(raw)

    # nowhere to keep: one message, nothing written
    memo.unlink()
    os.mkfifo(memo)
    assert validate.main(argparse.Namespace(files=[good], keep=True)) == 2
    monkeypatch.setattr(validated, "MEMO", None)
    assert validate.main(argparse.Namespace(files=[good], keep=True)) == 2
