"""kprof's emulated Medtronic pump behind a subg_rfspy (CC111x) UART radio, and its mdt-compatible client.

* ``protocol``: 4b/6b, CRC-8/16, pump packets, subg_rfspy framing, history pages (stdlib only);
* ``emulator``: the radio + pump served on a pseudo-terminal (``PumpEmulator``, ``PumpConfig``);
* ``client``: ``mdt``/``pumphistory``/``listen`` with the device-level syscalls of ecc1's UART build
  (stdlib only; launched by ``bin/mdt`` etc. under the system ``python3``).

Nothing is imported here, so that the client's start-up stays small.
"""
