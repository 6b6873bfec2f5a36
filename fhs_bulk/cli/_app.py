"""The root command group and how errors reach the user: one ``error: ... [code]`` line and the
registered exit code, with ``--debug`` adding the traceback and changing nothing else."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from fhs_bulk import __version__
from fhs_bulk.errors import Exit, FhsError

EPILOG = ("Exit codes: 0 ok, 1 data problems (rows invalid/rejected/conflicting), 2 unusable input or "
          "command line, 3 SRMS unreachable or transient failures (re-run later), 4 another run holds the lock, "
          "70 internal error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).")


def error_line(err: FhsError) -> str:
    return f"error: {err.message} [{err.code}]"


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.obj and ctx.obj.get("debug")) or _env_debug()
        try:
            return super().invoke(ctx)
        except FhsError as err:
            if debug:
                traceback.print_exc(file=sys.stderr)
            click.echo(error_line(err), err=True)
            ctx.exit(err.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # `fhs-bulk validate S | head`: the reader left; not an error of ours
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(Exit.BROKEN_PIPE)
        except KeyboardInterrupt:
            click.echo("error: interrupted; nothing more was sent [interrupted]", err=True)
            ctx.exit(Exit.INTERRUPTED)
        except Exception as err:  # a bug, not a user's mistake: say so, briefly
            if debug:
                traceback.print_exc(file=sys.stderr)
            click.echo(f"internal error: {type(err).__name__}: {str(err)[:300]} "
                       "(run again with --debug for the traceback, and report it)", err=True)
            ctx.exit(Exit.INTERNAL)


def _env_debug() -> bool:
    return os.environ.get("FHS_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


@click.group(cls=Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fhs-bulk")
@click.option("--debug", is_flag=True, envvar="FHS_DEBUG", help="Add tracebacks and HTTP details (never tokens); "
                                                                "exit codes stay the same.")
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
