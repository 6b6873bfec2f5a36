"""The mock SRMS's state: one SQLite file (WAL, synchronous=FULL).

A job is one transaction: whatever a client was told is on disk before the answer leaves, so a
SIGKILL right after answering loses nothing. An order registers at most once, ever: the tickets
table has one row per order, enforced by a UNIQUE constraint, not by code.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhs_bulk import domain
from fhs_bulk.srms.schemas import body_hash

IST = domain.IST
_REF_ALPHABET = string.ascii_letters + string.digits

SCHEMA = """
CREATE TABLE IF NOT EXISTS catalogue (
    fk_order_id TEXT PRIMARY KEY, fsn TEXT NOT NULL, service TEXT NOT NULL, customer_name TEXT, phone TEXT,
    email TEXT, address TEXT, city TEXT, state TEXT, pincode TEXT, brand TEXT, preferred_date TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tickets (
    seq INTEGER PRIMARY KEY,
    ticket_id TEXT NOT NULL UNIQUE,
    fk_order_id TEXT NOT NULL,
    reference_id TEXT UNIQUE,
    source TEXT NOT NULL,
    service TEXT NOT NULL, customer_name TEXT NOT NULL, phone TEXT NOT NULL, address TEXT NOT NULL,
    city TEXT NOT NULL, pincode TEXT NOT NULL, preferred_date TEXT, spd TEXT NOT NULL,
    status TEXT NOT NULL, sub_status TEXT NOT NULL, remarks TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, status_changed_at TEXT NOT NULL,
    alternate_phone TEXT, reopened_from TEXT, reopened_as TEXT
);
-- One ticket per order, ever; a reopen adds a new ticket linked to the old one.
CREATE UNIQUE INDEX IF NOT EXISTS tickets_one_per_order ON tickets(fk_order_id) WHERE reopened_from IS NULL;
CREATE TABLE IF NOT EXISTS action_keys (
    idem_key TEXT PRIMARY KEY, action TEXT NOT NULL, ticket_id TEXT NOT NULL, body_hash TEXT NOT NULL,
    answer TEXT NOT NULL, created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    ticket_id TEXT NOT NULL, at TEXT NOT NULL, status TEXT NOT NULL, sub_status TEXT NOT NULL,
    remark TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS history_ticket ON history(ticket_id);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, idem_key TEXT NOT NULL UNIQUE, body_hash TEXT NOT NULL, created_at TEXT NOT NULL,
    ready_at REAL NOT NULL, total INTEGER NOT NULL, registered INTEGER NOT NULL, already INTEGER NOT NULL,
    rejected INTEGER NOT NULL, results TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ticket_keys (
    idem_key TEXT PRIMARY KEY, body_hash TEXT NOT NULL, ticket_id TEXT NOT NULL, created_at TEXT NOT NULL
) WITHOUT ROWID;
"""

TICKET_COLUMNS = ("ticket_id", "reference_id", "fk_order_id", "source", "service", "customer_name", "phone",
                  "address", "city", "pincode", "preferred_date", "spd", "status", "sub_status", "remarks",
                  "created_at", "updated_at", "status_changed_at", "alternate_phone", "reopened_from", "reopened_as")


class ActionRefused(Exception):
    """A ticket action the process does not allow in the ticket's state (or after the warranty)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class KeyReused(Exception):
    """An Idempotency-Key came back with a different body."""


class OrderHasTicket(Exception):
    def __init__(self, ticket_id: str) -> None:
        super().__init__(ticket_id)
        self.ticket_id = ticket_id


def new_reference_ids(n: int) -> list[str]:
    """``BK-`` + 4 of [0-9A-Za-z] + a UUID4's 32 hex digits; the UUID makes them unique."""
    prefix = secrets.token_bytes(4 * n)
    return ["BK-" + "".join(_REF_ALPHABET[b % 62] for b in prefix[4 * i: 4 * i + 4]) + uuid.uuid4().hex
            for i in range(n)]


def ticket_id_for(seq: int) -> str:
    return f"SRM-{seq:010d}"


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_promised_date(preferred: str | None, service: str, created: datetime) -> str:
    """The preferred date when it is still ahead, else the service's TAT from the day of registration (IST)."""
    today = created.astimezone(IST).date()
    if preferred:
        try:
            wanted = date.fromisoformat(preferred)
        except ValueError:
            wanted = None
        if wanted is not None and wanted >= today:
            return wanted.isoformat()
    return (today + timedelta(days=domain.SERVICE_TAT_DAYS.get(service, 2))).isoformat()


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.execute("PRAGMA cache_size=-131072")  # 128 MiB: the random-key indexes stay in memory
        # Checkpoints copy every page a job dirtied back into the db file; with random-key indexes that
        # is most of a job's cost, so let the WAL grow to ~80 MiB between them.
        self.db.execute("PRAGMA wal_autocheckpoint=20000")
        self._migrate()
        self.db.executescript(SCHEMA)
        self.catalogue: dict[str, tuple[str, ...]] = {}
        self._load_catalogue_cache()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        """A db written before reopen existed: tickets without the link columns and with one ticket per
        order as a table constraint. Rebuilt once, in one transaction, keeping every row."""
        cols = [r[1] for r in self.db.execute("PRAGMA table_info(tickets)")]
        if not cols or "reopened_from" in cols:
            return
        old = ", ".join(cols)
        with self.tx() as db:
            db.execute("ALTER TABLE tickets RENAME TO tickets_before_reopen")
            db.execute(SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS tickets"):SCHEMA.index(");", SCHEMA.index(
                "CREATE TABLE IF NOT EXISTS tickets")) + 2])
            db.execute(f"INSERT INTO tickets ({old}) SELECT {old} FROM tickets_before_reopen")
            db.execute("DROP TABLE tickets_before_reopen")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------ catalogue

    def load_catalogue(self, rows: Iterable[dict[str, str]]) -> int:
        from fhs_bulk.srms.mock.catalogue import COLUMNS

        data = [tuple(r.get(c, "") for c in COLUMNS) for r in rows]
        with self.tx() as db:
            db.executemany(f"INSERT OR REPLACE INTO catalogue VALUES ({','.join('?' * len(COLUMNS))})", data)
        self._load_catalogue_cache()
        return len(data)

    def _load_catalogue_cache(self) -> None:
        self.catalogue = {r[0]: r for r in self.db.execute(
            "SELECT fk_order_id, fsn, service, customer_name, phone, address, city, pincode, preferred_date "
            "FROM catalogue")}

    # ------------------------------------------------------------ bulk jobs

    def create_job(self, key: str, order_ids: list[str], ready_delay_s: float = 0.0) -> tuple[dict, bool]:
        """Register the orders of one job in one transaction; the same key and body return the same job."""
        digest = body_hash(order_ids)
        with self.tx() as db:
            row = db.execute("SELECT job_id, body_hash FROM jobs WHERE idem_key=?", (key,)).fetchone()
            if row is not None:
                if row[1] != digest:
                    raise KeyReused(key)
                return self._job_row(row[0]), False
            unique = list(dict.fromkeys(order_ids))
            existing: dict[str, tuple[str | None, str]] = {}
            for chunk_start in range(0, len(unique), 900):
                chunk = unique[chunk_start:chunk_start + 900]
                q = ",".join("?" * len(chunk))
                for oid, ref, tid in db.execute(
                        f"SELECT fk_order_id, reference_id, ticket_id FROM tickets WHERE fk_order_id IN ({q}) "
                        "AND reopened_from IS NULL", chunk):
                    existing[oid] = (ref, tid)
            now = now_utc()
            stamp = iso(now)
            seq = db.execute("SELECT coalesce(max(seq), 0) FROM tickets").fetchone()[0]
            results: list[list[Any]] = []
            new_tickets: list[tuple] = []
            history: list[tuple] = []
            counts = {"registered": 0, "already-registered": 0, "rejected": 0}
            refs = iter(new_reference_ids(len(unique) - len(existing)))
            for oid in order_ids:
                if oid in existing:
                    ref, tid = existing[oid]
                    results.append([oid, "already-registered", None, ref, tid])
                    counts["already-registered"] += 1
                    continue
                cat = self.catalogue.get(oid)
                code = None
                if cat is None:
                    code = "order-not-found"
                elif not cat[1].startswith(domain.ODS_FSN_PREFIX):
                    code = "fsn-not-ods"
                elif domain.eligible_service(cat[2]) is None:
                    code = "service-not-bulk-eligible"
                if code is not None or cat is None:
                    # A service SRMS knows but will not take in bulk: say which, for a single ticket.
                    results.append([oid, "rejected", code, None, None]
                                   + ([cat[2]] if code == "service-not-bulk-eligible" and cat is not None else []))
                    counts["rejected"] += 1
                    continue
                seq += 1
                tid = ticket_id_for(seq)
                ref = next(refs)
                _, _, service, name, phone, address, city, pincode, preferred = cat  # not None: rejected above
                spd = service_promised_date(preferred, service, now)
                new_tickets.append((seq, tid, oid, ref, "bulk", service, name or "", phone or "", address or "",
                                    city or "", pincode or "", preferred or None, spd, "CREATED", "NOT_APPLICABLE",
                                    "", stamp, stamp, stamp))
                history.append((tid, stamp, "CREATED", "NOT_APPLICABLE", "registered by bulk upload"))
                existing[oid] = (ref, tid)
                results.append([oid, "registered", None, ref, tid])
                counts["registered"] += 1
            if new_tickets:
                db.executemany(
                    "INSERT INTO tickets (seq, ticket_id, fk_order_id, reference_id, source, service, customer_name, "
                    "phone, address, city, pincode, preferred_date, spd, status, sub_status, remarks, created_at, "
                    "updated_at, status_changed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", new_tickets)
                db.executemany("INSERT INTO history VALUES (?,?,?,?,?)", history)
            job_id = "job-" + uuid.uuid4().hex
            db.execute("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (job_id, key, digest, stamp, now.timestamp() + ready_delay_s, len(order_ids),
                        counts["registered"], counts["already-registered"], counts["rejected"],
                        json.dumps(results, separators=(",", ":"))))
        return self._job_row(job_id), True

    def _job_row(self, job_id: str) -> dict:
        row = self.db.execute("SELECT job_id, created_at, ready_at, total, registered, already, rejected "
                              "FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return {"job_id": row[0], "created_at": row[1], "ready_at": row[2], "total": row[3],
                "registered": row[4], "already_registered": row[5], "rejected": row[6]}

    def get_job(self, job_id: str) -> dict | None:
        try:
            return self._job_row(job_id)
        except KeyError:
            return None

    def job_results(self, job_id: str) -> list[dict] | None:
        row = self.db.execute("SELECT results FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            return None
        return [{"fk_order_id": r[0], "status": r[1], "code": r[2], "reference_id": r[3], "ticket_id": r[4],
                 "service": r[5] if len(r) > 5 else None}
                for r in json.loads(row[0])]

    def lookup(self, order_ids: list[str]) -> list[dict]:
        out = []
        q = ",".join("?" * len(order_ids))
        for oid, ref, tid in self.db.execute(
                f"SELECT fk_order_id, reference_id, ticket_id FROM tickets WHERE fk_order_id IN ({q}) "
                "AND reopened_from IS NULL", order_ids):
            out.append({"fk_order_id": oid, "reference_id": ref, "ticket_id": tid})
        return out

    # ------------------------------------------------------------ single tickets

    def create_ticket(self, key: str, req: dict) -> tuple[dict, bool]:
        digest = body_hash(req)
        with self.tx() as db:
            row = db.execute("SELECT body_hash, ticket_id FROM ticket_keys WHERE idem_key=?", (key,)).fetchone()
            if row is not None:
                if row[0] != digest:
                    raise KeyReused(key)
                return self._tickets([row[1]])[0], False
            clash = db.execute("SELECT ticket_id FROM tickets WHERE fk_order_id=? AND reopened_from IS NULL",
                               (req["fk_order_id"],)).fetchone()
            if clash is not None:
                raise OrderHasTicket(clash[0])
            now = now_utc()
            stamp = iso(now)
            seq = db.execute("SELECT coalesce(max(seq), 0) FROM tickets").fetchone()[0] + 1
            tid = ticket_id_for(seq)
            preferred = str(req["preferred_date"])
            spd = service_promised_date(preferred, req["service"], now)
            db.execute(
                "INSERT INTO tickets (seq, ticket_id, fk_order_id, reference_id, source, service, customer_name, "
                "phone, address, city, pincode, preferred_date, spd, status, sub_status, remarks, created_at, "
                "updated_at, status_changed_at) VALUES (?,?,?,NULL,'single',?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (seq, tid, req["fk_order_id"], req["service"], req["customer_name"], req["phone"], req["address"],
                 req["city"], req["pincode"], preferred, spd, "CREATED", "NOT_APPLICABLE", req.get("remarks", ""),
                 stamp, stamp, stamp))
            db.execute("INSERT INTO history VALUES (?,?,?,?,?)",
                       (tid, stamp, "CREATED", "NOT_APPLICABLE", "created as a single ticket"))
            db.execute("INSERT INTO ticket_keys VALUES (?,?,?,?)", (key, digest, tid, stamp))
        return self._tickets([tid])[0], True

    # ------------------------------------------------------------ actions (reschedule, cancel, reopen)

    def act(self, action: str, key: str, ticket_id: str, req: dict[str, Any], today: date | None = None
            ) -> tuple[dict[str, Any], bool]:
        """Carry out one action on a ticket, exactly once per Idempotency-Key: the same key and body
        return the first answer; the same key with another body is KeyReused. The process's rules
        (``domain.ACTION_RULES``) are enforced here, as SRMS would. Returns (ticket, done now)."""
        digest = body_hash({"action": action, "ticket": ticket_id, **req})
        with self.tx() as db:
            row = db.execute("SELECT body_hash, answer FROM action_keys WHERE idem_key=?", (key,)).fetchone()
            if row is not None:
                if row[0] != digest:
                    raise KeyReused(key)
                return json.loads(row[1]), False
            found = db.execute("SELECT ticket_id, status, sub_status, status_changed_at, service, fk_order_id, "
                               "customer_name, phone, address, city, pincode, reopened_as FROM tickets "
                               "WHERE ticket_id=? OR reference_id=?", (ticket_id, ticket_id)).fetchone()
            if found is None:
                raise LookupError(ticket_id)
            tid, status, sub, changed_at = found[0], found[1], found[2], found[3]
            refusal = domain.action_refusal(action, status)
            if refusal is not None:
                raise ActionRefused(refusal.refusal_code, f"ticket {tid} is {status}/{sub}: {refusal.rule}")
            now = now_utc()
            stamp = iso(now)
            today = today or now.astimezone(IST).date()
            answer_id = tid
            if action == "reschedule":
                day = date.fromisoformat(str(req["date"]))
                if day < today:
                    raise ActionRefused("date-past", f"{day.isoformat()} is before today ({today.isoformat()}, "
                                                     "Asia/Kolkata)")
                if day > today + timedelta(days=domain.RESCHEDULE_HORIZON_DAYS):
                    raise ActionRefused("date-too-far", f"{day.isoformat()} is more than "
                                                        f"{domain.RESCHEDULE_HORIZON_DAYS} days ahead")
                new_status, new_sub = domain.ACTIONS["reschedule"].result
                assert new_sub is not None
                db.execute("UPDATE tickets SET status=?, sub_status=?, spd=?, preferred_date=?, updated_at=?, "
                           "status_changed_at=? WHERE ticket_id=?",
                           (new_status, new_sub, day.isoformat(), day.isoformat(), stamp, stamp, tid))
                db.execute("INSERT INTO history VALUES (?,?,?,?,?)",
                           (tid, stamp, new_status, new_sub, req.get("remarks") or f"rescheduled to {day.isoformat()}"))
            elif action == "cancel":
                reason = str(req.get("reason") or domain.DEFAULT_CANCEL_REASON)
                new_status = domain.ACTIONS["cancel"].result[0]
                db.execute("UPDATE tickets SET status=?, sub_status=?, updated_at=?, status_changed_at=? "
                           "WHERE ticket_id=?", (new_status, reason, stamp, stamp, tid))
                db.execute("INSERT INTO history VALUES (?,?,?,?,?)",
                           (tid, stamp, new_status, reason, req.get("remarks") or domain.DEFAULT_CANCEL_REMARKS))
            else:  # reopen
                done = db.execute("SELECT at FROM history WHERE ticket_id=? AND status='COMPLETED' "
                                  "ORDER BY rowid DESC LIMIT 1", (tid,)).fetchone()
                service_day = datetime.fromisoformat((done[0] if done else changed_at).replace("Z", "+00:00")
                                                     ).astimezone(IST).date()
                if (today - service_day).days > domain.WARRANTY_DAYS:
                    raise ActionRefused(domain.WARRANTY_EXPIRED,
                                        f"ticket {tid} was serviced on {service_day.isoformat()}, more than "
                                        f"{domain.WARRANTY_DAYS} days ago: post policy service denial")
                if found[11]:
                    raise ActionRefused("ticket-reopened", f"ticket {tid} was already reopened as {found[11]}")
                service, order = found[4], found[5]
                seq = db.execute("SELECT coalesce(max(seq), 0) FROM tickets").fetchone()[0] + 1
                new_id = ticket_id_for(seq)
                new_status, new_sub = domain.ACTIONS["reopen"].result
                spd = service_promised_date(None, service, now)
                db.execute(
                    "INSERT INTO tickets (seq, ticket_id, fk_order_id, reference_id, source, service, customer_name, "
                    "phone, address, city, pincode, preferred_date, spd, status, sub_status, remarks, created_at, "
                    "updated_at, status_changed_at, alternate_phone, reopened_from) "
                    "VALUES (?,?,?,NULL,'single',?,?,?,?,?,?,NULL,?,?,?,?,?,?,?,?,?)",
                    (seq, new_id, order, service, found[6], req.get("phone") or found[7],
                     req.get("address") or found[8], req.get("city") or found[9], req.get("pincode") or found[10],
                     spd, new_status, new_sub, req.get("remarks") or "", stamp, stamp, stamp,
                     req.get("alternate_phone"), tid))
                db.execute("UPDATE tickets SET reopened_as=?, updated_at=? WHERE ticket_id=?", (new_id, stamp, tid))
                db.execute("INSERT INTO history VALUES (?,?,?,?,?)",
                           (new_id, stamp, new_status, new_sub or "", f"reopened from {tid}"
                            + (f": {req['remarks']}" if req.get("remarks") else "")))
                db.execute("INSERT INTO history VALUES (?,?,?,?,?)",
                           (tid, stamp, status, sub, f"reopened as {new_id}"))
                answer_id = new_id
            answer = self._tickets([answer_id])[0]
            db.execute("INSERT INTO action_keys VALUES (?,?,?,?,?,?)",
                       (key, action, tid, digest, json.dumps(answer), stamp))
        return answer, True

    def get_tickets(self, ids: list[str]) -> tuple[list[dict], list[str]]:
        """Tickets by Service Ticket ID or BK- reference, in the order asked; plus the unknown IDs."""
        tickets = {t["ticket_id"]: t for t in self._tickets(ids)}
        by_ref = {t["reference_id"]: t for t in tickets.values() if t["reference_id"]}
        found, unknown = [], []
        for i in ids:
            t = tickets.get(i) or by_ref.get(i)
            if t is None:
                unknown.append(i)
            else:
                found.append(t)
        return found, unknown

    def _tickets(self, ids: list[str]) -> list[dict]:
        out: list[dict] = []
        cols = ", ".join(TICKET_COLUMNS)
        for start in range(0, len(ids), 450):
            chunk = ids[start:start + 450]
            q = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT {cols} FROM tickets WHERE ticket_id IN ({q}) OR reference_id IN ({q})", chunk + chunk
            ).fetchall()
            out.extend(dict(zip(TICKET_COLUMNS, r, strict=True)) for r in rows)
        if not out:
            return out
        hist: dict[str, list[dict]] = {t["ticket_id"]: [] for t in out}
        tids = list(hist)
        for start in range(0, len(tids), 900):
            chunk = tids[start:start + 900]
            q = ",".join("?" * len(chunk))
            for tid, at, st, sub, remark in self.db.execute(
                    f"SELECT ticket_id, at, status, sub_status, remark FROM history WHERE ticket_id IN ({q}) "
                    "ORDER BY rowid", chunk):
                hist[tid].append({"at": at, "status": st, "sub_status": sub, "remark": remark})
        for t in out:
            t["client"] = domain.CLIENT_NAME
            t["history"] = hist[t["ticket_id"]]
        return out

    # ------------------------------------------------------------ journey

    def open_tickets(self) -> list[dict]:
        cols = ", ".join(TICKET_COLUMNS)
        rows = self.db.execute(
            f"SELECT {cols} FROM tickets WHERE status NOT IN ('COMPLETED', 'CANCELED') ORDER BY seq").fetchall()
        return [dict(zip(TICKET_COLUMNS, r, strict=True)) for r in rows]

    def apply_events(self, events: list[tuple[str, str, str, str, str]], spd_changes: dict[str, str]) -> None:
        """events: (ticket_id, at, status, sub_status, remark), in time order per ticket."""
        with self.tx() as db:
            db.executemany("INSERT INTO history VALUES (?,?,?,?,?)", events)
            last: dict[str, tuple[str, str, str]] = {}
            for tid, at, st, sub, _ in events:
                last[tid] = (at, st, sub)
            db.executemany(
                "UPDATE tickets SET status=?, sub_status=?, updated_at=?, status_changed_at=? WHERE ticket_id=?",
                [(st, sub, at, at, tid) for tid, (at, st, sub) in last.items()])
            db.executemany("UPDATE tickets SET spd=? WHERE ticket_id=?",
                           [(spd, tid) for tid, spd in spd_changes.items()])
