"""Run a command with /dev/serial0 bound to DEVICE (e.g. the emulator's pty slave) in a private mount
namespace, the way kprof run and real-tools/README.md set it up; the host's /dev is not changed.
Usage: with_serial0.py DEVICE COMMAND ARGS…  (root, or unprivileged user namespaces)"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from profiler.environment import devfs, namespaces  # noqa: E402

device, argv = sys.argv[1], sys.argv[2:]
namespaces._enter_namespaces(net=False, mount=True)
devfs.private_dev({"serial0": device})
os.execvp(argv[0], argv)
