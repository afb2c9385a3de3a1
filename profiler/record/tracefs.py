"""The tracefs side of an ftrace recording: finding or mounting tracefs, kprof's own instance (created, torn
down, stale ones of dead kprof processes found), and the snapshot of the tracing state that a recording must
leave as it found it (every setting file of the global instance, options, events, instances), compared file
by file. ``profiler.record.ftrace`` drives a recording with these."""
from __future__ import annotations

import errno
import os
import re
import subprocess
import time

from profiler.errors import KprofError
from profiler.libc import own_mount_namespace

TRACEFS_MOUNTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

# top-level files that are not settings (they change by themselves, are huge, or block when read)
_NOT_STATE = {"trace", "trace_pipe", "trace_marker", "trace_marker_raw", "free_buffer", "README", "snapshot",
              "available_events", "available_tracers", "available_filter_functions",
              "available_filter_functions_addrs", "touched_functions", "enabled_functions",
              "dyn_ftrace_total_info", "printk_formats", "saved_cmdlines", "saved_tgids", "trace_stat",
              "uprobe_profile", "kprobe_profile", "per_cpu", "events", "options", "instances", "hwlat_detector",
              "osnoise", "rv", "stack_trace", "stack_trace_filter", "stack_max_size", "function_profile_enabled",
              "set_graph_function", "set_graph_notrace", "max_graph_depth", "timerlat_period_us"}


# ----------------------------------------------------------------------------- tracefs

def _mounts() -> list[tuple[str, str]]:
    try:
        with open("/proc/mounts") as f:
            return [(ln.split()[1], ln.split()[2]) for ln in f if len(ln.split()) > 2]
    except OSError:
        return []


def find_tracefs() -> str | None:
    """Where tracefs is mounted, or None; KprofError when it is mounted but this user cannot read it."""
    for mnt, fstype in _mounts():
        if fstype == "tracefs" and not os.access(mnt, os.R_OK | os.X_OK):
            raise KprofError(f"tracefs is mounted at {mnt} but this user (uid {os.geteuid()}) cannot read it: "
                             f"run kprof ftrace record as root")
        if fstype == "tracefs" and os.path.isdir(os.path.join(mnt, "instances")):
            return mnt
    for mnt, fstype in _mounts():
        if fstype == "debugfs" and os.path.isdir(os.path.join(mnt, "tracing", "instances")):
            return os.path.join(mnt, "tracing")
    return None


def mount_tracefs() -> tuple[str, bool]:
    """(tracefs path, whether kprof mounted it). KprofError naming the reason when it cannot."""
    found = find_tracefs()
    if found:
        return found, False
    if os.geteuid() != 0:
        raise KprofError("tracefs is not mounted and only root can mount it: run kprof ftrace record as root "
                         "(or mount it: mount -t tracefs nodev /sys/kernel/tracing)")
    target = TRACEFS_MOUNTS[0]
    if not os.path.isdir(target):
        raise KprofError(f"{target} does not exist: this kernel has no tracefs (CONFIG_TRACING not set?)")
    try:
        # mounted in a mount namespace of kprof's own, tracefs is never left mounted on the host: not by a
        # kprof that is killed, nor by two recordings at once (the first one's umount found the second's
        # files open and failed, the second had not mounted it and left it)
        own_mount_namespace()
    except OSError:
        pass                    # (a process with threads: mounted where kprof runs, unmounted at the end)
    p = subprocess.run(["mount", "-t", "tracefs", "nodev", target], capture_output=True, text=True)
    if p.returncode != 0 or find_tracefs() != target:
        raise KprofError(f"cannot mount tracefs at {target}: {(p.stderr or p.stdout).strip() or 'mount failed'}"
                         f"{_lockdown_hint()}")
    return target, True


def _lockdown_hint() -> str:
    try:
        with open("/sys/kernel/security/lockdown") as f:
            state = f.read().strip()
    except OSError:
        return ""
    return f" (kernel lockdown: {state}; 'confidentiality' forbids tracing)" if "[none]" not in state else ""


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError as e:
        return f"<unreadable: {errno.errorcode.get(e.errno, e.errno)}>"


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise KprofError(f"cannot write '{value.strip()}' to {path}: {e.strerror}{_lockdown_hint()}") from None


def tracing_state(root: str) -> dict[str, str]:
    """Every tracing setting, file by file: global settings, options, the instances that exist, and each
    event's enable, filter and trigger. Two snapshots are equal when kprof left tracing as it found it."""
    state: dict[str, str] = {}
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name)
        if name not in _NOT_STATE and os.path.isfile(p):
            state[name] = _read(p)
    opts = os.path.join(root, "options")
    if os.path.isdir(opts):
        for name in sorted(os.listdir(opts)):
            state[f"options/{name}"] = _read(os.path.join(opts, name))
    inst = os.path.join(root, "instances")
    if os.path.isdir(inst):  # another kprof's recording (running now, or in another pid namespace) is its own
        state["instances/"] = " ".join(sorted(n for n in os.listdir(inst)
                                              if n == instance_name() or not _KPROF_INSTANCE.fullmatch(n)))
    ev = os.path.join(root, "events")
    if os.path.isdir(ev):
        state["events/enable"] = _read(os.path.join(ev, "enable"))
        for system in sorted(os.listdir(ev)):
            sp = os.path.join(ev, system)
            if not os.path.isdir(sp):
                continue
            for name in sorted(os.listdir(sp)):
                p = os.path.join(sp, name)
                if name == "enable":
                    state[f"events/{system}/enable"] = _read(p)
                elif os.path.isdir(p):
                    for f in ("enable", "filter", "trigger"):
                        fp = os.path.join(p, f)
                        if os.path.exists(fp):
                            state[f"events/{system}/{name}/{f}"] = _read(fp)
    return state


def state_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    out = []
    for k in sorted(set(before) | set(after)):
        a, b = before.get(k), after.get(k)
        if a != b:
            out.append(f"{k}: {_short(a)} -> {_short(b)}")
    return out


def _short(v) -> str:
    if v is None:
        return "(absent)"
    v = v.strip().replace("\n", "\\n")
    return repr(v[:80] + ("…" if len(v) > 80 else ""))


_KPROF_INSTANCE = re.compile(r"kprof-(\d+)(?:-(\d+))?")   # kprof-PID-PIDNS (older kprof: kprof-PID)


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def instance_name() -> str:
    """This recording's tracefs instance: kprof-PID-PIDNS, so a kprof in another pid namespace (a container)
    can tell it is not its own to judge."""
    return f"kprof-{os.getpid()}-{_pid_namespace()}"


def stale_instances(root: str) -> list[str]:
    """kprof instances left by a kprof that was killed (SIGKILL, power loss): in this pid namespace, and
    their pid is gone. One from another pid namespace is left alone (its pid means nothing here)."""
    out = []
    try:
        names = os.listdir(os.path.join(root, "instances"))
    except OSError:
        return out
    ns = str(_pid_namespace())
    for name in names:
        m = _KPROF_INSTANCE.fullmatch(name)
        if m and m.group(2) in (None, ns) and not os.path.exists(f"/proc/{m.group(1)}"):
            out.append(name)
    return out


def _rmdir_instance(path: str) -> str | None:
    """Remove an instance, retrying while the kernel still holds it busy; None or the error."""
    for _ in range(50):
        try:
            os.rmdir(path)
            return None
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno != errno.EBUSY:
                return f"{path}: {e.strerror}"
            time.sleep(0.1)
    return f"{path}: still busy"




def _teardown(inst: str, created: bool) -> list[str]:
    """Stop the instance and remove it; every step is tried whatever failed before."""
    errors = []
    if not created or not os.path.isdir(inst):
        return errors
    for name, value in (("tracing_on", "0"), ("events/enable", "0"), ("set_event_pid", ""),
                        ("set_event_notrace_pid", ""), ("options/event-fork", "0")):
        p = os.path.join(inst, name)
        if os.path.exists(p):
            try:
                with open(p, "w") as f:
                    f.write(value if value else "\n")
            except OSError as e:
                if name not in ("set_event_pid", "set_event_notrace_pid"):
                    errors.append(f"{p}: {e.strerror}")
    err = _rmdir_instance(inst)
    if err:
        errors.append(err)
    return errors
