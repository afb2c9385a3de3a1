"""Every scenario gets a private /tmp (a tmpfs in its own mount namespace): what the command writes there,
files and unix sockets alike, never reaches the host's /tmp, while the run's own directories under /tmp
(workdir, result bundle, the scenario file's directory) stay visible at their paths."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from .conftest import ROOT, device_state, kprof, needs_root, needs_strace, restore_device

SCENARIO = """\
name: {name}
description: writes a file and binds a unix socket in /tmp, reads a fixture, lists /tmp
command: >-
  touch /tmp/{token}.file && python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('/tmp/{token}.sock')"
  && cat fixture.txt && ls -a /tmp
shell: true
fixtures: [fixture.txt]
network: {network}
timeout: 30
requires: [python3]
expect:
  exit: 0
  stdout_contains: fixture-content
"""


@needs_strace
@needs_root
@pytest.mark.parametrize("network", ["host", "none"])
def test_command_writes_stay_in_the_private_tmp(network, tmp_path):
    assert str(tmp_path).startswith("/tmp/"), "this test needs pytest's tmp_path under /tmp"
    token = f"kprof-private-tmp-{uuid.uuid4().hex}"
    name = f"private-tmp-{network}"
    (tmp_path / f"{name}.yaml").write_text(SCENARIO.format(name=name, token=token, network=network))
    (tmp_path / "fixture.txt").write_text("fixture-content\n")
    bundle = tmp_path / "bundle"
    kprof("run", tmp_path / f"{name}.yaml", "-o", bundle, "--format", "json", check=0)

    host_tmp = os.listdir("/tmp")
    assert not [n for n in host_tmp if n.startswith(token)], "the command wrote into the host's /tmp"
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["runs"][0]["ok"], meta["runs"][0]["failures"]
    assert "private /tmp" in meta["isolation"]
    # inside, the command saw its own file and socket, and of the host's /tmp only what the run needs:
    # its workdir (kprof-NAME-*, removed since, in the suite's temp directory: a parallel suite's worker has one
    # of its own under /tmp), the top directory of pytest's tmp_path (bundle, fixtures) and,
    # when kprof itself lies under /tmp (a CI clone), the top directory of its tree and venv; kprof's own
    # loopback resolv.conf (kprof-resolv-*, bound over /etc/resolv.conf) lives in the private one
    seen = set((bundle / "stdout.txt").read_text().split())
    assert {f"{token}.file", f"{token}.sock"} <= seen
    others = seen - {f"{token}.file", f"{token}.sock", ".", "..", "fixture-content"}
    needed = {Path(p).resolve().relative_to("/tmp").parts[0]
              for p in (tmp_path, ROOT, sys.prefix, tempfile.gettempdir())
              if Path(p).resolve().is_relative_to("/tmp") and Path(p).resolve() != Path("/tmp")}
    assert {n for n in others if not n.startswith((f"kprof-{name}-", "kprof-resolv-"))} == needed, sorted(others)
    # the trace names the paths as the command used them
    trace = (bundle / "trace.log").read_text()
    assert f"/tmp/{token}.sock" in trace


@needs_strace
@needs_root
def test_what_a_command_does_under_dev_stays_in_its_private_dev(tmp_path):
    """As root, a script that renames a file over /dev/null would break the machine's /dev/null for everyone:
    every scenario gets a /dev of its own, so the host's is never touched (nor is anything created there)."""
    before = device_state()
    token = f"kprof-test-{uuid.uuid4().hex}"
    (tmp_path / "dev.yaml").write_text(
        "name: dev\ndescription: renames a file over /dev/null and creates a file in /dev\n"
        f"command: echo x > f && mv f /dev/null && test -f /dev/null && touch /dev/{token}\n"
        "shell: true\ntimeout: 30\nexpect:\n  exit: 0\n")
    try:
        kprof("run", tmp_path / "dev.yaml", "-o", tmp_path / "bundle", "--format", "json", check=0)
    finally:
        broken = device_state() != before
        if broken:   # put the machine right before failing
            restore_device("/dev/null", before["/dev/null"])
        leaked = os.path.lexists(f"/dev/{token}")
        if leaked:
            os.unlink(f"/dev/{token}")
    assert not broken, "the command replaced the host's /dev/null"
    assert not leaked, "the command's file appeared in the host's /dev"
    meta = json.loads((tmp_path / "bundle" / "meta.json").read_text())
    assert "private /dev" in meta["isolation"]
