"""Benchmark: `kprof ftrace analyze` on a 10-million-line raw_syscalls trace vs the shell pipeline a user
would write, side by side in one run.

The trace is generated in a temp dir in the kernel's trace-file format, shaped like ELISA's Raspberry Pi
recording: 32-bit arm numbers, a dozen tasks on 4 CPUs whose lines interleave, ppoll/read/write/ioctl-heavy
(SPI_IOC_MESSAGE(1) ioctls about 1.5 % of calls), some errors, random pointer arguments.

Compared, in alternating order per round:

  pipeline     grep -o 'NR [0-9]*' TRACE | sort | uniq -c      (the user's locale; and with LC_ALL=C)
  kprof        kprof ftrace analyze TRACE --arch arm -f json    (the full report: per syscall and subsystem,
                                                               per task, ioctls decoded, errors)

Reported: wall and CPU seconds per round and the ratios pipeline/kprof of each round, their medians (target,
issue 17: kprof at least 3x faster than the LC_ALL=C pipeline), kprof's peak
memory — the largest single process (ru_maxrss) and the whole process tree (sum of PSS, sampled every
20 ms; target < 100 MiB) — on the full trace and on its first quarter (memory must not grow with the trace).
Machines here are shared and noisy: compare the ratios, measured side by side, not absolute seconds.

Usage: .venv/bin/python bench/ftrace_analyze.py [--lines 10000000] [--rounds 1] [--keep DIR] [--jobs N]
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = ("import sys, profiler.cli as c; c.COMMANDS.setdefault('ftrace', ('ftrace', 'ftrace')); "
       "sys.exit(c.main(sys.argv[1:]))")

# (arm EABI number, weight, errno returned sometimes, its rate)
SYSCALLS = [(336, 20, None, 0), (3, 14, 11, 0.08), (4, 10, None, 0), (54, 1.4, 110, 0.05), (263, 9, None, 0),
            (240, 8, 11, 0.3), (252, 5, None, 0), (78, 6, None, 0), (192, 2, None, 0), (322, 2, 2, 0.3),
            (6, 2, None, 0), (197, 2, None, 0), (140, 1, None, 0), (175, 3, None, 0), (174, 1, None, 0),
            (289, 2, 11, 0.2), (291, 2, 11, 0.4), (162, 2, None, 0), (114, 1, 10, 0.5), (120, 0.2, None, 0)]
TASKS = [("node", 1234), ("node", 1241), ("node", 1242), ("python3", 2001), ("oref0-pump-loo", 4100),
         ("bash", 4090), ("cron", 455), ("kworker/u8:2", 88), ("rsyslogd", 310), ("sshd", 620),
         ("openaps", 3999), ("mmtune", 4105)]


def generate(path: Path, lines: int, seed: int = 1) -> None:
    """Write a raw_syscalls trace of ``lines`` lines (enter/exit pairs interleaved across 4 CPUs)."""
    rnd = random.Random(seed)
    nrs = [s[0] for s in SYSCALLS]
    weights = [s[1] for s in SYSCALLS]
    err = {s[0]: (s[2], s[3]) for s in SYSCALLS}
    prefix = {t: f"{t[0]:>16}-{t[1]:<7}" for t in TASKS}
    hexes = [f"{rnd.randrange(0x7e000000, 0x7f000000):x}" for _ in range(4096)]
    pick = rnd.choices(nrs, weights, k=65536)
    cpus = [[t, None] for t in rnd.sample(TASKS, 4)]         # per CPU: task, pending (nr) or None
    ts = 10_000.0
    out = []
    n = 0
    k = 0
    cpu = 0
    with open(path, "w") as f:
        f.write("# tracer: nop\n#\n# entries-in-buffer/entries-written: %d/%d   #P:4\n#\n" % (lines, lines))
        while n < lines:
            if rnd.random() < 0.3:
                cpu = rnd.randrange(4)
            state = cpus[cpu]
            task, pending = state
            ts += rnd.random() * 0.00018
            pre = f"{prefix[task]} [{cpu:03d}] d..2. {ts:12.6f}: "
            if pending is None:
                nr = pick[k & 0xFFFF]
                k += 1
                if nr == 54:
                    args = f"11, 40206b00, {hexes[k & 4095]}, 0, 0, 0"
                else:
                    args = f"{k % 17:x}, {hexes[k & 4095]}, {hexes[(k * 7) & 4095]}, 0, {k % 9:x}, 0"
                out.append(f"{pre}sys_enter: NR {nr} ({args})\n")
                state[1] = nr
            else:
                e, rate = err[pending]
                ret = -e if e and rnd.random() < rate else (k % 4096)
                out.append(f"{pre}sys_exit: NR {pending} = {ret}\n")
                state[1] = None
                if rnd.random() < 0.05:              # another task, not running on another CPU
                    busy = {c[0] for c in cpus}
                    state[0] = rnd.choice([t for t in TASKS if t not in busy])
            n += 1
            if len(out) >= 100_000:
                f.write("".join(out))
                out.clear()
        f.write("".join(out))


def _tree_pss_kib(pid: int) -> int:
    """Memory of a process and its children (kprof's worker processes): the sum of their PSS, so pages the
    forked workers share with their parent count once (RSS would count them in every process)."""
    total = 0
    todo = [pid]
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    st = f.read()
                children.setdefault(int(st[st.rfind(b")") + 2:].split()[1]), []).append(int(entry))
            except OSError:
                pass
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        for name, field in ((f"/proc/{p}/smaps_rollup", "Pss:"), (f"/proc/{p}/status", "VmRSS:")):
            try:
                with open(name) as f:
                    value = next((int(ln.split()[1]) for ln in f if ln.startswith(field)), None)
            except OSError:
                value = None
            if value is not None:
                total += value
                break
    return total


def run_timed(cmd, env=None, sample=False):
    """(wall s, cpu s of the children, peak tree RSS KiB or None)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    if sample:
        while proc.poll() is None:
            peak = max(peak, _tree_pss_kib(proc.pid))
            time.sleep(0.02)
    err = proc.communicate()[1]
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {err[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, (peak or None)


def kprof_cmd(trace: Path, jobs):
    cmd = [sys.executable, "-c", CLI, "ftrace", "analyze", str(trace), "--arch", "arm", "-f", "json",
           "-o", os.devnull]
    return cmd + (["--jobs", str(jobs)] if jobs else [])


def max_rss_child_kib(cmd, env) -> int:
    """ru_maxrss of the largest process in a fresh run (through a wrapper, so earlier runs do not count)."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    return int(subprocess.run([sys.executable, "-c", code, *cmd], env=env, capture_output=True, text=True,
                              check=True).stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--jobs", type=int, help="kprof --jobs (default: kprof's own choice)")
    ap.add_argument("--keep", type=Path, help="generate into / reuse this directory instead of a temp dir")
    args = ap.parse_args()

    tmp = args.keep or Path(tempfile.mkdtemp(prefix="kprof-bench-ftrace-"))
    tmp.mkdir(parents=True, exist_ok=True)
    trace = tmp / f"trace-{args.lines}.txt"
    quarter = tmp / f"trace-{args.lines}-quarter.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        if not trace.exists():
            t = time.perf_counter()
            generate(trace, args.lines)
            print(f"generated {args.lines:,} lines ({trace.stat().st_size / 1e6:.0f} MB) in "
                  f"{time.perf_counter() - t:.1f} s: {trace}")
        if not quarter.exists():
            with open(trace, "rb") as src, open(quarter, "wb") as dst:
                for i, ln in enumerate(src):
                    if i > args.lines // 4:
                        break
                    dst.write(ln)
        subprocess.run(["cat", str(trace)], stdout=subprocess.DEVNULL, check=True)     # page cache: same for all
        pipe = f"grep -o 'NR [0-9]*' {trace} | sort | uniq -c"
        rows = []
        for r in range(args.rounds):
            order = [("pipeline", ["sh", "-c", pipe], os.environ, False),
                     ("kprof", kprof_cmd(trace, args.jobs), env, True),
                     ("pipeline LC_ALL=C", ["sh", "-c", pipe], {**os.environ, "LC_ALL": "C"}, False)]
            if r % 2:
                order.reverse()
            res = {name: run_timed(cmd, e, sample) for name, cmd, e, sample in order}
            rows.append(res)
            k = res["kprof"]
            print(f"round {r + 1}: " + "; ".join(f"{n} {w:.2f} s wall, {c:.2f} s cpu" for n, (w, c, _) in res.items())
                  + f"; kprof tree peak PSS {k[2] / 1024:.0f} MiB; ratios {res['pipeline'][0] / k[0]:.2f}x, "
                  f"LC_ALL=C {res['pipeline LC_ALL=C'][0] / k[0]:.2f}x")
        med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        kw = med([r["kprof"][0] for r in rows])
        pw = med([r["pipeline"][0] for r in rows])
        cw = med([r["pipeline LC_ALL=C"][0] for r in rows])
        single_full = max_rss_child_kib(kprof_cmd(trace, args.jobs), env)
        single_q = max_rss_child_kib(kprof_cmd(quarter, args.jobs), env)
        tree_q = run_timed(kprof_cmd(quarter, args.jobs), env, True)[2]
        tree_full = med([r["kprof"][2] for r in rows])
        print()
        print(f"lines: {args.lines:,}   locale: {os.environ.get('LC_ALL') or os.environ.get('LANG') or 'unset'}   "
              f"CPUs: {os.cpu_count()}   load: {os.getloadavg()[0]:.2f}")
        ratios = [r["pipeline"][0] / r["kprof"][0] for r in rows]
        c_ratios = [r["pipeline LC_ALL=C"][0] / r["kprof"][0] for r in rows]
        print(f"kprof ftrace analyze (full report):  {kw:6.2f} s   (medians of the rounds' wall times)")
        def per_round(xs):
            return ", ".join(f"{x:.2f}" for x in xs)
        print(f"grep | sort | uniq -c:              {pw:6.2f} s   ratio per round {per_round(ratios)}; "
              f"median {med(ratios):.2f}x")
        print(f"same with LC_ALL=C:                 {cw:6.2f} s   ratio per round {per_round(c_ratios)}; "
              f"median {med(c_ratios):.2f}x  (target >= 3x)")
        print(f"kprof peak memory, largest process:  {single_full / 1024:.0f} MiB on all lines, "
              f"{single_q / 1024:.0f} MiB on a quarter of them")
        print(f"kprof peak memory, process tree PSS: {tree_full / 1024:.0f} MiB on all lines, "
              f"{tree_q / 1024:.0f} MiB on a quarter of them (target < 100 MiB, flat)")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
