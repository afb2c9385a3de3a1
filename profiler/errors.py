"""The one error type for problems a user can cause or fix."""


class KprofError(Exception):
    """A user-facing error: bad input, missing tool, missing permission.

    The message names the file, line or setting and says how to fix it; the
    CLI prints it without a traceback and exits with ``exit_code`` (2).
    """

    exit_code = 2
