"""kprof's emulated Medtronic pump behind a subg_rfspy (CC111x) UART radio.

* ``protocol``: 4b/6b, CRC-8/16, pump packets, subg_rfspy framing, history pages (stdlib only);
* ``emulator``: the radio + pump served on a pseudo-terminal (``PumpEmulator``, ``PumpConfig``).

The pump tools that talk to it (``mdt``, ``pumphistory``, ``listen``, ``mmtune``) are kprof's Go toolset in
``go/`` (built by ./setup.sh into build/rig-tools/<variant>/), or any other toolset a scenario names.
"""
