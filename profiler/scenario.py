"""Scenario files: load YAML safely, validate against the shipped JSON Schema, report file:line.

The schema (``profiler/schema/scenario.schema.json``) is the one description of
the format: editors use it for completion, and this module checks files with
it (a small interpreter of the keywords the schema uses, so kprof needs no
extra dependency).
"""
from __future__ import annotations

import errno
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from profiler.errors import KprofError

SCHEMA_PATH = Path(__file__).parent / "schema" / "scenario.schema.json"
_SCHEMA = None


def schema() -> dict:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads(SCHEMA_PATH.read_text())
    return _SCHEMA


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and sequence item."""


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    mapping = {}
    lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in mapping:
            raise KprofError(f"{loader.kprof_file}:{key_node.start_mark.line + 1}: duplicate key '{key}'")
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    loader.kprof_lines[id(mapping)] = lines
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


MAX_BYTES = 1 << 20  # a scenario is a page of YAML: more is not one (and /dev/zero never ends)


def load_yaml(path: Path) -> tuple[object, dict]:
    """Parse YAML; returns (data, {id(mapping): {key: line}})."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise KprofError(f"{path}: more than {MAX_BYTES >> 20} MiB: not a scenario file")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise KprofError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise KprofError(f"{path}: cannot read scenario file ({e})") from None
    loader = _Loader(text)
    loader.kprof_file = str(path)
    loader.kprof_lines = {}
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise KprofError(f"{where}: malformed YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise KprofError(f"{path}: malformed YAML: {e}") from None
    except RecursionError:
        raise KprofError(f"{path}: malformed YAML: nested too deeply") from None
    finally:
        loader.dispose()
    return data, loader.kprof_lines


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}


def _type_ok(value, t: str) -> bool:
    if t in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[t])


def validate_data(data, sch: dict, where: str, line: int, key: str, lines: dict, errors: list[str]) -> None:
    """Check ``data`` against the subset of JSON Schema the scenario schema uses.

    ``where`` is the file, ``line`` the line of ``key`` (a dotted path such as
    ``services[0].port``); messages read ``file:line: key: problem``.
    """
    def err(msg, ln=line, k=key):
        errors.append(f"{where}:{ln}: {k + ': ' if k else ''}{msg}")

    if "enum" in sch and data not in sch["enum"]:
        err(f"must be one of {', '.join(map(str, sch['enum']))} (got {data!r})")
        return
    types = sch.get("type")
    if types:
        tl = [types] if isinstance(types, str) else types
        if not any(_type_ok(data, t) for t in tl):
            err(f"must be {' or '.join(tl)} (got {type(data).__name__} {data!r})")
            return
    if isinstance(data, dict):
        keylines = lines.get(id(data), {})
        props = sch.get("properties", {})
        for req in sch.get("required", []):
            if req not in data:
                err(f"missing required key '{req}'")
        for k, value in data.items():
            sub_key, kl = (f"{key}.{k}" if key else k), keylines.get(k, line)
            if k in props:
                validate_data(value, props[k], where, kl, sub_key, lines, errors)
            elif sch.get("additionalProperties") is False:
                err(f"unknown key '{k}' (known keys: {', '.join(sorted(props))})", kl)
            elif isinstance(sch.get("additionalProperties"), dict):
                validate_data(value, sch["additionalProperties"], where, kl, sub_key, lines, errors)
    elif isinstance(data, list):
        if len(data) < sch.get("minItems", 0):
            err(f"needs at least {sch['minItems']} item(s)")
        for i, item in enumerate(data):
            if "items" in sch:
                validate_data(item, sch["items"], where, line, f"{key}[{i}]", lines, errors)
    elif isinstance(data, str):
        if len(data) < sch.get("minLength", 0):
            err("must not be empty")
        if "pattern" in sch and not re.search(sch["pattern"], data):
            err(f"{data!r} does not match {sch['pattern']}")
    elif isinstance(data, (int, float)):
        if not math.isfinite(data):
            err(f"must be a finite number (got {data!r})")
            return
        if "minimum" in sch and data < sch["minimum"]:
            err(f"must be at least {sch['minimum']}")
        if "maximum" in sch and data > sch["maximum"]:
            err(f"must be at most {sch['maximum']}")
        if "exclusiveMinimum" in sch and data <= sch["exclusiveMinimum"]:
            err(f"must be greater than {sch['exclusiveMinimum']}")


@dataclass
class Scenario:
    path: Path
    name: str
    description: str
    command: list[str] | str
    shell: bool = False
    fixtures: list[str] = field(default_factory=list)
    prepare: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 120.0
    stop: str = "root"             # end the run when the root process exits ("root") or the whole tree ("tree")
    repeat: int = 1
    network: str = "none"
    services: list[dict] = field(default_factory=list)
    pump: dict | None = None        # the emulator's settings (pump: without its client key)
    pump_client: str = "kprof"      # pump.client: kprof, system or a directory of tools (see runner.pump_client)
    inject: list[dict] = field(default_factory=list)
    backend: str = "strace"
    radio: str = "uart"               # the pump's radio path: uart (/dev/serial0), spi or edison (spidev)
    radio_fault: str | None = None    # SPI set-up faults: device-in-use, not-exported
    tolerance: dict | None = None
    requires: list[str] = field(default_factory=list)
    expect: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def expected_exit(self) -> int:
        return int(self.expect.get("exit", 0))


def load_scenario(path) -> Scenario:
    """Load and validate one scenario file; every problem is a KprofError naming file:line and key."""
    path = Path(path)
    data, lines = load_yaml(path)
    if data is None:
        raise KprofError(f"{path}:1: empty scenario file (needs at least name, description, command)")
    errors: list[str] = []
    try:
        validate_data(data, schema(), str(path), 1, "", lines, errors)
    except RecursionError:
        raise KprofError(f"{path}: nested too deeply to be a scenario") from None
    if not errors:
        keyline = lines.get(id(data), {})
        if isinstance(data["command"], str) and not data.get("shell", False):
            errors.append(f"{path}:{keyline.get('command', 1)}: command: a string command needs 'shell: true' "
                          f"(or write it as an argv list)")
        for i, rule in enumerate(data.get("inject", [])):
            if "error" in rule and not hasattr(errno, rule["error"]):
                errors.append(f"{path}:{lines.get(id(rule), {}).get('error', 1)}: inject[{i}].error: "
                              f"{rule['error']!r} is not an errno name (e.g. EIO, ENOSPC, EAGAIN)")
        if data.get("radio", "uart") != "uart" or "radio_fault" in data:
            if "pump" not in data:
                errors.append(f"{path}:{keyline.get('radio', keyline.get('radio_fault', 1))}: radio: the radio path "
                              f"belongs to a pump scenario (add a 'pump:' section)")
            if "radio_fault" in data and data.get("radio", "uart") == "uart":
                errors.append(f"{path}:{keyline['radio_fault']}: radio_fault: SPI set-up faults need radio: spi "
                              f"or edison")
        if data["name"] != path.stem:
            errors.append(f"{path}:{keyline.get('name', 1)}: name: '{data['name']}' differs from the file "
                          f"name '{path.stem}'")
    if errors:
        raise KprofError("\n".join(errors))
    fixtures = data.get("fixtures", [])
    pump, client = data.get("pump"), "kprof"
    if isinstance(pump, dict) and "client" in pump:
        pump = {k: v for k, v in pump.items() if k != "client"}
        client = data["pump"]["client"]
        if client not in ("kprof", "system"):  # a directory, relative to the scenario file
            client = str((path.parent / Path(client).expanduser()).resolve())
    return Scenario(
        path=path, name=data["name"], description=data["description"].strip(), command=data["command"],
        shell=data.get("shell", False), fixtures=[fixtures] if isinstance(fixtures, str) else fixtures,
        prepare=data.get("prepare", []), env={k: str(v) for k, v in data.get("env", {}).items()},
        timeout=float(data.get("timeout", 120)), stop=data.get("stop", "root"), repeat=data.get("repeat", 1),
        network=data.get("network", "none"), services=data.get("services", []), pump=pump, pump_client=client,
        tolerance=data.get("tolerance"), inject=data.get("inject", []),
        backend=data.get("backend") or ("strace" if data.get("radio", "uart") == "uart" else "ptrace"),
        radio=data.get("radio", "uart"), radio_fault=data.get("radio_fault"),
        requires=data.get("requires", []), expect=data.get("expect", {}), raw=data,
    )
