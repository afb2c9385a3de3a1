"""Scenario files: load YAML safely, validate against the shipped JSON Schema, report file:line.

The schema (``profiler/schema/scenario.schema.json``) is the one description of
the format: editors use it for completion, and this module checks files with
it (jsonschema does the checking; a small adapter here words each problem as
``file:line: key: problem``, the line found by walking the error's path
through the loaded YAML).
"""
from __future__ import annotations

import errno
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from profiler import validated
from profiler.errors import KprofError, check_input

SCHEMA_PATH = Path(__file__).parent / "schema" / "scenario.schema.json"
_SCHEMA = None
_SCHEMA_TEXT = b""
_SOURCE = Path(__file__).read_bytes()   # this module as loaded: its type rules are part of every check


def schema() -> dict:
    global _SCHEMA, _SCHEMA_TEXT
    if _SCHEMA is None:
        try:
            text = SCHEMA_PATH.read_bytes()
            _SCHEMA = json.loads(text)
        except (OSError, ValueError) as e:
            raise KprofError(f"{SCHEMA_PATH}: cannot read kprof's scenario schema ({e}): reinstall kprof") from None
        _SCHEMA_TEXT = text
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


def read_scenario_file(path: Path) -> bytes:
    """A scenario (or workload) file's text, as bytes; KprofError if it cannot be one."""
    check_input(path, "a scenario file", missing_ok=True)     # (a FIFO: opening it waits for a writer, for ever)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise KprofError(f"{path}: no such scenario file") from None
    except OSError as e:
        raise KprofError(f"{path}: cannot read scenario file ({e})") from None
    if len(raw) > MAX_BYTES:
        raise KprofError(f"{path}: more than {MAX_BYTES >> 20} MiB: not a scenario file")
    return raw


def load_yaml(path: Path, raw: bytes | None = None) -> tuple[object, dict]:
    """Parse YAML (the file at ``path``, or its text ``raw`` already read); returns (data, {id(mapping): {key: line}})."""
    if raw is None:
        raw = read_scenario_file(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
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


def _finite_number(checker, value) -> bool:
    """JSON Schema's number, without bool and without inf/nan (YAML reads .inf and .nan as floats); an int of any
    size is finite (math.isfinite cannot take one beyond a float's range)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _integer(checker, value) -> bool:
    """An int, not a bool and not 1.0: a count or a status written as a float is a mistake in a scenario."""
    return isinstance(value, int) and not isinstance(value, bool)


_VALIDATORS: dict[int, tuple] = {}   # id(schema) → (validator, the schema: kept, so its id stays its own)


def _validator(sch: dict):
    """A jsonschema validator for ``sch`` (kept per schema object) with kprof's number and integer types.

    A ``$ref`` into ``scenario.schema.json`` (the workload schema's) resolves to the shipped scenario schema,
    whatever base URI the referring schema has."""
    v = _VALIDATORS.get(id(sch))
    if v is None:
        import jsonschema
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        cls = jsonschema.validators.validator_for(sch, default=jsonschema.Draft202012Validator)
        cls = jsonschema.validators.extend(cls, type_checker=cls.TYPE_CHECKER.redefine_many(
            {"number": _finite_number, "integer": _integer}))
        scenario = Resource.from_contents(schema(), default_specification=DRAFT202012)
        uris = {schema()["$id"]}
        if "/" in sch.get("$id", ""):
            uris.add(sch["$id"].rsplit("/", 1)[0] + "/scenario.schema.json")
        v = _VALIDATORS[id(sch)] = (cls(sch, registry=Registry().with_resources((u, scenario) for u in uris)), sch)
    return v[0]


def _messages(error, data, where: str, lines: dict) -> list[tuple[tuple, str]]:
    """One jsonschema error → kprof's ``(sort key, "file:line: key: problem")`` messages.

    The error's path is walked through the loaded YAML: a mapping's keys have their own lines (the loader
    kept them), a sequence's items the line of the key that holds the sequence. The sort key puts the
    messages in the file's order: the order of the keys and items on the way, a node's missing keys first."""
    node, line, key, order = data, 1, "", []
    for step in error.absolute_path:
        if isinstance(node, dict):
            order.append(list(node).index(step) if step in node else -1)
            line = lines.get(id(node), {}).get(step, line)
            key = f"{key}.{step}" if key else str(step)
        else:
            order.append(step)
            key = f"{key}[{step}]"
        node = node[step]

    def msg(text, ln=line, k=key):
        return f"{where}:{ln}: {k + ': ' if k else ''}{text}"

    kw, want, value = error.validator, error.validator_value, error.instance
    if kw == "additionalProperties" and want is False and isinstance(value, dict):
        known = error.schema.get("properties", {})
        keylines = lines.get(id(value), {})
        return [((*order, i), msg(f"unknown key '{k}' (known keys: {', '.join(sorted(known))})",
                                  keylines.get(k, line)))
                for i, k in enumerate(value) if k not in known]
    if kw == "required":
        missing = [r for r in want if isinstance(value, dict) and r not in value]
        return [((*order, -1), msg(f"missing required key '{r}'")) for r in missing]
    if kw == "type":
        types = [want] if isinstance(want, str) else list(want)
        if isinstance(value, float) and not math.isfinite(value) and "number" in types:
            text = f"must be a finite number (got {value!r})"
        else:
            text = f"must be {' or '.join(types)} (got {type(value).__name__} {value!r})"
    elif kw == "enum":
        text = f"must be one of {', '.join(map(str, want))} (got {value!r})"
    elif kw == "minItems":
        text = f"needs at least {want} item(s)"
    elif kw == "maxItems":
        text = f"takes at most {want} item(s)"
    elif kw == "minLength":
        text = "must not be empty"
    elif kw == "pattern" and "\0" in want:      # the environment and argv rules: said in words
        text = (f"{value!r}: an environment variable's name holds no '=' and no NUL byte, and no value or "
                f"argument holds a NUL byte (the kernel's execve cannot pass them)")
    elif kw == "pattern":
        text = f"{value!r} does not match {want}"
    elif kw == "minimum":
        text = f"must be at least {want}"
    elif kw == "maximum":
        text = f"must be at most {want}"
    elif kw == "exclusiveMinimum":
        text = f"must be greater than {want}"
    elif kw == "exclusiveMaximum":
        text = f"must be less than {want}"
    else:   # a keyword kprof has no wording for: jsonschema's own message
        text = error.message
    return [(tuple(order), msg(text))]


def validate_data(data, sch: dict, where: str, lines: dict) -> list[str]:
    """Check ``data`` (loaded by ``load_yaml``, which gave ``lines``) against the JSON Schema ``sch``.

    The checking is jsonschema's (every keyword of the schema's draft); the messages are kprof's, one per
    problem, in the file's order: ``file:line: key: problem``, where key is a dotted path such as
    ``services[0].port``. A node with a value outside its enum, or of the wrong type, is reported for that
    alone: what it holds is not checked further."""
    errors = list(_validator(sch).iter_errors(data))
    decisive = {}
    for e in errors:
        if e.validator in ("enum", "type"):
            path = tuple(e.absolute_path)
            if decisive.get(path) != "enum":
                decisive[path] = e.validator
    messages: dict = {}         # jsonschema reports each missing key of a node with all of them: said once
    for e in errors:
        path = tuple(e.absolute_path)
        if any(path[:len(p)] == p and (len(path) > len(p) or e.validator != kw) for p, kw in decisive.items()):
            continue
        messages.update(dict.fromkeys(_messages(e, data, where, lines)))
    return [m for _, m in sorted(messages, key=lambda km: km[0])]


def default(*keys: str):
    """The scenario schema's default for a key (``default("timeout")``, ``default("expect", "exit")``): the
    one place a scenario's defaults are written."""
    node = schema()
    for k in keys:
        node = node["properties"][k]
    return node["default"]


class _Section(Mapping):
    """A typed section of a scenario that also reads as the mapping the file had: its attributes are every
    key the schema knows (absent ones: the schema's default, else None); as a mapping it holds the keys the
    file gave (what fault rules, services and tolerance rules were written against)."""

    given: tuple

    @classmethod
    def from_mapping(cls, data: Mapping | None):
        data = dict(data or {})
        return cls(**data, given=tuple(data))

    def __getitem__(self, key):
        if key not in self.given:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self.given)

    def __len__(self) -> int:
        return len(self.given)

    def to_dict(self) -> dict:
        return dict(self)


def _given():
    return field(default=(), repr=False, compare=False)


@dataclass(eq=False)
class Expect(_Section):
    """``expect:``: what the command must do for the run to pass."""

    exit: int = field(default_factory=lambda: default("expect", "exit"))
    stdout_contains: str | None = None
    stderr_contains: str | None = None
    pump_temp_basal: str | None = None   # a file in the workdir naming the temp basal the command enacted
    given: tuple = _given()


@dataclass(eq=False)
class Service(_Section):
    """One of ``services:``: a fake Nightscout (profiler.environment.nightscout takes ``dict(service)``)."""

    type: str = "nightscout"
    port: int | None = None
    entries: str | None = None
    redate: float | None = None
    uploads: bool | None = None
    moving: bool | float | None = None
    lag: float | None = None
    next_reading: float | None = None
    given: tuple = _given()


@dataclass(eq=False)
class Injection(_Section):
    """One of ``inject:``: a fault rule as written (profiler.inject.rules_from makes the Rule of it)."""

    syscall: str | list[str] = ""
    error: str | None = None
    retval: int | None = None
    delay_enter: str | int | None = None
    delay_exit: str | int | None = None
    when: str | int | None = None
    path: str | None = None
    fd_class: str | None = None
    given: tuple = _given()


@dataclass(eq=False)
class Tolerance(_Section):
    """``tolerance:``: the scenario's changes to kprof check's rules (profiler/tolerance.json has the rest)."""

    margin: float | None = None
    slack: int | None = None
    timing_margin: float | None = None
    timing_slack: int | None = None
    timing_syscalls: list | None = None
    timing_errors: list | None = None
    timing_categories: list | None = None
    ignore: list | None = None
    optional: list | None = None
    allocator_margin: float | None = None
    allocator_slack: int | None = None
    allocator_syscalls: list | None = None
    given: tuple = _given()


def _sections(cls, items) -> list:
    return [item if isinstance(item, cls) else cls.from_mapping(item) for item in items or []]


@dataclass
class Scenario:
    """A scenario file, parsed once: every section typed, every default the schema's."""

    path: Path
    name: str
    description: str
    command: list[str] | str
    shell: bool = field(default_factory=lambda: default("shell"))
    fixtures: list[str] = field(default_factory=list)
    prepare: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = field(default_factory=lambda: float(default("timeout")))
    stop: str = field(default_factory=lambda: default("stop"))      # end the run when the root exits, or the tree
    repeat: int = field(default_factory=lambda: default("repeat"))
    network: str = field(default_factory=lambda: default("network"))
    services: list[Service] = field(default_factory=list)
    pump: dict | None = None        # the emulator's settings (pump: without its client key); see pump_config
    pump_client: str = field(default_factory=lambda: default("pump", "client"))  # kprof, system or a directory
    inject: list[Injection] = field(default_factory=list)
    backend: str = field(default_factory=lambda: default("backend"))
    radio: str = field(default_factory=lambda: default("radio"))  # uart (/dev/serial0), spi or edison (spidev)
    radio_fault: str | None = None    # SPI set-up faults: device-in-use, not-exported
    tolerance: Tolerance | None = None
    requires: list[str] = field(default_factory=list)
    expect: Expect = field(default_factory=Expect)
    raw: dict = field(default_factory=dict)

    def __post_init__(self):
        # typed however the scenario was made (dataclasses.replace with plain lists and mappings included)
        self.services = _sections(Service, self.services)
        self.inject = _sections(Injection, self.inject)
        if not isinstance(self.expect, Expect):
            self.expect = Expect.from_mapping(self.expect)
        if self.tolerance is not None and not isinstance(self.tolerance, Tolerance):
            self.tolerance = Tolerance.from_mapping(self.tolerance)

    @cached_property
    def pump_config(self):
        """The emulated pump's settings as a PumpConfig (parsed once; a bad one is a KprofError), or None."""
        if self.pump is None:
            return None
        from profiler.pump.config import config_from_mapping
        return config_from_mapping(self.pump, f"{self.path}: pump")

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def expected_exit(self) -> int:
        return self.expect.exit


def load_scenario(path, memo: bool = False) -> Scenario:
    """Load and validate one scenario file; every problem is a KprofError naming file:line and key. With ``memo``,
    a text that jsonschema passed at set-up is not checked against the schema again (``profiler.validated``)."""
    path = Path(path)
    return scenario_from_text(path, read_scenario_file(path), memo)


def _rules() -> tuple[bytes, ...]:
    """What says what a scenario's check is, as used: the schema's text as parsed, and this module's source."""
    schema()
    return _SCHEMA_TEXT, _SOURCE


def keep_checked(texts: list[bytes]) -> int:
    """``kprof validate --keep``: these scenario texts passed a full check; keep that (``profiler.validated``)."""
    return validated.keep(texts, _rules())


def scenario_from_text(path: Path, raw: bytes, memo: bool = False) -> Scenario:
    """``load_scenario`` of the file at ``path`` whose text ``raw`` was read."""
    data, lines = load_yaml(path, raw)
    if data is None:
        raise KprofError(f"{path}:1: empty scenario file (needs at least name, description, command)")
    try:
        errors = [] if memo and validated.known(raw, _rules()) else validate_data(data, schema(), str(path), lines)
    except RecursionError:
        raise KprofError(f"{path}: nested too deeply to be a scenario") from None
    def get(key):
        return data[key] if key in data else default(key)

    if not errors:
        keyline = lines.get(id(data), {})
        if isinstance(data["command"], str) and not get("shell"):
            errors.append(f"{path}:{keyline.get('command', 1)}: command: a string command needs 'shell: true' "
                          f"(or write it as an argv list)")
        from profiler.inject import rule_problem
        for i, rule in enumerate(data.get("inject", [])):
            if "error" in rule and not hasattr(errno, rule["error"]):
                errors.append(f"{path}:{lines.get(id(rule), {}).get('error', 1)}: inject[{i}].error: "
                              f"{rule['error']!r} is not an errno name (e.g. EIO, ENOSPC, EAGAIN)")
            elif (problem := rule_problem(rule)) is not None:
                errors.append(f"{path}:{lines.get(id(data.get('inject')), {}).get(i, keyline.get('inject', 1))}: "
                              f"inject[{i}]: {problem}")
        if get("radio") != "uart" or "radio_fault" in data:
            if "pump" not in data:
                errors.append(f"{path}:{keyline.get('radio', keyline.get('radio_fault', 1))}: radio: the radio path "
                              f"belongs to a pump scenario (add a 'pump:' section)")
            if "radio_fault" in data and get("radio") == "uart":
                errors.append(f"{path}:{keyline['radio_fault']}: radio_fault: SPI set-up faults need radio: spi "
                              f"or edison")
        if data["name"] != path.stem:
            errors.append(f"{path}:{keyline.get('name', 1)}: name: '{data['name']}' differs from the file "
                          f"name '{path.stem}'")
    if errors:
        raise KprofError("\n".join(errors))
    fixtures = data.get("fixtures", [])
    pump = client = None
    if "pump" in data:
        pump = {k: v for k, v in (data["pump"] or {}).items() if k != "client"}
        client = (data["pump"] or {}).get("client", default("pump", "client"))
        if client not in ("kprof", "system"):  # a directory, relative to the scenario file
            client = str((path.parent / Path(client).expanduser()).resolve())
    radio = get("radio")
    return Scenario(
        path=path, name=data["name"], description=data["description"].strip(), command=data["command"],
        shell=get("shell"), fixtures=[fixtures] if isinstance(fixtures, str) else fixtures,
        prepare=data.get("prepare", []), env={k: str(v) for k, v in data.get("env", {}).items()},
        timeout=float(get("timeout")), stop=get("stop"), repeat=get("repeat"), network=get("network"),
        services=data.get("services", []), pump=pump, pump_client=client or default("pump", "client"),
        tolerance=data.get("tolerance"), inject=data.get("inject", []),
        # the SPI radio paths are served by the ptrace backend: the schema's default is the UART path's
        backend=data.get("backend") or (default("backend") if radio == "uart" else "ptrace"),
        radio=radio, radio_fault=data.get("radio_fault"),
        requires=data.get("requires", []), expect=data.get("expect", {}), raw=data,
    )
