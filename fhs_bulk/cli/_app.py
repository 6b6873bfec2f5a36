"""The root command group and how errors reach the user: one ``error: ... [code]`` line and the
registered exit code, with ``--debug`` adding the traceback and changing nothing else."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import traceback
from typing import Any

import click

from fhs_bulk import __version__
from fhs_bulk.errors import Exit, FhsError, Terminated, exit_meaning
from fhs_bulk.gcpause import paused_gc

log = logging.getLogger("fhs_bulk")

EPILOG = ("Exit codes: 0 ok, 1 data problems (rows invalid/rejected/conflicting), 2 unusable input or "
          "command line, 3 SRMS unreachable or transient failures (re-run later), 4 another run holds the lock, "
          "70 internal error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).")


def error_line(err: FhsError) -> str:
    return f"error: {err.message} [{err.code}]"


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


class Group(click.Group):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The console script's entry (tests call ``main`` itself): the process ends with the command,
        so what it leaves is frozen out of the interpreter's last collection, a full pass over every
        object (a reconcile of 100,000 rows leaves millions: ~0.15 s). numpy is told not to ask for
        transparent huge pages (unless the environment says otherwise): in a process this short the
        kernel's compaction at first touch costs (~20 ms on a 1M-row validate) and saves nothing. And
        httpx is kept from importing its own command line (rich, pygments and click, whenever they are
        installed: ~40 ms of every command that talks to SRMS), which this process never runs."""
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None: that import fails at once
        try:
            return super().__call__(*args, **kwargs)
        finally:
            gc.freeze()

    def invoke(self, ctx: click.Context) -> Any:
        def debug() -> bool:  # known only once the root callback has run
            return bool(ctx.obj and ctx.obj.get("debug")) or _env_debug()

        if ctx.protected_args or ctx.args:  # a command will run (not just --help / --version)
            with contextlib.suppress(ValueError):  # not in the main thread (CliRunner in a thread)
                signal.signal(signal.SIGTERM, _on_sigterm)
        code: int = Exit.OK
        try:
            # One command, then the process ends: its bulk objects make no cycles worth collecting
            # (see fhs_bulk.gcpause), so the whole command runs with the collector paused.
            with paused_gc():
                return super().invoke(ctx)
        except FhsError as err:
            if debug():
                traceback.print_exc(file=sys.stderr)
            click.echo(error_line(err), err=True)
            code = err.exit_code
            if log.handlers:  # only where logging was set up (e.g. --log-file); else the line above says it
                log.error("%s [%s]", err.message, err.code)
            ctx.exit(err.exit_code)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            raise
        except click.exceptions.Exit as exc:
            code = exc.exit_code
            raise
        except (click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # `fhs-bulk validate S | head`: the reader left; not an error of ours
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(Exit.BROKEN_PIPE)
        except KeyboardInterrupt as exc:
            code = Exit.TERMINATED if isinstance(exc, Terminated) else Exit.INTERRUPTED
            what = "terminated" if code == Exit.TERMINATED else "interrupted"
            click.echo(f"error: {what}; nothing more was done [{what}]", err=True)
            ctx.exit(code)
        except Exception as err:  # a bug, not a user's mistake: say so, briefly
            if debug():
                traceback.print_exc(file=sys.stderr)
            click.echo(f"internal error: {type(err).__name__}: {str(err)[:300]} "
                       "(run again with --debug for the traceback, and report it)", err=True)
            code = Exit.INTERNAL
            ctx.exit(Exit.INTERNAL)
        finally:
            _log_outcome(ctx, code)
            from fhs_bulk.cli._common import restore_pandas

            restore_pandas()


def _log_outcome(ctx: click.Context, code: int) -> None:
    """The last line a run leaves in its log: what it did and how it ended (cron reads this)."""
    summary = (ctx.obj or {}).get("outcome")
    if not log.handlers:
        return
    log.info("outcome: exit %d (%s)%s", code, exit_meaning(code), f"; {summary}" if summary else "")


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
