"""`fhs-bulk samples make`: an order sheet for a rehearsal night, matching `srms serve --orders N`."""

from __future__ import annotations

import click

from fhs_bulk.cli._app import main
from fhs_bulk.errors import UsageError


@main.group()
def samples() -> None:
    """Sample sheets for rehearsing a night."""


@samples.command("make")
@click.option("--orders", type=int, required=True, help="Orders in the sheet (the catalogue of srms serve --orders).")
@click.option("--seed", type=int, default=7, show_default=True, help="The same seed as srms serve --seed.")
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Directory to write FK_ODS_ORDER_CREATE.csv (or .xlsx) into.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
def samples_make(orders: int, seed: int, out_dir: str, fmt: str) -> None:
    """Write a night's order sheet for the N generated orders: mostly good, with a realistic share of
    the mistakes the validator catches (lower case, invisible spaces, duplicates, a digit short) and
    orders SRMS refuses (non-ODS FSN, services not bulk-eligible, unknown orders)."""
    from fhs_bulk.srms.mock.rehearsal import write_sheet

    if orders < 1:
        raise UsageError("--orders is a number of orders, 1 or more.", code="usage")
    click.echo(str(write_sheet(out_dir, orders, seed, fmt=fmt)))
