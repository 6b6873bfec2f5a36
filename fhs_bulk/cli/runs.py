"""`fhs-bulk runs`: the morning after. What ran, how it ended, which rows need a person."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

import click

from fhs_bulk.cli._app import main
from fhs_bulk.cli._common import open_session
from fhs_bulk.errors import UsageError

SHOWN_PROBLEMS = 20


def _log(state_dir: str | None) -> Any:
    session = open_session(None, None, state_dir)
    return session, session.runs


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "-"


@main.group(invoke_without_command=True)
@click.option("--limit", default=20, show_default=True, help="Newest runs shown.")
@click.option("--command", "command", help="Only runs of this command (e.g. upload, 'tracker reconcile').")
@click.option("--since", help="Only runs started on or after this date (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--state-dir", envvar="FHS_STATE_DIR", help="Ledger directory [env FHS_STATE_DIR].")
@click.pass_context
def runs(ctx: click.Context, limit: int, command: str | None, since: str | None, as_json: bool,
         state_dir: str | None) -> None:
    """Recorded runs, newest first: id, when, command, sheet, counts, exit."""
    ctx.ensure_object(dict)
    ctx.obj["state_dir"] = state_dir
    if ctx.invoked_subcommand:
        return
    try:
        since_day = date.fromisoformat(since) if since else None
    except ValueError:
        raise UsageError(f"--since '{since}' is not a date; write YYYY-MM-DD.", code="usage") from None
    session, log = _log(state_dir)
    with session:
        found = log.recent(limit=limit, command=command, since=since_day)
    if as_json:
        sys.stdout.write(json.dumps({"runs": [r.as_dict() for r in found]}) + "\n")
        return
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Runs (newest first)", title_justify="left")
        for col in ("id", "started", "command", "sheet", "counts", "exit"):
            table.add_column(col, overflow="fold")
        for r in found:
            table.add_row(r.id, r.started_at, r.command + (" (dry run)" if r.dry_run else ""), r.sheet or "",
                          _counts(r.counts), _exit(r))
        Console(highlight=False).print(table)
    else:
        for r in found:
            click.echo("\t".join([r.id, r.started_at, r.command + (" (dry run)" if r.dry_run else ""), r.sheet or "-",
                                  _counts(r.counts), _exit(r)]))
    if not found:
        click.echo("no runs recorded yet in this state directory", err=True)


def _exit(r: Any) -> str:
    if r.state != "finished":
        return r.state
    return str(r.exit_code)


@runs.command("show")
@click.argument("run_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The whole record and every problem row, on stdout.")
@click.pass_context
def runs_show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """One run (ID, or `last`): the record, and its rejected, invalid and failed rows."""
    from fhs_bulk.errors import exit_meaning
    from fhs_bulk.state.runs import PROBLEM_STATUSES

    session, log = _log(ctx.obj.get("state_dir"))
    with session:
        run = log.get(run_id)
        columns, rows = log.rows(run.id)  # read as they are iterated: inside the session
        problems = []
        if "status" in columns:
            s = columns.index("status")
            problems = [dict(zip(columns, row, strict=False)) for row in rows if row[s] in PROBLEM_STATUSES]
    if as_json:
        sys.stdout.write(json.dumps({**run.as_dict(), "problems": problems}) + "\n")
        return
    ended = run.ended_at or run.state
    code = f"{run.exit_code} ({exit_meaning(run.exit_code)})" if run.exit_code is not None else run.state
    click.echo(f"run {run.id}: {run.command}{' (dry run)' if run.dry_run else ''} {run.sheet or ''}")
    click.echo(f"  started {run.started_at}, ended {ended}, exit {code}")
    click.echo(f"  by {run.user} on {run.host} (pid {run.pid}); SRMS {run.srms}")
    click.echo(f"  counts: {_counts(run.counts)}")
    for name, path in run.outputs.items():
        click.echo(f"  {name}: {path}")
    if run.error:
        click.echo(f"  error: {run.error}")
    if problems:
        click.echo(f"  rows needing a person ({len(problems)}):")
        for p in problems[:SHOWN_PROBLEMS]:
            click.echo("    " + "\t".join("" if p.get(k) is None else str(p.get(k))
                                         for k in ("row", "fk_order_id", "status", "code", "message")))
        if len(problems) > SHOWN_PROBLEMS:
            click.echo(f"    ... and {len(problems) - SHOWN_PROBLEMS} more: `fhs-bulk runs show {run.id} --json` "
                       "lists them all")


@runs.command("results")
@click.argument("run_id", metavar="ID")
@click.option("--out", required=True, help="Where to write: .csv, .xlsx or a Google Sheet.")
@click.pass_context
def runs_results(ctx: click.Context, run_id: str, out: str) -> None:
    """Write a run's results file again (same columns as upload --out), from the history."""
    session, log = _log(ctx.obj.get("state_dir"))
    with session:
        click.echo(log.write_results(run_id, out))


@runs.command("prune")
@click.option("--older-than", "days", default=90, show_default=True, help="Forget runs older than this many days.")
@click.pass_context
def runs_prune(ctx: click.Context, days: int) -> None:
    """Forget old runs (never the ledger's exactly-once records of orders)."""
    if days < 0:
        raise UsageError("--older-than is a number of days, 0 or more.", code="usage")
    session, log = _log(ctx.obj.get("state_dir"))
    with session:
        n = log.prune(days)
    click.echo(f"forgot {n} runs older than {days} days", err=True)
