"""errno numbers <-> names, one table for every source (strace logs, ptrace, ftrace).

Data: ``data/errnos.tsv`` (names as strace prints them: EAGAIN not EWOULDBLOCK, EDEADLK not EDEADLOCK,
EOPNOTSUPP not ENOTSUP; the kernel-internal 512+ codes). A number without a name is ``errno N``, as strace
prints ``(errno 41)``.
"""
from __future__ import annotations

from functools import lru_cache

from profiler.kernel import read_rows

MAX_ERRNO = 4095        # include/linux/err.h: a syscall fails by returning -1 … -MAX_ERRNO


def is_error_value(rval: int) -> bool:
    """A raw syscall return value the kernel means as an error (-errno)."""
    return -MAX_ERRNO <= rval <= -1


@lru_cache(maxsize=None)
def _table() -> tuple[dict[int, str], dict[int, str], dict[str, int]]:
    names, restart, numbers = {}, {}, {}
    for n, name, text, aliases in read_rows("errnos.tsv"):
        names[int(n)] = name
        for alias in (name, *filter(None, aliases.split(","))):
            numbers[alias] = int(n)
        if text:
            restart[int(n)] = text
    return names, restart, numbers


def errno_name(n: int) -> str:
    """Linux errno number → name (``errno N`` when the kernel gives it none)."""
    return _table()[0].get(n) or f"errno {n}"


def errno_number(name: str) -> int | None:
    """``ENOENT`` → 2, ``EWOULDBLOCK`` → 11 (an alias); strace's ``errno 41`` form → 41; None when unknown."""
    if name.startswith("errno "):
        return int(name[6:]) if name[6:].isdigit() else None
    return _table()[2].get(name)


def restart_text(n: int) -> str | None:
    """strace's text for a code it shows as ``= ? NAME (text)``: the call will be restarted; None otherwise."""
    return _table()[1].get(n)
