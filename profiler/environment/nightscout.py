"""A fake Nightscout server on loopback, for the CGM-read scenarios.

``oref0-get-ns-entries`` (and ``ns-get.sh``) read glucose from Nightscout's
REST API.  kprof runs those commands in a network namespace that has only
loopback, so the scenario starts this server inside the namespace and points
the command at ``http://127.0.0.1:<port>``.

What is served (stdlib only: ``http.server`` + ``threading``):

* ``GET /api/v1/entries/sgv.json`` (also ``/api/v1/entries/sgv``): the
  entries whose ``type`` is ``sgv`` (or that have no ``type``);
* ``GET /api/v1/entries.json`` (also ``/api/v1/entries``): all entries;
* everything else: 404 with a small JSON error body.

Recorded entries can be served re-dated (``redate: N``: the newest is N seconds
old when the service starts), for commands that check that the CGM data is fresh.

Replies are JSON arrays, newest first (by ``date``), cut to ``count=``
(Nightscout's default is 10).  ``find[field]=v`` and
``find[field][$gte|$gt|$lte|$lt|$ne|$eq]=v`` filter loosely: numbers compare as
numbers, ISO dates as dates, anything else as strings.  ``token=`` is ignored;
so is the ``api-secret`` header (no authentication).  Like Nightscout, a reply
carries ``Last-Modified`` (the newest entry's date) and an
``If-Modified-Since`` at or after it gives ``304 Not Modified`` with no body;
``oref0-get-ns-entries`` sends that header when its previous output file has
entries.

The server speaks HTTP/1.0 (one request per connection) so that no client
keeps a connection open past the command's end, and it never listens on
anything but a loopback address.

Run it by hand (for example inside ``unshare -n``)::

    python -m profiler.environment.nightscout --entries ns-entries.json --port 17580
"""

from __future__ import annotations

import argparse
import datetime as _dt
import email.utils
import errno
import http.server
import ipaddress
import json
import pathlib
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

from profiler.errors import KprofError

DEFAULT_COUNT = 10
"""Nightscout's default ``count`` when a request gives none."""

_ENTRIES_PATHS = {
    "/api/v1/entries/sgv.json": "sgv",
    "/api/v1/entries/sgv": "sgv",
    "/api/v1/entries.json": None,
    "/api/v1/entries": None,
}

_FIND_RE = re.compile(r"^find\[([^\[\]]+)\](?:\[\$(gte|gt|lte|lt|ne|eq)\])?$")


def _loopback_host(host: str) -> str:
    """Return ``host`` as a loopback IP literal, or raise ValueError."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"fake Nightscout host {host!r} is not an IP address; use 127.0.0.1"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"fake Nightscout must listen on loopback only, not {host}; use 127.0.0.1"
        )
    return str(address)


def _parse_time(value) -> float | None:
    """Seconds since the epoch for an ISO-8601 or HTTP date string, else None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        iso = text[:-1] + "+00:00" if text.endswith("Z") else text
        parsed = _dt.datetime.fromisoformat(iso)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()


def _entry_millis(entry) -> float | None:
    """The entry's time in ms since the epoch: ``date``, else ``dateString``."""
    if not isinstance(entry, dict):
        return None
    date = entry.get("date")
    if isinstance(date, (int, float)) and not isinstance(date, bool):
        return float(date)
    seconds = _parse_time(entry.get("dateString") or entry.get("created_at"))
    return None if seconds is None else seconds * 1000.0


def _as_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _compare(actual, wanted: str) -> int | None:
    """-1/0/1 comparing an entry's field with a query value; None if incomparable."""
    if actual is None:
        return None
    a_num, w_num = _as_number(actual), _as_number(wanted)
    if a_num is not None and w_num is not None:
        return (a_num > w_num) - (a_num < w_num)
    a_time, w_time = _parse_time(actual), _parse_time(wanted)
    if a_time is not None and w_time is not None:
        return (a_time > w_time) - (a_time < w_time)
    a_str = actual if isinstance(actual, str) else json.dumps(actual)
    return (a_str > wanted) - (a_str < wanted)


_OPERATORS = {
    "eq": lambda c: c == 0,
    "ne": lambda c: c != 0,
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
}


def select_entries(entries: list, query: str, entry_type: str | None) -> list:
    """The entries a Nightscout entries query returns: filtered, newest first, cut to count."""
    params = urllib.parse.parse_qsl(query, keep_blank_values=True)
    count = DEFAULT_COUNT
    filters = []
    for key, value in params:
        if key == "count":
            number = _as_number(value)
            if number is not None and number >= 0:  # NaN is not; a huge or infinite one means all
                count = int(min(number, len(entries)))
            continue
        match = _FIND_RE.match(key)
        if match:
            filters.append((match.group(1), match.group(2) or "eq", value))

    def keep(entry) -> bool:
        if not isinstance(entry, dict):
            return False
        if entry_type is not None and entry.get("type", entry_type) != entry_type:
            return False
        for field, op, value in filters:
            result = _compare(entry.get(field), value)
            if result is None:
                if op == "ne":
                    continue
                return False
            if not _OPERATORS[op](result):
                return False
        return True

    selected = [e for e in entries if keep(e)]
    selected.sort(key=lambda e: _entry_millis(e) or 0.0, reverse=True)
    return selected[:count]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "FakeNightscout/0.1"
    sys_version = ""

    def do_GET(self):  # noqa: N802 (http.server naming)
        owner: FakeNightscout = self.server.owner  # type: ignore[attr-defined]
        owner._log(self.path)
        split = urllib.parse.urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        stored = owner._collection(path)
        if stored is not None:  # a rig's Nightscout: what the loop uploaded (treatments, devicestatus)
            self._send_json(200, select_entries(stored, split.query, None))
            return
        if path not in _ENTRIES_PATHS:
            self._send_json(404, {"status": 404, "message": f"Not found: {split.path}"})
            return
        entries = owner._entries if owner.moving is None else moving_entries(owner._entries, time.time(), *owner.moving)
        selected = select_entries(entries + owner.uploaded("entries"), split.query, _ENTRIES_PATHS[path])
        newest = max((_entry_millis(e) or 0.0 for e in selected), default=0.0)
        headers = {}
        if newest > 0:
            headers["Last-Modified"] = email.utils.formatdate(newest / 1000.0, usegmt=True)
            since = _parse_time(self.headers.get("If-Modified-Since"))
            # HTTP dates have whole seconds: compare at that resolution.
            if since is not None and int(newest // 1000) <= int(since):
                self.send_response(304)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self._send_json(200, selected, headers)

    def do_HEAD(self):  # noqa: N802
        owner: FakeNightscout = self.server.owner  # type: ignore[attr-defined]
        owner._log(self.path)
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_DELETE = do_HEAD  # noqa: N815

    def do_POST(self):  # noqa: N802
        """A rig's uploads (``uploads: true``): devicestatus, treatments, entries; 405 otherwise."""
        owner: FakeNightscout = self.server.owner  # type: ignore[attr-defined]
        path = (urllib.parse.urlsplit(self.path).path.rstrip("/") or "/")
        name = _upload_name(path)
        if not owner.accepts_uploads or name is None:
            return self.do_HEAD()
        owner._log("POST " + self.path)
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        except ValueError:
            self._send_json(400, {"status": 400, "message": "body is not JSON"})
            return
        docs = [d for d in (body if isinstance(body, list) else [body]) if isinstance(d, dict)]
        self._send_json(200, owner._store(name, docs))

    def _send_json(self, status: int, body, headers: dict | None = None):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - keep stderr quiet
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind would call socket.getfqdn(): a name lookup
        # that is useless here and slow in a namespace without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port


class _Server6(_Server):
    address_family = socket.AF_INET6


class FakeNightscout:
    """A Nightscout look-alike serving ``entries`` on a loopback address.

    ``start()`` binds and serves in a daemon thread (port 0 picks a free
    port); ``stop()`` shuts it down.  ``requests`` lists the request targets
    (path with query string) in the order they arrived, whatever their status.
    """

    def __init__(self, entries: list, host="127.0.0.1", port=0, uploads: bool = False, moving: bool | float = False,
                 lag: float = 0.0, next_reading: float | None = None):
        if not isinstance(entries, list):
            raise TypeError("entries must be a list of Nightscout entry objects")
        self._entries = list(entries)
        self._host = _loopback_host(host)
        self._requested_port = int(port)
        self._bound_port: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: list[str] = []
        self.accepts_uploads = uploads
        # moving glucose: (seconds between readings, seconds a reading takes to reach Nightscout)
        # moving glucose: (seconds between readings, seconds a reading takes to reach Nightscout, slot anchor)
        step = float(_GLUCOSE_STEP_S if moving is True else moving)
        anchor = 0.0 if next_reading is None else (time.time() + next_reading - lag) % step
        self.moving = None if not moving else (step, float(lag), anchor)
        self._uploads: dict[str, list] = {name: [] for name in _UPLOADS}

    def _collection(self, path: str) -> list | None:
        """The stored uploads a GET of ``path`` reads (treatments, devicestatus), or None."""
        name = _upload_name(path)
        if not self.accepts_uploads or name in (None, "entries"):
            return None
        return self.uploaded(name)

    def uploaded(self, name: str) -> list:
        """What the client POSTed to ``/api/v1/<name>`` (devicestatus, treatments, entries), oldest first."""
        with self._lock:
            return list(self._uploads[name])

    def _store(self, name: str, docs: list) -> list:
        with self._lock:
            stored = []
            for doc in docs:
                doc = dict(doc)
                doc.setdefault("_id", f"{len(self._uploads[name]) + 1:024x}")
                self._uploads[name].append(doc)
                stored.append(doc)
            return stored

    def start(self) -> "FakeNightscout":
        """Bind and serve in a background thread; OSError if the port is taken."""
        if self._server is not None:
            return self
        server_class = _Server6 if ":" in self._host else _Server
        server = server_class((self._host, self._requested_port), _Handler)
        server.owner = self  # type: ignore[attr-defined]
        self._server = server
        self._bound_port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-nightscout-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (safe to call twice)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeNightscout":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (kept after stop()); before start(), the one asked for."""
        if self._bound_port is not None:
            return self._bound_port
        return self._requested_port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def requests(self) -> list:
        with self._lock:
            return list(self._requests)

    def _log(self, path: str) -> None:
        with self._lock:
            self._requests.append(path)


def load_entries(path: pathlib.Path) -> list:
    """Read a JSON list of entries, raising KprofError with a clear message."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KprofError(
            f"nightscout service: entries file {path} does not exist; "
            "put it in the scenario's fixtures or create it in a prepare step"
        ) from None
    except OSError as e:
        raise KprofError(f"nightscout service: cannot read entries file {path}: {e.strerror}") from None
    try:
        entries = json.loads(text)
    except ValueError as e:
        raise KprofError(
            f"nightscout service: entries file {path} is not valid JSON "
            f"(line {getattr(e, 'lineno', '?')}): {getattr(e, 'msg', e)}"
        ) from None
    if not isinstance(entries, list):
        raise KprofError(
            f"nightscout service: entries file {path} must hold a JSON array of entries, "
            f"not a {type(entries).__name__}"
        )
    return entries


_DATE_STRINGS = ("dateString", "sysTime", "created_at")


def _iso_millis(millis: float) -> str:
    t = _dt.datetime.fromtimestamp(millis / 1000.0, _dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def redate_entries(entries: list, newest_age_s: float, now_s: float) -> list:
    """The entries moved in time, spacing kept, so that the newest is ``newest_age_s`` seconds old at ``now_s``.

    Recorded CGM data (oref0's test fixtures are from 2018) is "too old" for a loop that checks freshness;
    served re-dated, it reads like a sensor that is running now. ``date`` (ms) and the ISO date strings
    (dateString, sysTime, created_at) move by the same amount; other fields are kept.
    """
    times = [m for m in map(_entry_millis, entries) if m is not None]
    if not times:
        return list(entries)
    shift = (now_s - newest_age_s) * 1000.0 - max(times)
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            out.append(entry)
            continue
        entry = dict(entry)
        date = entry.get("date")
        if isinstance(date, (int, float)) and not isinstance(date, bool):
            entry["date"] = int(round(date + shift))
        for key in _DATE_STRINGS:
            seconds = _parse_time(entry.get(key))
            if seconds is not None:
                entry[key] = _iso_millis(seconds * 1000.0 + shift)
        out.append(entry)
    return out


_UPLOADS = ("devicestatus", "treatments", "entries")
_GLUCOSE_STEP_S = 300


def _upload_name(path: str) -> str | None:
    for name in _UPLOADS:
        if path in (f"/api/v1/{name}", f"/api/v1/{name}.json"):
            return name
    return None


def moving_entries(entries: list, now_s: float, step_s: float = _GLUCOSE_STEP_S, lag_s: float = 0.0,
                   anchor_s: float = 0.0) -> list:
    """The recorded glucose as a sensor running now, one reading every ``step_s`` seconds (a CGM: 300).

    The recorded values (newest first) repeat as a cycle in wall-clock slots: the reading of slot ``k``
    (``anchor_s + k * step_s`` s since the epoch) has value number ``k mod N``. A reading is served once it is
    ``lag_s`` seconds old (the time it takes to reach Nightscout). A new reading appears every ``step_s`` and its value
    differs from the last, so a loop that keeps running keeps deciding on fresh glucose.
    """
    recorded = sorted((e for e in entries if isinstance(e, dict) and _entry_millis(e) is not None),
                      key=lambda e: -_entry_millis(e))
    if not recorded:
        return list(entries)
    values = [e.get("sgv", e.get("glucose")) for e in recorded]
    slot = int((now_s - lag_s - anchor_s) // step_s)
    out = []
    for i, entry in enumerate(recorded):
        entry, millis = dict(entry), int((anchor_s + (slot - i) * step_s) * 1000)
        value = values[(slot - i) % len(values)]
        for key in ("sgv", "glucose"):
            if key in entry:
                entry[key] = value
        entry["date"] = millis
        for key in _DATE_STRINGS:
            if key in entry:
                entry[key] = _iso_millis(millis)
        out.append(entry)
    return out


def start_service(spec: dict, workdir: pathlib.Path) -> FakeNightscout:
    """Start the fake Nightscout a scenario's ``services:`` item describes.

    ``spec`` is an item the scenario schema passed (profiler/schema/scenario.schema.json: the one place its
    keys, types and ranges are checked), like ``{"type": "nightscout", "port": 17580, "entries":
    "ns-entries.json"}``; ``entries`` is relative to ``workdir`` (default ``ns-entries.json``), ``port``
    defaults to 0 (any free port); it listens on 127.0.0.1 only (``host``: another loopback address, for
    this module's own command line). ``redate: N`` serves the entries moved in time so that the newest is N
    seconds old when the service starts (:func:`redate_entries`); ``moving: true`` serves them as a sensor
    running now, a new value every 5 minutes (``moving: N``: every N seconds; ``lag: S``: each reading
    served once it is S seconds old; ``next_reading: T``: the first new reading arrives T seconds after the
    service starts) (:func:`moving_entries`); ``uploads: true`` makes it a rig's Nightscout: it takes the
    loop's POSTs to devicestatus, treatments and entries and serves them back (GET treatments,
    devicestatus; uploaded entries join the glucose).
    """
    redate, nxt, port = spec.get("redate"), spec.get("next_reading"), spec.get("port", 0)
    try:
        host = _loopback_host(str(spec.get("host", "127.0.0.1")))
    except ValueError as e:
        raise KprofError(f"services: {e}") from None
    entries_name = spec.get("entries") or "ns-entries.json"
    entries = load_entries(pathlib.Path(workdir) / entries_name)
    if redate is not None:
        entries = redate_entries(entries, float(redate), time.time())
    service = FakeNightscout(entries, host=host, port=port, uploads=spec.get("uploads", False),
                             moving=spec.get("moving", False), lag=float(spec.get("lag", 0)),
                             next_reading=None if nxt is None else float(nxt))
    try:
        return service.start()
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise KprofError(
                f"services: nightscout port {port} on {host} is already in use; "
                "stop whatever listens there or choose another port"
            ) from None
        raise KprofError(f"services: cannot start nightscout on {host}:{port}: {e.strerror or e}") from None


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be an integer 0-65535, not {text!r}")
    return int(text)


def main(argv=None) -> int:
    """Serve entries until SIGTERM/SIGINT; print the URL when ready."""
    parser = argparse.ArgumentParser(
        prog="python -m profiler.environment.nightscout",
        description="Fake Nightscout on loopback serving a JSON file of entries.",
    )
    parser.add_argument("--entries", required=True, help="JSON array of Nightscout entries")
    parser.add_argument("--port", type=_port, default=0, help="0-65535 (default 0: a free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log", help="on exit, write the list of requested paths to this JSON file")
    args = parser.parse_args(argv)
    if not pathlib.Path(args.entries).name:
        parser.error(f"argument --entries: must name a file, not {args.entries!r}")
    try:
        entries_path = pathlib.Path(args.entries)
        service = start_service(
            {"type": "nightscout", "port": args.port, "entries": entries_path.name, "host": args.host},
            entries_path.parent,
        )
    except KprofError as e:
        print(f"kprof: {e}", file=sys.stderr)
        return KprofError.exit_code
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(service.url, flush=True)
    try:
        done.wait()
    finally:
        service.stop()
        if args.log:
            pathlib.Path(args.log).write_text(json.dumps(service.requests, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
