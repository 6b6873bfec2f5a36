"""`fhs-bulk ticket create`: check each request, create its ticket exactly once, keep the tracker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhs_bulk.errors import Exit
from fhs_bulk.tickets.single import FIELDS, SHEET_COLUMNS, TicketOutcome, check_request, create, write_to_tracker

if TYPE_CHECKING:
    from fhs_bulk.session import Session

OUT_COLUMNS = ["row", "fk_order_id", "status", "code", "ticket_id", "tracker", "message"]


@dataclass
class TicketRun:
    outcomes: list[TicketOutcome] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(o.status == "failed" for o in self.outcomes):
            return Exit.TRANSIENT
        if any(o.status in ("invalid", "conflict") or o.tracker == "conflict" for o in self.outcomes):
            return Exit.DATA
        return Exit.OK

    def to_pandas(self) -> Any:
        """One row per request: the ``--out`` file's columns."""
        from fhs_bulk.frames import frame

        return frame(OUT_COLUMNS, ([o.row, o.order, o.status, o.code, o.ticket_id, o.tracker, o.message]
                                   for o in self.outcomes))

    def as_dict(self) -> dict[str, Any]:
        from fhs_bulk.privacy import mask_phone

        tickets = []
        for o in self.outcomes:
            t = dict(o.ticket or {})
            if "phone" in t:
                t["phone"] = mask_phone(t["phone"])
            tickets.append({"row": o.row, "fk_order_id": o.order, "status": o.status, "ticket_id": o.ticket_id,
                            "code": o.code, "message": o.message, "tracker": o.tracker,
                            "problems": [p.__dict__ for p in o.problems], "ticket": t or None})
        return {"tickets": tickets}


def _requests_from_sheet(path: str) -> list[tuple[int, dict[str, str]]]:
    from fhs_bulk.tickets.request_sheet import read_requests

    return read_requests(path, FIELDS, SHEET_COLUMNS, "order", "fk_order_id")


def create_tickets(session: Session, request: dict[str, str | None] | None = None, *,
                   from_file: str | Path | None = None, tracker: str | Path | None = None,
                   out: str | Path | None = None) -> TicketRun:
    """Create one ticket (``request``: order, name, phone, address, city, pincode, service, preferred_date,
    remarks) or one per row of ``from_file``; each exactly once, the SRM ID written to ``tracker``."""
    from fhs_bulk.errors import DataError, SrmsUnavailable
    from fhs_bulk.sheets.ref import SheetRef
    from fhs_bulk.sheets.write import check_writable

    if out is not None:
        check_writable(out, what="--out")
    if tracker is not None and not SheetRef.parse(tracker).is_google:
        check_writable(tracker, what="--tracker", table=False)
    clean = {k: v or "" for k, v in (request or {}).items()}
    requests = _requests_from_sheet(str(from_file)) if from_file else [(None, clean)]
    run = TicketRun()
    checked: list[tuple[int | None, dict[str, Any]]] = []
    for row, values in requests:
        checked_request, problems = check_request(values)
        if problems or checked_request is None:
            run.outcomes.append(TicketOutcome(row, (values.get("order") or "").strip(), "invalid",
                                              code=problems[0].code, message=problems[0].message, problems=problems))
        else:
            checked.append((row, checked_request))
    book = None
    if tracker:
        from fhs_bulk.tracker.sheet import load_tracker

        book = load_tracker(tracker)
    if checked:
        conn, ledger = session.srms, session.ledger
        try:
            for row, req in checked:
                try:
                    ticket, created = create(conn, ledger, req)
                except SrmsUnavailable as exc:
                    run.outcomes.append(TicketOutcome(row, req["fk_order_id"], "failed", code=exc.code,
                                                      message=exc.message))
                    continue
                except DataError as exc:
                    run.outcomes.append(TicketOutcome(row, req["fk_order_id"], "conflict", code=exc.code,
                                                      message=exc.message))
                    continue
                o = TicketOutcome(row, req["fk_order_id"], "created" if created else "existing",
                                  ticket_id=ticket["ticket_id"], ticket=ticket)
                if book is not None:
                    o.tracker = write_to_tracker(book, req, ticket["ticket_id"])
                    if o.tracker == "conflict":
                        o.code = "tracker-conflict"
                        o.message = "the tracker row holds another SRM ID; left alone"
                run.outcomes.append(o)
        finally:
            if book is not None:
                book.save()
    run.outcomes.sort(key=lambda o: o.row or 0)
    if out:
        from fhs_bulk.sheets.write import write_table

        write_table(out, OUT_COLUMNS, ([o.row, o.order, o.status, o.code, o.ticket_id, o.tracker, o.message]
                                       for o in run.outcomes))
    return run
