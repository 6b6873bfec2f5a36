"""The nightly bulk upload: validate, consult the ledger, register through bulk jobs, write results.

Exactly once: every batch's key and body are in the ledger before it is sent, so whatever dies
(this process, the network, SRMS) a re-run sends the same key and body and SRMS answers the original
job. SRMS itself registers an order at most once, so even a lost ledger cannot double-register.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import queue
import tempfile
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fhs_bulk.domain import MAX_BATCH
from fhs_bulk.errors import (
    DataError,
    DiskFull,
    Exit,
    Interrupted,
    SheetError,
    SrmsError,
    SrmsUnavailable,
    UsageError,
)
from fhs_bulk.gcpause import collect_young, gc_paused
from fhs_bulk.sheets.ref import SheetRef
from fhs_bulk.state.ledger import HOLDS_ID, Answer, AnswerWriter, Held, Ledger

if TYPE_CHECKING:
    from fhs_bulk.session import Connection, Session

log = logging.getLogger("fhs_bulk.upload.run")

RESULT_COLUMNS = ["row", "fk_order_id", "status", "code", "reference_id", "ticket_id", "message"]
STATUSES = ("registered", "already-registered", "rejected", "invalid", "failed")
REJECT_MESSAGES = {
    "fsn-not-ods": "SRMS: the order's FSN does not start with ODS; only ODS service orders are bulk registered",
    "service-not-bulk-eligible": "SRMS: the order's service is not bulk-eligible; create a single ticket instead",
    "order-not-found": "SRMS: no such Flipkart order; check the ID",
}


@dataclass
class UploadOptions:
    batch_size: int = MAX_BATCH
    concurrency: int = 4
    strict: bool = False
    dry_run: bool = False

    def check(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise UsageError(f"--batch-size must be between 1 and {MAX_BATCH}.", code="usage")
        if not 1 <= self.concurrency <= 64:
            raise UsageError("--concurrency must be between 1 and 64.", code="usage")


@dataclass
class RowResult:
    row: int
    fk_order_id: str
    status: str
    code: str | None = None
    reference_id: str | None = None
    ticket_id: str | None = None
    message: str = ""

    def as_list(self) -> list[Any]:
        return [self.row, self.fk_order_id, self.status, self.code, self.reference_id, self.ticket_id,
                self.message]


@dataclass
class UploadResult:
    sheet: str
    srms: str
    rows: ResultRows
    elapsed: float
    sent: int = 0
    batches: int = 0
    resent_batches: int = 0
    retries: int = 0
    dry_run: bool = False
    out: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    warnings: int = 0
    ledger_warnings: list[str] = field(default_factory=list)
    interrupted: int | None = None  # the signal (2 SIGINT, 15 SIGTERM) that stopped the run
    services: dict[str, str] = field(default_factory=dict)  # service-not-bulk-eligible orders' services

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 128 + self.interrupted
        if self.counts.get("failed"):
            return Exit.TRANSIENT
        if self.counts.get("invalid") or self.counts.get("rejected"):
            return Exit.DATA
        return Exit.OK

    @property
    def orders_per_s(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def to_pandas(self) -> Any:
        """One row per input row (the results file's columns) as a pandas DataFrame."""
        from fhs_bulk.frames import frame

        return frame(RESULT_COLUMNS, self.rows.lists())

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet, "srms": self.srms, "dry_run": self.dry_run, "out": self.out,
            "rows": len(self.rows), "counts": self.counts, "sent": self.sent, "batches": self.batches,
            "resent_batches": self.resent_batches, "retries": self.retries,
            "elapsed_s": round(self.elapsed, 3), "orders_per_s": round(self.orders_per_s, 1),
            "interrupted": bool(self.interrupted), "exit_code": int(self.exit_code),
            **({"orders": self._orders_by_status()} if self.dry_run else {}),
        }

    def _orders_by_status(self) -> dict[str, list[str]]:
        """A dry run's orders by what would become of them: one pass over the (compressed) rows."""
        out: dict[str, list[str]] = {s: [] for s in ("would-send", "already-registered", "rejected", "invalid")}
        for _, oid, status, *_ in self.rows.lists():
            if status in out:
                out[status].append(oid)
        return out


Progress = Callable[[int, int], None]
# What became of one order: (status, code, reference_id, ticket_id, message).
Outcome = tuple[str, str | None, str | None, str | None, str]

CHUNK_ROWS = 20_000  # sheet rows per step of a pass: memory stays flat however long the sheet
PASS_TWO_ROWS = 2_000  # pass 2's step: small, so a step between answers holds the GIL ~5 ms
INDEX_EVERY = 10  # at least this many batches' answers indexed at once while sending (see AnswerWriter)
COMPRESS_AFTER = 100_000  # result rows whose text is kept beside the compressed chunk
PLAN_BATCHES = 100  # batches recorded (fsynced) per ledger transaction while planning
EARLIER = "registered by an earlier run"


@dataclass(slots=True)
class _Chunk:
    """One chunk of result rows: its JSON text (only for the first COMPRESS_AFTER rows), its zlib bytes
    while being compressed or until spilled, else where they are in the temporary file."""

    text: str | None
    pending: Future[bytes] | None
    rows: int
    offset: int = 0
    size: int = 0


class ResultRows:
    """The results, one row per data row in sheet order, kept as compressed JSON chunks (~50 bytes a
    row). The same chunks become the run history's rows and, mostly by string operations, the results
    CSV. Iterate for RowResult; ``lists()`` for the cells.

    Chunks are compressed on a thread of their own (zlib lets go of the GIL), so the other core does it
    while this one goes on. The first COMPRESS_AFTER rows' text is kept too, so a usual night's results
    are written without inflating anything; past it, the compressed chunks go to a temporary file, so
    memory stays flat however long the sheet."""

    def __init__(self) -> None:
        self._chunks: list[_Chunk] = []
        self._len = 0
        self._pool: ThreadPoolExecutor | None = None
        self._file: IO[bytes] | None = None
        self.counts: Counter[str] = Counter()  # rows by status

    def add(self, rows: list[list[Any]]) -> None:
        if rows:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="results-zlib")
            text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
            keep = self._len < COMPRESS_AFTER
            self._chunks.append(_Chunk(text if keep else None, self._pool.submit(zlib.compress, text.encode(), 1),
                                       len(rows)))
            self._len += len(rows)
            self.counts.update([r[2] for r in rows])
            for chunk in self._chunks[-3::-1]:  # spill what is compressed, past the kept rows; two stay in flight
                if chunk.text is not None or chunk.pending is None:
                    break
                self._spill(chunk)

    def _spill(self, chunk: _Chunk) -> None:
        assert chunk.pending is not None
        blob = chunk.pending.result()
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="fhs-bulk-results-")  # noqa: SIM115 (lives with self)
            self._file.seek(0, os.SEEK_END)
            chunk.offset, chunk.size = self._file.tell(), len(blob)
            self._file.write(blob)
            self._file.flush()  # a full disk says so here, not when the chunk is read back
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"{tempfile.gettempdir()}: the disk is full (the results of a long sheet are kept "
                               "there while it runs). Free space there (or set TMPDIR to a roomier directory) and "
                               "run the same command again.", code="disk-full", path=tempfile.gettempdir()) from exc
            raise
        chunk.pending = None

    def _blob(self, chunk: _Chunk) -> bytes:
        if chunk.pending is not None:
            return chunk.pending.result()
        assert self._file is not None
        self._file.seek(chunk.offset)
        return self._file.read(chunk.size)

    def __len__(self) -> int:
        return self._len

    def blobs(self) -> Iterator[bytes]:
        """Each chunk as zlib-compressed UTF-8 JSON: the run history's format."""
        for chunk in self._chunks:
            yield self._blob(chunk)

    def texts(self) -> Iterator[tuple[str, int]]:
        """Each chunk's JSON text, and its rows."""
        for chunk in self._chunks:
            yield chunk.text if chunk.text is not None else zlib.decompress(self._blob(chunk)).decode(), chunk.rows

    def chunks(self) -> Iterator[list[list[Any]]]:
        for text, _ in self.texts():
            yield json.loads(text)

    def lists(self) -> Iterator[list[Any]]:
        for chunk in self.chunks():
            yield from chunk

    def csv_texts(self) -> Iterator[str]:
        """The rows as CSV lines, any cell a spreadsheet would evaluate defused (see json_rows_csv)."""
        from fhs_bulk.sheets.write import json_rows_csv

        for text, n in self.texts():
            yield json_rows_csv(text, n, len(RESULT_COLUMNS))

    def __iter__(self) -> Iterator[RowResult]:
        for row in self.lists():
            yield RowResult(*row)

    def __getitem__(self, index: int) -> RowResult:
        if index < 0:
            index += self._len
        for chunk in self._chunks:
            if 0 <= index < chunk.rows:
                text = chunk.text if chunk.text is not None else zlib.decompress(self._blob(chunk))
                return RowResult(*json.loads(text)[index])
            index -= chunk.rows
        raise IndexError("result row out of range")


@gc_paused
def upload_sheet(sheet: str, session: Session, options: UploadOptions | None = None, *,
                 progress: Progress | None = None) -> UploadResult:
    """Run one upload. The caller holds the run lock; the session's ledger and SRMS are used (SRMS is
    only connected to when there is something to send or look up).

    Two passes over the sheet, a chunk of rows at a time: the first settles what the ledger already
    knows and plans the rest into batches; the second, after sending, fills in the answers.
    """
    from fhs_bulk.heap import lean_arrow
    from fhs_bulk.validate.check import validate_sheet

    options = options or UploadOptions()
    options.check()
    started = time.monotonic()
    lean_arrow()
    report = validate_sheet(sheet)  # a long CSV is checked as it is read: memory stays flat
    if report.sheet_error is not None:
        raise SheetError(report.sheet_error.message, code=report.sheet_error.code, path=sheet)
    log.info("validated %s: %d rows, %d valid, %d invalid", sheet, report.rows, report.valid, report.invalid)
    if options.strict and report.errors:
        first = report.errors[0]
        raise DataError(f"{report.invalid} invalid rows and --strict: nothing was sent. First: row {first.row}: "
                       f"{first.code}: {first.message}", code="strict")
    ledger, identity = session.ledger, session.identity
    ledger.index(identity)  # answers a run that died before indexing them
    # Batches an earlier run planned but never saw answered: (key, orders); their bodies stay in the ledger.
    unanswered = ledger.pending_batches(identity)
    pending = [(key, len(ids)) for key, ids in unanswered]
    in_pending = {oid for _, ids in unanswered for oid in ids}
    result = UploadResult(sheet=sheet, srms=session.description, rows=ResultRows(), elapsed=0.0,
                          dry_run=options.dry_run, warnings=len(report.warnings))
    first_error = report.first_error_by_row()

    # Pass 1: plan what the ledger does not settle. While every row is settled (a re-run), the rows
    # are kept and are the results; from the first open row on, pass 2 builds them after sending.
    settled: ResultRows | None = ResultRows()
    bodies: list[tuple[str, int]] = []  # batch bodies not yet planned (JSON arrays of IDs) and their sizes
    planned: list[tuple[str, int]] = []  # batches recorded in the ledger by this run: key, orders
    current: list[str] = []
    decide = _Decider(first_error, in_pending, options.dry_run, report.untold_code)
    new_rows = bytearray(report.rows)  # 1: the row went into one of this run's new batches
    row_index = 0
    # SRMS is connected to (and pinged) on a thread from the moment something is sure to be sent; once
    # it answers, batches are sent as they are planned, while the rest of the sheet is read.
    connecting = _Connecting(session) if pending else None
    sender: _Sender | None = None

    def send_planned(bodies: list[tuple[str, int]]) -> None:
        """Record these bodies (fsynced, then let go: the senders read each back from the ledger) and
        hand them to the senders, started on first use once SRMS has answered the ping."""
        nonlocal sender
        if sender is None:
            assert connecting is not None
            try:
                conn = connecting.result()
            except SrmsUnavailable as exc:
                decide.unreachable(exc)
                return
            sender = _Sender(session, conn, options.concurrency, decide.extra, result.services)
            if pending:
                log.info("re-sending %s whose answer an earlier run never saw (same keys)",
                         _n(len(pending), "batch", "batches"))
                sender.add(pending)
        new = _plan(session, bodies)
        planned.extend(new)
        sender.add(new)

    # Brief: no row of a batch this run sends is looked up again in pass 1 (a sheet's repeats are
    # invalid; a pending batch's orders stay open), and no code settles a row.
    looked_up = _looked_up(report.chunks(CHUNK_ROWS), ledger, identity)
    try:
        for (rows, ids, valid), held in looked_up:
            if settled is not None:
                out = decide.settle(rows, ids, valid, held)
                if out is not None:
                    settled.add(out)
                    row_index += len(rows)
                    continue
                settled = None
                connecting = connecting or _Connecting(session)
            if held or in_pending:
                fresh = bytes(decide(row, oid, ok, held.get(oid)) is None and oid not in in_pending
                              for row, oid, ok in zip(rows, ids, valid, strict=True))
            else:  # none of the chunk's orders known (a new night's sheet): every valid row goes out
                fresh = bytes(valid)
            new_rows[row_index:row_index + len(rows)] = fresh
            current.extend(compress(ids, fresh))
            size = options.batch_size
            full = len(current) - len(current) % size
            bodies.extend((json.dumps(current[i:i + size]), size) for i in range(0, full, size))
            del current[:full]
            row_index += len(rows)
            # The first bodies go out at once; then PLAN_BATCHES at a time (one fsync each), far ahead
            # of the senders. A long sheet's bodies are never all in memory at once.
            if (not options.dry_run and decide.missing is None and connecting is not None
                    and (bodies or pending) and (sender is None or len(bodies) >= PLAN_BATCHES)):
                send_planned(bodies)
        if current:
            bodies.append((json.dumps(current), len(current)))
        del current

        if (bodies or planned or pending) and decide.missing is None:
            assert connecting is not None
            if options.dry_run:
                try:
                    _dry_run(connecting.result(), [json.loads(b) for b, _ in bodies] + [ids for _, ids in unanswered],
                             decide.extra)
                except SrmsUnavailable as exc:
                    decide.unreachable(exc)
            else:
                send_planned(bodies)
    except BaseException:
        if sender is not None:
            sender.abort()
        raise
    finally:
        looked_up.close()  # its lookup thread ends with it

    two: _PassTwo | None = None
    writer: AnswerWriter | None = None
    if sender is not None and decide.missing is None:
        sender.close()
        decide.run_keys = {key for key, _ in pending} | {key for key, _ in planned}
        if settled is None:
            two = _PassTwo(report, ledger, identity, decide, new_rows, [key for key, _ in planned],
                           options.batch_size)
        result.batches, result.resent_batches = sender.batches, len(pending)
        log.info("sending %s in %s to %s", _n(sender.total, "order"), _n(sender.batches, "batch", "batches"),
                 sender.conn.description)
        try:
            result.sent = sender.wait(progress, two if not pending else None)  # pending: their rows at the end
        except BaseException:
            sender.abort()
            raise
        finally:
            result.retries = sender.conn.client.stats.retries
        writer = sender.writer
    if decide.missing is None:
        stopped = session.cancel.is_set()
        decide.missing = (("would-send", None, None, None, "would be sent") if options.dry_run else
                          ("failed", "interrupted" if stopped else "not-sent", None, None,
                           "not sent (the run was interrupted); safe to re-run" if stopped
                           else "not sent; safe to re-run"))

    # Pass 2 (when some row was open): the rows the send did not already settle, now with every answer
    # recorded, while the writer indexes the last ones.
    try:
        if settled is None:
            if writer is not None:
                writer.close()
                writer.wait_recorded()
                if writer.error is not None:
                    raise writer.error
            # Re-sent (pending) batches' answers too come from the batches: the index may still be running.
            resent = ledger.answers([key for key, _ in pending]) if decide.run_keys and pending else {}
            two = two or _PassTwo(report, ledger, identity, decide, new_rows, [], options.batch_size)
            settled = two.finish(resent)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):  # the error under way is the one to report
                writer.join()
        raise
    if writer is not None:
        writer.join()  # the last answers indexed (or what stopped the writer raised)
    result.rows = settled
    result.counts = {s: 0 for s in STATUSES} | dict(result.rows.counts)
    result.elapsed = time.monotonic() - started
    return result


def _looked_up(chunks: Iterator[tuple[list[int], list[str], list[bool]]], ledger: Ledger, identity: str
               ) -> Generator[tuple[tuple[list[int], list[str], list[bool]], dict[str, Held]], None, None]:
    """Each chunk with what the ledger holds of its valid orders (brief). The first is looked up at once
    (the first batch waits for it); each next one on the ledger's lookup thread while the caller works
    on this one (a re-run of 100,000 orders: ~0.05 s sooner)."""

    def valid_ids(chunk: tuple[list[int], list[str], list[bool]]) -> list[str]:
        _, ids, valid = chunk
        return [oid for oid, ok in zip(ids, valid, strict=True) if ok]

    chunk = next(chunks, None)
    if chunk is None:
        return
    held = ledger.held(identity, valid_ids(chunk), brief=True)
    lookups = ledger.lookups(identity)
    try:
        while True:
            after = next(chunks, None)
            held_after = lookups.ahead(valid_ids(after)) if after is not None else None
            yield chunk, held
            if after is None or held_after is None:
                return
            chunk, held = after, held_after()
    finally:
        lookups.close()


class _PassTwo:
    """Pass 2: every row again, with this run's answers, PASS_TWO_ROWS at a time. A row sent in a new
    batch reads its answer from the batch (rows fill batches in sheet order); any other row from the
    per-order table. While the batches are being sent, ``early`` steps settle each chunk whose batches
    are all answered, so little is left for after the send."""

    def __init__(self, report: Any, ledger: Any, identity: str, decide: _Decider, new_rows: bytearray,
                 planned_keys: list[str], batch_size: int) -> None:
        self.ledger, self.identity, self.decide = ledger, identity, decide
        self.new_rows, self.planned_keys, self.batch_size = new_rows, planned_keys, batch_size
        self.out = ResultRows()
        self._chunks = report.chunks(PASS_TWO_ROWS)
        self._next = next(self._chunks, None)
        self._start = self._ordinal = 0  # the row index, and how many rows before it went into new batches

    def _span(self) -> tuple[bytearray, int, list[str]]:
        """The next chunk's rows in new batches (1s), how many, and those batches' keys."""
        assert self._next is not None
        fresh = self.new_rows[self._start:self._start + len(self._next[0])]
        n_new = fresh.count(1) if self.planned_keys else 0
        bs = self.batch_size
        keys = self.planned_keys[self._ordinal // bs:(self._ordinal + n_new - 1) // bs + 1] if n_new else []
        return fresh, n_new, keys

    def early(self, recorded: set[str]) -> None:
        """During the send: settle the next chunk if every batch it needs is answered and recorded."""
        if self._next is not None and all(key in recorded for key in self._span()[2]):
            self._step({}, early=True)

    def _step(self, resent: dict[str, Held], *, early: bool = False) -> bool:
        assert self._next is not None
        rows, ids, valid = self._next
        fresh, n_new, keys = self._span()
        in_new = bool(self.planned_keys)
        answered = self.ledger.answers(keys) if n_new else {}
        held = self.ledger.held(self.identity, [oid for oid, ok, f in zip(ids, valid, fresh, strict=True)
                                                if ok and not (f and in_new)])
        final = self.decide.final
        try:
            out = [[row, oid, *final(row, oid, ok, answered.get(oid) if f and in_new
                                     else resent.get(oid) or held.get(oid))]
                   for row, oid, ok, f in zip(rows, ids, valid, fresh, strict=True)]
        except _Open:
            if early:
                return False  # a row only the end of the send settles: the chunk waits for it
            raise
        self.out.add(out)
        self._ordinal += n_new
        self._start += len(rows)
        self._next = next(self._chunks, None)
        return True

    def finish(self, resent: dict[str, Held]) -> ResultRows:
        self.decide.after = True
        while self._next is not None:
            self._step(resent)
        return self.out


class _Connecting:
    """The session's SRMS connection being opened and pinged on a thread of its own (a daemon: a run
    that fails meanwhile does not wait for it)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._connect, name="srms-connect", daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        try:
            self.session.srms.client.ping()
        except BaseException as exc:  # raised by result()
            self._error = exc

    def result(self) -> Connection:
        """The connection once pinged; raises what opening or pinging it raised (SrmsUnavailable: down)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.session.srms


class _Open(Exception):
    """A row pass 2 cannot settle yet (the send is still running)."""


class _Decider:
    """What became of one row, from its validity, what the ledger holds of it and what this run learnt.
    Pass 1 asks before sending (None: still open); pass 2 asks ``final`` after."""

    def __init__(self, first_error: dict[int, Any], in_pending: set[str], dry_run: bool,
                 untold_code: Callable[[int], str | None] = lambda row: None) -> None:
        from fhs_bulk.validate import check

        self.first_error = first_error
        self.untold_code = untold_code  # the code of an invalid row validation counted but did not list
        self.codes, self.listed = check.CODES, check.MAX_FINDINGS
        self.in_pending = in_pending
        self.dry_run = dry_run
        self.run_keys: set[str] = set()  # batches sent (or re-sent) by this run
        self.extra: dict[str, Outcome] = {}  # what this run learnt that the ledger does not hold
        self.missing: Outcome | None = None  # for open rows nobody answered
        self.after = False  # pass 2: an order of a pending batch is settled too

    def unreachable(self, exc: SrmsUnavailable) -> None:
        """SRMS could not be reached before anything was sent: every open row is reported failed."""
        log.error("%s; nothing is sent, every valid order is reported failed", exc.message)
        self.missing = ("failed", "srms-unavailable", None, None, f"not sent: {exc.message}")

    def __call__(self, row: int, oid: str, ok: bool, held: Held | None) -> Outcome | None:
        if not ok:
            f = self.first_error.get(row)
            if f is not None:
                return ("invalid", f.code, None, None, f.message)
            code = self.untold_code(row)
            hint = f"{self.codes[code][1]} " if code in self.codes else ""
            return ("invalid", code or "invalid", None, None,
                    f"{hint}(past the {self.listed:,} findings validate lists in detail: fix those and run again)")
        if held is None:
            return None
        if held[4] in self.run_keys:
            status, code, ref, tid, _ = held
            return (status, code, ref, tid, REJECT_MESSAGES.get(code or "", "") if status == "rejected" else "")
        if held[0] in HOLDS_ID and (self.after or oid not in self.in_pending):
            return ("already-registered", None, held[2], held[3], EARLIER)
        return None

    def settle(self, rows: list[int], ids: list[str], valid: list[bool], held: dict[str, Held]
               ) -> list[list[Any]] | None:
        """Pass 1 over a chunk while every row so far is settled: the chunk's result rows, or None at
        its first open row."""
        out: list[list[Any]] = []
        append, get, pending, run_keys = out.append, held.get, self.in_pending, self.run_keys
        for row, oid, ok in zip(rows, ids, valid, strict=True):
            h = get(oid) if ok else None
            # The common case of a re-run, inline: registered by an earlier run, not pending.
            if h is not None and h[0] in HOLDS_ID and h[4] not in run_keys and oid not in pending:
                append([row, oid, "already-registered", None, h[2], h[3], EARLIER])
                continue
            decided = self(row, oid, ok, h)
            if decided is None:
                return None
            append([row, oid, *decided])
        return out

    def final(self, row: int, oid: str, ok: bool, held: Held | None) -> Outcome:
        decided = self(row, oid, ok, held)
        if decided is not None:
            return decided
        outcome = self.extra.get(oid) or _earlier_rejection(self.dry_run, held) or self.missing
        if outcome is None:
            raise _Open(oid)
        return outcome


def _plan(session: Session, bodies: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Record these new batches (key and body) in the ledger, fsynced, before any is sent; ``bodies``
    is emptied (the senders read each body back from the ledger). Returns (key, orders) of each."""
    from fhs_bulk.srms.client import new_key

    planned = [(new_key(), body, n) for body, n in bodies]
    bodies.clear()
    for i in range(0, len(planned), PLAN_BATCHES):
        session.ledger.plan(session.identity, [(key, body) for key, body, _ in planned[i:i + PLAN_BATCHES]])
    return [(key, n) for key, _, n in planned]


def _earlier_rejection(dry_run: bool, held: Any) -> Outcome | None:
    """A dry run does not send again what SRMS refused before: judged, so the exit code says so."""
    if dry_run and held is not None and held[0] == "rejected":
        return ("rejected", held[1], None, None, "rejected by SRMS in an earlier run (dry run: not sent again)")
    return None


def _dry_run(conn: Connection, batches: list[list[str]], extra: dict[str, Outcome]) -> None:
    to_send = [oid for ids in batches for oid in ids]
    for start in range(0, len(to_send), MAX_BATCH):
        chunk = to_send[start:start + MAX_BATCH]
        for reg in conn.client.lookup(chunk).registrations:
            extra[reg.fk_order_id] = ("already-registered", None, reg.reference_id, reg.ticket_id,
                                      "already registered in SRMS (dry run)")


GRACE_S = 3.0  # how long requests in flight may finish after Ctrl-C / SIGTERM
YOUNG_GC_EVERY = 20  # batches between collections of the young generations (see gcpause)

_Work = tuple[str, int]  # a batch to send: its key (its body is read from the ledger) and orders


class _Sender:
    """Sends batches, at most ``concurrency`` in flight, from the moment the first ones are planned:
    SRMS is at work on them while the rest of the sheet is read and planned (it would otherwise wait
    that long, ~0.1 s for 100,000 rows). ``add`` batches already recorded in the ledger, ``close`` when
    there are no more, then ``wait``.

    Each thread takes its next batch as soon as its last is answered (no hand-off through the main
    thread); answers go to the ledger only (``writer``); orders of a batch that failed go to
    ``failures``. A cancel (Ctrl-C, SIGTERM) starts no new batch and gives those in flight GRACE_S
    seconds; a full disk under the ledger stops sending at once. Either way every batch not confirmed
    stays pending in the ledger for the next run. A body is read from the ledger as it is sent: what is
    sent is what was recorded."""

    def __init__(self, session: Session, conn: Connection, concurrency: int, failures: dict[str, Outcome],
                 services: dict[str, str]) -> None:
        self.conn, self.concurrency, self.failures, self.services = conn, concurrency, failures, services
        self.body_of = session.ledger.body
        self.cancel = conn.client.cancel
        # How many batches there are is known at close: until then the writer indexes every INDEX_EVERY.
        self.writer = session.ledger.writer(session.identity, index_every=INDEX_EVERY, expected=1 << 62)
        self.batches = self.total = 0
        self._todo: deque[_Work] = deque()
        self._more = threading.Condition()
        self._closed = False
        self._stop = threading.Event()  # no new batch: a fatal error (a cancel stops them too)
        self._answers: queue.SimpleQueue[tuple[_Work, tuple[bool, tuple[str, str] | None] | BaseException]
                                         | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def add(self, work: list[_Work]) -> None:
        with self._more:
            self._todo.extend(work)
            self.batches += len(work)
            self.total += sum(n for _, n in work)
            while len(self._threads) < min(self.concurrency, self.batches):
                thread = threading.Thread(target=self._worker, name=f"batch-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._more.notify_all()

    def close(self) -> None:
        """No more batches: the threads end once the last is taken."""
        with self._more:
            self._closed = True
            self.writer.expected = self.batches
            self._more.notify_all()

    def abort(self) -> None:
        """What planned the batches failed: no new batch; the answers in hand are recorded."""
        self._stop.set()
        self.close()
        with contextlib.suppress(Exception):  # the error under way is the one to report
            self.writer.join()

    def _next(self) -> _Work | None:
        with self._more:
            while not self._todo:
                if self._closed or self._stop.is_set() or self.cancel.is_set():
                    return None
                self._more.wait(0.2)
            return self._todo.popleft()

    def _run(self, key: str) -> tuple[bool, tuple[str, str] | None]:
        try:
            res = self.conn.client.register([], key, ids_json=self.body_of(key))
        except Interrupted as exc:
            return False, ("interrupted", exc.message)
        except (SrmsUnavailable, SrmsError) as exc:  # SrmsError: a refusal, not transient
            return False, (exc.srms_code if isinstance(exc, SrmsError) else "srms-unavailable", exc.message)
        rows: list[Answer] = [(r.fk_order_id, r.status, r.code, r.reference_id, r.ticket_id) for r in res.results]
        for r in res.results:
            if r.service:
                self.services[r.fk_order_id] = r.service
        self.writer.put(key, res.job_id, rows)  # a full disk there: the main loop stops (writer.error)
        return True, None

    def _worker(self) -> None:
        """Take the next batch as soon as this one is answered; None says this thread is done. A writer
        that failed (a full disk) stops it too, even while batches are still being planned."""
        try:
            while not self.cancel.is_set() and not self._stop.is_set() and self.writer.error is None:
                item = self._next()
                if item is None:
                    return
                try:
                    self._answers.put((item, self._run(item[0])))
                except BaseException as exc:  # a bug or a malformed answer: the main thread raises it
                    self._answers.put((item, exc))
                    return
        finally:
            self._answers.put(None)

    def wait(self, progress: Progress | None, two: _PassTwo | None = None) -> int:
        """After ``close``: take every answer until each thread is done (or the grace after a cancel
        runs out); between answers, ``two`` settles the result rows whose batches are recorded. Returns
        the orders sent. The writer is left running: the caller closes and joins it."""
        total, failures, writer, cancel = self.total, self.failures, self.writer, self.cancel
        done = answered = ended = 0
        if progress:
            progress(0, total)
        fatal: BaseException | None = None
        grace_until: float | None = None
        try:
            while ended < len(self._threads):  # until every thread is done and every answer taken
                try:
                    got, waited = self._answers.get(timeout=0.2), False
                except queue.Empty:
                    got, waited = None, True
                if got is None:
                    ended += not waited
                else:
                    (key, n), outcome = got
                    if isinstance(outcome, BaseException):
                        fatal = fatal or outcome
                        self._stop.set()
                        continue
                    ok, error = outcome
                    if not ok:
                        assert error is not None
                        code, message = error
                        if code != "interrupted":
                            log.warning("batch %s (%d orders) failed: %s; it stays pending and a re-run resends it",
                                        key[:8], n, message)
                        failed: Outcome = ("failed", code, None, None,
                                           "not confirmed: the run was interrupted; safe to re-run"
                                           if code == "interrupted" else f"not confirmed by SRMS ({message}); "
                                                                         "safe to re-run")
                        for oid in json.loads(self.body_of(key)):
                            failures.setdefault(oid, failed)
                    done += n
                    if progress:
                        progress(done, total)
                    answered += 1
                    if answered % YOUNG_GC_EVERY == 0:
                        collect_young()
                if writer.error is not None and fatal is None:
                    fatal = writer.error
                    cancel.set()  # no new batch, and the ones in flight stop retrying
                if cancel.is_set() and grace_until is None:
                    grace_until = time.monotonic() + GRACE_S
                    in_flight = sum(thread.is_alive() for thread in self._threads)
                    if fatal is None and in_flight:
                        log.warning("interrupted: no new batches; %d in flight get %gs to finish", in_flight,
                                    GRACE_S)
                if grace_until is not None and time.monotonic() >= grace_until:
                    break  # threads still in a request finish on their own (their batches stay pending)
                if two is not None and not failures and fatal is None and not cancel.is_set():
                    two.early(writer.recorded)
        finally:
            self._stop.set()  # whatever ends the loop, no thread starts another batch
        if fatal is not None:
            raise fatal
        return total


def _n(count: int, word: str, many: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def write_results(result: UploadResult, out: str | Path, *, worksheet: str = "results") -> str:
    """To a file (.csv/.xlsx), or to a Google Sheet (a URL, key or gsheet:TITLE) as worksheet ``worksheet``."""
    from fhs_bulk.sheets.write import write_csv_text, write_rows

    # A CSV is where a formula could hide: its rows come defused; workbooks and Google Sheets store text as text.
    if not SheetRef.parse(str(out)).is_google and str(out).lower().endswith(".csv"):
        result.out = str(write_csv_text(out, RESULT_COLUMNS, result.rows.csv_texts()))
    else:
        result.out = write_rows(out, RESULT_COLUMNS, result.rows.lists(), worksheet=worksheet)
    return result.out


def upload(session: Session, sheet: str | Path | SheetRef, *, out: str | Path | None = None,
           out_worksheet: str | None = None, options: UploadOptions | None = None,
           progress: Progress | None = None) -> UploadResult:
    """Validate ``sheet``, register its valid orders with the session's SRMS exactly once, and write the
    results (to ``out``, by default ``<sheet>.results.csv``; or to worksheet ``out_worksheet`` of the input
    Google Sheet). Takes the session's run lock (not for a dry run). Every output is checked before
    anything is sent."""
    from fhs_bulk.sheets.write import check_writable

    options = options or UploadOptions()
    options.check()
    ref = SheetRef.parse(sheet)
    if out_worksheet and not ref.is_google:
        raise UsageError("--out-worksheet writes into the input Google Sheet; the input here is a file (use --out).",
                         code="usage")
    out_ref = ref if out_worksheet else SheetRef.parse(out or default_out(ref.text))
    if not out_ref.is_google and not options.dry_run:
        check_writable(out_ref.path, what="--out")
    lock = session.lock() if not options.dry_run else contextlib.nullcontext()
    with lock:
        result = upload_sheet(ref.text, session, options, progress=progress)
        result.ledger_warnings = list(session.ledger_warnings)
        if session.cancel.is_set():
            result.interrupted = session.cancel_signal or 2
        if not options.dry_run:
            write_results(result, out_ref.text, worksheet=out_worksheet or "results")
    return result


def write_singles(result: UploadResult, out: str | Path) -> str:
    """The orders SRMS refused as service-not-bulk-eligible, as a ready `ticket create --from` sheet:
    order ID and service filled, the other columns there to fill in."""
    from fhs_bulk.sheets.write import write_table
    from fhs_bulk.tickets.single import SHEET_COLUMNS

    columns = [SHEET_COLUMNS[f][0] for f in ("order", "name", "phone", "address", "city", "pincode", "service",
                                             "preferred_date", "remarks")]
    rows = [[r.fk_order_id, "", "", "", "", "", result.services.get(r.fk_order_id, ""), "", ""]
            for r in result.rows if r.code == "service-not-bulk-eligible"]
    return str(write_table(out, columns, rows, sheet_title="single tickets"))


def default_out(sheet: str) -> Path:
    from fhs_bulk.sheets.ref import SheetRef

    if SheetRef.parse(sheet).google is not None:
        return Path("FK_ODS_ORDER_CREATE.results.csv")
    p = Path(sheet)
    return p.with_name(p.stem + ".results.csv")
