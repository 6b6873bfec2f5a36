"""Errors are data: every stable code is registered once here with its exit code and fix hint.

Python callers catch by class (``except fhs_bulk.SheetError``); the CLI prints one line,
``error: <message> [code]``, and exits with the code's exit status. A test checks that every code
raised anywhere in the package is registered and that the README lists each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Exit(IntEnum):
    """The process exit statuses, documented in the README."""

    OK = 0
    DATA = 1  # the input is readable but some rows are invalid, rejected, refused or in conflict
    UNUSABLE = 2  # the sheet, tracker, output, state or command line cannot be used
    TRANSIENT = 3  # SRMS unreachable or some orders failed for transient reasons: re-run later
    LOCKED = 4  # another run holds the lock
    INTERNAL = 70  # a bug: the message asks to report it
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    BROKEN_PIPE = 141  # stdout's reader went away (e.g. `| head`)
    TERMINATED = 143  # SIGTERM


class FhsError(Exception):
    """An error meant for the user: one message, a stable code, an exit code (never a traceback)."""

    default_exit: Exit = Exit.UNUSABLE

    def __init__(self, message: str, *, code: str = "error", exit_code: int | None = None,
                 path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        spec = CODES.get(code)
        self.exit_code = int(exit_code if exit_code is not None else (spec.exit if spec else self.default_exit))
        self.path = path

    @property
    def fix(self) -> str:
        """The registered fix hint for this code ('' when none is registered)."""
        spec = CODES.get(self.code)
        return spec.fix if spec else ""

    def __str__(self) -> str:
        return self.message


class UsageError(FhsError):
    """The command line or the call's arguments cannot be used (exit 2)."""


class ConfigError(FhsError):
    """Settings (config file, token, state directory) cannot be used (exit 2)."""


class SheetError(FhsError):
    """A sheet, results file or tracker as a whole cannot be used (exit 2)."""


class OutputError(FhsError):
    """A file the tool must write cannot be written (exit 2): nothing is sent before this is known."""


class DiskFull(OutputError):
    """No space left where the tool writes (exit 2); free space and run the same command again."""


class DataError(FhsError):
    """The request is understood but refused by a rule (exit 1)."""

    default_exit = Exit.DATA


class SrmsError(FhsError):
    """SRMS refused the request (a 4xx other than 429): retrying will not help.

    ``srms_code`` is SRMS's own error code (e.g. ``unauthorized``, ``order-has-ticket``).
    """

    def __init__(self, status: int, srms_code: str, message: str, field: str | None = None) -> None:
        if status in (401, 403):
            code = "unauthorized"
        elif srms_code in CODES and CODES[srms_code].kind == "SrmsError":
            code = srms_code
        else:
            code = "srms-refused"
        super().__init__(f"SRMS answered {status} {srms_code}: {message}", code=code)
        self.status = status
        self.srms_code = srms_code
        self.srms_message = message
        self.field = field


class SrmsUnavailable(FhsError):
    """Retries exhausted (timeouts, connection errors, 429, 5xx) or the deadline passed: re-run later."""

    default_exit = Exit.TRANSIENT

    def __init__(self, message: str, *, code: str = "srms-unavailable") -> None:
        super().__init__(message, code=code)


class LockHeld(FhsError):
    """Another run holds the state directory's lock (exit 4)."""

    default_exit = Exit.LOCKED

    def __init__(self, message: str) -> None:
        super().__init__(message, code="locked")


class GoogleError(FhsError):
    """Google Sheets refused or could not be reached."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where a command is (commands that can stop cleanly handle the signal themselves)."""


class Interrupted(FhsError):
    """Ctrl-C or SIGTERM: batches not confirmed are reported ``interrupted`` (exit 130 / 143)."""

    default_exit = Exit.INTERRUPTED


@dataclass(frozen=True)
class Code:
    code: str
    kind: str  # the class raised for it
    exit: Exit
    fix: str


def _table(*rows: tuple[str, str, Exit, str]) -> dict[str, Code]:
    return {code: Code(code, kind, exit_, fix) for code, kind, exit_, fix in rows}


# code, class, exit, what to do. The README's "Error codes" table lists each (a test checks).
CODES: dict[str, Code] = _table(
    ("usage", "UsageError", Exit.UNUSABLE, "check the command line (fhs-bulk COMMAND --help)"),
    ("config", "ConfigError", Exit.UNUSABLE, "fix or remove the config file named in the message"),
    ("no-token", "ConfigError", Exit.UNUSABLE, "set FHS_SRMS_TOKEN, FHS_SRMS_TOKEN_FILE or --token-file"),
    ("token-file", "ConfigError", Exit.UNUSABLE, "make the token file readable and non-empty"),
    ("state-dir", "ConfigError", Exit.UNUSABLE, "give a --state-dir (or FHS_STATE_DIR) the tool can create"),
    ("catalogue", "UsageError", Exit.UNUSABLE, "give srms serve a catalogue CSV with the documented columns"),
    ("sheet-not-found", "SheetError", Exit.UNUSABLE, "check the path (and the current directory)"),
    ("sheet-is-directory", "SheetError", Exit.UNUSABLE, "name the sheet file inside the directory"),
    ("sheet-not-a-file", "SheetError", Exit.UNUSABLE, "name a regular file, not a pipe or a device"),
    ("sheet-empty-file", "SheetError", Exit.UNUSABLE, "export the sheet again"),
    ("sheet-unknown-type", "SheetError", Exit.UNUSABLE, "save the sheet as .xlsx, .xls, .ods or .csv"),
    ("sheet-unreadable", "SheetError", Exit.UNUSABLE, "open the file in a spreadsheet program and save it again"),
    ("sheet-encoding", "SheetError", Exit.UNUSABLE, "save the file as 'CSV UTF-8'"),
    ("sheet-encrypted", "SheetError", Exit.UNUSABLE, "save a copy without a password"),
    ("sheet-too-large", "SheetError", Exit.UNUSABLE, "split the sheet, or delete stray cells far from the data"),
    ("sheet-name", "SheetError", Exit.UNUSABLE, "name the spreadsheet FK_ODS_ORDER_CREATE"),
    ("header-missing", "SheetError", Exit.UNUSABLE, "put the header (e.g. fk_order_id) in the first row"),
    ("header-duplicate", "SheetError", Exit.UNUSABLE, "keep one fk_order_id column"),
    ("no-data-rows", "SheetError", Exit.UNUSABLE, "paste the order IDs under the header"),
    ("results-columns", "SheetError", Exit.UNUSABLE, "give an upload results file (fk_order_id, status, ...)"),
    ("tracker-header", "SheetError", Exit.UNUSABLE, "keep the tracker's header row (fk_order_id, SRM ID)"),
    ("tracker-write", "OutputError", Exit.UNUSABLE, "close the tracker in other programs; check permissions"),
    ("output-dir-missing", "OutputError", Exit.UNUSABLE, "create the directory, or name another"),
    ("output-type", "OutputError", Exit.UNUSABLE, "name the file .csv or .xlsx (or a Google Sheet)"),
    ("output-unwritable", "OutputError", Exit.UNUSABLE, "check the file's and the directory's permissions"),
    ("disk-full", "DiskFull", Exit.UNUSABLE, "free space in the directory named, then run the same command again"),
    ("ledger-damaged", "ConfigError", Exit.UNUSABLE, "run the same command again (a damaged ledger is moved aside)"),
    ("locked", "LockHeld", Exit.LOCKED, "wait for the other run to finish (its pid is in the message)"),
    ("srms-unavailable", "SrmsUnavailable", Exit.TRANSIENT, "run the same command again later"),
    ("embedded-srms", "SrmsUnavailable", Exit.TRANSIENT, "run again; report it if it persists"),
    ("srms-refused", "SrmsError", Exit.UNUSABLE, "read SRMS's message: the URL, token or request is wrong"),
    ("unauthorized", "SrmsError", Exit.UNUSABLE, "check the SRMS token (FHS_SRMS_TOKEN or --token-file)"),
    ("order-has-ticket", "DataError", Exit.DATA, "the order already has a ticket: use that one"),
    ("ticket-not-found", "DataError", Exit.DATA, "check the Service Ticket ID or BK- reference"),
    ("strict", "DataError", Exit.DATA, "fix the invalid rows (see validate) or run without --strict"),
    ("google-credentials", "GoogleError", Exit.UNUSABLE, "give a service account key (--credentials)"),
    ("google-not-found", "GoogleError", Exit.UNUSABLE, "check the Sheet's URL or title and share it"),
    ("google-forbidden", "GoogleError", Exit.UNUSABLE, "share the Sheet with the service account"),
    ("google-ambiguous", "GoogleError", Exit.UNUSABLE, "use the Sheet's URL or key instead of its title"),
    ("google-quota", "GoogleError", Exit.TRANSIENT, "wait a minute and run again"),
    ("google-error", "GoogleError", Exit.TRANSIENT, "run again later"),
    ("interrupted", "Interrupted", Exit.INTERRUPTED, "run the same command again: confirmed rows are kept"),
    ("terminated", "Interrupted", Exit.TERMINATED, "run the same command again: confirmed rows are kept"),
)


def exit_meaning(code: int) -> str:
    """A short meaning for an exit status (for logs and notifications)."""
    return {0: "ok", 1: "data problems", 2: "unusable input", 3: "SRMS unreachable: re-run later",
            4: "locked by another run", 70: "internal error", 130: "interrupted", 141: "output pipe closed",
            143: "terminated"
            }.get(int(code), "unknown")
