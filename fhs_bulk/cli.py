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
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Register Flipkart Home Services ODS orders as SRMS service tickets and keep the tracker true."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


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
    from fhs_bulk.validate import validate_sheet

    result = validate_sheet(sheet)
    if report:
        from fhs_bulk.findings_report import write_findings

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
    from fhs_bulk.contract import write_templates

    for path in write_templates(out_dir):
        click.echo(str(path))


def run() -> None:  # pragma: no cover - console entry for python -m
    main(prog_name="fhs-bulk", auto_envvar_prefix=None)


if os.environ.get("FHS_BULK_NO_MAIN") is None and __name__ == "__main__":  # pragma: no cover
    run()
