"""Exception types, kept apart so every module can import them without cycles."""


class LogCasterError(Exception):
    """Base class for errors LogCaster reports to operators or clients."""


class ConfigError(LogCasterError):
    """A configuration value is invalid. The message names the key and the reason."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


class QuerySyntaxError(LogCasterError):
    """A query command could not be understood; answered as `ERROR: ...`."""


class QueryLimitError(LogCasterError):
    """A query ran past its time or scan cap; answered as `ERROR: ...`."""


class QueryTimeout(QueryLimitError):
    """A query ran past its deadline (the planner words it with the timeout)."""


class QueryBusy(LogCasterError):
    """Too many queries running and waiting (query.max_concurrent + max_waiting):
    the line protocol's `ERROR: busy`, HTTP's 429."""


class StorageError(LogCasterError):
    """A file operation of the persistence layer failed (ENOSPC, EIO, ...).

    `errno` is the OS error number (None if the failure was not an OSError) and
    `path` the file or directory involved; both are in the message too.
    """

    def __init__(self, message: str, *, path: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


class StartupError(LogCasterError):
    """The server cannot start: an unusable directory, a port in use, ...

    `what` names the option or component (`persist.dir`, `ingest.port`); the
    command line turns it into one line on stderr and exit status 2.
    """

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class DecryptRefused(LogCasterError):
    """A query asked for `decrypt=1` and may not have it: the caller lacks the
    DECRYPT permission (`forbidden`: HTTP 403), or the server holds no field
    keys (400). Answered as `ERROR: ...` on the line protocol."""

    def __init__(self, message: str, *, forbidden: bool) -> None:
        super().__init__(message)
        self.forbidden = forbidden
