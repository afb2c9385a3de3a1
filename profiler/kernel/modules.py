"""Kernel modules: what is loaded (``/proc/modules`` or ``lsmod`` output), what the workload loaded compared
with the default system (ELISA's table), and what is built in or loadable according to the kernel config.

ELISA's table, reproduced by :func:`module_table`: one row per module, the use count while the workload
runs and in the default system, with the modules using it in brackets, or "not loaded":

    | module       | workload       | default        |
    | spidev       | 2              | not loaded     |
    | ecdh_generic | 1 (bluetooth)  | 2 (bluetooth)  |

Built in vs loadable: a module in ``/proc/modules`` is loadable by definition. For the rest, the kernel
config says whether loadable modules exist at all (``CONFIG_MODULES``) and how many options are ``=y``
(built in) and ``=m`` (loadable); ``modules.builtin`` (shipped in /lib/modules/RELEASE/) names the
modules built into the kernel. Which CONFIG symbol builds which module is in the kernel's Makefiles, not in
the config; kprof does not guess it and says so.
"""
from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass, field

from profiler.errors import KprofError, check_input

PROC_MODULES = "/proc/modules"


@dataclass(frozen=True)
class Module:
    name: str
    size: int | None
    use_count: int | None        # None when the source shows none ("-" in /proc/modules for some states)
    users: tuple[str, ...] = ()  # modules that use this one
    state: str | None = None     # Live, Loading, Unloading (/proc/modules only)


def parse_modules(text: str, origin: str = "modules") -> dict[str, Module]:
    """``/proc/modules`` text or ``lsmod`` output → name → Module. Raises KprofError on anything else."""
    out: dict[str, Module] = {}
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and lines[0].split()[:3] == ["Module", "Size", "Used"]:        # lsmod
        for n, ln in enumerate(lines[1:], 2):
            parts = ln.split()
            if len(parts) < 3 or not parts[1].isdigit() or not re.fullmatch(r"-?\d+", parts[2]):
                raise KprofError(f"{origin}:{n}: not an lsmod line: {ln.strip()[:120]}")
            users = tuple(u for u in (parts[3].split(",") if len(parts) > 3 else []) if u and u != "[permanent]")
            out[parts[0]] = Module(parts[0], int(parts[1]), int(parts[2]), users)
        return out
    for n, ln in enumerate(lines, 1):                                         # /proc/modules
        parts = ln.split()
        if len(parts) < 5 or not parts[1].isdigit() or not re.fullmatch(r"-?\d+|-", parts[2]):
            raise KprofError(f"{origin}:{n}: neither /proc/modules nor lsmod output: {ln.strip()[:120]}")
        users = tuple(u for u in parts[3].split(",") if u and u != "-" and u != "[permanent]")
        out[parts[0]] = Module(parts[0], int(parts[1]), None if parts[2] == "-" else int(parts[2]), users,
                               parts[4])
    return out


def read_modules(path: str = PROC_MODULES) -> tuple[dict[str, Module] | None, str]:
    """(modules, where) from a file; (None, why) when there is nothing to read, e.g. a kernel without
    loadable module support has no /proc/modules."""
    if path != PROC_MODULES:
        check_input(path, "an lsmod or /proc/modules listing", missing_ok=True)     # (/dev/zero never ends)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        if path == PROC_MODULES:
            return None, ("/proc/modules does not exist: this kernel has no loadable module support "
                          "(CONFIG_MODULES is not set), so every driver it has is built in")
        raise KprofError(f"{path}: no such file") from None
    except OSError as e:
        if path == PROC_MODULES:
            return None, f"/proc/modules cannot be read: {e.strerror}"
        raise KprofError(f"{path}: cannot read: {e.strerror}") from None
    return parse_modules(text, path), path


def use_text(m: Module | None) -> str:
    """ELISA's cell: "2", "1 (bluetooth)", "not loaded"."""
    if m is None:
        return "not loaded"
    count = "?" if m.use_count is None else str(m.use_count)
    return f"{count} ({', '.join(m.users)})" if m.users else count


def module_table(workload: dict[str, Module], default: dict[str, Module]) -> list[list[str]]:
    """Rows [module, workload, default, change] in ELISA's shape; changed modules first."""
    rows = []
    for name in sorted(set(workload) | set(default)):
        w, d = workload.get(name), default.get(name)
        if d is None:
            change = "loaded by the workload"
        elif w is None:
            change = "unloaded while the workload ran"
        elif (w.use_count, w.users) != (d.use_count, d.users):
            change = "use count changed"
        else:
            change = ""
        rows.append([name, use_text(w), use_text(d), change])
    rows.sort(key=lambda r: (r[3] == "", r[0]))
    return rows


# ----------------------------------------------------------------------------- kernel config

@dataclass
class KernelConfig:
    source: str | None                       # where it was read from; None when not readable
    options: dict[str, str] = field(default_factory=dict)   # CONFIG_X → "y" | "m" | value | "n" (is not set)
    note: str | None = None                  # why it could not be read, or other facts

    @property
    def readable(self) -> bool:
        return self.source is not None

    @property
    def modules_supported(self) -> bool | None:
        if not self.readable:
            return None
        return self.options.get("CONFIG_MODULES") == "y"

    def counts(self) -> dict[str, int]:
        vals = list(self.options.values())
        return {"built in (=y)": vals.count("y"), "loadable (=m)": vals.count("m"), "not set": vals.count("n")}

    def text(self) -> str:
        return "".join(f"{k}={v}\n" if v != "n" else f"# {k} is not set\n" for k, v in self.options.items())


def parse_config(text: str) -> dict[str, str]:
    out = {}
    for ln in text.splitlines():
        ln = ln.strip()
        m = re.fullmatch(r"(CONFIG_\w+)=(.*)", ln)
        if m:
            out[m.group(1)] = m.group(2)
            continue
        m = re.fullmatch(r"# (CONFIG_\w+) is not set", ln)
        if m:
            out[m.group(1)] = "n"
    return out


def config_candidates(release: str | None = None) -> list[str]:
    release = release or os.uname().release
    return ["/proc/config.gz", f"/boot/config-{release}", f"/lib/modules/{release}/build/.config",
            f"/usr/src/linux-headers-{release}/.config", f"/lib/modules/{release}/config"]


def read_config(path: str | None = None, release: str | None = None) -> KernelConfig:
    """The kernel config from ``path``, or from the usual places for the running kernel; a KernelConfig
    with ``source=None`` and a note saying plainly where kprof looked when none is readable."""
    paths = [path] if path else config_candidates(release)
    if path:
        check_input(path, "a kernel config", missing_ok=True)
    tried = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            tried.append(f"{p} (missing)")
            if path:
                raise KprofError(f"{p}: no such file") from None
            continue
        except OSError as e:
            tried.append(f"{p} ({e.strerror})")
            if path:
                raise KprofError(f"{p}: cannot read: {e.strerror}") from None
            continue
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as e:
                raise KprofError(f"{p}: damaged gzip data ({e})") from None
        options = parse_config(data.decode("utf-8", "replace"))
        if not options:
            if path:
                raise KprofError(f"{p}: no CONFIG_ lines: not a kernel config")
            tried.append(f"{p} (no CONFIG_ lines)")
            continue
        return KernelConfig(p, options)
    return KernelConfig(None, note="kernel config not readable, so built-in vs loadable is unknown; looked at: "
                                   + ", ".join(tried) + " (enable CONFIG_IKCONFIG_PROC, or install the "
                                   "kernel's config file in /boot)")


def read_builtin(path: str | None = None, release: str | None = None) -> tuple[set[str] | None, str]:
    """Names of the modules built into the kernel, from ``modules.builtin``; (None, why) when not readable."""
    release = release or os.uname().release
    p = path or f"/lib/modules/{release}/modules.builtin"
    if path:
        check_input(path, "a modules.builtin list", missing_ok=True)
    try:
        with open(p, encoding="utf-8", errors="replace") as f:
            names = {os.path.basename(ln.strip())[:-3].replace("-", "_") for ln in f if ln.strip().endswith(".ko")}
    except OSError as e:
        if path:
            raise KprofError(f"{p}: cannot read: {e.strerror}") from None
        return None, f"{p} not readable ({e.strerror})"
    return names, p


def normalise(name: str) -> str:
    """Module names use _ and - interchangeably (the kernel shows _)."""
    return name.replace("-", "_")
