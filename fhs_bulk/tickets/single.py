"""Single tickets (client Jeeves Consumer Services): checked before sending, created exactly once, and
their Service Ticket ID written into the tracker."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from difflib import get_close_matches
from typing import Any

from fhs_bulk import domain
from fhs_bulk.domain import today_ist
from fhs_bulk.errors import DataError
from fhs_bulk.srms.schemas import body_hash
from fhs_bulk.validate.check import check_order_id, shown

FIELDS = ("order", "name", "phone", "address", "city", "pincode", "service", "preferred_date", "remarks")
# Column names accepted in a --from sheet for each field.
SHEET_COLUMNS = {
    "order": ("fk_order_id", "order"), "name": ("customer_name", "Customer name", "name"),
    "phone": ("phone", "Phone"), "address": ("address", "Address"), "city": ("city", "City"),
    "pincode": ("pincode", "Pincode"), "service": ("service", "Service"),
    "preferred_date": ("preferred_date", "Preferred date"), "remarks": ("remarks", "Remarks"),
}


@dataclass
class Problem:
    field: str
    code: str
    message: str


@dataclass
class TicketOutcome:
    row: int | None
    order: str
    status: str  # created | existing | invalid | conflict | failed
    ticket_id: str | None = None
    code: str | None = None
    message: str = ""
    ticket: dict[str, Any] | None = None
    tracker: str | None = None  # what happened in the tracker: updated | added | unchanged | conflict
    problems: list[Problem] = field(default_factory=list)


def show_ticket(session: Any, ticket_id: str) -> Any:
    """A ticket by Service Ticket ID or BK- reference (raises DataError ``ticket-not-found``)."""
    from fhs_bulk.errors import DataError

    ticket = session.srms.client.get_ticket(ticket_id.strip())
    if ticket is None:
        raise DataError(f"SRMS has no ticket {ticket_id}.", code="ticket-not-found")
    return ticket


def normalise_phone(raw: str) -> str | None:
    """Indian mobile: 10 digits starting 6-9; '+91', '91' and '0' prefixes, spaces and dashes accepted."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("+91"):
        digits = digits[3:]
    elif len(digits) == 12 and digits.startswith("91"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]
    return digits if re.fullmatch(r"[6-9][0-9]{9}", digits) else None


def check_request(raw: dict[str, str], today: date | None = None) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The request as SRMS wants it, or the problems, each naming its field and what to do."""
    today = today or today_ist()
    problems: list[Problem] = []
    get = {k: (raw.get(k) or "").strip() for k in FIELDS}
    for name in ("order", "name", "phone", "address", "city", "pincode", "service", "preferred_date"):
        if not get[name]:
            problems.append(Problem(name, "field-missing", f"--{name.replace('_', '-')} is required"))
    order = get["order"]
    if order:
        value, issues = check_order_id(raw.get("order") or "")
        errs = [(c, m) for c, m in issues if c != "order-id-whitespace"]
        if errs:
            problems.append(Problem("order", errs[0][0], errs[0][1]))
        order = value
    phone = None
    if get["phone"]:
        phone = normalise_phone(get["phone"])
        if phone is None:
            problems.append(Problem("phone", "phone-invalid", "not an Indian mobile number: 10 digits starting with "
                                                              "6-9 (a +91 or 0 prefix is fine)"))
    if get["pincode"] and not re.fullmatch(r"[1-9][0-9]{5}", get["pincode"]):
        problems.append(Problem("pincode", "pincode-invalid", f"'{shown(get['pincode'])}' is not a PIN code: "
                                                              "6 digits, not starting with 0"))
    service = None
    if get["service"]:
        service = domain.known_service(get["service"])
        if service is None:
            close = get_close_matches(get["service"], list(domain.KNOWN_SERVICES), n=3, cutoff=0.4)
            hint = (" Nearest: " + ", ".join(f"'{c}'" for c in close) + "." if close else "") + \
                " `fhs-bulk services` lists them all."
            problems.append(Problem("service", "service-unknown", f"unknown service '{shown(get['service'])}'.{hint}"))
    preferred = None
    if get["preferred_date"]:
        try:
            preferred = date.fromisoformat(get["preferred_date"])
        except ValueError:
            problems.append(Problem("preferred_date", "date-invalid",
                                    f"'{shown(get['preferred_date'])}' is not a date; write YYYY-MM-DD"))
        else:
            if preferred < today:
                problems.append(Problem("preferred_date", "date-past",
                                        f"{preferred.isoformat()} is in the past (today is {today.isoformat()})"))
    if problems:
        return None, problems
    return {
        "client": domain.CLIENT_NAME, "fk_order_id": order, "customer_name": get["name"], "phone": phone,
        "address": get["address"], "city": get["city"], "pincode": get["pincode"], "service": service,
        "preferred_date": preferred.isoformat() if preferred else None, "remarks": get["remarks"],
    }, []


def create(conn: Any, ledger: Any, request: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create (or find again) the ticket for ``request``: the same request always uses the same
    Idempotency-Key, recorded in the ledger before sending, so a crash between send and answer
    cannot make a second ticket. Returns (ticket, created)."""
    from fhs_bulk.errors import SrmsError
    from fhs_bulk.srms.client import new_key
    from fhs_bulk.srms.schemas import TicketCreate

    digest = body_hash(request)
    key = ledger.ticket_key(conn.identity, digest)
    if key is None:
        key = new_key()
        ledger.plan_ticket(conn.identity, key, request["fk_order_id"], digest)
    try:
        ticket, created = conn.client.create_ticket(TicketCreate.model_validate(request), key)
    except SrmsError as exc:
        if exc.srms_code == "order-has-ticket":
            raise DataError(exc.srms_message + "; not created again", code="order-has-ticket") from None
        raise
    ledger.record_ticket(key, ticket.ticket_id)
    return ticket.model_dump(), created


def write_to_tracker(tracker: Any, request: dict[str, Any], ticket_id: str) -> str:
    """Put the SRM ID in the order's row (adding the row when the order is not there). Returns
    'updated', 'added', 'unchanged' or 'conflict' (the row holds another SRM ID: never overwritten)."""
    from fhs_bulk.tracker.sheet import SRM_ID

    rows = tracker.by_order().get(request["fk_order_id"], [])
    if not rows:
        tracker.add({
            "fk_order_id": request["fk_order_id"], SRM_ID: ticket_id, "Service": request["service"],
            "Customer name": request["customer_name"], "Phone": request["phone"], "Pincode": request["pincode"],
            "Preferred date": request["preferred_date"] or "",
        })
        return "added"
    row = rows[0]
    current = row.values.get(SRM_ID, "").strip()
    if current == ticket_id:
        return "unchanged"
    if current:
        return "conflict"
    tracker.set(row, SRM_ID, ticket_id)
    return "updated"
