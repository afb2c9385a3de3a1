"""The emulated pump's settings from a scenario's ``pump:`` mapping: :class:`PumpConfig`, its checks, and faults.

``config_from_mapping`` reads a scenario's mapping, ``validate_config`` checks every value (a KprofError names
the setting), ``normalize_history`` / ``normalize_schedule`` put history records and schedules in the
emulator's own form, and ``parse_fault`` reads a fault (:class:`Fault`).  The pump (``model``) and the radio
(``emulator``) take a checked :class:`PumpConfig`.

History records (``PumpConfig.history``, ``state["history"]``): a list of mappings, oldest first::

    {"type": "TempBasal", "time": "2026-11-27T03:19:28", "temp": "absolute", "rate": 0.9, "duration": 30}
    {"type": "TempBasal", "time": "...", "temp": "percent", "rate": 50, "duration": 60}
    {"type": "Bolus", "time": "...", "amount": 1.5, "programmed": 1.5, "duration": 0, "unabsorbed": 0}
    {"type": "PumpSuspend", "time": "..."}        {"type": "PumpResume", "time": "..."}
    {"type": "Raw", "hex": "1f00..."}            # bytes copied into the page as they are

``time`` is the pump's local time (ISO 8601 without zone, or a datetime); rates are U/h (percent for a
percent temp), amounts in units, durations in minutes (multiples of 30).  A TempBasal becomes the
records 16 (TempBasalDuration) and 33 (TempBasalRate), a Bolus record 01 in the model's format (9 bytes
for x22 and older, 13 for x23 and newer), PumpSuspend/PumpResume records 1E/1F.  Page 0 holds the
newest records; older ones spill into pages 1, 2, … (at most 36 pages).

Faults (``PumpConfig.fault``), ``MODE[:TARGET,…][@N]``: MODE is one of :data:`FAULT_MODES`; TARGETs are
pump commands by name (``model``, ``reservoir``, ``status``, ``clock``, ``battery``, ``tempbasal``,
``settempbasal``, ``bolus``, ``button``, ``setclock``, ``suspend``, ``wakeup``, ``history``,
``pumpid``, ``firmware``, ``settings``, ``basal``, ``targets``, ``sensitivities``, ``carbratios``) or
hex code (``73``), and for ``busy`` also ``version``, ``register`` or
``all``; without targets a mode applies to every pump exchange.  ``@N`` limits the fault to the first N
matching exchanges of the emulator's life (then it behaves), except for ``asleep``, where N is the
number of wake-ups (5D) the pump needs (default 20).  ``duplicate-fragment`` duplicates at most one
fragment per history page (the client ACKs a duplicate again: duplicating every fragment would never
end); with ``@N`` only in the first N pages.  See :func:`parse_fault` and ``FAULT_HELP``.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

from profiler.errors import KprofError
from profiler.pump import protocol as P

FAULT_MODES = ("none", "no-response", "busy", "crc", "asleep", "late", "interrupted", "zero-data", "encoding",
               "wrong-pump", "nak", "ack-lost", "lost-fragment", "duplicate-fragment", "page-crc")

FAULT_HELP = {
    "none": "behave",
    "no-response": "the pump does not answer: the radio sends AA 00 (RX timeout) → retries, wake-up, exit 2",
    "busy": "the radio sends nothing at all for the command → 'cc111x: no response', exit 1",
    "crc": "the reply's CRC-8 is wrong → 'computed CRC XX but received YY', retried (3 tries)",
    "asleep": "the pump ignores everything but wake-ups (5D) until it has heard N of them (default 20); "
              "it falls asleep again after 10 minutes without traffic",
    "late": "the radio answers after the client's deadline (stale bytes for the next read)",
    "interrupted": "the radio sends BB 00 (command interrupted), then the real reply 5 ms later",
    "zero-data": "the radio sends CC 00 → 'Receive: ErrorZeroData', retried",
    "encoding": "the reply carries an invalid 4b/6b symbol → '6b/4b decoding failure', retried",
    "wrong-pump": "the reply carries another pump's ID → 'unexpected response to …', exit 1",
    "nak": "the pump refuses the command (NAK 08) → '<cmd> error: CommandRefused', exit 1",
    "ack-lost": "a state change (temp basal, bolus, button, clock, suspend) is applied but its ACK is lost "
                "→ exit 2",
    "lost-fragment": "a history fragment is lost after an ACK; the NAK that follows re-sends it",
    "duplicate-fragment": "one fragment per history page is sent twice (ignored by the client)",
    "page-crc": "a history page's CRC-16 is corrupted → the page is read again",
}

COMMAND_TARGETS = {
    "model": {P.MODEL}, "reservoir": {P.RESERVOIR}, "status": {P.STATUS}, "clock": {P.CLOCK},
    "battery": {P.BATTERY}, "tempbasal": {P.TEMP_BASAL},
    "settempbasal": {P.SET_ABSOLUTE_TEMP_BASAL, P.SET_PERCENT_TEMP_BASAL}, "bolus": {P.BOLUS},
    "button": {P.BUTTON}, "setclock": {P.SET_CLOCK}, "suspend": {P.SUSPEND}, "resume": {P.SUSPEND},
    "wakeup": {P.WAKEUP}, "history": {P.LAST_HISTORY_PAGE, P.HISTORY_PAGE}, "pumpid": {P.PUMP_ID},
    "firmware": {P.FIRMWARE_VERSION}, "settings": {P.SETTINGS, P.SETTINGS_512}, "basal": {P.BASAL_RATES},
    "targets": {P.GLUCOSE_TARGETS, P.GLUCOSE_TARGETS_512}, "sensitivities": {P.INSULIN_SENSITIVITIES},
    "carbratios": {P.CARB_RATIOS},
}
RADIO_TARGETS = {"version": "version", "register": "register", "listen": "listen", "all": "all"}
STATE_CHANGES = frozenset({P.SET_ABSOLUTE_TEMP_BASAL, P.SET_PERCENT_TEMP_BASAL, P.BOLUS, P.BUTTON, P.SET_CLOCK,
                           P.SUSPEND})

MODELS = ("508", "511", "512", "515", "522", "523", "530", "540", "551", "554", "712", "715", "722", "723",
          "730", "751", "754")



DEFAULT_BASAL_SCHEDULE = ({"start": "00:00", "rate": 1.0}, {"start": "09:00", "rate": 1.2})
DEFAULT_BG_TARGETS = ({"start": "00:00", "low": 80, "high": 120}, {"start": "08:00", "low": 90, "high": 110})
DEFAULT_SENSITIVITIES = ({"start": "00:00", "sensitivity": 50}, {"start": "22:00", "sensitivity": 60})
DEFAULT_CARB_RATIOS = ({"start": "00:00", "ratio": 10}, {"start": "08:00", "ratio": 12})


def _copies(entries):
    return lambda: [dict(e) for e in entries]


@dataclass
class PumpConfig:
    id: str = "123456"            # 6 hex characters, as MEDTRONIC_PUMP_ID
    model: str = "522"            # 522/722 (x22 reservoir format), 523/723/554/754 (x23 format), …
    reservoir: float = 135.0      # units
    battery: float = 1.45         # volts
    clock_offset: float = 0.0     # seconds added to the emulator's wall clock for the pump clock
    history: list | None = None   # initial history records, oldest first (module docstring)
    fault: str = "none"           # MODE[:TARGET,…][@N] (module docstring, FAULT_MODES)
    latency: bool = True          # realistic radio latencies (§5.4)
    max_basal: float = 35.0       # U/h: a higher temp basal is refused (NAK 09)
    max_bolus: float = 25.0       # U: a larger bolus is refused (NAK 09)
    frequency: float | None = None   # MHz the pump transmits on; None: the client's MEDTRONIC_FREQUENCY
    insulin_action_curve: int = 4    # hours (settings); x12 and older pumps know only 6 or 8
    basal_schedule: list = field(default_factory=_copies(DEFAULT_BASAL_SCHEDULE))   # [{start, rate U/h}]
    bg_units: str = "mg/dL"          # or mmol/L: the units of bg_targets and sensitivities
    bg_targets: list = field(default_factory=_copies(DEFAULT_BG_TARGETS))           # [{start, low, high}]
    sensitivities: list = field(default_factory=_copies(DEFAULT_SENSITIVITIES))     # [{start, sensitivity}]
    carb_ratios: list = field(default_factory=_copies(DEFAULT_CARB_RATIOS))         # [{start, ratio g/U}]


@dataclass(frozen=True)
class Fault:
    mode: str = "none"
    targets: frozenset | None = None   # pump command codes and/or "version"/"register"/"listen"/"all"
    count: int | None = None           # @N
    text: str = field(default="none", compare=False)   # as written

    def __str__(self):
        return self.text


def parse_fault(text: str) -> Fault:
    """``MODE[:TARGET,…][@N]`` → :class:`Fault`; ValueError with a message on a bad spelling."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be a string such as 'none', 'crc' or 'crc:reservoir@1'")
    s = text.strip()
    count = None
    if "@" in s:
        s, _, n = s.partition("@")
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"'@{n}' must be a positive whole number (how many exchanges fail)")
        count = int(n)
    mode, _, tlist = s.partition(":")
    mode = mode.strip()
    if mode not in FAULT_MODES:
        raise ValueError(f"unknown fault mode '{mode}'; use one of {', '.join(FAULT_MODES)}")
    targets = None
    if tlist.strip():
        targets = set()
        for t in tlist.split(","):
            t = t.strip().lower()
            if t in COMMAND_TARGETS:
                targets |= COMMAND_TARGETS[t]
            elif mode == "busy" and t in RADIO_TARGETS:
                targets.add(RADIO_TARGETS[t])
            elif len(t) == 2 and all(c in "0123456789abcdef" for c in t):
                targets.add(int(t, 16))
            else:
                names = sorted(COMMAND_TARGETS) + (sorted(RADIO_TARGETS) if mode == "busy" else [])
                raise ValueError(f"unknown fault target '{t}'; use a pump command ({', '.join(names)}) "
                                 f"or its hex code such as 73")
        targets = frozenset(targets)
    return Fault(mode, targets, count, text.strip())


def _parse_time(value, where: str) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, str):
        try:
            return _dt.datetime.fromisoformat(value.strip().replace("Z", "")).replace(tzinfo=None, microsecond=0)
        except ValueError:
            pass
    raise KprofError(f"{where}: time {value!r} is not a date and time; write it as 2026-11-27T03:19:28 "
                     f"(the pump's local time)")


def _number(value, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise KprofError(f"{where}: {value!r} is not a number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise KprofError(f"{where}: {value} is out of range ({lo}–{hi})")
    return float(value)


def normalize_history(records, where: str) -> list:
    """Check initial history records (module docstring) and return them in the emulator's own form."""
    if records is None:
        return []
    if not isinstance(records, list):
        raise KprofError(f"{where}: must be a list of records such as "
                         f"{{type: Bolus, time: '2026-11-27T03:19:28', amount: 1.5}}")
    out = []
    for i, rec in enumerate(records):
        w = f"{where}[{i}]"
        if not isinstance(rec, dict) or "type" not in rec:
            raise KprofError(f"{w}: must be a mapping with a 'type' (TempBasal, Bolus, PumpSuspend, PumpResume, "
                             f"Raw)")
        rtype = rec["type"]
        allowed = {"TempBasal": {"type", "time", "temp", "rate", "duration"},
                   "Bolus": {"type", "time", "amount", "programmed", "duration", "unabsorbed"},
                   "PumpSuspend": {"type", "time"}, "PumpResume": {"type", "time"}, "Raw": {"type", "hex"}}
        if rtype not in allowed:
            raise KprofError(f"{w}.type: unknown record type {rtype!r}; use one of {', '.join(allowed)}")
        extra = set(rec) - allowed[rtype]
        if extra:
            raise KprofError(f"{w}: unknown key(s) {', '.join(sorted(map(str, extra)))} for a {rtype} record; "
                             f"allowed: {', '.join(sorted(allowed[rtype]))}")
        if rtype == "Raw":
            try:
                data = bytes.fromhex(str(rec.get("hex", "")))
            except ValueError:
                raise KprofError(f"{w}.hex: not hexadecimal bytes") from None
            if not data:
                raise KprofError(f"{w}.hex: needs the record's bytes in hex, e.g. '1f0001020304'")
            out.append({"type": "Raw", "hex": data.hex()})
            continue
        if "time" not in rec:
            raise KprofError(f"{w}: needs 'time' (the pump's local time, e.g. 2026-11-27T03:19:28)")
        t = _parse_time(rec["time"], f"{w}.time")
        if not 2000 <= t.year <= 2127:
            raise KprofError(f"{w}.time: the pump's history holds years 2000–2127 only")
        entry = {"type": rtype, "time": t.isoformat()}
        if rtype == "TempBasal":
            temp = rec.get("temp", "absolute")
            if temp not in ("absolute", "percent"):
                raise KprofError(f"{w}.temp: must be 'absolute' or 'percent'")
            if "rate" not in rec or "duration" not in rec:
                raise KprofError(f"{w}: a TempBasal needs 'rate' (U/h, or percent) and 'duration' (minutes)")
            rate = _number(rec["rate"], f"{w}.rate", 0, 255 if temp == "percent" else 51.175)
            dur = _number(rec["duration"], f"{w}.duration", 0, 1440)
            if dur % 30:
                raise KprofError(f"{w}.duration: {dur:g} is not a multiple of 30 minutes")
            entry.update(temp=temp, rate=int(rate) if temp == "percent" else rate, duration=int(dur))
        elif rtype == "Bolus":
            if "amount" not in rec:
                raise KprofError(f"{w}: a Bolus needs 'amount' (units)")
            amount = _number(rec["amount"], f"{w}.amount", 0, 25.5)
            prog = _number(rec.get("programmed", amount), f"{w}.programmed", 0, 25.5)
            dur = _number(rec.get("duration", 0), f"{w}.duration", 0, 480)
            if dur % 30:
                raise KprofError(f"{w}.duration: {dur:g} is not a multiple of 30 minutes")
            unabs = _number(rec.get("unabsorbed", 0), f"{w}.unabsorbed", 0, 25.5)
            entry.update(amount=amount, programmed=prog, duration=int(dur), unabsorbed=unabs)
        out.append(entry)
    return out


SCHEDULES = {   # key: (value keys, most entries, what a value is)
    "basal_schedule": (("rate",), 48, "U/h"),
    "bg_targets": (("low", "high"), 8, "BG"),
    "sensitivities": (("sensitivity",), 8, "BG per unit"),
    "carb_ratios": (("ratio",), 8, "g/U"),
}


def _start_half_hours(value, where: str) -> int:
    """``start``: "HH:MM" on a half hour, or minutes since midnight (YAML reads an unquoted 22:00 as 1320)."""
    minutes = None
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    elif isinstance(value, str):
        parts = value.strip().split(":")
        if 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts) and (len(parts) == 2 or int(parts[2]) == 0) \
                and int(parts[1]) < 60:
            minutes = int(parts[0]) * 60 + int(parts[1])
    if minutes is None or not 0 <= minutes < 1440:
        raise KprofError(f"{where}: {value!r} is not a time of day; write it as '08:30'")
    if minutes % 30:
        raise KprofError(f"{where}: {value!r}: the pump's schedules start on the hour or the half hour")
    return minutes // 30


def _units(value: float, scale: int, where: str, lo: float, hi: float) -> int:
    """``value`` × ``scale`` as a whole number of pump units, within [lo, hi] (in the value's own units)."""
    _number(value, where, lo, hi)
    n = round(value * scale)
    if abs(n - value * scale) > 1e-6:
        raise KprofError(f"{where}: {value} is not a multiple of {1 / scale:g}")
    return n


def normalize_schedule(key: str, entries, family: int, bg_units: str, where: str) -> list:
    """A schedule from the config → [(start half-hours, value, …)] in the pump's units (P.*_body)."""
    keys, most, what = SCHEDULES[key]
    example = "{start: '00:00', " + ", ".join(f"{k}: …" for k in keys) + "}"
    if not isinstance(entries, list) or not entries:
        raise KprofError(f"{where}: must be a list of entries such as {example}")
    if len(entries) > most:
        raise KprofError(f"{where}: {len(entries)} entries; the pump holds at most {most}")
    mmol = bg_units == "mmol/L"
    out = []
    for i, e in enumerate(entries):
        w = f"{where}[{i}]"
        if not isinstance(e, dict) or set(e) != {"start", *keys}:
            raise KprofError(f"{w}: must be a mapping with exactly the keys start, {', '.join(keys)}, "
                             f"e.g. {example}")
        start = _start_half_hours(e["start"], f"{w}.start")
        if (i == 0) != (start == 0) or (out and start <= out[-1][0]):
            raise KprofError(f"{w}.start: the first entry starts at 00:00 and each later one after the one "
                             f"before it")
        if key == "basal_schedule":
            values = (_units(e["rate"], 40, f"{w}.rate", 0, 35),)          # 25 mU/h strokes
        elif key == "bg_targets":
            values = tuple(_units(e[k], 10 if mmol else 1, f"{w}.{k}", 0, 25.5 if mmol else 255) for k in keys)
            if values[0] > values[1]:
                raise KprofError(f"{w}: low {e['low']} is above high {e['high']}")
        elif key == "sensitivities":
            values = (_units(e["sensitivity"], 10 if mmol else 1, f"{w}.sensitivity", 0, 51.1 if mmol else 511),)
        else:                   # carb ratios: whole g/U on x22 and older, tenths on x23 and newer
            if family <= 22:
                values = (_units(e["ratio"], 1, f"{w}.ratio (a x{family} pump stores whole g/U)", 1, 255),)
            else:
                values = (_units(e["ratio"], 10, f"{w}.ratio", 0.1, 6553.5),)
        out.append((start, *values))
    return out


def validate_config(cfg: PumpConfig, where: str = "pump") -> None:
    """Raise KprofError naming ``where`` and the setting for any bad value in ``cfg``."""
    if not isinstance(cfg.id, str) or len(cfg.id) != 6 or any(c not in "0123456789abcdefABCDEF" for c in cfg.id):
        raise KprofError(f"{where}: id: {cfg.id!r} is not a pump ID; write the 6 hex digits of "
                         f"MEDTRONIC_PUMP_ID in quotes, e.g. id: \"123456\"")
    if str(cfg.model) not in MODELS:
        raise KprofError(f"{where}: model: {cfg.model!r} is not a supported pump model; use one of "
                         f"{', '.join(MODELS)} (x22 and older use the old reservoir format, x23 and newer the new)")
    _number(cfg.reservoir, f"{where}: reservoir", 0, 300)
    _number(cfg.battery, f"{where}: battery", 0, 2.0)
    _number(cfg.clock_offset, f"{where}: clock_offset", -10 * 365 * 86400, 10 * 365 * 86400)
    _number(cfg.max_basal, f"{where}: max_basal", 0, 35)
    _number(cfg.max_bolus, f"{where}: max_bolus", 0, 25)
    if cfg.frequency is not None:
        _number(cfg.frequency, f"{where}: frequency", 860, 920)
    if isinstance(cfg.insulin_action_curve, bool) or cfg.insulin_action_curve not in range(2, 9):
        raise KprofError(f"{where}: insulin_action_curve: {cfg.insulin_action_curve!r} is not a whole number of "
                         f"hours from 2 to 8")
    if cfg.bg_units not in P.BG_UNITS:
        raise KprofError(f"{where}: bg_units: {cfg.bg_units!r}; use mg/dL or mmol/L")
    for key in SCHEDULES:
        normalize_schedule(key, getattr(cfg, key), P.family_of(str(cfg.model)), cfg.bg_units, f"{where}: {key}")
    if not isinstance(cfg.latency, bool):
        raise KprofError(f"{where}: latency: must be true or false")
    try:
        parse_fault(cfg.fault)
    except ValueError as e:
        raise KprofError(f"{where}: fault: {e}") from None
    normalize_history(cfg.history, f"{where}: history")


_CONFIG_KEYS = ("id", "model", "reservoir", "battery", "clock_offset", "history", "fault", "latency", "max_basal",
                "max_bolus", "frequency", "insulin_action_curve", "basal_schedule", "bg_units", "bg_targets",
                "sensitivities", "carb_ratios")


def config_from_mapping(spec: dict, where: str = "pump") -> PumpConfig:
    """A scenario's ``pump:`` mapping → PumpConfig; unknown keys or bad values → KprofError."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise KprofError(f"{where}: must be a mapping of pump settings ({', '.join(_CONFIG_KEYS)})")
    unknown = [k for k in spec if k not in _CONFIG_KEYS]
    if unknown:
        raise KprofError(f"{where}: unknown key {', '.join(repr(k) for k in unknown)}; "
                         f"allowed: {', '.join(_CONFIG_KEYS)}")
    values = dict(spec)
    if isinstance(values.get("id"), int) and not isinstance(values.get("id"), bool):
        # YAML reads id: 123456 as a number; accept it when its digits are the 6 characters meant
        s = str(values["id"])
        if len(s) != 6:
            raise KprofError(f"{where}: id: {values['id']} was read as a number; quote it: id: \"{s.zfill(6)}\"")
        values["id"] = s
    if isinstance(values.get("model"), int) and not isinstance(values.get("model"), bool):
        values["model"] = str(values["model"])
    for k in ("reservoir", "battery", "clock_offset", "max_basal", "max_bolus", "frequency"):
        if k in values and not (k == "frequency" and values[k] is None):
            _number(values[k], f"{where}: {k}")
    cfg = PumpConfig(**values)
    validate_config(cfg, where)
    cfg.reservoir = float(cfg.reservoir)
    cfg.battery = float(cfg.battery)
    cfg.clock_offset = float(cfg.clock_offset)
    return cfg
