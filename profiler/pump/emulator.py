"""A subg_rfspy (CC111x) UART radio with a Medtronic 5xx/7xx pump behind it, served on a pseudo-terminal.

The emulator owns a pty pair: a client opens the slave (``slave_path``) exactly as it would open
``/dev/serial0`` on a rig, and the emulator plays the radio firmware on the master side, with the pump
"on the air" behind it.  It follows the specification ``pump-protocol.md``:

* **firmware** (§2): requests are buffered until complete; GetState, GetVersion (``subg_rfspy 1.0``),
  GetPacket, SendPacket, SendAndListen, Update/ReadRegister, Reset and LED (no reply), command bytes 00
  and > 09 ignored; a byte that arrives while the radio listens interrupts it (``BB 00``, then the new
  command runs); every reply is one ``write`` ending in 00; a packet counter that starts at 1 and never
  sends 00;
* **air** (mmtune): the pump has a frequency (``PumpConfig.frequency``, else the command's
  ``MEDTRONIC_FREQUENCY``); a packet is heard with RSSI -49 dBm on it, 7 dB less per 50 kHz off it, and not
  at all more than 150 kHz off (RX timeout), so mmtune's scan finds a real best frequency;
* **pump** (§4): heard packets must decode, pass CRC-8, be type A7 and carry this pump's ID, otherwise
  the radio answers ``AA 00`` (RX timeout).  Commands 8D, 73, CE, 70, 72, 98, 9D, 71, 74 and the
  settings and schedules below are answered;
  5D is ACKed; 4C, 69, 42, 5B, 40, 4D and 80 are two-step (ACK the short packet, act on the long one);
  history pages stream as 16 fragments on ACKs and a NAK re-sends the last fragment; anything else is
  NAKed with 08 (CommandRefused);
* **framings**: ``handle_request`` is the framing-agnostic core (one request in, a :class:`Reply` out);
  the pty server here is one framing, and an emulator that is never ``start()``ed serves it alone;
* **state** persists for the emulator's life: reservoir, temp basal (counts down), bolusing (1.5 U/min),
  suspended, clock offset, history, asleep/awake, registers (frequency);
* **latency** (§5.4) when ``latency`` is true: UART time (0.52 ms/byte), air time (16.39 kbit/s) and a
  3 ms turnaround, never more than half the request's listen timeout T; an RX timeout takes the whole
  listen, T, as on a real radio (``listen -t 1s``: 1 s; a silent pump's final 10 s wake-up: 10 s).  With
  ``latency`` false every reply, RX timeouts included, is immediate;
* **clock**: the pump's local time in the zone of the command's ``TZ`` (``PumpEmulator(env=…)``);
* **settings** (C0, or 91 for x12 and older), basal rates (92, an extended response of 2 fragments, the
  second after one ACK), BG targets (9F, or 8C), insulin sensitivities (8B) and carb ratios (8A), in the
  model's format, from ``PumpConfig`` (``max_bolus``, ``max_basal``, ``insulin_action_curve``,
  ``basal_schedule``, ``bg_units``, ``bg_targets``, ``sensitivities``, ``carb_ratios``; the defaults are
  ecc1's test vectors: 1.0 U/h from 00:00 and 1.2 from 09:00, 80-120 then 90-110 mg/dL from 08:00, 50 then
  60 mg/dL/U from 22:00, 10 then 12 g/U from 08:00).

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
import gc
import math
import os
import re
import select
import sys
import threading
import time
import tty
from dataclasses import dataclass, field

from profiler.errors import KprofError
from profiler.pump import protocol as P

# --- configuration ----------------------------------------------------------------------------------

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
DEFAULT_WAKEUPS = 20
SLEEP_AFTER_S = 600.0
BOLUS_RATE_MU_PER_S = 1500 / 60   # 1.5 U/min
LOW_BATTERY_MV = 1300


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


# --- timing (§5.4) -----------------------------------------------------------------------------------

UART_S_PER_BYTE = 10 / 19200          # 8N1 at 19200 baud
AIR_S_PER_BYTE = 8 / 16390            # 16.39 kbit/s
AIR_PREAMBLE_S = 0.004
TURNAROUND_S = 0.003
INTERRUPTED_GAP_S = 0.006

# --- the air between radio and pump: the pump hears (and is heard) only near its own frequency ---------

RSSI_PEAK_DBM = -49                 # RSSI byte 30, as every reply carried before RSSI depended on frequency
RSSI_DB_PER_KHZ = 0.14              # 7 dB less per 50 kHz (one mmtune step) off the pump's frequency
PUMP_BANDWIDTH_HZ = 150_000         # farther off, neither side hears the other: RX timeout


def rssi_byte(offset_hz: int) -> int | None:
    """The RSSI byte (§2.3) of a packet heard ``offset_hz`` off the pump's frequency; None: not heard."""
    off_khz = round(abs(offset_hz) / 1000)       # the FREQ words are ~10 Hz off the round frequencies
    if off_khz * 1000 > PUMP_BANDWIDTH_HZ:
        return None
    dbm = RSSI_PEAK_DBM - RSSI_DB_PER_KHZ * off_khz
    return (round((dbm + 73) * 2) & 0xFF) or 1


def pump_zone(tz: str | None):
    """The zone of the pump's clock from a TZ value (as the client's glibc reads it); None: this process's zone.

    Zone names (Europe/Paris, UTC, with or without a leading ':'), a zone file's path, '' (UTC) and POSIX
    fixed offsets such as UTC0 or <+03>-3 are understood; POSIX rules with daylight saving are not.
    """
    if tz is None:
        return None
    name = tz[1:] if tz.startswith(":") else tz
    if name == "":
        return _dt.timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        if name.startswith("/"):
            with open(name, "rb") as f:
                return ZoneInfo.from_file(f, key=name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    m = re.fullmatch(r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]+>)([+-]?)(\d{1,2})(?::(\d{2}))?", name)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
        return _dt.timezone(_dt.timedelta(minutes=minutes if m.group(1) == "-" else -minutes))
    raise KprofError(f"TZ={tz!r}: the pump emulator cannot read this zone; use a zone name such as UTC or "
                     f"Europe/Paris, or a fixed offset such as UTC0")


def _air(n_encoded: int) -> float:
    return AIR_PREAMBLE_S + n_encoded * AIR_S_PER_BYTE


# --- the pump -----------------------------------------------------------------------------------------

class _Pump:
    """Pump state and command logic (no I/O).  ``handle`` returns a reply packet (with CRC) or None."""

    def __init__(self, cfg: PumpConfig, fault: Fault, hit, zone=None):
        self.address = P.pump_address(cfg.id)
        self.zone = zone              # tzinfo of the pump's clock; None: this process's local zone
        self.id = cfg.id
        self.model = str(cfg.model)
        self.family = P.family_of(self.model)
        self.reservoir_mu = round(cfg.reservoir * 1000)
        self.battery_mv = round(cfg.battery * 1000)
        self.clock_offset = float(cfg.clock_offset)
        self.max_basal_mu = round(cfg.max_basal * 1000)
        self.max_bolus_mu = round(cfg.max_bolus * 1000)
        self.history = normalize_history(cfg.history, "history")
        self.replies = self.settings_replies(cfg)
        self.fault = fault
        self.hit = hit
        self.temp = None              # {"temp", "rate" (mU/h or percent), "duration", "end" (monotonic)}
        self.suspended = False
        self.bolus_end = 0.0
        self.last_bolus_mu = 0
        self.asleep = fault.mode == "asleep"
        self.wakeups_needed = (fault.count or DEFAULT_WAKEUPS) if self.asleep else 0
        self.wakeups = 0
        self.last_heard = time.monotonic()
        self.pending = None           # two-step command whose long packet is awaited
        self.transfer = None          # {"page", "fragments", "index"} while a history page streams
        self.buttons = []
        self.fragments_sent = 0

    # clock
    def now(self) -> _dt.datetime:
        """The pump's clock: local time (naive) in the pump's zone."""
        t = _dt.datetime.fromtimestamp(time.time() + self.clock_offset, self.zone)
        return t.replace(tzinfo=None, microsecond=0)

    def set_clock(self, t: _dt.datetime) -> None:
        at = t.replace(tzinfo=self.zone) if self.zone is not None else t
        self.clock_offset = at.timestamp() - time.time()

    # settings and schedules: fixed for the emulator's life
    def settings_replies(self, cfg: PumpConfig) -> dict:
        """Command code → data response body, or a list of extended-response fragments (basal)."""
        f, units = self.family, P.BG_UNITS[cfg.bg_units]

        def sched(key):
            return normalize_schedule(key, getattr(cfg, key), f, cfg.bg_units, key)
        old = f <= 12
        return {
            P.SETTINGS_512 if old else P.SETTINGS: P.settings_body(
                f, round(cfg.max_bolus * 10), round(cfg.max_basal * 40), cfg.insulin_action_curve),
            P.BASAL_RATES: P.extended_fragments(P.basal_schedule_data(sched("basal_schedule"))),
            P.GLUCOSE_TARGETS_512 if old else P.GLUCOSE_TARGETS: P.glucose_targets_body(f, units, sched("bg_targets")),
            P.INSULIN_SENSITIVITIES: P.sensitivities_body(units, sched("sensitivities")),
            P.CARB_RATIOS: P.carb_ratios_body(f, P.CARB_UNITS["grams"], sched("carb_ratios")),
        }

    def temp_remaining_min(self) -> int:
        if self.temp is None:
            return 0
        left = self.temp["end"] - time.monotonic()
        if left <= 0:
            self.temp = None
            return 0
        return math.ceil(left / 60)

    def bolusing(self) -> bool:
        return time.monotonic() < self.bolus_end

    # replies
    def data(self, cmd: int, body: bytes) -> bytes:
        return P.data_response(self.address, cmd, body)

    def ack(self) -> bytes:
        return P.ack_packet(self.address)

    def nak(self, code: int) -> bytes:
        return P.nak_packet(self.address, code)

    # history
    def record_bytes(self, entry: dict) -> bytes:
        if entry["type"] == "Raw":
            return bytes.fromhex(entry["hex"])
        t = _dt.datetime.fromisoformat(entry["time"])
        if entry["type"] == "TempBasal":
            if entry["temp"] == "percent":
                return P.temp_basal_records(t, "percent", int(entry["rate"]), entry["duration"] // 30)
            return P.temp_basal_records(t, "absolute", round(entry["rate"] * 1000) // 25, entry["duration"] // 30)
        if entry["type"] == "Bolus":
            return P.bolus_record(t, self.family, round(entry["programmed"] * 1000), round(entry["amount"] * 1000),
                                  entry["duration"] // 30, round(entry["unabsorbed"] * 1000))
        return P.suspend_record(t, entry["type"] == "PumpSuspend")

    def pages(self) -> list:
        """History pages, page 0 (newest records) first; each page's records oldest first."""
        pages, current, size = [], [], 0
        for entry in reversed(self.history):
            rec = self.record_bytes(entry)
            if size + len(rec) > P.PAGE_DATA:
                pages.append(b"".join(reversed(current)))
                current, size = [], 0
                if len(pages) > P.MAX_HISTORY_PAGE:
                    break
            current.append(rec)
            size += len(rec)
        if current or not pages:
            pages.append(b"".join(reversed(current)))
        return [P.make_page(p) for p in pages[:P.MAX_HISTORY_PAGE + 1]]

    def add_history(self, entry: dict) -> None:
        entry = {"type": entry["type"], "time": self.now().isoformat(), **{k: v for k, v in entry.items()
                                                                            if k != "type"}}
        self.history.append(entry)

    # the command dispatcher
    def handle(self, pkt: bytes):
        """``pkt``: a heard packet without its CRC (6 or 70 bytes).  Returns (reply or None, note)."""
        cmd = pkt[4]
        is_long = len(pkt) == P.LONG_PACKET_LEN - 1
        now = time.monotonic()
        if self.fault.mode == "asleep":
            if not self.asleep and now - self.last_heard > SLEEP_AFTER_S:
                self.asleep, self.wakeups = True, 0
            self.last_heard = now
            if self.asleep:
                if cmd == P.WAKEUP and not is_long:
                    self.wakeups += 1
                    if self.wakeups >= self.wakeups_needed:
                        self.asleep = False
                        return self.ack(), f"woke up after {self.wakeups} wake-ups"
                return None, "asleep"
        if self.fault.mode == "no-response" and self.hit(cmd):
            return None, "no-response"
        if self.fault.mode == "nak" and cmd not in (P.ACK, P.NAK) and self.hit(cmd):
            return self.nak(P.NAK_COMMAND_REFUSED), "nak"
        if not is_long:
            return self.handle_short(cmd)
        return self.handle_long(cmd, pkt)

    def handle_short(self, cmd: int):
        if cmd == P.ACK:
            return self.next_fragment()
        if cmd == P.NAK:
            if self.transfer is None:
                return None, "NAK outside a history transfer"
            f = self.transfer
            return self.data(f["cmd"], f["fragments"][f["index"]]), f"re-sent fragment {f['index'] + 1}"
        self.transfer = None
        if cmd in P.TWO_STEP_COMMANDS:
            self.pending = cmd
            return self.ack(), None
        self.pending = None
        if cmd == P.MODEL:
            digits = self.model.encode()
            return self.data(cmd, bytes([len(digits) + 1, len(digits)]) + digits), None
        if cmd == P.RESERVOIR:
            if self.family <= 22:
                return self.data(cmd, b"\x02" + (self.reservoir_mu // 100).to_bytes(2, "big")), None
            return self.data(cmd, b"\x04\x00\x00" + (self.reservoir_mu // 25).to_bytes(2, "big")), None
        if cmd == P.STATUS:
            return self.data(cmd, bytes([3, 3, int(self.bolusing()), int(self.suspended)])), None
        if cmd == P.CLOCK:
            t = self.now()
            return self.data(cmd, bytes([7, t.hour, t.minute, t.second]) + t.year.to_bytes(2, "big")
                             + bytes([t.month, t.day])), None
        if cmd == P.BATTERY:
            low = int(self.battery_mv < LOW_BATTERY_MV)
            return self.data(cmd, bytes([3, low]) + (self.battery_mv // 10).to_bytes(2, "big")), None
        if cmd == P.TEMP_BASAL:
            left = self.temp_remaining_min()
            if self.temp is None:
                return self.data(cmd, bytes([6, 0, 0, 0, 0, 0, 0])), None
            if self.temp["temp"] == "percent":
                body = bytes([6, 1, self.temp["rate"], 0, 0])
            else:
                body = bytes([6, 0, 0]) + (self.temp["rate"] // 25).to_bytes(2, "big")
            return self.data(cmd, body + left.to_bytes(2, "big")), None
        if cmd == P.WAKEUP:
            return self.ack(), None
        if cmd == P.LAST_HISTORY_PAGE:
            if self.family in (12, 8, 11):
                return self.nak(P.NAK_COMMAND_REFUSED), "x12 pumps refuse 9D"
            return self.data(cmd, b"\x04" + (len(self.pages()) - 1).to_bytes(4, "big")), None
        if cmd == P.PUMP_ID:
            return self.data(cmd, bytes([len(self.id)]) + self.id.encode()), None
        if cmd == P.FIRMWARE_VERSION:
            fw = b"VER 2.4A1.1"
            return self.data(cmd, bytes([len(fw)]) + fw), None
        reply = self.replies.get(cmd)
        if isinstance(reply, list):           # an extended response: fragment 1 now, the others on ACKs
            self.transfer = {"cmd": cmd, "fragments": reply, "index": 0}
            return self.data(cmd, reply[0]), f"fragment 1 of {len(reply)}"
        if reply is not None:
            return self.data(cmd, reply), None
        return self.nak(P.NAK_COMMAND_REFUSED), f"unknown command {cmd:02X}"

    def next_fragment(self):
        f = self.transfer
        if f is None or f["index"] >= len(f["fragments"]) - 1:
            self.transfer = None
            return None, "ACK outside a multi-packet transfer"
        history = f["cmd"] == P.HISTORY_PAGE
        # a duplicate once per page at most: the client ACKs a duplicate again, so duplicating every
        # fragment would never end
        if history and self.fault.mode == "duplicate-fragment" and not f.get("duplicated") \
                and self.hit(P.HISTORY_PAGE):
            f["duplicated"] = True
            return self.data(f["cmd"], f["fragments"][f["index"]]), "duplicate-fragment"
        f["index"] += 1
        if history and self.fault.mode == "lost-fragment" and self.hit(P.HISTORY_PAGE):
            return None, "lost-fragment"
        if history:
            self.fragments_sent += 1
        return self.data(f["cmd"], f["fragments"][f["index"]]), None if history else \
            f"fragment {f['index'] + 1} of {len(f['fragments'])}"

    def handle_long(self, cmd: int, pkt: bytes):
        if self.pending != cmd:
            self.pending = None
            return self.nak(P.NAK_COMMAND_REFUSED), "long packet without its short step"
        self.pending = None
        n = pkt[5]
        params = pkt[6:6 + min(n, P.LONG_PARAMS)]
        if cmd == P.HISTORY_PAGE:
            page_no = params[0] if params else 0
            pages = self.pages()
            if page_no >= len(pages):
                return self.nak(P.NAK_INVALID_HISTORY_PAGE), f"no page {page_no}"
            page = pages[page_no]
            note = None
            if self.fault.mode == "page-crc" and self.hit(cmd):
                page = page[:P.PAGE_DATA] + bytes([page[P.PAGE_DATA] ^ 0xFF, page[P.PAGE_DATA + 1] ^ 0x5A])
                note = "page-crc"
            frags = P.page_fragments(page)
            self.transfer = {"cmd": cmd, "page": page_no, "fragments": frags, "index": 0}
            self.fragments_sent += 1
            return self.data(cmd, frags[0]), note
        reply, note = self.apply(cmd, params)
        if reply is not None and reply[4] == P.ACK and cmd in STATE_CHANGES \
                and self.fault.mode == "ack-lost" and self.hit(cmd):
            return None, "ack-lost"
        return reply, note

    def apply(self, cmd: int, params: bytes):
        refuse = self.nak(P.NAK_COMMAND_REFUSED)
        out_of_range = self.nak(P.NAK_SETTING_OUT_OF_RANGE)
        if cmd in (P.SET_ABSOLUTE_TEMP_BASAL, P.SET_PERCENT_TEMP_BASAL):
            if cmd == P.SET_ABSOLUTE_TEMP_BASAL:
                if len(params) < 3:
                    return out_of_range, "short parameters"
                rate, hh, temp = int.from_bytes(params[0:2], "big") * 25, params[2], "absolute"
                if rate > self.max_basal_mu:
                    return out_of_range, f"rate {rate / 1000} U/h above max basal"
            else:
                if len(params) < 2:
                    return out_of_range, "short parameters"
                rate, hh, temp = params[0], params[1], "percent"
                if rate > 200:
                    return out_of_range, f"{rate} % out of range"
            if hh > 48:
                return out_of_range, f"{hh * 30} min longer than 24 h"
            if hh == 0:
                self.temp = None
            else:
                self.temp = {"temp": temp, "rate": rate, "duration": hh * 30,
                             "end": time.monotonic() + hh * 1800}
            self.add_history({"type": "TempBasal", "temp": temp,
                              "rate": rate if temp == "percent" else rate / 1000, "duration": hh * 30})
            return self.ack(), None
        if cmd == P.BOLUS:
            if len(params) == 1:
                amount = params[0] * 100
            elif len(params) == 2:
                amount = int.from_bytes(params, "big") * 25
            else:
                return out_of_range, "bad bolus parameters"
            if self.bolusing():
                return self.nak(P.NAK_BOLUS_IN_PROGRESS), "bolus in progress"
            if self.suspended:
                return refuse, "suspended"
            if amount > self.max_bolus_mu or amount > self.reservoir_mu:
                return out_of_range, f"bolus {amount / 1000} U refused"
            self.reservoir_mu -= amount
            self.last_bolus_mu = amount
            self.bolus_end = time.monotonic() + amount / BOLUS_RATE_MU_PER_S
            self.add_history({"type": "Bolus", "amount": amount / 1000, "programmed": amount / 1000,
                              "duration": 0, "unabsorbed": 0.0})
            return self.ack(), None
        if cmd == P.BUTTON:
            if not params or params[0] > 4:
                return out_of_range, "unknown button"
            self.buttons.append({v: k for k, v in P.BUTTONS.items()}[params[0]])
            return self.ack(), None
        if cmd == P.SET_CLOCK:
            if len(params) < 7:
                return out_of_range, "short parameters"
            try:
                self.set_clock(_dt.datetime(int.from_bytes(params[3:5], "big"), params[5], params[6], params[0],
                                            params[1], params[2]))
            except (ValueError, OverflowError, OSError):
                return out_of_range, "bad date"
            return self.ack(), None
        if cmd == P.SUSPEND:
            if not params or params[0] > 1:
                return out_of_range, "suspend parameter must be 0 or 1"
            self.suspended = params[0] == 1
            self.add_history({"type": "PumpSuspend" if self.suspended else "PumpResume"})
            return self.ack(), None
        return refuse, f"command {cmd:02X} takes no parameters"

    def state(self) -> dict:
        left = self.temp_remaining_min()
        temp = None
        if self.temp is not None:
            temp = {"temp": self.temp["temp"], "duration": left,
                    "rate": self.temp["rate"] if self.temp["temp"] == "percent" else self.temp["rate"] / 1000}
        return {
            "id": self.id, "model": self.model, "family": self.family,
            "reservoir": self.reservoir_mu / 1000, "battery": self.battery_mv / 1000,
            "clock": self.now().isoformat(), "clock_offset": round(self.clock_offset, 3),
            "temp_basal": temp, "suspended": self.suspended, "bolusing": self.bolusing(),
            "last_bolus": self.last_bolus_mu / 1000, "awake": not self.asleep,
            "wakeups_heard": self.wakeups, "buttons": list(self.buttons),
            "history_length": len(self.history), "history": [dict(h) for h in self.history],
            "history_pages": len(self.pages()),
        }


# --- the radio firmware and the pty --------------------------------------------------------------------

MAX_EXCHANGES = 20000


@dataclass
class Reply:
    steps: list = field(default_factory=list)   # [(delay_s, bytes)]
    listening: bool = False                      # a byte arriving before the reply interrupts it
    fault: str | None = None
    command: str | None = None
    note: str | None = None


def _prefer_this_thread() -> None:
    """The radio must answer within the client's timeouts (50 ms for GetVersion and register updates, §1.6),
    while the traced command, strace, kprof's log analysis and other scenarios (-j) want the same cores: give
    the serving thread a larger CPU share (nice -10 for this thread only).
    Needs CAP_SYS_NICE; without it the thread keeps its priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
    except OSError:
        pass


class PumpEmulator:
    """The radio + pump on a pty.  ``start()`` → serve; ``slave_path`` for the client; ``stop()``.

    The core is framing-agnostic: ``handle_request(req)`` takes one complete subg_rfspy request and returns
    the :class:`Reply` (what to send, after which delays), and ``record(...)`` logs an exchange.  The pty
    server is one framing; an emulator that is never ``start()``ed serves ``handle_request`` alone (no pty),
    e.g. for another transport.

    ``env``: the environment of the command the pump serves.  Its ``TZ`` is the zone of the pump's clock
    (absent: this process's zone), and its ``MEDTRONIC_FREQUENCY`` the pump's frequency unless
    ``config.frequency`` sets it (neither: ecc1's default, 916.600 MHz).

    ``exchanges``: one dict per serial request, oldest first (the last 20000 are kept)::

        {"rx": s, "t": s,                 # request complete / reply written, seconds since start
         "radio": "SendAndListen",        # subg_rfspy command
         "command": "reservoir",          # pump command (Go name), None for radio-only commands
         "request": "05…00", "response": "3001…00" or None (nothing sent),
         "fault": None or the fault mode that shaped this reply,
         "note": "…" (optional), "interrupted": True (optional: a byte arrived while listening)}

    ``state``: the pump's state as a JSON-ready dict (reservoir, temp_basal, suspended, bolusing, clock,
    history, history_length, awake, clock_zone, frequency_mhz (the radio's), pump_frequency_mhz, requests, …).
    """

    def __init__(self, config: PumpConfig, env: dict | None = None):
        validate_config(config, "pump")
        self.config = config
        self.fault = parse_fault(config.fault)
        self._fault_hits = 0
        self._lock = threading.RLock()
        if env is None:
            env, self.zone = {}, None
        elif "TZ" in env:
            self.zone = pump_zone(env["TZ"])
        else:                                  # glibc without TZ: /etc/localtime, or UTC when there is none
            self.zone = pump_zone("/etc/localtime") if os.path.exists("/etc/localtime") else _dt.timezone.utc
        if config.frequency is not None:
            hz = round(config.frequency * 1_000_000)
        else:
            try:
                hz = P.parse_frequency(env.get("MEDTRONIC_FREQUENCY"))
            except ValueError:
                hz = P.DEFAULT_FREQUENCY_HZ      # the client refuses it and never transmits
        self.frequency_hz = P.word_frequency(P.frequency_word(hz))   # what a radio tuned to it reads back
        self._pump = _Pump(config, self.fault, self._hit, self.zone)
        self.registers = dict(P.REGISTER_DEFAULTS)
        self.counter = 0
        self.exchanges: list = []
        self.on_exchange = None        # optional callable(dict), called from the emulator thread
        self.slave_path: str | None = None
        self.error: str | None = None  # set if the serving thread died
        self.requests = 0
        self._master = self._slave = self._wake_r = self._wake_w = None
        self._thread = None
        self._stopping = False
        self._t0 = time.monotonic()
        self.started_at = self._t0     # time.monotonic() that exchange times ("rx", "t") count from

    # lifecycle
    def start(self) -> "PumpEmulator":
        if self._thread is not None:
            return self
        master, slave = os.openpty()
        try:
            tty.setraw(slave)            # no echo, no line discipline until the client sets its own termios
            os.set_blocking(master, False)
            self.slave_path = os.ttyname(slave)
            self._wake_r, self._wake_w = os.pipe()
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        # the serving thread may share the interpreter with other work (kprof runs it in the process that
        # waits for the scenario's namespaces, away from the live log analysis; other callers may not): a
        # thread holding the GIL gives it up only every switch interval (5 ms by default) and a full garbage
        # collection holds it for as long as it scans, while the client allows the radio 50 ms (§1.6):
        # switch every 1 ms, and keep the objects that exist now (modules, tables) out of later collections
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        gc.freeze()
        self._thread = threading.Thread(target=self._serve, name="kprof-pump-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None or self._stopping:
            return
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        self._thread.join(timeout=10)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._master = self._slave = self._wake_r = self._wake_w = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def state(self) -> dict:
        with self._lock:
            s = self._pump.state()
            s.update(frequency_mhz=round(self.radio_frequency_hz() / 1e6, 3),
                     pump_frequency_mhz=round(self.frequency_hz / 1e6, 3),
                     clock_zone="kprof's local zone" if self.zone is None else str(self.zone),
                     fault=self.fault.text, requests=self.requests, exchanges=len(self.exchanges),
                     packets_sent=self.counter)
            return s

    def radio_frequency_hz(self) -> int:
        return P.word_frequency((self.registers[P.REG_FREQ2] << 16) | (self.registers[P.REG_FREQ1] << 8)
                                | self.registers[P.REG_FREQ0])

    # faults
    def _hit(self, code) -> bool:
        """Does the configured fault apply to this exchange (command code or radio token)?  Counts @N."""
        f = self.fault
        if f.targets is not None:
            if code not in f.targets and not ("all" in f.targets):
                return False
        elif code in ("version", "register"):
            return False
        if f.mode == "asleep":
            return False
        if f.count is not None and self._fault_hits >= f.count:
            return False
        self._fault_hits += 1
        return True

    # timing
    def _rx_timeout_delay(self, timeout_ms: int):
        """An RX timeout takes the whole listen, as on a real radio; at once with latency off."""
        if timeout_ms == 0:
            return None                      # the firmware listens for ever (until interrupted)
        if not self.config.latency:
            return 0.0
        return timeout_ms / 1000

    def _reply_delay(self, seconds: float, timeout_ms: int | None = None) -> float:
        if not self.config.latency:
            return 0.0
        if timeout_ms:
            seconds = min(seconds, timeout_ms / 2000)
        return seconds

    def _next_counter(self) -> int:
        self.counter += 1
        return (self.counter - 1) % 255 + 1

    # request handling (the firmware)
    def handle_request(self, req: bytes) -> Reply:
        """One complete subg_rfspy request (§2.2) → what the radio sends back, when (``Reply.steps``).

        A truncated or over-long request (another framing may hand over any bytes) gets no answer.
        """
        if not req or P.request_length(req) != len(req):
            return Reply(note=f"malformed request {bytes(req[:16]).hex()}")
        cmd = req[0]
        uart = len(req) * UART_S_PER_BYTE
        if cmd == P.CMD_GET_VERSION:
            if self.fault.mode == "busy" and self._hit("version"):
                return Reply(fault="busy")
            out = P.VERSION_STRING + b"\0"
            return Reply([(self._reply_delay(uart + len(out) * UART_S_PER_BYTE), out)])
        if cmd == P.CMD_GET_STATE:
            return Reply([(self._reply_delay(uart + 3 * UART_S_PER_BYTE), b"OK\0")])
        if cmd == P.CMD_UPDATE_REGISTER:
            if self.fault.mode == "busy" and self._hit("register"):
                return Reply(fault="busy")
            addr, value = req[1], req[2]
            ok = addr <= P.REG_AMP_MODE
            if ok:
                self.registers[addr] = value
            out = bytes([P.REGISTER_UPDATE_OK if ok else P.REGISTER_UPDATE_INVALID, 0])
            return Reply([(self._reply_delay(uart + 2 * UART_S_PER_BYTE), out)])
        if cmd == P.CMD_READ_REGISTER:
            addr = req[1]
            value = self.registers.get(addr, 0) if addr < P.REG_AMP_MODE else P.REGISTER_READ_INVALID
            return Reply([(self._reply_delay(uart + 2 * UART_S_PER_BYTE), bytes([value, 0]))])
        if cmd in (P.CMD_RESET, P.CMD_LED):
            return Reply()
        if cmd == P.CMD_SEND_PACKET:
            data = req[4:-1]
            return Reply([(self._reply_delay(uart + _air(len(data))), b"\0")])
        if cmd == P.CMD_GET_PACKET:
            if self.fault.mode == "busy" and self._hit("listen"):
                return Reply(fault="busy", listening=True)
            timeout_ms = int.from_bytes(req[2:6], "big")
            delay = self._rx_timeout_delay(timeout_ms)
            if delay is None:
                return Reply(listening=True)
            return Reply([(delay, bytes([P.ERR_RX_TIMEOUT, 0]))], listening=True, note="nothing heard")
        if cmd == P.CMD_SEND_AND_LISTEN:
            return self._send_and_listen(req)
        return Reply(note=f"ignored byte {cmd:02X}")

    def _send_and_listen(self, req: bytes) -> Reply:
        timeout_ms = int.from_bytes(req[5:9], "big")
        encoded = req[10:-1]
        aa = self._rx_timeout_delay(timeout_ms)
        silent = Reply([] if aa is None else [(aa, bytes([P.ERR_RX_TIMEOUT, 0]))], listening=True)
        try:
            pkt = P.decode_packet(encoded)
        except P.ProtocolError as e:
            silent.note = f"not heard: {e}"
            return silent
        if (len(pkt) not in (P.SHORT_PACKET_LEN - 1, P.LONG_PACKET_LEN - 1) or pkt[0] != P.PACKET_PUMP
                or pkt[1:4] != self._pump.address):
            silent.note = "not for this pump"
            return silent
        cmd = pkt[4]
        name = P.COMMAND_NAMES.get(cmd, f"{cmd:02X}")
        silent.command = name
        if self.fault.mode == "busy" and self._hit(cmd):
            return Reply(fault="busy", command=name, listening=True)
        rssi = rssi_byte(self.radio_frequency_hz() - self.frequency_hz)
        if rssi is None:
            silent.note = (f"off frequency: the radio is on {self.radio_frequency_hz() / 1e6:.3f} MHz, "
                           f"the pump on {self.frequency_hz / 1e6:.3f}")
            return silent
        with self._lock:
            reply, note = self._pump.handle(pkt)
        if reply is None:
            silent.note = note
            silent.fault = note if note in FAULT_MODES else None
            return silent
        base = (len(req) * UART_S_PER_BYTE + _air(len(encoded)) + TURNAROUND_S
                + _air(P.encoded_length(len(reply))) + 3 * UART_S_PER_BYTE)
        delay = self._reply_delay(base, timeout_ms)
        fault = note if note in FAULT_MODES else None
        mode = self.fault.mode
        if mode == "wrong-pump" and self._hit(cmd):
            other = bytes(b ^ 0x11 for b in self._pump.address)
            reply = P.with_crc(reply[:1] + other + reply[4:-1])
            fault = mode
        if mode == "crc" and self._hit(cmd):
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])
            fault = mode
        enc = P.encode_4b6b(reply)
        if mode == "encoding" and self._hit(cmd):
            enc = enc[:6] + b"\xff" + enc[7:]
            fault = mode
        if mode == "zero-data" and self._hit(cmd):
            return Reply([(delay, bytes([P.ERR_ZERO_DATA, 0]))], listening=True, fault=mode, command=name)
        out = P.radio_packet_response(enc, rssi, self._next_counter())
        if mode == "interrupted" and self._hit(cmd):
            return Reply([(delay, bytes([P.ERR_INTERRUPTED, 0])), (INTERRUPTED_GAP_S, out)], listening=False,
                          fault=mode, command=name, note=note)
        if mode == "late" and self._hit(cmd):
            late = 2 * (timeout_ms + P.CLIENT_EXTRA_MS) / 1000 + 0.1
            return Reply([(late, out)], listening=False, fault=mode, command=name, note=note)
        return Reply([(delay, out)], listening=True, fault=fault, command=name, note=note)

    # the serving thread
    def _serve(self) -> None:
        _prefer_this_thread()
        buf = bytearray()
        try:
            while not self._stopping:
                n = P.request_length(buf)
                if n is None:
                    if self._wait(None, buf, interruptible=True) == "stop":
                        return
                    continue
                req = bytes(buf[:n])
                del buf[:n]
                rx = time.monotonic()
                self.requests += 1
                reply = self.handle_request(req)
                sent = []
                interrupted = False
                for delay, data in reply.steps:
                    # bytes already queued behind this request interrupt the listen at once (§2.1)
                    w = "input" if reply.listening and buf else self._wait(delay, buf, reply.listening)
                    if w == "stop":
                        return
                    if w == "input":       # a byte arrived while the radio listened (§2.1)
                        self._write(bytes([P.ERR_INTERRUPTED, 0]))
                        sent.append(bytes([P.ERR_INTERRUPTED, 0]))
                        interrupted = True
                        break
                    self._write(data)
                    sent.append(data)
                if not reply.steps and reply.listening and reply.fault is None:
                    # GetPacket/SendAndListen with timeout 0: listen until a byte interrupts the radio
                    if not buf and self._wait(None, buf, interruptible=True) == "stop":
                        return
                    self._write(bytes([P.ERR_INTERRUPTED, 0]))
                    sent.append(bytes([P.ERR_INTERRUPTED, 0]))
                    interrupted = True
                self.record(req, reply, sent, interrupted, rx)
        except Exception as e:  # noqa: BLE001 - keep the reason for the report; the client sees silence
            self.error = f"{type(e).__name__}: {e}"

    def record(self, req: bytes, reply: Reply, sent: list, interrupted: bool, rx: float) -> None:
        entry = {"rx": round(rx - self._t0, 4), "t": round(time.monotonic() - self._t0, 4),
                 "radio": P.RADIO_COMMAND_NAMES.get(req[0], f"{req[0]:02X}"),
                 "command": reply.command, "request": req.hex(),
                 "response": b"".join(sent).hex() if sent else None, "fault": reply.fault}
        if reply.note:
            entry["note"] = reply.note
        if interrupted:
            entry["interrupted"] = True
        self.exchanges.append(entry)
        if len(self.exchanges) > MAX_EXCHANGES:
            del self.exchanges[:len(self.exchanges) - MAX_EXCHANGES]
        if self.on_exchange is not None:
            try:
                self.on_exchange(entry)
            except Exception:  # noqa: BLE001 - a reporting callback must not stop the radio
                pass

    def _wait(self, delay, buf: bytearray, interruptible: bool) -> str:
        """Wait ``delay`` seconds (None: until input), reading input into ``buf``.

        Returns "timeout", "input" (bytes arrived and ``interruptible``) or "stop".
        """
        deadline = None if delay is None else time.monotonic() + delay
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            if self._stopping:
                return "stop"
            if deadline is None:
                timeout = None
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                timeout = max(1, math.ceil(left * 1000)) if left > 0.0005 else 0
            events = poller.poll(timeout)
            for fd, ev in events:
                if fd == self._wake_r:
                    return "stop"
                if fd == self._master:
                    try:
                        data = os.read(self._master, 4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        time.sleep(0.01)
                        continue
                    if data:
                        buf.extend(data)
                        if interruptible:
                            return "input"

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + 1.0
        while view:
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return          # the client's input queue is full: drop, as a UART would overrun
                select.select([], [self._master], [], 0.05)
