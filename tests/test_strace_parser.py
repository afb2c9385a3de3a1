"""The strace log parser: hand-written lines for each form strace prints, and real logs from real strace."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from profiler.events import Fd, ProcessEvent, SyscallEvent
from profiler.parse.strace_log import StraceLogParser
from profiler.parse.strace_text import fd_path_of, split_args, sockaddr, unquote

from .conftest import needs_strace


def parse(text: str):
    p = StraceLogParser()
    events = list(p.feed(text.splitlines(True)))
    events += list(p.finish())
    return events, p


def test_complete_call_with_fd_paths_duration_and_errno():
    events, _ = parse(
        '4100  1795753942.461517 openat(-100</tmp>, "/dev/ptmx", 0x2) = 3</dev/ptmx<char 5:2>> <0.000110>\n'
        '4100  1795753942.4617 ioctl(3</dev/ptmx<char 5:2>>, 0x80045430, [0]) = 0 <0.000017>\n'
        '4100  1795753942.47 openat(-100</tmp>, "/nope", 0x80000) = -1 ENOENT (No such file or directory) <0.000032>\n')
    a, b, c = events
    ptmx = Fd("/dev/ptmx", "/dev/ptmx<char 5:2>", "char", 5, 2)
    assert (a.name, a.result, a.result_fd, a.duration, a.fd, a.path) == ("openat", 3, ptmx, 0.00011, None, None)
    assert a.time == pytest.approx(1795753942.461517)
    assert (b.name, b.fd, b.result, b.errno, b.request) == ("ioctl", ptmx, 0, None, 0x80045430)
    assert b.fd is a.result_fd and b.fd.dev == "char 5:2" and b.fd.device_class == "ptmx"   # one value per fd text
    assert split_args(b.args)[1] == "0x80045430"
    assert (c.result, c.errno, c.path, c.result_fd) == (-1, "ENOENT", "/nope", None)


def test_unfinished_and_resumed_pairs_interleaved():
    events, p = parse(
        "10 1.0 read(3</dev/pts/1<char 136:1>>,  <unfinished ...>\n"
        "11 1.1 futex(0x7f, 0x80, 2, NULL <unfinished ...>\n"
        '10 1.2 <... read resumed>"abc", 256) = 3 <0.2>\n'
        "11 1.3 <... futex resumed>) = -1 EAGAIN (Resource temporarily unavailable) <0.2>\n")
    read, futex = events
    assert (read.pid, read.name, read.result, read.time, read.fd.text) == (10, "read", 3, 1.0, "/dev/pts/1<char 136:1>")
    assert (read.fd.path, read.fd.device_class, read.fd.major, read.fd.minor) == ("/dev/pts/1", "pts", 136, 1)
    assert read.args.endswith('"abc", 256')
    assert (futex.pid, futex.errno, futex.time) == (11, "EAGAIN", 1.1)
    assert p.stats.unparsed == 0


def test_signals_exits_kills_and_calls_that_never_return():
    events, _ = parse(
        "20 --- SIGCHLD {si_signo=17, si_code=0x1, si_pid=21} ---\n"
        "21 exit_group(3) = ?\n"
        "21 +++ exited with 3 +++\n"
        "22 read(0,  <unfinished ...>\n"
        "22 +++ killed by SIGKILL +++\n"
        "23 +++ killed by SIGSEGV (core dumped) +++\n"
        "24 --- stopped by SIGSTOP ---\n")
    kinds = [(type(e).__name__, e.kind if isinstance(e, ProcessEvent) else e.name) for e in events]
    assert kinds == [("ProcessEvent", "signal"), ("SyscallEvent", "exit_group"), ("ProcessEvent", "exit"),
                     ("SyscallEvent", "read"), ("ProcessEvent", "killed"), ("ProcessEvent", "killed"),
                     ("ProcessEvent", "signal")]
    assert events[1].result is None and events[1].errno is None
    assert events[2].status == 3
    assert events[3].result is None  # killed inside the call: never returned
    assert events[4].signal == "SIGKILL" and events[5].core_dumped
    assert events[6].signal == "SIGSTOP"


def test_restart_injected_and_hex_results():
    events, _ = parse(
        "5 nanosleep({tv_sec=1}, 0x7ffc) = ? ERESTART_RESTARTBLOCK (Interrupted by signal)\n"
        "5 read(3</dev/serial0>, 0x55, 256) = -1 EIO (Input/output error) (INJECTED)\n"
        "5 mmap(NULL, 8192, 0x3, 0x22, -1, 0) = 0x7f0000000000\n"
        "5 poll([{fd=3, events=0x1}], 1, 1) = 0 (Timeout)\n")
    ns, rd, mm, po = events
    assert (ns.result, ns.errno) == (None, "ERESTART_RESTARTBLOCK")
    assert rd.injected and rd.errno == "EIO"
    assert mm.result == 0x7f0000000000
    assert (po.result, po.errno) == (0, None)


def test_strings_with_escapes_parens_and_truncation():
    line = ('7 write(1</tmp/out (copy)>, "a) = b\\n\\"x\\" <y>"..., 80) = 80 <0.000010>\n')
    (ev,), _ = parse(line)
    assert ev.result == 80 and ev.fd.path == "/tmp/out (copy)" and ev.fd.dev is None and ev.path is None
    assert unquote(split_args(ev.args)[1]) == 'a) = b\n"x" <y>'
    assert unquote('"\\x41\\101\\t"') == "AA\t"


def test_summary_table_is_parsed_separately():
    _, p = parse(
        "1 read(0, \"\", 1) = 0\n"
        "% time     seconds  usecs/call     calls    errors syscall\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        " 86.79    0.648678        7542        86        43 wait4\n"
        "  2.02    0.015068          10      1451           openat\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        "100.00    0.747396          78      1537        43 total\n")
    assert p.summary.calls == {"wait4": 86, "openat": 1451}
    assert p.summary.errors == {"wait4": 43, "openat": 0}


def test_forms_without_pid_or_timestamps_and_foreign_lines():
    events, p = parse("getpid() = 42\n10:01:02.123456 getppid() = 1\nthis is not strace\n")
    assert [e.name for e in events] == ["getpid", "getppid"]
    assert p.stats.unparsed == 1 and p.stats.first_unparsed[0][0] == 3


def test_fd_path_and_sockaddr_helpers():
    assert fd_path_of("-100</tmp>, \"x\"") is None
    assert fd_path_of("3<UNIX-STREAM:[7347]>, {}") == "UNIX-STREAM:[7347]"
    assert fd_path_of("0x3, 1") is None
    assert sockaddr('{sa_family=0x2, sin_port="\\x00\\x09", sin_addr="\\x7f\\x00\\x00\\x01"}') == "inet:127.0.0.1:9"
    assert sockaddr('{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}') == "inet:127.0.0.1:80"
    assert sockaddr('{sa_family=0x1, sun_path="/tmp/oaps_shared_node"}') == "unix:/tmp/oaps_shared_node"
    six = ('{sa_family=0xa, sin6_port="\\x00\\x09", sin6_flowinfo="\\x00\\x00\\x00\\x00", sin6_addr="'
           + "\\x00" * 15 + '\\x01", sin6_scope_id=0}')
    assert sockaddr(six) == "inet6:[::1]:9"
    decoded = '{sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}'
    assert sockaddr(decoded) == "inet6:[::1]:443"      # strace without -X raw names no sin6_addr field


THREADS = r"""
import os, threading
def work():
    for _ in range(200):
        os.getppid()
        with open("/dev/null") as f:
            f.read(1)
ts = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
"""


@needs_strace
def test_real_threaded_log_matches_strace_own_summary(tmp_path):
    """8 threads doing syscalls: every unfinished/resumed pair must pair up, counts equal strace -C."""
    log = tmp_path / "t.log"
    subprocess.run(["strace", "-f", "-yy", "-ttt", "-T", "-X", "raw", "-C", "-o", str(log),
                    sys.executable, "-c", THREADS], check=True, capture_output=True)
    p = StraceLogParser()
    counts: dict[str, list[int]] = {}
    for ev in list(p.feed(open(log))) + list(p.finish()):
        if isinstance(ev, SyscallEvent) and ev.result is not None or isinstance(ev, SyscallEvent) and ev.errno:
            c = counts.setdefault(ev.name, [0, 0])
            c[0] += 1
            c[1] += ev.errno is not None
    assert p.stats.unparsed == 0
    assert "<... " in log.read_text(), "the test must exercise resumed lines"
    assert counts["getppid"][0] >= 8 * 200
    theirs = {n: [c, p.summary.errors[n]] for n, c in p.summary.calls.items()}
    assert counts == theirs
    # the fast paths for cut calls in kprof's own format read each line as the general path does: the same log
    # with a space before each pid (a prefix only the general path takes) gives the same events, field by field
    text = log.read_text()
    assert re.search(r"^\d+ +[\d.]+ <\.\.\. \w+ resumed>", text, re.M) and " <unfinished ...>\n" in text

    def events(lines):
        q = StraceLogParser()
        return [repr(e) for e in [*q.feed(lines), *q.finish()]], q.stats.unparsed
    lines = text.splitlines(keepends=True)
    fast, general = events(lines), events([" " + line if line[:1].isdigit() else line for line in lines])
    assert fast == general and fast[1] == 0 and len(fast[0]) > 8 * 200


# calls cut in two in kprof's own format, in the shapes the fast paths must leave to the general path or read as it
# does: another call's resumption, a call cut again, a name strace could not give, execve from a thread, strings
# that hold the markers, strace's message cutting a line (stderr in the same file); the execve's end after strace's
# "superseded" line and, as with -qqq, without it
CUT_SHAPES = """\
10 1.000001 read(3</dev/null<char 1:3>>, <unfinished ...>
11 1.000002 getpid( <unfinished ...>
10 1.000003 <... read resumed>"", 5) = 0 <0.000010>
11 1.000004 <... getppid resumed>) = 10 <0.000010>
10 1.000005 write(1, " <unfinished ...> resumed>", 26 <unfinished ...>
10 1.000006 <... write resumed>, 5 <unfinished ...>
10 1.000007 <... write resumed>) = 26 <0.000020>
12 1.000008 syscall_0x1c3(0x1, 0x2 <unfinished ...>
12 1.000009 <... syscall_0x1c3 resumed>) = -1 ENOSYS (Function not implemented) <0.000010>
19 2.000001 futex(0x7f00, 0x80, 0, NULL <unfinished ...>
20 2.000002 execve("/bin/true", ["true"], 0x7ffd /* 1 var */ <pid changed to 19 ...>
19 2.000003 +++ superseded by execve in pid 20 +++
19 2.000004 <... execve resumed>) = 0 <0.000300>
29 2.000005 futex(0x7f00, 0x80, 0, NULL <unfinished ...>
30 2.000006 execve("/bin/true", ["true"], 0x7ffd /* 1 var */ <pid changed to 29 ...>
29 2.000007 <... execve resumed>) = 0 <0.000300>
10 3.000001 read(3</dev/null<char 1:3>>, <unfinished ...>
10 3.000002 <... read resumed>"", 5strace: Process 13 attached
) = 0 <0.000010>
13 3.000003 getpid() = 13
10 3.000004 close(3</dev/null<char 1:3>> <unfinished ...>
13 3.000005 exit_group(0) = ?
10 3.000006 <... close resumed>) = 0 <0.000010>
13 3.000007 +++ exited with 0 +++
"""


def test_cut_calls_read_the_same_through_the_fast_paths():
    """Each line of CUT_SHAPES read by the fast paths for kprof's format and by the general path (the same lines with
    a space before the pid, a prefix only the general path takes): the same events, counts and unparsed lines."""
    def read(lines):
        q = StraceLogParser()
        events = [repr(e) for e in q.feed(lines)]
        return events, [repr(e) for e in q.finish()], q.stats.events, q.stats.unparsed, sorted(q._live)
    lines = CUT_SHAPES.splitlines(keepends=True)
    fast = read(lines)
    assert fast == read([" " + line if line[0].isdigit() else line for line in lines])
    assert (fast[2], fast[3], fast[4]) == (13, 0, [10, 11, 12, 19, 29, 30])     # 12 calls, an exit, none unparsed
    assert "duration=1e-05, time=3.000001" in fast[0][8]     # the read cut by strace's message, joined
    assert "name='execve', args='\"/bin/true\"" in fast[0][7]   # its start from the thread that called it


def test_connected_sockets_and_realtime_signals():
    events, p = parse(
        '8 ioctl(5<TCP:[127.0.0.1:45000->127.0.0.1:1337]>, 0x5421, [1]) = 0\n'
        '8 sendto(6<UNIX-STREAM:[1234->5678]>, "x", 1, 0, NULL, 0) = 1\n'
        "8 --- SIGRT_1 {si_signo=SIGRT_1, si_code=SI_TKILL} ---\n"
        "8 +++ killed by SIGRT_2 +++\n")
    ioctl, sendto, sig, killed = events
    assert (ioctl.fd.path, ioctl.fd.device_class) == ("TCP:[127.0.0.1:45000->127.0.0.1:1337]", "socket:tcp")
    assert split_args(ioctl.args) == ["5<TCP:[127.0.0.1:45000->127.0.0.1:1337]>", "0x5421", "[1]"]
    assert sendto.fd.path == "UNIX-STREAM:[1234->5678]" and len(split_args(sendto.args)) == 6
    assert sendto.address is None and ioctl.request == 0x5421
    assert (sig.signal, killed.signal) == ("SIGRT_1", "SIGRT_2") and p.stats.unparsed == 0


def test_strace_own_messages_are_not_unparsed_lines():
    _, p = parse("strace: Process 12 attached\n/usr/bin/strace: Process 13 detached\n1 getpid() = 1\n")
    assert p.stats.unparsed == 0


def test_summary_cross_check_allows_strace_more_only_for_calls_the_log_shows_as_unknown():
    from profiler.analysis import summary_mismatches
    from profiler.footprint import Footprint, SyscallStat
    from profiler.parse.strace_log import StraceSummary
    from collections import Counter

    fp = Footprint(arch="x86_64")
    fp.syscalls["futex"] = SyscallStat(calls=12, errors=Counter({"EAGAIN": 3}), unfinished=2)
    fp.syscalls["read"] = SyscallStat(calls=5, errors=Counter({"EAGAIN": 1}))
    ok = StraceSummary(calls={"futex": 10, "read": 5}, errors={"futex": 5, "read": 1})
    assert summary_mismatches(fp, ok) == []   # 2 more futex errors, 2 calls ended "= ?" in the log
    too_many = StraceSummary(calls={"futex": 10, "read": 5}, errors={"futex": 6, "read": 2})
    assert summary_mismatches(fp, too_many) == ["futex: kprof 10 calls/3 errors, strace -c 10/6",
                                                "read: kprof 5 calls/1 errors, strace -c 5/2"]
    fewer = StraceSummary(calls={"futex": 10, "read": 5}, errors={"futex": 2, "read": 1})
    assert summary_mismatches(fp, fewer) == ["futex: kprof 10 calls/3 errors, strace -c 10/2"]
    one_counted = StraceSummary(calls={"futex": 11, "read": 5}, errors={"futex": 4, "read": 1})
    assert summary_mismatches(fp, one_counted) == []   # strace counted one "= ?" call, with its error
    three = StraceSummary(calls={"futex": 13, "read": 5}, errors={"futex": 3, "read": 1})
    assert summary_mismatches(fp, three) == ["futex: kprof 10 calls/3 errors, strace -c 13/3"]


def test_prefixes_of_i_n_Y_and_whole_second_times():
    events, p = parse(
        "12025<corpus> 1796563465.645614 [  59] [00007f166892dad7] execve(\"/x\", [\"x\"], 0x7ffe /* 3 vars */) = 0\n"
        "[pid 12026<x y>] [  12] [00007f10bcc42c47] brk(NULL) = 0x55781d642000\n"
        "12038 1796563456 getppid() = 1\n")
    assert [(e.pid, e.name) for e in events] == [(12025, "execve"), (12026, "brk"), (12038, "getppid")]
    assert events[0].time == pytest.approx(1796563465.645614) and events[2].time == 1796563456
    (alone,), q = parse("1796563456 getpid()               = 7\n")   # no -f: a whole-second time, not a pid
    assert (alone.pid, alone.time, alone.result) == (0, 1796563456, 7)
    assert p.stats.unparsed == q.stats.unparsed == 0


def test_results_are_found_by_scanning_not_by_the_last_equals_sign():
    events, _ = parse(
        '9 1.0 openat(-100</w>, "x) = -1 ENOENT (y", 0x42, 0600) = 3</w/x) = -1 ENOENT (y> <0.000045>\n'
        '9 1.1 ioctl(3</w/trailing->, 0x5401, 0x7ff) = -1 ENOTTY (Inappropriate ioctl for device)\n'
        '9 1.2 ioctl(3</w/q\\"u(ote[>, 0x40206b00 /* SPI_IOC_MESSAGE(32) */, 0) = -1 ENOTTY (x)\n'
        "9 1.3 getppid() = -1 (errno 41) (INJECTED)\n")
    op, tr, q, inj = events
    assert (op.result, op.errno, op.result_fd.path) == (3, None, "/w/x) = -1 ENOENT (y")
    assert tr.fd.path == "/w/trailing-" and tr.errno == "ENOTTY" and tr.request == 0x5401
    assert q.fd.path == '/w/q"u(ote[' and split_args(q.args)[1] == "0x40206b00 /* SPI_IOC_MESSAGE(32) */"
    assert q.request == 0x40206b00
    assert inj.errno == "errno 41" and inj.injected


def test_summary_tables_appended_are_summed_per_personality_and_custom_columns_read():
    _, p = parse(
        "1 read(0, \"\", 1) = 0\n"
        "% time     seconds  usecs/call     calls    errors syscall\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        " 86.79    0.648678        7542        86        43 wait4\n"
        "  2.02    0.015068          10      1451           read\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        "100.00    0.747396          78      1537        43 total\n"
        "System call usage summary for 32 bit mode:\n"
        "% time     seconds  usecs/call     calls    errors syscall\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        "100.00    0.000014          14         2           read\n"
        "------ ----------- ----------- --------- --------- ----------------\n"
        "100.00    0.000014          14         2           total\n"
        "2 read(0, \"\", 1) = 0\n"
        "syscall            calls    errors\n"
        "---------------- --------- ---------\n"
        "read                     3         1\n"
        "wait4                    1\n"
        "---------------- --------- ---------\n"
        "total                    4         1\n")
    # the 32-bit table's rows stay apart (another ABI's calls); the next table is the native one again
    assert p.summary.calls == {"wait4": 87, "read": 1454, "read (32 bit mode)": 2}
    assert p.summary.errors == {"wait4": 43, "read": 1, "read (32 bit mode)": 0}
    assert p.summary.tables == 3 and p.stats.events == 2 and p.stats.unparsed == 0


def test_stderr_log_with_attach_messages_cutting_lines_and_no_pid_for_a_lone_task():
    events, p = parse(
        "execve(\"./a\", [\"./a\"], 0x7ffe /* 35 vars */) = 0\n"
        "clone(child_stack=NULL, flags=SIGCHLDstrace: Process 31 attached\n"
        " <unfinished ...>\n"
        "[pid    31] getpid() = 31\n"
        "[pid    30] <... clone resumed>, child_tidptr=0x7f) = 31\n"
        "[pid    31] +++ exited with 0 +++\n"
        "exit_group(0)                           = ?\n"
        "+++ exited with 0 +++\n")
    calls = [(e.pid, e.name) for e in events if isinstance(e, SyscallEvent)]
    assert calls == [(0, "execve"), (31, "getpid"), (30, "clone"), (30, "exit_group")]
    assert [e.status for e in events if getattr(e, "kind", "") == "renamed"] == [30]
    assert events[-1].pid == 30 and p.stats.unparsed == 0


def test_stderr_log_without_attach_messages_names_the_first_task_by_its_own_lines():
    """strace -q (no "Process N attached" lines) to stderr: the first "[pid N]" may be a new task's. It is not the
    first task when that task's fork returned N, nor when the first task is inside a call its line does not resume
    (strace -f -q of kprof's corpus program named a thread the root in 4 runs of 4 before this)."""
    start = "execve(\"./a\", [\"./a\"], 0x7ffe /* 35 vars */) = 0\n"
    done = (start + "clone3({flags=CLONE_VM|CLONE_THREAD}, 88) = 41\n"
            "[pid    41] read(3, \"\", 16) = 0\n"
            "[pid    40] getpid() = 40\n"
            "[pid    41] +++ exited with 0 +++\n"
            "+++ exited with 0 +++\n")
    cut = (start + "clone3({flags=CLONE_VM|CLONE_THREAD} <unfinished ...>\n"
           "[pid    41] set_robust_list(0x7f, 24) = 0\n"
           "[pid    40] <... clone3 resumed>, 88) = 41\n"
           "[pid    41] +++ exited with 0 +++\n"
           "+++ exited with 0 +++\n")
    for text in (done, cut):
        events, p = parse(text)
        assert [e.status for e in events if getattr(e, "kind", "") == "renamed"] == [40], text
        calls = [(e.pid, e.name) for e in events if isinstance(e, SyscallEvent)]
        assert (40, "clone3") in calls or (0, "clone3") in calls
        assert (41, "read") in calls or (41, "set_robust_list") in calls
        assert events[-1].pid == 40 and p.stats.unparsed == 0
        from profiler.analysis import StraceAnalysis
        a = StraceAnalysis("x86_64")
        a.feed(text.splitlines(True))
        fp = a.finish().footprint
        assert (fp.root_pid, fp.exit) == (40, {"exit": 0}), text


def test_exec_from_a_non_leader_thread_moves_the_call_to_the_leader():
    events, _ = parse(
        "40 pause( <unfinished ...>\n"
        '41 execve("/bin/x", ["x"], 0x7ff /* 1 var */ <unfinished ...>\n'
        "40 <... pause resumed>) = ?\n"
        "40 +++ superseded by execve in pid 41 +++\n"
        "40 <... execve resumed>) = 0\n"
        "40 ???( <unfinished ...>\n"
        "40 <... ??? resumed>) = ?\n")
    names = [(e.pid, e.name, e.args[:9]) for e in events]
    assert names == [(40, "pause", ""), (40, "execve", '"/bin/x",')]


@pytest.mark.parametrize("quiet", [False, True])
def test_exec_from_a_non_leader_thread_with_pid_changed(quiet):
    """strace's other form of the same exec (its own test, threads-execve): the thread's execve line ends
    "<pid changed to LEADER ...>" and the leader's pid finishes it, after the "superseded" line (left out by
    -qqq): one execve, the leader's, with its arguments; the leader's own cut call never returned."""
    events, p = parse(
        "40 nanosleep({tv_sec=123, tv_nsec=0},  <unfinished ...>\n"
        "41 nanosleep({tv_sec=0, tv_nsec=12345}, NULL) = 0\n"
        '41 execve("/bin/x", ["/bin/x", "0"], 0x7ff /* 1 var */ <pid changed to 40 ...>\n'
        + ("" if quiet else "40 +++ superseded by execve in pid 41 +++\n") +
        "40 <... execve resumed>) = 0\n"
        "40 exit_group(0) = ?\n"
        "40 +++ exited with 0 +++\n")
    calls = [(e.pid, e.name, e.result, e.args) for e in events if isinstance(e, SyscallEvent)]
    assert calls == [(41, "nanosleep", 0, "{tv_sec=0, tv_nsec=12345}, NULL"),
                     (40, "nanosleep", None, "{tv_sec=123, tv_nsec=0}, "),
                     (40, "execve", 0, '"/bin/x", ["/bin/x", "0"], 0x7ff /* 1 var */'),
                     (40, "exit_group", None, "0")]
    assert p.stats.unparsed == 0



def test_paths_past_ascii_are_read_as_utf8():
    """strace escapes every byte past ASCII (as real strace 6.1 prints /tmp/ü2 and a socket at /run/ü):
    a path's bytes are UTF-8, a byte that is not stays visible as \\xNN; a port's or address's bytes stay bytes."""
    events, _ = parse(
        '7 1.0 openat(-100</tmp>, "/tmp/\\303\\2742", 0x941, 0666) = 3</tmp/\\303\\2742> <0.000460>\n'
        '7 1.1 openat(-100</tmp>, "/tmp/\\377x", 0) = -1 ENOENT (No such file or directory)\n'
        '7 1.2 connect(4<UNIX-STREAM:[9]>, {sa_family=0x1, sun_path="/run/\\303\\274"}, 110) = 0\n'
        '7 1.3 connect(5<TCP:[1]>, {sa_family=0x2, sin_port="\\303\\274", sin_addr="\\177\\0\\0\\1"}, 16) = 0\n')
    opened, bad, unix, inet = events
    assert (opened.result_fd.path, bad.path) == ("/tmp/\u00fc2", "/tmp/\\xffx")
    assert (unix.address, inet.address) == ("unix:/run/\u00fc", "inet:127.0.0.1:50108")



def test_fexecve_runs_the_file_behind_its_fd():
    """execveat(fd, "", …, AT_EMPTY_PATH) (fexecve) runs the file the fd is open on: the program and the new
    image are that file (they were '' and "(before the first exec)")."""
    from profiler.footprint import FootprintBuilder
    events, _ = parse('7 1.0 execveat(3</usr/bin/true>, "", ["true"], 0x7ffd /* 3 vars */, 0x1000) = 0\n'
                      '7 1.1 getpid() = 7\n'
                      '8 1.2 execveat(4</usr/bin>, "env", ["env"], 0x7ffd /* 3 vars */, 0) = 0\n')
    assert [e.path for e in events if e.name == "execveat"] == ["/usr/bin/true", "/usr/bin/env"]
    b = FootprintBuilder("x86_64")
    for e in events:
        b.add(e)
    fp = b.finish()
    assert set(fp.programs) == {"/usr/bin/true", "/usr/bin/env"}
    assert fp.processes[7]["images"][-1]["exe"] == "/usr/bin/true"

def test_a_family_kprof_does_not_name_has_one_key_with_and_without_x_raw():
    assert sockaddr("{sa_family=AF_PACKET, sll_protocol=htons(ETH_P_ALL)}") == "family:0x11"
    assert sockaddr("{sa_family=0x11, sll_protocol=0x300}") == "family:0x11"     # -X raw, as the bpf backend
    assert sockaddr("{sa_family=0x99}") == "family:0x99"

def test_typed_fields_read_from_the_argument_text():
    """What the footprint and the fault analysis read is typed by the parser: they read no strace syntax."""
    text = (
        '5 1.0 openat(AT_FDCWD</w>, "rel", O_RDONLY) = -1 ENOENT (No such file or directory)\n'
        '5 1.1 openat(7</d\\76>, "x", 0) = -1 EACCES (Permission denied)\n'
        '5 1.2 openat(-100</w>, "/etc/a", 0x80000) = 3</etc/a> <0.1>\n'
        '5 1.3 execve("/bin/sh", ["sh"], 0x7ffe /* 3 vars */) = 0\n'
        '5 1.4 execveat(AT_FDCWD</w>, "prog", ["p"], NULL, 0) = -1 ENOENT (x)\n'
        '5 1.5 clone(child_stack=NULL, flags=0x1200000|17) = 6\n'
        '5 1.6 clone3({flags=CLONE_VM|CLONE_THREAD, exit_signal=0}, 88) = 7\n'
        '5 1.7 clone3({flags=0x3d0f00, exit_signal=0}, 88) = 8\n'
        '5 1.8 connect(4<UNIX-STREAM:[9]>, {sa_family=AF_UNIX, sun_path="/tmp/s"}, 110) = 0\n'
        '5 1.9 sendto(4<UDP:[1]>, "z", 1, 0, {sa_family=AF_INET, sin_port=htons(53), '
        'sin_addr=inet_addr("10.0.0.1")}, 16) = 1\n'
        '5 2.0 accept4(3<TCP:[2]>, NULL, NULL, 0) = 5<TCP:[127.0.0.1:1337->127.0.0.1:50432]>\n'
        '5 2.1 ioctl(0</dev/pts/0<char 136:0>>, TCGETS, {c_iflag=0}) = 0\n'
        '5 2.2 newfstatat(AT_FDCWD</w>, "f", 0x7ffe, 0) = 0\n')
    ev, p = parse(text)
    rel, at, ok, sh, prog, fork, thread, thread_raw, conn, send, acc, ioctl, stat = ev
    assert (rel.path, at.path, ok.path, ok.result_fd.path) == ("/w/rel", "/d>/x", None, "/etc/a")
    assert (sh.path, prog.path) == ("/bin/sh", "/w/prog")       # execveat: relative to its dirfd, as openat
    assert (fork.thread, thread.thread, thread_raw.thread) == (False, True, True)
    assert (conn.address, send.address, acc.address) == ("unix:/tmp/s", "inet:10.0.0.1:53", "inet:127.0.0.1:1337")
    assert acc.result_fd.device_class == "socket:tcp"
    assert ioctl.request == 0x5401 and ioctl.fd.text == "/dev/pts/0<char 136:0>"
    assert stat.path is None     # only the fault analysis reads every call's path argument
    q = StraceLogParser(paths=True)
    (stat2,) = [e for e in q.feed(text.splitlines(True)) if e.name == "newfstatat"]
    assert stat2.path == "f"


def test_a_result_strace_could_not_read_is_a_call_made_not_an_unfinished_one():
    """``= ? <unavailable>``: the task reached the call's exit and was killed before strace read the result
    (seen in a -k log: set_robust_list in a child its parent SIGKILLs). strace's -c counts it as a call, with
    no error; an unfinished call is one that never returned (the SIGKILL inside read below)."""
    from profiler.analysis import StraceAnalysis
    text = ("30 set_robust_list(0x7f66dcfc7a20, 24 <unfinished ...>\n"
            "31 kill(30, SIGKILL <unfinished ...>\n"
            "30 <... set_robust_list resumed>)    = ? <unavailable>\n"
            "31 <... kill resumed>)               = 0\n"
            "32 set_robust_list(0x7f66dcfc7a20, 24) = ? <unavailable> <0.000012>\n"
            "33 read(0,  <unfinished ...>\n"
            "30 +++ killed by SIGKILL +++\n"
            "32 +++ killed by SIGKILL +++\n"
            "33 +++ killed by SIGKILL +++\n")
    events, p = parse(text)
    robust = [e for e in events if isinstance(e, SyscallEvent) and e.name == "set_robust_list"]
    assert [(e.result, e.errno, e.result_lost, e.result_fd) for e in robust] == [(None, None, True, None)] * 2
    assert p.stats.unparsed == 0
    a = StraceAnalysis("x86_64")
    a.feed(text.splitlines(True))
    fp = a.finish().footprint
    assert (fp.syscalls["set_robust_list"].calls, fp.syscalls["set_robust_list"].unfinished) == (2, 0)
    assert sum(fp.syscalls["set_robust_list"].errors.values()) == 0
    assert (fp.syscalls["read"].calls, fp.syscalls["read"].unfinished) == (1, 1)


def test_an_errno_past_the_kernels_range_is_a_result_not_read():
    """A Go thread's rt_sigprocmask, its sibling in exit_group: strace printed "-1 (errno 18446744073709551602)"
    (a real pump-loop run; a child killed in set_robust_list did the same). The kernel returns errors of 1 to
    MAX_ERRNO (4095) only: this is strace misreading a dying task, not an error the kernel gave, so it is a call
    made whose result was not read, never a new errno in a footprint. strace -c counts it as an error: the
    cross-check allows that many more errors, not more."""
    from profiler.analysis import StraceAnalysis, summary_mismatches
    from profiler.footprint import Footprint
    from profiler.parse.strace_log import StraceSummary
    text = ("23000 1796660329.407137 rt_sigprocmask(0x2, [],  <unfinished ...>\n"
            "22993 1796660329.407152 exit_group(0 <unfinished ...>\n"
            "23000 1796660329.407202 <... rt_sigprocmask resumed>NULL, 8) = -1 (errno 18446744073709551602) <0.000058>\n"
            "23001 1796660329.407203 getpid() = -1 (errno 4095) <0.000001>\n"
            "23000 1796660329.407302 +++ exited with 0 +++\n"
            "22993 1796660329.407304 <... exit_group resumed>) = ?\n")
    events, p = parse(text)
    calls = {e.name: e for e in events if isinstance(e, SyscallEvent)}
    mask = calls["rt_sigprocmask"]
    assert (mask.result, mask.errno, mask.result_lost, mask.never_returned) == (None, None, True, False)
    assert (calls["getpid"].result, calls["getpid"].errno) == (-1, "errno 4095")    # the edge is still an errno
    assert p.stats.unparsed == 0
    a = StraceAnalysis("x86_64")
    a.feed(text.splitlines(True))
    fp = a.finish().footprint
    row = fp.syscalls["rt_sigprocmask"]
    assert (row.calls, row.unfinished, row.unread, dict(row.errors)) == (1, 0, 1, {})
    assert Footprint.from_dict(fp.to_dict()).syscalls["rt_sigprocmask"].unread == 1
    summary = StraceSummary(calls={"rt_sigprocmask": 1, "getpid": 1}, errors={"rt_sigprocmask": 1, "getpid": 1})
    assert summary_mismatches(fp, summary) == []
    summary.errors["rt_sigprocmask"] = 2
    assert summary_mismatches(fp, summary) == ["rt_sigprocmask: kprof 1 calls/0 errors, strace -c 1/2"]
    # a table without a calls column (-U name,errors) allows the same, and no more
    errors_only = StraceSummary(calls={"rt_sigprocmask": 0, "getpid": 0}, errors={"rt_sigprocmask": 1, "getpid": 1},
                                columns=frozenset({"errors"}))
    assert summary_mismatches(fp, errors_only) == []
    errors_only.errors["rt_sigprocmask"] = 2
    assert summary_mismatches(fp, errors_only) == ["rt_sigprocmask: kprof 0 errors, strace -c 2"]
    # nor a call cut short that strace lists with no error (a == b there: the allowance must still apply)
    cut = StraceAnalysis("x86_64")
    cut.feed(["51 1.0 futex(0x1, FUTEX_WAIT, 0 <unfinished ...>\n", "50 1.1 exit_group(0) = ?\n",
              "51 1.2 +++ exited with 0 +++\n", "50 1.2 +++ exited with 0 +++\n"])
    listed = StraceSummary(calls={"futex": 0}, errors={"futex": 0}, columns=frozenset({"errors"}))
    assert summary_mismatches(cut.finish().footprint, listed) == []
    # the one error strace counted for it is no sign of -z (strace printing only the calls that succeeded)
    text = text.replace("getpid() = -1 (errno 4095)", "getpid() = 23001")
    b = StraceAnalysis("x86_64")
    b.feed(text.splitlines(True))
    fp = b.finish().footprint
    other = StraceSummary(calls={"rt_sigprocmask": 1, "getpid": 2}, errors={"rt_sigprocmask": 1, "getpid": 0})
    assert summary_mismatches(fp, other) == ["getpid: kprof 1 calls/0 errors, strace -c 2/0"]
    # nor does it hide -Z (strace printing only the calls that failed, and this one, which it took for one):
    # a -Z log of kprof's own corpus program did that (1 run in ~240)
    failed = ("23001 1796660329.407203 getpid() = -1 (errno 4095) <0.000001>\n"
              "23000 1796660329.407202 rt_sigprocmask(0x2, [], NULL, 8) = -1 (errno 18446744073709551602) <0.000058>\n")
    c = StraceAnalysis("x86_64")
    c.feed(failed.splitlines(True))
    fp = c.finish().footprint
    z = StraceSummary(calls={"rt_sigprocmask": 1, "getpid": 3}, errors={"rt_sigprocmask": 1, "getpid": 1})
    assert summary_mismatches(fp, z)[0].startswith("the log was recorded with -Z (--failed-only)")
