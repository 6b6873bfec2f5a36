"""The local ledger: what was sent to which SRMS, written before sending and after each answer.

It is what makes a re-run exactly-once: a batch whose answer was never seen is sent again with its
original Idempotency-Key and body, so SRMS returns the original job; orders that already hold a
reference ID are answered from here without sending them again. SQLite, WAL, synchronous=FULL, so
what was recorded survives a kill -9 or a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fhs_bulk.errors import DiskFull

SCHEMA = """
CREATE TABLE IF NOT EXISTS srms (id INTEGER PRIMARY KEY, identity TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS batches (
    key TEXT PRIMARY KEY, srms TEXT NOT NULL, created_at TEXT NOT NULL, state TEXT NOT NULL, job_id TEXT
);
CREATE TABLE IF NOT EXISTS batch_bodies (key TEXT PRIMARY KEY, order_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch_results (key TEXT PRIMARY KEY, job_id TEXT NOT NULL, outcomes TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS batches_pending ON batches(srms, state);
CREATE TABLE IF NOT EXISTS orders (
    srms_id INTEGER NOT NULL, fk_order_id TEXT NOT NULL, status TEXT NOT NULL, code TEXT, reference_id TEXT,
    ticket_id TEXT, batch_key TEXT, updated_at TEXT NOT NULL, UNIQUE (srms_id, fk_order_id)
);
CREATE TABLE IF NOT EXISTS ticket_requests (
    key TEXT PRIMARY KEY, srms TEXT NOT NULL, fk_order_id TEXT NOT NULL, body_hash TEXT NOT NULL,
    ticket_id TEXT, created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ticket_requests_body ON ticket_requests(srms, body_hash);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
FULL_CHECK_EVERY = timedelta(hours=20)  # between reads of every page (see Ledger.check)
CHECK_MARKER = ".check"  # beside the ledger: the next open reads every page

HOLDS_ID = ("registered", "already-registered")
# The per-order table is a rowid table: indexed rows are appended, and only the narrow unique index
# takes random inserts (order IDs come in no order), so indexing a batch dirties far fewer pages
# than in a table keyed by order ID (100 batches indexed as they come: 0.67 s CPU, not 1.52 s).
# Ledgers made before keep their WITHOUT ROWID table: the queries are the same for both.


# What the ledger holds of one order: (status, code, reference_id, ticket_id, batch_key).
Held = tuple[str, str | None, str | None, str | None, str | None]
# What SRMS answered for one order: (order, status, code, reference_id, ticket_id).
Answer = tuple[str, str, str | None, str | None, str | None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


log = logging.getLogger("fhs_bulk.ledger")
_SUFFIXES = ("", "-wal", "-shm", "-journal")


def disk_full(exc: BaseException) -> bool:
    """Whether an OSError or SQLite error means 'no space left'."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, sqlite3.Error) and "full" in str(exc).lower()


def _truncated(path: Path) -> str | None:
    """Why the file is shorter than its header says (a copy cut short), or None. The header's page
    count is trusted only when SQLite marked it valid (change counter = version-valid-for), and only
    with no write-ahead log beside it: a checkpoint cut short by a crash writes page 1 before the last
    pages, and SQLite completes it from the log."""
    try:
        if os.path.getsize(f"{path}-wal") > 0:
            return None
    except OSError:
        pass
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
        size = os.path.getsize(path)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return None  # empty (new) or not SQLite: opening it says so
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] == header[92:96] and pages * page_size > size:
        return f"the file holds {size:,} bytes of the {pages * page_size:,} its header names: truncated"
    return None


def damaged(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and any(
        s in text for s in ("malformed", "not a database", "corrupt", "disk i/o error"))


class Ledger:
    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / "ledger.sqlite"
        old = os.umask(0o077)  # the ledger (and its WAL) hold order IDs: 0600 whatever the umask
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA wal_autocheckpoint=10000")  # checkpoint (and fsync) rarely mid-run
            self.db.executescript(SCHEMA)
        finally:
            os.umask(old)
        for suffix in _SUFFIXES:
            with contextlib.suppress(OSError):
                os.chmod(f"{self.path}{suffix}", 0o600)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, state_dir: str | Path, *, warnings: list[str] | None = None) -> Ledger:
        """Open the ledger; a damaged one (garbage, truncated, malformed) is moved aside as
        ``ledger.sqlite.damaged-<UTC time>`` and a fresh one started. That is safe: SRMS registers an
        order at most once, so a re-sent order comes back ``already-registered`` with its old ID."""
        path = Path(state_dir) / "ledger.sqlite"
        marker = path.with_name(path.name + CHECK_MARKER)
        try:
            ledger = cls(state_dir)
            ledger.check(full=marker.exists())
            marker.unlink(missing_ok=True)
            return ledger
        except sqlite3.Error as exc:
            if disk_full(exc):
                raise DiskFull(f"{path.parent}: the disk is full (the ledger cannot be written). Free space there "
                               "and run the same command again.", code="disk-full", path=str(path.parent)) from exc
            if not damaged(exc):
                raise
            with contextlib.suppress(Exception):
                ledger.close()
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            aside = path.with_name(f"{path.name}.damaged-{stamp}")
            for suffix in _SUFFIXES:
                src = Path(f"{path}{suffix}")
                if src.exists():
                    os.replace(src, f"{aside}{suffix}")
            marker.unlink(missing_ok=True)
            message = (f"the ledger {path} was damaged ({exc}); it was moved to {aside} for inspection and a fresh "
                       "ledger started. Nothing is registered twice: SRMS answers orders it already holds as "
                       "already-registered.")
            log.warning("%s", message)
            if warnings is not None:
                warnings.append(message)
            ledger = cls(state_dir)
            ledger.check()
            return ledger

    @staticmethod
    def flag_damaged(state_dir: str | Path) -> Path:
        """Have the next open read every page (and move the ledger aside if damaged): for damage found
        in the middle of a command. Returns the ledger's path."""
        path = Path(state_dir) / "ledger.sqlite"
        with contextlib.suppress(OSError):
            path.with_name(path.name + CHECK_MARKER).touch()
        return path

    def check(self, *, full: bool = False) -> None:
        """Raise sqlite3.DatabaseError when the file is damaged. Every open compares the header with the
        file (a truncated copy); every page is read (PRAGMA quick_check, ~0.4 s a GB: a year of nights)
        when the last such check is FULL_CHECK_EVERY old (or ``full``), so the nightly run pays for it,
        not each command of the day. Damage met in between makes the command fail with
        ``ledger-damaged`` and the next open read every page (``flag_damaged``)."""
        truncated = _truncated(self.path)
        if truncated:
            raise sqlite3.DatabaseError(f"database disk image is malformed ({truncated})")
        row = self.db.execute("SELECT value FROM meta WHERE key = 'checked_at'").fetchone()
        try:
            last = datetime.fromisoformat(row[0]) if row else None
        except ValueError:
            last = None
        now = datetime.now(UTC)
        if not full and last is not None and timedelta(0) <= now - last < FULL_CHECK_EVERY:
            return
        row = self.db.execute("PRAGMA quick_check(1)").fetchone()
        if row and row[0] != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({row[0]})")
        with contextlib.suppress(sqlite3.Error):  # a read-only or full disk: checked again next time
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('checked_at', ?)", (now.isoformat(),))

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def lock_db(self) -> Iterator[sqlite3.Connection]:
        """The connection, for reads, held against the upload's threads."""
        with self._lock:
            yield self.db

    def transaction(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        """One durable transaction (fsynced), for other state kept in this database (run history)."""
        self._tx(fn)

    def _tx(self, fn: Callable[[sqlite3.Connection], None], *, durable: bool = True,
            db: sqlite3.Connection | None = None) -> None:
        """One transaction. ``durable`` ones are fsynced at commit; the others survive a crash of this
        process (WAL) but may be lost to a power cut, which is only ever safe to lose (see record_many).
        ``db``: another connection to this ledger (its own thread), instead of the shared one."""
        with self._lock if db is None else contextlib.nullcontext():
            db = db or self.db
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    fn(db)
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                if disk_full(exc):
                    raise DiskFull(f"{self.path.parent}: the disk is full (the ledger cannot be written). Free space "
                                   "there and run the same command again: nothing is registered twice.",
                                   code="disk-full", path=str(self.path.parent)) from exc
                raise

    def _srms_id(self, srms: str) -> int:
        with self._lock:
            row = self.db.execute("SELECT id FROM srms WHERE identity=?", (srms,)).fetchone()
            if row is None:
                row = self.db.execute("INSERT INTO srms (identity) VALUES (?) RETURNING id", (srms,)).fetchone()
        return int(row[0])

    def held(self, srms: str, order_ids: list[str], *, brief: bool = False) -> dict[str, Held]:
        """What the ledger holds of these orders at this SRMS: one query, the IDs sorted so the index
        is walked in order. ``brief``: code and batch key left out (None), a fifth less to read."""
        sid = self._srms_id(srms)
        with self._lock:
            rows = self.db.execute(
                f"SELECT o.fk_order_id, o.status, {'NULL' if brief else 'o.code'}, o.reference_id, o.ticket_id, "
                f"{'NULL' if brief else 'o.batch_key'} FROM json_each(?) AS j CROSS JOIN orders AS o "
                "ON o.srms_id = ? AND o.fk_order_id = j.value",  # json outer, index inner
                (json.dumps(sorted(order_ids)), sid)).fetchall()
        return {row[0]: row[1:] for row in rows}

    def pending_batches(self, srms: str) -> list[tuple[str, list[str]]]:
        with self._lock:
            rows = self.db.execute("SELECT b.key, body.order_ids FROM batches b JOIN batch_bodies body USING (key) "
                                   "WHERE b.srms=? AND b.state='pending' ORDER BY b.created_at, b.key",
                                   (srms,)).fetchall()
        return [(k, json.loads(ids)) for k, ids in rows]

    def body(self, key: str) -> str:
        """A planned batch's body as recorded (a JSON array of order IDs): it is what is sent."""
        with self._lock:
            row = self.db.execute("SELECT order_ids FROM batch_bodies WHERE key=?", (key,)).fetchone()
        if row is None:
            raise KeyError(f"no batch {key} in the ledger")
        return str(row[0])

    def plan(self, srms: str, batches: list[tuple[str, str]]) -> None:
        """Record batches (key and exact body, the order IDs as a JSON array) before any of them is
        sent, fsynced."""
        stamp = _now()

        def write(db: sqlite3.Connection) -> None:
            db.executemany("INSERT INTO batches VALUES (?,?,?,'pending',NULL)", [(k, srms, stamp) for k, _ in batches])
            db.executemany("INSERT INTO batch_bodies VALUES (?,?)", batches)

        self._tx(write)

    def record_many(self, srms: str, answers: list[tuple[str, str, list[Answer]]], *,
                    db: sqlite3.Connection | None = None) -> None:
        """Keep SRMS's answers to batches, (key, job_id, outcomes) each, in one transaction: a row per
        batch, so the hot loop stays light; ``index`` spreads them into per-order rows later.

        outcomes: (order, status, code, reference_id, ticket_id). Not fsynced: were an answer lost to a
        power cut, its batch would read 'pending' and a re-run would send it again with the same key and
        body, and SRMS would answer the same job.
        """
        payloads = [(key, job_id, json.dumps(outcomes, separators=(",", ":"))) for key, job_id, outcomes in answers]

        def write(db: sqlite3.Connection) -> None:
            db.executemany("INSERT OR REPLACE INTO batch_results VALUES (?,?,?)", payloads)
            db.executemany("UPDATE batches SET state='answered', job_id=? WHERE key=?",
                           [(job_id, key) for key, job_id, _ in payloads])

        self._tx(write, durable=False, db=db)

    def lookups(self, srms: str) -> Lookups:
        """Brief ``held`` lookups on a thread and a connection of their own (see Lookups)."""
        return Lookups(self, srms)

    def writer(self, srms: str, *, index_every: int = 0, expected: int = 0) -> AnswerWriter:
        """A thread that records answers (and indexes them every ``index_every`` batches, and as they
        come once fewer than that of the ``expected`` are left) on a connection of its own, so the
        threads that send never wait on the database."""
        return AnswerWriter(self, srms, index_every, expected)

    def index(self, srms: str, *, db: sqlite3.Connection | None = None) -> int:
        """Move answered batches' outcomes into the per-order table (at the end of a run, and at the
        start of the next one in case a run died before). Returns the orders indexed."""
        sid = self._srms_id(srms)
        stamp = _now()
        count = 0

        def write(db: sqlite3.Connection) -> None:
            nonlocal count
            keys = [k for (k,) in db.execute("SELECT key FROM batches WHERE srms=? AND state='answered'", (srms,))]
            if not keys:
                return
            db.execute("CREATE TEMP TABLE IF NOT EXISTS answered (key TEXT PRIMARY KEY) WITHOUT ROWID")
            db.execute("DELETE FROM answered")
            db.executemany("INSERT INTO answered VALUES (?)", [(k,) for k in keys])
            # Spread the JSON answers into rows inside SQLite, in order-ID order (the unique index walked in order).
            count = db.execute(
                "INSERT OR REPLACE INTO orders SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2, "
                "j.value ->> 3, j.value ->> 4, r.key, ? FROM answered a CROSS JOIN batch_results r ON r.key = a.key, "
                "json_each(r.outcomes) j ORDER BY 2", (sid, stamp)).rowcount
            db.execute("UPDATE batches SET state='done' WHERE key IN (SELECT key FROM answered)")
            db.execute("DELETE FROM answered")

        # Not fsynced: derived from the recorded answers; lost to a power cut, the batches read
        # 'answered' again and the next run's start indexes them.
        self._tx(write, durable=False, db=db)
        return count

    def answers(self, keys: list[str]) -> dict[str, Held]:
        """What SRMS answered for these batches, by order: (status, code, reference_id, ticket_id, key)."""
        out: dict[str, Held] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            with self._lock:
                rows = self.db.execute(f"SELECT key, outcomes FROM batch_results WHERE key IN "
                                       f"({','.join('?' * len(part))})", part).fetchall()
            for key, outcomes in rows:
                for oid, status, code, ref, tid in json.loads(outcomes):
                    out[oid] = (status, code, ref, tid, key)
        return out

    def registrations(self, srms: str | None = None) -> list[tuple[str, str | None, str | None]]:
        """(order, reference_id, ticket_id) of every order the ledger knows as registered."""
        q = "SELECT fk_order_id, reference_id, ticket_id FROM orders WHERE status IN ('registered', " \
            "'already-registered')"
        args: tuple = ()
        if srms:
            q += " AND srms_id=?"
            args = (self._srms_id(srms),)
        with self._lock:
            return self.db.execute(q + " ORDER BY fk_order_id", args).fetchall()

    # ------------------------------------------------------------ single tickets

    def ticket_key(self, srms: str, body_hash: str) -> str | None:
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


class Lookups:
    """``held(srms, ids, brief=True)`` asked ahead: ``ahead`` returns at once and the query runs on a
    thread and a connection of their own, so a caller works on one chunk of a sheet while the next is
    looked up. SQLite lets go of the GIL while it seeks, and the rows come back as one text, split when
    the caller asks for them, on its own thread (a re-run of 100,000 orders: ~0.12 s of B-tree seeks
    off the main thread, ~0.06 s of splitting left on it; split on the lookup thread, the rows'
    memory went to that thread's heap and a 1,000,000-order re-run peaked ~15 MiB higher). A text that
    does not split cleanly (a value holding a separator) is looked up again as rows. Reads see what was
    committed when each query starts."""

    _QUERY = ("SELECT count(*), group_concat(o.fk_order_id || char(31) || o.status || char(31) || "
              "ifnull('=' || o.reference_id, '') || char(31) || ifnull('=' || o.ticket_id, ''), char(30)) "
              "FROM json_each(?) AS j CROSS JOIN orders AS o ON o.srms_id = ? AND o.fk_order_id = j.value")

    def __init__(self, ledger: Ledger, srms: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.ledger, self.srms, self._sid = ledger, srms, ledger._srms_id(srms)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-lookups")
        self._db: sqlite3.Connection | None = None

    def ahead(self, order_ids: list[str]) -> Callable[[], dict[str, Held]]:
        """Start looking these orders up; call what is returned for the rows (it waits for them)."""
        query = json.dumps(sorted(order_ids))
        answer = self._pool.submit(self._query, query)

        def held() -> dict[str, Held]:
            count, text = answer.result()
            if not count or text is None:
                return {}
            out: dict[str, Held] = {}
            records = text.split("\x1e")
            try:
                if len(records) != count:
                    raise ValueError("a value holds the record separator")
                for record in records:
                    oid, status, ref, tid = record.split("\x1f")
                    out[oid] = (status, None, ref[1:] if ref else None, tid[1:] if tid else None, None)
            except ValueError:
                return self.ledger.held(self.srms, order_ids, brief=True)
            return out

        return held

    def _query(self, query: str) -> tuple[int, str | None]:
        if self._db is None:
            self._db = sqlite3.connect(self.ledger.path, isolation_level=None, timeout=60)
        count, text = self._db.execute(self._QUERY, (query, self._sid)).fetchone()
        return int(count), text

    def close(self) -> None:
        def close_db() -> None:
            if self._db is not None:
                self._db.close()

        with contextlib.suppress(RuntimeError):  # closed already
            self._pool.submit(close_db)  # after the lookup still running, if any: at most one is ahead
        self._pool.shutdown(wait=True)


class AnswerWriter:
    """Records batches' answers from a queue, on a thread and a connection of its own: whatever
    arrived meanwhile goes in one transaction, and every ``index_every`` batches (0: only at close) the
    answered ones are indexed too, and each arrival once fewer than ``index_every`` of the ``expected``
    batches are left, so little is left to index when the sending ends. Not durable, as ``record_many``:
    an answer lost with the process leaves its batch pending, and a re-run sends it again with the same
    key and body."""

    def __init__(self, ledger: Ledger, srms: str, index_every: int, expected: int = 0) -> None:
        self.ledger, self.srms, self.index_every, self.expected = ledger, srms, index_every, expected
        self.recorded: set[str] = set()  # keys whose answer is committed
        self.indexed = 0  # orders indexed
        self.error: BaseException | None = None  # what stopped it (a full disk as DiskFull)
        self._queue: queue.SimpleQueue[tuple[str, str, list[Answer]] | None] = queue.SimpleQueue()
        self._all_recorded = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def put(self, key: str, job_id: str, outcomes: list[Answer]) -> None:
        if not self._closed:  # after close (a thread that outlived an interrupted run): the batch stays pending
            self._queue.put((key, job_id, outcomes))

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        unindexed = 0
        try:
            db = sqlite3.connect(self.ledger.path, isolation_level=None, timeout=60)
            done = False
            while not done:
                items = [self._queue.get()]
                with contextlib.suppress(queue.Empty):
                    while True:
                        items.append(self._queue.get_nowait())
                done = any(item is None for item in items)
                answers = [item for item in items if item is not None]
                if answers:
                    self.ledger.record_many(self.srms, answers, db=db)
                    self.recorded.update(key for key, _, _ in answers)
                    unindexed += len(answers)
                if done:
                    self._all_recorded.set()
                # Near the end, each arrival is indexed at once: the last index is all the sender waits for.
                if unindexed and (done or self.index_every and (
                        unindexed >= self.index_every or len(self.recorded) + self.index_every >= self.expected)):
                    self.indexed += self.ledger.index(self.srms, db=db)
                    unindexed = 0
        except BaseException as exc:  # raised by join(); the sender watches ``error`` meanwhile
            self.error = exc
        finally:
            self._all_recorded.set()
            if db is not None:
                db.close()

    def wait_recorded(self) -> None:
        """After close(): wait until every answer put is committed (the last index may still run)."""
        self._all_recorded.wait()

    def close(self) -> None:
        """No more answers: record the rest and index what is unindexed; ``join`` waits for it."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)

    def join(self) -> int:
        """Wait for the thread; returns the orders indexed, or raises what stopped it."""
        self.close()
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.indexed
