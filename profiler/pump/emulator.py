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
* **history records** and **faults** (``PumpConfig.history``, ``PumpConfig.fault``): see ``config``'s
  docstring.

The module is the radio and its pty server; the pump's settings and faults are in ``config``, the pump
itself in ``model`` (import their names from there), and ``uart_process`` serves a
``PumpEmulator`` in a process of its own.
"""
from __future__ import annotations

import datetime as _dt
import gc
import math
import os
import select
import sys
import threading
import time
import tty
from dataclasses import dataclass, field

from profiler.pump import protocol as P
from profiler.pump.config import FAULT_MODES, PumpConfig, parse_fault, validate_config
from profiler.pump.model import _Pump, pump_zone

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


def _air(n_encoded: int) -> float:
    return AIR_PREAMBLE_S + n_encoded * AIR_S_PER_BYTE


# --- the radio firmware and the pty --------------------------------------------------------------------

MAX_EXCHANGES = 20000


@dataclass
class Reply:
    steps: list = field(default_factory=list)   # [(delay_s, bytes)]
    listening: bool = False                      # a byte arriving before the reply interrupts it
    fault: str | None = None
    command: str | None = None
    note: str | None = None


RADIO_RT_PRIORITY = 1      # SCHED_FIFO's lowest: above every normal task (most kernel threads included)


def radio_scheduling() -> str:
    """Schedule the calling thread (the one serving the radio) as a radio would be, and say how.

    A rig's radio is a chip of its own: it answers whatever the CPUs do. Here the serving thread shares them
    with the command, strace, kprof (other scenarios with -j) and, in a test suite, much else, and the client
    gives the radio 50 ms (GetVersion, register updates, §1.6) or its listen time + 5 ms. On a 2-core machine
    running the parallel suite (kernel preemption: none) a probe sleeping 1 ms at nice -10 overslept 50 ms
    36 times in 5 minutes (up to 124 ms), and clients failed with "cannot connect to CC111x radio"; the same
    probe as a real-time thread (SCHED_FIFO, priority 1) overslept 50 ms once. So the thread asks for that
    (root or CAP_SYS_NICE; a child it started would not inherit it), else for nice -10."""
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(RADIO_RT_PRIORITY))
        return f"real-time (SCHED_FIFO, priority {RADIO_RT_PRIORITY})"
    except OSError as e:
        refused = e.strerror or str(e)
    try:
        os.setpriority(os.PRIO_PROCESS, tid, -10)
        return f"normal, nice -10 ({refused} for a real-time priority)"
    except OSError:
        return f"normal ({refused} for a real-time priority)"


def normal_scheduling() -> None:
    """Back to the normal class, for work that is not the radio's (a report, a shutdown)."""
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_OTHER, os.sched_param(0))
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
        self.scheduling: str | None = None   # how the serving thread is scheduled (radio_scheduling)
        self._master = self._slave = self._wake_r = self._wake_w = None
        self._thread = None
        self._stopping = False
        self._t0 = time.monotonic()
        self.started_at = self._t0     # time.monotonic() that exchange times ("rx", "t") count from

    # lifecycle
    def open_pty(self) -> tuple[int, int]:
        """A new pty pair for the client, (master, slave), the master non-blocking; sets ``slave_path``."""
        master, slave = os.openpty()
        try:
            tty.setraw(slave)            # no echo, no line discipline until the client sets its own termios
            os.set_blocking(master, False)
            self.slave_path = os.ttyname(slave)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        return master, slave

    def start(self) -> "PumpEmulator":
        if self._thread is not None:
            return self
        master, slave = self.open_pty()
        try:
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

    def serve(self, master: int, slave: int, stop_fd: int) -> None:
        """Serve a pty pair from ``open_pty`` (possibly another process's) in the calling thread, until
        ``stop_fd`` becomes readable or hangs up, or serving fails (``error``).  ``uart_process`` uses it to
        serve in a process of its own; ``start()`` serves in a thread instead."""
        self._master, self._slave, self._wake_r = master, slave, stop_fd
        self.slave_path = os.ttyname(slave)
        self._serve()

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
        if self.scheduling is None:        # uart_process has scheduled this thread already, to say so at once
            self.scheduling = radio_scheduling()
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
