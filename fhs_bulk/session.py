"""A session: the SRMS connection and its identity, the ledger and the run lock, opened once.

Every command (and every script or notebook) opens one::

    with Session.from_settings() as s:          # flags > env > config file, as the CLI does
        result = fhs_bulk.upload(s, "FK_ODS_ORDER_CREATE.xlsx")

    with Session(embedded_db="srms.sqlite", state_dir="state") as s:   # explicit, for Python callers
        ...

The SRMS connection and the ledger open on first use, so a session that only reads the ledger never
starts the embedded mock SRMS. With no SRMS URL configured the session starts the embedded mock
(loaded lazily: this is the one place the client side reaches for the mock).
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fhs_bulk.errors import ConfigError

if TYPE_CHECKING:
    from fhs_bulk.srms.client import SrmsClient
    from fhs_bulk.state.ledger import Ledger
    from fhs_bulk.state.lock import RunLock
    from fhs_bulk.state.runs import Recording, RunLog


def default_embedded_db() -> Path:
    """Where the embedded mock SRMS keeps its state when no path is given."""
    from platformdirs import user_data_path

    return user_data_path("fhs-bulk", appauthor=False) / "embedded-srms.sqlite"


@dataclass
class Connection:
    """An open SRMS: the client, and the identity the ledger keys orders by."""

    client: SrmsClient
    identity: str  # the URL, or 'embedded:<db path>'
    description: str
    embedded: bool


class Session:
    """Owns the SRMS connection, the ledger and the run lock; use it as a context manager."""

    def __init__(self, *, url: str | None = None, token: str | None = None, embedded_db: str | Path | None = None,
                 state_dir: str | Path | None = None, deadline: float = 1800.0, timeout: float = 30.0,
                 connections: int = 16) -> None:
        if url and not token:
            raise ConfigError("an SRMS URL needs a token (token=..., FHS_SRMS_TOKEN or --token-file).",
                              code="no-token")
        self.url = url.rstrip("/") if url else None
        self._token = token
        self.embedded_db = Path(embedded_db) if embedded_db else default_embedded_db()
        self.state_dir = Path(state_dir) if state_dir else None
        self.deadline = deadline
        self.timeout = timeout
        self.connections = connections
        self._stack = ExitStack()
        self._conn: Connection | None = None
        self._ledger: Ledger | None = None
        self.ledger_warnings: list[str] = []
        # Set (by a signal handler, or by the caller) to stop: no new requests, waits end at once.
        self.cancel = threading.Event()
        self.cancel_signal: int | None = None
        self.config: dict[str, Any] = {}  # the config file's settings, when opened from settings

    def __repr__(self) -> str:  # never the token
        return f"Session(srms={self.identity!r}, state_dir={str(self.state_dir) if self.state_dir else None!r})"

    @classmethod
    def from_settings(cls, *, srms_url: str | None = None, token_file: str | None = None,
                      state_dir: str | None = None, config: dict[str, Any] | None = None,
                      **kwargs: Any) -> Session:
        """Settings as the CLI resolves them: flags, then environment, then the config file."""
        from fhs_bulk import config as cfg_mod

        cfg = config if config is not None else cfg_mod.load_config()
        settings = cfg_mod.srms_settings(srms_url, token_file, cfg)
        session = cls(url=settings.url, token=settings.token,
                      state_dir=cfg_mod.state_dir(state_dir, cfg, create=False), **kwargs)
        session.config = cfg
        return session

    # ------------------------------------------------------------ what it owns

    @property
    def embedded(self) -> bool:
        return self.url is None

    @property
    def identity(self) -> str:
        """What the ledger keys orders by, known without connecting."""
        return self.url or f"embedded:{self.embedded_db}"

    @property
    def description(self) -> str:
        if self.url:
            return f"SRMS at {self.url}"
        return (f"embedded mock SRMS on the bundled catalogue (state: {self.embedded_db}); "
                "set FHS_SRMS_URL to use a real SRMS")

    @property
    def srms(self) -> Connection:
        """The SRMS connection, opened (and the embedded mock started) on first use."""
        if self._conn is None:
            from fhs_bulk.srms.client import SrmsClient

            if self.url:
                url, token = self.url, self._token or ""
            else:
                from fhs_bulk.srms.mock.embedded import EmbeddedSrms

                mock = self._stack.enter_context(EmbeddedSrms(self.embedded_db))
                url, token = mock.url, mock.token
            client = self._stack.enter_context(SrmsClient(url, token, deadline=self.deadline, timeout=self.timeout,
                                                          connections=self.connections, cancel=self.cancel))
            self._conn = Connection(client, self.identity, self.description, embedded=self.url is None)
        return self._conn

    def _state(self) -> Path:
        from fhs_bulk.config import ensure_state_dir

        self.state_dir = ensure_state_dir(self.state_dir)
        return self.state_dir

    @property
    def ledger(self) -> Ledger:
        """The state directory's ledger, opened on first use (a damaged one is moved aside)."""
        if self._ledger is None:
            from fhs_bulk.state.ledger import Ledger

            self._ledger = Ledger.open(self._state(), warnings=self.ledger_warnings)
            self._stack.callback(self._ledger.close)
        return self._ledger

    @property
    def runs(self) -> RunLog:
        """The state directory's run history (``fhs-bulk runs``)."""
        from fhs_bulk.state.runs import RunLog

        return RunLog(self.ledger)

    def record(self, command: str, args: list[str], *, sheet: str | None = None,
               dry_run: bool = False) -> AbstractContextManager[Recording]:
        """Record a run in the state directory's history (``fhs-bulk runs``): its start now, its end and
        exit code when the block ends, whatever ends it."""
        from fhs_bulk.state.runs import recording

        return recording(self.runs, command, args, srms=self.identity, sheet=sheet, dry_run=dry_run)

    def stop(self, signum: int | None = None) -> None:
        """Ask the running operation to stop (a signal handler calls this): no new batch starts."""
        self.cancel_signal = self.cancel_signal or signum
        self.cancel.set()

    def lock(self, name: str = "upload") -> RunLock:
        """The run lock of the state directory (a context manager; exit 4 when another run holds it)."""
        from fhs_bulk.state.lock import RunLock

        return RunLock(self._state(), name)

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._stack.close()
        self._conn = None
        self._ledger = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        ledger = self._ledger
        self.close()
        if ledger is not None and exc is not None:
            import sqlite3

            from fhs_bulk.state.ledger import Ledger, damaged

            if isinstance(exc, sqlite3.DatabaseError) and damaged(exc):
                path = Ledger.flag_damaged(ledger.path.parent)
                raise ConfigError(f"the ledger {path} is damaged ({exc}). Run the same command again: the ledger is "
                                  "checked first and, damaged, moved aside for a fresh one; nothing is registered "
                                  "twice.", code="ledger-damaged") from exc

