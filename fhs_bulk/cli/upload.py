"""`fhs-bulk upload`: options in, one library call, the result rendered."""

from __future__ import annotations

import itertools
import json
import signal
import sys
import time
from typing import Any

import click

from fhs_bulk.cli._app import main
from fhs_bulk.cli._common import (
    is_terminal,
    notify_options,
    open_session,
    recorded_run,
    setup_logging,
    srms_options,
    stderr_console,
    stop_on_signals,
    without_pandas,
)

PROBLEMS_SHOWN = 10


@main.command()
@click.argument("sheet")
@click.option("--out", "out", help="Results file (.csv or .xlsx) or a Google Sheet (URL, key, gsheet:TITLE). "
                                   "Default: <sheet>.results.csv beside the sheet.")
@click.option("--out-worksheet", help="Write the results to this worksheet of the input Google Sheet.")
@click.option("--singles-out", type=click.Path(dir_okay=False),
              help="Write the orders SRMS refused as service-not-bulk-eligible as a `ticket create --from` sheet.")
@click.option("--dry-run", is_flag=True, help="Validate and look up the ledger and SRMS (read-only); send nothing.")
@click.option("--batch-size", default=1000, show_default=True, help="Orders per SRMS bulk job (1-1000).")
@click.option("--concurrency", default=4, show_default=True, help="Bulk jobs in flight at once.")
@click.option("--strict", is_flag=True, help="Send nothing if any row is invalid.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Append the full log to FILE.")
@click.option("--deadline", default=1800.0, show_default=True, help="Give up retrying after this many seconds.")
@notify_options
@srms_options
@click.pass_context
def upload(ctx: click.Context, sheet: str, out: str | None, out_worksheet: str | None, singles_out: str | None,
           dry_run: bool,
           batch_size: int, concurrency: int, strict: bool, as_json: bool, quiet: bool, log_file: str | None,
           deadline: float, notify: tuple[str, ...], notify_on: str, srms_url: str | None, token_file: str | None,
           state_dir: str | None) -> None:
    """Register every valid order of SHEET with SRMS and write one reference ID per order.

    Exit 0: all registered; 1: some rows invalid or rejected; 2: unusable sheet, options or outputs;
    3: some orders failed for transient reasons (re-run later); 4: another run holds the lock;
    130/143: interrupted (confirmed rows are in the results; re-run to finish).
    """
    from fhs_bulk.upload.run import RESULT_COLUMNS, UploadOptions
    from fhs_bulk.upload.run import upload as run_upload

    without_pandas()
    live = is_terminal() and not quiet and not as_json
    setup_logging(quiet, log_file, ctx.obj.get("debug", False), live)
    options = UploadOptions(batch_size=batch_size, concurrency=concurrency, strict=strict, dry_run=dry_run)
    options.check()
    if singles_out:
        from fhs_bulk.sheets.write import check_writable

        check_writable(singles_out, what="--singles-out")
    with open_session(srms_url, token_file, state_dir, deadline=deadline,
                      connections=max(4, concurrency * 2)) as session, stop_on_signals(session), \
            recorded_run(session, "upload", sheet=sheet, dry_run=dry_run, notify=notify, notify_on=notify_on) as rec:
        if not quiet:
            click.echo(f"SRMS: {session.description}", err=True)
        if live:
            result = _with_progress(lambda progress: run_upload(session, sheet, out=out, out_worksheet=out_worksheet,
                                                                options=options, progress=progress))
        else:
            result = run_upload(session, sheet, out=out, out_worksheet=out_worksheet, options=options)
        if singles_out and not dry_run:
            from fhs_bulk.upload.run import write_singles

            rec.outputs["singles"] = write_singles(result, singles_out)
        rec.exit_code, rec.counts = result.exit_code, dict(result.counts)
        rec.outputs.update({"results": result.out} if result.out else {})
        rec.columns, rec.rows = RESULT_COLUMNS, result.rows
    c = result.counts
    ctx.obj["outcome"] = (f"{'dry run; ' if result.dry_run else ''}registered {c.get('registered', 0)}, already "
                          f"{c.get('already-registered', 0)}, rejected {c.get('rejected', 0)}, invalid "
                          f"{c.get('invalid', 0)}, failed {c.get('failed', 0)} in {result.elapsed:.1f}s"
                          + (f"; results {result.out}" if result.out else ""))
    if result.interrupted:
        what = "terminated" if result.interrupted == signal.SIGTERM else "interrupted"
        click.echo(f"error: {what}: orders not confirmed are 'failed' in {result.out or 'the results'}; run the "
                   f"same command again to finish [{what}]", err=True)
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict()) + "\n")
    elif not quiet:
        _print_summary(result, sys.stdout.isatty())
    sys.exit(result.exit_code)


def _with_progress(fn: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]uploading"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]} orders/s"), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as bar:
        task = bar.add_task("upload", total=None, rate="-")
        t0 = time.monotonic()

        def progress(done: int, total: int) -> None:
            elapsed = max(1e-6, time.monotonic() - t0)
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f}")

        return fn(progress)


def _print_summary(result: Any, live: bool) -> None:
    c = result.counts
    line = (f"{'dry run: ' if result.dry_run else ''}registered {c.get('registered', 0)}, "
            f"already {c.get('already-registered', 0)}, rejected {c.get('rejected', 0)}, "
            f"invalid {c.get('invalid', 0)}, failed {c.get('failed', 0)}"
            + (f", would send {c.get('would-send', 0)}" if result.dry_run else "")
            + f" in {result.elapsed:.2f}s ({result.orders_per_s:,.0f} orders/s)")
    if result.retries:
        line += f"; {result.retries} retries"
    if result.out:
        line += f"; results: {result.out}"
    if live:
        from rich.table import Table

        table = Table(title="Upload summary", title_justify="left")
        colours = {"registered": "green", "already-registered": "cyan", "rejected": "yellow",
                   "invalid": "red", "failed": "bold red", "would-send": "blue"}
        table.add_column("status")
        table.add_column("orders", justify="right")
        for status, n in c.items():
            if n or status in ("registered", "failed"):
                table.add_row(f"[{colours.get(status, 'white')}]{status}[/]", str(n))
        from rich.console import Console

        Console(highlight=False).print(table)
    click.echo(line)
    problems = sum(c.get(status, 0) for status in ("invalid", "rejected", "failed"))
    if problems:
        shown = itertools.islice((r for r in result.rows if r.status in ("invalid", "rejected", "failed")),
                                 PROBLEMS_SHOWN)
        for r in shown:
            click.echo(f"  row {r.row}\t{r.fk_order_id}\t{r.status}\t{r.code or ''}\t{r.message}")
    if problems > PROBLEMS_SHOWN:
        where = f"see {result.out}" if result.out else "use --json"
        click.echo(f"  ... and {problems - PROBLEMS_SHOWN} more: {where}")
