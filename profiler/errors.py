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
