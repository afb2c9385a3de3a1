"""Writing output files safely: never half a file, never through someone else's link, one message on error.

Every file kprof writes goes through ``write_atomic``: a temp file created in the target directory with
O_EXCL|O_NOFOLLOW (mkstemp), written, flushed to disk, then renamed over the target. A full disk leaves
the old file (or none), never a 0-byte footprint.json or meta.json; a symlink planted at the target or at
a guessable temp name is replaced, never followed. A terminal, pipe or character device the user names
(``-o /dev/stdout``, ``-o /dev/null``) is written into, never replaced: renamed over, ``/dev/null`` would
become a regular file for the whole machine. Output directories go through ``output_dir``.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from profiler.errors import KprofError


def write_error(path, exc: OSError, what: str = "write") -> KprofError:
    """One message for an output path that cannot be written, saying why."""
    reason = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
              errno.EPERM: "operation not permitted", errno.ENOENT: "its directory does not exist",
              errno.ENOTDIR: "a part of the path is not a directory",
              errno.EISDIR: "is a directory"}.get(exc.errno, exc.strerror or str(exc))
    return KprofError(f"{path}: cannot {what}: {reason}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _stream_target(path: Path) -> bool:
    """Whether ``path`` is something to write into rather than replace: an existing character device or FIFO
    (a terminal, a pipe, /dev/null), or an open file of the caller's named by /dev/stdout, /dev/fd/N or
    /proc/self/fd/N — reached directly or through a link root or the caller owns. A block device is refused."""
    try:
        link = os.lstat(path)
        st = os.stat(path)
    except OSError:
        return False
    if stat.S_ISLNK(link.st_mode) and link.st_uid not in (0, os.geteuid()):
        return False              # someone else's link: replaced, never followed
    if stat.S_ISBLK(st.st_mode):
        raise KprofError(f"{path}: is a block device: kprof writes reports to files, terminals and pipes only")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return True
    parent = os.path.realpath(path.parent)
    return stat.S_ISLNK(link.st_mode) and (parent == "/dev" or parent.startswith("/proc/"))


def write_atomic(path, data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` all at once (see the module's docstring); KprofError on failure."""
    path = Path(path)
    if path.is_dir():
        raise KprofError(f"{path}: is a directory, not a file to write")
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if _stream_target(path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOCTTY)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError as e:
            raise write_error(path, e) from None
        return
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def is_bundle(path: Path) -> bool:
    """A kprof result bundle (or what is left of one): meta.json or scenario.yaml with trace.log."""
    return (path / "meta.json").is_file() or (path / "scenario.yaml").is_file()


def check_owner(path: Path) -> None:
    """As root, refuse an output directory another user owns (or the directory it is made in): that user
    could replace a file in it (or the directory) with a link while kprof writes, and the tracer, which
    opens its log by name, would write wherever it points."""
    if os.geteuid() != 0:
        return
    d = path
    while not os.path.lexists(d) and d != d.parent:
        d = d.parent
    for d in ([d, d.parent] if d == path else [d]):
        try:
            owner, link = os.stat(d).st_uid, os.lstat(d)
        except OSError:
            continue
        if stat.S_ISLNK(link.st_mode) and link.st_uid != 0:      # its owner can point it elsewhere meanwhile
            raise KprofError(f"{d}: a symbolic link owned by uid {link.st_uid}, not root: kprof runs as root and "
                             f"does not write its results through another user's link (that user could point it "
                             f"at any directory root can write). Use a directory root owns.")
        if owner != 0:
            raise KprofError(f"{d}: owned by uid {owner}, not root: kprof runs as root and does not write its "
                             f"results into another user's directory (that user could swap a file in it for a "
                             f"link to any file root can write). Use a directory root owns.")


def output_dir(path, *, force: bool = False, bundle: bool = True, create: bool = True) -> Path:
    """Make sure ``path`` is a directory kprof can write its results into, created if needed (or, without
    ``create``, that it can be created: the run creates it once it starts).

    An existing bundle there is refused (results would mix) unless ``force``, which clears it; a
    directory holding anything else is refused either way when ``bundle``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise KprofError(f"{path}: exists and is not a directory (give a new directory for the results)")
    check_owner(path)
    if bundle and path.is_dir() and any(path.iterdir()):
        if not is_bundle(path):
            raise KprofError(f"{path}: not empty and not a kprof result bundle: give a new or empty directory")
        if not force:
            raise KprofError(f"{path}: holds a result bundle already: give a new directory, or --force to "
                             f"replace it")
        for child in path.iterdir():
            try:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            except OSError as e:
                raise write_error(child, e, "remove") from None
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(path, e, "create the directory") from None
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise KprofError(f"{path}: cannot create the directory: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise KprofError(f"{existing}: cannot write: permission denied")
    return path
