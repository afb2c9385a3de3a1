"""How kprof's ptrace tracer prints a stopped tracee's call: strace's ``-f -yy -ttt -T -X raw`` text, the log
format the one parser reads (``profiler.parse.strace_log``). The argument kinds per syscall come from the kernel
data (``data/syscall-args.tsv``); what is behind an fd is read from /proc/PID/fd at the stop, strings and
sockaddrs from the tracee's memory (/proc/PID/mem). ``TraceeText`` holds the reading and printing half of the
tracer (``profiler.record.ptrace._Tracer``), which supervises the tracees.
"""
from __future__ import annotations

import os
import signal
import stat
import struct
import sys

from profiler.parse.strace_text import strip_dev
from profiler.kernel import arches, syscalls
from profiler.kernel.errnos import errno_name, restart_text

# ---- how to print arguments ------------------------------------------------------------------
# One letter per argument, by syscall name (every arch's spelling): f fd (N</path>; AT_FDCWD as
# -100</cwd>), s path string, v argv array, a sockaddr (its length is the next argument), r ioctl request
# (32-bit hex), _ raw hex. Arguments past the string are raw hex. Like strace's own per-syscall table,
# this covers what the footprint reads and the fds and paths a reader of the raw log looks for
# (kernel data: data/syscall-args.tsv).
_ARGS = syscalls.arg_kinds()

# What the return value is: an fd (printed with its path), an address (hex), or a plain number.
_R_NUM, _R_FD, _R_HEX, _R_PEER = 0, 1, 2, 3
_RESULT = {n: {"fd": _R_FD, "hex": _R_HEX, "peer": _R_PEER}[k] for n, k in syscalls.result_kinds().items()}
_F_DUPFD = (0, 1030)                        # fcntl commands that return a new fd
_CLONES = ("clone", "clone3")               # their flags are shown (a thread or a process)

# kernel-internal restart codes strace shows as "= ? ERESTARTSYS (…)"
_PRINTABLE = {c: chr(c) for c in range(0x20, 0x7F)}
_ESCAPES = {i: _PRINTABLE.get(i, f"\\x{i:02x}") for i in range(256)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", 9: "\\t", 10: "\\n", 13: "\\r", 11: "\\v", 12: "\\f"})
_HEXBYTES = [f"\\x{i:02x}" for i in range(256)]
# a path behind an fd, as strace -y prints it between < and >: those two escaped too (3 octal digits: a digit
# after them stays a digit), every byte past ASCII escaped, so the parser reads the bytes back as UTF-8
_PATH_ESCAPES = [_ESCAPES[i] for i in range(256)]
_PATH_ESCAPES[ord("<")], _PATH_ESCAPES[ord(">")] = "\\074", "\\076"
_DELETED = " (deleted)"
_STRSIZE = 32                               # strace's default -s: argv strings are cut there
_MAXARGS = 32

_AF_UNIX, _AF_INET, _AF_INET6, _AF_NETLINK = map(arches.family_number, ("AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"))


def _quote(b: bytes) -> str:
    """Bytes as a strace string literal (the parser's ``unquote`` reverses it)."""
    if b.isascii():
        s = b.decode("ascii")
        if s.isprintable() and '"' not in s and "\\" not in s:
            return '"' + s + '"'
    return '"' + "".join([_ESCAPES[c] for c in b]) + '"'


def _path_text(path: str) -> str:
    """A path as strace -y prints it behind an fd (the parser's ``strip_dev`` reverses it)."""
    if path.isascii() and path.isprintable() and not any(c in path for c in '<>"\\'):
        return path
    return "".join([_PATH_ESCAPES[c] for c in os.fsencode(path)])


def _signame(sig: int) -> str:
    """strace's names: SIGCHLD …, SIGRTMIN, SIGRT_1 … (counted from the kernel's 32, not glibc's SIGRTMIN)."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "SIGRTMIN" if sig == 32 else f"SIGRT_{sig - 32}" if 32 < sig <= 64 else str(sig)


def _errtext(code: int) -> str:
    """A failed call's result as strace prints it (its errno names: profiler/kernel/errnos.py)."""
    name = errno_name(code)
    restart = restart_text(code)
    if restart is not None:
        return f"? {name} ({restart})"
    if name.startswith("errno "):
        return f"-1 ({name})"
    return f"-1 {name} ({os.strerror(code)})"


def _nargs(arch: str, name: str) -> int:
    macro = syscalls.syscall_info(arch, name).macro or ""
    return int(macro[-1]) if macro[-1:].isdigit() else 6


def _peer(tid: int, proto: str, inode: str) -> str | None:
    """``TCP:[127.0.0.1:1337->127.0.0.1:45678]`` for an accepted socket, from the tracee's /proc/net;
    ``UNIX-STREAM:[inode,"/path"]`` for a unix one (strace names the peer's inode too; /proc/net/unix has not)."""
    if proto.startswith("UNIX"):
        try:
            with open(f"/proc/{tid}/net/unix") as f:
                next(f)
                for line in f:
                    fields = line.split(maxsplit=7)
                    if len(fields) > 6 and fields[6] == inode:
                        path = fields[7].strip() if len(fields) > 7 else ""
                        return f'{proto}:[{inode},"{path}"]' if path else None
        except (OSError, StopIteration):
            pass
        return None
    table = {"TCP": "tcp", "TCPv6": "tcp6", "UDP": "udp", "UDPv6": "udp6"}.get(proto)
    if table is None:
        return None
    try:
        with open(f"/proc/{tid}/net/{table}") as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) > 9 and fields[9] == inode:
                    return f"{proto}:[{_netaddr(fields[1])}->{_netaddr(fields[2])}]"
    except (OSError, StopIteration):
        pass
    return None


def _netaddr(text: str) -> str:
    import ipaddress
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    # /proc/net prints each 32-bit word in host order
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    return f"[{ip}]:{int(port, 16)}" if ip.version == 6 else f"{ip}:{int(port, 16)}"


class TraceeText:
    """Reads a stopped tracee's arguments, fds and memory and prints them as strace does (a mixin of the
    tracer: it uses the tracer's caches)."""

    def _args(self, tid: int, kinds: str, args: list[int], arch_code: int) -> str:
        out = []
        for i, k in enumerate(kinds):
            v = args[i]
            if k == "_":
                out.append(hex(v))
            elif k == "f":
                out.append(self._fd(tid, v))
            elif k == "s":
                out.append(self._path(tid, v))
            elif k == "r":
                out.append(hex(v & 0xFFFFFFFF))
            elif k == "a":
                out.append(self._sockaddr(tid, v, args[i + 1] if i + 1 < len(args) else 0))
            elif k == "v":
                out.append(self._argv(tid, v, 8 if arch_code & 0x80000000 else 4))
        return ", ".join(out)

    def _targets(self, tid: int, kinds: str | None, args: list[int]) -> list[str]:
        """What a call acts on, for an injection rule's path or fd class (as profiler.faults.call_target
        reads it from the log): the path behind its fd argument, else its path argument (as given, and
        made absolute against the cwd or dirfd)."""
        if not kinds:
            return []
        if kinds[0] == "f" and kinds[1:2] != "s":
            text = self._fd(tid, args[0])
            k = text.find("<")
            return [strip_dev(text[k + 1:text.rfind(">")])[0]] if k > 0 else []
        j = kinds.find("s", 0, 2)
        if j < 0:
            return []
        s = self._cstr(tid, args[j], 4096)
        if s is None:
            return []
        raw = os.fsdecode(s[0])
        out = [raw]
        if not raw.startswith("/"):
            base = self._fd(tid, args[0]) if j == 1 else self._fd(tid, 0xFFFFFF9C)
            k = base.find("<")
            if k >= 0:
                out.append(os.path.normpath(os.path.join(strip_dev(base[k + 1:base.rfind(">")])[0], raw)))
        return out

    def _clone_args(self, tid: int, name: str, args: list[int]) -> str:
        """clone's and clone3's flags as strace -X raw shows them (``flags=0x3d0f00``; clone3's are the first
        u64 of its struct clone_args), which tell a thread (CLONE_THREAD) from a process."""
        if name == "clone3":
            raw = self._read(tid, args[0], 8)
            return (f"{{flags={int.from_bytes(raw, sys.byteorder):#x}}}" if len(raw) == 8 else hex(args[0])) + \
                f", {args[1]}"
        return f"flags={args[0]:#x}, " + ", ".join(map(hex, args[1:5]))   # flags come first on every kprof arch

    def _fd(self, tid: int, v: int) -> str:
        fd = v & 0xFFFFFFFF
        if fd & 0x80000000:
            fd -= 0x100000000
        if fd >= 0:
            link = f"/proc/{tid}/fd/{fd}"
            try:
                return f"{fd}{self._shown(link, os.readlink(link))}"
            except OSError:
                return str(fd)
        if fd == -100:                               # AT_FDCWD: strace -yy shows the cwd
            try:
                return f"-100<{_path_text(os.readlink(f'/proc/{tid}/cwd'))}>"
            except OSError:
                pass
        return str(fd)

    @classmethod
    def _shown(cls, link: str, target: str) -> str:
        """``<label>`` as strace -yy prints it after an fd; a file unlinked while open is ``</path>(deleted)``."""
        if target.endswith(_DELETED) and target.startswith("/"):
            # the kernel's marker, unless a file of that very name is the one open (strace's test)
            try:
                st = os.stat(link)
                try:
                    named = os.lstat(target)
                    marker = (named.st_ino, named.st_dev) != (st.st_ino, st.st_dev)
                except OSError:
                    marker = True
                if marker:
                    return f"<{cls._label(link, target[:-len(_DELETED)])}>(deleted)"
            except OSError:
                pass
        return f"<{cls._label(link, target)}>"

    @staticmethod
    def _label(link: str, target: str) -> str:
        """What strace -yy prints for the file behind ``link`` (a /proc/PID/fd/N), given its readlink: a path
        escaped as strace escapes it; a device node's number after it, wherever the node is."""
        if target.startswith("/"):
            try:
                st = os.stat(link)
            except OSError:
                return _path_text(target)
            if stat.S_ISCHR(st.st_mode):
                return f"{_path_text(target)}<char {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}>"
            if stat.S_ISBLK(st.st_mode):
                return f"{_path_text(target)}<block {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}>"
            return _path_text(target)
        if target.startswith("socket:["):
            try:
                proto = os.getxattr(link, "system.sockprotoname").rstrip(b"\0").decode()
                return f"{proto}:{target[7:]}"
            except OSError:
                pass
        return target

    def _result(self, tid: int, kind: int, rval: int) -> str:
        if kind == _R_HEX:
            return hex(rval & 0xFFFFFFFFFFFFFFFF)
        link = f"/proc/{tid}/fd/{rval}"
        try:
            target = os.readlink(link)
        except OSError:
            return str(rval)
        if kind == _R_PEER and target.startswith("socket:["):
            label = self._label(link, target)
            if label != target:
                proto, _, rest = label.partition(":[")
                label = _peer(tid, proto, rest[:-1]) or label
            return f"{rval}<{label}>"
        return f"{rval}{self._shown(link, target)}"

    # ---- tracee memory -----------------------------------------------------------------------

    def _memfd(self, tid: int) -> int:
        fd = self.mem.get(tid)
        if fd is None:
            fd = self.mem[tid] = os.open(f"/proc/{tid}/mem", os.O_RDWR | os.O_CLOEXEC)
        return fd

    def _close_mem(self, tid: int) -> None:
        fd = self.mem.pop(tid, None)
        if fd is not None:
            os.close(fd)

    def _read(self, tid: int, addr: int, size: int) -> bytes:
        try:
            return os.pread(self._memfd(tid), size, addr)
        except (OSError, OverflowError):
            return b""

    def _write_mem(self, tid: int, addr: int, data: bytes) -> bool:
        try:
            return os.pwrite(self._memfd(tid), data, addr) == len(data)
        except (OSError, OverflowError):
            return False

    def _cstr(self, tid: int, addr: int, limit: int) -> tuple[bytes, bool] | None:
        """The NUL-terminated string at ``addr`` (at most ``limit`` bytes) and whether it was cut."""
        out = b""
        try:
            fd = self._memfd(tid)
            while len(out) < limit:
                chunk = os.pread(fd, min(4096 - (addr & 4095), limit + 1 - len(out)), addr)
                if not chunk:
                    break
                k = chunk.find(b"\0")
                if k >= 0:
                    return out + chunk[:k], False
                out += chunk
                addr += len(chunk)
        except (OSError, OverflowError):
            if not out:
                return None
        return out[:limit], True

    def _path(self, tid: int, addr: int) -> str:
        if not addr:
            return "NULL"
        s = self._cstr(tid, addr, 4096)
        if s is None:
            return hex(addr)
        return _quote(s[0]) + ("..." if s[1] else "")

    def _argv(self, tid: int, addr: int, word: int) -> str:
        if not addr:
            return "NULL"
        raw = self._read(tid, addr, word * (_MAXARGS + 1))
        out = []
        for i in range(0, len(raw) - word + 1, word):
            p = int.from_bytes(raw[i:i + word], "little")
            if not p:
                return "[" + ", ".join(out) + "]"
            if len(out) == _MAXARGS:
                break
            s = self._cstr(tid, p, _STRSIZE)
            out.append(hex(p) if s is None else _quote(s[0]) + ("..." if s[1] else ""))
        if not out and not raw:
            return hex(addr)
        return "[" + ", ".join(out) + ", ...]"

    def _sockaddr(self, tid: int, addr: int, length: int) -> str:
        """strace's raw (-X raw) form of a sockaddr, which ``strace_text.sockaddr`` reads."""
        if not addr:
            return "NULL"
        length = min(length & 0xFFFFFFFF, 128)
        data = self._read(tid, addr, length) if length >= 2 else b""
        if len(data) < 2:
            return hex(addr)
        family = int.from_bytes(data[:2], "little")
        if family == _AF_UNIX:
            path = data[2:]
            if not path:
                return "{sa_family=0x1}"
            if path[0] == 0:
                return "{sa_family=0x1, sun_path=@" + _quote(path[1:].rstrip(b"\0")) + "}"
            return "{sa_family=0x1, sun_path=" + _quote(path.split(b"\0", 1)[0]) + "}"
        if family == _AF_INET and len(data) >= 8:
            return ('{sa_family=0x2, sin_port="' + "".join(_HEXBYTES[c] for c in data[2:4])
                    + '", sin_addr="' + "".join(_HEXBYTES[c] for c in data[4:8]) + '"}')
        if family == _AF_INET6 and len(data) >= 24:
            scope = int.from_bytes(data[24:28], "little") if len(data) >= 28 else 0
            return ('{sa_family=0xa, sin6_port="' + "".join(_HEXBYTES[c] for c in data[2:4])
                    + '", sin6_flowinfo="' + "".join(_HEXBYTES[c] for c in data[4:8])
                    + '", sin6_addr="' + "".join(_HEXBYTES[c] for c in data[8:24])
                    + f'", sin6_scope_id={scope}}}')
        if family == _AF_NETLINK and len(data) >= 12:
            pid, groups = struct.unpack_from("<II", data, 4)
            return f"{{sa_family=0x10, nl_pid={pid}, nl_groups={groups:08x}}}"
        return f'{{sa_family={family:#x}, sa_data="' + "".join(_HEXBYTES[c] for c in data[2:]) + '"}'
