"""A whole-workload trace's settings and the cross-checks made on it: domain code that ``kprof ftrace analyze``,
the alongside view (profiler.alongside) and the workload bundles (profiler.workload) share.

- ``resolve_trace_settings``: the arch, window and root pid of trace files, from the options or from kprof's
  recording metadata (a raw_syscalls trace with neither arch is refused);
- ``check_arch_source``: the backstop when raw syscall numbers show up past the file's head;
- ``ausyscall_rows``: where an ``ausyscall --dump`` file (the table ELISA named syscalls with) and kprof's kernel
  tables disagree.
"""
from __future__ import annotations

from pathlib import Path

from profiler.kernel import KERNEL_VERSION


def resolve_trace_settings(traces, arch: str | None, skip, discard_tail, task_arch=(),
                           options=("--skip", "--discard-tail", "--arch")) -> dict:
    """Arch, window and root pid for trace files: from the options (named ``options`` in messages), else from
    kprof's recording metadata; a raw_syscalls trace with neither arch is refused."""
    from profiler.errors import KprofError
    from profiler.kernel import syscalls
    from profiler.parse.ftrace_text import TaskArch, parse_duration, sniff_raw_syscalls
    from profiler.record.ftrace import load_meta

    metas = [load_meta(t) for t in traces]
    source = "option" if arch else "recording"
    known = [m for m in metas if m]
    arches = {m.get("analysis_arch") or m.get("arch") for m in known}
    if arch:
        arch = syscalls.normalize_arch(arch)
    elif len(arches) > 1:
        raise KprofError(f"the recordings were made on different arches ({', '.join(sorted(arches))}): analyse "
                         f"them one at a time, or give {options[2]}")
    elif arches and len(known) == len(metas):
        arch = arches.pop()
    else:
        unknown = [str(t) for t, m in zip(traces, metas) if not m]
        raw = [t for t in unknown if sniff_raw_syscalls(t)]
        if raw:
            raise KprofError(f"{raw[0]}: raw_syscalls lines carry syscall numbers, and this trace has no record of "
                             f"its architecture (no {raw[0]}.meta.json from kprof ftrace record): give "
                             f"{options[2]} — arm for 32-bit Raspberry Pi OS, aarch64 for 64-bit, arm64-compat for 32-bit programs "
                             f"on a 64-bit kernel, x86_64 for a PC")
        arch = syscalls.host_arch() if not arches else arches.pop()
        source = "host"
    tail = parse_duration(discard_tail, options[1])
    if tail is None:
        tails = {m.get("discard_tail_s") for m in known if m.get("discard_tail_s")}
        tail = max(tails) if tails else None
    roots = [m.get("command_pid") for m in known if m.get("command_pid")]
    return {"arch": arch, "task_arch": TaskArch.parse(arch, task_arch), "skip": parse_duration(skip, options[0]),
            "discard_tail": tail, "root_pid": roots[0] if len(roots) == 1 else None, "metas": metas,
            "arch_source": source, "arch_option": options[2]}


def check_arch_source(settings: dict, res) -> None:
    """Backstop: raw syscall numbers found past the file's head, read with this machine's table."""
    from profiler.errors import KprofError
    if settings["arch_source"] == "host" and "raw_syscalls" in res.formats:
        raise KprofError(f"{', '.join(res.paths)}: raw_syscalls lines carry syscall numbers and the trace has no "
                         f"record of its architecture: give {settings.get('arch_option', '--arch')} (arm, aarch64, "
                         f"arm64-compat, x86_64 …)")


def ausyscall_rows(path: Path, arch: str, used: dict[int, int]) -> tuple[list[list], str, int]:
    """Every number where an 'ausyscall --dump' file and kprof's kernel tables disagree:
    (rows [nr, ausyscall, kernel, calls in the trace], the dump's own table name, numbers compared)."""
    from profiler.errors import KprofError, check_input
    from profiler.kernel import syscalls

    check_input(path, "an 'ausyscall --dump' file")      # (/dev/zero never ends)
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise KprofError(f"{path}: cannot read: {e.strerror}") from None
    dump: dict[int, str] = {}
    table = "?"
    for n, ln in enumerate(text.splitlines(), 1):
        ln = ln.strip()
        if not ln:
            continue
        if ln.startswith("Using ") and ln.endswith("table:"):
            table = ln[6:-len("syscall table:")].strip()
            continue
        parts = ln.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise KprofError(f"{path}:{n}: not an 'ausyscall --dump' line (NUMBER NAME): {ln[:80]}")
        dump[int(parts[0])] = parts[1]
    if not dump:
        raise KprofError(f"{path}: no syscall lines: not an 'ausyscall --dump' file")
    kernel = {syscalls.syscall_number(arch, name): name for name in syscalls.syscall_names(arch)}   # ARM's 0xf0000+ too
    rows = []
    for nr in sorted(set(dump) | set(kernel)):
        theirs, ours = dump.get(nr), kernel.get(nr)
        if theirs is not None and ours is not None and syscalls.canonical_name(arch, theirs) == ours:
            continue
        rows.append([nr, theirs or "(none)", ours or "(none)", used.get(nr, 0) or "", _aus_note(theirs, ours, arch)])
    rows.sort(key=lambda r: (r[3] == "", r[0]))
    return rows, table, len(set(dump) | set(kernel))


def _aus_note(theirs: str | None, ours: str | None, arch: str) -> str:
    if theirs is None:
        return "missing from the ausyscall table (a name from it would be '??' or wrong)"
    if ours is None:
        return ("not in the kernel's EABI table (OABI only, or gone)" if arch == "arm"
                else f"not in the Linux {KERNEL_VERSION} table")
    t, o = theirs.lstrip("_"), ours.lstrip("_")
    if t == o or o.endswith("_" + t) or o in (t + "64", t + "32") or t in (o + "64", o + "32"):
        return "same call, other spelling"
    return "a different call: the ausyscall name is wrong for this number"
