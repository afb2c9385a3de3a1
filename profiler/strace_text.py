"""Reading values out of strace's argument text (strings, socket addresses, numbers)."""
from __future__ import annotations

import ipaddress
import re

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
    fam = {"0x1": "AF_UNIX", "1": "AF_UNIX", "0x2": "AF_INET", "2": "AF_INET",
           "0xa": "AF_INET6", "10": "AF_INET6", "0x10": "AF_NETLINK", "16": "AF_NETLINK"}.get(family, family)
    if fam in ("AF_UNIX", "AF_LOCAL"):
        path = unquote(fields.get("sun_path", '""'))
        if path is None and "sun_path=@" in text:
            path = "@" + text.split("sun_path=@", 1)[1].split('"')[1]
        return f"unix:{path or '(unnamed)'}"
    if fam == "AF_INET":
        return f"inet:{_addr(fields.get('sin_addr', ''), 4)}:{_port(fields.get('sin_port', ''))}"
    if fam == "AF_INET6":
        return f"inet6:[{_addr(fields.get('sin6_addr', ''), 6)}]:{_port(fields.get('sin6_port', ''))}"
    if fam == "AF_NETLINK":
        return "netlink"
    return f"family:{family}" if family else None


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
