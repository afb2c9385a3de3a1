"""The one error type for problems a user can cause or fix."""


class KprofError(Exception):
    """A user-facing error: bad input, missing tool, missing permission.

    The message names the file, line or setting and says how to fix it; the
    CLI prints it without a traceback and exits with ``exit_code`` (2).
    """

    exit_code = 2


def file_error(path, exc: OSError, what: str) -> KprofError:
    """The KprofError for a file a user named that cannot be read (``what`` it should have been)."""
    if isinstance(exc, FileNotFoundError):
        return KprofError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return KprofError(f"{path}: is a directory, not {what}")
    if isinstance(exc, PermissionError):
        return KprofError(f"{path}: permission denied")
    return KprofError(f"{path}: cannot read: {exc.strerror}")


def check_input(path, what: str, *, stream_ok: bool = False, missing_ok: bool = False) -> None:
    """Refuse, before reading, an input that is not a regular file: a device such as /dev/zero never ends
    (a pipe, e.g. /dev/stdin, is fine where ``stream_ok``). ``missing_ok``: a path that does not exist is the
    caller's to report (its own message, or a default it falls back to)."""
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if missing_ok:
            return
        raise KprofError(f"{path}: no such file ({what} expected)") from None
    except OSError as e:
        raise file_error(path, e, what) from None
    if stat.S_ISDIR(mode):
        raise KprofError(f"{path}: is a directory, not {what}")
    if not (stat.S_ISREG(mode) or stream_ok and stat.S_ISFIFO(mode)):
        kind = "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
        raise KprofError(f"{path}: {kind}, not {what}")
