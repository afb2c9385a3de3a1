"""SIGTERM and SIGHUP are handled like Ctrl-C (a cancelled CI job, `timeout`, a closed terminal).

The CLI makes them raise ``Interrupted`` (a KeyboardInterrupt, so every clean-up written for Ctrl-C runs
for them too); while a command is traced the recorder only notes them (``watch``), kills the traced tree
and keeps the partial trace. Once one has arrived, later ones are only noted (``defer``): a second Ctrl-C
must not lose meta.json or the reports being written. kprof exits with 128 + the first signal's number.
"""
from __future__ import annotations

import signal

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
received: list[int] = []      # every handled signal this process got, in order


class Interrupted(KeyboardInterrupt):
    """A SIGINT, SIGTERM or SIGHUP arrived; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum


def name(signum: int) -> str:
    return {signal.SIGINT: "Ctrl-C"}.get(signum, signal.Signals(signum).name)


def exit_code(exc: BaseException) -> int:
    return 128 + getattr(exc, "signum", signal.SIGINT)


def _raise(signum, frame):
    received.append(signum)
    defer()  # only the first one raises: a second must not cut the clean-up short
    raise Interrupted(signum)


def _note(signum, frame):
    received.append(signum)


def install() -> None:
    """INT, TERM and HUP raise ``Interrupted``. One that was ignored when kprof started (nohup) stays ignored."""
    for s in HANDLED:
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _raise)


def watch(flags: list) -> dict:
    """Handled signals only append their number to ``flags`` (and ``received``); returns the old handlers."""
    def note(signum, frame):
        received.append(signum)
        flags.append(signum)
    previous = {}
    for s in HANDLED:
        old = signal.getsignal(s)
        if old is not signal.SIG_IGN:
            previous[s] = signal.signal(s, note)
    return previous


def restore(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)


def defer() -> None:
    """From now on handled signals are only noted: kprof is already stopping, and finishes its files."""
    for s in HANDLED:
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _note)


def reset_in_child() -> None:
    """In a forked process that is not kprof (a tracer): the default actions again."""
    for s in HANDLED:
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, signal.SIG_DFL)


def stop_code(outcomes) -> int | None:
    """128 + the signal that stopped these runs (or reached kprof meanwhile); None when none came."""
    sig = next((o.trace.signal for o in outcomes if o.trace.interrupted and o.trace.signal), None)
    sig = sig or (received[0] if received else None)
    return 128 + sig if sig else None


def pool_worker() -> None:
    """Initializer of a worker process kprof starts and stops itself (multiprocessing): Ctrl-C and SIGHUP
    are kprof's to handle, and SIGTERM (how the pool ends its workers) ends it quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
