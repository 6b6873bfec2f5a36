"""The command line: parses options, calls one library function per command, formats its result.

Heavy libraries (pyarrow, pandas, openpyxl, httpx, fastapi) are imported inside the commands, so
``fhs-bulk --help`` stays instant.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from fhs_bulk import __version__
from fhs_bulk.errors import Exit, FhsError

EPILOG = ("Exit codes: 0 ok, 1 data problems (rows invalid/rejected/conflicting), 2 unusable input or "
          "command line, 3 SRMS unreachable or transient failures (re-run later), 4 another upload holds the lock.")


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FhsError as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {err.message}", err=True)
            ctx.exit(err.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as err:  # a bug, not a user's mistake: say so, briefly
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"internal error: {type(err).__name__}: {str(err)[:300]} "
                       "(run again with --debug for the traceback, and report it)", err=True)
            ctx.exit(70)


@click.group(cls=_Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fhs-bulk")
@click.option("--debug", is_flag=True, envvar="FHS_DEBUG", help="Show tracebacks and HTTP details (never tokens).")
@click.option("--credentials", type=click.Path(dir_okay=False),
              help="Google service account JSON for Google Sheets [env GOOGLE_APPLICATION_CREDENTIALS].")
@click.pass_context
def main(ctx: click.Context, debug: bool, credentials: str | None) -> None:
    """Register Flipkart Home Services ODS orders as SRMS service tickets and keep the tracker true.

    Wherever a sheet is named, a Google Sheet works too: its URL, its key, or gsheet:TITLE[/WORKSHEET].
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if credentials:
        os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = credentials


class _NoPandas:
    """An import hook that hides pandas.

    pyarrow imports pandas (0.2-0.3 s) the first time it converts any Python object, only to probe
    for pandas types. The commands that read sheets never hand pyarrow a pandas object, so they hide
    pandas from it; library users (who may well use pandas) are not affected.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not used by this command")
        return None


def _without_pandas() -> None:
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=False)


def _print_findings_table(findings: list[Any], title: str, limit: int) -> None:
    console = _stderr_console()
    shown_rows = findings[:limit]
    if console.is_terminal:
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_lines=False)
        for col in ("row", "column", "code", "message"):
            table.add_column(col, overflow="fold")
        for f in shown_rows:
            table.add_row("" if f.row is None else str(f.row), f.column or "", f.code, f.message)
        console.print(table)
    else:
        click.echo(title, err=True)
        for f in shown_rows:
            click.echo(f"  row {'-' if f.row is None else f.row}\t{f.column or '-'}\t{f.code}\t{f.message}",
                       err=True)
    if len(findings) > limit:
        click.echo(f"  ... and {len(findings) - limit} more (use --json or --report for all)", err=True)


# ---------------------------------------------------------------- validate


@main.command()
@click.argument("sheet")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with every finding on stdout.")
@click.option("--report", type=click.Path(dir_okay=False, writable=True),
              help="Write every finding to FILE (.csv or .xlsx).")
@click.option("--limit", default=20, show_default=True, help="Findings shown in the table.")
def validate(sheet: str, as_json: bool, report: str | None, limit: int) -> None:
    """Check an FK_ODS_ORDER_CREATE sheet (xlsx, xls, ods, csv) before anything is sent.

    Exit 0: every row valid; 1: some rows invalid; 2: the sheet itself cannot be used.
    """
    from fhs_bulk.validate.check import validate_sheet

    _without_pandas()
    result = validate_sheet(sheet)
    if report:
        from fhs_bulk.validate.report import write_findings

        write_findings(result, report)
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
    else:
        _print_validation(result, limit)
    sys.exit(result.exit_code)


def _print_validation(result: Any, limit: int) -> None:
    if result.sheet_error is not None:
        click.echo(f"error [{result.sheet_error.code}]: {result.sheet_error.message}", err=True)
        return
    click.echo(f"{result.source}: {result.rows} rows, {result.valid} valid, {result.invalid} invalid, "
               f"{len(result.warnings)} warnings", err=True)
    findings = result.errors + result.warnings
    if findings:
        _print_findings_table(findings, "Findings", limit)


# ---------------------------------------------------------------- sheets


@main.group()
def sheets() -> None:
    """Sheet templates and contracts."""


@sheets.command("templates")
@click.option("--out", "out_dir", default="sheets", show_default=True, type=click.Path(file_okay=False),
              help="Directory to write the templates and JSON Schemas to.")
def sheets_templates(out_dir: str) -> None:
    """Write the sheet templates (xlsx, ID columns as Text) and JSON Schemas from the contracts."""
    from fhs_bulk.sheets.contract import write_templates

    for path in write_templates(out_dir):
        click.echo(str(path))


# ---------------------------------------------------------------- logging


def _setup_logging(quiet: bool, log_file: str | None, debug: bool, live: bool) -> None:
    """Plain timestamped lines when not on a terminal (cron), nothing animated; phones always masked."""
    import logging

    from fhs_bulk.privacy import PhoneMaskFilter

    root = logging.getLogger("fhs_bulk")
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
    mask = PhoneMaskFilter()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.ERROR if quiet else (logging.DEBUG if debug else (logging.WARNING if live
                                                                                 else logging.INFO)))
    console.setFormatter(fmt)
    console.addFilter(mask)
    root.addHandler(console)
    if log_file:
        try:
            fh = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise FhsError(f"--log-file {log_file}: cannot be opened ({exc.strerror}).", code="usage") from None
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(fmt)
        fh.addFilter(mask)
        root.addHandler(fh)


def _is_terminal() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


# ---------------------------------------------------------------- upload


@main.command()
@click.argument("sheet")
@click.option("--out", "out", help="Results file (.csv or .xlsx) or a Google Sheet (URL, key, gsheet:TITLE). "
                                   "Default: <sheet>.results.csv beside the sheet.")
@click.option("--out-worksheet", help="Write the results to this worksheet of the input Google Sheet.")
@click.option("--dry-run", is_flag=True, help="Validate and look up the ledger and SRMS (read-only); send nothing.")
@click.option("--batch-size", default=1000, show_default=True, help="Orders per SRMS bulk job (1-1000).")
@click.option("--concurrency", default=4, show_default=True, help="Bulk jobs in flight at once.")
@click.option("--strict", is_flag=True, help="Send nothing if any row is invalid.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Append the full log to FILE.")
@click.option("--state-dir", envvar="FHS_STATE_DIR", help="Ledger and lock directory [env FHS_STATE_DIR].")
@click.option("--srms-url", help="SRMS base URL (overrides FHS_SRMS_URL and the config file).")
@click.option("--token-file", type=click.Path(dir_okay=False), help="File holding the SRMS token.")
@click.option("--deadline", default=1800.0, show_default=True, help="Give up retrying after this many seconds.")
@click.pass_context
def upload(ctx: click.Context, sheet: str, out: str | None, out_worksheet: str | None, dry_run: bool,
           batch_size: int, concurrency: int,
           strict: bool, as_json: bool, quiet: bool, log_file: str | None, state_dir: str | None,
           srms_url: str | None, token_file: str | None, deadline: float) -> None:
    """Register every valid order of SHEET with SRMS and write one reference ID per order.

    Exit 0: all registered; 1: some rows invalid or rejected; 2: unusable sheet or options;
    3: some orders failed for transient reasons (re-run later); 4: another upload holds the lock.
    """
    from fhs_bulk import config
    from fhs_bulk.sheets.write import table_format
    from fhs_bulk.srms.connection import connect
    from fhs_bulk.state.ledger import Ledger
    from fhs_bulk.state.lock import RunLock
    from fhs_bulk.upload.run import UploadOptions, default_out, upload_sheet, write_results

    _without_pandas()
    live = _is_terminal() and not quiet and not as_json
    _setup_logging(quiet, log_file, ctx.obj.get("debug", False), live)
    options = UploadOptions(batch_size=batch_size, concurrency=concurrency, strict=strict, dry_run=dry_run)
    options.check()
    from fhs_bulk.sheets import google as gsheets

    if out_worksheet and gsheets.parse(sheet) is None:
        raise FhsError("--out-worksheet writes into the input Google Sheet; the input here is a file (use --out).",
                       code="usage")
    out_path = sheet if out_worksheet else (out or str(default_out(sheet)))
    if gsheets.parse(out_path) is None:
        table_format(out_path)
    cfg = config.load_config()
    settings = config.srms_settings(srms_url, token_file, cfg)
    state = config.state_dir(state_dir, cfg)
    if not quiet:
        click.echo("SRMS: " + (settings.url or "embedded mock SRMS on the bundled catalogue (no FHS_SRMS_URL set)"),
                   err=True)
    lock = RunLock(state) if not dry_run else None
    if lock:
        lock.__enter__()
    try:
        ledger = Ledger(state)
        try:
            with connect(settings, deadline=deadline, connections=max(4, concurrency * 2)) as conn:
                if live:
                    result = _upload_with_progress(upload_sheet, sheet, conn, ledger, options)
                else:
                    result = upload_sheet(sheet, conn, ledger, options)
        finally:
            ledger.close()
        if not dry_run:
            write_results(result, out_path, worksheet=out_worksheet or "results")
    finally:
        if lock:
            lock.__exit__(None, None, None)
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict()) + "\n")
    if not quiet:
        _print_upload_summary(result, live)
    sys.exit(result.exit_code)


def _upload_with_progress(fn: Any, sheet: str, conn: Any, ledger: Any, options: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]uploading"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]} orders/s"), TimeRemainingColumn(),
                  console=_stderr_console(), transient=True) as bar:
        task = bar.add_task("upload", total=None, rate="-")
        import time as _time

        t0 = _time.monotonic()

        def progress(done: int, total: int) -> None:
            elapsed = max(1e-6, _time.monotonic() - t0)
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f}")

        return fn(sheet, conn, ledger, options, progress=progress)


def _print_upload_summary(result: Any, live: bool) -> None:
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
        _stderr_console().print(table)
    click.echo(line, err=True)
    problems = [r for r in result.rows if r.status in ("invalid", "rejected", "failed")][:10]
    for r in problems:
        click.echo(f"  row {r.row}\t{r.fk_order_id}\t{r.status}\t{r.code or ''}\t{r.message}", err=True)


# ---------------------------------------------------------------- srms


@main.group()
def srms() -> None:
    """The mock SRMS: serve it, and move its tickets along the journey."""


@srms.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=8787, show_default=True)
@click.option("--db", "db_path", default="srms.sqlite", show_default=True, type=click.Path(dir_okay=False),
              help="SQLite file holding all state.")
@click.option("--catalogue", type=click.Path(exists=True, dir_okay=False),
              help="Order catalogue CSV to load (default: the bundled one, when the db has none).")
@click.option("--token", help="Bearer token clients must send (visible to other users in ps: prefer "
                              "--token-file or FHS_SRMS_TOKEN).")
@click.option("--token-file", type=click.Path(dir_okay=False), help="File holding the bearer token.")
@click.option("--latency-ms", default=0.0, help="Mean added latency per request (jitter 0.5x-1.5x).")
@click.option("--rate-limit", default=0.0, help="Requests per second before 429 with Retry-After.")
@click.option("--fail-rate", default=0.0, help="Fraction of requests answered 500/503 before doing anything.")
@click.option("--drop-rate", default=0.0, help="Fraction of requests whose work is committed, then the "
                                               "connection dropped without an answer.")
@click.option("--max-jobs", default=0, help="Bulk jobs open at once before 429.")
@click.option("--job-delay-ms", default=0.0, help="A new job reads 'in_progress' for this long.")
@click.option("--seed", type=int, help="Seed for the knobs' randomness.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def srms_serve(host: str, port: int, db_path: str, catalogue: str | None, token: str | None,
               token_file: str | None, latency_ms: float, rate_limit: float, fail_rate: float,
               drop_rate: float, max_jobs: int, job_delay_ms: float, seed: int | None, log_level: str) -> None:
    """Run the mock SRMS over HTTP (FastAPI on uvicorn). API docs at /docs, schema at /openapi.json."""
    from fhs_bulk.config import read_token_file
    from fhs_bulk.srms.mock import catalogue as cat
    from fhs_bulk.srms.mock.app import Chaos, serve
    from fhs_bulk.srms.mock.store import Store

    secret = token or (read_token_file(token_file) if token_file else os.environ.get("FHS_SRMS_TOKEN"))
    if not secret:
        raise FhsError("give the token clients must send: --token-file FILE, FHS_SRMS_TOKEN or --token.",
                       code="no-token")
    for name, value in (("--fail-rate", fail_rate), ("--drop-rate", drop_rate)):
        if not 0 <= value <= 1:
            raise FhsError(f"{name} is a fraction between 0 and 1.", code="usage")
    store = Store(db_path)
    if catalogue:
        loaded = store.load_catalogue(cat.load(catalogue))
    elif not store.catalogue:
        loaded = store.load_catalogue(cat.load(cat.bundled_path()))
    else:
        loaded = 0
    chaos = Chaos(latency_ms, rate_limit, fail_rate, drop_rate, max_jobs, job_delay_ms, seed)
    click.echo(f"SRMS mock on http://{host}:{port} (db {db_path}; {len(store.catalogue)} catalogue orders"
               f"{f', {loaded} loaded now' if loaded else ''})", err=True)
    click.echo(f"realism knobs: {chaos.describe()}" + ("  <- THIS SERVER MISBEHAVES ON PURPOSE" if chaos.active
                                                       else ""), err=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}, not loopback", err=True)
    try:
        serve(store, secret, host, port, chaos, log_level=log_level)
    finally:
        store.close()


@srms.command("advance")
@click.option("--db", "db_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--until", required=True, help="Move tickets forward up to this date (YYYY-MM-DD).")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def srms_advance(db_path: str, until: str, seed: int, as_json: bool) -> None:
    """Move every open ticket through the journey up to a date, with realistic odds (deterministic)."""
    from datetime import date

    from fhs_bulk.srms.mock.journey import advance
    from fhs_bulk.srms.mock.store import Store

    try:
        until_date = date.fromisoformat(until)
    except ValueError:
        raise FhsError(f"--until '{until}' is not a date; write YYYY-MM-DD.", code="usage") from None
    store = Store(db_path)
    try:
        result = advance(store, until_date, seed)
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(result.__dict__) + "\n")
    else:
        click.echo(f"moved {result.tickets} open tickets: {result.events} status changes", err=True)
        for status, n in result.by_state.items():
            click.echo(f"  {status}: {n}", err=True)


# ---------------------------------------------------------------- tickets


def _srms_options(f: Any) -> Any:
    f = click.option("--srms-url", help="SRMS base URL (overrides FHS_SRMS_URL and the config file).")(f)
    f = click.option("--token-file", type=click.Path(dir_okay=False), help="File holding the SRMS token.")(f)
    return click.option("--state-dir", envvar="FHS_STATE_DIR", help="Ledger directory [env FHS_STATE_DIR].")(f)


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
@_srms_options
def ticket_create(order: str | None, name: str | None, phone: str | None, address: str | None, city: str | None,
                  pincode: str | None, service: str | None, preferred_date: str | None, remarks: str,
                  from_file: str | None, tracker: str | None, out: str | None, as_json: bool,
                  srms_url: str | None, token_file: str | None, state_dir: str | None) -> None:
    """Create one ticket from options, or one per row with --from; print the Service Ticket ID.

    Exit 0: created (or found again); 1: invalid request or tracker conflict; 2: unusable input;
    3: SRMS unreachable.
    """
    from fhs_bulk.tickets.batch import create_tickets

    raw = {"order": order, "name": name, "phone": phone, "address": address, "city": city, "pincode": pincode,
           "service": service, "preferred_date": preferred_date, "remarks": remarks}
    if from_file and any(v for k, v in raw.items() if k != "remarks"):
        raise FhsError("give either --from FILE or the ticket options, not both.", code="usage")
    result = create_tickets(raw if not from_file else None, from_file=from_file, tracker=tracker,
                            srms_url=srms_url, token_file=token_file, state_dir=state_dir, out=out)
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
@_srms_options
def ticket_show(ticket_id: str, as_json: bool, srms_url: str | None, token_file: str | None,
                state_dir: str | None) -> None:
    """Status, sub-status, SPD and history of a ticket (Service Ticket ID or BK- reference)."""
    from fhs_bulk import config
    from fhs_bulk.privacy import mask_phone
    from fhs_bulk.srms.connection import connect

    settings = config.srms_settings(srms_url, token_file)
    with connect(settings, deadline=60) as conn:
        t = conn.client.get_ticket(ticket_id.strip())
    if t is None:
        raise FhsError(f"SRMS has no ticket {ticket_id}.", code="ticket-not-found", exit_code=Exit.DATA)
    data = t.model_dump()
    data["phone"] = mask_phone(data["phone"])
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
        return
    click.echo(f"{t.ticket_id}  {t.reference_id or ''}  order {t.fk_order_id}  {t.service}")
    click.echo(f"status {t.status} / {t.sub_status}   SPD {t.spd}   customer {t.customer_name} "
               f"{data['phone']} {t.city} {t.pincode}")
    for h in t.history:
        click.echo(f"  {h.at}  {h.status} / {h.sub_status}  {h.remark}")


# ---------------------------------------------------------------- tracker


@main.group()
def tracker() -> None:
    """The 'Tracker for installation (ODS)' sheet."""


@tracker.command("update")
@click.argument("tracker_path", metavar="TRACKER")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), help="An upload results file.")
@click.option("--from-ledger", is_flag=True, help="Take every registration the local ledger knows.")
@click.option("--json", "as_json", is_flag=True)
@_srms_options
def tracker_update(tracker_path: str, from_file: str | None, from_ledger: bool, as_json: bool,
                   srms_url: str | None, token_file: str | None, state_dir: str | None) -> None:
    """Fill Reference ID and SRM ID from upload results; add rows for orders not yet in the tracker.

    Exit 0: no conflict; 1: some rows hold a different ID (left alone, listed); 2: unusable input.
    """
    from fhs_bulk.tracker import sheet as trk

    if bool(from_file) == from_ledger:
        raise FhsError("give exactly one of --from RESULTS or --from-ledger.", code="usage")
    if from_file:
        registrations = trk.registrations_from_results(from_file)
    else:
        from fhs_bulk import config
        from fhs_bulk.state.ledger import Ledger

        settings = config.srms_settings(srms_url, token_file)
        ledger = Ledger(config.state_dir(state_dir))
        try:
            identity = settings.url or _embedded_identity()
            registrations = [(o, r or "", t or "") for o, r, t in ledger.registrations(identity)]
        finally:
            ledger.close()
    result = trk.update_tracker(tracker_path, registrations)
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict()) + "\n")
    else:
        click.echo(f"{tracker_path}: {result.updated} updated, {result.added} added, {result.unchanged} unchanged, "
                   f"{len(result.conflicts)} conflicts", err=True)
        for c in result.conflicts[:20]:
            click.echo(f"  row {c['row']} {c['fk_order_id']}: {c['column']} is {c['tracker']} in the tracker, "
                       f"{c['srms']} in SRMS (left alone)", err=True)
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
@_srms_options
def tracker_reconcile(tracker_path: str, as_of: str | None, stuck_days: int, write: bool, report: str | None,
                      as_json: bool, concurrency: int, srms_url: str | None, token_file: str | None,
                      state_dir: str | None) -> None:
    """Check every tracker row against SRMS and say what support does next.

    Exit 0: nothing needs attention; 1: findings (the worklist is not empty); 2: unusable tracker or
    options; 3: SRMS unreachable.
    """
    from datetime import date

    from fhs_bulk import config
    from fhs_bulk.srms.connection import connect
    from fhs_bulk.tickets.single import today_ist
    from fhs_bulk.tracker.reconcile import reconcile

    try:
        day = date.fromisoformat(as_of) if as_of else today_ist()
    except ValueError:
        raise FhsError(f"--as-of '{as_of}' is not a date; write YYYY-MM-DD.", code="usage") from None
    if stuck_days < 1:
        raise FhsError("--stuck-days must be 1 or more.", code="usage")
    if report and not report.lower().endswith((".xlsx", ".html", ".htm")):
        raise FhsError(f"--report {report}: name a .xlsx or .html file.", code="usage")
    settings = config.srms_settings(srms_url, token_file)
    with connect(settings, deadline=300, connections=max(4, concurrency)) as conn:
        result = reconcile(tracker_path, conn, as_of=day, stuck_days=stuck_days, write=write,
                           concurrency=concurrency)
    if report:
        from fhs_bulk.tracker.report import write_report

        write_report(result, report)
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), sort_keys=True, ensure_ascii=False) + "\n")
    else:
        s = result.summary()
        click.echo(f"{tracker_path} as of {day.isoformat()}: {s['rows']} rows, {s['needing_attention']} need "
                   f"attention" + (f"; {result.written} rows written" if write else ""), err=True)
        for code, n in s["by_finding"].items():
            click.echo(f"  {code}: {n}", err=True)
    sys.exit(result.exit_code)


def _embedded_identity() -> str:
    from fhs_bulk.srms.mock.embedded import default_db_path

    return f"embedded:{default_db_path()}"
