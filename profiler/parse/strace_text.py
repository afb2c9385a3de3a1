"""Reading values out of strace's argument text (strings, socket addresses, numbers, what is behind an fd,
clone's flags): what ``StraceLogParser`` types an event's fields with."""
from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator

from profiler.events import Fd
from profiler.kernel import arches

# strace's own messages (not the traced program's) start with its argv[0]: "strace: " or "/usr/bin/strace: "
_STRACE_MESSAGE = re.compile(r"(\S*/)?strace: ")


def is_strace_message(line: str) -> bool:
    return _STRACE_MESSAGE.match(line) is not None


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)")
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", '"': '"', "\\": "\\"}


def unquote(text: str) -> str | None:
    """A strace string literal (``"a\\nb"...``) → its text; None when ``text`` is not a string."""
    text = text.strip()
    if not text.startswith('"'):
        return None
    end = len(text)
    if text.endswith('"...'):
        end -= 3
    body = text[1:end - 1] if end > 1 and text[end - 1] == '"' else text[1:end]

    def sub(m: re.Match) -> str:
        e = m.group(1)
        if e[0] == "x":
            return chr(int(e[1:], 16))
        if e[0] in "01234567":
            return chr(int(e, 8))
        return _SIMPLE.get(e, e)

    return _ESCAPE.sub(sub, body) if "\\" in body else body


def unquote_path(text: str) -> str | None:
    """A strace string literal that names a file (a path, a socket's path) → its text. strace escapes every byte
    past ASCII (``"\\303\\274"`` for ü): the bytes are read as UTF-8, and a byte that is not UTF-8 is kept as
    the text ``\\xNN``."""
    s = unquote(text)
    if s is None or s.isascii():
        return s
    try:
        return s.encode("latin-1").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:          # already text (not escaped by strace)
        return s


def parse_int(text: str) -> int | None:
    """``0x5401`` / ``21505`` / ``-1`` → int; anything else (a name, a pointer in brackets) → None."""
    text = text.strip()
    try:
        return int(text, 0)
    except ValueError:
        return None


_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,}]+)')


def sockaddr(text: str) -> str | None:
    """strace's sockaddr ``{sa_family=…, …}`` (raw ``-X raw`` form or decoded form) → ``tcp-ish`` address text.

    Returns ``unix:/path``, ``inet:127.0.0.1:80``, ``inet6:[::1]:80``, ``netlink``, or ``family:N``.
    """
    if not text.startswith("{"):
        return None
    fields = dict(_FIELD.findall(text))
    family = fields.get("sa_family", "")
    try:                                  # -X raw gives the number, decoded output the AF_ name
        fam = arches.family_name(int(family, 0)) or family
    except ValueError:
        fam = family
    if fam in ("AF_UNIX", "AF_LOCAL"):
        path = unquote_path(fields.get("sun_path", '""'))
        if path is None and "sun_path=@" in text:
            path = "@" + text.split("sun_path=@", 1)[1].split('"')[1]
        return f"unix:{path or '(unnamed)'}"
    if fam == "AF_INET":
        return f"inet:{_addr(fields.get('sin_addr', ''), 4)}:{_port(fields.get('sin_port', ''))}"
    if fam == "AF_INET6":
        # decoded (not -X raw) output names the address as "inet_pton(AF_INET6, "::1", &sin6_addr)", no field
        return f"inet6:[{_addr(fields.get('sin6_addr') or text, 6)}]:{_port(fields.get('sin6_port', ''))}"
    if fam == "AF_NETLINK":
        return "netlink"
    if not family:
        return None
    number = arches.family_number(fam)     # the number whether strace named it or not (-X raw), as bpf writes it
    return f"family:{number:#x}" if number is not None else f"family:{family}"


def _port(text: str) -> str:
    raw = unquote(text)
    if raw is not None and len(raw) == 2:
        return str(ord(raw[0]) << 8 | ord(raw[1]))
    m = re.match(r"htons\((\d+)\)", text)
    return m.group(1) if m else text


def _addr(text: str, version: int) -> str:
    raw = unquote(text)
    if raw is not None and len(raw) in (4, 16):
        return str(ipaddress.ip_address(bytes(ord(c) for c in raw)))
    m = re.match(r'inet_addr\("([^"]*)"\)', text)
    if m:
        return m.group(1)
    m = re.search(r'inet_pton\(AF_INET6, "([^"]*)"', text)
    return m.group(1) if m else (raw or text)


def strip_dev(path: str) -> tuple[str, str | None]:
    """``/dev/pts/0<char 136:0>`` → (``/dev/pts/0``, ``char 136:0``); strace's escapes in the path undone
    (``-y`` prints ``<``, ``>``, ``"`` and control characters in a path as ``\\74``, ``\\76``, ``\\"``, ``\\n``)."""
    dev = None
    if path.endswith(">"):
        k = path.rfind("<")
        if k > 0 and path[k + 1:k + 6] in ("char ", "block"):
            path, dev = path[:k], path[k + 1:-1]
    if "\\" in path:
        path = unquote_path('"' + path + '"')
    return path, dev


_DEV = re.compile(r"(char|block) (\d+):(\d+)")


def fd_of(text: str) -> Fd:
    """What strace -yy shows behind an fd (``/dev/pts/0<char 136:0>``, ``TCP:[1.2.3.4:5->6.7.8.9:10]``) typed."""
    path, dev = strip_dev(text)
    m = _DEV.fullmatch(dev) if dev else None
    if m is None:
        return Fd.of(path, shown=text)
    return Fd.of(path, m.group(1), int(m.group(2)), int(m.group(3)), shown=text)


def fd_dir(arg: str) -> str | None:
    """The directory behind a dirfd argument (``5</tmp/x>``; AT_FDCWD ``-100</cwd>`` too)."""
    k = arg.find("<")
    if k > 0 and arg.endswith(">"):
        return strip_dev(arg[k + 1:-1])[0]
    return None


# an accepted connection, as strace -yy shows its fd: UNIX-STREAM:[inode->peer,"/path"], TCP:[a:p->b:q]
_ACCEPTED_UNIX = re.compile(r'^UNIX(?:-[A-Z]+)?:\[\d+(?:->\d+)?(?:,"(.*)")?\]$')
_ACCEPTED_INET = re.compile(r"^(TCP|UDP|TCPv6|UDPv6):\[(.+?)->(.+)\]$")


def accepted_address(fd_text: str) -> str:
    """The key of a connection accept() returned: the listening side's address, without the run-specific
    socket inodes or the peer's ephemeral port (UNIX-STREAM:[1->2,"/tmp/s"] → unix:/tmp/s,
    TCP:[127.0.0.1:1337->127.0.0.1:50432] → inet:127.0.0.1:1337)."""
    m = _ACCEPTED_UNIX.match(fd_text)
    if m:
        return f"unix:{m.group(1) or '(unnamed)'}"
    m = _ACCEPTED_INET.match(fd_text)
    if m:
        return f"{'inet6' if m.group(1).endswith('v6') else 'inet'}:{m.group(2)}"
    return fd_text


_CLONE_FLAGS = re.compile(r"flags=([^,}]+)")


def clone_thread(args: str) -> bool:
    """Did this clone/clone3 make a thread (CLONE_THREAD, 0x10000) rather than a process? Its flags symbolic,
    or raw with -X raw (``0x3d0f00``, ``0x1200000|17``)."""
    m = _CLONE_FLAGS.search(args)
    if not m:
        return False
    flags = m.group(1)
    if "CLONE_THREAD" in flags:
        return True
    value = parse_int(flags.split("|")[0].strip())
    return value is not None and bool(value & 0x10000)


# ---- scanning the argument text -----------------------------------------------------------------------

# characters the argument scanner stops at: quotes, brackets, an fd's <path>, a /* comment */, a comma
_SPECIAL = re.compile(r'["<()\[\]{},]|/\*')
_FD_PATH_STOP = re.compile(r"[\\<>]")


def skip_fd_path(text: str, i: int) -> int:
    """Index just past the ``>`` that closes the ``<`` at ``i`` (``3</dev/null<char 1:3>>``).

    strace escapes ``<``, ``>`` and ``"`` inside a path (``\\74``, ``\\76``, ``\\"``), so any other ``<`` opens
    a nested ``<char M:N>``. A socket's endpoints (``TCP:[a:1->b:2]``) hold ``->``, which closes nothing;
    a path (it starts with ``/``) may end in ``-``.
    """
    j = i + 1
    path = text.startswith("/", j)
    depth = 1
    search = _FD_PATH_STOP.search
    while True:
        m = search(text, j)
        if m is None:
            return len(text)
        k = m.start()
        c = text[k]
        if c == "\\":
            j = k + 2
            continue
        if c == "<":
            depth += 1
        elif path or text[k - 1] != "-":
            depth -= 1
            if depth == 0:
                return k + 1
        j = k + 1


def _skip_string(text: str, i: int) -> int:
    n = len(text)
    j = i + 1
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
        elif c == '"':
            return j + 1
        else:
            j += 1
    return n


def _scan(text: str, i: int = 0, split: bool = False):
    """Walk strace's argument text at depth 0: yields the index of each top-level ``,`` (when ``split``)
    and finally of the ``)`` that closes the call (or -1 when there is none)."""
    depth = 0
    search = _SPECIAL.search
    while True:
        m = search(text, i)
        if m is None:
            yield -1
            return
        k = m.start()
        c = text[k]
        if c == '"':
            i = _skip_string(text, k)
        elif c == "<":
            # an fd's path: 3</a>, AT_FDCWD</a>, -X verbose's -100 /* AT_FDCWD */</a>
            fd = k and (text[k - 1].isdigit() or text.startswith("AT_FDCWD", k - 8) or text.startswith("*/", k - 2))
            i = skip_fd_path(text, k) if fd else k + 1
        elif c == "/":
            e = text.find("*/", k + 2)
            i = len(text) if e < 0 else e + 2
        elif c == ",":
            if split and depth == 0:
                yield k
            i = k + 1
        elif c in "([{":
            depth += 1
            i = k + 1
        else:
            if depth == 0:
                yield k if c == ")" else -1
                return
            depth -= 1
            i = k + 1


def args_end(text: str) -> int:
    """Where the arguments end in ``args) = result`` (the ``)`` at depth 0); -1 when absent.

    Scanned from the start, not searched from the end: a path behind an fd (``-y``) or a string may hold
    ``) = `` itself (a file named ``x) = -1 ENOENT (y``).
    """
    return next(_scan(text))


_FD = re.compile(r"-?\d+<")


def fd_path_of(text: str) -> str | None:
    """``3</dev/pts/0<char 136:0>>, …`` → ``/dev/pts/0<char 136:0>``; None when not an fd with a path.

    AT_FDCWD (``-100</cwd>``) is not an fd the call operates on, and is skipped.
    """
    m = _FD.match(text)
    if m is None or text[0] == "-":
        return None
    return text[m.end():skip_fd_path(text, m.end() - 1) - 1]


def split_args(args: str) -> list[str]:
    """Split strace's argument text at top-level commas (quotes, brackets, braces, <paths>, comments respected)."""
    return list(iter_args(args))


def iter_args(args: str) -> Iterator[str]:
    """``split_args``, one argument at a time: the text after the arguments a caller wants is not scanned."""
    start = 0
    for k in _scan(args, 0, split=True):
        if k < 0 or args[k] != ",":
            break
        yield args[start:k].strip()
        start = k + 1
    tail = args[start:].strip()
    if tail or start:
        yield tail


def arg(args: str, i: int) -> str | None:
    """The ``i``-th argument's text; None when there are fewer."""
    for n, a in enumerate(iter_args(args)):
        if n == i:
            return a
    return None


def path_arg(args: str, open_at: bool = False) -> str | None:
    """The first string among the first two arguments; with ``open_at`` (openat, execveat) a relative path
    joined to its dirfd's path, and an empty one (AT_EMPTY_PATH: fexecve) the dirfd's file itself."""
    first = None
    for n, a in enumerate(iter_args(args)):
        path = unquote_path(a)
        if path is not None:
            if open_at and not path.startswith("/"):
                base = fd_dir(first) if first is not None else None
                return (os.path.join(base, path) if path else base) if base else path
            return path
        if n:
            return None
        first = a
    return None
