"""Exit codes and the error a user's mistake becomes (never a traceback)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    DATA = 1  # the input is readable but some rows are invalid, rejected or in conflict
    UNUSABLE = 2  # the sheet, tracker or command line cannot be used
    TRANSIENT = 3  # SRMS unreachable or some orders failed for transient reasons: re-run later
    LOCKED = 4  # another upload holds the lock


class FhsError(Exception):
    """An error meant for the user: one message, a stable code, an exit code."""

    def __init__(self, message: str, *, code: str = "error", exit_code: int = Exit.UNUSABLE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.exit_code = int(exit_code)


class SheetError(FhsError):
    """The sheet as a whole cannot be used (exit 2)."""

    def __init__(self, message: str, *, code: str, path: str | None = None) -> None:
        super().__init__(message, code=code, exit_code=Exit.UNUSABLE)
        self.path = path
