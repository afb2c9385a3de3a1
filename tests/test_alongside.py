"""Per-command footprints next to the whole workload: subsystem and syscall tables, and what the whole
workload used that no scenario explains — compared by name and subsystem, never by number (the scenarios
here are x86_64 strace footprints, the whole workload a 32-bit arm ftrace)."""
from __future__ import annotations

import json

import pytest

from profiler.alongside import alongside_sections, load_footprints, load_whole_workload
from profiler.errors import KprofError
from profiler.events import SyscallEvent
from profiler.footprint import FootprintBuilder
from profiler.parse import ftrace_text as ft

from .test_ftrace_parse import kp, line

WHOLE = "\n".join([
    line("node", 1234, 1000.0001, "sys_enter: NR 336 (7e8f1000, 1, 7e8f1010, 0, 8, 0)", 2),        # ppoll
    line("node", 1234, 1000.0002, "sys_exit: NR 336 = 1", 2),
    line("node", 1234, 1000.0003, "sys_enter: NR 54 (17, 40206b00, 7e8f1234, 0, 0, 0)", 2),        # SPI
    line("node", 1234, 1000.0004, "sys_exit: NR 54 = 1", 2),
    line("node", 1234, 1000.0005, "sys_enter: NR 327 (ffffff9c, 7e8f2000, 7e8f2100, 0, 0, 0)", 2),  # fstatat64
    line("node", 1234, 1000.0006, "sys_exit: NR 327 = 0", 2),
    line("node", 1234, 1000.0007, "sys_enter: NR 3 (5, 7e8f3000, 1000, 0, 0, 0)", 2),               # read
    line("node", 1234, 1000.0008, "sys_exit: NR 3 = 12", 2),
    line("cron", 400, 1000.0009, "sys_enter: NR 281 (2, 1, 0, 0, 0, 0)", 1),                        # socket
    line("cron", 400, 1000.0010, "sys_exit: NR 281 = 3", 1),
]) + "\n"


def scenario(*calls):
    b = FootprintBuilder("x86_64")
    for name, args in calls:
        request = int(args.split(", ")[1], 16) if name == "ioctl" else None   # typed, as a parser gives it
        b.add(SyscallEvent(pid=10, name=name, args=args, result=0, request=request))
    return b.finish()


@pytest.fixture
def footprints(tmp_path):
    (tmp_path / "whole.txt").write_text(WHOLE)
    whole = ft.analyse_trace([tmp_path / "whole.txt"], "arm").footprint
    a = scenario(("ppoll", "0x7ffd0000, 1, NULL, NULL, 8"), ("read", "5, 0x1000, 4096"),
                 ("newfstatat", "AT_FDCWD, \"/tmp\", 0x7ffd1000, 0"))
    b = scenario(("read", "3, 0x1000, 4096"), ("ioctl", "3, 0x5401, 0x7ffd2000"), ("getpid", ""))
    return {"determine-basal": a, "get-profile": b}, whole


def rows_of(secs, start):
    [s] = [s for s in secs if s.title.startswith(start)]
    return s


def test_tables_and_what_no_scenario_explains(footprints):
    per, whole = footprints
    secs = alongside_sections(per, whole)
    subs = rows_of(secs, "Kernel subsystems")
    assert subs.headers == ["subsystem", "determine-basal", "get-profile", "whole workload", "explained by"]
    by = {r[0]: r for r in subs.rows}
    assert by["fs.events"][1:] == ["1", "-", "1", "determine-basal"]               # ppoll: 271 here, 336 there
    assert by["drivers/spi"][4] == "NO SCENARIO" and by["net"][4] == "NO SCENARIO"
    assert by["drivers/tty"][1:4] == ["-", "1", "-"]                                  # scenario-only: no whole calls
    sysc = {r[0]: r for r in rows_of(secs, "System calls").rows}
    assert sysc["ppoll"][2:] == ["1", "-", "1"] and sysc["read"][2:] == ["1", "1", "1"]
    unexplained = {r[0]: r for r in rows_of(secs, "Used by the whole workload, explained by no scenario").rows}
    assert set(unexplained) == {"fstatat64", "socket"}       # ioctl is made by get-profile; its request is not:
    assert unexplained["socket"][3] == "cron 1" and unexplained["fstatat64"][3] == "node 1"
    assert "newfstatat" in unexplained["fstatat64"][5] and "fs/stat.c" in unexplained["fstatat64"][5]
    io = rows_of(secs, "ioctl requests of the whole workload")
    assert [r[0] for r in io.rows] == ["SPI_IOC_MESSAGE(1)"] and io.rows[0][2] == "drivers/spi/spidev.c"
    assert io.rows[0][5] == "node 1"
    missing = {r[0] for r in rows_of(secs, "Subsystems the whole workload uses").rows}
    assert missing == {"drivers/spi", "net"}
    only = {r[0]: r[2:] for r in rows_of(secs, "Made by scenarios, not seen").rows}
    assert only == {"newfstatat": ["determine-basal", "the whole workload makes fstatat64 (fs/stat.c)"],
                    "getpid": ["get-profile", ""]}      # the same file entered by another syscall there: a hint


def test_everything_explained(footprints):
    per, whole = footprints
    secs = alongside_sections({"all": whole}, whole)
    assert rows_of(secs, "Used by the whole workload, explained by no scenario").rows == []
    assert rows_of(secs, "Subsystems the whole workload uses").rows == []


def test_cli_alongside_saved_results(footprints, tmp_path):
    per, whole = footprints
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    per["determine-basal"].save(bundle / "footprint.json")
    (bundle / "meta.json").write_text(json.dumps({"scenario": "determine-basal"}))
    per["get-profile"].save(tmp_path / "gp.json")
    p = kp("ftrace", "analyze", tmp_path / "whole.txt", "--arch", "arm", "--alongside", bundle, tmp_path / "gp.json",
           "-f", "json", check=0)
    report = json.loads(p.stdout)
    sec = next(s for s in report["sections"] if s["title"].startswith("Kernel subsystems: each scenario"))
    assert sec["headers"][1:3] == ["determine-basal", "gp"]
    assert any(c["title"] == "Kernel subsystems (calls)" and "whole workload" in c["series"] for c in report["charts"])
    p = kp("ftrace", "analyze", tmp_path / "whole.txt", "--arch", "arm", "--alongside", tmp_path / "nothing", check=2)
    assert "footprint" in p.stderr


def test_load_whole_workload(footprints, tmp_path):
    per, whole = footprints
    whole.save(tmp_path / "whole.json")
    assert set(load_whole_workload(tmp_path / "whole.json")[0].syscalls) == set(whole.syscalls)
    with pytest.raises(KprofError, match="give --whole-arch"):       # the option of the command that reads it
        load_whole_workload(tmp_path / "whole.txt")
    fp, warnings = load_whole_workload(tmp_path / "whole.txt", arch="arm")
    assert fp.arch == "arm" and fp.syscalls["ppoll"].calls == 1 and warnings == []
    assert list(load_footprints([tmp_path / "whole.json"])) == ["whole"]


def test_the_whole_workloads_warnings_reach_the_report(footprints, tmp_path):
    """A whole-workload trace that lost events (its counts are low) or has tasks of a second ABI (left out of
    the alongside view): kprof report --whole-workload says so, as ftrace analyze does; it was silent."""
    per, _ = footprints
    per["determine-basal"].save(tmp_path / "db.json")
    (tmp_path / "lost.txt").write_text(WHOLE + "CPU:1 [LOST 1200 EVENTS]\n")
    p = kp("report", tmp_path / "db.json", "--whole-workload", tmp_path / "lost.txt", "--whole-arch", "arm",
           "-f", "json", check=0)
    warnings = json.loads(p.stdout)["warnings"]
    assert any(w.startswith("whole workload: ") and "1200" in w and "lost" in w for w in warnings), warnings


def test_a_call_an_emulated_device_answered_explains_nothing(footprints):
    """pump-status on the SPI radio path: its SPI_IOC_MESSAGE ioctls are answered by kprof's emulator (served), so
    the kernel's spidev code did not run. They explain neither the whole workload's ioctl syscall, nor its SPI
    request, nor drivers/spi; each of those rows says the scenario made such calls, emulated. Coverage agrees."""
    from profiler.coverage import coverage
    per, whole = footprints
    b = FootprintBuilder("x86_64")
    b.add(SyscallEvent(pid=10, name="ioctl", args="3, 0x40206b00, 0x7ffd2000", result=0, request=0x40206b00,
                       served=True))
    b.add(SyscallEvent(pid=10, name="read", args="3, 0x1000, 4096", result=0))
    served = b.finish()
    assert served.syscalls["ioctl"].served == 1 and not served.syscalls["ioctl"].calls
    secs = alongside_sections({"pump-status": served}, whole)
    subs = {r[0]: r for r in rows_of(secs, "Kernel subsystems").rows}
    assert subs["drivers/spi"][-1] == "NO SCENARIO (emulated in pump-status)", subs["drivers/spi"]
    unexplained = {r[0]: r for r in rows_of(secs, "Used by the whole workload, explained by no scenario").rows}
    assert unexplained["ioctl"][5] == "emulated in pump-status", unexplained["ioctl"]
    io = rows_of(secs, "ioctl requests of the whole workload")
    assert [(r[0], r[-1]) for r in io.rows] == [("SPI_IOC_MESSAGE(1)", "emulated in pump-status")]
    missing = {r[0]: r for r in rows_of(secs, "Subsystems the whole workload uses").rows}
    assert missing["drivers/spi"][2:] == ["ioctl SPI_IOC_MESSAGE(1)", "emulated in pump-status"], missing
    cov = coverage({}, whole, {"pump-status": served})
    assert cov.syscalls["ioctl"] == [] and cov.syscalls["read"] == ["pump-status"]


def test_report_leaves_out_the_whole_workloads_tail_as_ftrace_analyze_does(footprints, tmp_path):
    """ELISA left out the last 5 minutes of their trace: --whole-discard-tail (and --whole-skip) do it for the
    alongside view as `kprof ftrace analyze --discard-tail` does for the trace's own report."""
    per, _ = footprints
    late = line("cron", 400, 1400.0, "sys_enter: NR 20 (0, 0, 0, 0, 0, 0)", 1) + "\n" + \
        line("cron", 400, 1400.0001, "sys_exit: NR 20 = 400", 1) + "\n"            # getpid, 400 s after the rest
    (tmp_path / "whole.txt").write_text(WHOLE + late)
    per["determine-basal"].save(tmp_path / "db.json")

    def unexplained(*options):
        p = kp("report", tmp_path / "db.json", "--whole-workload", tmp_path / "whole.txt", "--whole-arch", "arm",
               *options, "-f", "json", check=0)
        sec = next(s for s in json.loads(p.stdout)["sections"] if s["title"].startswith("Used by the whole"))
        return {r[0] for r in sec["rows"]}
    assert "getpid" in unexplained()
    assert "getpid" not in unexplained("--whole-discard-tail", "5m")
    assert unexplained("--whole-skip", "300s") == {"getpid"}
    p = kp("report", tmp_path / "db.json", "--whole-workload", tmp_path / "whole.txt", "--whole-arch", "arm",
           "--whole-discard-tail", "soon", check=2)
    assert "--whole-discard-tail" in p.stderr and "Traceback" not in p.stderr
