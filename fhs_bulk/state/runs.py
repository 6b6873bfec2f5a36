"""Run history: every upload, ticket create, tracker update and reconcile is a record in the state
directory's ledger database, written when it starts and when it ends.

A run's rows (the results file's rows, for an upload) are kept apart as compressed chunks, so listing
1,000 runs reads one small table and showing one run inflates only its own chunks. A run that never
recorded its end is ``unfinished`` once its process is gone (SIGKILL, power cut).
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fhs_bulk.errors import UsageError

if TYPE_CHECKING:
    from fhs_bulk.state.ledger import Ledger

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, command TEXT NOT NULL, args TEXT NOT NULL, host TEXT NOT NULL, user TEXT NOT NULL,
    pid INTEGER NOT NULL, srms TEXT, sheet TEXT, dry_run INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL,
    ended_at TEXT, exit_code INTEGER, counts TEXT, outputs TEXT, error TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE TABLE IF NOT EXISTS run_rows (run_id TEXT PRIMARY KEY, columns TEXT NOT NULL, rows BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_row_chunks (run_id TEXT NOT NULL, seq INTEGER NOT NULL, rows BLOB NOT NULL,
                                           PRIMARY KEY (run_id, seq));
"""
# A run's rows: its columns (and, from older versions, every row) in run_rows; the rows themselves in
# run_row_chunks, each a zlib-compressed JSON array, so a million rows are never one value in memory.

ROWS_PER_CHUNK = 20_000
_EMPTY = zlib.compress(b"[]")
PROBLEM_STATUSES = ("rejected", "invalid", "failed", "conflict")
DEFAULT_KEEP_DAYS = 90


def _now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


def new_run_id() -> str:
    """Short and sortable: milliseconds since 2020 in base 36, then 3 random characters."""
    ms = int((time.time() - 1577836800) * 1000)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while ms:
        ms, r = divmod(ms, 36)
        out = digits[r] + out
    return out.rjust(9, "0") + "".join(secrets.choice(digits) for _ in range(3))


@dataclass
class Run:
    id: str
    command: str
    args: list[str]
    host: str
    user: str
    pid: int
    srms: str | None
    sheet: str | None
    dry_run: bool
    started_at: str
    ended_at: str | None
    exit_code: int | None
    counts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    state: str = "finished"  # finished | running | unfinished

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "command": self.command, "args": self.args, "host": self.host, "user": self.user,
                "pid": self.pid, "srms": self.srms, "sheet": self.sheet, "dry_run": self.dry_run,
                "started_at": self.started_at, "ended_at": self.ended_at, "state": self.state,
                "exit_code": self.exit_code, "counts": self.counts, "outputs": self.outputs, "error": self.error}


def _alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # another machine's run: cannot tell, so not called unfinished
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLog:
    """The runs of one state directory (the ledger's database)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.db: sqlite3.Connection = ledger.db
        with ledger.lock_db():
            self.db.executescript(SCHEMA)

    def start(self, command: str, args: list[str], *, srms: str | None, sheet: str | None,
              dry_run: bool = False) -> str:
        run_id = new_run_id()

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO runs (id, command, args, host, user, pid, srms, sheet, dry_run, started_at) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (run_id, command, json.dumps(args), socket.gethostname(), _user(), os.getpid(), srms, sheet,
                        int(dry_run), _now()))

        self.ledger.transaction(write)
        return run_id

    def finish(self, run_id: str, exit_code: int, *, counts: dict[str, int] | None = None,
               outputs: dict[str, str] | None = None, error: str | None = None,
               columns: list[str] | None = None, rows: Any = None) -> None:
        """``rows``: a list of rows, or anything with ``blobs()`` (an upload's ResultRows: its chunks are
        already in this table's format, zlib-compressed JSON arrays)."""
        def write(db: sqlite3.Connection) -> None:
            db.execute("UPDATE runs SET ended_at=?, exit_code=?, counts=?, outputs=?, error=? WHERE id=?",
                       (_now(), int(exit_code), json.dumps(counts or {}), json.dumps(outputs or {}), error, run_id))
            if columns is not None and rows is not None:
                db.execute("INSERT OR REPLACE INTO run_rows VALUES (?,?,?)", (run_id, json.dumps(columns), _EMPTY))
                db.execute("DELETE FROM run_row_chunks WHERE run_id = ?", (run_id,))
                blobs = rows.blobs() if hasattr(rows, "blobs") else (
                    zlib.compress(json.dumps(rows[i:i + ROWS_PER_CHUNK], separators=(",", ":"), default=str).encode(),
                                  1) for i in range(0, len(rows), ROWS_PER_CHUNK))
                db.executemany("INSERT INTO run_row_chunks VALUES (?,?,?)",
                               ((run_id, seq, blob) for seq, blob in enumerate(blobs)))

        self.ledger.transaction(write)

    # ------------------------------------------------------------ reading

    def _run(self, row: tuple[Any, ...]) -> Run:
        (rid, command, args, host, user, pid, srms, sheet, dry, started, ended, code, counts, outputs, error) = row
        run = Run(rid, command, json.loads(args), host, user, pid, srms, sheet, bool(dry), started, ended, code,
                  json.loads(counts) if counts else {}, json.loads(outputs) if outputs else {}, error)
        if ended is None:
            run.state = "running" if _alive(pid, host) else "unfinished"
        return run

    def recent(self, *, limit: int = 20, command: str | None = None, since: date | None = None) -> list[Run]:
        q = "SELECT * FROM runs"
        where: list[str] = []
        params: list[Any] = []
        if command:
            where.append("command = ?")
            params.append(command)
        if since:
            where.append("started_at >= ?")
            params.append(since.isoformat())
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        with self.ledger.lock_db():
            return [self._run(r) for r in self.db.execute(q, params).fetchall()]

    def get(self, run_id: str) -> Run:
        with self.ledger.lock_db():
            if run_id == "last":
                row = self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            else:
                row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row is None:
                    found = self.db.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY id DESC LIMIT 2",
                                            (run_id + "%",)).fetchall()
                    row = found[0] if len(found) == 1 else None
        if row is None:
            raise UsageError(f"no run {run_id!r} in this state directory; `fhs-bulk runs` lists them.", code="usage")
        return self._run(row)

    def rows(self, run_id: str) -> tuple[list[str], Iterator[list[Any]]]:
        """A run's columns, and its rows as they are read (a chunk at a time)."""
        with self.ledger.lock_db():
            row = self.db.execute("SELECT columns, rows FROM run_rows WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return [], iter(())
        return json.loads(row[0]), self._rows(run_id, row[1])

    def _rows(self, run_id: str, first: bytes) -> Iterator[list[Any]]:
        yield from json.loads(zlib.decompress(first))
        seq = -1
        while True:
            with self.ledger.lock_db():
                row = self.db.execute("SELECT seq, rows FROM run_row_chunks WHERE run_id = ? AND seq > ? ORDER BY seq "
                                      "LIMIT 1", (run_id, seq)).fetchone()
            if row is None:
                return
            seq = row[0]
            yield from json.loads(zlib.decompress(row[1]))

    def write_results(self, run_id: str, out: str) -> str:
        """Write a run's rows again (its results file: CSV, xlsx or a Google Sheet). Returns where."""
        from fhs_bulk.sheets.ref import SheetRef
        from fhs_bulk.sheets.write import check_writable, write_rows

        if not SheetRef.parse(out).is_google:
            check_writable(out, what="--out")
        run = self.get(run_id)
        columns, rows = self.rows(run.id)
        if not columns:
            raise UsageError(f"run {run.id} ({run.command}) kept no rows to write.", code="usage")
        return write_rows(out, columns, rows)

    def prune(self, older_than_days: int = DEFAULT_KEEP_DAYS) -> int:
        """Forget runs started more than ``older_than_days`` ago (their history only: the ledger's
        exactly-once records of orders are never touched). Returns the runs forgotten."""
        cutoff = (datetime.now(UTC) - timedelta(days=older_than_days)).astimezone().isoformat(timespec="seconds")
        count = 0

        def write(db: sqlite3.Connection) -> None:
            nonlocal count
            db.execute("DELETE FROM run_rows WHERE run_id IN (SELECT id FROM runs WHERE started_at <= ?)", (cutoff,))
            db.execute("DELETE FROM run_row_chunks WHERE run_id IN (SELECT id FROM runs WHERE started_at <= ?)",
                       (cutoff,))
            count = db.execute("DELETE FROM runs WHERE started_at <= ?", (cutoff,)).rowcount

        self.ledger.transaction(write)
        return count


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


@dataclass
class Recording:
    """What a command fills in as it goes; the session writes it when the run ends."""

    run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    columns: list[str] | None = None
    rows: Any = None  # a list of rows, or an upload's ResultRows
    exit_code: int | None = None


@contextmanager
def recording(log: RunLog, command: str, args: list[str], *, srms: str | None, sheet: str | None,
              dry_run: bool = False) -> Iterator[Recording]:
    """Record a run: its start now, its end (with the exit code of whatever happened) on the way out."""
    from fhs_bulk.errors import Exit, FhsError

    rec = Recording(log.start(command, args, srms=srms, sheet=sheet, dry_run=dry_run))
    error: str | None = None
    code: int = Exit.OK
    try:
        yield rec
        code = rec.exit_code if rec.exit_code is not None else Exit.OK
    except FhsError as exc:
        code, error = exc.exit_code, f"{exc.message} [{exc.code}]"
        raise
    except KeyboardInterrupt as exc:
        from fhs_bulk.errors import Terminated

        code, error = ((Exit.TERMINATED, "terminated") if isinstance(exc, Terminated)
                       else (Exit.INTERRUPTED, "interrupted"))
        raise
    except BaseException as exc:
        code, error = Exit.INTERNAL, f"{type(exc).__name__}: {str(exc)[:300]}"
        raise
    finally:
        try:
            log.finish(rec.run_id, code, counts=rec.counts, outputs=rec.outputs, error=error, columns=rec.columns,
                       rows=rec.rows)
        except Exception:  # the history must never turn a run's outcome into another one
            import logging

            logging.getLogger("fhs_bulk.runs").warning("could not record the end of run %s", rec.run_id)
