"""Acting on the worklist: reschedule, cancel and reopen tickets, one or a sheet of them, exactly once.

Inputs are checked here (dates, reasons, phone numbers, PIN codes, like ``ticket create``); the ticket's
state is judged by SRMS against the process's rules (``domain.ACTION_RULES``), and a refusal comes back
with its rule. Every request's Idempotency-Key is kept in the ledger before it is sent, so a crash
between send and answer cannot reschedule twice or open two new tickets: the re-run sends the same key
and SRMS answers what it answered the first time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhs_bulk import domain
from fhs_bulk.errors import Exit, SrmsError, SrmsUnavailable, UsageError
from fhs_bulk.srms.schemas import TICKET_ID_PATTERN, body_hash
from fhs_bulk.tickets.single import Problem, normalise_phone, today_ist
from fhs_bulk.validate.check import shown

if TYPE_CHECKING:
    from fhs_bulk.session import Session

FIELDS = ("srm_id", "date", "remarks", "reason", "phone", "alternate_phone", "address", "city", "pincode")
SHEET_COLUMNS = {
    "srm_id": ("srm_id", "SRM ID", "ticket_id", "Service Ticket ID", "Reference ID", "reference_id"),
    "date": ("date", "reschedule_date", "preferred_date", "Preferred date"),
    "remarks": ("remarks", "Remarks"), "reason": ("reason", "cancel_reason"),
    "phone": ("phone", "Phone"), "alternate_phone": ("alternate_phone", "Alternate phone"),
    "address": ("address", "Address"), "city": ("city", "City"), "pincode": ("pincode", "Pincode"),
}
OUT_COLUMNS = ["row", "srm_id", "action", "status", "code", "ticket_id", "ticket_status", "spd", "tracker", "message"]
BK_PREFIX = "BK-"


@dataclass
class ActionOutcome:
    row: int | None
    srm_id: str
    action: str
    status: str  # done | replayed | refused | invalid | failed
    code: str | None = None
    ticket_id: str | None = None  # the ticket after the action (a reopen's new ticket)
    ticket_status: str | None = None
    spd: str | None = None
    tracker: str | None = None
    message: str = ""
    problems: list[Problem] = field(default_factory=list)
    ticket: dict[str, Any] | None = None

    def as_list(self) -> list[Any]:
        return [self.row, self.srm_id, self.action, self.status, self.code, self.ticket_id, self.ticket_status,
                self.spd, self.tracker, self.message]


@dataclass
class ActionRun:
    action: str
    outcomes: list[ActionOutcome] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(o.status == "failed" for o in self.outcomes):
            return Exit.TRANSIENT
        if any(o.status in ("refused", "invalid") or o.tracker == "conflict" for o in self.outcomes):
            return Exit.DATA
        return Exit.OK

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            out[o.status] = out.get(o.status, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        from fhs_bulk.privacy import mask_phone

        rows = []
        for o in self.outcomes:
            d = {k: v for k, v in zip(OUT_COLUMNS, o.as_list(), strict=True)}
            d["message"] = mask_phone(o.message)
            d["problems"] = [p.__dict__ for p in o.problems]
            rows.append(d)
        return {"action": self.action, "counts": self.counts(), "exit_code": int(self.exit_code), "outcomes": rows}

    def to_pandas(self) -> Any:
        from fhs_bulk.frames import frame

        return frame(OUT_COLUMNS, (o.as_list() for o in self.outcomes))


def check_action(action: str, raw: dict[str, str], today: date | None = None
                 ) -> tuple[dict[str, Any] | None, list[Problem]]:
    """(the request body, []) or (None, problems), each problem naming its field."""
    today = today or today_ist()
    get = {k: (raw.get(k) or "").strip() for k in FIELDS}
    problems: list[Problem] = []
    tid = get["srm_id"]
    if not tid:
        problems.append(Problem("srm_id", "field-missing", "the Service Ticket ID (SRM-...) or BK- reference is "
                                                            "required"))
    elif not (TICKET_ID_PATTERN.fullmatch(tid) or tid.startswith(BK_PREFIX)):
        problems.append(Problem("srm_id", "ticket-id-invalid", f"'{shown(tid)}' is neither a Service Ticket ID "
                                                               "(SRM- + 10 digits) nor a BK- reference"))
    body: dict[str, Any] = {"remarks": get["remarks"]}
    if action == "reschedule":
        if not get["date"]:
            problems.append(Problem("date", "field-missing", "--date is required (YYYY-MM-DD)"))
        else:
            try:
                day = date.fromisoformat(get["date"])
            except ValueError:
                problems.append(Problem("date", "date-invalid", f"'{shown(get['date'])}' is not a date; write "
                                                                "YYYY-MM-DD"))
            else:
                horizon = today + timedelta(days=domain.RESCHEDULE_HORIZON_DAYS)
                if day < today:
                    problems.append(Problem("date", "date-past", f"{day.isoformat()} is before today "
                                                                 f"({today.isoformat()}, Asia/Kolkata)"))
                elif day > horizon:
                    problems.append(Problem("date", "date-too-far", f"{day.isoformat()} is more than "
                                            f"{domain.RESCHEDULE_HORIZON_DAYS} days ahead (last: {horizon})"))
                body["date"] = day.isoformat()
    elif action == "cancel":
        reason = (get["reason"] or domain.DEFAULT_CANCEL_REASON).upper().replace(" ", "_")
        if reason not in domain.CANCEL_REASONS:
            problems.append(Problem("reason", "reason-invalid", f"'{shown(get['reason'])}' is not a cancel reason: "
                                    + " or ".join(domain.CANCEL_REASONS)))
        body = {"reason": reason, "remarks": get["remarks"] or domain.DEFAULT_CANCEL_REMARKS}
    elif action == "reopen":
        for name in ("phone", "alternate_phone"):
            if get[name]:
                phone = normalise_phone(get[name])
                if phone is None:
                    problems.append(Problem(name, "phone-invalid", "not an Indian mobile number: 10 digits "
                                                                   "starting 6-9"))
                else:
                    body[name] = phone
        moving = [k for k in ("address", "city", "pincode") if get[k]]
        if moving and len(moving) < 3:
            missing = [k for k in ("address", "city", "pincode") if not get[k]]
            problems.append(Problem(missing[0], "field-missing", "an address change needs --address, --city and "
                                                                 "--pincode together"))
        if get["pincode"] and not (len(get["pincode"]) == 6 and get["pincode"].isdigit()
                                   and get["pincode"][0] != "0"):
            problems.append(Problem("pincode", "pincode-invalid", f"'{shown(get['pincode'])}' is not a PIN code: "
                                                                  "6 digits, not starting with 0"))
        if not problems and moving:
            body.update(address=get["address"], city=get["city"], pincode=get["pincode"])
    else:
        raise UsageError(f"unknown action {action!r}", code="usage")
    return (None if problems else body), problems


def act(session: Session, action: str, ticket_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """One action, exactly once: the key for this exact request is kept in the ledger before sending."""
    from fhs_bulk.srms import schemas as s
    from fhs_bulk.srms.client import new_key

    model: Any = {"reschedule": s.RescheduleRequest, "cancel": s.CancelRequest, "reopen": s.ReopenRequest}[action]
    request = model.model_validate(body)
    conn, ledger = session.srms, session.ledger
    digest = body_hash({"action": action, "ticket": ticket_id, **request.model_dump(mode="json", exclude_none=True)})
    key = ledger.ticket_key(conn.identity, digest)
    if key is None:
        key = new_key()
        ledger.plan_ticket(conn.identity, key, f"{action}:{ticket_id}", digest)
    ticket, done = conn.client.act(action, ticket_id, request, key)
    ledger.record_ticket(key, ticket.ticket_id)
    return ticket.model_dump(), done


def _requests_from_sheet(path: str) -> list[tuple[int, dict[str, str]]]:
    from fhs_bulk.tickets.request_sheet import read_requests

    return read_requests(path, FIELDS, SHEET_COLUMNS, "srm_id", "srm_id (or 'SRM ID')")


def run_actions(session: Session, action: str, request: dict[str, str | None] | None = None, *,
                from_file: str | Path | None = None, tracker: str | Path | None = None,
                out: str | Path | None = None) -> ActionRun:
    """Reschedule, cancel or reopen one ticket (``request``) or one per row of ``from_file``; rows
    refused by a rule do not stop the others. With ``tracker``, each ticket's row gets the new state."""
    from fhs_bulk.errors import Interrupted
    from fhs_bulk.sheets.ref import SheetRef
    from fhs_bulk.sheets.write import check_writable, write_table

    if out is not None:
        check_writable(out, what="--out")
    if tracker is not None and not SheetRef.parse(tracker).is_google:
        check_writable(tracker, what="--tracker", table=False)
    clean = {k: v or "" for k, v in (request or {}).items()}
    requests = _requests_from_sheet(str(from_file)) if from_file else [(None, clean)]
    run = ActionRun(action)
    checked: list[tuple[int | None, str, dict[str, Any]]] = []
    for row, values in requests:
        body, problems = check_action(action, values)
        tid = (values.get("srm_id") or "").strip()
        if body is None:
            run.outcomes.append(ActionOutcome(row, tid, action, "invalid", problems[0].code,
                                              message=problems[0].message, problems=problems))
        else:
            checked.append((row, tid, body))
    book = None
    if tracker:
        from fhs_bulk.tracker.sheet import load_tracker

        book = load_tracker(tracker)
    try:
        for row, tid, body in checked:
            if session.cancel.is_set():
                run.outcomes.append(ActionOutcome(row, tid, action, "failed", "interrupted",
                                                  message="not sent: the run was interrupted; safe to re-run"))
                continue
            try:
                ticket, done = act(session, action, tid, body)
            except (SrmsUnavailable, Interrupted) as exc:
                run.outcomes.append(ActionOutcome(row, tid, action, "failed", exc.code, message=exc.message))
                continue
            except SrmsError as exc:
                if exc.status in (401, 403):
                    raise
                run.outcomes.append(ActionOutcome(row, tid, action, "refused", exc.srms_code,
                                                  message=exc.srms_message))
                continue
            o = ActionOutcome(row, tid, action, "done" if done else "replayed", None, ticket["ticket_id"],
                              f"{ticket['status']}/{ticket['sub_status']}", ticket["spd"], ticket=ticket,
                              message="" if done else "done before (the same request): nothing changed")
            if book is not None:
                o.tracker = write_action_to_tracker(book, tid, ticket)
            run.outcomes.append(o)
    finally:
        if book is not None:
            book.save()
    run.outcomes.sort(key=lambda o: o.row or 0)
    if out:
        write_table(out, OUT_COLUMNS, (o.as_list() for o in run.outcomes), sheet_title=action)
    return run


def write_action_to_tracker(tracker: Any, asked_id: str, ticket: dict[str, Any]) -> str:
    """The row of the ticket gets its new Status, Sub-status and SPD; a reopen puts the new SRM ID in
    'SRM ID' and keeps the old one in 'Earlier SRM IDs'. Returns updated | unchanged | not-found."""
    from fhs_bulk.tracker.sheet import EARLIER_SRM_IDS, REFERENCE_ID, SRM_ID

    old_id = ticket.get("reopened_from") or ticket["ticket_id"]
    row = None
    for r in tracker.rows:
        cell = (r.values.get(SRM_ID) or "").strip()
        if cell in (old_id, asked_id, ticket["ticket_id"]) or (
                asked_id.startswith(BK_PREFIX) and (r.values.get(REFERENCE_ID) or "").strip() == asked_id):
            row = r
            break
    if row is None:
        return "not-found"
    changed = False
    if ticket.get("reopened_from") and (row.values.get(SRM_ID) or "").strip() != ticket["ticket_id"]:
        earlier = [x for x in (row.values.get(EARLIER_SRM_IDS) or "").split() if x]
        previous = (row.values.get(SRM_ID) or "").strip()
        if previous and previous not in earlier:
            earlier.append(previous)
        changed |= tracker.set(row, EARLIER_SRM_IDS, " ".join(earlier))
        changed |= tracker.set(row, SRM_ID, ticket["ticket_id"])
    changed |= tracker.set(row, "Status", ticket["status"])
    changed |= tracker.set(row, "Sub-status", ticket["sub_status"])
    changed |= tracker.set(row, "SPD", ticket["spd"])
    return "updated" if changed else "unchanged"
