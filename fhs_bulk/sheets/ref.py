"""A sheet reference, parsed once at the edge: a local file, or a Google Sheet (URL, key, gsheet:TITLE).

Everything below the CLI and the Python API takes a :class:`SheetRef`, so "is this a Google Sheet or
a file?" is decided here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fhs_bulk.errors import UsageError

_URL = re.compile(r"https?://docs\.google\.com/spreadsheets/d/([A-Za-z0-9_-]+)[^#]*(?:#gid=([0-9]+))?")
_KEY = re.compile(r"[A-Za-z0-9_-]{25,}")


@dataclass(frozen=True)
class GoogleRef:
    key: str | None = None
    title: str | None = None
    worksheet: str | None = None
    gid: int | None = None

    def __str__(self) -> str:
        return self.key or f"gsheet:{self.title}"


def parse_google(source: str) -> GoogleRef | None:
    """The Google Sheet a source names, or None for a local file."""
    if source.startswith("gsheet:"):
        rest = source[len("gsheet:"):]
        title, _, worksheet = rest.partition("/")
        if not title:
            raise UsageError("gsheet: needs a spreadsheet title, e.g. gsheet:FK_ODS_ORDER_CREATE", code="usage")
        return GoogleRef(title=title, worksheet=worksheet or None)
    m = _URL.match(source)
    if m:
        return GoogleRef(key=m.group(1), gid=int(m.group(2)) if m.group(2) else None)
    if _KEY.fullmatch(source) and not Path(source).exists():
        return GoogleRef(key=source)
    return None


@dataclass(frozen=True)
class SheetRef:
    """What the user named: ``text`` as given, and either a ``google`` reference or a local ``path``."""

    text: str
    google: GoogleRef | None = None

    @classmethod
    def parse(cls, source: str | Path | SheetRef) -> SheetRef:
        if isinstance(source, SheetRef):
            return source
        text = str(source)
        return cls(text, parse_google(text))

    @property
    def is_google(self) -> bool:
        return self.google is not None

    @property
    def path(self) -> Path:
        """The local file (only for a file reference)."""
        if self.google is not None:
            raise TypeError(f"{self.text} is a Google Sheet, not a file")
        return Path(self.text)

    @property
    def stem(self) -> str:
        """The sheet's name as the contract sees it: a file's name without extension, or the whole reference."""
        return self.text if self.google is not None else Path(self.text).stem

    def __str__(self) -> str:
        return self.text
