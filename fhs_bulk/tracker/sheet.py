"""The 'Tracker for installation (ODS)' sheet: found by its header row, rows found by order ID, only
the tool's own columns written, everything else (formatting, other sheets, extra columns, remarks)
kept. xlsx is edited in place with openpyxl; CSV is rewritten. Writes are atomic with a ``.bak``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhs_bulk.errors import Exit, OutputError, SheetError
from fhs_bulk.gcpause import gc_paused
from fhs_bulk.sheets.contract import is_tracker_owned, tracker_headers
from fhs_bulk.sheets.write import atomic_path, defuse, set_text

if TYPE_CHECKING:
    from fhs_bulk.session import Session

ORDER = "fk_order_id"
SRM_ID = "SRM ID"
REFERENCE_ID = "Reference ID"
EARLIER_SRM_IDS = "Earlier SRM IDs"
HEADER_SEARCH_ROWS = 10


class CellValues(MutableMapping[str, str]):
    """A workbook row's cells by header, as text, read when asked: python-calamine's row as it came,
    so a 100,000-row tracker does not become 100,000 dicts of every column (most cells are never
    read). Text is stripped; a number or date reads as the spreadsheet shows it; an empty, zero or
    false cell reads as blank. A header the row lacks (a new column) is kept beside the cells."""

    __slots__ = ("_line", "_cols", "_extra")

    def __init__(self, line: list[Any], cols: dict[str, int]) -> None:
        self._line, self._cols = line, cols  # cols: header -> column, shared by every row of the sheet
        self._extra: dict[str, str] | None = None

    def get(self, key: str, default: Any = None) -> Any:  # the hot path: no KeyError round trip
        c = self._cols.get(key)
        if c is None:
            return self._extra.get(key, default) if self._extra else default
        return _cell_text(self._line[c]) if c < len(self._line) else ""

    def __getitem__(self, key: str) -> str:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        c = self._cols.get(key)
        if c is None:
            if self._extra is None:
                self._extra = {}
            self._extra[key] = value
            return
        if c >= len(self._line):
            self._line.extend([""] * (c + 1 - len(self._line)))
        self._line[c] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("a tracker row's cells are not deleted")

    def __iter__(self) -> Iterator[str]:
        yield from self._cols
        if self._extra:
            yield from self._extra

    def __len__(self) -> int:
        return len(self._cols) + len(self._extra or ())


_MISSING = object()


@dataclass
class TrackerRow:
    index: int  # position among data rows
    sheet_row: int  # spreadsheet row number as the user sees it
    values: MutableMapping[str, str]  # a dict, or a workbook row's CellValues

    @property
    def order(self) -> str:
        return self.values.get(ORDER, "").strip()


@dataclass
class Tracker:
    """A loaded tracker. ``set`` and ``add`` record changes; ``save`` writes them."""

    path: Any  # a Path, or the GoogleRef of a Google Sheet
    kind: str  # "xlsx", "csv" or "google"
    headers: list[str]
    header_row: int
    rows: list[TrackerRow]
    worksheet: str | None = None
    width: int = 0  # columns of the header row when loaded; later headers are new columns
    _changes: dict[tuple[int, str], str] = field(default_factory=dict)
    _added: list[int] = field(default_factory=list)  # indices of rows added since loading
    _csv_rows: list[list[str]] = field(default_factory=list)
    dialect: CsvDialect | None = None

    def by_order(self) -> dict[str, list[TrackerRow]]:
        out: dict[str, list[TrackerRow]] = {}
        for r in self.rows:
            if r.order:
                out.setdefault(r.order, []).append(r)
        return out

    def set(self, row: TrackerRow, header: str, value: str) -> bool:
        """Change one owned cell; returns whether the value really changed."""
        if not is_tracker_owned(header):
            raise ValueError(f"the tool does not own the column {header!r}")
        if (row.values.get(header) or "") == (value or ""):
            return False
        if header not in self.headers:
            self.ensure_column(header)
        row.values[header] = value
        self._changes[(row.index, header)] = value
        return True

    def set_row(self, row: TrackerRow, cells: Iterable[tuple[str, str]]) -> bool:
        """``set`` for several owned cells of one row (reconcile writes seven a row); returns whether
        any changed. A workbook row's cells are compared and replaced in place."""
        values = row.values
        if type(values) is not CellValues:
            return any([self.set(row, header, value) for header, value in cells])
        line, cols, changes, index = values._line, values._cols, self._changes, row.index
        touched = False
        for header, value in cells:
            c = cols.get(header)
            if c is None or c >= len(line) or not is_tracker_owned(header):
                touched |= self.set(row, header, value)  # a new column, a short row, or refused there
                continue
            if _cell_text(line[c]) == (value or ""):
                continue
            line[c] = value
            changes[(index, header)] = value
            touched = True
        return touched

    def add(self, values: dict[str, str]) -> TrackerRow:
        for h in values:
            self.ensure_column(h)
        last = max([r.sheet_row for r in self.rows] + [self.header_row])
        row = TrackerRow(len(self.rows), last + 1, dict(values))
        self.rows.append(row)
        self._added.append(row.index)
        return row

    @property
    def dirty(self) -> bool:
        return bool(self._changes or self._added)

    def ensure_column(self, header: str) -> None:
        """Add a header (an owned column the tracker lacks) at the end; written on save."""
        if header not in self.headers:
            self.headers.append(header)

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            if self.kind == "xlsx":
                self._save_xlsx()
            elif self.kind == "google":
                self._save_google()
            else:
                self._save_csv()
        except OSError as exc:
            from fhs_bulk.sheets.write import output_error

            err = output_error(self.path, exc, what="tracker")
            if err.code == "disk-full":
                raise err from None
            raise OutputError(f"{self.path}: cannot write the tracker ({exc.strerror}).", code="tracker-write") from exc
        self._changes.clear()
        self._added.clear()

    def _save_csv(self) -> None:
        d = self.dialect or CsvDialect()
        with atomic_path(self.path, backup=True) as tmp, \
                open(tmp, "w", newline="", encoding="utf-8-sig" if d.bom else "utf-8") as fh:
            w = csv.writer(fh, delimiter=d.delimiter, lineterminator=d.lineterminator)
            # Every line as it was read (cells under no header, blank lines and rows past the table too),
            # with only the changed cells replaced; new columns and rows at the end.
            col_of = {h: i for i, h in enumerate(self.headers) if h}
            changed: dict[int, dict[int, str]] = {}
            for (index, header), value in self._changes.items():
                changed.setdefault(self.rows[index].sheet_row, {})[col_of[header]] = defuse(value)
            raw = [list(line) for line in self._csv_rows]
            header_line = raw[self.header_row - 1]
            for i, h in enumerate(self.headers):
                if i >= len(header_line):
                    header_line.append(h)
            for row_no, cells in changed.items():
                line = raw[row_no - 1]
                line.extend([""] * (max(cells) + 1 - len(line)))
                for c, value in cells.items():
                    line[c] = value
            for line in raw:
                w.writerow(line)
            for index in self._added:
                values = self.rows[index].values
                w.writerow([defuse(values.get(h, "")) for h in self.headers])

    def _save_google(self) -> None:
        """One batched RAW values write: a range per run of changed cells in a column, and the new rows."""
        from fhs_bulk.sheets.google import Google

        cells = self._cells()
        Google().write_cells(self.path, self.worksheet or "", cells, rows=max(r for r, _ in cells),
                             cols=len(self.headers))

    def _cells(self) -> dict[tuple[int, int], str]:
        """Every cell to write, (row, column) 1-based: changes, added rows, new header cells."""
        col_of = {h: i + 1 for i, h in enumerate(self.headers) if h}
        cells: dict[tuple[int, int], str] = {}
        for h, c in col_of.items():
            if c > self.width:
                cells[(self.header_row, c)] = h
        for (index, header), value in self._changes.items():
            cells[(self.rows[index].sheet_row, col_of[header])] = value
        for index in self._added:
            row = self.rows[index]
            for h, v in row.values.items():
                if v:
                    cells[(row.sheet_row, col_of[h])] = v
        return cells

    def _cells_by_row(self) -> dict[int, dict[int, str]]:
        """``_cells`` as row -> column -> text."""
        col_of = {h: i + 1 for i, h in enumerate(self.headers) if h}
        rows: dict[int, dict[int, str]] = {}
        for h, c in col_of.items():
            if c > self.width:
                rows.setdefault(self.header_row, {})[c] = h
        sheet_rows = [r.sheet_row for r in self.rows]
        for (index, header), value in self._changes.items():
            row = rows.get(sheet_rows[index])
            if row is None:
                row = rows[sheet_rows[index]] = {}
            row[col_of[header]] = value
        for index in self._added:
            added = rows.setdefault(self.rows[index].sheet_row, {})
            for h, v in self.rows[index].values.items():
                if v:
                    added[col_of[h]] = v
        return rows

    def _save_xlsx(self) -> None:
        from fhs_bulk.sheets.xlsx_cells import set_rows

        with atomic_path(self.path, backup=True) as tmp:
            if set_rows(self.path, self.worksheet or "", self._cells_by_row(), tmp):
                return
            self._save_xlsx_openpyxl(tmp)

    def _save_xlsx_openpyxl(self, tmp: Path) -> None:
        """The general path: openpyxl loads and saves the whole workbook."""
        from openpyxl import load_workbook

        book: Any = load_workbook(self.path, keep_vba=self.path.suffix.lower() == ".xlsm")
        ws = book[self.worksheet]
        for (row, col), value in self._cells().items():
            set_text(ws.cell(row=row, column=col), value)
        book.save(tmp)


def _cell_text(v: Any) -> str:
    """A workbook cell as a tracker row reads it: text stripped, a number or date as the sheet shows
    it, an empty, zero or false cell blank."""
    if type(v) is str:
        return v.strip()
    return _text(v) if v else ""


def _text(value: Any) -> str:
    from fhs_bulk.sheets.read import cell_text

    return cell_text(value)[0].strip()


def _find_header(rows: list[list[str]], shown: str) -> int:
    from fhs_bulk.sheets.read import find_header

    h = find_header(rows, (ORDER, SRM_ID), strict=True)
    if h >= 0:
        return h
    raise SheetError(f"{shown}: no header row with '{ORDER}' and '{SRM_ID}' in the first {HEADER_SEARCH_ROWS} rows. "
                     "Start from sheets/Tracker for installation (ODS).xlsx.", code="tracker-header", path=shown)


def load_tracker(path: str | Path) -> Tracker:
    from fhs_bulk.sheets.ref import SheetRef

    ref = SheetRef.parse(str(path)).google
    if ref is not None:
        return _load_google(ref, str(path))
    p = Path(path)
    shown = str(path)
    if not p.exists():
        raise SheetError(f"{shown}: no such tracker file. Check the path, or start from "
                         "sheets/Tracker for installation (ODS).xlsx.", code="sheet-not-found", path=shown)
    from fhs_bulk.sheets import guard

    size = guard.check_regular_file(p, shown)
    ext = p.suffix.lower()
    if ext == ".csv":
        guard.check_csv_size(size, shown)
        return _load_csv(p, shown)
    if ext in (".xlsx", ".xlsm"):
        guard.check_workbook(p, shown)
        return _load_xlsx(p, shown)
    raise SheetError(f"{shown}: a tracker must be .xlsx or .csv.", code="sheet-unknown-type", path=shown)


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV tracker was written, so it is written back the same way."""

    delimiter: str = ","
    lineterminator: str = "\r\n"
    bom: bool = False


def _load_csv(p: Path, shown: str) -> Tracker:
    """Parsed by the csv module over the whole text (quoted newlines, quotes, commas survive), in the
    file's own delimiter, line ending and BOM, which ``save`` writes back."""
    from fhs_bulk.sheets.read import sniff_delimiter

    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SheetError(f"{shown}: cannot be read ({exc.strerror}).", code="sheet-unreadable", path=shown) from exc
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SheetError(f"{shown}: not UTF-8; save the tracker as 'CSV UTF-8'.", code="sheet-encoding",
                         path=shown) from None
    first_end = re.search(r"\r\n|\n|\r", text)
    ending = first_end.group(0) if first_end else "\r\n"
    # The delimiter is judged on the header line (a title row above it may hold commas of its own).
    lines = re.split(r"\r\n|\n|\r", text[:65536])[:HEADER_SEARCH_ROWS]
    header_line = next((line for line in lines if ORDER in line and SRM_ID in line), lines[0] if lines else "")
    dialect = CsvDialect(sniff_delimiter(header_line), ending, bom)
    if ending == "\r":  # old Mac line endings: the csv module reads them only as a stream of lines
        text = text.replace("\r", "\n")
    try:
        all_rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter))
    except csv.Error as exc:
        raise SheetError(f"{shown}: not a readable CSV ({exc}).", code="sheet-unreadable", path=shown) from None
    h = _find_header(all_rows, shown)
    headers = [c.strip() for c in all_rows[h]]
    rows = []
    width, plain = len(headers), all(headers)  # plain: every column named, so a line zips as it is
    for i, line in enumerate(all_rows[h + 1:]):
        if plain:
            values = dict(zip(headers, line, strict=False))  # cells past the header are not read
            if len(line) < width:  # trailing empty cells left out by the program that wrote the file
                values.update(dict.fromkeys(headers[len(line):], ""))
        else:
            values = {hd: (line[c] if c < len(line) else "") for c, hd in enumerate(headers) if hd}
        rows.append(TrackerRow(i, h + 2 + i, values))
    return Tracker(p, "csv", headers, h + 1, rows, width=len(headers), _csv_rows=all_rows, dialect=dialect)


def _load_xlsx(p: Path, shown: str) -> Tracker:
    """Values come from python-calamine (fast); openpyxl opens the workbook only when there is
    something to write, and then edits it in place."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(p))
        sheets = [(name, book.get_sheet_by_name(name).to_python(skip_empty_area=False)) for name in book.sheet_names]
    except Exception as exc:
        raise SheetError(f"{shown}: cannot be opened as xlsx ({type(exc).__name__}); open and save it again.",
                         code="sheet-unreadable", path=shown) from exc
    for name, cells in sheets:
        top = [[_text(v) for v in line] for line in cells[:HEADER_SEARCH_ROWS]]
        try:
            h = _find_header(top, shown)
        except SheetError:
            continue
        headers = [c.strip() for c in top[h]]
        cols = {hd: c for c, hd in enumerate(headers) if hd}  # a header named twice: its last column
        named = sorted(set(cols.values()))
        rows: list[TrackerRow] = []
        for i, line in enumerate(cells[h + 1:]):
            if any(line) and _has_text(line, named):  # else a blank row: not a data row
                rows.append(TrackerRow(len(rows), h + 2 + i, CellValues(line, cols)))
        return Tracker(p, "xlsx", headers, h + 1, rows, worksheet=name, width=len(headers))
    raise SheetError(f"{shown}: no worksheet has a header row with '{ORDER}' and '{SRM_ID}'.",
                     code="tracker-header", path=shown)


def _has_text(line: list[Any], columns: list[int]) -> bool:
    """Whether any of these cells reads as non-blank text (see CellValues)."""
    return any(_cell_text(line[c]) for c in columns if c < len(line))


def _load_google(ref: Any, shown: str) -> Tracker:
    from fhs_bulk.sheets.google import Google

    _, worksheet, cells = Google().read(ref)
    h = _find_header(cells, shown)
    headers = [c.strip() for c in cells[h]]
    rows: list[TrackerRow] = []
    for i, line in enumerate(cells[h + 1:]):
        values = {hd: (line[c] if c < len(line) else "").strip() for c, hd in enumerate(headers) if hd}
        if any(values.values()):
            rows.append(TrackerRow(len(rows), h + 2 + i, values))
    return Tracker(ref, "google", headers, h + 1, rows, worksheet=worksheet, width=len(headers))


def new_tracker(path: str | Path) -> None:
    """Create an empty tracker with the contract's headers (xlsx or csv by extension)."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        with atomic_path(p) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow(tracker_headers())
    else:
        from fhs_bulk.sheets.contract import _write_template_xlsx

        _write_template_xlsx(p, "Tracker", tracker_headers())


@dataclass
class UpdateResult:
    tracker: str
    updated: int = 0
    added: int = 0
    unchanged: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return Exit.DATA if self.conflicts else Exit.OK

    def as_dict(self) -> dict[str, Any]:
        return {"tracker": self.tracker, "updated": self.updated, "added": self.added, "unchanged": self.unchanged,
                "conflicts": self.conflicts}


def registrations_from_results(path: str | Path) -> list[tuple[str, str, str]]:
    """(order, reference_id, ticket_id) of every registered order in an upload results file."""
    from fhs_bulk.sheets.read import column_list, read_sheet

    sheet = read_sheet(path)
    need = ("fk_order_id", "status", "reference_id")
    missing = [c for c in need if sheet.column_index(c) is None]
    if missing:
        raise SheetError(f"{path}: not an upload results file (no column {', '.join(missing)}).",
                         code="results-columns", path=str(path))
    cols = {name: column_list(sheet.columns[sheet.headers.index(name)]) for name in need}
    t = sheet.column_index("ticket_id")
    tickets = column_list(sheet.columns[t]) if t is not None else [""] * len(sheet)
    out = []
    for oid, status, ref, tid in zip(cols["fk_order_id"], cols["status"], cols["reference_id"], tickets, strict=True):
        if status in ("registered", "already-registered") and ref:
            out.append((oid.strip().lstrip("'"), ref.strip(), tid.strip()))
    return out


def registrations_from_ledger(session: Session) -> list[tuple[str, str, str]]:
    """(order, reference_id, ticket_id) of every order the session's ledger knows as registered at its SRMS."""
    return [(o, r or "", t or "") for o, r, t in session.ledger.registrations(session.identity)]


@gc_paused
def update_tracker(tracker_path: str | Path, registrations: list[tuple[str, str, str]]) -> UpdateResult:
    """Fill Reference ID and SRM ID for each registered order; add rows for orders not in the tracker.
    A cell that already holds a different ID is a conflict and is left alone. Idempotent."""
    tracker = load_tracker(tracker_path)
    result = UpdateResult(str(tracker_path))
    index = tracker.by_order()
    for order, ref, ticket in registrations:
        rows = index.get(order)
        if not rows:
            row = tracker.add({ORDER: order, REFERENCE_ID: ref, SRM_ID: ticket})
            index[order] = [row]
            result.added += 1
            continue
        row = rows[0]
        changed = False
        clash = False
        for header, value in ((REFERENCE_ID, ref), (SRM_ID, ticket)):
            current = row.values.get(header, "").strip()
            if not value or current == value:
                continue
            if current:
                clash = True
                result.conflicts.append({"row": row.sheet_row, "fk_order_id": order, "column": header,
                                         "tracker": current, "srms": value})
                continue
            changed |= tracker.set(row, header, value)
        if changed:
            result.updated += 1
        elif not clash:
            result.unchanged += 1
    tracker.save()
    return result
