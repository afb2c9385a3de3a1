"""Section builders: a model (a Footprint, a run's outcomes, a Diff …) → report sections, facts and warnings.
Each is a plain function of its model, testable without running anything; the commands put what they return
into a Report (profiler.render.model) and a renderer draws it in the format asked for."""
from __future__ import annotations

from collections import Counter

from profiler.footprint import Footprint, program_name
from profiler.kernel.subsystems import subsystem_label
from profiler.kernel import KERNEL_VERSION
from profiler.render.model import Section

# syscalls whose work the tracer cannot see; a footprint using them is incomplete, and says so
BLIND_SPOTS = {
    "io_uring_setup": "io_uring in use: operations submitted through io_uring rings never appear as syscalls",
    "io_uring_enter": "io_uring in use: operations submitted through io_uring rings never appear as syscalls",
}


def footprint_warnings(fp: Footprint) -> list[str]:
    out = sorted({msg for name, msg in BLIND_SPOTS.items() if name in fp.syscalls})
    unknown = [n for n in fp.syscalls if fp.syscall_info(n).subsystem == "unknown"]
    if unknown:
        out.append("no subsystem for: " + ", ".join(
            f"{n} ({fp.syscall_info(n).note or 'not in the kernel tables'})" for n in sorted(unknown)))
    return out


def footprint_facts(fp: Footprint) -> list[tuple[str, str]]:
    return [("arch", fp.arch),
            ("totals", f"{fp.total_calls} syscalls ({fp.total_errors} failed), {fp.executed_syscalls} distinct, "
                       f"{len(fp.subsystem_rows())} subsystems, {len(fp.processes)} processes/threads, "
                       f"{sum(d['calls'] for d in fp.programs.values())} exec calls"
                       + (f"; {fp.total_served} more calls emulated at the syscall boundary (served, not counted)"
                          if fp.total_served else ""))]


def describe_end(end: dict | None) -> str:
    if end is None:
        return "unknown (the trace holds no exit for the first process)"
    if "signal" in end:
        return f"killed by {end['signal']}" + (" (core dumped)" if end.get("core_dumped") else "")
    return f"exit {end['exit']}"


def subsystem_chart(footprints: dict[str, Footprint]) -> dict:
    """Calls per subsystem, one series per footprint (a command, or the whole workload)."""
    return {"title": "Kernel subsystems (calls)",
            "series": {label: {r["subsystem"]: r["calls"] for r in fp.subsystem_rows()}
                       for label, fp in footprints.items()}}


def _errors(counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])) if counter else ""


def _counts(counter, most: int | None = None) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common(most))


def _with_served(calls: int, served: int):
    """A count of calls the kernel executed, with those an emulated device answered beside it (never added)."""
    return f"{calls} (+{served} emulated)" if served else calls


def _handled_by(handler: str | None, subsystem: str) -> str:
    """``drivers/tty/pty.c`` (its subsystem is its directory); ``fs/ioctl.c (fs.io)``."""
    if not handler:
        return subsystem
    return handler if handler.startswith(subsystem + "/") else f"{handler} ({subsystem})"


_DEVICE_CELL = 14


def _devices_cell(paths: list[str]) -> str:
    """The devices an ioctl row reached, within a terminal column: one short path, else their number."""
    if len(paths) == 1 and len(paths[0]) <= _DEVICE_CELL and paths[0].isprintable():
        return paths[0]
    return f"{len(paths)} paths" if paths else ""


def footprint_sections(fp: Footprint, limit: int | None = 40) -> list[Section]:
    """The footprint's tables: subsystems, syscalls, ioctls, devices, network, programs, executables, files."""
    secs = []
    subs = fp.subsystem_rows()
    secs.append(Section("Kernel subsystems", ["subsystem", "calls", "errors", "syscalls"],
                        [[r["subsystem"], r["calls"], r["errors"], " ".join(r["syscalls"])] for r in subs],
                        "An ioctl counts for the subsystem of the code that handles its request "
                        "(the ioctl row below shows fs/ioctl.c, where the call enters)."))
    rows = []
    for name, s in sorted(fp.syscalls.items(), key=lambda kv: (-kv[1].calls, kv[0])):
        info = fp.syscall_info(name)
        where = info.defined_in or info.note or ""
        rows.append([name, info.number if info.number is not None else "", _with_served(s.calls, s.served),
                     _errors(s.errors),
                     f"{s.time * 1000:.2f}", subsystem_label(info.subsystem, info.file), where])
    secs.append(Section("System calls", ["syscall", "nr", "calls", "errors", "time ms", "subsystem",
                                         f"defined in (Linux {KERNEL_VERSION})"], rows))
    io = fp.ioctl_rows()
    if io:
        full = Section("ioctl requests", ["request", "name", "handled by", "subsystem", "device class",
                                          "devices", "calls", "errors"],
                       [[r["request"], r["name"] or "(unknown)", r["handler"] or "", r["subsystem"],
                         r["device_class"], list(r["devices"]), _with_served(r["calls"], r["served"]),
                         _errors(r["errors"])]
                        for r in io])
        full.text = Section(full.title, ["request", "name", "handled by", "class", "devices", "calls", "errors"],
                            [[r["request"], r["name"] or "(unknown)", _handled_by(r["handler"], r["subsystem"]),
                              r["device_class"], _devices_cell(r["devices"]), _with_served(r["calls"], r["served"]),
                              _errors(r["errors"])]
                             for r in io],
                            "handled by (subsystem, when not the file's directory); every device path: "
                            "-f json or html")
        secs.append(full)
    if fp.devices:
        secs.append(Section("Devices and sysfs files behind fds", ["path", "class", "dev", "calls", "syscalls", "by"],
                            [[p, d["class"], d["dev"] or "", d["calls"], _counts(d["syscalls"]), _counts(d["by"], 3)]
                             for p, d in sorted(fp.devices.items(), key=lambda kv: -kv[1]["calls"])]))
    if fp.network:
        secs.append(Section("Network destinations", ["address", "syscalls", "errors", "by"],
                            [[a, _counts(d["syscalls"]), _errors(d["errors"]), _counts(d["by"], 3)]
                             for a, d in sorted(fp.network.items())]))
    runs = fp.program_runs()
    if sum(r["runs"] for r in runs.values()) > 1:
        secs.append(process_tree_section(fp, runs))
    if fp.programs:
        secs.append(Section("Programs executed", ["program", "execs", "errors", "by"],
                            [[p, d["calls"], _errors(d["errors"]), _counts(d["by"], 3)]
                             for p, d in sorted(fp.programs.items())]))
    exes = fp.executables()
    secs.append(Section("Per executable (which program did what)", ["executable", "processes/threads", "calls",
                                                                    "top syscalls"],
                        [[e, d["processes"], d["calls"], _counts(d["syscalls"], 6)]
                         for e, d in sorted(exes.items(), key=lambda kv: -kv[1]["calls"])]))
    by_errno: dict[str, Counter] = {}
    for name, st in fp.syscalls.items():
        for errno, n in st.errors.items():
            by_errno.setdefault(errno, Counter())[name] += n
    secs.append(Section("Errors by errno", ["errno", "calls", "syscalls"],
                        [[e, sum(c.values()), _counts(c)] for e, c in
                         sorted(by_errno.items(), key=lambda kv: -sum(kv[1].values()))]))
    files = sorted(fp.files.items(), key=lambda kv: (-kv[1]["calls"], kv[0]))
    shown = files if limit is None else files[:limit]
    note = None if len(shown) == len(files) else f"{len(files) - len(shown)} more in footprint.json"
    secs.append(Section("Files opened", ["path", "opens", "errors", "by"],
                        [[p, d["calls"], _errors(d["errors"]), _counts(d["by"], 2)] for p, d in shown], note))
    secs.append(kconfig_section(fp))
    return secs


def process_tree_section(fp: Footprint, runs: dict[str, dict]) -> Section:
    """Which programs the command's process tree ran, how often, started by what, and their share of calls."""
    total = fp.total_calls or 1
    rows = [[name, r["runs"], _counts(r["started_by"], 3), r["processes"], r["calls"],
             f"{100 * r['calls'] / total:.1f}", " ".join(sorted(r["paths"]))]
            for name, r in sorted(runs.items(), key=lambda kv: (-kv[1]["runs"], -kv[1]["calls"], kv[0]))]
    n = sum(r["runs"] for r in runs.values())
    return Section("Process tree: programs run", ["program", "runs", "started by", "processes/threads", "calls",
                                                  "% calls", "path"], rows,
                   f"{n} programs started (successful execs; failed PATH probes are under Programs executed); "
                   "calls include a program's forked children that did not exec (a shell's subshells) and "
                   "its threads")


def kconfig_section(fp: Footprint) -> Section:
    """The kernel configuration the footprint needs, grouped by subsystem (``kprof config`` has the detail)."""
    from profiler.kernel import kconfig

    by_sub: dict[str, list] = {}
    for r in kconfig.needed_symbols(fp):
        by_sub.setdefault(kconfig.subsystem_of(r), []).append(r)
    rows = [[sub, ", ".join(r.condition for r in reqs), ", ".join(m for r in reqs for m in kconfig.module_names(r))]
            for sub, reqs in sorted(by_sub.items())]
    return Section(f"Kernel configuration (Linux {KERNEL_VERSION} Kconfig)", ["subsystem", "needs", "can be modules"], rows,
                   "what the kernel must be built with for these syscalls, ioctls and devices; `kprof config RESULT` "
                   "shows why, and --check CONFIG checks a kernel's config")


def device_section(fp: Footprint, path: str) -> Section:
    """The device-level footprint: what was done on one device's fds, apart from the runtime's start-up."""
    d = fp.devices.get(path)
    if d is None:
        return Section(f"Device-level footprint: {path}", [], [], f"the command never used {path}")
    ioctls = [r for r in fp.ioctl_rows() if path in r["devices"]]
    rows = []
    opens = fp.files[path]["calls"] if path in fp.files else 0
    if opens:
        name = "openat" if "openat" in fp.syscalls else "open"
        info = fp.syscall_info(name)
        rows.append([name, opens, "opens of the device path", subsystem_label(info.subsystem, info.file)])
    for name, calls in d["syscalls"].most_common():
        info = fp.syscall_info(name)
        detail, sub = "", subsystem_label(info.subsystem, info.file)
        if name == "ioctl" and ioctls:
            detail = ", ".join(f"{r['name'] or r['request']} {r['calls']} ({r['handler']})" for r in ioctls)
            sub = ", ".join(sorted({r["subsystem"] for r in ioctls}))
        rows.append([name, calls, detail, sub])
    note = (f"{path} is a {d['class']} device ({d['dev']}); the rest of the report includes the "
            "runtime's start-up")
    if sum(r["runs"] for r in fp.program_runs().values()) > 1:
        note += "; summed over every program that used it (per program below)"
    return Section(f"Device-level footprint: {path}", ["syscall", "calls", "detail", "subsystem"], rows, note)


def device_users_section(fp: Footprint, path: str) -> Section | None:
    """Who made the device-level calls: per program, its runs and its calls on the device (None: one run)."""
    d = fp.devices.get(path)
    runs = fp.program_runs()
    if d is None or sum(r["runs"] for r in runs.values()) <= 1:
        return None
    users = Counter()
    for exe, calls in d["by"].items():
        users[program_name(exe)] += calls
    rows = []
    for name, calls in users.most_common():
        n = runs.get(name, {}).get("runs", 0)
        rows.append([name, n, calls, f"{calls / n:.0f}" if n else ""])
    return Section(f"Device-level footprint by program: {path}", ["program", "runs", "calls on the device",
                                                                   "per run"], rows,
                   f"the {sum(users.values())} calls on {path} (opens not included) by the programs that made them")


EMULATED = "emulated at the syscall boundary"
RADIO_FAULTS = {"device-in-use": "set-up: kprof holds an exclusive flock on {device} while the command runs",
                "not-exported": "set-up: the GPIO pins are not exported in the fake /sys/class/gpio"}
_SPIDEV_CODE = {"flock": "fs/locks.c (spidev has no lock handler)", "close": "drivers/spi/spidev.c (spidev_release)"}
_SYSFS_CODE = {"close": "fs/kernfs/file.c (kernfs_fop_release)", "epoll_ctl": "fs/kernfs/file.c (kernfs_fop_poll)",
               "fcntl": "fs/fcntl.c"}


def _handler(device_class: str) -> str:
    """The kernel file a device class's description names (device-classes.tsv: '..., drivers/spi/spidev.c')."""
    from profiler.kernel.devices import device_classes
    return device_classes().get(device_class, "").rsplit(", ", 1)[-1]


def spi_served_text(fp: Footprint, s: dict) -> str:
    served = s.get("served") or {}
    frames = served.get("frames") or {}
    return (f"{fp.total_served} calls {EMULATED} (kept apart from the {fp.total_calls} the kernel executed): "
            f"{served.get('served_ioctls', 0)} ioctls on {s['device']}, {served.get('transfers', 0)} SPI bytes in "
            f"{frames.get('command', 0)} command, {frames.get('data', 0)} data and {frames.get('empty', 0)} empty "
            f"frames, {served.get('resets', 0)} radio resets" + poll_period_text(served))


def poll_period_text(served: dict) -> str:
    """How often the client polled while the emulated radio was busy: the count of empty polls (2 ioctls each)
    follows the emulated latency divided by this period, and the period is the client's 1 ms sleep plus the
    tracer's stops and the scheduler's delays: slower machines and heavier tracers poll less often."""
    empty, latency = (served.get("frames") or {}).get("empty", 0), served.get("latency_s")
    if not empty or not latency:
        return ""
    return (f"; the empty polls: {empty} over {latency:.3f} s of emulated radio latency, one every "
            f"{1000 * latency / empty:.1f} ms (the client sleeps 1 ms between polls; the rest is the tracer's stops "
            f"and scheduling, so the count depends on the machine and the backend)")


def spi_device_section(fp: Footprint, s: dict) -> Section:
    """The device-level footprint of the SPI radio path (spi-radio.md §2, §8.6): the spidev node and the sysfs GPIO
    files, each call named with the kernel code a rig runs for it, and whether it ran here."""
    path = s["device"]
    rows = []
    spidev, gpio = _handler("spi"), _handler("sysfs-gpio")
    opens = fp.files.get(path, {}).get("calls", 0)
    if opens:
        name = "openat" if "openat" in fp.syscalls else "open"
        rows.append([name, opens, path, f"{spidev} (spidev_open)", "ran: the placeholder is a regular file"])
    d = fp.devices.get(path)
    if d is not None:
        for name, calls in d["syscalls"].most_common():
            rows.append([name, calls, path, _SPIDEV_CODE.get(name, spidev), "ran: real semantics on the placeholder"])
        for r in fp.ioctl_rows():
            if path in r["devices"] and r["served"]:
                rows.append(["ioctl", r["served"], f"{r['name'] or r['request']} on {path}",
                             f"{r['handler']} (device class {r['device_class']})",
                             f"**{EMULATED}** (the kernel's spidev and SPI controller code did not run here)"])
    here = "ran on a tmpfs stand-in, counted as executed (the kernel's gpiolib-sysfs code did not run here)"
    for p, use in sorted(fp.files.items()):
        if p.startswith("/sys/class/gpio/"):
            rows.append(["openat", use["calls"], p, "fs/kernfs/file.c (kernfs_fop_open)", here])
            dev = fp.devices.get(p)
            for name, calls in (dev["syscalls"].most_common() if dev else []):
                rows.append([name, calls, p, gpio if name == "write" else _SYSFS_CODE.get(name, "fs/kernfs/file.c"),
                             "ran: the same VFS code as on a rig" if name == "fcntl" else here])
    polled = fp.syscalls["epoll_ctl"].served if "epoll_ctl" in fp.syscalls else 0
    if polled:
        rows.append(["epoll_ctl", polled, "the GPIO files (ADD after each open, DEL before each close)",
                     _SYSFS_CODE["epoll_ctl"], f"**{EMULATED}**: answered 0 as sysfs would (tmpfs says EPERM)"])
    note = (f"{s['board']}. What a rig's kernel runs for each call, and what ran here: the spidev ioctls were "
            f"answered by kprof's emulated radio at the syscall boundary and are counted apart from the calls the "
            f"kernel executed (footprint.json: 'served'); the sysfs GPIO writes ran on a tmpfs stand-in, with Go's "
            f"netpoller registration of each file answered as real sysfs would (tmpfs refuses it with EPERM). The rest of the report includes "
            f"the runtime's start-up.")
    return Section(f"Device-level footprint: {path} (SPI radio)", ["syscall", "calls", "on", "kernel code on a rig",
                                                                    "here"], rows, note)


def variation_section(fps: list[Footprint]) -> Section:
    names = sorted(set().union(*(fp.syscalls for fp in fps)))
    rows = []
    for n in names:
        counts = [fp.syscalls[n].calls if n in fp.syscalls else 0 for fp in fps]
        if min(counts) != max(counts):
            rows.append([n, min(counts), max(counts), " ".join(map(str, counts))])
    return Section(f"Variation across {len(fps)} runs", ["syscall", "min", "max", "per run"], rows,
                   "syscalls whose count differed between runs (the rest were identical)")


def diff_sections(results: list) -> tuple[list[tuple[str, str]], list[str], list[Section]]:
    """``results``: (label, Diff, where) per scenario or comparison → the facts (a one-line summary first, then
    each one's verdict), warnings and sections (each one's changes, worst first) of their report."""
    facts = [("summary", diff_summary([(label, d) for label, d, _ in results]))]
    warnings, sections = [], []
    for label, d, where in results:
        if d.errors:
            verdict = "ERROR: " + "; ".join(d.errors)
        else:
            verdict = "no change" if d.clean else f"{len(d.changes)} change(s)"
        facts.append((label, f"{verdict} — {where}"))
        warnings += [f"{label}: {n}" for n in d.notes]
        if d.changes:
            changes = d.worst_first()
            sections.append(Section(
                f"{label}: what changed", ["change", "kind", "key", "baseline", "now", "allowed", "by (program, Δ calls)"],
                [[c.kind, c.category, c.key, f"{c.before[0]}" if c.before[0] == c.before[1] else f"{c.before[0]}–{c.before[1]}",
                  c.after, f"{c.allowed[0]}–{c.allowed[1]}" if c.allowed else "", c.by] for c in changes],
                row_classes=[c.kind for c in changes]))
    return facts, warnings, sections


def diff_summary(results: list) -> str:
    """One line: how many scenarios were checked and how they came out, the worst named first."""
    errors = [label for label, d in results if d.errors]
    failed = [label for label, d in results if not d.errors and any(c.kind == "failed" for c in d.changes)]
    changed = [label for label, d in results if not d.errors and d.changes and label not in failed]
    clean = len(results) - len(errors) - len(failed) - len(changed)
    parts = [f"{len(errors)} error(s) ({', '.join(errors)})" if errors else "",
             f"{len(failed)} failed run(s) ({', '.join(failed)})" if failed else "",
             f"{len(changed)} changed ({', '.join(changed)})" if changed else "",
             f"{clean} without change" if clean else ""]
    verdict = "FAIL" if errors or failed or changed else "PASS"
    return f"{verdict}: {len(results)} checked: " + ", ".join(p for p in parts if p)
