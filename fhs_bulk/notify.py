"""Telling people how a run ended: an incoming webhook (Slack and Google Chat both take ``{"text": ...}``)
or an e-mail through SMTP (``mailto:ADDR``, with the results file or report attached when small).

A notification never changes a run's exit code and never holds cron for long: a few seconds' timeout,
one retry, then a WARNING. No phone number, token or password goes into a message.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhs_bulk.errors import ConfigError, UsageError, exit_meaning
from fhs_bulk.privacy import mask_phone

log = logging.getLogger("fhs_bulk.notify")

TIMEOUT_S = 5.0
MAX_ATTACHMENT = 10 * 1024 * 1024
SHOWN_ROWS = 10


@dataclass
class Summary:
    """What happened, in the words a message needs."""

    command: str
    sheet: str | None
    exit_code: int
    run_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    problem_rows: list[int] = field(default_factory=list)
    attachment: str | None = None
    host: str = ""

    def next_step(self) -> str:
        see = f"see `fhs-bulk runs show {self.run_id}`" if self.run_id else "see the log"
        if self.exit_code == 0:
            return "nothing to do"
        if self.exit_code == 3:
            return f"re-run later (the same command finishes the rest); {see}"
        if self.exit_code == 1 and self.problem_rows:
            rows = ", ".join(str(r) for r in self.problem_rows[:SHOWN_ROWS])
            more = f" and {len(self.problem_rows) - SHOWN_ROWS} more" if len(self.problem_rows) > SHOWN_ROWS else ""
            return f"fix rows {rows}{more} in the sheet; {see}"
        if self.exit_code in (130, 143):
            return f"run the same command again to finish; {see}"
        return see

    def text(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v) or "nothing counted"
        lines = [f"fhs-bulk {self.command}" + (f" {self.sheet}" if self.sheet else "")
                 + f": exit {self.exit_code} ({exit_meaning(self.exit_code)})",
                 counts, f"Next: {self.next_step()}"]
        if self.run_id:
            lines.append(f"Run {self.run_id}" + (f" on {self.host}" if self.host else ""))
        return mask_phone("\n".join(lines))


def wanted(when: str, exit_code: int) -> bool:
    """``problems``: any exit but 0; ``failure``: the run itself failed (2 and up), not data problems."""
    if when == "always":
        return True
    if when == "problems":
        return exit_code != 0
    return exit_code >= 2


def targets(flags: Sequence[str], config: dict[str, Any]) -> list[str]:
    """--notify flags, else FHS_NOTIFY (comma-separated), else the config file's ``notify = [...]``."""
    chosen = list(flags)
    if not chosen and os.environ.get("FHS_NOTIFY"):
        chosen = [t.strip() for t in os.environ["FHS_NOTIFY"].split(",") if t.strip()]
    if not chosen:
        value = config.get("notify") or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError('the config file\'s notify must be a list of targets, e.g. notify = ["mailto:ops@x.in"]',
                              code="config")
        chosen = value
    for t in chosen:
        check_target(t)
    return chosen


def check_target(target: str) -> None:
    if target.startswith(("https://", "http://")) or (target.startswith("mailto:") and "@" in target):
        return
    raise UsageError(f"--notify {target!r}: give an https:// webhook URL or mailto:ADDRESS.", code="usage")


def send(summary: Summary, to: Sequence[str], config: dict[str, Any]) -> list[str]:
    """Send to every target; returns the warnings for those that could not be reached."""
    warnings = []
    for target in to:
        try:
            if target.startswith("mailto:"):
                _mail(summary, target[len("mailto:"):], config.get("smtp") or {})
            else:
                _webhook(summary, target)
        except Exception as exc:  # a notification must never change the run's outcome
            where = target.split("?")[0] if not target.startswith("mailto:") else target
            shown = where if target.startswith("mailto:") else _redact(where)
            warnings.append(f"notification to {shown} could not be delivered ({type(exc).__name__}: "
                            f"{_clean(str(exc), config)})")
            log.warning("%s", warnings[-1])
    return warnings


def _redact(url: str) -> str:
    """Webhook URLs carry their secret in the path: show the host only."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..."


def _clean(text: str, config: dict[str, Any]) -> str:
    secret = _password(config.get("smtp") or {}, quiet=True)
    if secret:
        text = text.replace(secret, "***")
    return mask_phone(text)[:200]


def _webhook(summary: Summary, url: str) -> None:
    import httpx

    body = {"text": summary.text()}
    last: Exception | None = None
    for attempt in range(2):  # one retry
        try:
            resp = httpx.post(url, json=body, timeout=TIMEOUT_S)
            if resp.status_code < 300:
                return
            last = RuntimeError(f"HTTP {resp.status_code}")
            if resp.status_code < 500 and resp.status_code != 429:
                break
        except httpx.HTTPError as exc:
            last = exc
        if attempt == 0:
            time.sleep(0.5)
    assert last is not None
    raise last


def _password(smtp: dict[str, Any], *, quiet: bool = False) -> str | None:
    path = smtp.get("password_file")
    if not path:
        return None
    try:
        return Path(str(path)).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        if quiet:
            return None
        raise ConfigError(f"[smtp] password_file {path}: cannot be read ({exc.strerror}).", code="config") from exc


def _mail(summary: Summary, address: str, smtp: dict[str, Any]) -> None:
    import smtplib  # here, not at the top: every command imports this module, few send mail
    import ssl
    from email.message import EmailMessage

    host = smtp.get("host") or "localhost"
    port = int(smtp.get("port") or 25)
    msg = EmailMessage()
    msg["Subject"] = (f"fhs-bulk {summary.command}: exit {summary.exit_code} ({exit_meaning(summary.exit_code)})"
                      + (f" {Path(summary.sheet).name}" if summary.sheet else ""))
    msg["From"] = str(smtp.get("from") or f"fhs-bulk@{summary.host or 'localhost'}")
    msg["To"] = address
    msg.set_content(summary.text() + "\n")
    if summary.attachment and Path(summary.attachment).is_file():
        p = Path(summary.attachment)
        if p.stat().st_size <= MAX_ATTACHMENT:
            kind = {".csv": ("text", "csv"), ".html": ("text", "html"),
                    ".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
            maintype, subtype = kind.get(p.suffix.lower(), ("application", "octet-stream"))
            msg.add_attachment(p.read_bytes(), maintype=maintype, subtype=subtype, filename=p.name)
    last: Exception | None = None
    for attempt in range(2):
        try:
            with smtplib.SMTP(host, port, timeout=TIMEOUT_S) as server:
                if smtp.get("starttls"):
                    server.starttls(context=ssl.create_default_context())
                if smtp.get("user"):
                    server.login(str(smtp["user"]), _password(smtp) or "")
                server.send_message(msg)
            return
        except (OSError, smtplib.SMTPException) as exc:
            last = exc
            if attempt == 0:
                time.sleep(0.5)
    assert last is not None
    raise last
