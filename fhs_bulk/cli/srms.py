"""`fhs-bulk srms`: serve the mock SRMS and move its tickets along the journey."""

from __future__ import annotations

import json
import os
import sys

import click

from fhs_bulk.cli._app import main
from fhs_bulk.errors import ConfigError, UsageError


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
@click.option("--orders", type=int, default=0,
              help="Also load N generated orders, the same for the same --seed (for rehearsals; see `samples make`).")
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
def srms_serve(host: str, port: int, db_path: str, catalogue: str | None, orders: int, token: str | None,
               token_file: str | None, latency_ms: float, rate_limit: float, fail_rate: float,
               drop_rate: float, max_jobs: int, job_delay_ms: float, seed: int | None, log_level: str) -> None:
    """Run the mock SRMS over HTTP (FastAPI on uvicorn). API docs at /docs, schema at /openapi.json."""
    import gc

    from fhs_bulk.config import read_token_file

    gc.enable()  # a server runs for days: it collects cycles as usual (other commands pause it; see gcpause)
    from fhs_bulk.srms.mock import catalogue as cat
    from fhs_bulk.srms.mock.app import Chaos, serve

    secret = token or (read_token_file(token_file) if token_file else os.environ.get("FHS_SRMS_TOKEN"))
    if not secret:
        raise ConfigError("give the token clients must send: --token-file FILE, FHS_SRMS_TOKEN or --token.",
                       code="no-token")
    for name, value in (("--fail-rate", fail_rate), ("--drop-rate", drop_rate)):
        if not 0 <= value <= 1:
            raise UsageError(f"{name} is a fraction between 0 and 1.", code="usage")
    store, loaded = cat.open_store(db_path, catalogue)
    if orders:
        from fhs_bulk.srms.mock.rehearsal import orders as generated

        if orders < 0:
            raise UsageError("--orders is a number of orders, 1 or more.", code="usage")
        loaded += store.load_catalogue(generated(orders, seed if seed is not None else 7))
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
        raise UsageError(f"--until '{until}' is not a date; write YYYY-MM-DD.", code="usage") from None
    store = Store(db_path)
    try:
        result = advance(store, until_date, seed)
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps(result.__dict__) + "\n")
    else:
        click.echo(f"moved {result.tickets} open tickets: {result.events} status changes")
        for status, n in result.by_state.items():
            click.echo(f"  {status}: {n}")
