"""kprof's emulated Medtronic pump behind a subg_rfspy (CC111x) UART radio.

* ``protocol``: 4b/6b, CRC-8/16, pump packets, subg_rfspy framing, history pages (stdlib only);
* ``config``: the pump's settings from a scenario (``PumpConfig``, ``config_from_mapping``) and faults;
* ``model``: the pump itself, its state and its answers to pump packets (no I/O);
* ``emulator``: the radio + pump served on a pseudo-terminal (``PumpEmulator``; ``PumpConfig`` too);
* ``spi``: the same radio behind an SPI board (``SpiDevice``).
* ``uart_process``: a ``PumpEmulator`` served by a process of its own (``kprof run``, ``kprof workload``).

The pump tools that talk to it (``mdt``, ``pumphistory``, ``listen``, ``mmtune``) are kprof's Go toolset in
``go/`` (built by ./setup.sh into build/rig-tools/<variant>/), or any other toolset a scenario names.
"""
