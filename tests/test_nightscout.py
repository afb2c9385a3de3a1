"""Tests of the fake Nightscout server: real HTTP on 127.0.0.1, port 0."""

import datetime as dt
import email.utils
import json
import os
import pathlib
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from profiler.environment.nightscout import FakeNightscout, start_service
from profiler.errors import KprofError

FIXTURE = (
    pathlib.Path(__file__).resolve().parent.parent
    / "scenarios" / "fixtures" / "get-ns-entries" / "ns-entries.json"
)

BASE = 1536159489623  # 2018-09-05T14:58:09.623Z


def _entry(minutes_ago, sgv, type_="sgv"):
    date = BASE - minutes_ago * 60_000
    return {
        "_id": f"id{minutes_ago}",
        "type": type_,
        "sgv": sgv,
        "date": date,
        "dateString": _iso(date),
        "direction": "Flat",
        "device": "test",
    }


def _iso(millis):
    return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")


# Deliberately out of order, with one non-sgv entry (a meter BG).
ENTRIES = [_entry(m, 100 + m) for m in (10, 0, 25, 5, 20, 15, 30, 35, 40, 45, 50, 55, 60)] + [
    dict(_entry(12, 0, "mbg"), mbg=111)
]

# No proxies from the environment: these requests must go straight to 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url, headers=None):
    """(status, headers, parsed JSON body or None)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=5) as response:
            body = response.read()
            return response.status, response.headers, json.loads(body) if body else None
    except urllib.error.HTTPError as e:
        body = e.read()
        return e.code, e.headers, json.loads(body) if body else None


@pytest.fixture
def server():
    ns = FakeNightscout(ENTRIES).start()
    yield ns
    ns.stop()


def test_start_binds_loopback_free_port(server):
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_sgv_json_newest_first_and_count(server):
    status, headers, body = get(server.url + "/api/v1/entries/sgv.json?count=3")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert [e["sgv"] for e in body] == [100, 105, 110]
    assert all(e["type"] == "sgv" for e in body)


def test_default_count_is_ten(server):
    _, _, body = get(server.url + "/api/v1/entries/sgv.json")
    assert len(body) == 10


@pytest.mark.parametrize("count", ["1e400", "inf", "-inf", "nan", "1e308"])
def test_absurd_counts_answer_instead_of_crashing(server, count):
    status, _, body = get(server.url + f"/api/v1/entries/sgv.json?count={count}")
    assert status == 200 and len(body) in (10, 13), (count, body)


def test_count_larger_than_data_returns_all_sgv(server):
    _, _, body = get(server.url + "/api/v1/entries/sgv.json?count=1000")
    assert len(body) == 13
    dates = [e["date"] for e in body]
    assert dates == sorted(dates, reverse=True)


def test_entries_json_includes_other_types(server):
    _, _, body = get(server.url + "/api/v1/entries.json?count=1000")
    assert len(body) == 14
    assert {e["type"] for e in body} == {"sgv", "mbg"}
    _, _, only_mbg = get(server.url + "/api/v1/entries.json?find[type]=mbg")
    assert [e["mbg"] for e in only_mbg] == [111]


def test_find_date_filters(server):
    since = BASE - 20 * 60_000
    _, _, body = get(server.url + f"/api/v1/entries/sgv.json?count=100&find[date][$gte]={since}")
    assert [e["sgv"] for e in body] == [100, 105, 110, 115, 120]
    _, _, body = get(
        server.url + f"/api/v1/entries/sgv.json?count=100&find[date][$gt]={since}&find[date][$lte]={BASE - 5 * 60_000}"
    )
    assert [e["sgv"] for e in body] == [105, 110, 115]


def test_find_datestring_compares_as_dates(server):
    # An ISO string with an offset: 14:38:09.623Z == 09:38:09.623-05:00.
    _, _, body = get(
        server.url + "/api/v1/entries/sgv.json?count=100&find[dateString][$gte]=2018-09-05T09:38:09.623-05:00"
    )
    assert [e["sgv"] for e in body] == [100, 105, 110, 115, 120]


def test_token_and_api_secret_are_accepted(server):
    status, _, body = get(
        server.url + "/api/v1/entries/sgv.json?count=2&token=abc",
        headers={"api-secret": "0" * 40},
    )
    assert status == 200 and len(body) == 2


def test_if_modified_since_gives_304_when_nothing_newer(server):
    status, headers, body = get(server.url + "/api/v1/entries/sgv.json?count=12")
    last_modified = headers["Last-Modified"]
    assert email.utils.parsedate_to_datetime(last_modified).timestamp() == BASE // 1000
    # oref0-get-ns-entries sends an ISO date (Date.toISOString()).
    status, _, body = get(
        server.url + "/api/v1/entries/sgv.json?count=12",
        headers={"If-Modified-Since": _iso(BASE)},
    )
    assert status == 304 and body is None
    status, _, body = get(
        server.url + "/api/v1/entries/sgv.json?count=12",
        headers={"If-Modified-Since": last_modified},
    )
    assert status == 304
    status, _, body = get(
        server.url + "/api/v1/entries/sgv.json?count=12",
        headers={"If-Modified-Since": _iso(BASE - 5 * 60_000)},
    )
    assert status == 200 and body[0]["sgv"] == 100


def test_other_paths_404_and_all_requests_logged(server):
    assert get(server.url + "/sgv.json?count=12")[0] == 404
    assert get(server.url + "/api/v1/treatments.json")[0] == 404
    assert get(server.url + "/api/v1/entries/sgv.json?count=1")[0] == 200
    assert server.requests == [
        "/sgv.json?count=12",
        "/api/v1/treatments.json",
        "/api/v1/entries/sgv.json?count=1",
    ]


def test_requests_is_a_copy(server):
    get(server.url + "/api/v1/entries.json")
    log = server.requests
    log.append("x")
    assert server.requests == ["/api/v1/entries.json"]


def test_post_is_rejected(server):
    request = urllib.request.Request(server.url + "/api/v1/entries.json", data=b"[]", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        _OPENER.open(request, timeout=5)
    assert info.value.code == 405


def test_connection_closed_after_response(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /api/v1/entries/sgv.json?count=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert json.loads(body)[0]["sgv"] == 100


def test_stop_frees_port_and_is_idempotent():
    ns = FakeNightscout([]).start()
    port = ns.port
    assert get(ns.url + "/api/v1/entries/sgv.json")[2] == []
    ns.stop()
    ns.stop()
    assert ns.port == port and ns.url.endswith(f":{port}")  # still reported after stop
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # The port can be bound again at once (SO_REUSEADDR).
    with FakeNightscout([], port=port) as again:
        assert again.port == port


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "example.com"])
def test_refuses_non_loopback_hosts(host):
    with pytest.raises(ValueError):
        FakeNightscout([], host=host)


def test_localhost_means_127_0_0_1():
    with FakeNightscout(ENTRIES, host="localhost") as ns:
        assert ns.url.startswith("http://127.0.0.1:")


def test_entries_must_be_a_list():
    with pytest.raises(TypeError):
        FakeNightscout({"sgv": 1})


# --- start_service -----------------------------------------------------------


def test_start_service_serves_fixture_file(tmp_path):
    (tmp_path / "ns-entries.json").write_bytes(FIXTURE.read_bytes())
    ns = start_service({"type": "nightscout", "port": 0, "entries": "ns-entries.json"}, tmp_path)
    try:
        status, _, body = get(ns.url + "/api/v1/entries/sgv.json?count=12")
        assert status == 200
        assert len(body) == 12
        assert body[0]["sgv"] == 142
        assert ns.requests == ["/api/v1/entries/sgv.json?count=12"]
    finally:
        ns.stop()


def test_start_service_missing_file(tmp_path):
    with pytest.raises(KprofError, match="does not exist"):
        start_service({"type": "nightscout", "port": 0, "entries": "nope.json"}, tmp_path)


def test_start_service_bad_json(tmp_path):
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(KprofError, match="not valid JSON"):
        start_service({"type": "nightscout", "port": 0, "entries": "bad.json"}, tmp_path)


def test_start_service_not_a_list(tmp_path):
    (tmp_path / "obj.json").write_text('{"sgv": 1}')
    with pytest.raises(KprofError, match="JSON array"):
        start_service({"type": "nightscout", "port": 0, "entries": "obj.json"}, tmp_path)


def test_start_service_port_taken(tmp_path):
    (tmp_path / "e.json").write_text("[]")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(KprofError, match=f"port {port} .*already in use"):
            start_service({"type": "nightscout", "port": port, "entries": "e.json"}, tmp_path)


@pytest.mark.parametrize(
    "item, message",
    [
        ("{type: xdrip}", "services[0].type: must be one of nightscout (got 'xdrip')"),
        ('{type: nightscout, port: "80"}', "services[0].port: must be integer (got str '80')"),
        ("{type: nightscout, port: 70000}", "services[0].port: must be at most 65535"),
        ("{type: nightscout, host: 0.0.0.0}", "services[0]: unknown key 'host'"),
        ("{type: nightscout, entires: x}", "services[0]: unknown key 'entires'"),
        ("{type: nightscout, entries: ''}", "services[0].entries: must not be empty"),
        ("{type: nightscout, moving: 0}", "services[0].moving: must be at least 1"),
        ("{type: nightscout, moving: 3601}", "services[0].moving: must be at most 3600"),
        ("{type: nightscout, port: 0}", "services[0].port: must be at least 1"),
        ("{type: nightscout, lag: -1}", "services[0].lag: must be at least 0"),
        ("{type: nightscout, lag: 3601}", "services[0].lag: must be at most 3600"),
        ("{type: nightscout, next_reading: 3601}", "services[0].next_reading: must be at most 3600"),
        ("{type: nightscout, redate: 86401}", "services[0].redate: must be at most 86400"),
        ("{type: nightscout, redate: -1}", "services[0].redate: must be at least 0"),
        ("{type: nightscout, redate: true}", "services[0].redate: must be number (got bool True)"),
        ("{type: nightscout, moving: 0.5}", "services[0].moving: must be at least 1"),
        ("{type: nightscout, moving: 'yes'}", "services[0].moving: must be boolean or number (got str 'yes')"),
        ("{type: nightscout, uploads: 1}", "services[0].uploads: must be boolean (got int 1)"),
        ("{type: nightscout, next_reading: true}", "services[0].next_reading: must be number (got bool True)"),
    ],
)
def test_bad_service_items_are_refused_by_the_scenario_schema(tmp_path, item, message):
    """The scenario schema is the one place a service item's keys, types and ranges are checked: a bad item
    is refused when the scenario is loaded, before anything runs (start_service takes what passed)."""
    from profiler.scenario import load_scenario
    sc = tmp_path / "svc.yaml"
    sc.write_text(f"name: svc\ndescription: d\ncommand: [\"true\"]\nservices: [{item}]\n")
    with pytest.raises(KprofError) as e:
        load_scenario(sc)
    assert f"svc.yaml:4: {message}" in str(e.value)


@pytest.mark.parametrize("item", ["{type: nightscout}", "{type: nightscout, moving: true, lag: 0}",
                                  "{type: nightscout, moving: 1, port: 65535, entries: e.json, redate: 86400}"])
def test_good_service_items_pass_the_scenario_schema(tmp_path, item):
    from profiler.scenario import load_scenario
    sc = tmp_path / "svc.yaml"
    sc.write_text(f"name: svc\ndescription: d\ncommand: [\"true\"]\nservices: [{item}]\n")
    assert load_scenario(sc).services[0]["type"] == "nightscout"


@pytest.mark.parametrize("args, message", [(["--port", "70000"], "--port: must be an integer 0-65535"),
                                           (["--port", "\u0663"], "--port: must be an integer 0-65535"),
                                           (["--host", "0.0.0.0"], "loopback only"),
                                           (["--entries", ""], "--entries: must name a file"),
                                           (["--entries", "/"], "--entries: must name a file")])
def test_the_modules_own_command_line_refuses_bad_arguments(tmp_path, args, message):
    """One message, exit 2 (the module is run from a directory holding an ns-entries.json, which an empty
    --entries must not fall back to)."""
    (tmp_path / "ns-entries.json").write_text("[]")
    p = subprocess.run([sys.executable, "-m", "profiler.environment.nightscout", "--entries",
                        str(tmp_path / "ns-entries.json"), *args], capture_output=True, text=True, timeout=30,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parent.parent)})
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_redate_moves_every_entry_by_the_same_amount():
    from profiler.environment.nightscout import redate_entries

    old = [_entry(0, 142), _entry(5, 136), {"type": "sgv", "sgv": 124, "dateString": "2018-09-05T14:48:09.731Z"}]
    old[0]["date"], old[1]["date"] = 1536159489623, 1536159189786   # 2018-09-05T14:58:09.623Z, 14:53:09.786Z
    old[0]["dateString"], old[1]["dateString"] = "2018-09-05T14:58:09.623Z", "2018-09-05T14:53:09.786Z"
    now = 1796560000.0
    new = redate_entries(old, 60, now)
    assert new[0]["date"] == int(now * 1000) - 60000
    assert new[0]["date"] - new[1]["date"] == 1536159489623 - 1536159189786      # spacing kept
    assert new[0]["dateString"] == _iso(new[0]["date"])                          # same ISO form, moved
    third = dt.datetime.fromisoformat(new[2]["dateString"].replace("Z", "+00:00")).timestamp() * 1000
    assert round(third) == new[0]["date"] - (1536159489623 - 1536158889731)
    assert old[0]["date"] == 1536159489623 and new[0]["sgv"] == 142                # input untouched


def test_start_service_serves_redated_entries(tmp_path):
    import time
    (tmp_path / "e.json").write_text(json.dumps([{"type": "sgv", "sgv": 142, "date": 1536159489623}]))
    service = start_service({"type": "nightscout", "entries": "e.json", "redate": 30}, tmp_path)
    try:
        status, _, body = get(f"{service.url}/api/v1/entries/sgv.json?count=1")
    finally:
        service.stop()
    age = time.time() - body[0]["date"] / 1000
    assert status == 200 and 29 <= age < 40


# ----------------------------------------------------------------------------- a rig's Nightscout

def test_rig_nightscout_takes_uploads_and_serves_them_back():
    with FakeNightscout([], uploads=True) as server:
        body = json.dumps([{"device": "openaps://rig", "openaps": {"iob": {"iob": 0.5}}}]).encode()
        req = urllib.request.Request(server.url + "/api/v1/devicestatus.json", data=body, method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req) as r:
            stored = json.loads(r.read())
        assert stored[0]["device"] == "openaps://rig" and stored[0]["_id"]
        treat = {"eventType": "Temp Basal", "created_at": "2026-01-01T10:00:00Z", "rate": 1.2}
        req = urllib.request.Request(server.url + "/api/v1/treatments.json", data=json.dumps(treat).encode(),
                                     method="POST")
        urllib.request.urlopen(req).read()
        with urllib.request.urlopen(server.url + "/api/v1/treatments.json?find[eventType]=Temp+Basal") as r:
            assert [t["rate"] for t in json.loads(r.read())] == [1.2]
        with urllib.request.urlopen(server.url + "/api/v1/devicestatus.json?count=5") as r:
            assert json.loads(r.read())[0]["openaps"]["iob"]["iob"] == 0.5
        assert server.uploaded("devicestatus")[0]["device"] == "openaps://rig"
        assert server.uploaded("entries") == []
        assert "POST /api/v1/devicestatus.json" in server.requests


def test_moving_glucose_follows_the_clock():
    from profiler.environment.nightscout import moving_entries
    recorded = [_entry(m, 100 + m) for m in range(0, 50, 5)]        # values 100, 105, … newest first
    values = [100 + m for m in range(0, 50, 5)]
    t = 1_800_000_000.0
    a = moving_entries(recorded, t, 150, 330)
    b = moving_entries(recorded, t + 150, 150, 330)
    slot = int((t - 330) // 150)
    assert a[0]["date"] == slot * 150 * 1000 and a[0]["date"] <= (t - 330) * 1000
    assert [e["date"] for e in a][:3] == [a[0]["date"] - i * 150_000 for i in range(3)]
    assert b[0]["date"] == a[0]["date"] + 150_000                  # one step later: one new reading
    assert a[0]["sgv"] == values[slot % len(values)] and b[0]["sgv"] == values[(slot + 1) % len(values)]
    assert a[0]["sgv"] != b[0]["sgv"]
    assert a[0]["dateString"] == _iso(a[0]["date"])
