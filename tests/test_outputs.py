"""Output files: written atomically (no 0-byte footprint.json/meta.json on a full disk, never through a link
someone planted), an existing bundle never mixed into, a directory another user owns refused when root, the
workdir private whatever the fixtures' mode, and every output-path error one message with exit 2."""
from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from .conftest import ROOT, device_state, kprof, needs_root, needs_strace, restore_device
from .test_bad_input import no_traceback, scenario

LOG = '1 1.0 openat(-100</>, "/etc/hosts", 0x80000) = 3</etc/hosts> <0.1>\n1 1.1 close(3</etc/hosts>) = 0 <0.1>\n'


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs of the test's own, unmounted in teardown."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=755", "kprof-test-full", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(directory):
    """Fill the file system under ``directory`` up to the last byte."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 16, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def leftovers(directory):
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_full_disk_leaves_no_empty_file_and_no_temp_file(tmp_path, small_tmpfs):
    log = tmp_path / "x.log"
    log.write_text(LOG)
    (small_tmpfs / "fp.json").write_text('{"old": "kept"}')
    fill(small_tmpfs)
    p = kprof("analyze", log, "--footprint", small_tmpfs / "fp.json", check=2)
    no_traceback(p)
    assert "fp.json: cannot write: no space left on the device" in p.stderr
    assert (small_tmpfs / "fp.json").read_text() == '{"old": "kept"}', "the old file stays whole"
    assert leftovers(small_tmpfs) == []
    p = kprof("analyze", log, "--footprint", small_tmpfs / "new.json", check=2)
    assert not (small_tmpfs / "new.json").exists() and leftovers(small_tmpfs) == []


@needs_strace
@needs_root
def test_run_onto_a_full_disk_is_one_message_and_no_empty_meta(tmp_path, small_tmpfs):
    """The command fills the file system the bundle is on: whatever kprof could not write is absent, never
    empty or half-written, and the error is one message."""
    bundle = small_tmpfs / "b"
    sc = scenario(tmp_path, "fills", f"cat /etc/hostname; head -c 2M /dev/zero > {small_tmpfs}/filler", shell=True,
                  network="host", timeout=20)
    p = kprof("run", sc, "--out", bundle, "-q", env={"TMPDIR": str(tmp_path)})
    no_traceback(p)
    assert p.returncode == 2 and "no space left on the device" in p.stderr, p.stderr
    for name in ("footprint.json", "meta.json", "report.txt"):
        if (bundle / name).exists():
            assert (bundle / name).stat().st_size > 0, name
            if name.endswith(".json"):
                json.loads((bundle / name).read_text())
    assert leftovers(bundle) == []


def test_symlink_at_the_output_is_replaced_not_followed(tmp_path):
    """Another user's link at the output path (fs.protected_symlinks=0): the link is replaced, the file it
    points to is untouched."""
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    log = tmp_path / "x.log"
    log.write_text(LOG)
    for cmd in (["analyze", log, "--footprint"], ["report", ROOT / "tests" / "data" / "junit-10.xsd", "-o"]):
        out = tmp_path / "out"
        out.unlink(missing_ok=True)
        out.symlink_to(victim)
        if cmd[0] == "report":
            kprof("analyze", log, "--footprint", tmp_path / "fp.json", check=0)
            cmd = ["report", tmp_path / "fp.json", "-o"]
        kprof(*cmd, out, check=0)
        assert victim.read_text() == "root's file\n"
        assert not out.is_symlink() and out.stat().st_size > 0


@needs_strace
@needs_root
def test_existing_bundle_is_refused_unless_force_which_clears_it(tmp_path):
    sc = scenario(tmp_path, "twice", "cat /etc/hostname", shell=True, network="host", repeat=2)
    bundle = tmp_path / "b"
    kprof("run", sc, "--out", bundle, "-q", check=0)
    assert (bundle / "run-2").is_dir()
    once = scenario(tmp_path, "twice", "cat /etc/hostname", shell=True, network="host")
    p = kprof("run", once, "--out", bundle, "-q", check=2)
    no_traceback(p)
    assert "holds a result bundle already" in p.stderr and "--force" in p.stderr
    kprof("run", once, "--out", bundle, "-q", "--force", check=0)
    assert not (bundle / "run-2").exists(), "the old bundle's run-2 is not mixed into the new one"
    assert len(json.loads((bundle / "meta.json").read_text())["runs"]) == 1
    other = tmp_path / "notabundle"
    other.mkdir()
    (other / "precious.txt").write_text("x")
    p = kprof("run", once, "--out", other, "-q", "--force", check=2)
    assert "not a kprof result bundle" in p.stderr and (other / "precious.txt").exists()


@needs_root
def test_root_refuses_an_output_directory_another_user_owns(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    sc = scenario(tmp_path, "owned", "true", shell=True, network="host")
    for where in (theirs, theirs / "new"):
        p = kprof("run", sc, "--out", where, "-q", check=2)
        no_traceback(p)
        assert f"{theirs}: owned by uid 65534, not root" in p.stderr
    assert list(theirs.iterdir()) == []
    # their link to a directory root owns: followed, it looked root's (its owner could repoint it meanwhile)
    ours, link = tmp_path / "ours", tmp_path / "link"
    ours.mkdir()
    link.symlink_to(ours)
    os.lchown(link, 65534, 65534)
    p = kprof("run", sc, "--out", link, "-q", check=2)
    no_traceback(p)
    assert f"{link}: a symbolic link owned by uid 65534, not root" in p.stderr and list(ours.iterdir()) == []


@needs_strace
@needs_root
def test_workdir_is_private_whatever_the_fixtures_mode(tmp_path):
    fixtures = tmp_path / "fx"
    fixtures.mkdir()
    (fixtures / "input.json").write_text("{}")
    fixtures.chmod(0o777)
    sc = scenario(tmp_path, "modes", "stat -c %a .", shell=True, network="host", fixtures=["fx"])
    bundle = tmp_path / "b"
    kprof("run", sc, "--out", bundle, "-q", check=0, env={"TMPDIR": str(tmp_path)})
    assert (bundle / "stdout.txt").read_text().strip() == "700"


def test_every_output_path_error_is_one_message(tmp_path):
    log = tmp_path / "x.log"
    log.write_text(LOG)
    fp = tmp_path / "fp.json"
    kprof("analyze", log, "--footprint", fp, check=0)
    afile = tmp_path / "afile"
    afile.write_text("x")
    sc = scenario(tmp_path, "outs", "true", shell=True, network="host")
    cases = {
        "run -o a file": (["run", sc, "-o", afile], "exists and is not a directory"),
        "run -o under a file": (["run", sc, "-o", afile / "b"], "not a directory"),
        "analyze --footprint under a file": (["analyze", log, "--footprint", afile / "fp.json"], "not a directory"),
        "analyze --footprint a directory": (["analyze", log, "--footprint", tmp_path], "is a directory"),
        "report -o under a file": (["report", fp, "-o", afile / "r.txt"], "not a directory"),
        "report -o missing directory": (["report", fp, "-o", tmp_path / "no" / "r.txt"], "does not exist"),
        "compare -o a directory": (["compare", fp, fp, "-o", tmp_path], "is a directory"),
        "new --dir a file": (["new", "probe", "--dir", afile], "exists and is not a directory"),
        "new --dir under a file": (["new", "probe", "--dir", afile / "d"], "not a directory"),
    }
    for case, (args, message) in cases.items():
        p = kprof(*args)
        assert p.returncode == 2, (case, p.returncode, p.stderr)
        no_traceback(p)
        assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1, (case, p.stderr)


def test_unwritable_directory_as_another_user(tmp_path):
    """Not root: a directory the user cannot write is one message (run as nobody through setpriv)."""
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    log = tmp_path / "x.log"
    log.write_text(LOG)
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    log.chmod(0o644)
    closed = tmp_path / "closed"              # a directory nobody but root may enter
    closed.mkdir(mode=0o700)
    (closed / "x.log").write_text(LOG)
    for p_ in tmp_path.parents:               # pytest's directories up to the temp directory (0700)
        if p_.stat().st_uid == 0 and not p_.stat().st_mode & stat.S_IXOTH:
            p_.chmod(p_.stat().st_mode | stat.S_IXOTH)
    for args in ([str(log), "--footprint", str(ro / "fp.json")], [str(closed / "x.log")]):
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", os.sys.executable,
                            "-m", "profiler", "analyze", *args], capture_output=True, text=True, cwd=ROOT)
        assert p.returncode == 2 and "permission denied" in p.stderr, p.stderr
        no_traceback(p)


@needs_strace
@needs_root
def test_baseline_save_does_not_follow_a_planted_temp_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    sc = scenario(tmp_path, "based", "cat /etc/hostname", shell=True, network="host")
    d = tmp_path / "baselines"
    d.mkdir()
    for name in ("based.json.tmp", "based.json"):
        (d / name).symlink_to(victim)
    kprof("baseline", "save", sc, "--repeat", "1", "--dir", d, "--results", tmp_path / "r", check=0)
    assert victim.read_text() == "root's file\n"
    assert json.loads((d / "based.json").read_text())["format"] == "kprof-baseline"


def test_output_to_a_device_or_stdout_is_written_into_never_replaced(tmp_path):
    """-o /dev/null must not turn the machine's /dev/null into a regular file (renaming over it would, as root);
    -o /dev/stdout writes to the caller's stdout, a pipe here."""
    log = tmp_path / "x.log"
    log.write_text(LOG)
    kprof("analyze", log, "--footprint", tmp_path / "fp.json", check=0)
    state = device_state()
    try:
        kprof("report", tmp_path / "fp.json", "-f", "json", "-o", "/dev/null", check=0)
        assert device_state() == state
    finally:
        if device_state() != state:
            restore_device("/dev/null", state["/dev/null"])
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    p = kprof("report", tmp_path / "fp.json", "-f", "json", "-o", "/dev/stdout", check=0)
    assert json.loads(p.stdout)["sections"], p.stdout[:300]
    assert os.path.islink("/dev/stdout")
    assert not [n for n in os.listdir("/dev") if n.endswith(".tmp")]
