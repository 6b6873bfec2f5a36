"""What the commands share: SRMS/state options, logging, the consoles, hiding pandas from pyarrow."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import click

from fhs_bulk.errors import UsageError


def srms_options(f: Any) -> Any:
    """--srms-url, --token-file, --state-dir: the settings a session is opened from (flags > env > config)."""
    f = click.option("--srms-url", help="SRMS base URL (overrides FHS_SRMS_URL and the config file).")(f)
    f = click.option("--token-file", type=click.Path(dir_okay=False), help="File holding the SRMS token "
                                                                           "(overrides FHS_SRMS_TOKEN).")(f)
    return click.option("--state-dir", envvar="FHS_STATE_DIR", help="Ledger and lock directory [env FHS_STATE_DIR].")(f)


@contextlib.contextmanager
def stop_on_signals(session: Any) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask the session to stop cleanly (no new batch; results written) instead of
    raising wherever the main thread happens to be."""
    def handler(signum: int, frame: Any) -> None:
        session.stop(signum)

    previous: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread (e.g. CliRunner in a thread)
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def deadline_option(default: float) -> Any:
    """--deadline: how long SRMS may stay unreachable before the command gives up with exit 3."""
    return click.option("--deadline", default=default, show_default=True, type=float,
                        help="Give up retrying SRMS after this many seconds (exit 3).")


def open_session(srms_url: str | None, token_file: str | None, state_dir: str | None, **kwargs: Any) -> Any:
    from fhs_bulk.session import Session

    return Session.from_settings(srms_url=srms_url, token_file=token_file, state_dir=state_dir, **kwargs)


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


def without_pandas() -> None:
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


def restore_pandas() -> None:
    """Remove the hook when a command ends (the CLI may run inside a notebook or a test process)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _NoPandas)]


def stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=False)


def is_terminal() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


class _LogFile(logging.FileHandler):
    """A log file that cannot be written (a full disk) says so once on stderr, not a traceback per line."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            exc = sys.exc_info()[1]
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            click.echo(f"warning: --log-file {self.baseFilename}: cannot write ({why}); logging to it stops", err=True)


def setup_logging(quiet: bool, log_file: str | None, debug: bool, live: bool) -> None:
    """Plain timestamped lines (with UTC offset) when not on a terminal (cron), nothing animated;
    phones always masked."""
    from fhs_bulk.privacy import PhoneMaskFilter

    root = logging.getLogger("fhs_bulk")
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
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
            fh = _LogFile(log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--log-file {log_file}: cannot be opened ({exc.strerror}); the directory must exist "
                             "and be writable.", code="usage") from None
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(fmt)
        fh.addFilter(mask)
        root.addHandler(fh)


def print_findings_table(findings: list[Any], title: str, limit: int, *, see: str = "use --json or --report") -> None:
    """Findings on stdout: a rich table on a terminal, tab-separated lines otherwise; a cut list says so."""
    shown_rows = findings[:limit]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_lines=False)
        for col in ("row", "column", "severity", "code", "message"):
            table.add_column(col, overflow="fold")
        for f in shown_rows:
            table.add_row("" if f.row is None else str(f.row), f.column or "", f.severity, f.code, f.message)
        Console(highlight=False).print(table)
    else:
        click.echo(title)
        for f in shown_rows:
            click.echo(f"  row {'-' if f.row is None else f.row}\t{f.column or '-'}\t{f.severity}\t{f.code}\t"
                       f"{f.message}")
    if len(findings) > limit:
        click.echo(f"  ... and {len(findings) - limit} more: {see}")


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def notify_options(f: Any) -> Any:
    """--notify TARGET (repeatable; FHS_NOTIFY; config `notify = [...]`) and --notify-on."""
    f = click.option("--notify-on", type=click.Choice(["always", "problems", "failure"]), default="problems",
                     show_default=True, help="When to notify: always; problems (exit not 0); failure (exit 2 and "
                                             "up: the run itself failed).")(f)
    return click.option("--notify", "notify", multiple=True, metavar="TARGET",
                        help="https:// webhook URL (Slack, Google Chat) or mailto:ADDRESS; repeatable "
                             "[env FHS_NOTIFY, comma-separated].")(f)


def run_args() -> list[str]:
    """The command line as recorded in the run history: phone numbers masked, no token ever."""
    from fhs_bulk.privacy import mask_phone

    args = sys.argv[1:]
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            out.append("***")
            skip = False
            continue
        if a in ("--token",):
            skip = True
        out.append(mask_phone(a))
    return out


@contextlib.contextmanager
def recorded_run(session: Any, command: str, *, sheet: str | None = None, dry_run: bool = False,
                 notify: tuple[str, ...] = (), notify_on: str = "problems") -> Iterator[Any]:
    """Record the run in the history and, when it ends (however it ends), notify whoever asked.

    The command sets ``rec.exit_code``, ``rec.counts``, ``rec.outputs`` and ``rec.rows`` as it learns them.
    """
    import socket

    from fhs_bulk import notify as notify_mod
    from fhs_bulk.errors import Exit, FhsError

    config = session.config
    to = notify_mod.targets(notify, config)
    code: int = Exit.OK
    rec: Any = None
    try:
        with session.record(command, run_args(), sheet=sheet, dry_run=dry_run) as rec:
            yield rec
            code = rec.exit_code if rec.exit_code is not None else Exit.OK
    except FhsError as exc:
        code = exc.exit_code
        raise
    except KeyboardInterrupt as exc:
        from fhs_bulk.errors import Terminated

        code = Exit.TERMINATED if isinstance(exc, Terminated) else Exit.INTERRUPTED
        raise
    except Exception:
        code = Exit.INTERNAL
        raise
    finally:
        if to and notify_mod.wanted(notify_on, code):
            problems = []
            if rec is not None and rec.rows and rec.columns and "status" in rec.columns:
                s, r = rec.columns.index("status"), rec.columns.index("row")
                rows = rec.rows.lists() if hasattr(rec.rows, "lists") else rec.rows  # an upload's ResultRows
                problems = [row[r] for row in rows if row[s] in ("rejected", "invalid", "conflict")]
            summary = notify_mod.Summary(command, sheet, int(code), rec.run_id if rec else None,
                                         dict(rec.counts) if rec else {}, problems,
                                         (rec.outputs.get("results") or rec.outputs.get("report")) if rec else None,
                                         socket.gethostname())
            for warning in notify_mod.send(summary, to, config):
                click.echo(f"warning: {warning}", err=True)
