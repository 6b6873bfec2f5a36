"""`fhs-bulk services`: the services SRMS knows, their line, whether bulk registration takes them, TAT."""

from __future__ import annotations

import json
import sys

import click

from fhs_bulk.cli._app import main


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def services(as_json: bool) -> None:
    """List every service: name, line (installation, mobile-repair, large-repair), bulk-eligible, TAT days."""
    from fhs_bulk import domain

    rows = [{"name": name, "line": domain.SERVICE_LINES[name], "bulk_eligible": name in domain.BULK_ELIGIBLE_SERVICES,
             "tat_days": domain.SERVICE_TAT_DAYS.get(name, 2)} for name in domain.KNOWN_SERVICES]
    if as_json:
        sys.stdout.write(json.dumps({"services": rows}) + "\n")
        return
    width = max(len(r["name"]) for r in rows)  # type: ignore[arg-type]
    click.echo(f"{'service':<{width}}  {'line':<13}  bulk  TAT days")
    for r in rows:
        bulk = "yes" if r["bulk_eligible"] else "no"
        click.echo(f"{r['name']:<{width}}  {r['line']:<13}  {bulk:<4}  {r['tat_days']}")
