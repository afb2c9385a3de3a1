"""One errno table (profiler/kernel/data/errnos.tsv) names every errno the same in the strace, ptrace and ftrace
paths, checked against what strace itself prints for each number (fault injection) and the kernel's headers."""
from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from profiler.events import SyscallEvent
from profiler.kernel import errnos
from profiler.parse import ftrace_text
from profiler.parse.strace_log import parse_result
from profiler.record import ptrace_text

from .conftest import IN_CI, needs_strace

NUMBERS = [*range(1, 134), *range(512, 532)]
HEADERS = [Path("/usr/include/asm-generic/errno-base.h"), Path("/usr/include/asm-generic/errno.h")]


def strace_says(n: int, exe: str) -> str:
    """The result text strace prints for a call failing with errno n (injected into the dynamic loader's
    access("/etc/ld.so.preload"), which every dynamically linked program makes once and may fail)."""
    p = subprocess.run(["strace", "-o", "/dev/stdout", "-qq", "-e", "trace=access",
                        "-e", f"inject=access:error={n}:when=1", exe],
                       capture_output=True, text=True, timeout=30)
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("access("))
    return line.split(" = ", 1)[1].removesuffix(" (INJECTED)")


@pytest.fixture(scope="module")
def strace_texts():
    exe = shutil.which("true")
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(NUMBERS, pool.map(lambda n: strace_says(n, exe), NUMBERS)))


def parsed(text: str) -> str | None:
    ev = SyscallEvent(1, "access")
    parse_result(text, ev)
    return ev.errno


@needs_strace
def test_strace_ptrace_and_ftrace_name_every_errno_the_same(strace_texts):
    for n in NUMBERS:
        theirs = strace_texts[n]
        name = errnos.errno_name(n)
        printed = re.match(r"(?:-1|\?) (E[A-Z0-9_]+) \(", theirs)
        if printed:                                    # strace named it: the table says the same
            assert printed.group(1) == name, (n, theirs)
        else:                                          # "(errno 41)": a number strace 6.1 has no name for
            assert theirs == f"-1 (errno {n})", theirs
        assert parsed(theirs) == name                  # the strace path
        if printed or name.startswith("errno "):       # the ptrace recorder prints what strace prints …
            assert ptrace_text._errtext(n) == theirs
        assert parsed(ptrace_text._errtext(n)) == name      # … and names 519, 531 (newer than strace 6.1) as the kernel
        assert ftrace_text.errno_name(n) == name       # the ftrace path
    named = {errnos.errno_name(n) for n in NUMBERS}
    assert {"EAGAIN", "EDEADLK", "EOPNOTSUPP", "ERESTARTSYS", "ERESTART_RESTARTBLOCK"} <= named
    assert not {"EWOULDBLOCK", "EDEADLOCK", "ENOTSUP"} & named


@pytest.mark.skipif(not HEADERS[0].exists() and not IN_CI, reason="no kernel uapi headers (linux-libc-dev)")
def test_table_agrees_with_the_kernel_uapi_headers():
    defined = {}
    for h in HEADERS:
        for name, num in re.findall(r"#define\s+(E[A-Z0-9]+)\s+(\d+)", h.read_text()):
            defined[int(num)] = name
    assert set(defined) == set(range(1, 134)) - {41, 58}
    for n, name in defined.items():
        assert errnos.errno_name(n) == name, n
        assert errnos.errno_number(name) == n
    assert errnos.errno_name(41) == "errno 41" and errnos.errno_number("errno 41") == 41
    assert errnos.errno_name(519) == "ENOPARAM" and errnos.errno_name(531) == "ENOGRACE"
    assert [errnos.errno_number(a) for a in ("EWOULDBLOCK", "EDEADLOCK", "ENOTSUP")] == [11, 35, 95]
