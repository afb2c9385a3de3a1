"""The Explorer HAT's SPI radio path, served at the syscall boundary (``../shared/reference/spi-radio.md``).

No development or CI kernel has spidev, so the rig's radio cannot be faked inside the kernel. kprof's
ptrace tracer (``profiler.record.ptrace``) skips each ``ioctl`` on the placeholder spidev node and hands
it to :class:`SpiDevice`, which answers as ``drivers/spi/spidev.c`` would (§3.3, §8.3) and passes every
byte to a :class:`SpiFirmware`: the ``spi1_alt2`` build of subg_rfspy 1.0 (§4, §7.1), one per traced
process, in front of the same :class:`~profiler.pump.emulator.PumpEmulator` core that serves the UART
path (one emulator, two framings).

* **wire vs logical** (§4.1): the CC1110's USART is LSB-first, so every byte on the wire is the
  bit-reverse of the protocol byte;
* **a frame** (§4.2): master ``99``, n; slave returns c (the length of a *complete* queued response,
  latched at the ``99``), then max(n, c) data transfers; a command is run when its n-th byte arrives;
* **replies** come from :meth:`PumpEmulator.handle_request` with its latencies: each step of the reply
  is queued once its delay has passed (measured on the tracer's clock at each transfer), so the number
  of empty polls follows the emulated latency (§6); a complete command arriving while the radio listens
  aborts the listen with ``BB 00`` (PP §2.1); polls (n = 0) never do;
* **reset** (§2.2 g, §4.5): the reset pin's value going 1 → 0 restarts the firmware: frame state,
  queue and radio registers are cleared.

Board constants (§1.1, §9): :data:`BOARDS`.
"""
from __future__ import annotations

import errno as _errno
import os
import struct
import time
from dataclasses import dataclass

from profiler.pump import protocol as P

# ---- boards (§1.1, §9) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Board:
    radio: str             # the scenario's radio: value
    device: str            # the spidev node ecc1's cc111x build opens
    reset_pin: int         # sysfs GPIO of the CC1110's RESET_N (active low)
    cs_pin: int | None     # sysfs GPIO used as chip-select (Edison), None when spidev drives CE0
    title: str

    @property
    def pins(self) -> tuple[int, ...]:
        return tuple(p for p in (self.cs_pin, self.reset_pin) if p is not None)


BOARDS = {
    "spi": Board("spi", "/dev/spidev0.0", 4, None, "Raspberry Pi + Explorer HAT (SPI0 CE0, reset GPIO 4)"),
    "edison": Board("edison", "/dev/spidev5.1", 14, 110,
                    "Intel Edison + Explorer Board (SPI5.1, chip-select GPIO 110, reset GPIO 14)"),
}
RADIOS = ("uart", *BOARDS)
GPIO_ROOT = "/sys/class/gpio"

# ---- framing (§4) -------------------------------------------------------------------------------

FRAME = 0x99          # frame marker, and the firmware's idle filler
FILLER = 0x99
MAX_QUEUE = 220       # the firmware's transmit buffer (§4.2): older bytes are dropped on overflow

REVERSE = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def reverse(data: bytes) -> bytes:
    """Wire ↔ logical (§4.1): every byte bit-reversed."""
    return data.translate(REVERSE)


class SpiFirmware:
    """subg_rfspy 1.0 ``spi1_alt2`` as one traced process sees it: per-transfer rule of §7.1."""

    def __init__(self, emulator, clock=time.monotonic):
        self.emu = emulator
        self.clock = clock
        self.transfers = 0
        self.frames = {"command": 0, "data": 0, "empty": 0}
        self.resets = 0
        self.latency = 0.0           # seconds of emulated reply latency the client had to poll through
        self._reset_state()

    def _reset_state(self) -> None:
        self.pos = "wait"            # wait | size | data
        self.n = self.c = self.k = 0
        self.cmd = bytearray()
        self.frame_out = b""         # the c bytes latched for this frame
        self.ready = bytearray()     # complete responses, waiting to be polled
        self.pending = []            # [(due, bytes)]: the rest of the current reply, not yet queued
        self.stray = []              # [(due, bytes)]: a late reply's rest, after a newer command took over
        self.current = None          # (request, Reply, sent, rx) of the command whose reply is pending
        self.listening = False

    # ---- the radio's side -----------------------------------------------------------------------

    def reset(self) -> None:
        """RESET_N pulsed (§4.5): everything the CC1110 held is lost, registers back to power-up values."""
        self._finish(interrupted=False)
        self._reset_state()
        self.emu.registers = dict(P.REGISTER_DEFAULTS)
        self.resets += 1

    def transfer(self, wire: bytes) -> bytes:
        """One SPI transfer of ``len(wire)`` bytes (the client makes them 1 byte long): what MISO returns."""
        return reverse(bytes(self.byte(b) for b in reverse(wire)))

    def byte(self, b: int) -> int:
        """One logical byte from the master → the logical byte shifted back (§7.1)."""
        self.transfers += 1
        if self.pos == "wait":
            if b != FRAME:
                return FILLER
            self._release()
            self.c = len(self.ready) if self.ready.endswith(b"\0") else 0
            self.frame_out = bytes(self.ready[:self.c])
            del self.ready[:self.c]
            self.pos = "size"
            return FILLER
        if self.pos == "size":
            self.n, self.k = b, 0
            self.cmd.clear()
            kind = "command" if self.n else ("data" if self.c else "empty")
            self.frames[kind] += 1
            if self.n == 0 and self.c == 0:
                self.pos = "wait"
            else:
                self.pos = "data"
            return self.c
        self.k += 1
        out = self.frame_out[self.k - 1] if self.k <= self.c else FILLER
        if self.k <= self.n:
            self.cmd.append(b)
            if self.k == self.n:
                self._command(bytes(self.cmd))
        if self.k >= max(self.n, self.c):
            self.pos = "wait"
        return out

    def _queue(self, data: bytes) -> None:
        self.ready += data
        if len(self.ready) > MAX_QUEUE:
            del self.ready[:len(self.ready) - MAX_QUEUE]

    def _release(self) -> None:
        """Queue the steps of the pending reply whose time has come (the emulator's latencies)."""
        now = self.clock()
        while self.stray and self.stray[0][0] <= now:
            self._queue(self.stray.pop(0)[1])
        while self.pending and self.pending[0][0] <= now:
            _, data = self.pending.pop(0)
            self._queue(data)
            self.current[2].append(data)
        if self.current is not None and not self.pending and (self.current[2] or not self.listening):
            self._finish(interrupted=False)

    def _finish(self, interrupted: bool) -> None:
        if self.current is not None:
            req, reply, sent, rx = self.current
            self.current = None
            self.listening = False
            self.pending = []
            self.emu.record(req, reply, sent, interrupted, rx)

    def _command(self, req: bytes) -> None:
        """A complete command (n bytes) arrived: interrupt a listen, then run it (PP §2.1, §2.2)."""
        now = self.clock()
        self._release()
        if self.current is not None:
            if self.listening:       # the radio was listening: it answers BB 00 and runs the new command
                abort = bytes([P.ERR_INTERRUPTED, 0])
                self._queue(abort)
                self.current[2].append(abort)
                self._finish(interrupted=True)
            else:                    # a reply still on its way (late, interrupted): it arrives on its own
                self.stray += self.pending
                self.pending = []
                self._finish(interrupted=False)
        self.emu.requests += 1
        reply = self.emu.handle_request(req)
        due = now
        steps = []
        for delay, data in reply.steps:
            due += delay
            steps.append((due, data))
        self.current = (req, reply, [], now)
        if steps:
            self.latency += steps[-1][0] - now
        self.pending = steps
        self.listening = reply.listening
        if not steps and (reply.fault is not None or not reply.listening):
            self._finish(interrupted=False)    # nothing will ever be sent (busy radio, LED, reset …)

    def finish(self) -> None:
        """The process ended: record what its last command got."""
        self._finish(interrupted=False)


# ---- spidev (drivers/spi/spidev.c) as seen from user space: §3.3, §8.3 ------------------------------

SPI_IOC_MAGIC = ord("k")
IOC_WRITE, IOC_READ = 1, 2
TRANSFER = struct.Struct("<QQIIHBBBBBB")   # struct spi_ioc_transfer, 32 bytes (§3.2)
BUFSIZ = 4096                              # spidev's module parameter, default
INT_MAX = 2**31 - 1
# the device settings the RD/WR requests get and set (nr → (name, size))
SETTINGS = {1: ("mode", 1), 2: ("lsb_first", 1), 3: ("bits_per_word", 1), 4: ("max_speed_hz", 4), 5: ("mode32", 4)}


def ioc(direction: int, nr: int, size: int) -> int:
    """_IOC(dir, 'k', nr, size) in the asm-generic layout (x86_64, i386, arm, arm64)."""
    return (direction << 30) | (size << 16) | (SPI_IOC_MAGIC << 8) | nr


def spi_ioc_message(n: int) -> int:
    return ioc(IOC_WRITE, 0, 32 * n)


class SpiDevice:
    """One placeholder spidev node: the ioctls the kernel's spidev would answer, per traced process.

    ``memory`` is what :meth:`ioctl` reads and writes the tracee through: ``read(addr, size) -> bytes``
    (short or empty on a bad address) and ``write(addr, data) -> bool``.
    """

    def __init__(self, board: Board, emulator, clock=time.monotonic):
        self.board = board
        self.emu = emulator
        self.clock = clock
        self.firmware: dict[int, SpiFirmware] = {}   # tgid → radio state (per process, never per thread: §8.4)
        self.settings = {"mode": 0, "lsb_first": 0, "bits_per_word": 8, "max_speed_hz": 500000, "mode32": 0}
        self.served = 0
        self.gpio_writes: list[tuple[str, str]] = []
        self._ended: list[SpiFirmware] = []
        self._pin_values: dict[tuple[int, int], str] = {}

    def radio(self, tgid: int) -> SpiFirmware:
        fw = self.firmware.get(tgid)
        if fw is None:
            fw = self.firmware[tgid] = SpiFirmware(self.emu, self.clock)
        return fw

    def ioctl(self, tgid: int, request: int, arg: int, memory) -> int:
        """The result spidev_ioctl() would return (negative errno on failure), with rx_buf written."""
        self.served += 1
        request &= 0xFFFFFFFF
        direction, size = request >> 30, (request >> 16) & 0x3FFF
        if (request >> 8) & 0xFF != SPI_IOC_MAGIC:
            return -_errno.ENOTTY
        nr = request & 0xFF
        if nr in SETTINGS and size == SETTINGS[nr][1] and direction in (IOC_READ, IOC_WRITE):
            name, width = SETTINGS[nr]
            if direction == IOC_READ:
                ok = memory.write(arg, self.settings[name].to_bytes(width, "little"))
                return 0 if ok else -_errno.EFAULT
            raw = memory.read(arg, width)
            if len(raw) < width:
                return -_errno.EFAULT
            self.settings[name] = int.from_bytes(raw, "little")
            return 0
        if nr != 0 or direction != IOC_WRITE:
            return -_errno.ENOTTY
        if size % TRANSFER.size:
            return -_errno.EINVAL
        count = size // TRANSFER.size
        if count == 0:
            return 0
        raw = memory.read(arg, size)
        if len(raw) < size:
            return -_errno.EFAULT
        xfers = [TRANSFER.unpack_from(raw, i * TRANSFER.size) for i in range(count)]
        total = tx_total = rx_total = 0
        tx_data = []
        for tx_buf, rx_buf, length, *_ in xfers:
            total += length
            if total > INT_MAX or length > INT_MAX:
                return -_errno.EMSGSIZE
            if rx_buf:
                rx_total += length
                if rx_total > BUFSIZ:
                    return -_errno.EMSGSIZE
            if tx_buf:
                tx_total += length
                if tx_total > BUFSIZ:
                    return -_errno.EMSGSIZE
                data = memory.read(tx_buf, length) if length else b""
                if len(data) < length:
                    return -_errno.EFAULT
            else:
                data = bytes(length)     # no tx_buf: the controller shifts out zeros
            tx_data.append(data)
        fw = self.radio(tgid)
        for (tx_buf, rx_buf, length, *_), data in zip(xfers, tx_data):
            rx = fw.transfer(data)
            if rx_buf and length and not memory.write(rx_buf, rx):
                return -_errno.EFAULT
        return total

    def gpio_write(self, tgid: int, path: str, data: bytes) -> None:
        """A write to the fake sysfs GPIO tree (§2.2, §8.2): a new export appears; the reset pulse resets."""
        value = data.decode("ascii", "replace")
        self.gpio_writes.append((path, value))
        rel = os.path.relpath(path, GPIO_ROOT)
        if rel == "export":
            if value.strip().isdigit():
                make_pin(int(value.strip()))
            return
        parts = rel.split("/")
        if len(parts) == 2 and parts[1] == "value" and parts[0] == f"gpio{self.board.reset_pin}":
            before = self._pin_values.get((tgid, self.board.reset_pin))
            self._pin_values[(tgid, self.board.reset_pin)] = value
            if before == "1" and value == "0":
                self.radio(tgid).reset()

    def process_ended(self, tgid: int) -> None:
        fw = self.firmware.pop(tgid, None)
        if fw is not None:
            fw.finish()
            self._ended.append(fw)
        for key in [k for k in self._pin_values if k[0] == tgid]:
            del self._pin_values[key]

    def report(self) -> dict:
        """What was served, made in the tracer process for kprof's (JSON-ready): the device, the radio
        frames, the GPIO writes seen, and the emulator's exchanges and state after the run."""
        fws = list(self.firmware.values()) + self._ended
        return {"radio": self.board.radio, "device": self.board.device, "board": self.board.title,
                "served_ioctls": self.served, "transfers": sum(f.transfers for f in fws),
                "frames": {k: sum(f.frames[k] for f in fws) for k in ("command", "data", "empty")},
                "resets": sum(f.resets for f in fws), "processes": len(fws),
                "latency_s": round(sum(f.latency for f in fws), 4),
                "gpio_writes": [f"{p} <- {v}" for p, v in self.gpio_writes[:200]],
                "exchanges": list(self.emu.exchanges), "state": self.emu.state}


def make_pin(pin: int, root: str = GPIO_ROOT) -> None:
    """An exported pin in the fake tree: gpioN/ with active_low, direction, value and edge (§8.2)."""
    d = os.path.join(root, f"gpio{pin}")
    os.makedirs(d, exist_ok=True)
    for name, content in (("active_low", "0\n"), ("direction", "in\n"), ("value", "0\n"), ("edge", "none\n")):
        p = os.path.join(d, name)
        if not os.path.exists(p):
            with open(p, "w") as f:
                f.write(content)
