"""The project's one user-facing error type, importable from anywhere (standard library only)."""


class UsageError(ValueError):
    """Bad input from the user: printed as one line, exit status 2."""
