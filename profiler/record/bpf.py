"""Run a command under ``bpftrace``: the footprint counted in the kernel, handed over once at the end.

The third recorder, for when a tracer's cost changes what is measured (strace stops a command twice per
syscall; a 1 ms polling loop then makes a different number of empty reads). kprof generates a bpftrace
program (Debian's bpftrace, no BPF loader of kprof's own) that

- follows the command's process tree: it starts counting at the command's own ``execve`` (the command is
  started gated: it waits, forked, until bpftrace has attached every probe, so nothing is missed), and
  ``sched_process_fork`` / ``sched_process_exit`` add and end its children and threads (exit status or
  killing signal from the task's ``exit_code``), and ``sched_process_exec`` carries an exec made by a thread other
  than the leader over to the leader's pid, where the kernel goes on with it (as strace shows it);
- counts per task, program image (each successful execve starts one), syscall and errno: calls, calls that
  returned, nanoseconds in the call (``raw_syscalls`` enter/exit);
- keeps what the footprint reads: the path argument of open/exec/chdir calls, the sockaddr of
  connect/bind/sendto, the ioctl request, and for calls on an fd that is a device, a sysfs file, or the
  target of an ioctl, what is behind the fd, read from the task's fd table in the kernel (type, device
  number, filesystem, socket family/type/protocol, the path it was opened by);
- prints its maps once, at the end (``-f json``): no per-syscall stream reaches user space.

What it cannot see that strace can (said in every report, see ``LIMITS``): argument detail beyond those
fields; paths are the call's argument (resolved to what strace's ``-yy`` shows after the run, in the
command's mount namespace), at most ``STRLEN - 1`` bytes, and a path in user memory not yet paged in
reads as empty; no fault injection; no strace ``-C`` summary to cross-check against.

The bundle keeps the raw aggregates (``trace.bpf.json``); ``events`` turns them into counted events, which
``profiler.analysis.BpfAnalysis`` feeds to the one ``FootprintBuilder`` (the recorder builds no footprint).

Longer than ~600 lines because about 180 of them are the bpftrace program itself (one
f-string in ``program``, read best whole, next to the map layouts that ``parse_output``, ``resolve`` and
``events`` decode); what the recorders share is in ``record.core``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time

from profiler.errors import KprofError
from profiler.events import Fd, ProcessEvent, SyscallEvent
from profiler.kernel import syscalls
from profiler.kernel.errnos import MAX_ERRNO
from profiler.record import btf
from profiler.record.core import TraceOutcome, become_subreaper, kill_tree, reap_zombies, signal_name, wait_tree

FORMAT = "kprof-bpf-aggregates"
TRACE_NAME = "trace.bpf.json"
STRLEN = 200          # bytes of a path (BPFTRACE_STRLEN; bpftrace 0.17's largest)
MAP_KEYS = 65536      # entries per map (BPFTRACE_MAP_KEYS_MAX): a full map would drop counts, so it is checked
_READY_WAIT = 60.0    # seconds bpftrace may take to compile and attach (LLVM on a loaded 2-core machine)

LIMITS = ("bpf backend: counts come from the kernel (bpftrace); what strace shows and it does not: argument "
          f"detail beyond paths, addresses, ioctl requests and fds; paths longer than {STRLEN - 1} bytes are "
          "cut, and a path in memory not yet paged in reads as empty; opened paths are resolved (symlinks, "
          "relative to the cwd) after the run, not at the call, and one through /proc/self, /dev/fd or /dev/std* "
          "is not followed; no strace -C cross-check")

_SYSFS_MAGIC, _PIPEFS_MAGIC, _ANON_MAGIC = 0x62656572, 0x50495045, 0x09041934
_SIGKILL = 9               # its bit (SIGKILL - 1) in a task's pending set: the kernel's fatal_signal_pending()
_TS_COMPAT = 0x0002        # x86's thread_info.status bit of a task in a 32-bit syscall (in_ia32_syscall())
_CGROUP_MAGICS = (0x27E0EB, 0x63677270)   # cgroup v1, v2: mounted under /sys/fs/cgroup (sysfs by path)
_S_IFCHR, _S_IFBLK, _S_IFLNK, _S_IFSOCK = 2, 6, 10, 12    # i_mode >> 12
OPENED_LINK = 1 << 15      # in an open's packed key: it opened a symbolic link itself (O_PATH|O_NOFOLLOW)
_AT_FDCWD = -100
# syscall groups and argument positions from the kernel data (sorted: the bpftrace program is the same each run)
_OPENS = {n: i for n in sorted(syscalls.syscall_group("open")) if (i := syscalls.path_arg(n)) is not None}
_EXECS = {n: syscalls.path_arg(n) for n in sorted(syscalls.syscall_group("exec"))}
_ADDRESSED = {n: (i, i + 1) for n in sorted(syscalls.syscall_group("addressed"))
              if (i := syscalls.sockaddr_arg(n)) is not None}   # (sockaddr, its length)
_FORKS = syscalls.syscall_group("fork")


# ---- availability ---------------------------------------------------------------------------------

def bpftrace_path() -> str:
    """bpftrace, root and BTF, or one clear error naming what is missing (never a fallback to another tracer)."""
    path = shutil.which("bpftrace")
    if path is None:
        raise KprofError("the bpf backend needs bpftrace, which is not installed (or not on PATH): install it "
                         "with 'apt-get install bpftrace', or use --backend strace")
    if os.geteuid() != 0:
        raise KprofError("the bpf backend needs root (loading BPF programs needs CAP_BPF and CAP_PERFMON): run "
                         "kprof as root, or use --backend strace")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        raise KprofError("the bpf backend needs a kernel with BPF and BTF type information (CONFIG_BPF_SYSCALL, "
                         "CONFIG_BPF_EVENTS, CONFIG_DEBUG_INFO_BTF; /sys/kernel/btf/vmlinux is missing): use "
                         "--backend strace")
    return path


# ---- the program ------------------------------------------------------------------------------------

def _numbers(arch: str, names) -> list[int]:
    return sorted({n for n in (syscalls.syscall_number(arch, name) for name in names) if n is not None})


def _any(var: str, numbers: list[int]) -> str:
    return " || ".join(f"{var} == {n}" for n in numbers) or "0"


def fd_first_syscalls() -> list[str]:
    """Syscalls whose first argument is an fd: the one table of argument kinds (kernel data, as ptrace's)."""
    return [name for name, kinds in syscalls.arg_kinds().items() if kinds.startswith("f") and name not in _OPENS
            and name not in _EXECS]


def _loader(layout: btf.Layout):
    """``ld(base, "struct.field")`` → a bpftrace load of that kernel field at its offset in this kernel."""
    def ld(base: str, path: str) -> str:
        off, size, signed = layout.field(path)
        return f"*({'' if signed else 'u'}int{8 * size} *)kptr((uint64)({base}) + {off})"
    return ld


def program(root: int, arch: str, layout: btf.Layout) -> str:
    """The bpftrace program for a command whose gated process is ``root`` (it starts counting at its execve).
    Kernel fields are read at this kernel's offsets (``layout``, record.btf), never through bpftrace's types."""
    nr = lambda name: syscalls.syscall_number(arch, name)  # noqa: E731
    ld = _loader(layout)
    fdt = ld(ld("curtask", "task_struct.files"), "files_struct.fdt")
    max_fds, fd_array = ld("$fdt", "fdtable.max_fds"), ld("$fdt", "fdtable.fd")
    ptr = layout.pointer

    def slot(fd: str) -> str:       # the struct file * in the fd table's slot ``fd``
        return f"*(uint{8 * ptr} *)kptr({fd_array} + (uint64){fd} * {ptr})"
    execve, execveat = nr("execve"), nr("execveat") or -1
    fd_first = _numbers(arch, fd_first_syscalls())
    opens_at = _numbers(arch, [n for n, i in _OPENS.items() if i == 1])
    opens_cwd = _numbers(arch, [n for n, i in _OPENS.items() if i == 0] + ["execve", "chdir"])
    addressed = "\n".join(
        f"    if ($id == {nr(name)}{' && $a4 != 0' if name == 'sendto' else ''}) "
        f"{{ $sa = $a{a}; $salen = $a{ln}; $addr = 1; }}"
        for name, (a, ln) in _ADDRESSED.items() if nr(name) is not None)
    fdsys = " ".join(f"@fdsys[{n}] = 1;" for n in fd_first)
    # a 32-bit task's numbers are its own ABI's, which the counts are not read with: such tasks are named, and
    # the run fails (events() names every call with the host's table)
    compat = (f"if ({ld('curtask', 'task_struct.thread_info.status')} & {_TS_COMPAT}) {{ @compat[tid] = 1; }}"
              if arch == "x86_64" else "")
    ioctl = nr("ioctl")
    return f"""
// counts are plain maps added to in place, not count() or sum(): each key begins with the tid whose syscall
// probe updates it, and a task runs on one CPU at a time, so no update is lost; bpftrace makes count() and
// sum() maps per-CPU, which cost ~0.4 s of kernel time per run to allocate and free at MAP_KEYS entries each.
// Few probes, each doing its parts in the order they depend on each other: the kernel waits ~25 ms for every
// BPF program it detaches (one per probe) when bpftrace stops, and 19 probes made every run ~0.5 s longer.
BEGIN {{ {fdsys} printf("READY\\n"); }}

tracepoint:raw_syscalls:sys_enter /@traced[tid] || tid == {root}/ {{
  // every argument read first, unconditionally: the verifier refuses ctx reads LLVM merges across branches
  $id = args->id; $a0 = args->args[0]; $a1 = args->args[1]; $a2 = args->args[2]; $a4 = args->args[4];
  $a5 = args->args[5];
  if (@traced[tid] || $id == {execve}) {{
    @traced[tid] = 1;
    $g = @gen[tid];
    @eid[tid] = $id; @eg[tid] = $g; @inflight[tid] = 1; @t0[tid] = nsecs;
    @ent[tid, $g, $id]++;
  }}
  if (@traced[tid]) {{
    {compat}
    // a directory fd: the struct file behind it stands for the fd (its path is in @fpath when kprof saw it opened)
    if ({_any('$id', opens_at)} || $id == {execveat}) {{
      @darg[tid] = (int64)$a0; @sptr[tid] = $a1;
      $dfd = (int32)$a0;
      $fdt = {fdt};
      @dino[tid] = 0;
      if ($dfd >= 0 && $dfd < (int64){max_fds}) {{
        $df = {slot('$dfd')};
        @darg[tid] = (int64)$df;
        @dino[tid] = $df != 0 ? {ld("$df", "file.f_inode")} : 0;
      }}
    }}
    if ({_any('$id', opens_cwd)}) {{
      @darg[tid] = {_AT_FDCWD}; @dino[tid] = 0; @sptr[tid] = $a0;
    }}
    // an exec's path is gone from memory when a successful exec returns: kept at entry, one entry per exec call
    if ($id == {execve} || $id == {execveat}) {{
      @xseq[tid] = @xseq[tid] + 1;
      @xpath[tid, @xseq[tid]] = str($id == {execve} ? $a0 : $a1);
    }}
    $addr = 0; $sa = (uint64)0; $salen = (uint64)0;
{addressed}
    if ($addr) {{
      $fam = *(uint16 *)uptr($sa);
      @safam[tid] = $fam | ($salen << 16); @saport[tid] = 0; @saa[tid] = 0; @sab[tid] = 0;
      if ($fam == 2) {{ @saport[tid] = *(uint16 *)uptr($sa + 2); @saa[tid] = *(uint32 *)uptr($sa + 4); }}
      if ($fam == 10) {{
        @saport[tid] = *(uint16 *)uptr($sa + 2); @saa[tid] = *(uint64 *)uptr($sa + 8);
        @sab[tid] = *(uint64 *)uptr($sa + 16);
      }}
      $off = (uint64)2;
      if ($fam == 1 && $salen > 2 && *(uint8 *)uptr($sa + 2) == 0) {{ @saa[tid] = 1; $off = 3; }}
      if ($fam == 1 && $salen <= 2) {{ $off = 0; }}
      @saptr[tid] = ($fam != 1 || $off == 0) ? 0 : $sa + $off;   // the unix path is read at exit, into the key
      @saset[tid] = 1;
    }}
    if (@fdsys[$id]) {{
      $fd = (int64)$a0;
      $fdt = {fdt};
      if ($fd >= 0 && $fd < (int64){max_fds}) {{
        $f = {slot('$fd')};
        if ($f != 0) {{
          $ino = {ld("$f", "file.f_inode")};
          $mode = {ld("$ino", "inode.i_mode")} >> 12;
          $magic = {ld(ld("$ino", "inode.i_sb"), "super_block.s_magic")};
          if ($id == {ioctl} || $mode == {_S_IFCHR} || $mode == {_S_IFBLK} || $magic == {_SYSFS_MAGIC}
              || $magic == {_CGROUP_MAGICS[0]} || $magic == {_CGROUP_MAGICS[1]}) {{
            $sock = (uint64)0;
            if ($mode == {_S_IFSOCK}) {{
              $sk = {ld(ld("$f", "file.private_data"), "socket.sk")};
              $sock = ((uint64){ld("$sk", "sock.__sk_common.skc_family")} << 16) | ((uint64){ld("$sk", "sock.sk_type")} << 8)
                      | {ld("$sk", "sock.sk_protocol")};
            }}
            $req = $id == {ioctl} ? ($a1 & 0xffffffff) : 0;
            // packed, so the exit probe's map key stays small: (device number, request), (type, fs, socket)
            @fk[tid] = 1;
            @fkdev[tid] = ((uint64){ld("$ino", "inode.i_rdev")} << 32) | $req;
            @fkkind[tid] = (uint64)$mode | ((uint64)$magic << 32) | ($sock << 4);
            @fkopened[tid] = @fpathset[(uint64)$f, (uint64)$ino];
            @fkfile[tid] = (uint64)$f; @fkinode[tid] = (uint64)$ino;
          }}
        }}
      }}
    }}
    if (@fk[tid]) {{
      $d = {ld("@fkfile[tid]", "file.f_path.dentry")};
      @fkdentry[tid] = $d;
      @dname[$d] = str(kptr({ld("$d", "dentry.d_name.name")}));
    }}
  }}
}}

// the exit side in four probes, each within the BPF stack (512 bytes): one path or address string each
tracepoint:raw_syscalls:sys_exit /@inflight[tid]/ {{
  $ret = args->ret;
  $id = @eid[tid];
  $g = @eg[tid];
  $err = ($ret < 0 && $ret >= -{MAX_ERRNO}) ? -$ret : 0;
  // SIGKILL pending (the task is being killed: a kill, a sibling's exit_group or execve): the result never reaches
  // the task, and ptrace stops no more (strace shows "= ?"): a call that never returned, as strace counts it
  if (({ld("curtask", "task_struct.pending.signal.sig")} >> {_SIGKILL - 1}) & 1) {{
    delete(@inflight[tid]); delete(@saset[tid]); delete(@fk[tid]);
  }} else {{
    @ret[tid, $g, $id, $err]++;
    @tns[tid, $g, $id] += nsecs - @t0[tid];
    @eerr[tid] = $err;
    if ({_any('$id', opens_at + _numbers(arch, [n for n, i in _OPENS.items() if i == 0]))}) {{
      $link = (uint64)0;
      if ($err == 0) {{
        $fdt = {fdt};
        if ($ret < (int64){max_fds}) {{
          $f = {slot('$ret')};
          if ($f != 0) {{
            $ino = {ld("$f", "file.f_inode")};
            @fpathset[$f, $ino] = 1; @fpending[tid] = $f;
            // this open named a symbolic link itself (O_PATH|O_NOFOLLOW): its path is not followed when resolved
            if (({ld("$ino", "inode.i_mode")} >> 12) == {_S_IFLNK}) {{ $link = {OPENED_LINK}; }}
          }}
        }}
      }}
      // packed key (a small key keeps the probe within the BPF stack):
      // gen << 48 | cwd gen << 32 | nr << 16 | opened a link itself << 15 | errno
      $k = ($g << 48) | (@cwdg[tid] << 32) | ($id << 16) | $link | $err;
      @opens[tid, $k, @darg[tid], @dino[tid], str(uptr(@sptr[tid]))]++;
    }}
  }}
}}

tracepoint:raw_syscalls:sys_exit /@fpending[tid]/ {{
  $f = @fpending[tid];
  $ino = {ld("$f", "file.f_inode")};
  @fpath[$f, $ino] = str(uptr(@sptr[tid]));
  // what a relative path was relative to: a directory fd's struct file and inode, or the cwd (AT_FDCWD) of a task
  @fpdir[$f, $ino] = @darg[tid];
  @fpino[$f, $ino] = @dino[tid];
  @fpcwd[$f, $ino] = ((uint64)tid << 16) | @cwdg[tid];
  delete(@fpending[tid]);
}}

tracepoint:raw_syscalls:sys_exit /@inflight[tid]/ {{
  $ret = args->ret;
  $id = @eid[tid];
  if ($id == {execve} || $id == {execveat}) {{
    $k = (@eg[tid] << 48) | ($id << 16) | @eerr[tid];
    @execs[tid, $k, @darg[tid], @xseq[tid]]++;
    if ($ret == 0) {{ @gen[tid] = @eg[tid] + 1; }}
  }}
  if ($id == {nr('chdir') or -1} && $ret == 0) {{
    @cwdg[tid] = @cwdg[tid] + 1;
    @chdirs[tid, @cwdg[tid], str(uptr(@sptr[tid]))]++;
  }}
}}

tracepoint:raw_syscalls:sys_exit /@inflight[tid]/ {{
  if (@saset[tid]) {{
    $k = (@eg[tid] << 48) | (@eid[tid] << 16) | @eerr[tid];
    $p = @saptr[tid];
    // (bpftrace sign-extends a uint16 load: port 443's low byte 0xbb wiped out the family and length bits)
    @addrs[tid, $k, (@safam[tid] << 16) | (@saport[tid] & 0xffff), @saa[tid], @sab[tid], $p ? str(uptr($p)) : ""]++;
    delete(@saset[tid]);
  }}
  if (@fk[tid]) {{
    @fduse[tid, @eg[tid], @eid[tid], @eerr[tid], @fkdev[tid], @fkkind[tid], @fkopened[tid] ? @fkfile[tid] : 0,
           @fkinode[tid], @fkdentry[tid]]++;
    delete(@fk[tid]);
  }}
  delete(@inflight[tid]);
}}

tracepoint:sched:sched_process_fork /@traced[args->parent_pid]/ {{
  $c = args->child_pid;
  $p = args->parent_pid;
  @traced[$c] = 1; @gen[$c] = 0; @cwdg[$c] = 0;
  @forks[$p, @gen[$p], $c, @cwdg[$p]] = 1;
}}

// a thread other than the leader that execs takes over the leader's pid (the kernel has ended the leader and the
// other threads by then): its call returns under that pid, in the process's image, as strace reports it. Only this
// task can touch either pid's keys now (the old one is gone with the exec)
tracepoint:sched:sched_process_exec /args->pid != args->old_pid && @traced[args->old_pid]/ {{
  $o = args->old_pid; $p = args->pid;
  $id = @eid[$o]; $og = @eg[$o]; $g = @gen[$p];
  if (@ent[$o, $og, $id] <= 1) {{ delete(@ent[$o, $og, $id]); }} else {{ @ent[$o, $og, $id] -= 1; }}
  @ent[$p, $g, $id]++;
  @traced[$p] = 1; @eid[$p] = $id; @eg[$p] = $g; @inflight[$p] = 1; @t0[$p] = @t0[$o]; @darg[$p] = @darg[$o];
  // the exec's path stays where its entry kept it (copying a string here overflows the BPF stack)
  @xseq[$p] = @xseq[$p] + 1;
  @xmoved[$p, @xseq[$p]] = ((uint64)$o << 32) | @xseq[$o];
  delete(@inflight[$o]); delete(@traced[$o]);
}}

tracepoint:sched:sched_process_exit /@traced[tid]/ {{
  @ends[tid] = {ld("curtask", "task_struct.exit_code")};
  delete(@traced[tid]);
}}

END {{
  @{_LAST} = 1;    // printed after every other map (bpftrace prints them in name order): the dump is whole
  clear(@traced); clear(@gen); clear(@eid); clear(@eg); clear(@inflight); clear(@t0); clear(@darg); clear(@dino); clear(@sptr); clear(@xseq);
  clear(@safam); clear(@saport); clear(@saa); clear(@sab); clear(@saptr); clear(@saset); clear(@fk); clear(@fkdev); clear(@fkkind); clear(@fkdentry); clear(@fkopened);
  clear(@fpathset); clear(@fkinode); clear(@cwdg); clear(@fdsys); clear(@eerr); clear(@fkfile);
  clear(@fpending);
}}
"""


# Map name → (number of numeric key fields before the string, or None when the key has no string)
_KEYS = {"ent": (3, False), "ret": (4, False), "tns": (3, False), "opens": (4, True), "execs": (4, False), "xpath": (2, False),
         "xmoved": (2, False),
         "chdirs": (2, True), "addrs": (5, True), "fduse": (9, False), "fpath": (2, False), "fpdir": (2, False), "fpino": (2, False), "fpcwd": (2, False),
         "dname": (1, False), "forks": (4, False), "ends": (1, False), "compat": (1, False)}


_LAST = "zzdone"      # a map set in END, named to be printed last


def parse_output(text: str) -> dict:
    """bpftrace's ``-f json`` lines → {map name: [(key tuple, value)]}; the string, when a key has one, is last.
    A dump without the ``_LAST`` map (set in END, printed after every other map), or with a line that is not JSON,
    is a KprofError: some counts would be missing (bpftrace ended while it printed its maps)."""
    maps: dict[str, list] = {name: [] for name in _KEYS}
    whole = False
    for n, line in enumerate(text.split("\n"), 1):     # not splitlines: a path may hold U+2028
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError as e:
            raise KprofError(f"bpftrace's output, line {n}: not JSON ({e}): {line[:120]}") from None
        if doc.get("type") != "map":
            continue
        whole = whole or f"@{_LAST}" in doc["data"]
        for name, entries in doc["data"].items():
            name = name.lstrip("@")
            if name not in _KEYS or not isinstance(entries, dict):
                continue
            n, has_str = _KEYS[name]
            for key, value in entries.items():
                parts = key.split(",", n if has_str else -1)
                fields = [int(p) for p in parts[:n]] + ([parts[n] if len(parts) > n else ""] if has_str else [])
                maps[name].append((fields, value))
    if not whole:
        raise KprofError(f"bpftrace's output ends before its last map (@{_LAST}): it ended while it printed its "
                         f"maps, and counts would be missing")
    return maps


# ---- the recorder -------------------------------------------------------------------------------------

def record_bpf(argv: list[str], log_path: str, *, cwd: str, env: dict, timeout: float, stdout_path: str,
               stderr_path: str, consume=None, inject=(), stop_at_root: bool = False) -> TraceOutcome:
    """Run ``argv`` gated, bpftrace counting its process tree; write the aggregates to ``log_path`` (JSON).

    Same contract as record_strace (``consume`` is not called: there is no stream; ``stop_at_root``: the run
    ends when the command's own process exits, what it left running named and killed). The aggregates hold,
    next to bpftrace's maps, what only this moment can tell: the paths resolved in the command's mount
    namespace and working directory, and the device nodes behind device numbers.
    """
    if inject:
        raise KprofError("fault injection (inject:) needs the strace or ptrace backend: the bpf backend only counts")
    bpftrace = bpftrace_path()
    exe = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH", os.defpath))
    if exe is None:
        raise KprofError(f"{argv[0]!r} not found on the command's PATH ({env.get('PATH', '')})")
    arch = syscalls.host_arch()
    layout = btf.load()
    become_subreaper()
    from profiler import signals
    interrupted: list = []
    previous = signals.watch(interrupted)     # Ctrl-C, SIGTERM, SIGHUP: stop the tree, keep the counts
    outcome = TraceOutcome(returncode=None, wall=0.0)
    gate_r, gate_w = os.pipe()
    child = tracer = None
    raw_path = log_path + ".bpftrace"
    started = time.monotonic()
    try:
        child = GatedChild(exe, argv, cwd, env, stdout_path, stderr_path, gate_r, gate_w)
        os.close(gate_r)
        gate_r = None
        tracer = _start_tracer(bpftrace, program(child.pid, arch, layout), raw_path, log_path + ".err")
        _wait_ready(tracer, raw_path, log_path + ".err")
        started = time.monotonic()
        os.write(gate_w, b"g")                      # the command may exec now: every probe is attached
        os.close(gate_w)
        gate_w = None
        wait_tree(child, tracer.pid, started + timeout, outcome, interrupted, stop_at_root)
        outcome.wall = time.monotonic() - started
        try:
            _stop(tracer, raw_path)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()
            raise KprofError("bpftrace did not print its maps within 60 s of the command's end") from None
        outcome.returncode = child.returncode
        with open(raw_path, errors="surrogateescape") as f:
            text = f.read()
        try:
            maps = parse_output(text)
        except KprofError as e:
            raise KprofError(f"{e} (bpftrace: exit {_exit_of(tracer.returncode)}"
                             + "".join(f"; {m}" for m in _messages(log_path + ".err")[-5:])
                             + f"; its output is kept in {raw_path})") from None
        full = [name for name, entries in maps.items() if len(entries) >= MAP_KEYS]
        doc = {"format": FORMAT, "version": 1, "arch": arch, "root": child.pid, "cwd": cwd,
               "bpftrace": _version(bpftrace), "maps": maps, "full_maps": full, **resolve(maps, cwd)}
        with open(log_path, "w") as f:
            json.dump(doc, f)
        os.unlink(raw_path)
    finally:
        for fd in (gate_r, gate_w):
            if fd is not None:
                os.close(fd)
        if child is not None and child.poll() is None:
            kill_tree(os.getpid(), spare=tracer.pid if tracer else None)
            child.kill()
            child.wait()
        if tracer is not None and tracer.poll() is None:
            tracer.kill()
            tracer.wait()
        reap_zombies(None)
        if interrupted:  # kprof is stopping: later signals are only noted while it writes its files
            outcome.signal = outcome.signal or interrupted[0]
            signals.defer()
        else:
            signals.restore(previous)
        if not outcome.wall:
            outcome.wall = time.monotonic() - started
    outcome.strace_messages = _messages(log_path + ".err")
    try:
        os.unlink(log_path + ".err")
    except OSError:
        pass
    return outcome


def _messages(err_path: str) -> list[str]:
    """What bpftrace said on stderr, less its usual notices."""
    try:
        with open(err_path, errors="replace") as f:
            return [line.rstrip("\n") for line in f if line.strip() and "RLIMIT_MEMLOCK" not in line
                    and "Addrspace is not set" not in line]
    except OSError:
        return []


def _exit_of(returncode: int | None) -> str:
    return signal_name(-returncode) if returncode is not None and returncode < 0 else str(returncode)


class GatedChild:
    """The command, forked and waiting on a pipe: it execs only when the gate opens (subprocess.Popen cannot
    do this: it waits for the exec). Between the gate and the exec the child makes no syscall but a read's
    return, so the first call counted is the command's own execve, as strace shows it."""

    def __init__(self, exe: str, argv: list[str], cwd: str, env: dict, stdout_path: str, stderr_path: str,
                 gate_r: int, gate_w: int):
        out = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        env_b = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
        self.returncode = None
        self.pid = os.fork()
        if self.pid == 0:  # the child: only async-signal-safe work, then wait at the gate, then exec
            try:
                os.setsid()
                os.chdir(cwd)
                for fd, target in ((null, 0), (out, 1), (err, 2)):
                    os.dup2(fd, target)
                os.closerange(3, gate_r)
                os.closerange(gate_r + 1, 65536)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                if os.read(gate_r, 1) == b"g":
                    os.execve(exe, argv, env_b)
            except BaseException:
                pass
            os._exit(127)
        for fd in (out, err, null):
            os.close(fd)

    def poll(self):
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                if self.returncode < 0:
                    self.returncode = 128 - self.returncode
        return self.returncode

    def kill(self):
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)

    def wait(self):
        while self.poll() is None:
            time.sleep(0.005)
        return self.returncode


def _stop(tracer, raw_path: str, wait: float = 60.0, again_after: float = 5.0) -> None:
    """SIGINT: bpftrace prints its maps and ends. A signal that lands while it is between polls can be missed, so
    it is sent again, but only while bpftrace shows no sign of having had it (its output has not grown since): once
    it prints, another SIGINT kills it in the middle of its dump (seen in CI: a pump-loop run's dump, several
    seconds long on a loaded machine, cut by the SIGINT sent 2 s after the first). TimeoutExpired after ``wait``."""
    def size() -> int:
        try:
            return os.path.getsize(raw_path)
        except OSError:
            return -1
    deadline = time.monotonic() + wait
    tracer.send_signal(signal.SIGINT)
    signalled_at = size()
    while True:
        try:
            tracer.wait(timeout=again_after)
            return
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                raise
            if size() == signalled_at:          # nothing printed since: the signal was missed
                tracer.send_signal(signal.SIGINT)


def with_tracefs(argv: list[str]) -> list[str]:
    """``argv`` run in a mount namespace of its own where tracefs is mounted (bpftrace finds tracepoints there;
    nothing changes outside it). Exit 97: tracefs could not be mounted."""
    script = ('grep -q " /sys/kernel/tracing tracefs " /proc/mounts || mount -t tracefs nodev /sys/kernel/tracing '
              '|| exit 97; exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", *argv]


def _start_tracer(bpftrace: str, text: str, raw_path: str, err_path: str):
    """bpftrace where tracefs is mounted (with_tracefs)."""
    env = {**os.environ, "BPFTRACE_STRLEN": str(STRLEN), "BPFTRACE_MAP_KEYS_MAX": str(MAP_KEYS)}
    with open(err_path, "wb") as err:
        return subprocess.Popen(with_tracefs([bpftrace, "-f", "json", "-o", raw_path, "-e", text]),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, env=env)


def _wait_ready(tracer, raw_path: str, err_path: str) -> None:
    deadline = time.monotonic() + _READY_WAIT
    while time.monotonic() < deadline:
        try:
            with open(raw_path) as f:
                if '"READY' in f.read():
                    return
        except OSError:
            pass
        if tracer.poll() is not None:
            break
        time.sleep(0.01)
    try:
        with open(err_path, errors="replace") as f:
            why = "\n  ".join(line.rstrip() for line in f if line.strip() and "RLIMIT_MEMLOCK" not in line)
    except OSError:
        why = ""
    if tracer.poll() is None:
        tracer.kill()
        tracer.wait()
    raise KprofError("the bpf backend could not start: bpftrace did not attach its probes"
                     + (f" (exit {tracer.returncode})" if tracer.returncode is not None else "")
                     + (":\n  " + why if why else "")
                     + "\nThe kernel needs BPF (CONFIG_BPF_SYSCALL, CONFIG_BPF_EVENTS), tracepoints and BTF, and kprof "
                       "root (or CAP_BPF and CAP_PERFMON); or use --backend strace")


def _version(bpftrace: str) -> str | None:
    try:
        return subprocess.run([bpftrace, "--version"], capture_output=True, text=True, timeout=10).stdout.split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def _is_at_fdcwd(dirfd: int) -> bool:
    """AT_FDCWD, a C int, as bpftrace printed it (sign-extended or not)."""
    return (dirfd & 0xFFFFFFFF) == (_AT_FDCWD & 0xFFFFFFFF)


def _full_path(cwd: str, dirfd: tuple, path: str, dirs: dict) -> str:
    """The path an open named: relative to the cwd for AT_FDCWD (a C int, printed unsigned), or to the
    directory behind a directory fd (``dirfd`` is then its (struct file, inode); ``dirs`` maps those to paths)."""
    if path.startswith("/"):
        return path
    if _is_at_fdcwd(dirfd[0]):
        return os.path.join(cwd, path)
    base = dirs.get(dirfd)
    return os.path.join(cwd, base, path) if base else path


def unpack(k: int) -> tuple[int, int, int, int]:
    """A packed key field: (image generation, cwd generation, syscall number, errno); an open's also has
    ``OPENED_LINK`` (errno numbers end below 4096)."""
    return k >> 48, (k >> 32) & 0xFFFF, (k >> 16) & 0xFFFF, k & 0x7FFF


# ---- what only the end of the run can tell ---------------------------------------------------------------

def resolve(maps: dict, cwd: str) -> dict:
    """Per-task working directories, opened paths resolved as strace's -yy shows them, device nodes by number."""
    chdirs = {(f[0], f[1]): f[2] for f, _ in maps["chdirs"]}
    inherit = {f[2]: (f[0], f[3]) for f, _ in maps["forks"]}   # child → (parent, parent's cwd generation)
    memo: dict = {}

    def cwd_of(tid: int, gen: int, depth: int = 0) -> str:
        key = (tid, gen)
        if key not in memo:
            if depth > 10000:
                memo[key] = cwd
            elif gen > 0:
                memo[key] = os.path.join(cwd_of(tid, gen - 1, depth + 1), chdirs.get(key, "."))
            elif tid in inherit:
                memo[key] = cwd_of(*inherit[tid], depth + 1)
            else:
                memo[key] = cwd
        return memo[key]

    dirs = opened_paths(maps, cwd_of, cwd)
    cwds = {}
    paths = {}      # path → what it resolves to, followed (strace -yy's name for the file opened)
    links = {}      # path → the same for an open of the symbolic link itself (O_PATH|O_NOFOLLOW): not followed
    for (tid, k, dirfd, dino, path), _ in maps["opens"]:
        _g, cg, _nr, err = unpack(k)
        base = cwd_of(tid, cg)
        cwds[f"{tid},{cg}"] = base
        full = _full_path(base, (dirfd, dino), path, dirs)
        if err == 0 and full.startswith("/"):
            if k & OPENED_LINK:
                links.setdefault(full, os.path.join(_realpath(os.path.dirname(full), tid), os.path.basename(full)))
            else:
                paths.setdefault(full, _realpath(full, tid))
    devices = {}
    dnames = {f[0]: name for f, name in maps["dname"]}
    for f, _ in maps["fduse"]:
        u = fd_use(f)
        mode, rdev, name = u["mode"], u["rdev"], dnames.get(u["dentry"], "")
        if mode in (_S_IFCHR, _S_IFBLK) and str(rdev) not in devices:
            devices[str(rdev)] = _device_node(mode, rdev, name)
    return {"cwds": cwds, "resolved": paths, "resolved_links": links, "devices": devices,
            "opened": [[f, i, p] for (f, i), p in dirs.items()]}


_OWN = ("/dev/fd/", "/dev/stdin", "/dev/stdout", "/dev/stderr")


def _realpath(path: str, tid: int) -> str:
    """``os.path.realpath``, but a path that names the opening task's own things is not resolved: here, after
    the run and in kprof's process, it would name kprof's own (its python, its output). /proc/self is the
    task's /proc/PID (as strace shows /proc/self/maps), /dev/stdout and /dev/fd/N stay as the task named them."""
    if path.startswith(_OWN):
        return path
    for own in ("/proc/self", "/proc/thread-self"):
        if path == own or path.startswith(own + "/"):
            return f"/proc/{tid}{path[len(own):]}"
    return os.path.realpath(path)


def opened_paths(maps: dict, cwd_of, cwd: str) -> dict:
    """struct file (and inode) → the whole path it was opened by: a path relative to a directory fd joined to
    that directory's own path, itself perhaps relative to another (libnss's openat("/") → openat(fd, "run") →
    openat(fd, "userdb")), a path relative to the cwd joined to the cwd of the task at that moment."""
    raw = {tuple(f): p for f, p in maps["fpath"]}
    below = {tuple(f): v for f, v in maps["fpdir"]}
    below_ino = {tuple(f): v for f, v in maps["fpino"]}
    at_cwd = {tuple(f): v for f, v in maps["fpcwd"]}
    memo: dict = {}
    walking: set = set()

    def whole(key) -> str | None:
        """The whole path, or None on a cycle: a struct file reused after a close (open("a"), openat(a, "b"),
        close(a), openat(b, "..") may get a's old address, so the two name each other)."""
        if key in walking:
            return None
        if key not in memo:
            path, d = raw[key], below.get(key)
            if path.startswith("/") or d is None:
                memo[key] = path
            elif _is_at_fdcwd(d):
                c = at_cwd.get(key)
                memo[key] = os.path.join(cwd_of(c >> 16, c & 0xFFFF) if c is not None else cwd, path)
            else:
                parent = (d, below_ino.get(key, 0))
                walking.add(key)
                base = whole(parent) if parent in raw else ""
                walking.discard(key)
                memo[key] = None if base is None else os.path.join(base, path) if base else path
        return memo[key]
    # on a cycle, the paths as given (relative: named like an unresolved relative path)
    return {key: whole(key) or raw[key] for key in raw}


def _device_node(mode: int, rdev: int, name: str) -> str | None:
    """The /dev node with kernel device number ``rdev`` (MAJOR << 20 | MINOR), the one named ``name`` first."""
    major, minor = rdev >> 20, rdev & 0xFFFFF
    want = os.makedev(major, minor)
    kind = stat.S_ISCHR if mode == _S_IFCHR else stat.S_ISBLK
    found = []
    for top in ("/dev", "/dev/pts", "/dev/input", "/dev/bus/usb", "/dev/usb"):
        try:
            entries = os.scandir(top)
        except OSError:
            continue
        with entries:
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if kind(st.st_mode) and st.st_rdev == want:
                    found.append(e.path)
    found.sort(key=lambda p: (os.path.basename(p) != name, len(p), p))
    return found[0] if found else None


# ---- aggregates → counted events -------------------------------------------------------------------------

def _errno(n: int) -> str | None:
    """errno number → the name strace prints (EOPNOTSUPP, ERESTARTSYS …): kprof's one errno table."""
    from profiler.kernel.errnos import errno_name
    return errno_name(n) if n else None


def _socket_path(info: int, ino: int) -> str:
    family, typ, proto = info >> 16, (info >> 8) & 0xFF, info & 0xFF
    if family in (2, 10):
        v6 = "v6" if family == 10 else ""
        kind = {6: "TCP", 17: "UDP", 136: "UDPLITE"}.get(proto) or {1: "TCP", 2: "UDP"}.get(typ, "socket")
        return f"{kind}{v6}:[{ino}]" if kind != "socket" else f"socket:[{ino}]"
    if family == 1:
        return f"UNIX-{ {1: 'STREAM', 2: 'DGRAM', 5: 'SEQPACKET'}.get(typ, 'STREAM') }:[{ino}]".replace(" ", "")
    if family == 16:
        return f"NETLINK:[{ino}]"
    return f"socket:[{ino}]"


def _resolved(doc: dict, link) -> dict:
    """The paths ``resolve`` found: of opens that named a symbolic link itself (``link``), or followed ones."""
    return doc.get("resolved_links", {}) if link else doc["resolved"]


def fd_use(fields: list) -> dict:
    """An @fduse key unpacked: tid, gen, nr, err, (rdev << 32 | request), (mode | socket << 4 | magic << 32),
    the struct file when kprof saw it opened (else 0), its inode, its dentry."""
    tid, g, nr, err, dev, kind, filep, inode, dentry = fields
    return {"tid": tid, "gen": g, "nr": nr, "err": err, "rdev": dev >> 32, "request": dev & 0xFFFFFFFF,
            "mode": kind & 0xF, "sock": (kind >> 4) & 0xFFFFFFF, "magic": kind >> 32, "file": filep, "inode": inode,
            "dentry": dentry}


def fd_behind(u: dict, doc: dict, opened_as: dict, dnames: dict) -> Fd:
    """What is behind the fd: a device node with its number, a socket (named as strace -yy names it,
    ``TCP:[…]``), a pipe, an anon inode, a file."""
    mode, rdev, magic, sock, ino = u["mode"], u["rdev"], u["magic"], u["sock"], 0
    name = dnames.get(u["dentry"], "")
    opened = bool(u["file"]) and (u["file"], u["inode"]) in opened_as
    if opened:
        name = opened_as[(u["file"], u["inode"])]
    if mode in (_S_IFCHR, _S_IFBLK):
        if opened and name.startswith("/"):   # opened under trace: the path it was opened by (a bind mount too)
            node = doc["resolved"].get(name) or _realpath(name, u["tid"])
        else:                                   # inherited (stdin …): the /dev node with its number
            node = doc["devices"].get(str(rdev)) or f"/dev/{name}"
        return Fd.of(node, "char" if mode == _S_IFCHR else "block", rdev >> 20, rdev & 0xFFFFF)
    if mode == _S_IFSOCK:
        return Fd.of(_socket_path(sock, ino))
    if magic == _PIPEFS_MAGIC:
        return Fd.of(f"pipe:[{ino}]")
    if magic == _ANON_MAGIC:
        return Fd.of(f"anon_inode:{name}")
    if opened and name.startswith("/"):
        link = mode == _S_IFLNK
        return Fd.of(_resolved(doc, link).get(name) or (name if link else _realpath(name, u["tid"])))
    return Fd.of(name)


def _address(fam: int, port: int, a: int, b: int, text: str, salen_unnamed: bool = False) -> str | None:
    import ipaddress
    import socket as _s
    port = _s.ntohs(port & 0xFFFF)
    a, b = a & 0xFFFFFFFFFFFFFFFF, b & 0xFFFFFFFFFFFFFFFF      # loads bpftrace sign-extended (10.0.0.200)
    if fam == 2:
        return f"inet:{ipaddress.IPv4Address((a & 0xFFFFFFFF).to_bytes(4, 'little'))}:{port}"
    if fam == 10:
        raw = a.to_bytes(8, "little") + b.to_bytes(8, "little")
        return f"inet6:[{ipaddress.IPv6Address(raw)}]:{port}"
    if fam == 1:
        return f"unix:{'@' if a == 1 else ''}{text}" if text or a == 1 else "unix:(unnamed)"
    if fam == 16:
        return "netlink"
    return f"family:{fam:#x}"


def events(doc: dict):
    """The aggregates as counted events, per task in creation order and per program image in exec order,
    so the builder credits each call to the program that made it (as it does from a strace log)."""
    arch = doc["arch"]
    maps = doc["maps"]
    name_of = lambda nr: syscalls.syscall_name(arch, nr) or f"syscall_{nr}"  # noqa: E731
    per: dict = {}   # (tid, gen) → list of events
    # struct file → the whole path it was opened by (a trace from before kprof kept it: the path as given)
    dirs = {(f, i): p for f, i, p in doc["opened"]} if "opened" in doc else {tuple(f): p for f, p in maps["fpath"]}

    def add(tid, gen, ev):
        per.setdefault((tid, gen), []).append(ev)

    entered = {tuple(f): v for f, v in maps["ent"]}
    returned: dict = {}
    for (tid, g, nr, err), n in maps["ret"]:
        returned.setdefault((tid, g, nr), {})[err] = n
    time_ns = {tuple(f): v for f, v in maps["tns"]}
    forks = sorted(maps["forks"], key=lambda e: e[0][2])
    children: dict = {}
    for (parent, g, child, _cg), _ in forks:
        children.setdefault((parent, g), []).append(child)
    tree = {parent: [c for (p, _g), cs in sorted(children.items()) if p == parent for c in cs]
            for parent, _g in children}
    # what the special tables count separately is subtracted from the plain counts, so nothing counts twice
    special: dict = {}

    def take(tid, g, nr, err, n):
        special[(tid, g, nr, err)] = special.get((tid, g, nr, err), 0) + n

    execs_ok: dict = {}
    xpath = {tuple(f): path for f, path in maps["xpath"]}
    # a thread's exec, returned under the leader's pid: its path is the thread's (none in a trace from before 8c8bb8f)
    for (tid, seq), old in maps.get("xmoved", ()):
        xpath[(tid, seq)] = xpath.get((old >> 32, old & 0xFFFFFFFF), "")
    for (tid, k, dirfd, seq), n in maps["execs"]:
        g, _cg, nr, err = unpack(k)
        path = xpath.get((tid, seq), "")
        take(tid, g, nr, err, n)
        ev = SyscallEvent(tid, name_of(nr), result=0 if err == 0 else -1, errno=_errno(err), count=n, path=path)
        if err == 0:
            execs_ok[(tid, g)] = ev
        else:
            add(tid, g, ev)
    for (tid, k, dirfd, dino, path), n in maps["opens"]:
        g, cg, nr, err = unpack(k)
        take(tid, g, nr, err, n)
        base = doc["cwds"].get(f"{tid},{cg}", doc["cwd"])
        full = _full_path(base, (dirfd, dino), path, dirs)
        if err == 0:
            add(tid, g, SyscallEvent(tid, name_of(nr), result=0, count=n,
                                     result_fd=Fd.of(_resolved(doc, k & OPENED_LINK).get(full, full))))
        else:
            add(tid, g, SyscallEvent(tid, name_of(nr), result=-1, errno=_errno(err), count=n, path=full))
    for (tid, k, famport, a, b, text), n in maps["addrs"]:
        g, _cg, nr, err = unpack(k)
        fam, port, salen = (famport >> 16) & 0xFFFF, famport & 0xFFFF, famport >> 32
        if fam == 1 and a == 1:   # an abstract name is not NUL-terminated: its length is the address's
            text = text[:max(salen - 3, 0)]
        take(tid, g, nr, err, n)
        add(tid, g, SyscallEvent(tid, name_of(nr), result=-1 if err else 0, errno=_errno(err), count=n,
                                 address=_address(fam, port, a, b, text)))
    dnames = {f[0]: name for f, name in maps["dname"]}
    for fields, n in maps["fduse"]:
        u = fd_use(fields)
        tid, g, nr, err = u["tid"], u["gen"], u["nr"], u["err"]
        take(tid, g, nr, err, n)
        add(tid, g, SyscallEvent(tid, name_of(nr), result=-1 if err else 0, errno=_errno(err), count=n,
                                 fd=fd_behind(u, doc, dirs, dnames),
                                 request=u["request"] if name_of(nr) == "ioctl" else None))
    for (tid, g, nr), calls in sorted(entered.items()):
        name = name_of(nr)
        rets = returned.get((tid, g, nr), {})
        duration = time_ns.get((tid, g, nr), 0) / 1e9
        for err, n in sorted(rets.items()):
            n -= special.get((tid, g, nr, err), 0)
            if name in _FORKS and err == 0:   # one event per child created: it makes the child's process
                kids = children.get((tid, g), [])
                while n > 0 and kids:
                    add(tid, g, SyscallEvent(tid, name, result=kids.pop(0)))
                    n -= 1
            if n > 0:
                add(tid, g, SyscallEvent(tid, name, result=-1 if err else 0, errno=_errno(err), count=n,
                                         duration=duration))
                duration = 0.0
        unfinished = calls - sum(rets.values())
        if unfinished > 0:
            add(tid, g, SyscallEvent(tid, name, result=None, count=unfinished, duration=duration))
    ends = {f[0]: v for f, v in maps["ends"]}
    # creation order: the root, then each task's children after the image that forked them
    order, todo, seen = [], [doc["root"]], set()
    while todo:
        tid = todo.pop(0)
        if tid in seen:
            continue
        seen.add(tid)
        order.append(tid)
        todo += tree.get(tid, [])
    gens: dict = {}
    for tid, g in per.keys() | execs_ok.keys():
        gens[tid] = max(gens.get(tid, 0), g)
    for tid in order + sorted(set(gens) - set(order)):
        for g in range(gens.get(tid, 0) + 1):
            yield from per.get((tid, g), [])
            if (tid, g) in execs_ok:
                yield execs_ok[(tid, g)]
        if tid in ends:
            yield _end(tid, ends[tid])


def _end(tid: int, code: int) -> ProcessEvent:
    if code & 0x7F:
        try:
            sig = signal.Signals(code & 0x7F).name
        except ValueError:
            sig = f"SIG{code & 0x7F}"
        return ProcessEvent(tid, "killed", signal=sig, core_dumped=bool(code & 0x80))
    return ProcessEvent(tid, "exit", status=(code >> 8) & 0xFF)
