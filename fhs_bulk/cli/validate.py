"""`fhs-bulk validate` and `fhs-bulk sheets templates`."""

from __future__ import annotations

import sys
from typing import Any

import click

from fhs_bulk.cli._app import main
from fhs_bulk.cli._common import plural, print_findings_table, without_pandas


@main.command()
@click.argument("sheet")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with every finding on stdout.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write every finding to FILE (.csv or .xlsx).")
@click.option("--limit", default=20, show_default=True, help="Findings shown in the table.")
def validate(sheet: str, as_json: bool, report: str | None, limit: int) -> None:
    """Check an FK_ODS_ORDER_CREATE sheet (xlsx, xls, ods, csv) before anything is sent.

    The report goes to stdout; errors to stderr. Exit 0: every row valid; 1: some rows invalid;
    2: the sheet itself cannot be used.
    """
    from fhs_bulk.validate.check import validate_sheet

    without_pandas()
    if report:
        from fhs_bulk.sheets.write import check_writable

        check_writable(report, what="--report")
    result = validate_sheet(sheet)
    if report:
        from fhs_bulk.validate.report import write_findings

        write_findings(result, report)
    if as_json:
        result.write_json(sys.stdout)
    else:
        _print_validation(result, limit, report)
    sys.exit(result.exit_code)


def _print_validation(result: Any, limit: int, report: str | None) -> None:
    if result.sheet_error is not None:
        click.echo(f"error: {result.sheet_error.message} [{result.sheet_error.code}]", err=True)
        return
    click.echo(f"{result.source}: {plural(result.rows, 'row')}, {result.valid} valid, {result.invalid} invalid, "
               f"{plural(len(result.warnings), 'warning')}")
    findings = result.errors + result.warnings
    if findings:
        print_findings_table(findings, "Findings", limit,
                             see=f"see {report}" if report else "use --json or --report FILE for all")


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
