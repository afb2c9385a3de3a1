"""Protocol vectors from pump-protocol.md: 4b/6b, CRC-8, CRC-16, packets, framing, the worked example (§6)."""
from __future__ import annotations

import datetime as dt

import pytest

from profiler.pump import protocol as P


def h(text: str) -> bytes:
    """Hex with spaces; 'XX*n' repeats a byte n times."""
    out = bytearray()
    for tok in text.split():
        if "*" in tok:
            b, n = tok.split("*")
            out += bytes.fromhex(b) * int(n)
        else:
            out += bytes.fromhex(tok)
    return bytes(out)


ADDR = bytes.fromhex("123456")


# --- 4b/6b (§3.1, §3.2) ---

def test_symbol_table():
    assert P.SYMBOLS == (0x15, 0x31, 0x32, 0x23, 0x34, 0x25, 0x26, 0x16, 0x1A, 0x19, 0x2A, 0x0B, 0x2C, 0x0D, 0x0E,
                         0x1C)


@pytest.mark.parametrize("decoded, encoded", [
    ("A7 12 89 86 5D 00 BE", "A9 6C 72 69 96 A6 94 D5 55 2C E5"),
    ("A7 12 89 86 8D 00 B0", "A9 6C 72 69 96 A6 68 D5 55 2D 55"),
    ("A7 12 34 56 8D 00 7D", "A9 6C 72 8F 49 66 68 D5 55 58 D5"),
    ("00 00", "55 55 55"),
    ("A7 12 89 86 8D 09 03 37 32 32 00*60 39", "A9 6C 72 69 96 A6 68 D5 59 56 38 D6 8F 28 F2 55*90 8D 95"),
])
def test_4b6b_vectors(decoded, encoded):
    assert P.encode_4b6b(h(decoded)) == h(encoded)
    assert P.decode_4b6b(h(encoded)) == h(decoded)


def test_4b6b_odd_length_pads_0101():
    enc = P.encode_4b6b(b"\xA7")
    assert enc == bytes([0xA9, 0x65])          # 101010 010110 + 0101
    assert enc[-1] & 0x0F == 0x5
    assert P.decode_4b6b(enc) == b"\xA7"
    assert P.decode_4b6b(bytes([0xA9, 0x60])) == b"\xA7"   # pad bits are not checked
    assert [P.encoded_length(n) for n in (7, 71, 6, 70)] == [11, 107, 9, 105]


def test_4b6b_never_produces_zero_and_round_trips():
    data = bytes(range(256)) + bytes(range(255, -1, -1)) + b"\0" * 7
    enc = P.encode_4b6b(data)
    assert 0 not in enc
    assert P.decode_4b6b(enc) == data
    for b in range(256):
        assert 0 not in P.encode_4b6b(bytes([b]))


@pytest.mark.parametrize("bad", [b"\xA9\x6C\x72\x8F", b"\xFF\xFF\xFF", b"\xA9", b"\x00\x00\x00",
                                 b"\xA9\x6C\x72\xFF\x49\x66"])
def test_4b6b_decoding_failures(bad):
    with pytest.raises(P.DecodingError, match="6b/4b decoding failure"):
        P.decode_4b6b(bad)


# --- CRC-8 (§3.3) and CRC-16 (§3.4) ---

@pytest.mark.parametrize("data, crc", [
    (b"123456789", 0xEA), (bytes(range(10)), 0x98), (h("A7 12 89 86 5D 00"), 0xBE), (h("A7 12 89 86 06 00"), 0x15),
    (h("A7 12 89 86 8D 00"), 0xB0), (b"", 0x00),
])
def test_crc8(data, crc):
    assert P.crc8(data) == crc


@pytest.mark.parametrize("data, crc", [(b"123456789", 0x29B1), (h("02 06 06 03"), 0x41CD), (b"", 0xFFFF)])
def test_crc16(data, crc):
    assert P.crc16(data) == crc


# --- packets for pump 123456 (§4.2 table) ---

@pytest.mark.parametrize("cmd, arg, crc, encoded", [
    (0x8D, 0, 0x7D, "A9 6C 72 8F 49 66 68 D5 55 58 D5"), (0x73, 0, 0xDA, "A9 6C 72 8F 49 66 5A 35 55 36 A5"),
    (0xCE, 0, 0x9D, "A9 6C 72 8F 49 66 B0 E5 55 64 D5"), (0x70, 0, 0xE0, "A9 6C 72 8F 49 66 59 55 55 39 55"),
    (0x72, 0, 0xCC, "A9 6C 72 8F 49 66 5B 25 55 B2 C5"), (0x98, 0, 0xC8, "A9 6C 72 8F 49 66 65 A5 55 B1 A5"),
    (0x9D, 0, 0x86, "A9 6C 72 8F 49 66 64 D5 55 6A 65"), (0x80, 0, 0x83, "A9 6C 72 8F 49 66 69 55 55 6A 35"),
    (0x4C, 0, 0x9E, "A9 6C 72 8F 49 66 D2 C5 55 64 E5"), (0x42, 0, 0x5A, "A9 6C 72 8F 49 66 D3 25 55 96 A5"),
    (0x5B, 0, 0x07, "A9 6C 72 8F 49 66 94 B5 55 55 65"), (0x40, 0, 0x76, "A9 6C 72 8F 49 66 D1 55 55 5A 65"),
    (0x4D, 0, 0x88, "A9 6C 72 8F 49 66 D0 D5 55 69 A5"), (0x5D, 0, 0x73, "A9 6C 72 8F 49 66 94 D5 55 5A 35"),
    (0x06, 0, 0xD8, "A9 6C 72 8F 49 66 56 65 55 35 A5"), (0x15, 0, 0x19, "A9 6C 72 8F 49 66 C6 55 55 C5 95"),
    (0x15, 8, 0x00, "A9 6C 72 8F 49 66 C6 55 5A 55 55"),
])
def test_short_packets_for_123456(cmd, arg, crc, encoded):
    pkt = P.short_packet(ADDR, cmd, arg)
    assert pkt == bytes([0xA7, 0x12, 0x34, 0x56, cmd, arg, crc])
    assert P.encode_4b6b(pkt) == h(encoded)
    assert P.decode_packet(h(encoded)) == pkt[:-1]


def test_pump_address_is_hex():
    assert P.pump_address("123456") == h("12 34 56")
    assert P.pump_address("a1b2C3") == h("A1 B2 C3")
    for bad in ("12345", "1234567", "12345g"):
        with pytest.raises(ValueError):
            P.pump_address(bad)


def test_decode_packet_reports_crc_mismatch():
    enc = P.encode_4b6b(h("A7 12 34 56 8D 00 7E"))
    with pytest.raises(P.CRCError, match="computed CRC 7D but received 7E"):
        P.decode_packet(enc)


def test_long_request_settempbasal_and_history_step2():
    pkt = P.long_packet(ADDR, 0x4C, h("00 24 01"))
    assert pkt == h("A7 12 34 56 4C 03 00 24 01 00*61 03")
    wire = P.send_and_listen_request(P.encode_4b6b(pkt), 1000)
    assert wire == h("05 00 00 00 00 00 00 03 E8 00 A9 6C 72 8F 49 66 D2 C5 63 55 5C B4 57 15 55*91 56 35 00")
    assert len(wire) == 118
    hist = P.long_packet(ADDR, 0x80, b"\x00")
    assert hist == h("A7 12 34 56 80 01 00 00*63 1B")
    assert P.encode_4b6b(hist) == h("A9 6C 72 8F 49 66 69 55 71 55*96 C4 B5")


# --- subg_rfspy framing (§2) ---

def test_request_lengths():
    assert P.request_length(b"") is None
    assert P.request_length(b"\x02") == 1
    assert P.request_length(b"\x06\x09") is None and P.request_length(b"\x06\x09\x26") == 3
    assert P.request_length(b"\x03\x00\x00\x00") is None and P.request_length(h("03 00 00 00 03 E8")) == 6
    req = P.send_and_listen_request(h("A9 6C 72 8F 49 66 68 D5 55 58 D5"), 500)
    assert P.request_length(req[:-1]) is None
    assert P.request_length(req + b"\x02") == len(req) == 22
    assert P.request_length(b"\x00") == 1 and P.request_length(b"\x0A") == 1   # ignored bytes
    assert P.request_length(b"\x07") == 1 and P.request_length(b"\x08\x00\x01") == 3


@pytest.mark.parametrize("byte, dbm", [(0x30, -49), (0x1A, -60), (0xDE, -90), (0x01, -73)])
def test_rssi(byte, dbm):
    assert P.rssi_dbm(byte) == dbm


@pytest.mark.parametrize("mhz, word, requests, back", [
    ("916.6", 0x263111, ["06 09 26", "06 0A 31", "06 0B 11"], 916_599_975),
    ("916.55", 0x263089, ["06 09 26", "06 0A 30", "06 0B 89"], 916_550_170),
    ("868.35", 0x242E66, ["06 09 24", "06 0A 2E", "06 0B 66"], 868_349_853),
])
def test_frequency_words(mhz, word, requests, back):
    hz = P.parse_frequency(mhz)
    assert P.frequency_word(hz) == word
    assert P.frequency_requests(hz) == [h(r) for r in requests]
    assert P.word_frequency(word) == back


def test_parse_frequency():
    assert P.parse_frequency(None) == P.parse_frequency("") == 916_600_000
    assert P.parse_frequency("916550000") == 916_550_000
    for bad in ("1000", "abc", "850.0"):
        with pytest.raises(ValueError):
            P.parse_frequency(bad)


# --- the worked example: `mdt reservoir`, pump 123456, model 522 (§6) ---

SECTION6 = [
    ("C", "02"),
    ("R", "73 75 62 67 5F 72 66 73 70 79 20 32 2E 32 00"),
    ("C", "06 09 26"), ("R", "01 00"), ("C", "06 0A 30"), ("R", "01 00"), ("C", "06 0B 89"), ("R", "01 00"),
    ("C", "05 00 00 00 00 00 00 01 F4 00 A9 6C 72 8F 49 66 68 D5 55 58 D5 00"),
    ("R", "30 01 A9 6C 72 8F 49 66 68 D5 74 56 38 E5 8F 28 F2 55*90 95 A5 00"),
    ("C", "05 00 00 00 00 00 00 01 F4 00 A9 6C 72 8F 49 66 5A 35 55 36 A5 00"),
    ("R", "30 01 A9 6C 72 8F 49 66 5A 35 72 56 5D 26 55*93 39 55 00"),
]


def section6_built() -> list:
    """Every row of §6 built with this project's code (the prototype's version "2.2" and fixed counter 01)."""
    freq = P.frequency_requests(P.parse_frequency("916.55"))
    model_req = P.send_and_listen_request(P.encode_4b6b(P.short_packet(ADDR, P.MODEL)), P.PUMP_TIMEOUT_MS)
    res_req = P.send_and_listen_request(P.encode_4b6b(P.short_packet(ADDR, P.RESERVOIR)), P.PUMP_TIMEOUT_MS)
    model_rsp = P.radio_packet_response(P.encode_4b6b(P.data_response(ADDR, P.MODEL, h("04 03 35 32 32"))), 0x30, 1)
    res_rsp = P.radio_packet_response(P.encode_4b6b(P.data_response(ADDR, P.RESERVOIR, h("02 05 46"))), 0x30, 1)
    return [P.get_version_request(), b"subg_rfspy 2.2\0", freq[0], b"\x01\0", freq[1], b"\x01\0", freq[2],
            b"\x01\0", model_req, model_rsp, res_req, res_rsp]


def test_section6_byte_for_byte():
    built = section6_built()
    for (who, text), got in zip(SECTION6, built):
        assert got == h(text), f"{who}: {got.hex(' ')} != {text}"
    assert [len(b) for b in built] == [1, 15, 3, 2, 3, 2, 3, 2, 22, 110, 22, 110]


def test_section6_replies_decode():
    model = P.decode_packet(h(SECTION6[9][1])[2:-1])
    assert model == h("A7 12 34 56 8D 04 03 35 32 32") + bytes(60)
    assert P.crc8(model) == 0x58
    res = P.decode_packet(h(SECTION6[11][1])[2:-1])
    assert res[:8] == h("A7 12 34 56 73 02 05 46") and P.crc8(res) == 0xE0


def test_section6_variants():
    x23 = P.encode_4b6b(P.data_response(ADDR, P.RESERVOIR, h("04 00 00 15 18")))
    assert x23 == h("A9 6C 72 8F 49 66 5A 35 74 55 55 55 C6 5C 5A 55*90 D2 35")
    assert P.crc8(P.data_response(ADDR, P.RESERVOIR, h("04 00 00 15 18"))[:-1]) == 0x43
    wake = P.encode_4b6b(P.short_packet(ADDR, P.WAKEUP))
    assert P.send_and_listen_request(wake, 10) == h("05 00 00 00 00 00 00 00 0A 00 A9 6C 72 8F 49 66 94 D5 55 5A 35 00")
    assert P.send_and_listen_request(wake, 10000) == h(
        "05 00 00 00 00 00 00 27 10 00 A9 6C 72 8F 49 66 94 D5 55 5A 35 00")
    assert P.radio_packet_response(P.encode_4b6b(P.ack_packet(ADDR))) == h(
        "30 01 A9 6C 72 8F 49 66 56 65 55 35 A5 00")
    assert P.radio_packet_response(b"\x55", rssi=0, counter=0)[:2] == b"\x01\x01"   # never 00


# (the client's decoding of these bodies is tested in Go: profiler/pump/go/medtronic/medtronic_test.go)


# --- history records and pages (§4.6.11) ---

def test_timestamp_round_trip_and_layout():
    t = dt.datetime(2026, 11, 27, 3, 19, 28)
    b = P.encode_timestamp(t)
    assert b == bytes([28 | (11 >> 2) << 6, 19 | (11 & 3) << 6, 3, 27, 26])
    assert P.decode_timestamp(b) == t


def test_records_and_page():
    t = dt.datetime(2026, 11, 27, 3, 19, 28)
    tb = P.temp_basal_records(t, "absolute", 36, 1)
    assert tb[:2] == h("16 01") and tb[7:9] == h("33 24") and tb[-1] == 0 and len(tb) == 15
    assert P.temp_basal_records(t, "absolute", 0x150, 2)[-1] == 0x01          # rate bits 10-8
    assert P.temp_basal_records(t, "percent", 50, 2)[-1] == 1 << 3
    assert len(P.bolus_record(t, 22, 1500, 1500)) == 9 and P.bolus_record(t, 22, 1500, 1500)[:4] == h("01 0F 0F 00")
    assert P.bolus_record(t, 23, 1500, 1500)[:8] == h("01 00 3C 00 3C 00 00 00")
    recs = tb + P.bolus_record(t, 22, 1500, 1500) + P.suspend_record(t, True)
    page = P.make_page(recs)
    assert len(page) == 1024 and int.from_bytes(page[1022:], "big") == P.crc16(page[:1022])
    frags = P.page_fragments(page)
    assert len(frags) == 16 and all(len(f) == 65 for f in frags)
    assert [f[0] for f in frags] == list(range(1, 16)) + [0x90]
    assert b"".join(f[1:] for f in frags) == page
    assert P.split_records(page[:1022], 22) == [tb[:7], tb[7:], recs[15:24], recs[24:]]
    with pytest.raises(P.ProtocolError, match="unknown record type 99"):
        P.split_records(b"\x99" + bytes(10), 22)
