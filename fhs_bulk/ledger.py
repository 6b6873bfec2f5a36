"""The local ledger: what was sent to which SRMS, written before sending and after each answer.

It is what makes a re-run exactly-once: a batch whose answer was never seen is sent again with its
original Idempotency-Key and body, so SRMS returns the original job; orders that already hold a
reference ID are answered from here without sending them again. SQLite, WAL, synchronous=FULL, so
what was recorded survives a kill -9 or a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    key TEXT PRIMARY KEY, srms TEXT NOT NULL, created_at TEXT NOT NULL, state TEXT NOT NULL,
    job_id TEXT, order_ids TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batches_pending ON batches(srms, state);
CREATE TABLE IF NOT EXISTS orders (
    srms TEXT NOT NULL, fk_order_id TEXT NOT NULL, status TEXT NOT NULL, code TEXT, reference_id TEXT,
    ticket_id TEXT, batch_key TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (srms, fk_order_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ticket_requests (
    key TEXT PRIMARY KEY, srms TEXT NOT NULL, fk_order_id TEXT NOT NULL, body_hash TEXT NOT NULL,
    ticket_id TEXT, created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ticket_requests_body ON ticket_requests(srms, body_hash);
"""

HOLDS_ID = ("registered", "already-registered")


@dataclass(frozen=True)
class Known:
    status: str
    code: str | None
    reference_id: str | None
    ticket_id: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / "ledger.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    def _tx(self, fn) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                fn(self.db)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def known(self, srms: str, order_ids: Iterable[str]) -> dict[str, Known]:
        out: dict[str, Known] = {}
        with self._lock:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id TEXT PRIMARY KEY) WITHOUT ROWID")
            self.db.execute("DELETE FROM wanted")
            self.db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((o,) for o in order_ids))
            for oid, st, code, ref, tid in self.db.execute(
                    "SELECT o.fk_order_id, o.status, o.code, o.reference_id, o.ticket_id FROM orders o "
                    "JOIN wanted w ON w.id = o.fk_order_id WHERE o.srms = ?", (srms,)):
                out[oid] = Known(st, code, ref, tid)
            self.db.execute("DELETE FROM wanted")
        return out

    def pending_batches(self, srms: str) -> list[tuple[str, list[str]]]:
        with self._lock:
            rows = self.db.execute("SELECT key, order_ids FROM batches WHERE srms=? AND state='pending' "
                                   "ORDER BY created_at, key", (srms,)).fetchall()
        return [(k, json.loads(ids)) for k, ids in rows]

    def plan(self, srms: str, batches: list[tuple[str, list[str]]]) -> None:
        """Record batches (key and exact body) before any of them is sent."""
        stamp = _now()

        def write(db: sqlite3.Connection) -> None:
            db.executemany("INSERT INTO batches VALUES (?,?,?,'pending',NULL,?)",
                           [(k, srms, stamp, json.dumps(ids)) for k, ids in batches])
            db.executemany(
                "INSERT INTO orders VALUES (?,?,'pending',NULL,NULL,NULL,?,?) ON CONFLICT(srms, fk_order_id) DO "
                "UPDATE SET status='pending', batch_key=excluded.batch_key, updated_at=excluded.updated_at "
                "WHERE orders.status NOT IN ('registered', 'already-registered')",
                [(srms, oid, k, stamp) for k, ids in batches for oid in ids])

        self._tx(write)

    def record(self, srms: str, key: str, job_id: str,
               outcomes: list[tuple[str, str, str | None, str | None, str | None]]) -> None:
        """outcomes: (order, status, code, reference_id, ticket_id), as SRMS answered the batch."""
        stamp = _now()

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(srms, fk_order_id) DO UPDATE SET "
                "status=excluded.status, code=excluded.code, reference_id=excluded.reference_id, "
                "ticket_id=excluded.ticket_id, batch_key=excluded.batch_key, updated_at=excluded.updated_at",
                [(srms, oid, st, code, ref, tid, key, stamp) for oid, st, code, ref, tid in outcomes])
            db.execute("UPDATE batches SET state='done', job_id=? WHERE key=?", (job_id, key))

        self._tx(write)

    def registrations(self, srms: str | None = None) -> list[tuple[str, str | None, str | None]]:
        """(order, reference_id, ticket_id) of every order the ledger knows as registered."""
        q = "SELECT fk_order_id, reference_id, ticket_id FROM orders WHERE status IN ('registered', " \
            "'already-registered')"
        args: tuple = ()
        if srms:
            q += " AND srms=?"
            args = (srms,)
        with self._lock:
            return self.db.execute(q + " ORDER BY fk_order_id", args).fetchall()

    # ------------------------------------------------------------ single tickets

    def ticket_key(self, srms: str, order_id: str, body_hash: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT key FROM ticket_requests WHERE srms=? AND body_hash=?",
                                  (srms, body_hash)).fetchone()
        return row[0] if row else None

    def plan_ticket(self, srms: str, key: str, order_id: str, body_hash: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR IGNORE INTO ticket_requests VALUES (?,?,?,?,NULL,?)",
                       (key, srms, order_id, body_hash, _now()))

        self._tx(write)

    def record_ticket(self, key: str, ticket_id: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute("UPDATE ticket_requests SET ticket_id=? WHERE key=?", (ticket_id, key))

        self._tx(write)
