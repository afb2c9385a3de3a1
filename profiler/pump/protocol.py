"""Medtronic pump radio protocol and subg_rfspy serial framing (stdlib only).

Written from the specification in ``pump-protocol.md`` (sections named below as §n):

* 4b/6b line coding (§3.1, §3.2), CRC-8 (§3.3), CRC-16 (§3.4);
* pump packets: addresses, short/long requests, data responses, ACK, NAK (§4.1, §4.2);
* subg_rfspy requests and responses (§2), the frequency word (§2.6);
* history records and pages (§4.6.11).

Both the emulator and the client use this module; the client is run by the system ``python3`` without
the project's venv, so nothing here may import anything outside the standard library.
"""
from __future__ import annotations

import datetime as _dt

# --- subg_rfspy serial commands (§2.2) ---------------------------------------------------------------

CMD_GET_STATE = 0x01
CMD_GET_VERSION = 0x02
CMD_GET_PACKET = 0x03
CMD_SEND_PACKET = 0x04
CMD_SEND_AND_LISTEN = 0x05
CMD_UPDATE_REGISTER = 0x06
CMD_RESET = 0x07
CMD_LED = 0x08
CMD_READ_REGISTER = 0x09

RADIO_COMMAND_NAMES = {
    CMD_GET_STATE: "GetState", CMD_GET_VERSION: "GetVersion", CMD_GET_PACKET: "GetPacket",
    CMD_SEND_PACKET: "SendPacket", CMD_SEND_AND_LISTEN: "SendAndListen",
    CMD_UPDATE_REGISTER: "UpdateRegister", CMD_RESET: "Reset", CMD_LED: "LED",
    CMD_READ_REGISTER: "ReadRegister",
}

# single-byte error responses (§2.4)
ERR_RX_TIMEOUT = 0xAA
ERR_INTERRUPTED = 0xBB
ERR_ZERO_DATA = 0xCC
RADIO_ERROR_NAMES = {ERR_RX_TIMEOUT: "ErrorRxTimeout", ERR_INTERRUPTED: "ErrorCmdInterrupted",
                     ERR_ZERO_DATA: "ErrorZeroData"}

# registers (§2.6)
REG_FREQ2, REG_FREQ1, REG_FREQ0 = 0x09, 0x0A, 0x0B
REG_AMP_MODE = 0x22  # update only; reading it answers 5A
REGISTER_READ_INVALID = 0x5A
REGISTER_UPDATE_OK = 0x01
REGISTER_UPDATE_INVALID = 0x02
FXOSC = 24_000_000

# US firmware power-up defaults of the registers that matter (§2.6); others read as 00 until written
REGISTER_DEFAULTS = {0x00: 0xFF, 0x01: 0x00, 0x02: 0xFF, 0x06: 0x02, 0x09: 0x26, 0x0A: 0x30, 0x0B: 0x70,
                     0x0C: 0x99, 0x0D: 0x66}

DEFAULT_FREQUENCY_HZ = 916_600_000
VERSION_STRING = b"subg_rfspy 1.0"  # ecc1's serial firmware fork (§2.5)
VERSION_PREFIX = b"subg_rfspy"

# --- pump commands (§4.4) ----------------------------------------------------------------------------

PACKET_PUMP = 0xA7
ACK = 0x06
NAK = 0x15

MODEL = 0x8D
RESERVOIR = 0x73
STATUS = 0xCE
CLOCK = 0x70
BATTERY = 0x72
TEMP_BASAL = 0x98
SET_ABSOLUTE_TEMP_BASAL = 0x4C
SET_PERCENT_TEMP_BASAL = 0x69
BOLUS = 0x42
BUTTON = 0x5B
WAKEUP = 0x5D
SET_CLOCK = 0x40
SUSPEND = 0x4D
LAST_HISTORY_PAGE = 0x9D
HISTORY_PAGE = 0x80
PUMP_ID = 0x71
FIRMWARE_VERSION = 0x74
SETTINGS = 0xC0            # family >= 13
SETTINGS_512 = 0x91        # family <= 12
BASAL_RATES = 0x92         # extended response (§4.3 P3)
GLUCOSE_TARGETS = 0x9F     # family >= 13
GLUCOSE_TARGETS_512 = 0x8C # family <= 12
INSULIN_SENSITIVITIES = 0x8B
CARB_RATIOS = 0x8A

# Go names of the commands, as the client prints them in "no response to <cmd>" (§1.8)
COMMAND_NAMES = {
    ACK: "ack", NAK: "nak", MODEL: "model", RESERVOIR: "reservoir", STATUS: "status", CLOCK: "clock",
    BATTERY: "battery", TEMP_BASAL: "tempBasal", SET_ABSOLUTE_TEMP_BASAL: "setAbsoluteTempBasal",
    SET_PERCENT_TEMP_BASAL: "setPercentTempBasal", BOLUS: "bolus", BUTTON: "button", WAKEUP: "wakeup",
    SET_CLOCK: "setClock", SUSPEND: "suspend", LAST_HISTORY_PAGE: "lastHistoryPage",
    HISTORY_PAGE: "historyPage", PUMP_ID: "pumpID", FIRMWARE_VERSION: "firmwareVersion",
    SETTINGS: "settings", SETTINGS_512: "settings512", BASAL_RATES: "basalRates",
    GLUCOSE_TARGETS: "glucoseTargets", GLUCOSE_TARGETS_512: "glucoseTargets512",
    INSULIN_SENSITIVITIES: "insulinSensitivities", CARB_RATIOS: "carbRatios",
}

# commands that take parameters: a short packet (answered by ACK), then a long one (§4.3 P2)
TWO_STEP_COMMANDS = frozenset({SET_ABSOLUTE_TEMP_BASAL, SET_PERCENT_TEMP_BASAL, BOLUS, BUTTON, SET_CLOCK,
                               SUSPEND, HISTORY_PAGE})

# pump error codes carried in byte 5 of a NAK (§4.2)
NAK_COMMAND_REFUSED = 0x08
NAK_SETTING_OUT_OF_RANGE = 0x09
NAK_BOLUS_IN_PROGRESS = 0x0C
NAK_INVALID_HISTORY_PAGE = 0x0D
PUMP_ERROR_NAMES = {NAK_COMMAND_REFUSED: "CommandRefused", NAK_SETTING_OUT_OF_RANGE: "SettingOutOfRange",
                    NAK_BOLUS_IN_PROGRESS: "BolusInProgress",
                    NAK_INVALID_HISTORY_PAGE: "InvalidHistoryPageNumber"}

BUTTONS = {"b": 0x00, "esc": 0x01, "act": 0x02, "up": 0x03, "down": 0x04}

SHORT_PACKET_LEN = 7      # decoded, CRC included
LONG_PACKET_LEN = 71
SHORT_ENCODED_LEN = 11
LONG_ENCODED_LEN = 107
LONG_PARAMS = 64          # parameter bytes of a long request
RESPONSE_BODY = 65        # body bytes of a data response

# timeouts (§1.6, §5.1), milliseconds
PUMP_TIMEOUT_MS = 500
LONG_TIMEOUT_MS = 1000
WAKEUP_FLOOD_TIMEOUT_MS = 10
WAKEUP_FINAL_TIMEOUT_MS = 10_000
RADIO_TIMEOUT_MS = 50
CLIENT_EXTRA_MS = 5


class ProtocolError(Exception):
    """A malformed packet: the message is the client's wording (§1.8)."""


class DecodingError(ProtocolError):
    def __init__(self, message: str = "6b/4b decoding failure"):
        super().__init__(message)


class CRCError(ProtocolError):
    def __init__(self, computed: int, received: int, width: int = 8):
        digits = width // 4
        super().__init__(f"computed CRC {computed:0{digits}X} but received {received:0{digits}X}")
        self.computed = computed
        self.received = received


# --- 4b/6b (§3.1, §3.2) ------------------------------------------------------------------------------

SYMBOLS = (0x15, 0x31, 0x32, 0x23, 0x34, 0x25, 0x26, 0x16, 0x1A, 0x19, 0x2A, 0x0B, 0x2C, 0x0D, 0x0E, 0x1C)
_NIBBLE = {sym: nib for nib, sym in enumerate(SYMBOLS)}


def encode_4b6b(data: bytes) -> bytes:
    """Each nibble (high first) becomes a 6-bit symbol; the bit stream is cut into bytes MSB first.

    An odd input length leaves 12 bits, which are followed by the pad bits 0101.
    """
    out = bytearray()
    acc = 0
    bits = 0
    for byte in data:
        acc = (acc << 12) | (SYMBOLS[byte >> 4] << 6) | SYMBOLS[byte & 0x0F]
        bits += 12
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
        acc &= (1 << bits) - 1
    if bits:  # 4 bits left over (odd length): pad with 0101
        out.append(((acc << 4) | 0x5) & 0xFF)
    return bytes(out)


def decode_4b6b(data: bytes) -> bytes:
    """Inverse of :func:`encode_4b6b`; raises :class:`DecodingError` on a bad length or symbol."""
    if len(data) % 3 == 1:
        raise DecodingError()
    out = bytearray()
    for i in range(0, len(data) - len(data) % 3, 3):
        word = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2]
        syms = ((word >> 18) & 0x3F, (word >> 12) & 0x3F, (word >> 6) & 0x3F, word & 0x3F)
        try:
            n = [_NIBBLE[s] for s in syms]
        except KeyError:
            raise DecodingError() from None
        out.append((n[0] << 4) | n[1])
        out.append((n[2] << 4) | n[3])
    if len(data) % 3 == 2:
        word = (data[-2] << 8) | data[-1]
        syms = ((word >> 10) & 0x3F, (word >> 4) & 0x3F)  # low 4 pad bits are ignored
        try:
            out.append((_NIBBLE[syms[0]] << 4) | _NIBBLE[syms[1]])
        except KeyError:
            raise DecodingError() from None
    return bytes(out)


def encoded_length(n: int) -> int:
    return 3 * n // 2 if n % 2 == 0 else 3 * (n - 1) // 2 + 2


# --- CRCs (§3.3, §3.4) --------------------------------------------------------------------------------

def _crc8_table() -> tuple:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = ((crc << 1) ^ 0x9B) if crc & 0x80 else (crc << 1)
            crc &= 0xFF
        table.append(crc)
    return tuple(table)


def _crc16_table() -> tuple:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return tuple(table)


_CRC8 = _crc8_table()
_CRC16 = _crc16_table()


def crc8(data: bytes) -> int:
    """CRC-8/LTE: polynomial 9B, init 00, no reflection, no final XOR."""
    crc = 0
    for b in data:
        crc = _CRC8[crc ^ b]
    return crc


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 1021, init FFFF, no reflection, no final XOR."""
    crc = 0xFFFF
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ b]
    return crc


# --- pump packets (§4.1, §4.2) ------------------------------------------------------------------------

def pump_address(pump_id: str) -> bytes:
    """The 6-character pump serial parsed as hex into 3 bytes ("123456" → 12 34 56)."""
    if len(pump_id) != 6:
        raise ValueError(f"pump ID {pump_id!r} must be exactly 6 characters")
    try:
        return bytes.fromhex(pump_id)
    except ValueError:
        raise ValueError(f"pump ID {pump_id!r} is not 6 hexadecimal digits") from None


def with_crc(packet: bytes) -> bytes:
    return bytes(packet) + bytes([crc8(packet)])


def short_packet(address: bytes, cmd: int, arg: int = 0) -> bytes:
    """`A7 id CMD 00` + CRC (7 bytes, decoded); ``arg`` is byte 5 (a NAK's error code)."""
    return with_crc(bytes([PACKET_PUMP]) + address + bytes([cmd, arg]))


def long_packet(address: bytes, cmd: int, params: bytes, length: int | None = None) -> bytes:
    """`A7 id CMD LEN P0..P63` + CRC (71 bytes); LEN defaults to the number of parameters."""
    if len(params) > LONG_PARAMS:
        raise ValueError("too many parameters for one long packet")
    n = len(params) if length is None else length
    return with_crc(bytes([PACKET_PUMP]) + address + bytes([cmd, n]) + params.ljust(LONG_PARAMS, b"\0"))


def data_response(address: bytes, cmd: int, body: bytes) -> bytes:
    """`A7 id CMD B0..B64` + CRC (71 bytes): a pump's data response, body zero-padded to 65 bytes."""
    if len(body) > RESPONSE_BODY:
        raise ValueError("response body longer than 65 bytes")
    return with_crc(bytes([PACKET_PUMP]) + address + bytes([cmd]) + body.ljust(RESPONSE_BODY, b"\0"))


def ack_packet(address: bytes) -> bytes:
    return short_packet(address, ACK)


def nak_packet(address: bytes, code: int = 0) -> bytes:
    return short_packet(address, NAK, code)


def decode_packet(encoded: bytes) -> bytes:
    """4b/6b-decode a received packet and check its CRC-8; returns the packet without the CRC."""
    data = decode_4b6b(encoded)
    if not data:
        raise DecodingError()
    body, received = data[:-1], data[-1]
    computed = crc8(body)
    if computed != received:
        raise CRCError(computed, received)
    return body


def encode_packet(packet_with_crc: bytes) -> bytes:
    return encode_4b6b(packet_with_crc)


# --- subg_rfspy requests (§2.2) -----------------------------------------------------------------------

def get_version_request() -> bytes:
    return bytes([CMD_GET_VERSION])


def update_register_request(address: int, value: int) -> bytes:
    return bytes([CMD_UPDATE_REGISTER, address, value])


def send_and_listen_request(encoded: bytes, timeout_ms: int, send_channel: int = 0, repeat: int = 0,
                            delay_ms: int = 0, listen_channel: int = 0, retries: int = 0) -> bytes:
    """`05 ch repeat delay listen_ch TTTTTTTT retry <data> 00`."""
    return (bytes([CMD_SEND_AND_LISTEN, send_channel, repeat, delay_ms, listen_channel])
            + timeout_ms.to_bytes(4, "big") + bytes([retries]) + encoded + b"\0")


def get_packet_request(timeout_ms: int, channel: int = 0) -> bytes:
    return bytes([CMD_GET_PACKET, channel]) + timeout_ms.to_bytes(4, "big")


def frequency_word(hz: int) -> int:
    """24-bit FREQ word for the CC111x with a 24 MHz crystal, rounded to nearest (§2.6)."""
    return (hz * 65536 + FXOSC // 2) // FXOSC


def word_frequency(word: int) -> int:
    return word * FXOSC // 65536


def frequency_requests(hz: int) -> list:
    """The three UpdateRegister requests (FREQ2, FREQ1, FREQ0) that tune the radio to ``hz``."""
    w = frequency_word(hz)
    return [update_register_request(REG_FREQ2, (w >> 16) & 0xFF),
            update_register_request(REG_FREQ1, (w >> 8) & 0xFF),
            update_register_request(REG_FREQ0, w & 0xFF)]


def parse_frequency(text: str | None) -> int:
    """MEDTRONIC_FREQUENCY: MHz (860–920) or Hz (860e6–920e6); None/empty → the default (§1.1)."""
    if text is None or text == "":
        return DEFAULT_FREQUENCY_HZ
    f = float(text)  # ValueError for a non-number
    if 860.0 <= f <= 920.0:
        return int(f * 1_000_000)
    if 860_000_000 <= f <= 920_000_000:
        return int(f)
    raise ValueError(text)


def request_length(buf: bytes) -> int | None:
    """Length of the complete subg_rfspy request at the start of ``buf``, or None if incomplete.

    A command byte of 00 or above 09 is one byte long (it is ignored by the firmware).
    """
    if not buf:
        return None
    cmd = buf[0]
    fixed = {CMD_GET_STATE: 1, CMD_GET_VERSION: 1, CMD_GET_PACKET: 6, CMD_UPDATE_REGISTER: 3, CMD_RESET: 1,
             CMD_LED: 3, CMD_READ_REGISTER: 2}
    if cmd in fixed:
        return fixed[cmd] if len(buf) >= fixed[cmd] else None
    if cmd in (CMD_SEND_PACKET, CMD_SEND_AND_LISTEN):
        header = 4 if cmd == CMD_SEND_PACKET else 10
        if len(buf) <= header:
            return None
        end = buf.find(b"\0", header)
        return None if end < 0 else end + 1
    return 1


def radio_packet_response(encoded: bytes, rssi: int = 0x30, counter: int = 1) -> bytes:
    """`RSSI counter <encoded packet> 00`: a received packet as the firmware sends it (§2.3)."""
    return bytes([rssi or 1, counter or 1]) + encoded + b"\0"


def rssi_dbm(byte: int) -> int:
    signed = byte - 256 if byte >= 128 else byte
    return int(signed / 2) - 73  # Go's integer division truncates toward zero


# --- history records and pages (§4.6.11) --------------------------------------------------------------

PAGE_SIZE = 1024
PAGE_DATA = 1022
FRAGMENTS = 16
FRAGMENT_DATA = 64
MAX_HISTORY_PAGE = 35

REC_BOLUS = 0x01
REC_TEMP_BASAL_DURATION = 0x16
REC_SUSPEND = 0x1E
REC_RESUME = 0x1F
REC_TEMP_BASAL_RATE = 0x33


def encode_timestamp(t: _dt.datetime) -> bytes:
    """5-byte pump timestamp: second|month(3-2), minute|month(1-0), hour, day, year-2000."""
    m = t.month
    return bytes([(t.second & 0x3F) | ((m >> 2) << 6), (t.minute & 0x3F) | ((m & 3) << 6), t.hour & 0x1F,
                  t.day & 0x1F, (t.year - 2000) & 0x7F])


def decode_timestamp(b: bytes) -> _dt.datetime:
    month = ((b[0] >> 6) << 2) | (b[1] >> 6)
    return _dt.datetime(2000 + (b[4] & 0x7F), month, b[3] & 0x1F, b[2] & 0x1F, b[1] & 0x3F, b[0] & 0x3F)


def record_length(rtype: int, family: int) -> int | None:
    """Length of a history record of type ``rtype``; None for a type this implementation does not know."""
    if rtype == REC_BOLUS:
        return 9 if family <= 22 else 13
    return {REC_TEMP_BASAL_DURATION: 7, REC_SUSPEND: 7, REC_RESUME: 7, REC_TEMP_BASAL_RATE: 8}.get(rtype)


def temp_basal_records(t: _dt.datetime, temp: str, rate_strokes_or_percent: int, half_hours: int) -> bytes:
    """TempBasalDuration (16) then TempBasalRate (33), in page (oldest-first) order."""
    ts = encode_timestamp(t)
    duration = bytes([REC_TEMP_BASAL_DURATION, half_hours & 0xFF]) + ts
    if temp == "percent":
        rate = bytes([REC_TEMP_BASAL_RATE, rate_strokes_or_percent & 0xFF]) + ts + bytes([1 << 3])
    else:
        r = rate_strokes_or_percent
        rate = bytes([REC_TEMP_BASAL_RATE, r & 0xFF]) + ts + bytes([(r >> 8) & 0x07])
    return duration + rate


def bolus_record(t: _dt.datetime, family: int, programmed_mu: int, amount_mu: int, half_hours: int = 0,
                 unabsorbed_mu: int = 0) -> bytes:
    ts = encode_timestamp(t)
    if family <= 22:
        return bytes([REC_BOLUS, (programmed_mu // 100) & 0xFF, (amount_mu // 100) & 0xFF, half_hours & 0xFF]) + ts
    return (bytes([REC_BOLUS]) + (programmed_mu // 25).to_bytes(2, "big") + (amount_mu // 25).to_bytes(2, "big")
            + (unabsorbed_mu // 25).to_bytes(2, "big") + bytes([half_hours & 0xFF]) + ts)


def suspend_record(t: _dt.datetime, suspend: bool) -> bytes:
    return bytes([REC_SUSPEND if suspend else REC_RESUME, 0]) + encode_timestamp(t)


def make_page(records: bytes) -> bytes:
    """1022 bytes of records (zero-padded) + their CRC-16, big-endian."""
    if len(records) > PAGE_DATA:
        raise ValueError("records do not fit in one history page")
    data = records.ljust(PAGE_DATA, b"\0")
    return data + crc16(data).to_bytes(2, "big")


def page_fragments(page: bytes) -> list:
    """The 16 response bodies of a page: SEQ (1..15, then 16|80) + 64 page bytes."""
    out = []
    for i in range(1, FRAGMENTS + 1):
        seq = i | 0x80 if i == FRAGMENTS else i
        out.append(bytes([seq]) + page[FRAGMENT_DATA * (i - 1):FRAGMENT_DATA * i])
    return out


def split_records(data: bytes, family: int) -> list:
    """Cut a page's record bytes into records (oldest first); stops where the rest is all zeros."""
    out = []
    pos = 0
    while pos < len(data):
        if not any(data[pos:]):
            break
        n = record_length(data[pos], family)
        if n is None:
            raise ProtocolError(f"unknown record type {data[pos]:02X}")
        if pos + n > len(data):
            raise ProtocolError(f"record type {data[pos]:02X} runs past the end of the page")
        out.append(bytes(data[pos:pos + n]))
        pos += n
    return out


def family_of(model: str) -> int:
    """5xx/7xx → xx (522 → 22); anything else → -1 (§4.6.1)."""
    if len(model) == 3 and model[0] in "57" and model[1:].isdigit():
        return int(model[1:])
    return -1


# --- settings and schedules (the reply formats in real-tools/settings.txt, basal.txt, targets.txt, ----------
# --- sensitivities.txt, carbratios.txt); values are already in the pump's units -----------------------------

BG_UNITS = {"mg/dL": 1, "mmol/L": 2}
CARB_UNITS = {"grams": 1, "exchanges": 2}


def settings_body(family: int, max_bolus_tenths: int, max_basal_strokes: int, action_hours: int,
                  auto_off_hours: int = 0, concentration: int = 100, rf_enable: bool = True,
                  selected_pattern: int = 0) -> bytes:
    """Settings (C0; 91 for family <= 12).  Byte 0 says the layout: 18 (x12 and older), 21 (x13-x22), 25 (x23+).

    Common bytes: 1 auto-off hours, 10 concentration (0 = U-100, 1 = U-50), 12 selected pattern, 13 RF on,
    14 temp basal type (0 absolute), 18 insulin action (hours; for x12 and older 0 = 6 h, else 8 h).  The
    bytes no client reads keep the values of ecc1's family-22 test vector.
    """
    if family <= 12:
        body = bytearray(19)
        body[0] = 18
    elif family <= 22:
        body = bytearray(bytes.fromhex("150001010100"  "9600" "8C00000000010000640104001400"))
    else:
        body = bytearray(26)
        body[0] = 25
        body[2:5] = b"\x01\x01\x01"
    bolus_at = 7 if family >= 23 else 6
    body[1] = auto_off_hours
    body[bolus_at] = max_bolus_tenths
    body[bolus_at + 1:bolus_at + 3] = max_basal_strokes.to_bytes(2, "big")
    body[10] = 0 if concentration == 100 else 1
    body[12] = selected_pattern
    body[13] = int(rf_enable)
    body[14] = 0
    body[18] = (0 if action_hours <= 6 else 1) if family <= 12 else action_hours
    return bytes(body)


def basal_schedule_data(entries) -> bytes:
    """Basal rates (92): 3-byte entries ``rateLo rateHi start`` (rate in 25 mU/h strokes, start in half-hours)."""
    return b"".join(strokes.to_bytes(2, "little") + bytes([start]) for start, strokes in entries)


def extended_fragments(data: bytes, minimum: int = 2) -> list:
    """An extended response (§4.3 P3): bodies ``SEQ`` + 64 data bytes, SEQ 1, 2, …, with 80 set on the last."""
    n = max(minimum, -(-len(data) // FRAGMENT_DATA))
    data = data.ljust(n * FRAGMENT_DATA, b"\0")
    return [bytes([i + 1 | (0x80 if i == n - 1 else 0)]) + data[i * FRAGMENT_DATA:(i + 1) * FRAGMENT_DATA]
            for i in range(n)]


def glucose_targets_body(family: int, units: int, entries) -> bytes:
    """BG targets (9F; 8C for family <= 12): ``n+1 units`` then ``start low high`` (x12: ``start target``)."""
    if family <= 12:
        sched = b"".join(bytes([start, (low + high) // 2]) for start, low, high in entries)
    else:
        sched = b"".join(bytes([start, low, high]) for start, low, high in entries)
    return bytes([len(sched) + 1, units]) + sched


def sensitivities_body(units: int, entries) -> bytes:
    """Insulin sensitivities (8B): ``n+1 units`` then ``start|bit8<<6 value&FF`` per entry."""
    sched = b"".join(bytes([start | ((value >> 8) & 1) << 6, value & 0xFF]) for start, value in entries)
    return bytes([len(sched) + 1, units]) + sched


def carb_ratios_body(family: int, units: int, entries) -> bytes:
    """Carb ratios (8A): ``n+1 units``, then ``start ratio`` (x22 and older, from byte 2) or
    ``start ratioHi ratioLo`` (x23+, from byte 3; byte 2 is 00)."""
    if family <= 22:
        return bytes([2 * len(entries) + 1, units]) + b"".join(bytes([s, r]) for s, r in entries)
    sched = b"".join(bytes([s]) + r.to_bytes(2, "big") for s, r in entries)
    return bytes([len(sched) + 1, units, 0]) + sched
