"""Events → Footprint: what one run asked of the kernel, counted.

A Footprint is a plain, versioned, JSON-serialisable value. It holds counts
keyed by syscall name, ioctl request, device, file, network destination,
program and process; the kernel knowledge (subsystem, defining file, driver)
is looked up from ``profiler.kernel`` when the footprint is shown or saved,
never stored as the source of truth.

The builder reads only an event's typed fields (``profiler.events``): what a recorder printed is typed by
its parser in ``profiler.parse``. Longer than ~600 lines: the Footprint and its one builder (every source's
footprint rules) are kept in one module on purpose, so the rules have one home.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from profiler.errors import KprofError
from profiler.events import Fd, ProcessEvent, SyscallEvent
from profiler.kernel import devices, ioctls, syscalls
from profiler.kernel.subsystems import subsystem_label

FORMAT = "kprof-footprint"
USE_TABLES = ("devices", "files", "network", "programs")
VERSION = 1

# syscall groups (kernel data: data/syscall-args.tsv): a fork's return value is the child's pid
_FORKS = syscalls.syscall_group("fork")
_EXECS = syscalls.syscall_group("exec")
_OPENS = syscalls.syscall_group("open")
_PROC_PID = re.compile(r"/(proc/|task/)\d+(?=/|$)")
# temporary files' random names: mktemp's template tail (shared_node.54XYisQ1C9id) and Python's tmpXXXXXXXX
_MKTEMP = re.compile(r"^(/tmp/(?:[^/]+/)*[^/]*[._-])([A-Za-z0-9]{6,})$")
_PYTEMP = re.compile(r"^(/tmp/(?:[^/]+/)*tmp)([a-z0-9_]{8})$")


def _random_tail(text: str) -> bool:
    """Looks like mktemp's random letters: at least two of lower case, upper case and digits."""
    return sum(any(f(c) for c in text) for f in (str.islower, str.isupper, str.isdigit)) >= 2


def temp_name(path: str) -> str:
    """A temporary file's run-specific random name made comparable: /tmp/shared_node.XXXXXX."""
    m = _MKTEMP.match(path)
    if m and _random_tail(m.group(2)):
        return m.group(1) + "XXXXXX"
    m = _PYTEMP.match(path)
    if m and any(c.isdigit() for c in m.group(2)):
        return m.group(1) + "XXXXXXXX"
    return path


_ADDRESSED = syscalls.syscall_group("addressed")
# an ioctl's fd as the footprint keys it: its path, then the device number when shown ("/dev/pts/0<char 136:0>")
_DEV_SUFFIX = re.compile(r"<(?:char|block) \d+:\d+>$")


def device_path(key: str) -> str:
    """The path in an ioctl's fd key: ``/dev/pts/0<char 136:0>`` → ``/dev/pts/0``."""
    return _DEV_SUFFIX.sub("", key) if key.endswith(">") else key


@dataclass
class SyscallStat:
    calls: int = 0
    errors: Counter = field(default_factory=Counter)
    time: float = 0.0
    unfinished: int = 0     # entered but never returned (exit_group, a task killed inside the call)
    injected: int = 0
    served: int = 0         # answered by an emulated device at the syscall boundary: not in calls, the
                            # kernel never ran them (profiler.pump.spi under the ptrace backend)
    unread: int = 0         # returned, but the recorder could not read the result (a task killed at the call's
                            # exit): in calls, with no error; strace -c may count one as an error


def add_stat(row: SyscallStat, st: SyscallStat, sign: int = 1) -> None:
    """``row`` += ``st`` (``sign`` -1: -=)."""
    row.calls += sign * st.calls
    for errno, n in st.errors.items():
        row.errors[errno] += sign * n
        if not row.errors[errno]:
            del row.errors[errno]
    row.time += sign * st.time
    row.unfinished += sign * st.unfinished
    row.injected += sign * st.injected
    row.served += sign * st.served
    row.unread += sign * st.unread


def _count(stat: SyscallStat, ev: SyscallEvent) -> None:
    """One call in a row (``ev.count`` identical calls for aggregated input): served by an emulated device
    (never kernel work), or made."""
    n = ev.count
    if ev.served:
        stat.served += n
        return
    stat.calls += n
    if ev.errno:
        stat.errors[ev.errno] += n
    if ev.duration:
        stat.time += ev.duration
    if ev.injected:
        stat.injected += n
    if ev.never_returned:
        stat.unfinished += n
    elif ev.result_lost:
        stat.unread += n


@dataclass
class Footprint:
    arch: str
    syscalls: dict[str, SyscallStat] = field(default_factory=dict)
    # (request, fd path) → {"calls", "errors"}; decoded through profiler.kernel.ioctls when shown
    # the uses of things, each {"calls", "syscalls", "errors", "by" (program → calls)} (see new_use):
    ioctls: dict[tuple[int, str], dict] = field(default_factory=dict)
    devices: dict[str, dict] = field(default_factory=dict)      # path → use + "dev", "class"
    files: dict[str, dict] = field(default_factory=dict)        # opened path → use
    network: dict[str, dict] = field(default_factory=dict)      # address → use (connect, bind, sendto, accept)
    programs: dict[str, dict] = field(default_factory=dict)     # exec'd path → use
    # pid → {"parent", "end", "images": [{"exe", "syscalls": Counter}]}; a successful execve starts a new image,
    # so calls are credited to the program that made them (a forked child starts in its parent's program)
    processes: dict[int, dict] = field(default_factory=dict)
    root_pid: int | None = None
    source: dict = field(default_factory=dict)
    # the derived rows, decoded once per state of the counts (reports ask for them several times)
    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _memo(self, name: str, make):
        state = (self.arch, len(self.syscalls), self.total_calls, len(self.ioctls),
                 sum(u["calls"] for u in self.ioctls.values()))
        hit = self._derived.get(name)
        if hit is None or hit[0] != state:
            hit = self._derived[name] = (state, make())
        return hit[1]

    # ---- derived views -------------------------------------------------

    @property
    def total_calls(self) -> int:
        return sum(s.calls for s in self.syscalls.values())

    def kernel_syscalls(self) -> dict[str, SyscallStat]:
        """The syscalls the kernel executed: a name only ever served by an emulated device is not one."""
        return {name: s for name, s in self.syscalls.items() if s.calls or not s.served}

    @property
    def executed_syscalls(self) -> int:
        """How many distinct syscalls the kernel executed."""
        return len(self.kernel_syscalls())

    @property
    def total_served(self) -> int:
        return sum(s.served for s in self.syscalls.values())

    @property
    def total_errors(self) -> int:
        return sum(sum(s.errors.values()) for s in self.syscalls.values())

    @property
    def exit(self) -> dict | None:
        p = self.processes.get(self.root_pid) if self.root_pid is not None else None
        return p.get("end") if p else None

    def syscall_info(self, name: str):
        return syscalls.syscall_info(self.arch, name)

    def ioctl_rows(self) -> list[dict]:
        """One row per (request, device class): name, driver, subsystem, devices, calls, errors."""
        return copy.deepcopy(self._memo("ioctl", self._ioctl_rows))

    def _ioctl_rows(self) -> list[dict]:
        rows: dict[tuple[int, str], dict] = {}
        for (request, path), stat in self.ioctls.items():
            info = ioctls.decode_ioctl(request, path or None, self.arch)
            key = (request, info.device_class)
            row = rows.get(key)
            if row is None:
                row = rows[key] = {
                    "request": f"{request:#x}", "name": info.name, "header": info.header,
                    "handler": info.handler, "subsystem": subsystem_label(info.subsystem, info.handler),
                    "device_class": info.device_class, "note": info.note,
                    "devices": [], "calls": 0, "served": 0, "errors": Counter(), "by": Counter()}
            if path:
                row["devices"].append(device_path(path))
            row["calls"] += stat["calls"]
            row["served"] += sum(stat.get("served", {}).values())
            row["errors"].update(stat["errors"])
            row["by"].update(stat["by"])
        out = sorted(rows.values(), key=lambda r: (-r["calls"] - r["served"], r["request"]))
        for r in out:
            r["devices"] = sorted(set(r["devices"]))
        return out

    def subsystem_rows(self) -> list[dict]:
        """Calls per subsystem; an ioctl counts for the subsystem of the code that handles it."""
        return copy.deepcopy(self._memo("subsystem", self._subsystem_rows))

    def _subsystem_rows(self) -> list[dict]:
        subs: dict[str, dict] = {}

        def add(sub: str, name: str, calls: int, errors: int):
            row = subs.setdefault(sub, {"subsystem": sub, "calls": 0, "errors": 0, "syscalls": set()})
            row["calls"] += calls
            row["errors"] += errors
            row["syscalls"].add(name)

        ioctl_rows = self.ioctl_rows()
        # every ABI's ioctl rows ("ioctl", "ioctl (i386)") are counted once, by the code that handled each request
        ioctl_keys = [n for n in self.syscalls if syscalls.split_abi_key(n)[0] == "ioctl"] if ioctl_rows else []
        if ioctl_keys:
            counted = 0
            for r in ioctl_rows:
                if not r["calls"]:
                    continue         # served only: the kernel's code for it never ran here
                add(r["subsystem"], "ioctl", r["calls"], sum(r["errors"].values()))
                counted += r["calls"]
            left = sum(self.syscalls[n].calls for n in ioctl_keys) - counted
            if left > 0:             # ioctls whose request could not be read (log without -X raw)
                info = self.syscall_info("ioctl")
                add(subsystem_label(info.subsystem, info.file), "ioctl", left, 0)
        for name, stat in self.kernel_syscalls().items():
            errors = sum(stat.errors.values())
            if name in ioctl_keys:
                continue
            info = self.syscall_info(name)
            add(subsystem_label(info.subsystem, info.file), name, stat.calls, errors)
        rows = sorted(subs.values(), key=lambda r: (-r["calls"], r["subsystem"]))
        for r in rows:
            r["syscalls"] = sorted(r["syscalls"])
        return rows

    def executables(self) -> dict[str, dict]:
        """The per-process split, grouped by executable: processes, calls, syscalls."""
        out: dict[str, dict] = {}
        for proc in self.processes.values():
            for image in proc["images"]:
                if not image["syscalls"]:
                    continue
                row = out.setdefault(image["exe"] or BEFORE_EXEC,
                                     {"processes": 0, "calls": 0, "syscalls": Counter()})
                row["processes"] += 1
                row["syscalls"].update(image["syscalls"])
                row["calls"] += sum(image["syscalls"].values())
        return out

    def program_runs(self) -> dict[str, dict]:
        """The process tree summed by program name (the exec'd path's last part): how often each program was
        started (successful execs), by which programs, and the processes/threads and calls while it ran
        (its forked children that did not exec, e.g. a shell's subshells, and its threads included)."""
        out: dict[str, dict] = {}

        def row(name: str) -> dict:
            return out.setdefault(name, {"runs": 0, "started_by": Counter(), "processes": 0, "calls": 0,
                                         "paths": set()})
        for proc in self.processes.values():
            images = proc["images"]
            for k, image in enumerate(images):
                name = program_name(image["exe"])
                if k:  # images after the first were started by an execve of the program before
                    r = row(name)
                    r["runs"] += 1
                    r["started_by"][program_name(images[k - 1]["exe"])] += 1
                    r["paths"].add(image["exe"])
                if image["syscalls"]:
                    r = row(name)
                    r["processes"] += 1
                    r["calls"] += sum(image["syscalls"].values())
        return out

    # ---- serialisation -------------------------------------------------

    def to_dict(self) -> dict:
        sysrows = {}
        for name in sorted(self.syscalls):
            s = self.syscalls[name]
            info = self.syscall_info(name)
            sysrows[name] = {
                "calls": s.calls, "errors": dict(sorted(s.errors.items())), "time": round(s.time, 6),
                "unfinished": s.unfinished, "injected": s.injected, **({"served": s.served} if s.served else {}),
                **({"unread": s.unread} if s.unread else {}),
                "number": info.number, "subsystem": subsystem_label(info.subsystem, info.file),
                "defined_in": info.defined_in,
                "maintainers": info.maintainers, "note": info.note,
            }
        return {
            "format": FORMAT, "version": VERSION, "arch": self.arch, "source": self.source,
            "root_pid": self.root_pid, "exit": self.exit,
            "totals": {"calls": self.total_calls, "errors": self.total_errors,
                       **({"served": self.total_served} if self.total_served else {}),
                       "syscalls": self.executed_syscalls, "processes": len(self.processes)},
            "syscalls": sysrows,
            "subsystems": self.subsystem_rows(),
            "ioctls": [dict(r, errors=dict(r["errors"]), by=dict(r["by"])) for r in self.ioctl_rows()],
            "ioctl_calls": [{"request": f"{req:#x}", "fd_path": path, **_use_to_dict(v)}
                            for (req, path), v in sorted(self.ioctls.items())],
            **{table: {k: _use_to_dict(v) for k, v in sorted(getattr(self, table).items())} for table in USE_TABLES},
            "processes": [{"pid": pid, "parent": p["parent"], "end": p["end"],
                           "images": [{"exe": i["exe"], "syscalls": dict(sorted(i["syscalls"].items()))}
                                      for i in p["images"]]}
                          for pid, p in sorted(self.processes.items())],
        }

    @classmethod
    def from_dict(cls, data: dict, origin: str = "footprint") -> "Footprint":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KprofError(f"{origin}: not a kprof footprint (no \"format\": \"{FORMAT}\")")
        if not isinstance(data.get("version", 0), int) or data.get("version", 0) > VERSION:
            raise KprofError(f"{origin}: footprint format version {data.get('version')} is newer than this "
                             f"kprof understands ({VERSION}); upgrade kprof")
        try:
            fp = cls(arch=data["arch"], root_pid=data.get("root_pid"), source=data.get("source", {}))
            for name, s in data["syscalls"].items():
                t = s["time"]
                if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
                    raise ValueError(f"syscalls.{name}.time: {t!r} is not a duration")
                fp.syscalls[name] = SyscallStat(count(s["calls"], f"syscalls.{name}.calls"),
                                                counts(s["errors"], f"syscalls.{name}.errors"), t,
                                                count(s.get("unfinished", 0), f"syscalls.{name}.unfinished"),
                                                count(s.get("injected", 0), f"syscalls.{name}.injected"),
                                                count(s.get("served", 0), f"syscalls.{name}.served"),
                                                count(s.get("unread", 0), f"syscalls.{name}.unread"))
            for row in data.get("ioctl_calls", []):
                use = dict(row)
                request, path = int(use.pop("request"), 16), use.pop("fd_path")
                fp.ioctls[(request, path)] = _use_from_dict(use)
            for table in USE_TABLES:
                getattr(fp, table).update({k: _use_from_dict(v) for k, v in data.get(table, {}).items()})
            for p in data.get("processes", []):
                fp.processes[p["pid"]] = {"parent": p["parent"], "end": p["end"],
                                          "images": [{"exe": i["exe"], "syscalls": counts(i["syscalls"], "images")}
                                                     for i in p["images"]]}
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise KprofError(f"{origin}: damaged footprint ({type(e).__name__}: {e})") from None
        return fp

    @classmethod
    def combine(cls, *footprints: "Footprint") -> "Footprint":
        """Several footprints of one architecture as one (pyinstrument's ``Session.combine`` is the model):
        trace files of one machine read one after another, repeats of a run. Counts add up; a pid found in
        more than one is one task continued (its images joined where the program is the same, its parent
        and end the first and the last known); the root is the first known. The inputs are not changed."""
        if not footprints:
            raise KprofError("Footprint.combine: no footprints to combine")
        arches = {fp.arch for fp in footprints}
        if len(arches) > 1:
            raise KprofError(f"Footprint.combine: footprints of different architectures ({', '.join(sorted(arches))}) "
                             f"are not one footprint; keep one per architecture")
        first = footprints[0]
        out = cls(arch=first.arch, root_pid=next((fp.root_pid for fp in footprints if fp.root_pid is not None), None),
                  source=copy.deepcopy(first.source) if len(footprints) == 1 else
                  {**copy.deepcopy(first.source), "combined": [copy.deepcopy(fp.source) for fp in footprints]})
        for fp in footprints:
            for name, st in fp.syscalls.items():
                add_stat(out.syscalls.setdefault(name, SyscallStat()), st)
            for table in ("ioctls", *USE_TABLES):
                mine = getattr(out, table)
                for key, use in getattr(fp, table).items():
                    _add_use(mine, key, use)
            for pid, proc in fp.processes.items():
                have = out.processes.get(pid)
                images = [{"exe": i["exe"], "syscalls": Counter(i["syscalls"])} for i in proc["images"]]
                if have is None:
                    out.processes[pid] = {"parent": proc["parent"], "end": copy.deepcopy(proc["end"]), "images": images}
                    continue
                if have["parent"] is None:
                    have["parent"] = proc["parent"]
                if proc["end"] is not None:
                    have["end"] = copy.deepcopy(proc["end"])
                if images and have["images"] and have["images"][-1]["exe"] == images[0]["exe"]:
                    have["images"][-1]["syscalls"].update(images.pop(0)["syscalls"])
                have["images"] += images
        return out

    def save(self, path) -> None:
        from profiler.outfiles import write_atomic
        write_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path) -> "Footprint":
        from profiler.errors import check_input
        check_input(path, "a footprint (JSON)")
        try:
            with open(path) as f:
                data = json.load(f)
        except OSError as e:
            raise KprofError(f"{path}: cannot read footprint: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise KprofError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        except (UnicodeDecodeError, RecursionError) as e:
            raise KprofError(f"{path}: not a footprint ({'nested too deeply' if isinstance(e, RecursionError) else e})") from None
        return cls.from_dict(data, str(path))


BEFORE_EXEC = "(before the first exec)"


def program_name(exe: str | None) -> str:
    """A program's name in summaries: the last part of its exec'd path."""
    return os.path.basename(exe) if exe else BEFORE_EXEC


def new_use(**fields) -> dict:
    """A use of a device, file, network address, program or ioctl: calls, by syscall, errors, by program."""
    return {"calls": 0, "syscalls": Counter(), "errors": Counter(), "by": Counter(), **fields}


def _add_use(table: dict, key, use: dict) -> None:
    """``table[key]`` += ``use`` (Footprint.combine): counts add up, other fields (a device's class) are kept."""
    mine = table.get(key)
    if mine is None:
        mine = table[key] = new_use()
    for k, v in use.items():
        if isinstance(v, Counter):
            mine.setdefault(k, Counter()).update(v)
        elif k == "calls":
            mine[k] += v
        else:
            mine.setdefault(k, copy.deepcopy(v))


def _use_to_dict(e: dict) -> dict:
    return {k: (dict(sorted(v.items())) if isinstance(v, Counter) else v) for k, v in e.items()}


def _use_from_dict(d: dict) -> dict:
    e = new_use()
    for k, v in d.items():
        e[k] = counts(v, k) if isinstance(e.get(k), Counter) or k == "served" else v
    e["calls"] = count(e["calls"], "calls")
    return e


_MAX_COUNT = 2 ** 63 - 1     # more calls than a 64-bit counter holds is not a count (10**400 overflowed a float)


def count(value, what: str) -> int:
    """A count read from a file: a non-negative integer a 64-bit counter holds, else ValueError (a damaged
    file)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        shown = f"a number of {len(str(value))} digits" if isinstance(value, int) and value > _MAX_COUNT else repr(value)
        raise ValueError(f"{what}: {shown} is not a count")
    return value


def counts(mapping, what: str) -> Counter:
    """A mapping of name → count read from a file (see ``count``)."""
    if not isinstance(mapping, dict):
        raise ValueError(f"{what}: not a mapping")
    return Counter({str(k): count(v, f"{what}.{k}") for k, v in mapping.items()})


class FootprintBuilder:
    """Consumes events one at a time; memory grows with distinct keys, never with the log."""

    def __init__(self, arch: str, path_aliases: dict[str, str] | None = None, source: dict | None = None):
        self.fp = Footprint(arch=syscalls.normalize_arch(arch), source=source or {})
        # A 64-bit kernel runs 32-bit programs too: each call is counted under its task's ABI (``getpid`` and
        # ``getpid (i386)`` are two rows, as strace -C's "for 32 bit mode" table has them). A program image's
        # ABI is known from its first call that only one ABI has (strace names calls from the task's own
        # table: mmap2 is i386's, newfstatat x86_64's); its calls before that count as the footprint's ABI's
        # and are moved if it turns out to be the other.
        self._compat = syscalls.COMPAT.get(self.fp.arch)
        self._held: dict[int, tuple[list, dict[str, SyscallStat]]] = {}   # id(abi cell) → (cell, name → stat)
        self._tracked: dict[str, bool] = {}  # per fd (its text): a device node or a device model file?
        # longest prefix first, so a workdir inside /tmp wins over /tmp
        self._aliases = sorted((path_aliases or {}).items(), key=lambda kv: -len(kv[0]))
        # a new thread or child can make calls before strace shows its parent's fork/clone returning: until
        # then its uses are counted "(before the first exec)"; these are moved to the parent's program then
        self._unattributed: dict[int, list[Counter]] = {}
        self._pid: int | None = None
        # thread groups (pid → its group's leader, from clone's CLONE_THREAD) and when each group's
        # exit_group was entered: see add()
        self._tgid: dict[int, int] = {}
        self._group_exit: dict[int, float] = {}
        self._cut_after_group_exit = True

    def _alias(self, path: str) -> str:
        """Run-specific parts of a path made comparable: the workdir → $WORKDIR, /proc/1234 → /proc/PID,
        /sys/fs/cgroup/<the process's cgroup>/memory.max → /sys/fs/cgroup/$CGROUP/memory.max, a temporary
        file's random name → /tmp/name.XXXXXX."""
        for prefix, alias in self._aliases:
            if path == prefix or path.startswith(prefix + "/"):
                return alias + path[len(prefix):]
        if path.startswith("/proc/"):
            return _PROC_PID.sub(r"/\1PID", path)
        if path.startswith("/tmp/"):
            return temp_name(path)
        if path.startswith("/sys/fs/cgroup/"):
            return devices.normalise_cgroup_path(path)
        return path

    def _process(self, pid: int) -> dict:
        proc = self.fp.processes.get(pid)
        if proc is None:
            if self.fp.root_pid is None:
                self.fp.root_pid = pid
            proc = self.fp.processes[pid] = {"parent": None, "end": None,
                                             "images": [{"exe": None, "syscalls": Counter(), "abi": [None]}]}
        return proc

    def _rows(self, name: str, image: dict) -> tuple[SyscallStat, SyscallStat | None]:
        """The row a call of ``image``'s program is counted in, by its ABI; and, while that ABI is not known
        (the call is counted as the footprint's own ABI's meanwhile), the image's held count of the call."""
        cell = None
        if self._compat is not None:
            cell = image.setdefault("abi", [None])
            if cell[0] is None:
                abi = syscalls.abi_evidence(self.fp.arch, name)
                if abi is not None:
                    cell[0] = abi
                    self._settle(cell)
        key = name if cell is None or cell[0] in (None, self.fp.arch) else syscalls.abi_key(name, cell[0])
        stat = self.fp.syscalls.get(key)
        if stat is None:
            stat = self.fp.syscalls[key] = SyscallStat()
        if cell is None or cell[0] is not None:
            return stat, None
        rows = self._held.setdefault(id(cell), (cell, {}))[1]
        held = rows.get(name)
        if held is None:
            held = rows[name] = SyscallStat()
        return stat, held

    def _settle(self, cell: list) -> None:
        """An image's ABI is now known: the calls it made before move to that ABI's rows."""
        held = self._held.pop(id(cell), None)
        if held is None or cell[0] == self.fp.arch:
            return
        for name, st in held[1].items():
            row = self.fp.syscalls[name]
            add_stat(row, st, -1)
            if not row.calls and not row.served:
                del self.fp.syscalls[name]
            add_stat(self.fp.syscalls.setdefault(syscalls.abi_key(name, cell[0]), SyscallStat()), st)

    def _rename(self, old: int, new: int) -> None:
        procs = self.fp.processes
        proc = procs.pop(old, None)
        if proc is None:
            return
        if new in procs:   # already seen under its pid: the earlier calls come first
            self._inherit_abi(procs[new]["images"][0], proc["images"][-1])
            proc["images"][-1]["syscalls"].update(procs[new]["images"][0]["syscalls"])
            proc["images"] += procs[new]["images"][1:]
        procs[new] = proc
        for p in procs.values():
            if p["parent"] == old:
                p["parent"] = new
        if self.fp.root_pid == old:
            self.fp.root_pid = new

    def add_all(self, events: Iterable) -> "FootprintBuilder":
        for ev in events:
            self.add(ev)
        return self

    def add(self, ev) -> None:
        if isinstance(ev, ProcessEvent):
            if ev.kind == "exec":          # a program started: not a fact about the task in this footprint
                self.program_started(ev.path)
                return
            proc = self._process(ev.pid)
            if ev.kind == "exit":
                proc["end"] = {"exit": ev.status}
            elif ev.kind == "killed":
                proc["end"] = {"signal": ev.signal, "core_dumped": ev.core_dumped}
            elif ev.kind == "renamed":
                self._rename(ev.pid, ev.status)
            elif ev.kind == "image":
                self.task_image(ev.pid, ev.path)
            elif ev.kind == "forked":
                proc["parent"] = ev.parent
            return
        fp = self.fp
        name = ev.name
        tgid = self._tgid.get(ev.pid, ev.pid)
        if name == "exit_group" and ev.time is not None and self._cut_after_group_exit:
            self._group_exit.setdefault(tgid, ev.time)
        elif ev.never_returned and name != "exit" and tgid in self._group_exit \
                and ev.time is not None and ev.time > self._group_exit[tgid]:
            # a thread of a group that is already exiting "enters" a call that never returns: strace read
            # a syscall number off a thread being killed (Go's threads at exit showed vfork, msgget): not a
            # call the kernel ran, not counted (strace's -c table does not count it either)
            fp.source["calls_cut_by_group_exit"] = fp.source.get("calls_cut_by_group_exit", 0) + 1
            return
        n = ev.count
        proc = self._process(ev.pid)
        stat, held = self._rows(name, proc["images"][-1])
        _count(stat, ev)
        if held is not None:
            _count(held, ev)
        fd = ev.fd
        if ev.served:                  # kept apart: counted where it was served, never as kernel work
            self._exe = proc["images"][-1]["exe"] or BEFORE_EXEC
            self._pid = ev.pid
            if fd is not None and (name == "ioctl" or self._is_tracked(fd)):
                self._touch(fp.devices, fd.path, ev, dev=fd.dev, **{"class": fd.device_class})
            if name == "ioctl":
                self._ioctl(ev)
            return
        image = proc["images"][-1]
        image["syscalls"][name] += n
        self._exe = image["exe"] or BEFORE_EXEC
        self._pid = ev.pid

        if fd is not None:
            tracked = self._tracked.get(fd.text)
            if tracked is None:
                tracked = self._is_tracked(fd)
            if tracked:
                self._touch(fp.devices, fd.path, ev, dev=fd.dev, **{"class": fd.device_class})
        if name == "ioctl":
            self._ioctl(ev)
        elif name in _OPENS:
            self._open(ev)
        elif name in _FORKS:
            if ev.result and ev.result > 0:
                child = self._process(ev.result)
                child["parent"] = ev.pid
                if ev.thread:
                    self._tgid[ev.result] = tgid
                first = child["images"][0]
                if first["exe"] is None:
                    first["exe"] = proc["images"][-1]["exe"]
                    if first["exe"] is not None:
                        self._adopt(ev.result, first["exe"])
                self._inherit_abi(first, proc["images"][-1])
        elif name in _EXECS:
            self._exec(ev, proc)
        elif name in _ADDRESSED:
            self._address(ev)

    def _adopt(self, pid: int, exe: str) -> None:
        """``pid`` turned out to run ``exe`` since before its first call: move the uses counted "(before the first
        exec)" to it, and the same for its children that inherited the unknown (a subshell's pipeline)."""
        for by in self._unattributed.pop(pid, ()):
            by[BEFORE_EXEC] -= 1
            if not by[BEFORE_EXEC]:
                del by[BEFORE_EXEC]
            by[exe] += 1
        for cpid, child in self.fp.processes.items():
            if child["parent"] == pid and child["images"][0]["exe"] is None:
                child["images"][0]["exe"] = exe
                self._adopt(cpid, exe)

    def _is_tracked(self, fd: Fd) -> bool:
        """Device nodes and the device model's files are tracked; other fds are not."""
        cls = fd.device_class
        tracked = self._tracked[fd.text] = devices.is_device(cls) or cls.startswith("sysfs")
        return tracked

    def _ioctl(self, ev: SyscallEvent) -> None:
        if ev.request is None:   # not read (a log without -X raw naming a request kprof does not know)
            return
        fd = ev.fd
        self._touch(self.fp.ioctls, (ev.request, self._alias(fd.text) if fd is not None and fd.text else ""), ev)

    def _open(self, ev: SyscallEvent) -> None:
        fd = ev.result_fd
        if ev.result is not None and ev.result >= 0 and fd is not None and fd.text:
            path = fd.path
        elif ev.path is not None:
            path = ev.path
        else:
            return
        self._touch(self.fp.files, self._alias(path), ev)

    def _exec(self, ev: SyscallEvent, proc: dict) -> None:
        if ev.path is None:
            return
        path = self._alias(ev.path)
        self._touch(self.fp.programs, path, ev)
        if ev.errno is None and ev.result == 0:
            proc["images"].append({"exe": path, "syscalls": Counter(), "abi": [None]})

    def _address(self, ev: SyscallEvent) -> None:
        addr = ev.address
        if not addr:
            return
        if addr.startswith("unix:"):
            addr = "unix:" + self._alias(addr[5:])
        self._touch(self.fp.network, addr, ev)

    def _touch(self, table: dict, key, ev: SyscallEvent, **fields) -> None:
        """Count a use of ``key`` (a device, file, address, program, ioctl): by which call, errors, which program."""
        e = table.get(key)
        if e is None:
            e = table[key] = new_use(**fields)
        if ev.served:
            e.setdefault("served", Counter())[ev.name] += 1
            return
        e["calls"] += ev.count
        e["syscalls"][ev.name] += ev.count
        if ev.errno:
            e["errors"][ev.errno] += ev.count
        e["by"][self._exe] += ev.count
        if self._exe == BEFORE_EXEC and self._pid != self.fp.root_pid:
            self._unattributed.setdefault(self._pid, []).append(e["by"])

    def _inherit_abi(self, child: dict, parent: dict) -> None:
        """A forked child runs its parent's program: the same ABI, known when either's is."""
        mine, theirs = child.get("abi"), parent.get("abi")
        if mine is None or theirs is None or mine is theirs:
            return
        if theirs[0] is None and mine[0] is not None:
            theirs[0] = mine[0]
            self._settle(theirs)
        elif mine[0] is None and theirs[0] is not None:
            mine[0] = theirs[0]
            self._settle(mine)
        if mine[0] is None:                     # neither known: one cell for both, held calls together
            held = self._held.pop(id(mine), None)
            if held is not None:
                rows = self._held.setdefault(id(theirs), (theirs, {}))[1]
                for name, st in held[1].items():
                    add_stat(rows.setdefault(name, SyscallStat()), st)
            child["abi"] = theirs

    def finish(self) -> Footprint:
        self._held.clear()      # images no call showed the ABI of: counted as the footprint's own, as they are
        return self.fp

    # ---- for sources that count calls themselves (ftrace's fast path): facts that are not one call each.
    # The footprint rules stay here; these say only what such a source knows in another form.

    def known_abi(self) -> "FootprintBuilder":
        """Every call is of the builder's own ABI: no image's ABI is guessed from the calls it makes (ftrace
        reads each task's numbers with its ABI's table and builds one footprint per ABI)."""
        self._compat = None
        return self

    def kernel_traced(self) -> "FootprintBuilder":
        """Every call event is one the kernel entered (ftrace's sys_enter): a call entered after its thread
        group's exit_group is counted, not taken for a number read off a thread being killed (see add)."""
        self._cut_after_group_exit = False
        return self

    def syscall_rows(self, names: Iterable[str]) -> None:
        """The rows of these syscalls, made in this order before their calls are given (such a source keeps
        its own order of rows, and a row it counted no call in stays, at zero calls)."""
        for name in names:
            if name not in self.fp.syscalls:
                self.fp.syscalls[name] = SyscallStat()

    def task(self, pid: int, parent: int | None = None) -> None:
        """A task, and its parent when known, without a call of its own here (ftrace: a fork's return value
        or sched_process_fork tells the parent; a task may have no counted call in the window)."""
        proc = self._process(pid)
        if parent is not None:
            proc["parent"] = parent

    def task_image(self, pid: int, exe: str, names: Iterable[str] = ()) -> None:
        """The task runs ``exe`` from here on, known without an exec call (ftrace names a task's calls by its
        comm, or the file sched_process_exec showed): the first names the image the task began in. ``names``:
        the syscalls it made there in the order it first made them, when its calls are given in another."""
        images = self._process(pid)["images"]
        # no call made yet: the image it began in (a forked child's, taken from its parent, is replaced)
        if len(images) == 1 and not images[0]["syscalls"]:
            images[0]["exe"] = exe
        else:
            images.append({"exe": exe, "syscalls": Counter(), "abi": [None]})
        for name in names:
            images[-1]["syscalls"].setdefault(name, 0)

    def program_started(self, path: str) -> None:
        """A program start seen by an event that is not a call (ftrace's sched_process_exec): a use of the
        program with no syscall and no caller."""
        use = self.fp.programs.get(path)
        if use is None:
            use = self.fp.programs[path] = new_use()
        use["calls"] += 1

    def root(self, pid: int | None) -> None:
        """The run's root task is known to the source (or none is): not the first task seen."""
        self.fp.root_pid = pid if pid in self.fp.processes else None
