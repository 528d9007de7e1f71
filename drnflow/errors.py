"""User-facing errors of the CLI: printed as one sentence, never as a traceback."""


class CommandError(Exception):
    """A user-facing failure: printed as one sentence, exit code 1 (or `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
