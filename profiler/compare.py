"""Footprint × footprint → Diff: what changed in the kernel footprint, by how much, and which program did it.

Everything is compared by name (syscall names, subsystem ids, ioctl request names, paths, addresses),
never by number, so footprints from different architectures compare too. A baseline holds the
measures of several runs; a count is a change only outside the range those runs took, widened by
the tolerance rules (``profiler/tolerance.json``, overridable per scenario with ``tolerance:``).
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from profiler.errors import KprofError, check_input
from profiler.footprint import Footprint
from profiler.kernel.errnos import MAX_ERRNO, errno_number

_TABLE = {"device": "devices", "program": "programs", "network": "network", "file": "files"}
# a file, device, program or destination's errors by errno ("/etc/a ENOENT"): one that failed where it worked
ITEM_ERRORS = {f"{cat} error": table for cat, table in _TABLE.items()}
CATEGORIES = ("syscall", "error", "subsystem", "ioctl", "device", "program", "network", "file", "module", "kconfig",
              "served", *ITEM_ERRORS)
# measures newer than some saved baselines: not compared against a baseline that lacks them (a note says so)
_NEWER = ("kconfig", *ITEM_ERRORS)
_DEFAULTS = None


def default_rules() -> dict:
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = json.loads((Path(__file__).parent / "tolerance.json").read_text())
        _DEFAULTS = {k: v for k, v in _DEFAULTS.items() if not k.startswith("_")}
    return _DEFAULTS


def rules_for(overrides: dict | None) -> dict:
    """The default rules with a scenario's ``tolerance:`` applied (lists are added to, numbers replaced)."""
    rules = {k: (list(v) if isinstance(v, list) else v) for k, v in default_rules().items()}
    for k, v in (overrides or {}).items():
        if isinstance(rules.get(k), list):
            rules[k] = rules[k] + list(v)
        else:
            rules[k] = v
    return rules


def _ioctl_key(row: dict) -> str:
    return f"{row['name'] or row['request']} on {row['device_class']}"


def measures(fp: Footprint) -> dict[str, dict[str, int]]:
    """Everything compared, as category → key → count; the kernel modules a run loaded are not in a footprint
    (run_measures adds them from the run's record)."""
    m: dict[str, dict[str, int]] = {c: {} for c in CATEGORIES if c != "module"}
    for name, s in fp.syscalls.items():
        if s.served and name.partition(" ")[0] != "ioctl":    # ioctls: per request, below
            m["served"][name] = s.served      # answered by an emulated device (the GPIO files' epoll_ctl)
        if not s.calls:
            continue          # every call served by an emulated device: compared under "served"
        m["syscall"][name] = s.calls
        for errno, n in s.errors.items():
            m["error"][f"{name} {errno}"] = n
    for row in fp.subsystem_rows():
        m["subsystem"][row["subsystem"]] = row["calls"]
    for row in fp.ioctl_rows():
        key = _ioctl_key(row)
        if row["calls"]:
            m["ioctl"][key] = m["ioctl"].get(key, 0) + row["calls"]
        if row["served"]:   # answered by an emulated device: compared apart from what the kernel executed
            m["served"][f"ioctl {key}"] = m["served"].get(f"ioctl {key}", 0) + row["served"]
    for cat, table in _TABLE.items():
        m[cat] = {k: v["calls"] for k, v in getattr(fp, table).items()}
        m[f"{cat} error"] = {f"{k} {errno}": n for k, v in getattr(fp, table).items()
                             for errno, n in v["errors"].items()}
    m["kconfig"] = {r.condition: 1 for r in _kconfig_needs(fp)}   # a Kconfig condition the footprint needs
    return m


_ERRNO_AT_END = re.compile(r" (errno \d+|\S+)$")     # a name (ENOENT), or the form of a number without one


def split_errno(key: str) -> tuple[str, str]:
    """An error key → (what failed, errno): "read EINTR", "openat (i386) EINTR", "/etc/a ENOENT",
    "/etc/a errno 41" (errno_name's form of a number it has no name for)."""
    m = _ERRNO_AT_END.search(key)
    return (key[:m.start()], m.group(1)) if m else (key, "")


def _kconfig_needs(fp: Footprint) -> list:
    from profiler.kernel.kconfig import needed_symbols
    return needed_symbols(fp)


def _kconfig_syscalls(fp: Footprint | None, condition: str) -> set[str] | None:
    """The syscalls that make ``fp`` need a Kconfig condition; None when something else (a device, an ioctl) does."""
    if fp is None:
        return None
    for r in _kconfig_needs(fp):
        if r.condition == condition:
            return {u.what for u in r.uses} if all(u.kind == "syscall" for u in r.uses) else None
    return None


def _subsystem_syscalls(fp: Footprint | None, subsystem: str) -> set[str] | None:
    """The syscalls that put ``subsystem`` in ``fp``; None when there is no footprint to ask."""
    if fp is None:
        return None
    return next((set(r["syscalls"]) for r in fp.subsystem_rows() if r["subsystem"] == subsystem), set())


def run_measures(fp: Footprint, modules: dict | None = None) -> dict[str, dict[str, int]]:
    """measures() plus the kernel modules the run made the kernel load, from the run's record; without a
    record (``modules`` None, or a note saying why /proc/modules could not tell) modules are not measured,
    so they are not compared: no module is taken for "none loaded"."""
    m = measures(fp)
    if modules is not None and not modules.get("note"):
        m["module"] = {name: 1 for name in modules.get("loaded", [])}
    return m


def by_program(fp: Footprint, category: str, key: str) -> Counter:
    """Which programs (executables) account for ``key``'s count in ``fp``."""
    if category in _TABLE:
        use = getattr(fp, _TABLE[category]).get(key)
        return Counter(use["by"]) if use else Counter()
    if category in ITEM_ERRORS:      # the programs that used the item, where it failed with that errno
        item, errno = split_errno(key)
        use = getattr(fp, ITEM_ERRORS[category]).get(item)
        return Counter(use["by"]) if use and use["errors"].get(errno) else Counter()
    if category == "ioctl":
        out = Counter()
        for row in fp.ioctl_rows():
            if _ioctl_key(row) == key:
                out.update(row["by"])
        return out
    if category == "kconfig":
        names = _kconfig_syscalls(fp, key) or set()
    else:
        names = {key.split(" ", 1)[0]} if category in ("syscall", "error") else _subsystem_syscalls(fp, key)
    out = Counter()
    for exe, row in fp.executables().items():
        n = sum(row["syscalls"].get(name, 0) for name in names)
        if n:
            out[exe] = n
    return out


@dataclass
class Change:
    kind: str                 # "failed" (the run itself) | "new" | "vanished" | "count"
    category: str
    key: str
    before: tuple[int, int]   # the range the baseline observed (min, max); (0, 0) for new
    after: int
    allowed: tuple[int, int] | None = None   # the widened range a count had to stay in (an optional item's too)
    by: str = ""              # which program(s) made the difference

    @property
    def message(self) -> str:
        lo, hi = self.before
        seen = f"{lo}" if lo == hi else f"{lo}–{hi}"
        if self.kind == "failed":
            return f"run failed: {self.key}"
        band = f"; allowed {self.allowed[0]}–{self.allowed[1]}" if self.allowed else ""
        if self.kind == "new":
            text = f"new {self.category}: {self.key} ({self.after} calls{band})"
        elif self.kind == "vanished":
            text = f"vanished {self.category}: {self.key} (baseline {seen}, now 0{band})"
        else:
            text = f"{self.category} {self.key}: {self.after}, baseline {seen} (allowed {self.allowed[0]}–{self.allowed[1]})"
        return text + (f" — by {self.by}" if self.by else "")


@dataclass
class Diff:
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # informational: versions, arches
    errors: list[str] = field(default_factory=list)  # why nothing could be compared (e.g. no baseline)
    seconds: float = 0.0                              # how long the checked runs took

    @property
    def clean(self) -> bool:
        return not self.changes and not self.errors

    def worst_first(self) -> list["Change"]:
        return sorted(self.changes, key=severity)


# worst first: the run itself failed; then the kernel used something new (what a safety case must cover),
# something vanished, and counts that left their range, the furthest out first
_KIND_RANK = {"failed": 0, "new": 1, "vanished": 2, "count": 3}
_CATEGORY_RANK = {c: i for i, c in enumerate(("run", "subsystem", "device", "ioctl", "module", "network", "program",
                                              "syscall", "error", "device error", "network error", "program error",
                                              "file error", "file"))}


def severity(c: "Change") -> tuple:
    if c.kind == "count" and c.allowed:
        out = c.after - c.allowed[1] if c.after > c.allowed[1] else c.allowed[0] - c.after
        excess = -out / max(c.allowed[1], 1)
    else:
        excess = 0
    return _KIND_RANK.get(c.kind, 9), _CATEGORY_RANK.get(c.category, 9), excess, c.key


def _timing(rules: dict, category: str, key: str) -> bool:
    """Whether ``key``'s count follows timing (the timing band): a timing category or syscall, an error of a
    timing syscall, an error with a timing errno."""
    if category in rules["timing_categories"]:
        return True
    name, errno = key.partition(" ")[0], split_errno(key)[1]    # "openat (i386) EINTR": openat, EINTR
    if category == "syscall":
        return name in rules["timing_syscalls"]
    if category == "error" and name in rules["timing_syscalls"]:
        return True
    return category in ("error", *ITEM_ERRORS) and _timing_errno(rules, errno)


def _comes_and_goes(rules: dict, category: str, key: str) -> bool:
    """Whether ``key`` may appear or vanish with timing: a timing syscall; an error, of a syscall or an item, with a
    timing errno, or of a call whose result is not its own (rt_sigreturn's is the interrupted code's register)."""
    if category == "syscall":
        return _timing(rules, category, key)
    if category != "error" and category not in ITEM_ERRORS:
        return False
    name, errno = key.partition(" ")[0], split_errno(key)[1]
    return _timing_errno(rules, errno) or category == "error" and name in rules["timing_result_syscalls"]


def _timing_errno(rules: dict, errno: str) -> bool:
    # an errno no kernel returns: a footprint of a kprof before 2026-12-07 counted strace's misreading of a task
    # killed at a call's exit (parse/strace_log.py) as an error; its coming and going is timing, not the kernel
    unreal = errno.startswith("errno ") and (errno_number(errno) or 0) > MAX_ERRNO
    return errno in rules["timing_errors"] or unreal


def allowed_range(lo: int, hi: int, timing: bool, rules: dict, allocator: bool = False) -> tuple[int, int]:
    """The observed range widened by the band's margin (relative) and slack (absolute)."""
    band = "timing_" if timing else "allocator_" if allocator else ""
    margin, slack = rules[f"{band}margin"], rules[f"{band}slack"]
    return max(0, math.floor(lo / (1 + margin)) - slack), math.ceil(hi * (1 + margin)) + slack


def _who(base_fp: Footprint | None, now_fp: Footprint | None, category: str, key: str) -> str:
    """The programs whose share of ``key`` changed most (or made it at all, for new/vanished)."""
    before = by_program(base_fp, category, key) if base_fp else Counter()
    after = by_program(now_fp, category, key) if now_fp else Counter()
    if category == "error":
        # a footprint keeps a syscall's errors, not which program got them: the program is named only when it
        # is the one that makes the call at all (the change in its calls says nothing of its errors)
        makers = set(before) | set(after)
        return next(iter(makers)) if len(makers) == 1 else ""
    delta = {exe: after.get(exe, 0) - before.get(exe, 0) for exe in set(before) | set(after)}
    top = sorted((d for d in delta.items() if d[1]), key=lambda kv: -abs(kv[1]))[:3]
    return ", ".join(f"{exe} ({n:+d})" for exe, n in top)


def diff(baseline_runs: list[dict], base_fp: Footprint | None, now: dict, now_fp: Footprint | None,
         rules: dict) -> Diff:
    """Compare the measures of one run (``now``) with those of the baseline's runs."""
    out = Diff()
    ignore = set(rules["ignore"])
    n_runs = len(baseline_runs)
    for cat in CATEGORIES:
        old_baseline = any(cat not in r for r in baseline_runs)
        if (cat in _NEWER or cat == "module") and (old_baseline or cat not in now):
            if now.get(cat) or any(r.get(cat) for r in baseline_runs):
                which = "the baseline" if old_baseline else "the footprint compared"
                out.notes.append(f"{which} has no record of the kernel modules its runs loaded (a footprint.json "
                                 f"alone, or /proc/modules unreadable): modules not compared" if cat == "module" else
                                 f"{which} predates the {cat} measure: {cat} not compared (save it again)")
            continue
        keys = set(now.get(cat, {})).union(*(set(r.get(cat, {})) for r in baseline_runs))
        # a file's errors ("/etc/a ENOENT") are ignored, or optional, with the file ("file:/etc/a", "file")
        of = cat.removesuffix(" error") if cat in ITEM_ERRORS else None
        for key in sorted(keys):
            item = of and f"{of}:{split_errno(key)[0]}"
            if f"{cat}:{key}" in ignore or cat in ignore or item and (item in ignore or of in ignore):
                continue
            seen = [r.get(cat, {}).get(key) for r in baseline_runs]
            present = sum(v is not None for v in seen)
            counts = [v or 0 for v in seen]
            value = now.get(cat, {}).get(key)
            timing = _timing(rules, cat, key)
            # whether timing-dependent syscalls and errors occur at all depends on scheduling (a GC thread's
            # sched_yield, a futex wait cut by a signal); so do a few listed items: their presence is shown
            # as a note, and only their counts can be a regression. An error of a timing-dependent syscall is
            # such only with a timing errno (a futex that fails EINVAL, a write EBADF, is a change, not timing), or
            # when the call's result is not its own (rt_sigreturn's is the interrupted code's register)
            if f"{cat}:{key}" in rules["optional"] or bool(item) and item in rules["optional"]:
                why = "listed as optional"
            elif _comes_and_goes(rules, cat, key):
                why = "timing-dependent"
            else:
                why = None
            if cat in ("kconfig", "subsystem") and why is None:
                # needed, or entered, only through timing-dependent syscalls (futex; the Go runtime's nanosleep
                # is the time subsystem's only call in a client that gives up early): as optional as they are
                find = _kconfig_syscalls if cat == "kconfig" else _subsystem_syscalls
                names = find(now_fp if value is not None else base_fp, key)
                if names and all(_timing(rules, "syscall", n) for n in names):
                    why = "timing-dependent"
            lo, hi = min(counts), max(counts)     # an item absent from some baseline runs counts 0 there
            allocator = cat == "syscall" and key in rules["allocator_syscalls"]
            allowed = allowed_range(lo, hi, timing, rules, allocator)
            if value is None and present == n_runs or value is not None and present == 0:
                change = (Change("vanished", cat, key, (lo, hi), 0) if value is None else
                          Change("new", cat, key, (0, 0), value))
                change.by = _who(base_fp, now_fp, cat, key)
                if why is None:
                    out.changes.append(change)
                elif allowed[0] <= change.after <= allowed[1]:
                    out.notes.append(f"{change.message} ({why}: not a regression)")
                else:
                    # an optional item may come and go, but its count is checked all the same: appearing with
                    # more calls, or vanishing from more, than its band allows is a change
                    change.allowed = allowed
                    out.changes.append(change)
            elif value is not None and not allowed[0] <= value <= allowed[1]:
                out.changes.append(Change("count", cat, key, (lo, hi), value, allowed,
                                          by=_who(base_fp, now_fp, cat, key)))
    return out


def merge(total: Diff, d: Diff) -> None:
    """Add one run's Diff to ``total`` (the runs of one check or comparison): each change and note once."""
    seen = {(c.kind, c.category, c.key) for c in total.changes}
    total.changes += [c for c in d.changes if (c.kind, c.category, c.key) not in seen]
    total.notes += [n for n in d.notes if n not in total.notes]
    total.errors += [e for e in d.errors if e not in total.errors]


def load_comparable(path: Path) -> tuple[list[dict], list[Footprint], dict]:
    """A result bundle, a footprint.json or a baseline file → (measures of each of its runs, the footprint of
    each run (a baseline keeps one, for all its runs), meta)."""
    path = Path(path)
    if path.is_dir():
        from profiler.bundle import FOOTPRINT, Bundle
        bundle = Bundle(path)
        if not (path / FOOTPRINT).is_file():
            raise KprofError(f"{path}: not a result bundle (no {FOOTPRINT})")
        fps = bundle.footprints()
        meta = bundle.read_meta()
        # each run's kernel modules, from meta.json's record of it (run 1 first, as the footprints); a bundle
        # with a run that made no footprint cannot be matched up: its modules are not compared
        records = [r.modules_loaded for r in meta.runs] if meta is not None and len(meta.runs) == len(fps) else []
        runs = [run_measures(fp, rec) for fp, rec in zip(fps, records)] if records else [measures(fp) for fp in fps]
        return runs, fps, {} if meta is None else meta.to_dict()
    if not path.exists():
        raise KprofError(f"{path}: no such file or result bundle")
    check_input(path, "a result bundle, footprint or baseline")
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KprofError(f"{path}: no such file or result bundle") from None
    except (OSError, UnicodeDecodeError) as e:
        raise KprofError(f"{path}: cannot read: {e}") from None
    except (ValueError, RecursionError) as e:
        raise KprofError(f"{path}: not valid JSON ({e or 'nested too deeply'})") from None
    if isinstance(data, dict) and data.get("format") == "kprof-baseline":
        from profiler.baseline import Baseline
        b = Baseline.from_dict(data, str(path))
        return b.runs, [b.footprint] * len(b.runs), b.meta
    fp = Footprint.from_dict(data, str(path))
    return [measures(fp)], [fp], {}
