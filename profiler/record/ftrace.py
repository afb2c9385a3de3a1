"""Record an ftrace trace in kprof's own tracefs instance, streaming ``trace_pipe`` to disk.

What it does, in order:

1. finds tracefs (``/sys/kernel/tracing``, or ``/sys/kernel/debug/tracing``), mounting it when it is not
   mounted (and unmounting it at the end);
2. snapshots the tracing state (every setting file of the global instance, the options, every event's
   enable/filter/trigger, the list of instances) to check at the end that nothing changed;
3. creates ``instances/kprof-<pid>`` — never the global buffer — with its own buffer size, ``trace_clock``
   mono (so timestamps map to wall-clock time, recorded in the metadata) and the chosen events;
4. with a command: starts it held at a gate, restricts the instance to its pid (``set_event_pid`` +
   ``options/event-fork``, so children and threads follow), then opens the gate; without one, traces the
   whole system and leaves kprof's own pid out (``set_event_notrace_pid``);
5. streams ``trace_pipe`` to the output file until the command ends, ``duration`` passes, or Ctrl-C (SIGINT,
   SIGTERM or SIGHUP, from the moment the output is open): the command is stopped (SIGINT, then SIGTERM, then
   SIGKILL), what the buffer still holds is drained, and nothing captured is lost; what the command left
   running (a daemon it started with setsid included: kprof is its subreaper) is killed;
6. always — also after an error, a full disk included — stops tracing, removes the instance, unmounts
   tracefs if it mounted it, and compares the tracing state with the snapshot, file by file (other kprof
   recordings' instances, ``kprof-PID-PIDNS``, are theirs and not part of the comparison).

Written alongside the trace FILE: ``FILE.meta.json`` (kernel release, arch, kernel config source, events,
command and its exit, lost events per CPU, clock mapping, the state check), ``FILE.modules-before`` and
``FILE.modules-during`` (``/proc/modules``; the last snapshot taken while the workload still ran) and
``FILE.config`` (the kernel config, when readable). All are written atomically; FILE must be a regular file
(a link or a device such as /dev/full is refused).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import select
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import profiler
from profiler.errors import KprofError
from profiler.outfiles import write_atomic, write_error
from profiler.kernel import arches
from profiler.kernel import modules as kmodules
from profiler.kernel import syscalls
from profiler.record.core import signal_name
from profiler.record.tracefs import (_lockdown_hint, _mounts, _read, _rmdir_instance, _teardown, _write,
                                      instance_name, mount_tracefs, stale_instances, state_changes, tracing_state)

META_FORMAT = "kprof-ftrace-recording"
SYSCALL_EVENTS = ["raw_syscalls/sys_enter", "raw_syscalls/sys_exit",
                  "sched/sched_process_fork", "sched/sched_process_exec"]



EM = arches.by_elf_machine()      # ELF e_machine -> kprof arch (data/arches.tsv)


def elf_arch(path: str) -> str | None:
    """The ABI of an ELF executable (kprof arch name), following a script's #! line; None if unknown."""
    for _ in range(4):
        try:
            with open(path, "rb") as f:
                head = f.read(256)
        except OSError:
            return None
        if head[:4] == b"\x7fELF":
            bits = 64 if head[4] == 2 else 32
            machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
            name = EM.get(machine)
            if name is not None and arches.bits(name) != bits:   # a 32-bit ELF of a 64-bit machine (riscv32)
                return None
            return name
        if head[:2] != b"#!":
            return None
        parts = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
        if not parts:
            return None
        path = parts[0]
        if os.path.basename(path) == "env" and len(parts) > 1:
            path = shutil.which(parts[1]) or parts[1]
    return None


def analysis_arch(kernel_arch: str, command_arch: str | None) -> str:
    """The ABI to read a recording's syscall numbers with: a 32-bit command on a 64-bit kernel uses the
    compat numbers (raw_syscalls has no ABI field)."""
    return arches.abi_on(kernel_arch, command_arch)


def sidecar(trace: str | Path, what: str) -> Path:
    return Path(f"{trace}.{what}")


def load_meta(trace: str | Path) -> dict | None:
    """The metadata kprof wrote next to a trace it recorded, or None."""
    p = sidecar(trace, "meta.json")
    try:
        with open(p) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        raise KprofError(f"{p}: unreadable recording metadata ({e}); move it away to analyse the trace "
                         f"without it") from None
    if not isinstance(data, dict) or data.get("format") != META_FORMAT:
        raise KprofError(f"{p}: not kprof recording metadata (no \"format\": \"{META_FORMAT}\")")
    return data


# ----------------------------------------------------------------------------- recording

@dataclass
class Recording:
    trace: Path
    meta: dict
    interrupted: bool = False
    timed_out: bool = False
    done: bool = False                    # the caller's ``until`` said the work is done (loop iterations)
    exit: dict | None = None              # the command's end: {"exit": n} or {"signal": name}
    warnings: list[str] = field(default_factory=list)


def _event_paths(root_inst: str, events: str) -> list[str]:
    """'syscalls' | 'all' | comma list of system or system:event (or system/event) → enable file paths."""
    ev = os.path.join(root_inst, "events")
    if events == "all":
        return [os.path.join(ev, "enable")]
    names = SYSCALL_EVENTS if events == "syscalls" else [e.strip().replace(":", "/") for e in events.split(",")
                                                         if e.strip()]
    out = []
    for name in names:
        p = os.path.join(ev, name, "enable")
        if not os.path.exists(p):
            raise KprofError(f"--events: no event '{name.replace('/', ':')}' in this kernel (see "
                             f"{os.path.join(ev, '')} or /sys/kernel/tracing/available_events)")
        out.append(p)
    return out


def _cpu_stats(inst: str) -> dict[str, dict[str, int]]:
    out = {}
    base = os.path.join(inst, "per_cpu")
    try:
        cpus = sorted(os.listdir(base), key=lambda c: int(c[3:]) if c[3:].isdigit() else 0)
    except OSError:
        return out
    for cpu in cpus:
        st = {}
        for ln in _read(os.path.join(base, cpu, "stats")).splitlines():
            k, _, v = ln.partition(":")
            v = v.strip()
            if k in ("overrun", "commit overrun", "dropped events", "entries") and v.isdigit():
                st[k] = int(v)
        out[cpu[3:]] = st
    return out


def _lost(stats: dict) -> dict[str, int]:
    return {cpu: s.get("overrun", 0) + s.get("dropped events", 0) + s.get("commit overrun", 0)
            for cpu, s in stats.items() if s.get("overrun", 0) + s.get("dropped events", 0) + s.get("commit overrun", 0)}


_PROC_PID_INIT_INO = 0xEFFFFFFC     # the initial pid namespace's inode (include/linux/proc_ns.h)


def own_tasks(own_pids=(), command: int | None = None) -> list[int] | None:
    """The tasks a whole-system recording leaves out as kprof's own: every thread of this process, of
    ``own_pids`` (the kprof that forked this one, while it is still running) and of their other descendants
    (services, emulators), the command's tree aside (it was started before, gated, and is the workload).
    None in a pid namespace of its own: tracefs reads the pids written to it as the host's, so these numbers
    would name other tasks (pid 1: the host's init, and with event-fork all it starts)."""
    from profiler.record.core import descendants
    try:
        if os.stat("/proc/self/ns/pid").st_ino != _PROC_PID_INIT_INO:
            return None
    except OSError:
        return None
    procs = set()
    for root in (os.getpid(), *(p for p in own_pids if p == os.getppid())):
        procs.add(root)
        procs.update(descendants(root))
    if command is not None:
        procs.discard(command)
        procs.difference_update(descendants(command))
    tids = []
    for pid in sorted(procs):
        try:
            tids += sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except (OSError, ValueError):
            pass                # ended meanwhile
    return tids


def record_ftrace(out: str | Path, *, events: str = "syscalls", duration: float | None = None,
                  command: list[str] | None = None, discard_tail: float | None = None, buffer_kb: int = 4096,
                  cwd: str | None = None, env: dict | None = None, progress=None,
                  whole_system: bool = False, stop: list | None = None, until=None,
                  own_pids: tuple = ()) -> Recording:
    """Record; see the module docstring. ``progress(elapsed, limit, bytes, lost)`` is called about once a
    second. ``whole_system`` with a command: run the command, but trace every process (kprof's own left out:
    this process's threads and children, ``own_pids``' and theirs, and whatever they start while it records),
    as ELISA did. ``stop``: a list the caller's own signal handler appends to (a Ctrl-C that came while
    the caller set things up, before this function's handlers were installed, is not lost). ``until()``,
    asked about once a second, ends the recording early when it returns true (the command is stopped as at
    the end of ``duration``). Raises
    KprofError for what a user can fix; the tracing state is restored in every case."""
    from profiler import signals

    out = Path(out)
    if command:
        exe = shutil.which(command[0], path=(env or os.environ).get("PATH"))
        if exe is None:
            raise KprofError(f"command not found: {command[0]}")
    if duration is None and not command:
        raise KprofError("give --duration (e.g. 30m) or a command to trace (-- COMMAND ARGS…)")
    # what can be refused (an arch kprof has no tables for, a command it cannot read) is, before anything
    # is created or mounted
    uname = os.uname()
    kernel_arch = syscalls.normalize_arch(uname.machine)
    command_arch = elf_arch(exe) if command else None
    arches = (uname, kernel_arch, command_arch, analysis_arch(kernel_arch, command_arch))
    out_f, existed = _open_output(out)
    # from here on SIGINT, SIGTERM and SIGHUP only ask to stop: set-up and teardown always run whole
    stop = stop if stop is not None else []
    previous = signals.watch(stop)
    try:
        try:
            root, mounted = mount_tracefs()
        except BaseException:
            out_f.close()
            if not existed:
                out.unlink(missing_ok=True)
            raise
        return _record(out, out_f, existed, root, mounted, stop, arches, events=events, duration=duration,
                       command=command, exe=exe if command else None, discard_tail=discard_tail, buffer_kb=buffer_kb, cwd=cwd,
                       env=env, progress=progress, whole_system=whole_system, until=until, own_pids=own_pids)
    finally:
        if stop:
            signals.defer()  # kprof is stopping: later signals are only noted
        else:
            signals.restore(previous)


def _record(out: Path, out_f, existed: bool, root: str, mounted: bool, stop: list, arches: tuple, *, events,
            duration, command, exe, discard_tail, buffer_kb, cwd, env, progress, whole_system=False, until=None,
            own_pids: tuple = ()) -> Recording:
    """The recording proper, tracefs found (or mounted); everything after this point is undone in the end.
    Nothing before the ``try`` below may fail: ``arches`` (uname, kernel's, command's, analysis arch) were
    worked out before tracefs was mounted. ``out_f``: the trace file, not truncated yet; ``existed``: whether it
    did before (a recording refused before it begins leaves an existing trace and its side files as they were)."""
    from profiler.record.core import become_subreaper, reap_orphans

    warnings: list[str] = []
    inst = os.path.join(root, "instances", instance_name())
    uname, kernel_arch, command_arch, analysis = arches
    meta = {
        "format": META_FORMAT, "version": 1, "kprof": profiler.__version__, "complete": False,
        "trace": out.name, "kernel_release": uname.release, "kernel_version": uname.version,
        "machine": uname.machine, "arch": kernel_arch, "command_arch": command_arch,
        "analysis_arch": analysis, "hostname": uname.nodename,
        "python": platform.python_version(), "tracefs": root, "mounted_tracefs": mounted, "kprof_pid": os.getpid(),
        "instance": os.path.basename(inst), "events": events, "buffer_kb": buffer_kb, "trace_clock": "mono",
        "command": command, "cwd": cwd, "whole_system": bool(whole_system or not command),
        "duration_limit_s": duration, "discard_tail_s": discard_tail,
    }
    rec = Recording(out, meta, warnings=warnings)
    child = gate = pipe_fd = before = None
    created = finished = begun = False
    try:
        before = tracing_state(root)
        for name in stale_instances(root):
            err = _rmdir_instance(os.path.join(root, "instances", name))
            warnings.append(f"removed tracefs instance {name} left by a kprof that was killed" if err is None
                            else f"tracefs instance {name} left by a killed kprof could not be removed: {err}")
        if warnings:
            before = tracing_state(root)
        config = kmodules.read_config()
        modules_before, modules_where = kmodules.read_modules()
        meta["kernel_config"] = {"source": config.source, "note": config.note,
                                 "copy": sidecar(out, "config").name if config.readable else None,
                                 "CONFIG_MODULES": config.options.get("CONFIG_MODULES") if config.readable else None}
        meta["modules"] = {"before": sidecar(out, "modules-before").name if modules_before is not None else None,
                           "during": None, "note": None if modules_before is not None else modules_where}
        try:
            os.mkdir(inst)
        except OSError as e:
            raise KprofError(f"cannot create tracefs instance {inst}: {e.strerror}{_lockdown_hint()}") from None
        created = True
        _write(os.path.join(inst, "tracing_on"), "0")
        _write(os.path.join(inst, "buffer_size_kb"), str(buffer_kb))
        _write(os.path.join(inst, "trace_clock"), "mono")
        enables = _event_paths(inst, events)
        # refused by now if it ever is (bad events, a buffer too big): the trace and its side files are written
        out_f.truncate(0)
        begun = True
        if config.readable:
            write_atomic(sidecar(out, "config"), config.text())
        if modules_before is not None:
            _copy_modules(out, "modules-before")
        _write_meta(out, meta)
        if command:
            become_subreaper()  # what the command daemonises (setsid) stays ours to stop
            child, gate = _spawn_gated(exe, command, cwd, env)
            meta["command_pid"] = child
        if command and not whole_system:
            _write(os.path.join(inst, "options", "event-fork"), "1")
            _write(os.path.join(inst, "set_event_pid"), str(child))
        elif not os.path.exists(os.path.join(inst, "set_event_notrace_pid")):
            warnings.append("this kernel has no set_event_notrace_pid: kprof's own reads of trace_pipe are in "
                            "the trace")
        elif (own := own_tasks(own_pids, child)) is None:
            warnings.append("kprof runs in a pid namespace of its own, whose pids tracefs does not read: kprof's "
                            "own tasks are in the trace")
        else:
            # kprof's own tasks, and (event-fork) the threads and processes they start later: a fake
            # Nightscout's request threads, the syslog sink, the pump emulator
            _write(os.path.join(inst, "options", "event-fork"), "1")
            _write(os.path.join(inst, "set_event_notrace_pid"), " ".join(map(str, own)))
        for p in enables:
            _write(p, "1")
        pipe_fd = os.open(os.path.join(inst, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
        meta["started_mono"] = time.clock_gettime(time.CLOCK_MONOTONIC)
        meta["started"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        _write(os.path.join(inst, "tracing_on"), "1")
        start = time.monotonic()
        if gate is not None:
            os.write(gate, b"g")
            os.close(gate)
            gate = None
        try:
            rec.exit, written = _stream(pipe_fd, out_f, inst, child, start, duration, stop, rec, meta, progress,
                                        until)
            _write(os.path.join(inst, "tracing_on"), "0")
            written += _drain(pipe_fd, out_f)
        except OSError as e:   # the trace file cannot take more (a full disk): what it holds is kept
            raise write_error(out, e, "write the trace") from None
        meta["ended_mono"] = time.clock_gettime(time.CLOCK_MONOTONIC)
        meta["duration_s"] = round(time.monotonic() - start, 3)
        meta["bytes"] = written
        stats = _cpu_stats(inst)
        meta["cpu_stats"] = stats
        meta["lost_events"] = _lost(stats)
        if meta["lost_events"]:
            rec.warnings.append("the ring buffer lost events (" + ", ".join(
                f"CPU {c}: {n}" for c, n in meta["lost_events"].items()) + f"); record with a bigger --buffer-kb "
                f"(now {buffer_kb} per CPU) or fewer events")
        finished = True
    finally:
        if gate is not None:
            os.close(gate)
        if child is not None and rec.exit is None:
            rec.exit = _stop_child(child, [signal.SIGKILL])
        if child is not None:
            reap_orphans()  # what the command left running (a setsid daemon included) goes with it
        if pipe_fd is not None:
            os.close(pipe_fd)
        cleanup_errors = _teardown(inst, created)
        changes = state_changes(before, tracing_state(root)) if before is not None else []
        if mounted:
            p = subprocess.run(["umount", root], capture_output=True, text=True)
            if p.returncode != 0 or any(m == root and t == "tracefs" for m, t in _mounts()):
                cleanup_errors.append(f"umount {root}: {(p.stderr or p.stdout).strip() or 'still mounted'}")
        try:
            out_f.close()
        except OSError:
            pass
        meta["tracing_state_restored"] = not changes and not cleanup_errors
        meta["tracing_state_changes"] = changes + cleanup_errors
        if changes or cleanup_errors:
            rec.warnings.append("tracing state NOT restored: " + "; ".join(changes + cleanup_errors))
        meta["exit"] = rec.exit
        meta["interrupted"] = rec.interrupted
        meta["signal"] = stop[0] if stop else None
        meta["timed_out"] = rec.timed_out
        meta["warnings"] = rec.warnings
        meta["complete"] = True
        if not begun and not existed:
            out.unlink(missing_ok=True)
        if begun or changes or cleanup_errors:   # (refused before it began: only a state not restored is said)
            try:
                _write_meta(out, meta)
            except KprofError:
                if finished:  # else the error that stopped the recording is the one to report
                    raise
    return rec


def _write_meta(out: Path, meta: dict) -> None:
    write_atomic(sidecar(out, "meta.json"), json.dumps(meta, indent=1, default=str) + "\n")


def _copy_modules(out: Path, what: str) -> None:
    with open(kmodules.PROC_MODULES, "rb") as f:
        write_atomic(sidecar(out, what), f.read())


def _open_output(out: Path):
    """The trace file, opened for writing without following a link, and whether it existed; a device or other
    non-regular file is refused (the side files are named after it: -o /dev/full would put them in /dev)."""
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise write_error(out, e, "write the trace") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) \
            else "not a regular file"
        raise KprofError(f"{out}: {kind}: give the path of a regular file for the trace (its side files "
                         f"{out.name}.meta.json … go next to it)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # not truncated yet: an existing trace is kept until the recording begins (a typo in --events is refused
        # after this, and loses nothing)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise write_error(out, e, "write the trace") from None
    return os.fdopen(fd, "wb", buffering=0), st is not None  # unbuffered: a full disk shows at the write


_CHILD_ERRORS: dict[int, int] = {}     # child pid → read end of the pipe its exec error would come through


def _spawn_gated(exe: str, command: list[str], cwd: str | None, env: dict | None) -> tuple[int, int]:
    """Fork the command, held before exec until kprof writes to the gate, so its pid can be traced from
    its first instruction. Its last steps in kprof are in the trace: the gate read returning, one execve.
    It gets its own process group, so kprof can stop all of it."""
    r, w = os.pipe()                                   # all close on exec
    err_r, err_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                       # the child: nothing here may return to kprof's code
        try:
            os.close(w)
            os.close(err_r)
            os.close(ready_r)
            os.setpgid(0, 0)
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(s, signal.SIG_DFL)
            if cwd:
                os.chdir(cwd)
            os.write(ready_w, b"r")                    # tracing starts after this: only the gate read and
            if not os.read(r, 1):                      # the execve are the child's own steps in the trace
                os._exit(125)
            os.execve(exe, command, env if env is not None else os.environ)
        except BaseException as e:                     # noqa: BLE001 - report and leave
            try:
                os.write(err_w, f"{command[0]}: {e}".encode())
            finally:
                os._exit(127)
    os.close(r)
    os.close(err_w)
    os.close(ready_w)
    try:
        os.read(ready_r, 1)                            # b"" if the child died first: its exit shows later
    finally:
        os.close(ready_r)
    _CHILD_ERRORS[pid] = err_r
    return pid, w


def _stream(fd, out_f, inst, child, start, duration, stop, rec: Recording, meta, progress, until=None):
    """Copy trace_pipe to the file until the command ends, the time is up, ``until()``, or a stop signal."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    written = 0
    last_tick = start
    end = None
    stopping_at = None
    while True:
        poller.poll(200)
        written += _drain(fd, out_f, limit=64)
        now = time.monotonic()
        if child is not None and end is None:
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid:
                end = {"signal": signal_name(os.WTERMSIG(status))} if os.WIFSIGNALED(status) else \
                    {"exit": os.WEXITSTATUS(status)}
                err = _CHILD_ERRORS.pop(child, None)
                if err is not None:
                    msg = os.read(err, 4096).decode("utf-8", "replace")
                    os.close(err)
                    if msg:
                        rec.warnings.append(f"the command did not start: {msg}")
                break
        if now - last_tick >= 1.0:
            last_tick = now
            snap, _ = kmodules.read_modules()
            if snap is not None and meta["modules"]["before"]:
                _copy_modules(rec.trace, "modules-during")
                meta["modules"]["during"] = sidecar(rec.trace, "modules-during").name
                meta["modules"]["during_at_s"] = round(now - start, 1)
            if progress is not None:
                progress(now - start, duration, written, sum(_lost(_cpu_stats(inst)).values()))
            if until is not None and stopping_at is None and not rec.done:
                rec.done = bool(until())
        over = duration is not None and now - start >= duration
        if (stop or over or rec.done) and stopping_at is None:
            rec.interrupted, rec.timed_out = bool(stop), not stop and not rec.done
            if child is None:
                break
            stopping_at = now
            _signal_group(child, signal.SIGINT)
        elif stopping_at is not None:
            if now - stopping_at > 8:
                _signal_group(child, signal.SIGKILL)
            elif now - stopping_at > 4:
                _signal_group(child, signal.SIGTERM)
    if child is not None:
        _signal_group(child, signal.SIGKILL)          # whatever the command left running in its group
    if end is None and child is not None:
        end = _stop_child(child, [signal.SIGKILL])
    if meta["modules"].get("during") is None and meta["modules"]["before"]:   # shorter than a second
        _copy_modules(rec.trace, "modules-during")
        meta["modules"]["during"] = sidecar(rec.trace, "modules-during").name
        meta["modules"]["during_at_s"] = round(time.monotonic() - start, 1)
    return end, written


def _signal_group(pid: int, sig) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_child(pid: int, sigs) -> dict | None:
    for sig in sigs:
        _signal_group(pid, sig)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return {"signal": signal_name(os.WTERMSIG(status))} if os.WIFSIGNALED(status) else {"exit": os.WEXITSTATUS(status)}


def _drain(fd, out_f, limit: int | None = None) -> int:
    """Read what trace_pipe holds now (non-blocking) into the file."""
    n = 0
    reads = 0
    while limit is None or reads < limit:
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            break
        except InterruptedError:
            continue
        if not data:
            break
        out_f.write(data)
        n += len(data)
        reads += 1
    return n
