"""The emulated Medtronic pump itself (no I/O, no radio): its state and its answers to pump packets.

:class:`_Pump` holds reservoir, temp basal, bolus, suspend, clock, history and sleep; ``handle`` takes a heard
packet (without its CRC) and returns the reply packet (with CRC) or None, with a note.  The radio in front of
it (``emulator.PumpEmulator``) decides what reaches it and how the reply goes on the air; the pump's settings
and faults are ``config``'s.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
import time

from profiler.errors import KprofError
from profiler.pump import protocol as P
from profiler.pump.config import STATE_CHANGES, Fault, PumpConfig, normalize_history, normalize_schedule

DEFAULT_WAKEUPS = 20
SLEEP_AFTER_S = 600.0
BOLUS_RATE_MU_PER_S = 1500 / 60   # 1.5 U/min
LOW_BATTERY_MV = 1300


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
