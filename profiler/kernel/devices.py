"""Device class of an fd from the path strace -yy prints for it (or a plain path).

Data: ``data/device-paths.tsv`` (regex -> class, first match wins), ``data/device-majors.tsv`` (fallback on the
``<char M:N>`` / ``<block M:N>`` suffix) and ``data/device-classes.tsv``.
"""
from __future__ import annotations

import re
from functools import lru_cache

from profiler.kernel import read_rows

_SUFFIX = re.compile(r"<(char|block) (\d+):(\d+)>$")


@lru_cache(maxsize=None)
def _patterns() -> tuple:
    return tuple((re.compile(rx), cls) for rx, cls in read_rows("device-paths.tsv"))


@lru_cache(maxsize=None)
def _majors() -> tuple:
    out = []
    for typ, major, lo, hi, cls in read_rows("device-majors.tsv"):
        out.append((typ, None if major == "*" else int(major), None if lo == "*" else int(lo),
                    None if hi == "*" else int(hi), cls))
    return tuple(out)


@lru_cache(maxsize=None)
def _classes() -> dict[str, tuple[bool, tuple[str, ...], str]]:
    return {r[0]: (r[1] == "yes", tuple(filter(None, r[2].split(","))), r[3]) for r in read_rows("device-classes.tsv")}


# The names cgroup v1 hierarchies are mounted under in /sys/fs/cgroup (one controller, or several joined by
# commas; "systemd"/"unified" for systemd's named and v2 hierarchies): Linux 6.19.9
# Documentation/admin-guide/cgroup-v1/ and the controllers' cgroup_subsys names.
_CGROUP_V1_NAMES = frozenset("cpu cpuacct cpuset memory devices freezer net_cls net_prio blkio perf_event hugetlb "
                             "pids rdma misc systemd unified".split())
# interface files (cgroup.procs, memory.max, ...), not systemd's cgroups (user.slice, init.scope)
_CGROUP_FILE = re.compile(r"^(?!.*\.(slice|scope|service|socket|mount)$)[a-z_]+\.[a-z0-9_.]+$")


def normalise_cgroup_path(path: str) -> str:
    """A /sys/fs/cgroup path with the cgroup's own path (run-specific: a systemd scope, a container's id) made
    ``$CGROUP``: /sys/fs/cgroup/memory/process_api/9098/memory.max → /sys/fs/cgroup/memory/$CGROUP/memory.max.
    The v1 hierarchy's mount name and the interface file stay; a file at a hierarchy's root stays as it is."""
    prefix = "/sys/fs/cgroup/"
    if not path.startswith(prefix):
        return path
    parts = [p for p in path[len(prefix):].split("/") if p]
    head = []
    if parts and set(parts[0].replace("name=", "").split(",")) <= _CGROUP_V1_NAMES:
        head.append(parts.pop(0))
    tail = [parts.pop()] if parts and _CGROUP_FILE.match(parts[-1]) else []
    if parts:
        head.append("$CGROUP")
    return prefix + "/".join(head + tail)


def device_classes() -> dict[str, str]:
    """Every class id classify_path() can return -> its description."""
    return {k: v[2] for k, v in _classes().items()}


@lru_cache(maxsize=4096)
def classify_path(path: str | None) -> str:
    """Short class id for what is behind an fd: "pts", "spi", "socket:tcp", "file", ... ("unknown" if no path)."""
    if not path:
        return "unknown"
    p = path.strip()
    dev = None
    m = _SUFFIX.search(p)
    if m:
        dev = (m.group(1), int(m.group(2)), int(m.group(3)))
        p = p[: m.start()]
    for rx, cls in _patterns():
        if rx.match(p):
            return cls
    if dev:
        typ, major, minor = dev
        for t, mj, lo, hi, cls in _majors():
            if t == typ and (mj is None or mj == major) and (lo is None or lo <= minor <= hi):
                return cls
    if p.startswith("/dev/") and not p.startswith(("/dev/shm/", "/dev/mqueue/", "/dev/fd/")):
        return "chardev"
    return "file"


def is_device(device_class: str) -> bool:
    c = _classes().get(device_class)
    return bool(c and c[0])
