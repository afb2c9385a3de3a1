"""kprof's mdt-compatible pump client: ``mdt``, ``pumphistory`` and ``listen`` (stdlib only).

It talks to a subg_rfspy (CC111x) radio on a serial line the way ecc1's Go tools do when built with the
``uart`` tag, down to the system calls on the device (``pump-protocol.md`` §1.2-§1.7):

    openat(AT_FDCWD, "/dev/serial0", O_RDWR|O_NOCTTY|O_NONBLOCK)       (0x902, no O_CLOEXEC)
    ioctl(fd, TCSETS, {IGNPAR; B19200|CS8|CREAD|CLOCAL; VMIN=VTIME=0})  (one, no TCGETS before it)
    fcntl(fd, F_GETFL); fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
    per request: one write(fd, request); read(fd, buf, 256 - off) polling every 1 ms until the last 00
    close(fd)

The device is ``/dev/serial0`` unless ``KPROF_SERIAL_DEVICE`` names another (kprof's emulator pty).
``MEDTRONIC_PUMP_ID`` (6 hex digits) and ``MEDTRONIC_FREQUENCY`` (MHz or Hz) are read like the real
tools.  Which tool runs is decided by the basename of argv[0]:

    mdt [-f openaps|internal] model|reservoir|status|clock|battery|tempbasal|wakeup|pumpid|firmware
    mdt settempbasal FILE.json          (-f internal: settempbasal RATE MINUTES [absolute|percent])
    mdt bolus FILE.json                 (-f internal: bolus UNITS)
    mdt button KEY…  (b esc act up down)   mdt suspend | resume   mdt setclock now|"YYYY-MM-DD HH:MM:SS"
    pumphistory [-n HOURS | -a]        records newest first, openaps-style JSON
    listen [-t DURATION]                wait for a packet (Go duration, default 1h); exit 0 heard, 1 timeout

Exit status: 0 success; 2 the pump did not answer ("no response to <cmd>"); 1 any other error.
"""
from __future__ import annotations

import ctypes
import datetime as _dt
import fcntl
import json
import os
import signal
import struct
import sys
import time

from profiler.pump import protocol as P

DEFAULT_DEVICE = "/dev/serial0"

# --- the serial port ----------------------------------------------------------------------------------

O_RDWR, O_NOCTTY, O_NONBLOCK = 0o2, 0o400, 0o4000          # Linux generic values: 0x002, 0x100, 0x800
AT_FDCWD = -100
TCSETS = 0x5402
# c_iflag IGNPAR; c_oflag 0; c_cflag B19200|CS8|CREAD|CLOCAL; c_lflag 0; c_line 0; c_cc[19] all 0
TERMIOS = struct.pack("=IIIIB19s", 0x00000004, 0, 0x0E | 0x30 | 0x80 | 0x800, 0, 0, bytes(19))
assert len(TERMIOS) == 36

# openat's number per machine; Go's syscall.Open adds O_LARGEFILE, which is 0 on 64-bit ABIs
_SYS_OPENAT = {"x86_64": 257, "aarch64": 56, "arm64": 56, "riscv64": 56, "armv7l": 322, "armv6l": 322,
               "armv8l": 322, "i386": 295, "i486": 295, "i586": 295, "i686": 295}
_GO_O_LARGEFILE = {"armv7l": 0o400000, "armv6l": 0o400000, "armv8l": 0o400000, "i386": 0o100000,
                   "i486": 0o100000, "i586": 0o100000, "i686": 0o100000}


def open_device(path: str) -> int:
    """openat(AT_FDCWD, path, O_RDWR|O_NOCTTY|O_NONBLOCK, 0) with no O_CLOEXEC (os.open would add it)."""
    machine = os.uname().machine
    flags = O_RDWR | O_NOCTTY | O_NONBLOCK | _GO_O_LARGEFILE.get(machine, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    nr = _SYS_OPENAT.get(machine)
    if nr is not None:
        libc.syscall.restype = ctypes.c_long
        fd = libc.syscall(ctypes.c_long(nr), ctypes.c_long(AT_FDCWD), ctypes.c_char_p(os.fsencode(path)),
                          ctypes.c_long(flags), ctypes.c_long(0))
    else:  # an unknown machine: glibc's open() passes the flags through to openat unchanged
        fd = libc.open(ctypes.c_char_p(os.fsencode(path)), ctypes.c_int(flags), ctypes.c_int(0))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


class Radio:
    """The CC111x on a serial line: one write per request, polled reads (§1.4, §1.5).

    ``err`` is the radio error: set by a failed write or a missing response, cleared by the next
    successful write; a pump exchange is not attempted while it is set.
    """

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None
        self.err: str | None = None

    def open(self) -> None:
        fd = open_device(self.path)
        self.fd = fd
        fcntl.ioctl(fd, TCSETS, TERMIOS)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~O_NONBLOCK)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    def request(self, data: bytes, timeout_ms: int) -> bytes | None:
        """Write one request, read its response; None (and ``err`` set) when there is none."""
        try:
            n = os.write(self.fd, data)
        except OSError as e:
            self.err = str(e)
            return None
        if n != len(data):
            self.err = f"wrote {n} bytes instead of {len(data)}"
            return None
        self.err = None
        return self.response(timeout_ms)

    def response(self, timeout_ms: int) -> bytes | None:
        """Poll with read(fd, 256 - off) every 1 ms until a 00 arrives; the timeout counts iterations."""
        buf = b""
        remaining = timeout_ms
        while remaining > 0:
            try:
                chunk = os.read(self.fd, 256 - len(buf))
            except OSError as e:
                self.err = str(e)
                return None
            buf += chunk
            end = buf.rfind(b"\0")
            if end >= 0:
                return buf[:end]
            time.sleep(0.001)
            remaining -= 1
        self.err = "cc111x: no response"
        return None


# --- errors --------------------------------------------------------------------------------------------

class ClientError(Exception):
    exit_code = 1


class NoResponseError(ClientError):
    exit_code = 2

    def __init__(self, cmd: str):
        super().__init__(f"no response to {cmd}")
        self.cmd = cmd


class InvalidCommandError(ClientError):
    def __init__(self, cmd: str, code: int):
        super().__init__(f"{cmd} error: {P.PUMP_ERROR_NAMES.get(code, f'PumpError({code:02X})')}")
        self.code = code


class _Stop(BaseException):
    """SIGINT/SIGTERM: close the port and exit 0."""


def log(msg: str) -> None:
    sys.stderr.write(time.strftime("%Y/%m/%d %H:%M:%S ") + msg + "\n")
    sys.stderr.flush()


def _hex(b: bytes) -> str:
    return " ".join(f"{x:02X}" for x in b)


# --- the pump ----------------------------------------------------------------------------------------

class Pump:
    def __init__(self, radio: Radio, address: bytes):
        self.radio = radio
        self.address = address
        self.retries = 3
        self.model: str | None = None
        self.family: int | None = None

    def name(self, cmd: int) -> str:
        return P.COMMAND_NAMES.get(cmd, f"command {cmd:02X}")

    def short(self, cmd: int, arg: int = 0) -> bytes:
        return P.encode_4b6b(P.short_packet(self.address, cmd, arg))

    def long(self, cmd: int, params: bytes) -> bytes:
        return P.encode_4b6b(P.long_packet(self.address, cmd, params))

    def send_and_listen(self, encoded: bytes, timeout_ms: int) -> bytes | None:
        resp = self.radio.request(P.send_and_listen_request(encoded, timeout_ms), timeout_ms + P.CLIENT_EXTRA_MS)
        while resp is not None and resp == bytes([P.ERR_INTERRUPTED]):
            resp = self.radio.response(timeout_ms + P.CLIENT_EXTRA_MS)
        return resp

    def perform(self, cmd: int, encoded: bytes, timeout_ms: int, tries: int, accept: set) -> bytes:
        """One exchange with retries (§4.3); returns the decoded reply packet without its CRC."""
        name = self.name(cmd)
        if self.radio.err:
            raise ClientError(self.radio.err)
        if len(encoded) == P.LONG_ENCODED_LEN:
            tries = 1
        last: ClientError = NoResponseError(name)
        for attempt in range(tries):
            resp = self.send_and_listen(encoded, timeout_ms)
            if resp is None:
                last = ClientError(self.radio.err or "cc111x: no response")
                continue
            if len(resp) == 0 or resp == bytes([P.ERR_RX_TIMEOUT]):
                last = NoResponseError(name)
                continue
            if len(resp) == 1:
                last = ClientError(f"Receive: {P.RADIO_ERROR_NAMES.get(resp[0], f'{resp[0]:02X}')}")
                continue
            try:
                pkt = P.decode_packet(resp[2:])
            except P.ProtocolError as e:
                last = ClientError(str(e))
                continue
            self.validate(name, pkt, accept)
            if attempt:
                log(f"{name} command required {attempt} retr{'y' if attempt == 1 else 'ies'}")
            return pkt
        raise last

    def validate(self, name: str, pkt: bytes, accept: set) -> None:
        if len(pkt) < 6 or pkt[0] != P.PACKET_PUMP or pkt[1:4] != self.address:
            raise ClientError(f"unexpected response to {name}: {_hex(pkt)}")
        if pkt[4] in accept:
            return
        if pkt[4] == P.NAK:
            raise InvalidCommandError(name, pkt[5])
        raise ClientError(f"unexpected response to {name}: {_hex(pkt)}")

    def execute(self, cmd: int, timeout_ms: int = P.PUMP_TIMEOUT_MS, tries: int | None = None) -> bytes:
        """P1: a command without parameters; returns the body (bytes 5..)."""
        accept = {cmd, P.ACK} if cmd == P.WAKEUP else {cmd}
        return self.perform(cmd, self.short(cmd), timeout_ms, self.retries if tries is None else tries, accept)[5:]

    def execute2(self, cmd: int, params: bytes) -> bytes:
        """P2: short packet (ACK), then the long one with the parameters, T = 2 × 500 ms, one try."""
        try:
            self.perform(cmd, self.short(cmd), P.PUMP_TIMEOUT_MS, self.retries, {cmd, P.ACK})
        except NoResponseError:
            raise ClientError(f"{self.name(cmd)} command not performed") from None
        return self.perform(cmd, self.long(cmd, params), P.LONG_TIMEOUT_MS, 1, {cmd, P.ACK})[5:]

    # model and wake-up (§5.3)
    def query_model(self) -> str:
        body = self.execute(P.MODEL)
        if len(body) < 2 or len(body) < 2 + body[1]:
            raise ClientError(f"unexpected response to model: {_hex(body)}")
        self.model = body[2:2 + body[1]].decode("ascii", "replace")
        self.family = P.family_of(self.model)
        return self.model

    def need_family(self) -> int:
        if self.family is None:
            self.query_model()
        return self.family

    def wakeup(self) -> None:
        try:
            log(f"model {self.query_model()} pump")
            return
        except NoResponseError:
            pass
        log("waking pump")
        for _ in range(100):
            self.radio.err = None
            try:
                self.execute(P.WAKEUP, P.WAKEUP_FLOOD_TIMEOUT_MS, 1)
                break
            except ClientError:
                continue
        self.radio.err = None
        self.execute(P.WAKEUP, P.WAKEUP_FINAL_TIMEOUT_MS, 1)
        self.model = self.family = None


# --- value encodings (§4.6) ----------------------------------------------------------------------------

def round_insulin(mu: int, family: int) -> int:
    """Round milliunits down to the pump's resolution (family ≤ 22: 50 mU for rates)."""
    if family <= 22:
        return mu - mu % 50
    if mu < 1000:
        return mu - mu % 25
    if mu < 10000:
        return mu - mu % 50
    return mu - mu % 100


def milliunits(x: float) -> int:
    return int(round(x * 1000))


def encode_rate(rate_uh: float, family: int) -> bytes:
    mu = milliunits(rate_uh)
    if not 0 <= mu <= 34000:
        raise ClientError(f"temp basal rate {rate_uh} U/h out of range (0 to 34)")
    return (round_insulin(mu, family) // 25).to_bytes(2, "big")


def encode_bolus(units: float, family: int) -> bytes:
    mu = milliunits(units)
    if not 0 <= mu <= 34000:
        raise ClientError(f"bolus amount {units} U out of range (0 to 34)")
    if family <= 22:
        return bytes([(mu // 100) & 0xFF])
    return (round_insulin(mu, family) // 25).to_bytes(2, "big")


def rfc3339(t: _dt.datetime) -> str:
    """A pump (local) time as Go's RFC 3339: "Z" when the zone's offset is 0, else ±hh:mm."""
    aware = t.astimezone()
    off = aware.utcoffset() or _dt.timedelta(0)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if not off:
        return base + "Z"
    minutes = int(off.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{base}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _gonum(x):
    """Numbers as Go's encoding/json prints a float64: 135.0 → 135."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e21:
        return int(x)
    if isinstance(x, dict):
        return {k: _gonum(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_gonum(v) for v in x]
    return x


def output(value) -> None:
    sys.stdout.write(json.dumps(_gonum(value), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# --- response bodies (§4.4, §4.6) -------------------------------------------------------------------

def _bad(cmd: int, body: bytes) -> "ClientError":
    return ClientError(f"unexpected response to {P.COMMAND_NAMES[cmd]}: {_hex(body)}")


def decode_reservoir(body: bytes, family: int) -> float:
    """x22 and older: 02 HH LL in 100 mU strokes; x23 and newer: 04 ?? ?? HH LL in 25 mU strokes."""
    if family <= 22:
        if len(body) < 3 or body[0] != 2:
            raise _bad(P.RESERVOIR, body)
        return int.from_bytes(body[1:3], "big") * 100 / 1000
    if len(body) < 5 or body[0] != 4:
        raise _bad(P.RESERVOIR, body)
    return int.from_bytes(body[3:5], "big") * 25 / 1000


def decode_status(body: bytes) -> dict:
    if len(body) < 4 or body[0] != 3:
        raise _bad(P.STATUS, body)
    return {"status": "normal" if body[1] == 3 else "error", "bolusing": body[2] == 1, "suspended": body[3] == 1}


def decode_clock(body: bytes) -> str:
    try:
        t = _dt.datetime(int.from_bytes(body[4:6], "big"), body[6], body[7], body[1], body[2], body[3])
    except (ValueError, IndexError):
        raise _bad(P.CLOCK, body) from None
    return rfc3339(t)


def decode_battery(body: bytes) -> dict:
    if len(body) < 4 or body[0] != 3:
        raise _bad(P.BATTERY, body)
    return {"voltage": int.from_bytes(body[2:4], "big") * 10 / 1000, "status": "low" if body[1] else "normal"}


def decode_tempbasal(body: bytes) -> dict:
    if len(body) < 7 or body[0] != 6:
        raise _bad(P.TEMP_BASAL, body)
    minutes = int.from_bytes(body[5:7], "big")
    if body[1] == 1:
        return {"duration": minutes, "temp": "percent", "rate": body[2]}
    return {"duration": minutes, "temp": "absolute", "rate": int.from_bytes(body[3:5], "big") * 25 / 1000}


# --- verbs ---------------------------------------------------------------------------------------------

def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ClientError(f"{path}: {e}") from None
    if not isinstance(data, dict):
        raise ClientError(f"{path}: expected a JSON object")
    return data


def _duration_minutes(value) -> int:
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        raise ClientError(f"invalid temp basal duration {value!r}") from None
    if minutes < 0 or minutes > 24 * 60 or minutes % 30:
        raise ClientError(f"temp basal duration {value} is not a multiple of 30 minutes up to 24 hours")
    return int(minutes)


def prepare(verb: str, args: list, fmt: str):
    """Check a verb's arguments before any traffic; returns a callable(pump) → result or None."""
    simple = {"model", "reservoir", "status", "clock", "battery", "tempbasal", "wakeup", "pumpid", "firmware",
              "suspend", "resume"}
    if verb in simple and args:
        raise ClientError(f"{verb}: unexpected arguments {' '.join(args)}")

    if verb == "model":
        return lambda pump: pump.query_model()
    decoders = {"status": (P.STATUS, decode_status),
                "clock": (P.CLOCK, decode_clock), "battery": (P.BATTERY, decode_battery),
                "tempbasal": (P.TEMP_BASAL, decode_tempbasal)}
    if verb == "reservoir":
        def reservoir(pump):
            body = pump.execute(P.RESERVOIR)
            return decode_reservoir(body, pump.need_family())
        return reservoir
    if verb in decoders:
        cmd, decode = decoders[verb]
        return lambda pump: decode(pump.execute(cmd))
    if verb == "wakeup":
        return lambda pump: None
    if verb == "pumpid":
        def pumpid(pump):
            body = pump.execute(P.PUMP_ID)
            return body[1:1 + body[0]].decode("ascii", "replace") if body else ""
        return pumpid
    if verb == "firmware":
        def firmware(pump):
            body = pump.execute(P.FIRMWARE_VERSION)
            text = body[1:1 + body[0]] if body else b""
            return text.rstrip(b" \x0b").decode("ascii", "replace")
        return firmware
    if verb in ("suspend", "resume"):
        param = bytes([1 if verb == "suspend" else 0])
        return lambda pump: (pump.execute2(P.SUSPEND, param), None)[1]
    if verb == "settempbasal":
        if fmt == "internal":
            if len(args) not in (2, 3):
                raise ClientError("usage: mdt -f internal settempbasal RATE MINUTES [absolute|percent]")
            spec = {"rate": args[0], "duration": args[1], "temp": args[2] if len(args) == 3 else "absolute"}
        else:
            if len(args) != 1:
                raise ClientError("usage: mdt settempbasal FILE.json")
            spec = _read_json(args[0])
        temp = spec.get("temp", "absolute")
        if temp not in ("absolute", "percent"):
            raise ClientError(f"unknown temp basal type {temp!r}")
        if "rate" not in spec or "duration" not in spec:
            raise ClientError("settempbasal needs a rate and a duration")
        minutes = _duration_minutes(spec["duration"])
        try:
            rate = float(spec["rate"])
        except (TypeError, ValueError):
            raise ClientError(f"invalid temp basal rate {spec['rate']!r}") from None

        def settempbasal(pump):
            family = pump.need_family()
            if temp == "percent":
                if not (0 <= rate <= 100 and float(rate).is_integer()):
                    raise ClientError(f"temp basal percent {rate} out of range (0 to 100)")
                pump.execute2(P.SET_PERCENT_TEMP_BASAL, bytes([int(rate), minutes // 30]))
            else:
                pump.execute2(P.SET_ABSOLUTE_TEMP_BASAL, encode_rate(rate, family) + bytes([minutes // 30]))
        return settempbasal
    if verb == "bolus":
        if fmt == "internal":
            if len(args) != 1:
                raise ClientError("usage: mdt -f internal bolus UNITS")
            units = args[0]
        else:
            if len(args) != 1:
                raise ClientError("usage: mdt bolus FILE.json")
            units = _read_json(args[0]).get("units")
        try:
            amount = float(units)
        except (TypeError, ValueError):
            raise ClientError(f"invalid bolus amount {units!r}") from None

        def bolus(pump):
            pump.execute2(P.BOLUS, encode_bolus(amount, pump.need_family()))
        return bolus
    if verb == "button":
        if not args:
            raise ClientError("usage: mdt button KEY... (b, esc, act, up, down)")
        keys = []
        for a in args:
            if a not in P.BUTTONS:
                raise ClientError(f"unknown button {a!r} (b, esc, act, up, down)")
            keys.append(P.BUTTONS[a])

        def button(pump):
            for k in keys:
                pump.execute2(P.BUTTON, bytes([k]))
        return button
    if verb == "setclock":
        text = " ".join(args)
        if text == "now":
            when = None
        else:
            try:
                when = _dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
            except ValueError:
                raise ClientError('usage: mdt setclock now|"YYYY-MM-DD HH:MM:SS"') from None

        def setclock(pump):
            t = when or _dt.datetime.now()
            pump.execute2(P.SET_CLOCK, bytes([t.hour, t.minute, t.second]) + t.year.to_bytes(2, "big")
                          + bytes([t.month, t.day]))
        return setclock
    raise ClientError(f"unknown command {verb!r}")


# --- history (§4.6.10, §4.6.11) -------------------------------------------------------------------------

def decode_record(rec: bytes, family: int) -> dict:
    t = rec[0]
    if t == P.REC_TEMP_BASAL_RATE:
        when = P.decode_timestamp(rec[2:7])
        if rec[7] >> 3 == 1:
            out = {"_type": "TempBasal", "temp": "percent", "rate": rec[1]}
        else:
            out = {"_type": "TempBasal", "temp": "absolute", "rate": (((rec[7] & 7) << 8) | rec[1]) * 25 / 1000}
    elif t == P.REC_TEMP_BASAL_DURATION:
        when = P.decode_timestamp(rec[2:7])
        out = {"_type": "TempBasalDuration", "duration (min)": rec[1] * 30}
    elif t == P.REC_BOLUS:
        if family <= 22:
            prog, amount, unabs, dur, when = rec[1] * 100, rec[2] * 100, 0, rec[3], P.decode_timestamp(rec[4:9])
        else:
            prog = int.from_bytes(rec[1:3], "big") * 25
            amount = int.from_bytes(rec[3:5], "big") * 25
            unabs = int.from_bytes(rec[5:7], "big") * 25
            dur, when = rec[7], P.decode_timestamp(rec[8:13])
        out = {"_type": "Bolus", "type": "square" if dur else "normal", "programmed": prog / 1000,
               "amount": amount / 1000, "unabsorbed": unabs / 1000, "duration": dur * 30}
    elif t in (P.REC_SUSPEND, P.REC_RESUME):
        when = P.decode_timestamp(rec[2:7])
        out = {"_type": "PumpSuspend" if t == P.REC_SUSPEND else "PumpResume"}
    else:
        raise ClientError(f"unknown record type {t:02X}")
    out["timestamp"] = rfc3339(when)
    out["_when"] = when
    return out


class History:
    def __init__(self, pump: Pump):
        self.pump = pump

    def last_page(self) -> int:
        try:
            body = self.pump.execute(P.LAST_HISTORY_PAGE)
        except InvalidCommandError as e:
            if e.code == P.NAK_COMMAND_REFUSED:
                return 32
            raise
        if len(body) < 5 or body[0] != 4:
            raise ClientError(f"unexpected response to lastHistoryPage: {_hex(body)}")
        return min(int.from_bytes(body[1:5], "big"), P.MAX_HISTORY_PAGE)

    def fragment_after(self, expected: int) -> bytes:
        """ACK the last fragment; on no reply, NAK up to 10 times (each NAK re-requests it)."""
        pump = self.pump
        try:
            return pump.perform(P.HISTORY_PAGE, pump.short(P.ACK), P.PUMP_TIMEOUT_MS, 1, {P.HISTORY_PAGE})[5:]
        except NoResponseError:
            pass
        for k in range(1, 11):
            pump.radio.err = None
            try:
                body = pump.perform(P.HISTORY_PAGE, pump.short(P.NAK), P.PUMP_TIMEOUT_MS, 1, {P.HISTORY_PAGE})[5:]
            except NoResponseError:
                continue
            log(f"received fragment {expected} after {k} NAK{'' if k == 1 else 's'}")
            return body
        raise ClientError(f"lost fragment {expected}")

    def read_page(self, page: int) -> bytes:
        body = self.pump.execute2(P.HISTORY_PAGE, bytes([page]))
        data = b""
        expected = 1
        while True:
            if len(body) != P.RESPONSE_BODY:
                raise ClientError(f"history page {page}: unexpected fragment length {len(body)}")
            seq, done = body[0] & 0x7F, bool(body[0] & 0x80)
            if seq > expected:
                raise ClientError(f"history page {page}: received fragment {seq} instead of {expected}")
            if seq == expected:
                if done != (seq == P.FRAGMENTS):
                    raise ClientError(f"history page {page}: unexpected done bit on fragment {seq}")
                data += body[1:]
                if done:
                    break
                expected += 1
            body = self.fragment_after(expected)
        if len(data) != P.PAGE_SIZE:
            raise ClientError(f"history page {page}: {len(data)} bytes instead of {P.PAGE_SIZE}")
        computed = P.crc16(data[:P.PAGE_DATA])
        received = int.from_bytes(data[P.PAGE_DATA:], "big")
        if computed != received:
            raise ClientError(f"history page {page}: computed CRC {computed:04X} but received {received:04X}")
        return data[:P.PAGE_DATA]

    def page(self, page: int) -> bytes:
        for attempt in range(3):
            self.pump.radio.err = None
            try:
                return self.read_page(page)
            except InvalidCommandError:
                raise
            except ClientError as e:
                if attempt == 2:
                    raise
                log(str(e))

    def records(self, cutoff: _dt.datetime | None) -> list:
        pump = self.pump
        last = self.last_page()
        family = pump.need_family()
        pump.retries = 1
        out = []
        try:
            for page in range(last + 1):
                data = self.page(page)
                recs = [decode_record(r, family) for r in P.split_records(data, family)]
                older = False
                for r in reversed(recs):
                    if cutoff is not None and r["_when"] < cutoff:
                        older = True
                        continue
                    out.append(r)
                if older:
                    break
        except (ClientError, P.ProtocolError) as e:
            for r in out:
                r.pop("_when", None)
            e.partial = out
            raise
        for r in out:
            r.pop("_when", None)
        return out


# --- main -----------------------------------------------------------------------------------------------

def parse_go_duration(text: str) -> int:
    """A Go duration ("30s", "1m30s", "500ms", "1h") → milliseconds."""
    units = {"h": 3600000, "m": 60000, "s": 1000, "ms": 1, "us": 0.001, "µs": 0.001, "ns": 0.000001}
    s, total, i = text.strip(), 0.0, 0
    if not s:
        raise ValueError(text)
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        if j == i:
            raise ValueError(text)
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        unit = s[j:k]
        if unit not in units:
            raise ValueError(text)
        total += float(s[i:j]) * units[unit]
        i = k
    return int(total)


def _usage(tool: str) -> str:
    return {"mdt": "usage: mdt [-f openaps|internal] command [args]",
            "pumphistory": "usage: pumphistory [-n HOURS | -a]",
            "listen": "usage: listen [-t DURATION]"}[tool]


def _parse(tool: str, argv: list):
    """Returns (options dict, verb, args) or raises ClientError(usage)."""
    opts = {"format": "openaps", "hours": 6.0, "all": False, "timeout": 3600000}
    rest = list(argv)
    while rest and rest[0].startswith("-") and rest[0] != "-":
        flag = rest.pop(0)
        if flag == "--":
            break
        name, eq, value = flag.lstrip("-").partition("=")
        takes = {"mdt": {"f"}, "pumphistory": {"n"}, "listen": {"t"}}[tool]
        if tool == "pumphistory" and name == "a":
            opts["all"] = True
            continue
        if name not in takes:
            raise ClientError(f"flag provided but not defined: -{name}\n{_usage(tool)}")
        if not eq:
            if not rest:
                raise ClientError(f"flag needs an argument: -{name}\n{_usage(tool)}")
            value = rest.pop(0)
        try:
            if name == "f":
                if value not in ("openaps", "internal"):
                    raise ValueError(value)
                opts["format"] = value
            elif name == "n":
                opts["hours"] = float(value)
            elif name == "t":
                opts["timeout"] = parse_go_duration(value)
        except ValueError:
            raise ClientError(f"invalid value {value!r} for flag -{name}\n{_usage(tool)}") from None
    if tool == "mdt":
        if not rest:
            raise ClientError(_usage(tool))
        return opts, rest[0], rest[1:]
    if rest:
        raise ClientError(_usage(tool))
    return opts, tool, []


def _on_signal(signum, frame):
    raise _Stop()


def main(argv: list | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    tool = os.path.basename(argv[0]) if argv else "mdt"
    if tool not in ("mdt", "pumphistory", "listen"):
        tool = "mdt"
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    radio = None
    try:
        try:
            opts, verb, args = _parse(tool, argv[1:])
            action = prepare(verb, args, opts["format"]) if tool == "mdt" else None
        except ClientError as e:
            log(str(e))
            return 2 if str(e).startswith(("flag ", "invalid value")) else 1
        device = os.environ.get("KPROF_SERIAL_DEVICE") or DEFAULT_DEVICE
        radio = Radio(device)
        try:
            radio.open()
        except OSError:
            radio.close()
            log(f"cannot connect to CC111x radio on {device}")
            return 1
        version = radio.request(P.get_version_request(), P.RADIO_TIMEOUT_MS)
        if version is None:
            log(f"cannot connect to CC111x radio on {device}")
            return 1
        if not version.startswith(P.VERSION_PREFIX):
            log(f"unexpected firmware version {version.decode('ascii', 'replace')!r}")
            return 1
        log(f"connected to CC111x radio on {device}")
        pump_id = os.environ.get("MEDTRONIC_PUMP_ID")
        if pump_id is None:
            log("MEDTRONIC_PUMP_ID environment variable is not set")
            return 1
        try:
            address = P.pump_address(pump_id)
        except ValueError:
            log(f"MEDTRONIC_PUMP_ID {pump_id!r} must be 6 hexadecimal digits")
            return 1
        freq_text = os.environ.get("MEDTRONIC_FREQUENCY")
        try:
            hz = P.parse_frequency(freq_text)
        except ValueError:
            log(f"invalid pump frequency {freq_text!r} (use MHz, 860.0 to 920.0, or Hz)")
            return 1
        log(f"setting frequency to {hz / 1e6:.3f}")
        for req in P.frequency_requests(hz):
            radio.request(req, P.RADIO_TIMEOUT_MS)   # the answer is ignored (§2.6)
        pump = Pump(radio, address)
        try:
            if tool == "listen":
                return _listen(radio, opts["timeout"])
            pump.wakeup()
            if tool == "pumphistory":
                cutoff = None if opts["all"] else _dt.datetime.now() - _dt.timedelta(hours=opts["hours"])
                try:
                    result = History(pump).records(cutoff)
                except ClientError as e:
                    if getattr(e, "partial", None):
                        output(e.partial)
                    raise
            else:
                result = action(pump)
        except (ClientError, P.ProtocolError) as e:
            log(str(e))
            return getattr(e, "exit_code", 1)
        if result is not None:
            output(result)
        log(f"disconnecting CC111x radio on {device}")
        return 0
    except _Stop:
        return 0
    finally:
        if radio is not None:
            radio.close()


def _listen(radio: Radio, timeout_ms: int) -> int:
    resp = radio.request(P.get_packet_request(timeout_ms), timeout_ms + P.CLIENT_EXTRA_MS)
    while resp is not None and resp == bytes([P.ERR_INTERRUPTED]):
        resp = radio.response(timeout_ms + P.CLIENT_EXTRA_MS)
    if resp is None:
        log(radio.err or "cc111x: no response")
        return 1
    if len(resp) < 2:
        log("timeout")
        return 1
    log(f"received packet, RSSI {P.rssi_dbm(resp[0])} dBm: {_hex(resp[2:])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
