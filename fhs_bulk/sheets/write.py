"""Writing tables the tool produces (results, findings) to CSV or xlsx: atomic and formula-safe."""

from __future__ import annotations

import csv
import errno
import io
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fhs_bulk.errors import DiskFull, OutputError

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"  # a BOM and zero-width characters a cell may start with
RISKY_FIRST = frozenset("".join(FORMULA_STARTS) + INVISIBLE)  # one set lookup for the common, safe cell


def defuse(value: Any) -> Any:
    """Text a spreadsheet would evaluate as a formula gets a leading apostrophe (OWASP CSV injection),
    also when its first visible character comes after a BOM or zero-width character."""
    if isinstance(value, str) and value and value[0] in RISKY_FIRST and \
            value.lstrip(INVISIBLE).startswith(FORMULA_STARTS):
        return "'" + value
    return value


# How a string that defuse may change opens in JSON text without escapes (json.dumps with
# ensure_ascii=False escapes only quotes, backslashes and control characters, so a tab or CR opening
# shows as a backslash). A quote inside a string is escaped, so this only matches a string's opening.
_RISKY_OPENING = re.compile('"[' + re.escape("".join(sorted(RISKY_FIRST - {"\t", "\r"}))) + "]")


def json_rows_csv(text: str, rows: int, columns: int) -> str:
    """CSV lines (the csv module's dialect, CRLF after each) for ``text``: a compact JSON array (as
    ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)``) of ``rows`` rows of ``columns``
    cells, each an int, a string or null; risky strings defused.

    The usual chunk of results needs no per-cell work: with no backslash (so no quote, newline or
    control character in any string), exactly the separators' commas and brackets (so none inside a
    string) and no null first cell, the CSV is the JSON text with its quotes, brackets and nulls
    taken out (with two columns or more: the csv module quotes a row's lone empty cell). Anything else
    goes through the csv module."""
    if rows == 0:
        return ""
    if columns > 1 and "\\" not in text and not _RISKY_OPENING.search(text) and "[null" not in text \
            and text.count(",") == rows * columns - 1 and text.count("[") == rows + 1 \
            and text.count("]") == rows + 1 and text.count("],[") == rows - 1:
        body = text[2:-2].replace("],[", "\r\n").replace(",null", ",").replace('"', "")
        return body + "\r\n"
    fh = io.StringIO()
    csv.writer(fh).writerows([defuse(v) for v in row] for row in json.loads(text))
    return fh.getvalue()


def output_error(path: str | Path, exc: OSError, *, what: str = "output") -> OutputError:
    """The error for a failed write: a full disk names the directory and says what to do."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"{what} {target}: the disk is full in {directory.resolve()}. Free space there and run the "
                        "same command again.", code="disk-full", path=str(target))
    return OutputError(f"{what} {target}: cannot write ({exc.strerror}).", code="output-unwritable",
                       path=str(target))


@contextmanager
def atomic_path(path: str | Path, *, backup: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success fsync it and rename it over ``path``."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{target}: the directory {parent} does not exist.", code="output-dir-missing")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise output_error(target, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes a private file; give the result the target's mode, or the usual one for a new file.
        if target.exists():
            os.chmod(tmp_path, target.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        if backup and target.exists():
            os.replace(target, target.with_name(target.name + ".bak"))
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def table_format(path: str | Path) -> str:
    ext = Path(path).suffix.lower()
    if ext == ".csv":
        return "csv"
    if ext in (".xlsx", ".xlsm"):
        return "xlsx"
    raise OutputError(f"{path}: cannot write '{ext or '(no extension)'}'; name the file .csv or .xlsx.",
                   code="output-type")


def write_csv_text(path: str | Path, columns: Sequence[str], texts: Iterable[str]) -> Path:
    """A CSV, atomically: the header, then ``texts`` as they are (CSV lines already defused, as
    ``json_rows_csv`` makes them)."""
    table_format(path)
    try:
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow(columns)
            for text in texts:
                fh.write(text)
    except OSError as exc:
        raise output_error(path, exc) from None
    return Path(path)


def write_table(path: str | Path, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                sheet_title: str = "results") -> Path:
    """A table to .csv or .xlsx, atomically; text never becomes a formula."""
    fmt = table_format(path)
    try:
        with atomic_path(path) as tmp:
            if fmt == "csv":
                with open(tmp, "w", newline="", encoding="utf-8") as fh:
                    writer = csv.writer(fh)
                    writer.writerow(columns)
                    for row in rows:
                        writer.writerow(["" if v is None else defuse(v) for v in row])
            else:
                _write_xlsx(tmp, columns, rows, sheet_title)
    except OSError as exc:
        raise output_error(path, exc) from None
    return Path(path)


def set_text(cell: Any, value: Any) -> None:
    """Put a value in an openpyxl cell so that text is always text, never a formula."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"


def _write_xlsx(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.freeze_panes = "A2"
    # Widths that fit the values (judged on the first rows), a filter on the header, IDs as text.
    it = iter(rows)
    first = list(itertools.islice(it, 1000))
    for c, name in enumerate(columns, 1):
        longest = max([len(str(name))] + [len(str(r[c - 1])) for r in first if c - 1 < len(r) and r[c - 1] is not None])
        ws.column_dimensions[get_column_letter(c)].width = min(80, max(8, longest + 2))
    rows = itertools.chain(first, it)
    bold = Font(bold=True)
    header = []
    for name in columns:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    count = 0
    for row in rows:
        count += 1
        out = []
        for v in row:
            cell = WriteOnlyCell(ws, value=v)
            if isinstance(v, str):
                cell.data_type = "s"
            out.append(cell)
        ws.append(out)
    ws.auto_filter.ref = f"A1:{get_column_letter(max(1, len(columns)))}{count + 1}"  # written at the end
    # Saved to memory first: a full disk then fails one plain write, not a half-written zip whose
    # finaliser complains again later ("Exception ignored in ZipFile.__del__").
    buf = io.BytesIO()
    wb.save(buf)
    with open(path, "wb") as fh:
        fh.write(buf.getbuffer())


def check_writable(path: str | Path, *, what: str = "output", table: bool = True) -> None:
    """Fail before any work when ``path`` cannot be written: a known type, an existing directory we may
    write in, and (when the file exists) a file we may replace. Nothing is sent before this is known."""
    if table:
        table_format(path)
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{what} {target}: the directory {parent} does not exist; create it or name another.",
                          code="output-dir-missing", path=str(target))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {target}: the directory {parent} is not writable.", code="output-unwritable",
                          path=str(target))
    if target.exists() and (target.is_dir() or not os.access(target, os.W_OK)):
        raise OutputError(f"{what} {target}: exists and cannot be replaced (a directory, or read-only).",
                          code="output-unwritable", path=str(target))


def write_rows(out: str | Path, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
               worksheet: str = "results") -> str:
    """A table to a file (.csv/.xlsx, atomic, formula-safe) or to a Google Sheet (URL, key or
    gsheet:TITLE) as worksheet ``worksheet`` (RAW values). Returns where it went."""
    from fhs_bulk.sheets.ref import SheetRef

    ref = SheetRef.parse(str(out))
    if ref.google is not None:
        from fhs_bulk.sheets.google import Google

        return str(Google().write(ref.google, worksheet, list(columns), [list(r) for r in rows]))
    return str(write_table(out, columns, rows, sheet_title=worksheet))
