"""The scenario's own namespaces: a private mount namespace (its own /tmp; /dev for emulated devices)
and, for ``network: none``, a fresh network namespace with loopback only.

The work happens in a forked child that calls unshare(2) on itself: as root
the namespaces alone; otherwise with CLONE_NEWUSER too, the caller mapped to
root inside (unprivileged user namespaces). There is no fallback to the host
network: a scenario that asked for ``network: none`` fails with a clear error
when neither works.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import pickle
import signal
import socket
import struct
import threading

from profiler.errors import KprofError
from profiler.libc import CLONE_NEWNS, libc

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def _unshare(flags: int) -> None:
    if libc().unshare(flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _enter_namespaces(net: bool, mount: bool) -> str:
    """unshare into new namespaces; returns how ("root" or "user namespace")."""
    flags = (CLONE_NEWNET if net else 0) | (CLONE_NEWNS if mount else 0)
    if os.geteuid() == 0:
        _unshare(flags)
        how = "root"
    else:
        _map_to_root(flags)
        how = "user namespace"
    if mount:
        from profiler.environment.devfs import make_mounts_private
        make_mounts_private()
    return how


def _map_to_root(flags: int) -> None:
    """unshare with a new user namespace too, the caller mapped to root inside it."""
    uid, gid = os.geteuid(), os.getegid()
    _unshare(CLONE_NEWUSER | flags)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def loopback_up() -> None:
    """``ip link set lo up``, without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _isolation_message(reason: str, net: bool) -> str:
    what = ("a network namespace" if net else "a mount namespace") + f" ({reason}). "
    why = ("The scenario asks for network: none (loopback only) and kprof never falls back to the host network. "
           if net else "Every scenario runs with a private /tmp and /dev (emulated devices in it). ")
    return ("cannot create " + what + why + "Run kprof as root, or enable "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 and "
            "user.max_user_namespaces>0; on Ubuntu also kernel.apparmor_restrict_unprivileged_userns=0), "
            + ("or run the scenario with --network host if touching the host network is acceptable." if net else ""))


def _forward(pid: int, exc: BaseException) -> None:
    from profiler import signals
    signals.defer()  # kprof is stopping: later signals are only noted
    try:
        os.kill(pid, getattr(exc, "signum", signal.SIGINT))
    except ProcessLookupError:
        pass


class _Meanwhile(threading.Thread):
    """A callable run in a thread of the parent while the isolated child works; its exception is kept."""

    def __init__(self, fn):
        super().__init__(name="kprof-meanwhile", daemon=True)
        self.fn, self.error = fn, None
        self.start()

    def run(self) -> None:
        try:
            self.fn()
        except BaseException as e:  # noqa: BLE001 - raised in the caller's thread by run_isolated
            self.error = e


def run_isolated(func, *args, net: bool = True, mount: bool = False, meanwhile=None):
    """Call ``func(*args)`` in a forked child inside fresh namespaces; return (its result, how).

    Exceptions in the child (KprofError included) are carried back and raised
    here; Ctrl-C, SIGTERM and SIGHUP sent to kprof alone are passed on to the child,
    whose own handling (kill the traced tree, keep the partial trace) decides the result.

    ``meanwhile`` (a callable) runs in the parent while the child works, in a thread started after the
    fork (the child never has it): work the parent needs anyway overlaps the recording instead of
    delaying it. The thread is joined before this returns; its exception is raised after the child's.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        code = 0
        try:
            try:
                how = _enter_namespaces(net, mount)
                if net:
                    loopback_up()
            except OSError as e:
                reason = e.strerror or errno.errorcode.get(e.errno, "?")
                raise KprofError(_isolation_message(reason, net)) from None
            result = ("ok", func(*args), how)
        except KprofError as e:
            result = ("error", str(e), None)
        except KeyboardInterrupt as e:  # interrupted outside the recording (e.g. a prepare step)
            result = ("interrupted", getattr(e, "signum", signal.SIGINT), None)
        except BaseException as e:  # noqa: BLE001 - carried to the parent, which raises it
            import traceback
            result = ("crash", "".join(traceback.format_exception(e)), None)
        try:
            with os.fdopen(write_fd, "wb") as w:
                pickle.dump(result, w)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write_fd)
    data = b""
    side = None
    with os.fdopen(read_fd, "rb") as r:
        if meanwhile is not None:
            try:
                side = _Meanwhile(meanwhile)
            except KeyboardInterrupt as e:
                _forward(pid, e)
        while True:
            try:
                chunk = r.read()
            except KeyboardInterrupt as e:
                # the child does the cleaning up (kill the traced tree, keep the trace) and still reports
                _forward(pid, e)
                continue
            if not chunk:
                break
            data += chunk
    while True:
        try:
            os.waitpid(pid, 0)
            break
        except KeyboardInterrupt:
            continue
        except ChildProcessError:
            break
    if side is not None:
        side.join()
    if not data:
        raise KprofError("the isolated run ended without a result (killed?)")
    kind, value, how = pickle.loads(data)
    if kind == "error":
        raise KprofError(value)
    if kind == "interrupted":
        from profiler.signals import Interrupted
        raise Interrupted(value)
    if kind == "crash":
        raise RuntimeError("isolated run failed:\n" + value)
    if side is not None and side.error is not None:
        raise side.error
    return value, how
