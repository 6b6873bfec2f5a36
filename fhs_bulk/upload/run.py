"""The nightly bulk upload: validate, consult the ledger, register through bulk jobs, write results.

Exactly once: every batch's key and body are in the ledger before it is sent, so whatever dies
(this process, the network, SRMS) a re-run sends the same key and body and SRMS answers the original
job. SRMS itself registers an order at most once, so even a lost ledger cannot double-register.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from fhs_bulk.sheets.ref import SheetRef
from fhs_bulk.srms.client import new_key
from fhs_bulk.srms.schemas import MAX_BATCH

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
    rows: list[RowResult]
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

        return frame(RESULT_COLUMNS, (r.as_list() for r in self.rows))

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet, "srms": self.srms, "dry_run": self.dry_run, "out": self.out,
            "rows": len(self.rows), "counts": self.counts, "sent": self.sent, "batches": self.batches,
            "resent_batches": self.resent_batches, "retries": self.retries,
            "elapsed_s": round(self.elapsed, 3), "orders_per_s": round(self.orders_per_s, 1),
            "interrupted": bool(self.interrupted), "exit_code": int(self.exit_code),
            **({"orders": {status: [r.fk_order_id for r in self.rows if r.status == status]
                           for status in ("would-send", "already-registered", "rejected", "invalid")}}
               if self.dry_run else {}),
        }


Progress = Callable[[int, int], None]
# What became of one order: (status, code, reference_id, ticket_id, message).
Outcome = tuple[str, str | None, str | None, str | None, str]


def upload_sheet(sheet: str, conn: Connection, ledger: Any, options: UploadOptions | None = None, *,
                 progress: Progress | None = None) -> UploadResult:
    """Run one upload. The caller holds the run lock and owns the ledger and the connection."""
    from fhs_bulk.validate.check import validate_sheet

    options = options or UploadOptions()
    options.check()
    started = time.monotonic()
    report = validate_sheet(sheet)
    if report.sheet_error is not None:
        raise SheetError(report.sheet_error.message, code=report.sheet_error.code, path=sheet)
    log.info("validated %s: %d rows, %d valid, %d invalid", sheet, report.rows, report.valid, report.invalid)
    if options.strict and report.errors:
        first = report.errors[0]
        raise DataError(f"{report.invalid} invalid rows and --strict: nothing was sent. First: row {first.row}: "
                       f"{first.code}: {first.message}", code="strict")
    unreachable = None
    try:
        conn.client.ping()
    except SrmsUnavailable as exc:
        unreachable = exc.message
        log.error("%s; nothing is sent, every valid order is reported failed", unreachable)
    valid = report.valid_orders()
    order_ids = [oid for _, oid in valid]
    ledger.index(conn.identity)  # answers a run that died before indexing them
    known = ledger.known(conn.identity, order_ids)
    outcome: dict[str, Outcome] = {}
    for oid, k in known.items():
        if k.status in ("registered", "already-registered"):
            outcome[oid] = ("already-registered", None, k.reference_id, k.ticket_id, "registered by an earlier run")
    pending = ledger.pending_batches(conn.identity)
    in_pending = {oid for _, ids in pending for oid in ids}
    to_send = [oid for oid in order_ids if oid not in outcome and oid not in in_pending]
    result = UploadResult(sheet=sheet, srms=conn.description, rows=[], elapsed=0.0, dry_run=options.dry_run,
                          warnings=len(report.warnings))
    if unreachable:
        for oid in to_send + sorted(in_pending):
            outcome[oid] = ("failed", "srms-unavailable", None, None, f"not sent: {unreachable}")
    elif options.dry_run:
        _dry_run(conn, to_send, pending, outcome)
        # What an earlier run saw SRMS refuse, it would refuse again: judged, so the exit code says so.
        for oid, k in known.items():
            if k.status == "rejected" and oid not in outcome:
                outcome[oid] = ("rejected", k.code, None, None, "rejected by SRMS in an earlier run (dry run: "
                                                               "not sent again)")
    else:
        batches = [(new_key(), to_send[i:i + options.batch_size])
                   for i in range(0, len(to_send), options.batch_size)]
        if batches:
            ledger.plan(conn.identity, batches)
        work = pending + batches
        result.batches = len(work)
        result.resent_batches = len(pending)
        if pending:
            log.info("re-sending %s whose answer an earlier run never saw (same keys)",
                     _n(len(pending), "batch", "batches"))
        log.info("sending %s in %s to %s", _n(len(to_send) + len(in_pending), "order"), _n(len(work), "batch",
                                                                                          "batches"), conn.description)
        try:
            result.sent = _send(conn, ledger, work, options.concurrency, outcome, progress, result.services)
        finally:
            ledger.index(conn.identity)
        result.retries = conn.client.stats.retries
    stopped = conn.client.cancel.is_set()
    result.rows = _rows(report, outcome, options.dry_run, interrupted=stopped)
    result.counts = {s: 0 for s in STATUSES} | _count(result.rows)
    result.elapsed = time.monotonic() - started
    return result


def _dry_run(conn: Connection, to_send: list[str], pending: list, outcome: dict[str, Outcome]) -> None:
    for _, ids in pending:
        to_send = to_send + [i for i in ids if i not in outcome]
    for start in range(0, len(to_send), MAX_BATCH):
        chunk = to_send[start:start + MAX_BATCH]
        for reg in conn.client.lookup(chunk).registrations:
            outcome[reg.fk_order_id] = ("already-registered", None, reg.reference_id, reg.ticket_id,
                                        "already registered in SRMS (dry run)")


GRACE_S = 3.0  # how long requests in flight may finish after Ctrl-C / SIGTERM


def _send(conn: Connection, ledger: Any, work: list[tuple[str, list[str]]], concurrency: int,
          outcome: dict[str, Outcome], progress: Progress | None, services: dict[str, str]) -> int:
    """Send the batches, at most ``concurrency`` in flight. A cancel (Ctrl-C, SIGTERM) starts no new
    batch and gives those in flight GRACE_S seconds; a full disk under the ledger stops sending at
    once. Either way every batch not confirmed stays pending in the ledger for the next run."""
    total = sum(len(ids) for _, ids in work)
    done = 0
    cancel = conn.client.cancel
    if progress:
        progress(0, total)

    def run(key: str, ids: list[str]) -> tuple[list[Any] | None, tuple[str, str] | None]:
        try:
            res = conn.client.register(ids, key)
        except Interrupted as exc:
            return None, ("interrupted", exc.message)
        except (SrmsUnavailable, SrmsError) as exc:  # SrmsError: a refusal, not transient
            return None, (exc.srms_code if isinstance(exc, SrmsError) else "srms-unavailable", exc.message)
        rows = [(r.fk_order_id, r.status, r.code, r.reference_id, r.ticket_id) for r in res.results]
        for r in res.results:
            if r.service:
                services[r.fk_order_id] = r.service
        ledger.record(conn.identity, key, res.job_id, rows)  # may raise DiskFull: the main loop stops
        return rows, None

    queue = list(reversed(work))
    in_flight: dict[Future[tuple[list[Any] | None, tuple[str, str] | None]], tuple[str, list[str]]] = {}
    fatal: BaseException | None = None
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batch")
    grace_until: float | None = None
    try:
        while queue or in_flight:
            while queue and len(in_flight) < concurrency and not cancel.is_set() and fatal is None:
                key, ids = queue.pop()
                in_flight[pool.submit(run, key, ids)] = (key, ids)
            if not in_flight:
                break
            if cancel.is_set() and grace_until is None:
                grace_until = time.monotonic() + GRACE_S
                log.warning("interrupted: no new batches; %d in flight get %gs to finish", len(in_flight), GRACE_S)
            if grace_until is not None and time.monotonic() >= grace_until:
                break
            finished, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in finished:
                key, ids = in_flight.pop(fut)
                try:
                    res, error = fut.result()
                except DiskFull as exc:
                    fatal = fatal or exc
                    cancel.set()  # no new batch, and the ones in flight stop retrying
                    continue
                if res is None:
                    assert error is not None
                    code, message = error
                    if code != "interrupted":
                        log.warning("batch %s (%d orders) failed: %s; it stays pending and a re-run resends it",
                                    key[:8], len(ids), message)
                    failed = ("failed", code, None, None,
                              "not confirmed: the run was interrupted; safe to re-run" if code == "interrupted"
                              else f"not confirmed by SRMS ({message}); safe to re-run")
                    for oid in ids:
                        outcome.setdefault(oid, failed)
                else:
                    for oid, status, code, ref, tid in res:
                        message = REJECT_MESSAGES.get(code or "", "") if status == "rejected" else ""
                        outcome[oid] = (status, code, ref, tid, message)
                done += len(ids)
                if progress:
                    progress(done, total)
    finally:
        # Threads still in a request are left to finish on their own (their batches stay pending).
        pool.shutdown(wait=not cancel.is_set(), cancel_futures=True)
    if fatal is not None:
        raise fatal
    return total


def _rows(report: Any, outcome: dict[str, Outcome], dry_run: bool, *, interrupted: bool = False) -> list[RowResult]:
    first_error = report.first_error_by_row()
    rows: list[RowResult] = []
    if report.row_numbers is None:
        return rows
    ids = report.order_ids()
    valid = report.valid_mask.tolist()
    for row, oid, ok in zip(report.row_numbers.tolist(), ids, valid, strict=True):
        if not ok:
            f = first_error.get(row)
            rows.append(RowResult(row, oid, "invalid", f.code if f else "invalid", None, None,
                                  f.message if f else "invalid (past the findings validate lists in detail: fix the "
                                                      "first ones and run again)"))
            continue
        o = outcome.get(oid)
        if o is None:
            status = "would-send" if dry_run else "failed"
            code = None if dry_run else ("interrupted" if interrupted else "not-sent")
            rows.append(RowResult(row, oid, status, code, None, None,
                                  "would be sent" if dry_run else "not sent (the run was interrupted); safe to re-run"
                                  if interrupted else "not sent; safe to re-run"))
        else:
            rows.append(RowResult(row, oid, *o))
    return rows


def _n(count: int, word: str, many: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def _count(rows: list[RowResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


def write_results(result: UploadResult, out: str | Path, *, worksheet: str = "results") -> str:
    """To a file (.csv/.xlsx), or to a Google Sheet (a URL, key or gsheet:TITLE) as worksheet ``worksheet``."""
    from fhs_bulk.sheets.write import write_rows

    result.out = write_rows(out, RESULT_COLUMNS, (r.as_list() for r in result.rows), worksheet=worksheet)
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
        result = upload_sheet(ref.text, session.srms, session.ledger, options, progress=progress)
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
