"""A small Python program that exercises what a footprint decodes from each call: paths, fds behind
devices, sockets of every family kprof keys, ioctls on a device and on a socket. The ptrace and bpf
backends' tests run it and compare their footprints with strace's."""

import os

# an abstract socket name is the network namespace's, and these programs run in the host's: this process's own,
# so that the ptrace and bpf tests on two workers (or two suites) never bind the same one (EADDRINUSE: exit 1)
ABSTRACT = f"kprof-abstract-{os.getpid()}"

DECODING = """
import fcntl, os, socket, termios
fd = os.open("/dev/null", os.O_RDONLY)
try:
    fcntl.ioctl(fd, termios.TCGETS, bytes(64))
except OSError:
    pass
os.close(os.dup(fd))
os.close(os.open("relative.txt", os.O_CREAT | os.O_WRONLY, 0o644))
try:
    os.open("/nonexistent/kprof", os.O_RDONLY)
except OSError:
    pass
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setblocking(False)                                  # ioctl FIONBIO on a UDP socket
u.connect(("127.0.0.1", 9))
u.sendto(b"x", ("127.0.0.2", 9))
w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
w.connect(("127.0.0.200", 443))                       # a port and an address byte past 0x7f
w6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
try:
    w6.connect(("::1", 8080))
except OSError:
    pass
try:
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.connect(("::1", 9))
except OSError:
    pass
x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
x.bind("unix.sock")
a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
a.bind("\\0""" + ABSTRACT + """")
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("/nonexistent.sock")
except OSError:
    pass
"""
