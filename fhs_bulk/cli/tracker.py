"""`fhs-bulk tracker`: update the 'Tracker for installation (ODS)' and reconcile it against SRMS."""

from __future__ import annotations

import json
import sys

import click

from fhs_bulk.cli._app import main
from fhs_bulk.cli._common import deadline_option, notify_options, open_session, recorded_run, srms_options
from fhs_bulk.errors import UsageError


@main.group()
def tracker() -> None:
    """The 'Tracker for installation (ODS)' sheet."""


@tracker.command("update")
@click.argument("tracker_path", metavar="TRACKER")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), help="An upload results file.")
@click.option("--from-ledger", is_flag=True, help="Take every registration the local ledger knows.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout: counts and conflicts.")
@notify_options
@srms_options
def tracker_update(tracker_path: str, from_file: str | None, from_ledger: bool, as_json: bool, notify: tuple[str, ...],
                   notify_on: str, srms_url: str | None, token_file: str | None, state_dir: str | None) -> None:
    """Fill Reference ID and SRM ID from upload results; add rows for orders not yet in the tracker.

    Exit 0: no conflict; 1: some rows hold a different ID (left alone, listed); 2: unusable input.
    """
    from fhs_bulk.tracker import sheet as trk

    if bool(from_file) == from_ledger:
        raise UsageError("give exactly one of --from RESULTS or --from-ledger.", code="usage")
    with open_session(srms_url, token_file, state_dir) as session, \
            recorded_run(session, "tracker update", sheet=tracker_path, notify=notify, notify_on=notify_on) as rec:
        if from_file:
            registrations = trk.registrations_from_results(from_file)
        else:
            registrations = trk.registrations_from_ledger(session)
        result = trk.update_tracker(tracker_path, registrations)
        rec.exit_code = result.exit_code
        rec.counts = {"updated": result.updated, "added": result.added, "unchanged": result.unchanged,
                      "conflicts": len(result.conflicts)}
        rec.outputs = {"tracker": tracker_path}
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict()) + "\n")
    else:
        click.echo(f"{tracker_path}: {result.updated} updated, {result.added} added, {result.unchanged} unchanged, "
                   f"{len(result.conflicts)} conflicts")
        for c in result.conflicts[:20]:
            click.echo(f"  row {c['row']} {c['fk_order_id']}: {c['column']} is {c['tracker']} in the tracker, "
                       f"{c['srms']} in SRMS (left alone)")
        if len(result.conflicts) > 20:
            click.echo(f"  ... and {len(result.conflicts) - 20} more: use --json")
    sys.exit(result.exit_code)


@tracker.command("reconcile")
@click.argument("tracker_path", metavar="TRACKER")
@click.option("--as-of", help="Judge SPDs as of this date (YYYY-MM-DD; default today in Asia/Kolkata).")
@click.option("--stuck-days", default=3, show_default=True, help="Open with no status change this long = stuck.")
@click.option("--write", is_flag=True, help="Write Status, Sub-status, SPD, SPD breached, Next action, CRM tag, "
                                            "Last checked into the tracker.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write a report: FILE.xlsx or FILE.html.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (deterministic).")
@click.option("--concurrency", default=4, show_default=True, help="Ticket queries in flight.")
@deadline_option(60)
@notify_options
@srms_options
def tracker_reconcile(tracker_path: str, as_of: str | None, stuck_days: int, write: bool, report: str | None,
                      as_json: bool, concurrency: int, deadline: float, notify: tuple[str, ...], notify_on: str,
                      srms_url: str | None, token_file: str | None, state_dir: str | None) -> None:
    """Check every tracker row against SRMS and say what support does next.

    Exit 0: nothing needs attention; 1: findings (the worklist is not empty); 2: unusable tracker or
    options; 3: SRMS unreachable.
    """
    from datetime import date

    from fhs_bulk.domain import today_ist
    from fhs_bulk.tracker.reconcile import JsonRows, reconcile

    try:
        day = date.fromisoformat(as_of) if as_of else today_ist()
    except ValueError:
        raise UsageError(f"--as-of '{as_of}' is not a date; write YYYY-MM-DD.", code="usage") from None
    if stuck_days < 1:
        raise UsageError("--stuck-days must be 1 or more.", code="usage")
    if report and not report.lower().endswith((".xlsx", ".html", ".htm")):
        raise UsageError(f"--report {report}: name a .xlsx or .html file.", code="usage")
    if report:
        from fhs_bulk.sheets.write import check_writable

        check_writable(report, what="--report", table=False)
    with open_session(srms_url, token_file, state_dir, deadline=deadline, connections=max(4, concurrency)) as session, \
            recorded_run(session, "tracker reconcile", sheet=tracker_path, notify=notify, notify_on=notify_on) as rec:
        rows_json = JsonRows() if as_json else None  # encoded while the next tickets are fetched
        result = reconcile(session, tracker_path, as_of=day, stuck_days=stuck_days, write=write,
                           concurrency=concurrency, on_judged=rows_json)
        if report:
            from fhs_bulk.tracker.report import write_report

            write_report(result, report)
        summary = result.summary()
        rec.exit_code = result.exit_code
        rec.counts = {"rows": summary["rows"], "needing attention": summary["needing_attention"],
                      **summary["by_finding"]}
        rec.outputs = {k: v for k, v in (("report", report), ("tracker", tracker_path if write else None)) if v}
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        result.write_json(sys.stdout, rows_json.parts if rows_json is not None else None)
    else:
        s = result.summary()
        click.echo(f"{tracker_path} as of {day.isoformat()} (Asia/Kolkata): {s['rows']} rows, "
                   f"{s['needing_attention']} need attention" + (f"; {result.written} rows written" if write else ""))
        for code, n in s["by_finding"].items():
            click.echo(f"  {code}: {n}")
    sys.exit(result.exit_code)
