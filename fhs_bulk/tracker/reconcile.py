"""Reconciling the tracker against SRMS: a finding per problem and, for every row, what L1 support
does next and how to tag it in the CRM (the L1 table in ``domain``, read as data)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhs_bulk import domain
from fhs_bulk.domain import IST
from fhs_bulk.errors import Exit
from fhs_bulk.gcpause import collect_young, gc_paused
from fhs_bulk.tracker.sheet import HEADER_SEARCH_ROWS, ORDER, REFERENCE_ID, SRM_ID, load_tracker

if TYPE_CHECKING:
    from fhs_bulk.session import Session

# Finding codes: stable, documented in the README.
FINDINGS: dict[str, str] = {
    "missing-srm-id": "no SRM ID and no Reference ID: the order was never registered (or not written back)",
    "unknown-ticket": "SRMS does not know the SRM ID / Reference ID",
    "duplicate-srm-id": "the SRM ID is already on an earlier row",
    "order-mismatch": "the ticket belongs to another order",
    "invalid-state": "a status/sub-status pair outside the journey table",
    "spd-breached": "the SPD is past and the ticket is neither COMPLETED nor CANCELED (mobile repair: the pickup "
                    "SPD, before pickup)",
    "delivery-breached": "mobile repair: the repaired product is not delivered by its due date (repair done + 1 "
                         "business day)",
    "stuck": "no status change for --stuck-days while open",
    "warranty": "COMPLETED: within 30 days of service (reopen allowed) or after (deny); informational",
}
INFORMATIONAL = frozenset({"warranty"})
NO_TICKET_ACTIONS = {
    "missing-srm-id": "register the order (fhs-bulk upload or ticket create) and fill in the SRM ID",
    "unknown-ticket": "check the SRM ID with SRMS support; correct the tracker",
    "duplicate-srm-id": "find the right ticket for this order; one SRM ID per order",
    "order-mismatch": "the SRM ID belongs to another order: correct the tracker",
}
DAY_BUCKETS = ((1, 2, "1-2 days"), (3, 7, "3-7 days"), (8, 14, "8-14 days"), (15, None, "15+ days"))
AGE_BUCKETS = ((0, 2, "0-2 days"), (3, 7, "3-7 days"), (8, 14, "8-14 days"), (15, None, "15+ days"))


def bucket(days: int, buckets: tuple) -> str:
    for low, high, label in buckets:
        if days >= low and (high is None or days <= high):
            return label
    return buckets[0][2]


@dataclass
class RowVerdict:
    row: int
    fk_order_id: str
    srm_id: str | None
    status: str | None = None
    sub_status: str | None = None
    spd: str | None = None
    findings: list[str] = field(default_factory=list)
    next_action: str = ""
    crm_tag: str | None = None
    action: str = "none"  # machine-readable (domain.ACTION_CODES): reschedule, cancel, reopen, escalate-l2, ...
    line: str | None = None  # the service line whose L1 table judged the row
    rule_source: str | None = None  # "process" (a row of the line's L1 table) or "fallback" (not from the process)
    delivery_due: str | None = None  # mobile repair: repair done + 1 business day
    days_late: int = 0
    age_days: int | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON row. Keys in sorted order, so it is encoded as ``--json`` prints it without sorting."""
        return {"action": self.action, "command": self.command, "crm_tag": self.crm_tag, "days_late": self.days_late,
                "delivery_due": self.delivery_due, "findings": self.findings, "fk_order_id": self.fk_order_id,
                "line": self.line, "next_action": self.next_action, "note": self.note, "row": self.row,
                "rule_source": self.rule_source, "spd": self.spd, "srm_id": self.srm_id, "status": self.status,
                "sub_status": self.sub_status}

    @property
    def command(self) -> str | None:
        """The fhs-bulk command that carries the action out, where one exists."""
        template = domain.ACTION_CODES.get(self.action) or ""
        return template.format(id=self.srm_id) if template and self.srm_id else None

    def add_note(self, text: str) -> None:
        self.note = f"{self.note}; {text}" if self.note else text

    @property
    def needs_attention(self) -> bool:
        return any(f not in INFORMATIONAL for f in self.findings)

    @property
    def urgency(self) -> tuple:
        """Sort key for the worklist: data problems first, then the most days late, then stuck."""
        data_problem = any(f in NO_TICKET_ACTIONS or f == "invalid-state" for f in self.findings)
        return (not data_problem, -self.days_late, "stuck" not in self.findings, self.row)


class Tally:
    """The summary's counts, added to a run of verdicts at a time (as they are judged)."""

    def __init__(self) -> None:
        self.rows = self.attention = 0
        self.by_status: Counter[str] = Counter()
        self.by_finding: Counter[str] = Counter()
        self.breached: Counter[str] = Counter()
        self.ages: Counter[str] = Counter()

    def add(self, rows: list[RowVerdict]) -> None:
        self.rows += len(rows)
        self.attention += sum(r.needs_attention for r in rows)
        self.by_status.update(r.status or "(no ticket)" for r in rows)
        self.by_finding.update(f for r in rows for f in r.findings)
        self.breached.update(bucket(r.days_late, DAY_BUCKETS) for r in rows if "spd-breached" in r.findings)
        self.ages.update(bucket(r.age_days, AGE_BUCKETS) for r in rows
                         if r.age_days is not None and r.status not in domain.CLOSED_STATUSES)

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "needing_attention": self.attention,
            "by_status": dict(sorted(self.by_status.items())),
            "by_finding": dict(sorted(self.by_finding.items())),
            "breached_by_days_late": {label: self.breached.get(label, 0) for *_, label in DAY_BUCKETS},
            "open_by_age": {label: self.ages.get(label, 0) for *_, label in AGE_BUCKETS},
        }


@dataclass
class ReconcileResult:
    as_of: date
    rows: list[RowVerdict]
    tracker: str = ""
    written: int = 0
    warnings: list[str] = field(default_factory=list)
    _summary: tuple[int, dict[str, Any]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def exit_code(self) -> int:
        return Exit.DATA if self.summary()["needing_attention"] else Exit.OK

    def summary(self) -> dict[str, Any]:
        """Counts over the rows, kept once computed (the CLI, the JSON and the report all ask; reconcile
        counts as it judges); counted again when rows are added or removed."""
        if self._summary is None or self._summary[0] != len(self.rows):
            tally = Tally()
            tally.add(self.rows)
            self._summary = (len(self.rows), tally.summary())
        return self._summary[1]

    def to_pandas(self) -> Any:
        """One row per tracker row: status, findings (joined by ', '), next action, CRM tag, days late."""
        from fhs_bulk.frames import frame

        cols = ["row", "fk_order_id", "srm_id", "status", "sub_status", "spd", "findings", "next_action", "action",
                "command", "crm_tag", "days_late", "note"]
        return frame(cols, ([r.row, r.fk_order_id, r.srm_id, r.status, r.sub_status, r.spd, ", ".join(r.findings),
                             r.next_action, r.action, r.command, r.crm_tag, r.days_late, r.note] for r in self.rows))

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "warnings": self.warnings, "summary": self.summary(),
                "rows": [r.as_dict() for r in self.rows]}

    def write_json(self, out: Any, rows_json: list[str] | None = None) -> None:
        """``json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False)`` and a newline, written to
        ``out`` a part at a time; ``rows_json``: the rows already encoded (see JsonRows), in order."""
        def dumps(value: Any) -> str:
            return json.dumps(value, sort_keys=True, ensure_ascii=False)

        # Sorted keys: as_of, rows, summary, warnings; so the rows can be written before the summary.
        out.write('{"as_of": ' + dumps(self.as_of.isoformat()) + ', "rows": [')
        parts = rows_json if rows_json is not None else JsonRows.encode(self.rows)
        for i, text in enumerate(parts):
            out.write(", " + text if i else text)
        out.write('], "summary": ' + dumps(self.summary()) + ', "warnings": ' + dumps(self.warnings) + "}\n")


class JsonRows:
    """Verdicts encoded as JSON as they are judged (``reconcile(on_judged=...)``): the encoding runs
    while the next tickets are fetched, not after."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    @staticmethod
    def encode(rows: list[RowVerdict]) -> list[str]:
        """The rows' JSON, exactly as ``json.dumps(row.as_dict(), ensure_ascii=False)`` each, joined by
        ", " (one part, or none for no rows)."""
        encode = _ROW_JSON
        return [", ".join([encode(r) for r in rows])] if rows else []

    def __call__(self, rows: list[RowVerdict]) -> None:
        self.parts += self.encode(rows)


class _RowJson:
    """A verdict's JSON as ``json.dumps(as_dict(), ensure_ascii=False)`` writes it (keys sorted), from
    the text between its four fields that are each row's own (command, order, row, SRM ID), kept by
    the values of the other twelve: a tracker's rows share a few dozen of those (the same states,
    actions and SPD days), so most rows cost four string escapes instead of a dict and its encoding."""

    LIMIT = 10_000  # kept texts (a tracker of unique notes starts over now and then)

    def __init__(self) -> None:
        self._between: dict[tuple[Any, ...], tuple[str, str, str, str, str]] = {}

    def __call__(self, v: RowVerdict) -> str:
        key = (v.action, v.crm_tag, v.days_late, v.delivery_due, tuple(v.findings), v.line, v.next_action, v.note,
               v.rule_source, v.spd, v.status, v.sub_status)
        between = self._between.get(key)
        if between is None:
            if len(self._between) >= self.LIMIT:
                self._between.clear()
            between = self._between[key] = (
                f'{{"action": {_dumps(v.action)}, "command": ',
                f', "crm_tag": {_dumps(v.crm_tag)}, "days_late": {_dumps(v.days_late)}, "delivery_due": '
                f'{_dumps(v.delivery_due)}, "findings": {_dumps(v.findings)}, "fk_order_id": ',
                f', "line": {_dumps(v.line)}, "next_action": {_dumps(v.next_action)}, "note": {_dumps(v.note)}, '
                '"row": ',
                f', "rule_source": {_dumps(v.rule_source)}, "spd": {_dumps(v.spd)}, "srm_id": ',
                f', "status": {_dumps(v.status)}, "sub_status": {_dumps(v.sub_status)}}}')
        a, b, c, d, e = between
        return f"{a}{_json_text(v.command)}{b}{_json_text(v.fk_order_id)}{c}{v.row}{d}{_json_text(v.srm_id)}{e}"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


_ROW_JSON = _RowJson()


def ist_date(stamp: str) -> date:
    """The day in India of an SRMS timestamp (UTC, 'YYYY-MM-DDTHH:MM:SSZ')."""
    if len(stamp) == 20 and stamp[19] == "Z":  # the common shape, without a full parse
        return _ist_day(stamp[:10], stamp[11:16] >= "18:30")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(IST).date()


@lru_cache(maxsize=4096)  # a tracker's timestamps fall on a few hundred days
def _ist_day(utc_day: str, evening: bool) -> date:
    """The day in India of a UTC day, after 18:30 UTC (``evening``) the next one."""
    day = date.fromisoformat(utc_day)
    return day + timedelta(days=1) if evening else day


@lru_cache(maxsize=4096)
def _day(text: str) -> date:
    return date.fromisoformat(text)


def condition_holds(condition: str, *, spd_breached: bool, within_warranty: bool | None,
                    delivery_breached: bool = False) -> bool:
    return {
        domain.DELIVERY_BREACHED: delivery_breached,
        domain.DELIVERY_NOT_BREACHED: not delivery_breached,
        domain.ANY: True,
        domain.SPD_BREACHED: spd_breached,
        domain.SPD_NOT_BREACHED: not spd_breached,
        domain.RESCHEDULE_BREACHED: spd_breached,  # a customer reschedule moves the SPD to the new date
        domain.RESCHEDULE_NOT_BREACHED: not spd_breached,
        domain.WITHIN_WARRANTY: bool(within_warranty),
        domain.AFTER_WARRANTY: within_warranty is False,
    }[condition]


def _matches(rule: domain.L1Rule, status: str, sub_status: str) -> bool:
    if rule.status != status:
        return False
    if rule.sub_status is None:
        return True
    return sub_status in rule.sub_status if isinstance(rule.sub_status, tuple) else sub_status == rule.sub_status


@lru_cache(maxsize=4096)  # a pure function of the domain tables; a tracker repeats a few dozen cases
def next_action(status: str, sub_status: str, *, spd_breached: bool, within_warranty: bool | None,
                line: str = domain.INSTALLATION, delivery_breached: bool = False) -> tuple[str, str | None, str, str]:
    """(next action, CRM tag, action code, rule source) of the first rule of the line's L1 table that
    matches the state and its condition; else of the fallback rules ("fallback": not from the process
    document; a repair line falls back on the installation table last)."""
    table = domain.L1_TABLES.get(line, domain.L1_RULES)
    fallback = domain.FALLBACK_RULES + (domain.L1_RULES if line != domain.INSTALLATION else ())
    for source, rules in (("process", table), ("fallback", fallback)):
        for rule in rules:
            if _matches(rule, status, sub_status) and condition_holds(
                    rule.condition, spd_breached=spd_breached, within_warranty=within_warranty,
                    delivery_breached=delivery_breached):
                return rule.next_action, rule.crm_tag or None, rule.action, source
    return "no L1 rule for this state: read the ticket history and remarks", None, "none", "fallback"


@lru_cache(maxsize=4096)
def _next_action(status: str, sub_status: str, spd_breached: bool, within_warranty: bool | None, line: str,
                 delivery_breached: bool) -> tuple[str, str | None, str, str]:
    """``next_action`` cached by position: a row's call is a hash of plain arguments, no keywords."""
    return next_action(status, sub_status, spd_breached=spd_breached, within_warranty=within_warranty, line=line,
                       delivery_breached=delivery_breached)


def add_business_days(day: date, n: int) -> date:
    """``n`` business days (Monday-Friday) after ``day``."""
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


FETCH_BATCH = 1000  # ticket IDs per SRMS query
_service_line = lru_cache(maxsize=256)(domain.service_line)  # a few dozen service names


def evaluate(rows: list[Any], tickets: dict[str, Any], as_of: date, stuck_days: int = 3) -> list[RowVerdict]:
    """Pure: tracker rows and the tickets SRMS returned (``srms.schemas.Ticket``, by the ID asked for) to
    verdicts."""
    judge = Judge(as_of, stuck_days)
    return [v for v in (judge(row, tickets) for row in rows) if v is not None]


def row_key(row: Any) -> str:
    """The ID a tracker row is checked by: its SRM ID, else its BK- reference ID."""
    values = row.values
    return (values.get(SRM_ID) or "").strip() or (values.get(REFERENCE_ID) or "").strip()


class Judge:
    """Judges tracker rows one at a time, in sheet order (it remembers the SRM IDs seen, for duplicates),
    so rows can be judged as their tickets arrive."""

    def __init__(self, as_of: date, stuck_days: int = 3) -> None:
        self.as_of = as_of
        self.stuck_days = stuck_days
        self.first_row_of: dict[str, int] = {}
        self._columns = (SRM_ID, REFERENCE_ID)

    def __call__(self, row: Any, tickets: dict[str, Any]) -> RowVerdict | None:
        """The row's verdict (None for a blank row)."""
        srm_column, ref_column = self._columns
        values = row.values
        srm = (values.get(srm_column) or "").strip()
        ref = (values.get(ref_column) or "").strip()
        order = row.order
        if not (order or srm or ref) and not any((value or "").strip() for value in values.values()):
            return None  # a blank row is not a data row
        v = RowVerdict(row.sheet_row, order, srm or None)
        key = srm or ref
        if not key:
            v.findings.append("missing-srm-id")
            v.next_action, v.action = NO_TICKET_ACTIONS["missing-srm-id"], "fix-tracker"
            return v
        if srm and srm in self.first_row_of:
            v.findings.append("duplicate-srm-id")
            v.add_note(f"SRM ID already on row {self.first_row_of[srm]}")
        elif srm:
            self.first_row_of[srm] = row.sheet_row
        t = tickets.get(key)
        if t is None:
            v.findings.append("unknown-ticket")
            v.next_action, v.action = NO_TICKET_ACTIONS["unknown-ticket"], "fix-tracker"
            return v
        v.srm_id = v.srm_id or t.ticket_id
        v.status, v.sub_status, v.spd = t.status, t.sub_status, t.spd
        if order and t.fk_order_id != order:
            v.findings.append("order-mismatch")
            v.add_note(f"ticket {t.ticket_id} is for order {t.fk_order_id}")
        if not domain.is_journey_state(t.status, t.sub_status):
            v.findings.append("invalid-state")
        spd = _day(t.spd)
        closed = t.status in domain.CLOSED_STATUSES
        line = v.line = _service_line(t.service)
        mobile = line == domain.MOBILE_REPAIR
        # A mobile repair's SPD is the pickup date: it can only be breached before the pickup.
        breached = spd < self.as_of and not closed and (not mobile or t.status in ("CREATED", "PICKUP"))
        if breached:
            v.days_late = (self.as_of - spd).days
            v.findings.append("spd-breached")
        delivery_late = False
        if mobile:
            done = [h for h in t.history if (h.status, h.sub_status) in domain.REPAIR_DONE]
            delivered = t.status == "COMPLETED" or (t.status, t.sub_status) == ("DROP", "COMPLETED")
            if done and not delivered and not closed:
                due = add_business_days(ist_date(done[-1].at), domain.DELIVERY_BUSINESS_DAYS)
                v.delivery_due = due.isoformat()
                if self.as_of > due:
                    delivery_late = True
                    v.days_late = max(v.days_late, (self.as_of - due).days)
                    v.findings.append("delivery-breached")
        changed = ist_date(t.status_changed_at)
        v.age_days = (self.as_of - ist_date(t.created_at)).days
        if not closed and (self.as_of - changed).days >= self.stuck_days:
            v.findings.append("stuck")
        within = None
        if t.status == "COMPLETED" or (mobile and (t.status, t.sub_status) == ("DROP", "COMPLETED")):
            # The day of service (of delivery, for a repair): the first COMPLETED (or DROP/COMPLETED) event.
            served = [h for h in t.history
                      if h.status == "COMPLETED" or (h.status, h.sub_status) == ("DROP", "COMPLETED")]
            service_day = ist_date(served[0].at if served else t.status_changed_at)
            within = (self.as_of - service_day).days <= domain.WARRANTY_DAYS
            v.findings.append("warranty")
            v.add_note(f"service on {service_day.isoformat()}: {'within' if within else 'after'} 30 days")
        first = next((f for f in v.findings if f in NO_TICKET_ACTIONS), None) if v.findings else None
        if first:
            v.next_action, v.crm_tag, v.action = NO_TICKET_ACTIONS[first], None, "fix-tracker"
        else:
            v.next_action, v.crm_tag, v.action, v.rule_source = _next_action(
                t.status, t.sub_status, spd < self.as_of, within, line, delivery_late)
        return v


_TAKEN: Future[Any] = Future()  # in place of a batch's future once its answer is read
_TAKEN.cancel()


class TicketFetch:
    """The tickets of ``unique[i*batch:(i+1)*batch]`` by the ID asked for, batch i at its turn: asking
    starts as soon as a batch's IDs are known (``unique`` given whole, or ``extend``-ed as they are
    read, then ``finish``), ``concurrency`` requests in flight. The threads are daemons and ``close``
    stops them taking another batch, so a run that ends early (an error) never waits on them."""

    def __init__(self, client: Any, unique: list[str] | None = None, *, batch: int = 1000,
                 concurrency: int = 4) -> None:
        self.batch = batch
        self._chunks: list[list[str]] = []
        self._futures: list[Future[Any]] = []
        self._pending: list[str] = []  # IDs not yet a whole batch
        self._next = 0  # the next batch a thread takes
        self._complete = self._closed = False
        self._cond = threading.Condition()
        for n in range(concurrency):
            threading.Thread(target=self._work, args=(client,), name=f"tickets-{n}", daemon=True).start()
        if unique is not None:
            self.extend(unique)
            self.finish()

    @property
    def unique(self) -> list[str]:
        """Every ID asked for, in order (once ``finish`` was called)."""
        return [i for chunk in self._chunks for i in chunk]

    def extend(self, unique: list[str]) -> None:
        """More IDs, none asked for before: each whole batch is asked for at once."""
        with self._cond:
            self._pending.extend(unique)
            while len(self._pending) >= self.batch:
                self._add(self._pending[:self.batch])
                del self._pending[:self.batch]

    def finish(self) -> None:
        """No more IDs: the last, partial batch is asked for."""
        with self._cond:
            if self._pending:
                self._add(self._pending)
                self._pending = []
            self._complete = True
            self._cond.notify_all()

    def _add(self, chunk: list[str]) -> None:
        self._chunks.append(chunk)
        self._futures.append(Future())
        self._cond.notify_all()

    def _work(self, client: Any) -> None:
        while True:
            with self._cond:
                while not (self._closed or self._complete or self._next < len(self._chunks)):
                    self._cond.wait()
                if self._closed or self._next >= len(self._chunks):
                    return
                i, self._next = self._next, self._next + 1
                future = self._futures[i]
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(client.ticket_states(self._chunks[i]))
            except BaseException as exc:  # raised where the batch is read
                future.set_exception(exc)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            i = 0
            while True:
                with self._cond:
                    while not (self._closed or self._complete or i < len(self._chunks)):
                        self._cond.wait()
                    if i >= len(self._chunks):
                        return
                    asked, future = self._chunks[i], self._futures[i]
                answer = future.result()
                with self._cond:  # the answer is let go once read (the rows keep the tickets they ask for)
                    self._futures[i] = _TAKEN
                by_tid = {t.ticket_id: t for t in answer.tickets}
                by_ref = {t.reference_id: t for t in answer.tickets if t.reference_id}
                found: dict[str, Any] = {}
                for key in asked:
                    t = by_tid.get(key) or by_ref.get(key)
                    if t is not None:
                        found[key] = t
                yield found
                i += 1
        finally:
            self.close()

    def close(self) -> None:
        """Ask for no more batches (requests in flight finish on their own)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            futures = list(self._futures)
        for future in futures:
            future.cancel()


def early_key_runs(tracker_path: Any) -> Iterator[list[str]] | None:
    """A workbook tracker's ticket IDs, a piece of its worksheet XML at a time, to ask SRMS for the
    first tickets while the rest of the XML, and the whole workbook by python-calamine, is still
    being read. None when not a workbook, or not one read that simply."""
    from fhs_bulk.sheets.xlsx_cells import key_runs

    if not str(tracker_path).lower().endswith((".xlsx", ".xlsm")) or not Path(str(tracker_path)).is_file():
        return None
    return key_runs(tracker_path, (ORDER, SRM_ID), (SRM_ID, REFERENCE_ID), search_rows=HEADER_SEARCH_ROWS)


def _ask_ahead(fetch: TicketFetch, runs: Iterator[list[str]]) -> bool:
    """Feed ``fetch`` the read-ahead's IDs (new ones only, in first-appearance order) as they are read;
    False when the read-ahead failed part way (what was asked is then dropped by the caller)."""
    seen: set[str] = set()
    try:
        for run in runs:
            fresh = [key for key in dict.fromkeys(run) if key not in seen]
            seen.update(fresh)
            fetch.extend(fresh)
    except Exception:  # a head start only: the rows' own read says what is wrong
        return False
    fetch.finish()
    return True


def spd_breached_text(v: RowVerdict) -> str:
    if v.status is None:
        return ""
    return f"yes ({v.days_late} days)" if "spd-breached" in v.findings else "no"


class WriteBack:
    """Puts verdicts into the tracker's own columns (in memory; ``tracker.save`` writes them), a run of
    verdicts at a time as they are judged; ``changed`` counts the rows that changed (an unchanged
    tracker is not rewritten)."""

    def __init__(self, tracker: Any, as_of: date) -> None:
        self.tracker = tracker
        self.as_of = as_of.isoformat()  # the same --as-of twice changes nothing
        self.by_row = {r.sheet_row: r for r in tracker.rows}
        self.changed = 0

    def __call__(self, verdicts: list[RowVerdict]) -> None:
        tracker, by_row = self.tracker, self.by_row
        for v in verdicts:
            if v.status is None and not v.findings:
                continue
            self.changed += tracker.set_row(by_row[v.row], (
                ("Status", v.status or ""), ("Sub-status", v.sub_status or ""), ("SPD", v.spd or ""),
                ("SPD breached", spd_breached_text(v)), ("Next action", v.next_action), ("CRM tag", v.crm_tag or ""),
                ("Last checked", self.as_of)))


# Batches between collections of the young generations. Each walks every verdict kept since the last
# (~0.1 s per 100,000 rows, however often) to free a few KB of cycles per request: a tracker of up to
# 250,000 rows is not collected at all while it is checked.
YOUNG_GC_EVERY = 250


@gc_paused
def reconcile(session: Session, tracker_path: str | Any, *, as_of: date, stuck_days: int = 3, write: bool = False,
              concurrency: int = 4, on_judged: Callable[[list[RowVerdict]], None] | None = None) -> ReconcileResult:
    """Check every tracker row against the session's SRMS; with ``write`` put status, SPD, next action
    and CRM tag into the tracker. ``on_judged`` is called with each run of verdicts, in row order, as
    their tickets arrive (e.g. ``JsonRows``)."""
    if write:
        from fhs_bulk.sheets.ref import SheetRef
        from fhs_bulk.sheets.write import check_writable

        if not SheetRef.parse(tracker_path).is_google:
            check_writable(tracker_path, what="tracker", table=False)
    # The tracker is read on a thread (python-calamine parses a workbook without the GIL) while this
    # one reads a workbook's ticket IDs from its XML, sets up the SRMS client and starts asking.
    fetch: TicketFetch | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-read") as reader:
        loading = reader.submit(load_tracker, tracker_path)
        try:
            early = early_key_runs(tracker_path)
            conn = session.srms
            if early is not None:
                fetch = TicketFetch(conn.client, batch=FETCH_BATCH, concurrency=concurrency)
                if not _ask_ahead(fetch, early):
                    fetch.close()
                    fetch = None
            tracker = loading.result()
        except BaseException:
            if fetch is not None:
                fetch.close()
            raise
    # Rows are judged as their batch of tickets arrives, while the next batches are in flight: a row
    # waits only for the batch that first asked for its ID.
    keys = [row_key(r) for r in tracker.rows]
    unique = list(dict.fromkeys(k for k in keys if k))
    if fetch is not None and fetch.unique != unique:  # the XML read otherwise than python-calamine
        fetch.close()
        fetch = None
    if fetch is None:
        fetch = TicketFetch(conn.client, unique, batch=FETCH_BATCH, concurrency=concurrency)
    batch_of = {k: i // FETCH_BATCH for i, k in enumerate(unique)}
    # A ticket is let go once the last row asking for it is judged: memory holds the batches in flight.
    uses = Counter(keys)
    tickets: dict[str, Any] = {}
    latest: str | None = None  # the newest event SRMS reported, ISO text (which sorts as time)
    judge = Judge(as_of, stuck_days)
    verdicts: list[RowVerdict] = []
    rows, pos = tracker.rows, 0
    write_back = WriteBack(tracker, as_of) if write else None
    tally = Tally()

    def judge_until(arrived: int) -> None:
        nonlocal pos
        start = len(verdicts)
        while pos < len(rows) and batch_of.get(keys[pos], -1) <= arrived:
            v = judge(rows[pos], tickets)
            if v is not None:
                verdicts.append(v)
            key = keys[pos]
            uses[key] -= 1
            if not uses[key]:
                tickets.pop(key, None)
            if not write:  # a judged row is let go here, while the next tickets are fetched, not all at the end
                rows[pos] = None  # type: ignore[call-overload]
            pos += 1
        if len(verdicts) > start:
            judged = verdicts[start:]
            tally.add(judged)  # counted while the next tickets are fetched, as is what follows
            if write_back is not None:
                write_back(judged)
            if on_judged is not None:
                on_judged(judged)

    judge_until(-1)
    for arrived, part in enumerate(fetch):
        newest = max((h.at for t in part.values() for h in t.history), default=None)
        if newest and (latest is None or newest > latest):
            latest = newest
        tickets.update(part)
        judge_until(arrived)
        if arrived % YOUNG_GC_EVERY == YOUNG_GC_EVERY - 1:
            collect_young()  # the requests' small reference cycles (see gcpause)
    judge_until(len(unique))
    result = ReconcileResult(as_of, verdicts, tracker=str(tracker_path))
    result._summary = (len(verdicts), tally.summary())
    if latest and ist_date(latest) > as_of:
        result.warnings.append(f"SRMS history holds events up to {ist_date(latest).isoformat()}, after the date "
                               f"judged ({as_of.isoformat()}): services 'on' later dates have not happened as of "
                               "then. Pass --as-of to judge a later day.")
    if write_back is not None:
        result.written = write_back.changed
        tracker.save()
    return result
