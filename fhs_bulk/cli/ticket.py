"""`fhs-bulk ticket`: single tickets (client Jeeves Consumer Services)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from fhs_bulk.cli._app import main
from fhs_bulk.cli._common import (
    deadline_option,
    notify_options,
    open_session,
    recorded_run,
    srms_options,
    stop_on_signals,
)
from fhs_bulk.errors import UsageError


@main.group()
def ticket() -> None:
    """Single tickets (client Jeeves Consumer Services)."""


@ticket.command("create")
@click.option("--order", help="Flipkart order ID (OD + 18 digits).")
@click.option("--name", help="Customer name.")
@click.option("--phone", help="Customer mobile (10 digits; +91/0 prefix fine).")
@click.option("--address", help="Installation address.")
@click.option("--city")
@click.option("--pincode", help="6-digit PIN code.")
@click.option("--service", help="Service, e.g. 'SP TV'.")
@click.option("--preferred-date", help="YYYY-MM-DD, today or later.")
@click.option("--remarks", default="")
@click.option("--from", "from_file", type=click.Path(dir_okay=False),
              help="A sheet of requests (csv/xlsx), one ticket per row.")
@click.option("--tracker", type=click.Path(dir_okay=False), help="Write the SRM ID into this tracker (xlsx/csv).")
@click.option("--out", help="With --from: a results file (.csv/.xlsx), one row per request.")
@click.option("--json", "as_json", is_flag=True)
@deadline_option(60)
@notify_options
@srms_options
def ticket_create(order: str | None, name: str | None, phone: str | None, address: str | None, city: str | None,
                  pincode: str | None, service: str | None, preferred_date: str | None, remarks: str,
                  from_file: str | None, tracker: str | None, out: str | None, as_json: bool, deadline: float,
                  notify: tuple[str, ...], notify_on: str, srms_url: str | None, token_file: str | None,
                  state_dir: str | None) -> None:
    """Create one ticket from options, or one per row with --from; print the Service Ticket ID.

    Exit 0: created (or found again); 1: invalid request or tracker conflict; 2: unusable input;
    3: SRMS unreachable.
    """
    from fhs_bulk.privacy import mask_phone
    from fhs_bulk.tickets.batch import OUT_COLUMNS, create_tickets

    raw: dict[str, str | None] = {
        "order": order, "name": name, "phone": phone, "address": address, "city": city, "pincode": pincode,
        "service": service, "preferred_date": preferred_date, "remarks": remarks}
    if from_file and any(v for k, v in raw.items() if k != "remarks"):
        raise UsageError("give either --from FILE or the ticket options, not both.", code="usage")
    with open_session(srms_url, token_file, state_dir, deadline=deadline) as session, \
            recorded_run(session, "ticket create", sheet=from_file, notify=notify, notify_on=notify_on) as rec:
        result = create_tickets(session, raw if not from_file else None, from_file=from_file, tracker=tracker,
                                out=out)
        rec.exit_code = result.exit_code
        rec.counts = {}
        for o in result.outcomes:
            rec.counts[o.status] = rec.counts.get(o.status, 0) + 1
        rec.outputs = {k: v for k, v in (("results", out), ("tracker", tracker)) if v}
        rec.columns = OUT_COLUMNS
        rec.rows = [[o.row, o.order, o.status, o.code, o.ticket_id, o.tracker, mask_phone(o.message)]
                    for o in result.outcomes]
    if as_json:
        doc = result.as_dict()
        sys.stdout.write(json.dumps(doc if from_file else doc["tickets"][0]) + "\n")
    else:
        from fhs_bulk.privacy import mask_phone

        for o in result.outcomes:
            where = f"row {o.row}: " if o.row else ""
            if o.ticket_id:
                click.echo(o.ticket_id)
                click.echo(f"{where}{o.order}: {o.status} {o.ticket_id}"
                           + (f"; tracker {o.tracker}" if o.tracker else ""), err=True)
            else:
                for p in o.problems:
                    click.echo(f"{where}{p.field}: {p.code}: {mask_phone(p.message)}", err=True)
                if not o.problems:
                    click.echo(f"{where}{o.order}: {o.status}: {o.code}: {o.message}", err=True)
    sys.exit(result.exit_code)


@ticket.command("show")
@click.argument("ticket_id")
@click.option("--json", "as_json", is_flag=True)
@deadline_option(20)
@srms_options
def ticket_show(ticket_id: str, as_json: bool, deadline: float, srms_url: str | None, token_file: str | None,
                state_dir: str | None) -> None:
    """Status, sub-status, SPD and history of a ticket (Service Ticket ID or BK- reference)."""
    from fhs_bulk.privacy import mask_phone
    from fhs_bulk.tickets.single import show_ticket

    with open_session(srms_url, token_file, state_dir, deadline=deadline) as session:
        t = show_ticket(session, ticket_id)
    data = t.model_dump()
    data["phone"] = mask_phone(data["phone"])
    if data.get("alternate_phone"):
        data["alternate_phone"] = mask_phone(data["alternate_phone"])
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
        return
    click.echo(f"{t.ticket_id}  {t.reference_id or ''}  order {t.fk_order_id}  {t.service}")
    click.echo(f"status {t.status} / {t.sub_status}   SPD {t.spd}   customer {t.customer_name} "
               f"{data['phone']} {t.city} {t.pincode}")
    if t.reopened_from or t.reopened_as:
        click.echo(f"reopened from {t.reopened_from}" if t.reopened_from else f"reopened as {t.reopened_as}")
    for h in t.history:
        click.echo(f"  {h.at}  {h.status} / {h.sub_status}  {h.remark}")


def _action_command(action: str, summary: str, options: list[Any]) -> None:
    """Register `fhs-bulk ticket ACTION`: one ticket by ID, or one per row with --from."""

    def command(ticket_id: str | None, from_file: str | None, tracker: str | None, out: str | None, as_json: bool,
                deadline: float, notify: tuple[str, ...], notify_on: str, srms_url: str | None,
                token_file: str | None, state_dir: str | None, **fields: str | None) -> None:
        from fhs_bulk.privacy import mask_phone
        from fhs_bulk.tickets.actions import OUT_COLUMNS, run_actions

        given = {k: v for k, v in fields.items() if v not in (None, "")}
        if from_file and (ticket_id or given):
            raise UsageError("give either --from FILE or the ticket ID and options, not both.", code="usage")
        if not from_file and not ticket_id:
            raise UsageError(f"name the ticket: fhs-bulk ticket {action} SRM-0000000001 (or --from FILE).",
                             code="usage")
        request: dict[str, str | None] = {"srm_id": ticket_id, **fields}
        with open_session(srms_url, token_file, state_dir, deadline=deadline) as session, stop_on_signals(session), \
                recorded_run(session, f"ticket {action}", sheet=from_file or ticket_id, notify=notify,
                             notify_on=notify_on) as rec:
            run = run_actions(session, action, None if from_file else request, from_file=from_file,
                              tracker=tracker, out=out)
            rec.exit_code, rec.counts = run.exit_code, run.counts()
            rec.outputs = {k: v for k, v in (("results", out), ("tracker", tracker)) if v}
            rec.columns = OUT_COLUMNS
            rec.rows = [[*o.as_list()[:-1], mask_phone(o.message)] for o in run.outcomes]
        if as_json:
            sys.stdout.write(json.dumps(run.as_dict()) + "\n")
        else:
            for o in run.outcomes:
                where = f"row {o.row}: " if o.row else ""
                if o.status in ("done", "replayed"):
                    click.echo(o.ticket_id)
                    click.echo(f"{where}{o.srm_id}: {action} {o.status}: {o.ticket_id} {o.ticket_status}, SPD {o.spd}"
                               + (f"; tracker {o.tracker}" if o.tracker else ""), err=True)
                elif o.problems:
                    for p in o.problems:
                        click.echo(f"{where}{p.field}: {p.code}: {mask_phone(p.message)}", err=True)
                else:
                    click.echo(f"{where}{o.srm_id}: {o.status}: {o.code}: {o.message}", err=True)
        sys.exit(run.exit_code)

    command.__doc__ = summary + ("\n\n    ID is a Service Ticket ID or a BK- reference. Exit 0: done (or done before); "
                                 "1: refused by a rule or SRMS (the code and the rule in the message); 2: unusable "
                                 "input; 3: SRMS unreachable.")
    decorated: Any = command
    for opt in reversed([
        click.argument("ticket_id", metavar="ID", required=False),
        *options,
        click.option("--from", "from_file", type=click.Path(dir_okay=False),
                     help="A sheet (csv/xlsx/Google Sheet) with srm_id and the action's columns: one per row."),
        click.option("--tracker", type=click.Path(dir_okay=False),
                     help="Write the ticket's new Status, Sub-status and SPD (and a reopen's SRM ID) here."),
        click.option("--out", help="With --from: one outcome row per input row (.csv/.xlsx)."),
        click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout."),
        deadline_option(60), notify_options, srms_options,
    ]):
        decorated = opt(decorated)
    ticket.command(action)(decorated)


_action_command("reschedule", "Reschedule an open ticket to the customer's preferred date.", [
    click.option("--date", "date", help="The new date, YYYY-MM-DD: today (Asia/Kolkata) up to 30 days ahead."),
    click.option("--remarks", help="Why (kept in the ticket's history)."),
])
_action_command("cancel", "Cancel SVC: only a ticket in CANCEL_INITIATED.", [
    click.option("--reason", type=click.Choice(["CUSTOMER_NOT_READY", "CUSTOMER_NOT_RESPONDING"]),
                 help="Cancel reason [default CUSTOMER_NOT_READY]."),
    click.option("--remarks", help="Remark [default 'Cancel']."),
])
_action_command("reopen", "Reopen a COMPLETED ticket within 30 days of service: a new ticket, linked both ways.", [
    click.option("--remarks", help="What the customer reports."),
    click.option("--phone", help="A changed mobile number."),
    click.option("--alternate-phone", help="An alternate contact number."),
    click.option("--address", help="A changed address (with --city and --pincode)."),
    click.option("--city"),
    click.option("--pincode"),
])
