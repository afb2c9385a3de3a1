"""Run kprof's emulated Medtronic pump behind a subg_rfspy (CC111x) UART radio on a pseudo-terminal.

  kprof pump serve [--config FILE] [--id 123456] [--model 522] [--reservoir 135.5] [--battery 1.45]
                   [--frequency MHZ] [--fault MODE] [--history FILE] [--link PATH] [--no-latency] [-v]

serve prints the pty's slave path (first line of stdout), serves any number of client sessions one after
another until Ctrl-C or SIGTERM, then prints the final pump state as JSON.  Pump state (reservoir, temp
basal, suspended, history, ...) lasts as long as the emulator runs.

The pump tools (kprof's Go tools in build/rig-tools/uart/, or ecc1's uart build) open /dev/serial0, a
constant of their build: give --link /dev/serial0 (root) so that they find the radio where they look, e.g.
  kprof pump serve --link /dev/serial0 &  MEDTRONIC_PUMP_ID=123456 build/rig-tools/uart/mdt reservoir
The link is removed on exit. An existing PATH is never replaced (on a Pi /dev/serial0 is the real UART),
unless it is a link kprof left behind to a pty that no longer exists. (kprof run binds the pty at /dev/serial0 in the scenario's own mount
namespace instead, leaving the host's /dev alone.)

The pump's clock is local time in the zone of serve's own TZ (run TZ=UTC kprof pump serve to match a
client started with TZ=UTC).  The pump transmits on --frequency, else on serve's MEDTRONIC_FREQUENCY, else
on 916.600 MHz (ecc1's default): a client tuned there hears it at -49 dBm, 7 dB less per 50 kHz off, and
not at all more than 150 kHz off, so mmtune finds the pump's frequency.  Radio timing is real: an RX
timeout takes the whole listen (listen -t 1s: 1 s; a silent pump costs ~13 s before "no response to
wakeup"); --no-latency answers everything at once.  Settings, basal rates, BG targets, sensitivities and
carb ratios come from --config (keys as in a scenario's pump: section: max_basal, max_bolus,
insulin_action_curve, basal_schedule, bg_units, bg_targets, sensitivities, carb_ratios); the defaults are
ecc1's test vectors.

Faults (--fault MODE[:COMMAND,...][@N]): none, no-response, busy, crc, asleep, late, interrupted,
zero-data, encoding, wrong-pump, nak, ack-lost, lost-fragment, duplicate-fragment, page-crc.
COMMANDs (model, reservoir, settempbasal, bolus, history, ...) limit a fault to those pump commands;
@N limits it to the first N matching exchanges (for asleep: the number of wake-ups needed, default 20).
duplicate-fragment duplicates at most one fragment per history page (with @N: in the first N pages), so
the client, which ACKs a duplicate again, always gets the whole page.
Examples: --fault asleep, --fault crc:reservoir@1, --fault busy:version.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="pump_action", metavar="ACTION")
    sub.required = True
    s = sub.add_parser("serve", help="run the emulated radio + pump on a pty until Ctrl-C/SIGTERM",
                       description=__doc__.strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--config", type=Path, metavar="FILE",
                   help="JSON or YAML mapping of pump settings, the keys of a scenario's pump: section; the "
                        "options below override it")
    s.add_argument("--id", help="pump serial, 6 hex digits as MEDTRONIC_PUMP_ID (default 123456)")
    s.add_argument("--model", help="pump model: 522/722 (x22 format), 523/723/554/754 (x23), ... (default 522)")
    s.add_argument("--reservoir", type=float, help="insulin remaining, units (default 135)")
    s.add_argument("--battery", type=float, help="battery voltage (default 1.45)")
    s.add_argument("--clock-offset", type=float, metavar="SECONDS",
                   help="seconds added to this machine's clock for the pump's clock (default 0)")
    s.add_argument("--frequency", type=float, metavar="MHZ",
                   help="the pump's frequency (default: MEDTRONIC_FREQUENCY, else 916.6)")
    s.add_argument("--fault", metavar="MODE", help="device fault to emulate (see above; default none)")
    s.add_argument("--history", type=Path, metavar="FILE",
                   help="JSON or YAML file: a list of initial history records, oldest first "
                        "(e.g. [{type: Bolus, time: '2026-11-27T03:19:28', amount: 1.5}])")
    s.add_argument("--no-latency", action="store_true", help="answer at once instead of with radio latencies")
    s.add_argument("--link", type=Path, metavar="PATH",
                   help="also make PATH a symlink to the pty (e.g. /dev/serial0); removed on exit; an existing "
                   "PATH is refused (unless it is kprof's own stale link)")
    s.add_argument("-v", "--verbose", action="store_true", help="print every exchange on stderr")


def _load(path: Path, option: str):
    from profiler.errors import KprofError, check_input
    check_input(path, f"a {option} file", missing_ok=True)      # (/dev/zero never ends)
    try:
        text = path.read_text()
    except OSError as e:
        raise KprofError(f"{option} {path}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise KprofError(f"{option} {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        import yaml
        return yaml.safe_load(text)
    except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
        raise KprofError(f"{option} {path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} "
                         f"({e})") from None


def _check_link(link: Path) -> None:
    """--link never replaces what is there (on a Pi, /dev/serial0 -> ttyAMA0 is the real UART): only a
    link kprof left behind (to a pty that no longer exists, from a pump serve that was killed) is reused."""
    from profiler.errors import KprofError
    if link.is_symlink():
        target = os.readlink(link)
        if target.startswith("/dev/pts/") and not os.path.exists(target):
            return  # kprof's own, stale
        raise KprofError(f"--link {link}: exists already (a symlink to {target}); kprof does not replace it. "
                         f"Choose another path, or remove it if it is not needed")
    if link.exists():
        raise KprofError(f"--link {link}: exists already and is not a symlink; kprof does not replace it. "
                         f"Choose another path")
    if not link.parent.is_dir():
        raise KprofError(f"--link {link}: directory {link.parent} does not exist")


def _make_link(link: Path, target: str) -> None:
    from profiler.errors import KprofError
    tmp = link.with_name(f".{link.name}.kprof-{os.getpid()}")
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        hint = " (run as root for /dev)" if e.errno in (1, 13) else ""
        raise KprofError(f"--link {link}: cannot create the symlink: {e.strerror}{hint}") from None


def _remove_link(link: Path, target: str) -> None:
    try:
        if link.is_symlink() and os.readlink(link) == target:
            link.unlink()
    except OSError:
        pass


def _show(entry: dict) -> None:
    resp = entry.get("response")
    what = entry["radio"] + (f" {entry['command']}" if entry.get("command") else "")
    extra = f" [{entry['fault']}]" if entry.get("fault") else (f" ({entry['note']})" if entry.get("note") else "")
    answer = f"{len(resp) // 2} bytes" if resp else "no reply"
    print(f"kprof pump: {entry['t']:9.3f}s {what}: {answer}{extra}", file=sys.stderr, flush=True)


def main(args) -> int:
    from profiler.errors import KprofError
    from profiler.pump.config import config_from_mapping
    from profiler.pump.emulator import PumpEmulator

    if args.pump_action != "serve":
        raise KprofError(f"unknown pump action {args.pump_action!r}; use 'kprof pump serve'")
    spec = {}
    if args.config is not None:
        spec = _load(args.config, "--config")
        if not isinstance(spec, dict):
            raise KprofError(f"--config {args.config}: must be a mapping of pump settings (id, model, ...)")
    given = {"id": args.id, "model": args.model, "reservoir": args.reservoir, "battery": args.battery,
             "clock_offset": args.clock_offset, "frequency": args.frequency, "fault": args.fault}
    spec.update({k: v for k, v in given.items() if v is not None})
    if args.no_latency:
        spec["latency"] = False
    if args.history is not None:
        spec["history"] = _load(args.history, "--history")
    config = config_from_mapping(spec, "kprof pump serve")
    if args.link is not None:
        _check_link(args.link)

    from profiler.runner import pump_tool_dir
    emulator = PumpEmulator(config, env=dict(os.environ))   # TZ: the pump's zone; MEDTRONIC_FREQUENCY
    if args.verbose:
        emulator.on_exchange = _show
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    emulator.start()
    linked = False
    try:
        if args.link is not None:
            _make_link(args.link, emulator.slave_path)
            linked = True
        print(emulator.slave_path, flush=True)
        where = args.link if linked else emulator.slave_path
        print(f"kprof pump: model {config.model} pump {config.id} behind a subg_rfspy radio on {where}"
              f" (fault: {config.fault}); Ctrl-C or SIGTERM stops it.\n"
              + (f"kprof pump: try  MEDTRONIC_PUMP_ID={config.id} "
                 f"{pump_tool_dir('uart') / 'mdt'} reservoir"
                 if str(where) == "/dev/serial0" else
                 "kprof pump: the pump tools open /dev/serial0: give --link /dev/serial0 (root) to reach them"),
              file=sys.stderr, flush=True)
        try:
            while not stop.wait(0.25):
                if not emulator.running:
                    raise KprofError(f"the pump emulator stopped: {emulator.error or 'unknown reason'}")
        except KeyboardInterrupt:
            pass
    finally:
        emulator.stop()
        if linked:
            _remove_link(args.link, emulator.slave_path)
        signal.signal(signal.SIGTERM, previous)
    print(json.dumps(emulator.state, indent=2), flush=True)
    return 0
