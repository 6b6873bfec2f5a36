"""Validation of the FK_ODS_ORDER_CREATE order sheet: a table of findings, never an exception.

Speed matters (a night's sheet can hold a million rows): every row is first checked by a
vectorised regular expression; only rows that fail it (a handful, in practice) go through the
per-character classifier that explains what is wrong. Duplicates are found on the 18 digits read as
an int64, not on the strings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhs_bulk import domain
from fhs_bulk.errors import SheetError

if TYPE_CHECKING:
    from concurrent.futures import Future

    import numpy as np

    from fhs_bulk.sheets.read import CsvBlocks, Sheet

ORDER_ID_PATTERN = domain.ORDER_ID_PATTERN
MAX_FINDINGS = 100_000  # row findings kept in detail; past this a sheet of garbage stays in bounded memory
FSN_COLUMN = "fsn"
SERVICE_COLUMN = "service"
MAX_SHOWN = 40  # characters of a cell a message may echo
TOO_LONG = 64

# Every finding code, its severity and what the person fixing the sheet should do. Stable: scripts
# and the README depend on these names.
CODES: dict[str, tuple[str, str]] = {
    # sheet-level (exit 2)
    "sheet-not-found": ("sheet", "the path does not exist; check it"),
    "sheet-is-directory": ("sheet", "a directory was given; name the file"),
    "sheet-empty-file": ("sheet", "the file has 0 bytes; export it again"),
    "sheet-unknown-type": ("sheet", "save as .xlsx, .xls, .ods or .csv"),
    "sheet-unreadable": ("sheet", "damaged or not a spreadsheet; open and save it again"),
    "sheet-encoding": ("sheet", "not UTF-8; save as 'CSV UTF-8'"),
    "sheet-name": ("sheet", "the spreadsheet must be named FK_ODS_ORDER_CREATE"),
    "header-missing": ("sheet", "the header row must hold the column fk_order_id"),
    "header-duplicate": ("sheet", "the column fk_order_id appears more than once"),
    "no-data-rows": ("sheet", "the sheet has a header but no orders"),
    # row-level errors (exit 1)
    "order-id-blank": ("error", "the row has data but no order ID"),
    "order-id-number": ("error", "the ID became a number; format the column as Text and re-enter the IDs"),
    "order-id-formula": ("error", "the cell holds a formula; type the ID itself"),
    "order-id-too-long": ("error", "far too long to be an order ID; paste the ID alone"),
    "order-id-character": ("error", "a character other than A-Z and 0-9 (often an invisible space)"),
    "order-id-lowercase": ("error", "order IDs are upper case (OD...)"),
    "order-id-prefix": ("error", "order IDs start with OD"),
    "order-id-length": ("error", "an order ID is OD + 18 digits, 20 characters"),
    "order-id-digits": ("error", "after OD come 18 digits only"),
    "order-id-duplicate": ("error", "the same order ID is on an earlier row; delete this row"),
    "fsn-not-ods": ("error", "only FSNs that start with ODS may be bulk registered"),
    "service-not-bulk-eligible": ("error", "the service is not one of the 14 bulk-eligible services"),
    # warnings (do not block)
    "order-id-whitespace": ("warning", "spaces or tabs around the ID were trimmed"),
    "cells-outside-header": ("warning", "values under no header (or past the last one) are not read"),
    "sheet-name-variant": ("warning", "a copy's name (' (1)', a date) was accepted as FK_ODS_ORDER_CREATE"),
    "findings-truncated": ("warning", "past 100,000 rows with errors only the count is kept; fix, validate again"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    row: int | None
    column: str | None
    code: str
    message: str
    value: str | None = None
    severity: str = "error"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message,
                "value": self.value}


def cell_value(value: str) -> str:
    """A cell's text as it is (for the `value` field of JSON and reports), cut when very long."""
    return value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + f"… ({len(value)} characters)"


def shown(value: str) -> str:
    """A cell value safe to echo: cut, with invisible characters made visible."""
    cut = value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + f"… ({len(value)} characters)"
    if cut.isprintable():
        return cut
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in cut)


def _char_name(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED CHARACTER')}"


_NUMBER_TEXT = re.compile(r"[0-9]+(?:[.,][0-9]+)?(?:[eE][+-]?[0-9]+)?")
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def check_order_id(raw: str, kind: str | None = None) -> tuple[str, list[tuple[str, str]]]:
    """Classify one order ID cell: (trimmed value, [(code, message), ...]).

    At most one error is returned (the most useful one), plus a whitespace warning if trimmed.
    """
    issues: list[tuple[str, str]] = []
    if kind == "number":
        return raw, [("order-id-number",
                      f"the cell holds the number {shown(raw)}, not text: the spreadsheet turned the order ID "
                      "into a number and its last digits are lost. Format the column as Text and re-enter the "
                      "IDs (copy them again from the order system).")]
    if kind == "formula" or raw.startswith("="):
        return raw, [("order-id-formula",
                      f"the cell holds a formula ({shown(raw)}), not an order ID. Type or paste the ID "
                      "itself (Paste Special > Values).")]
    if len(raw) > TOO_LONG:
        return raw, [("order-id-too-long",
                      f"{len(raw)} characters, far too long for an order ID (starts {shown(raw)}). Put one "
                      "order ID (OD + 18 digits) in the cell.")]
    value = raw.strip(" \t")
    if value != raw:
        issues.append(("order-id-whitespace", "spaces or tabs around the order ID were trimmed"))
    if not value:
        return value, issues + [("order-id-blank", "the row has data but no order ID. Add the ID or delete "
                                                   "the row.")]
    if _NUMBER_TEXT.fullmatch(value) and not (len(value) == 18 and value.isdigit()):
        return value, issues + [("order-id-number",
                                 f"'{shown(value)}' is a number, not an order ID: a spreadsheet turned the ID "
                                 "into a number (digits are lost). Format the column as Text and re-enter the "
                                 "IDs.")]
    for pos, ch in enumerate(value, 1):
        if ch not in _ALNUM:
            return value, issues + [("order-id-character",
                                     f"character {_char_name(ch)} at position {pos} is not allowed: an order ID "
                                     "holds only A-Z and 0-9. Retype the ID (invisible spaces often come from "
                                     "copying out of a web page).")]
    if value != value.upper():
        fixed = value.upper()
        hint = f" Write '{fixed}'." if re.fullmatch(ORDER_ID_PATTERN, fixed) else ""
        return value, issues + [("order-id-lowercase",
                                 f"'{shown(value)}' has lower-case letters; order IDs are upper case.{hint}")]
    if value.isdigit() and len(value) == 18:
        return value, issues + [("order-id-prefix",
                                 f"'{value}' lacks the OD prefix. Write 'OD{value}'.")]
    if not value.startswith("OD"):
        return value, issues + [("order-id-prefix",
                                 f"'{shown(value)}' does not start with OD; every Flipkart order ID does "
                                 "(OD + 18 digits).")]
    if len(value) != 20:
        return value, issues + [("order-id-length",
                                 f"'{shown(value)}' has {len(value)} characters; an order ID is OD + 18 digits "
                                 "(20 characters). Check for a missing or extra digit.")]
    if not value[2:].isdigit():
        return value, issues + [("order-id-digits",
                                 f"'{value}' has letters after OD; an order ID is OD followed by 18 digits.")]
    return value, issues


@dataclass
class ValidationReport:
    """What validate found: the counts, every finding, and the rows an upload may send."""

    source: str
    sheet_name: str
    rows: int = 0
    sheet_error: Finding | None = None
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    # Per data row (non-blank), in sheet order:
    row_numbers: Any = None  # a range (no blank rows), else np.ndarray[int32]; a list for a short sheet
    valid_mask: Any = None  # np.ndarray[bool] (likewise)
    headers: list[str] = field(default_factory=list)
    # (the sheet's ID column, or its IDs kept compact (validate.ids); indices of the data rows in it or
    # None for every row; trimmed values by index): the IDs only become Python strings when an upload
    # asks for them.
    _ids: Any = field(default=None, repr=False)
    # Per data row, the code of an invalid row whose finding is not listed (past MAX_FINDINGS), as an
    # index into CODES (0: none); None when every finding is listed.
    _untold: Any = field(default=None, repr=False)

    @property
    def valid(self) -> int:
        if self.valid_mask is None:
            return 0
        return self.valid_mask.count(True) if isinstance(self.valid_mask, list) else int(self.valid_mask.sum())

    @property
    def invalid(self) -> int:
        return self.rows - self.valid

    @property
    def ok(self) -> bool:
        return self.sheet_error is None and not self.errors

    @property
    def exit_code(self) -> int:
        if self.sheet_error is not None:
            return 2
        return 1 if self.errors else 0

    def first_error_by_row(self) -> dict[int, Finding]:
        out: dict[int, Finding] = {}
        for f in self.errors:
            if f.row is not None and f.row not in out:
                out[f.row] = f
        return out

    def untold_code(self, row: int) -> str | None:
        """The code of the invalid sheet row ``row`` when its finding is not listed (past the first
        100,000 findings), else None."""
        if self._untold is None:
            return None
        numbers = self.row_numbers
        if isinstance(numbers, range):
            index = row - numbers.start
        else:
            import numpy as np

            index = int(np.searchsorted(numbers, row))
        return _CODE_OF.get(int(self._untold[index]))

    def order_ids(self) -> list[str]:
        """The order ID text of every data row (trimmed where it was trimmed), in sheet order."""
        return self._order_ids(0, self.rows) if self._ids is not None else []

    def chunks(self, size: int = 20_000) -> Iterator[tuple[list[int], list[str], list[bool]]]:
        """(rows, order IDs, valid) of the data rows, ``size`` rows at a time, in sheet order: an upload
        walks a sheet of millions without holding every ID as a Python string at once."""
        if self._ids is None or self.row_numbers is None:
            return
        for start in range(0, self.rows, size):
            yield (_plain(self.row_numbers[start:start + size]), self._order_ids(start, start + size),
                   _plain(self.valid_mask[start:start + size]))

    def _order_ids(self, start: int, stop: int) -> list[str]:
        """The ID text of data rows ``start`` to ``stop`` (trimmed where it was trimmed)."""
        column, keep, overrides = self._ids
        if isinstance(column, list) and keep is None and not overrides:  # a short sheet, checked without numpy
            return column[start:stop]
        import numpy as np

        from fhs_bulk.sheets.read import column_take
        from fhs_bulk.validate.ids import CompactIds

        idx = keep[start:stop] if keep is not None else np.arange(start, min(stop, self.rows))
        if isinstance(column, CompactIds):
            return column.texts(idx)
        ids = column_take(column, idx)
        if overrides:
            for pos, index in enumerate(idx.tolist()):
                if index in overrides:
                    ids[pos] = overrides[index]
        return ids

    def valid_orders(self) -> list[tuple[int, str]]:
        """(row, order ID) of every valid row, in sheet order."""
        if self.valid_mask is None:
            return []
        ids = self.order_ids()
        rows = _plain(self.row_numbers)
        return [(rows[i], ids[i]) for i, ok in enumerate(_plain(self.valid_mask)) if ok]

    def to_pandas(self) -> Any:
        """Every finding (sheet-level, errors, warnings) as a DataFrame: row, column, severity, code, message, value."""
        from fhs_bulk.frames import frame

        findings = ([self.sheet_error] if self.sheet_error else []) + self.errors + self.warnings
        return frame(["row", "column", "severity", "code", "message", "value"],
                     ([f.row, f.column, f.severity, f.code, f.message, f.value] for f in findings))

    def as_dict(self) -> dict[str, Any]:
        errors = ([self.sheet_error] if self.sheet_error else []) + self.errors
        return {
            "sheet": self.source,
            "rows": self.rows,
            "valid": self.valid,
            "invalid": self.invalid,
            "errors": [f.as_dict() for f in errors],
            "warnings": [f.as_dict() for f in self.warnings],
        }

    def write_json(self, out: Any) -> None:
        """``as_dict()`` as one JSON document, written 10,000 findings at a time, so a sheet of millions
        of bad rows never holds its whole report in memory twice."""
        import json

        def dump(value: Any) -> str:
            return json.dumps(value, ensure_ascii=False)

        errors = ([self.sheet_error] if self.sheet_error else []) + self.errors
        out.write(f'{{"sheet": {dump(self.source)}, "rows": {self.rows}, "valid": {self.valid}, '
                  f'"invalid": {self.invalid}, "errors": [')
        for name, findings in (("errors", errors), ("warnings", self.warnings)):
            if name == "warnings":
                out.write('], "warnings": [')
            for start in range(0, len(findings), 10_000):
                part = dump([f.as_dict() for f in findings[start:start + 10_000]])[1:-1]  # items, no brackets
                out.write((", " if start else "") + part)
        out.write("]}\n")


def _plain(values: Any) -> list[Any]:
    """A per-row sequence as a list: a numpy array, a range of row numbers, or a list already (a short
    sheet's, checked without numpy)."""
    if isinstance(values, list):
        return values
    return list(values) if isinstance(values, range) else values.tolist()


def _sheet_finding(err: SheetError) -> Finding:
    return Finding(None, None, err.code, err.message, None, "sheet")


def validate_sheet(source: str | Path, *, check_name: bool = True) -> ValidationReport:
    """Read and validate an order sheet. Sheet-level problems land in ``report.sheet_error``.

    A long CSV is read and checked a block of rows at a time, so memory stays near what the report
    keeps (~10 bytes a row), not the whole file's columns (and it is faster: blocks are parsed on one
    thread while the last is checked on this one); a file pyarrow cannot read in blocks is read whole."""
    from fhs_bulk.sheets import read as sheets

    source = str(source)
    report = ValidationReport(source=source, sheet_name=sheets.sheet_name_of(source))
    try:
        blocks = sheets.csv_blocks(source)
        if blocks is not None:
            streamed = _validate_blocks(blocks, report, check_name)
            if streamed is not None:
                return _given_back(streamed, streamed.rows)
            report = ValidationReport(source=source, sheet_name=report.sheet_name)
        sheet = sheets.read_sheet(source)
    except SheetError as err:
        report.sheet_error = _sheet_finding(err)
        return report
    report = validate_loaded(sheet, report, check_name=check_name)
    rows = len(sheet)
    del sheet  # its columns (the report keeps what it needs) are freed before the allocators are asked
    return _given_back(report, rows)


def _given_back(report: ValidationReport, rows: int) -> ValidationReport:
    if rows >= GIVE_BACK_ROWS:  # the reader's and the scan's temporaries, freed but still held
        from fhs_bulk.heap import give_back

        give_back()
    return report


def _validate_blocks(blocks: CsvBlocks, report: ValidationReport, check_name: bool) -> ValidationReport | None:
    """A long CSV checked as it is read, a block at a time; None if pyarrow gave up on it part way."""
    from fhs_bulk.sheets.read import IrregularCsv

    sheet = blocks.sheet
    early = _sheet_problem(sheet, report, check_name)
    if early is not None:
        return early
    rows = _Rows(sheet, whole=False, room=blocks.rows_expected)
    try:
        for columns in blocks:
            rows.add(columns)
    except IrregularCsv:
        return None
    return rows.finish(report, check_name and sheet_name_matches(sheet.name)[1])


GIVE_BACK_ROWS = 100_000


def _header_problem(sheet: Sheet) -> Finding | None:
    col = domain.ORDER_ID_COLUMN
    count = sheet.headers.count(col)
    if count == 1:
        return None
    if count > 1:
        from fhs_bulk.sheets.columns import column_letter

        where = ", ".join(column_letter(i + 1) for i, h in enumerate(sheet.headers) if h == col)
        return Finding(None, col, "header-duplicate",
                       f"{sheet.source}: the column '{col}' appears {count} times (columns {where}); keep one.",
                       None, "sheet")
    near = [h for h in sheet.headers if _loose(h) == _loose(col) or _loose(h) in {"orderid", "order"}]
    if near:
        found = f"found '{shown(near[0])}'"
    elif sheet.headers:
        found = "found " + ", ".join(f"'{shown(h)}'" for h in sheet.headers[:6] if h) or "found an empty header"
    else:
        found = "the sheet is empty"
    return Finding(None, col, "header-missing",
                   f"{sheet.source}: row {sheet.header_row} must hold the column header '{col}', spelled exactly "
                   f"so (SRMS requires it); {found}. Rename the header to '{col}'.", None, "sheet")


def _loose(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower()).removeprefix("fk")


_NAME_VARIANT = re.compile(re.escape(domain.ORDER_SHEET_NAME) +
                           r"(?: \(\d+\)|[_-]\d{4}-\d{2}-\d{2}|[_-]\d{8}|[_-]\d{2}-\d{2}-\d{4})")


def sheet_name_matches(name: str) -> tuple[bool, bool]:
    """(acceptable, a variant): the contract name, or it followed by a browser's ' (N)' or a '_'/'-' date."""
    if name == domain.ORDER_SHEET_NAME:
        return True, False
    return (_NAME_VARIANT.fullmatch(name) is not None), True


SMALL_ROWS = 5_000  # a sheet read as Python strings up to this long is checked without numpy (~35 ms to import)


def validate_loaded(sheet: Sheet, report: ValidationReport | None = None, *,
                    check_name: bool = True) -> ValidationReport:
    if report is None:
        report = ValidationReport(source=sheet.source, sheet_name=sheet.name)
    early = _sheet_problem(sheet, report, check_name)
    if early is not None:
        return early
    variant = check_name and sheet_name_matches(sheet.name)[1]
    c_id = sheet.column_index(domain.ORDER_ID_COLUMN)
    assert c_id is not None
    if len(sheet) <= SMALL_ROWS and all(isinstance(col, list) for col in sheet.columns):
        return _validate_small(sheet, report, c_id, variant)
    rows = _Rows(sheet, whole=True)
    rows.add(sheet.columns)
    return rows.finish(report, variant)


ODD_AS_TEXT = 256  # a block's invalid IDs kept as Python strings up to this many, past it as arrow text


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The blocks' arrays as one."""
    import numpy as np

    joined = parts[0] if len(parts) == 1 else np.concatenate(parts)
    parts.clear()
    return joined


class _Filled:
    """A per-row array filled a block at a time: room for the rows expected (numpy maps a large
    array lazily, so room never used costs no memory), moved to a larger one if they were more."""

    def __init__(self, first: np.ndarray, room: int) -> None:
        import numpy as np

        if room <= len(first):
            self.array, self.n = first, len(first)
            return
        self.array = np.empty(room, dtype=first.dtype)
        self.array[:len(first)] = first
        self.n = len(first)

    def add(self, block: np.ndarray) -> None:
        import numpy as np

        end = self.n + len(block)
        if end > len(self.array):
            larger = np.empty(max(end, len(self.array) * 3 // 2), dtype=self.array.dtype)
            larger[:self.n] = self.array[:self.n]
            self.array = larger
        self.array[self.n:end] = block
        self.n = end

    def rows(self) -> np.ndarray:
        return self.array[:self.n]


def _arrow_take(col: Any, idx: np.ndarray) -> Any:
    import pyarrow as pa

    return col.take(pa.array(idx, type=pa.int64()))


def _joined_texts(parts: list[Any]) -> Any:
    """The blocks' odd texts as one list, or one pyarrow array when a block had many (a sheet of
    garbage keeps arrow's compact text, not millions of Python strings)."""
    if all(isinstance(part, list) for part in parts):
        return [text for part in parts for text in part]
    import pyarrow as pa

    return pa.chunked_array([pa.array(part, type=pa.string()) if isinstance(part, list) else part
                             for part in parts], type=pa.string())


def _sheet_problem(sheet: Sheet, report: ValidationReport, check_name: bool) -> ValidationReport | None:
    """The report, with its sheet-level error, when the sheet's name or header rules it out."""
    report.headers = sheet.headers
    if check_name and not sheet_name_matches(sheet.name)[0]:
        report.sheet_error = Finding(
            None, None, "sheet-name",
            f"{sheet.source}: the spreadsheet is named '{shown(sheet.name)}'; SRMS bulk registration requires "
            f"the name '{domain.ORDER_SHEET_NAME}'. Rename the file (or the Google Sheet) and try again.",
            None, "sheet")
        return report
    problem = _header_problem(sheet)
    if problem:
        report.sheet_error = problem
        return report
    return None


class _Rows:
    """The vectorised checks of a long sheet, a block of rows at a time: a sheet read whole is one
    block; a CSV read in blocks keeps only each row's digits, validity and non-blankness (10 bytes)
    and the odd rows' text between blocks. Findings come out as for one block: the IDs' findings,
    then the repeats, then the FSN and service findings, in row order."""

    def __init__(self, sheet: Sheet, *, whole: bool, room: Callable[[int], int] | None = None) -> None:
        self.sheet, self.whole = sheet, whole
        self.c_id = sheet.headers.index(domain.ORDER_ID_COLUMN)
        self.kinds = sheet.cell_kinds.get(self.c_id, {})
        self.first_row = sheet.row_numbers.start
        self.n = 0
        self.room = room
        self.digits: _Filled | None = None  # per row, filled a block at a time
        self.ok: _Filled | None = None
        self.nonblank: _Filled | None = None
        self.odd_at: list[np.ndarray] = []  # a block's rows whose ID is not valid (streamed blocks)
        self.odd: list[Any] = []  # and their text (a list, or a pyarrow array when there are many)
        self.trimmed: list[int] = []
        self.overrides: dict[int, str] = {}
        self.errors: list[Finding] = []
        self.warnings: list[Finding] = []
        self.late: list[tuple[int, Finding]] = []  # FSN and service findings, applied after the repeats
        self.late_rows: list[tuple[str, np.ndarray]] = []  # and the rows of those past MAX_FINDINGS, by code
        self.verdicts: dict[int, dict[str, tuple[str, str] | None]] = {}
        # Invalid rows whose finding is not listed (past MAX_FINDINGS): (row index, code), and as arrays.
        self.untold_at: list[int] = []
        self.untold_code = bytearray()  # beside it: each one's code, an index into CODES
        self.untold_parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.untold_warnings = 0
        self.plain: Future[np.ndarray] | None = None

    def add(self, columns: list[Any]) -> None:
        import numpy as np

        from fhs_bulk.sheets.read import column_take

        first = self.n
        n = len(columns[self.c_id])
        # Hot path, vectorised over the raw bytes: which rows hold a plainly valid ID, and its 18 digits.
        ok, digits = scan_order_ids(columns[self.c_id], n)
        for i, kind in self.kinds.items():  # a workbook's (read whole): its rows are this block's
            if kind in ("number", "formula"):
                ok[i] = False
        if self.whole:
            # The plainly valid IDs are sorted for the duplicate search on a thread while this one
            # explains the rest; the rows found valid once trimmed join the search after.
            self.plain = _sort_plain(digits, ok)
        # Slow path: the (few) rows whose ID is not plainly valid, blank rows included.
        nonblank = np.ones(n, dtype=bool)
        slow = np.nonzero(~ok)[0]
        if len(slow):
            cols_slow = [column_take(c, slow) for c in columns]
            ids_slow = cols_slow[self.c_id]
            for j, i in enumerate(slow.tolist()):
                if all(not col[j].strip() for col in cols_slow):
                    nonblank[i] = False  # a blank row (often one of thousands of formatted-but-empty ones)
                    continue
                value, untold_code, untold_warnings = _explain(ids_slow[j], self.kinds.get(i),
                                                               self.first_row + first + i, self.errors, self.warnings)
                self.untold_warnings += untold_warnings
                if untold_code is not None:
                    self.untold_at.append(first + i)
                    self.untold_code.append(_CODE_INDEX[untold_code])
                    if len(self.untold_at) >= UNTOLD_AT_ONCE:  # a sheet of garbage: packed into arrays as it goes
                        self._pack_untold()
                if value is not None:  # valid once trimmed
                    ok[i] = True
                    digits[i] = int(value[2:])
                    if self.whole:  # read in blocks, the trimmed rows join the sort at the end, as digits
                        self.overrides[first + i] = value
                        self.trimmed.append(first + i)
        found, beyond = _optional_findings(self.sheet.headers, columns, nonblank, self.first_row + first, first,
                                           self.verdicts, limit=MAX_FINDINGS - len(self.late))
        self.late += found
        for code, at in beyond.items():
            self.late_rows.append((code, np.array(at, dtype=np.int64)))
        if not self.whole:  # the column goes with the block: the odd rows' text is kept now
            odd = np.nonzero(nonblank & ~ok)[0]
            digits[odd] = 0  # whatever the scan left there, in range for id_texts (the text is the odd one)
            self.odd_at.append(odd + first)
            self.odd.append(column_take(columns[self.c_id], odd) if len(odd) <= ODD_AS_TEXT else
                            _arrow_take(columns[self.c_id], odd))
        if self.digits is None or self.ok is None or self.nonblank is None:
            # Sized from the first block's rows per byte (a sheet read whole: exactly), so the blocks are
            # not held twice to be joined.
            rows = self.room(n) if self.room is not None else n
            self.digits, self.ok, self.nonblank = (_Filled(a, rows) for a in (digits, ok, nonblank))
        else:
            for filled, a in ((self.digits, digits), (self.ok, ok), (self.nonblank, nonblank)):
                filled.add(a)
        self.n += n

    def finish(self, report: ValidationReport, variant: bool) -> ValidationReport:
        import numpy as np

        from fhs_bulk.validate.ids import CompactIds

        if self.n == 0:
            report.sheet_error = _no_data_rows(self.sheet.source)
            return report
        assert self.digits is not None and self.ok is not None and self.nonblank is not None
        digits, ok, nonblank = self.digits.rows(), self.ok.rows(), self.nonblank.rows()
        self.digits = self.ok = self.nonblank = None
        rows = int(np.count_nonzero(nonblank))
        if rows == 0:
            report.sheet_error = _no_data_rows(self.sheet.source)
            return report
        errors = self.errors
        row_numbers = range(self.first_row, self.first_row + self.n)
        if self.plain is not None:
            untold_repeats = _find_duplicates(self.plain.result(), digits, self.trimmed, ok, row_numbers, errors)
        else:  # sorted now, with the rows valid once trimmed among them
            untold_repeats = _find_duplicates(_sort_plain(digits, ok).result(), digits, [], ok, row_numbers, errors)
        if len(untold_repeats):
            self.untold_parts.append((untold_repeats, np.full(len(untold_repeats), _CODE_INDEX["order-id-duplicate"],
                                                              dtype=np.uint8)))
        for i, finding in self.late:
            if len(errors) < MAX_FINDINGS:
                errors.append(finding)
            elif ok[i]:  # a row already invalid keeps the code it has
                self.untold_at.append(i)
                self.untold_code.append(_CODE_INDEX[finding.code])
            ok[i] = False
        for code, beyond in self.late_rows:
            fresh = np.unique(beyond[ok[beyond]])
            self.untold_parts.append((fresh, np.full(len(fresh), _CODE_INDEX[code], dtype=np.uint8)))
            ok[fresh] = False
        untold_codes = self._untold_codes()
        keep = None if rows == self.n else np.nonzero(nonblank)[0]
        report.rows = rows
        # Consecutive rows stay a range; the non-blank ones of a sheet with blank rows, int32s.
        report.row_numbers = row_numbers if keep is None else (keep + self.first_row).astype(np.int32)
        report.valid_mask = ok if keep is None else ok[keep]
        if untold_codes is not None:
            report._untold = untold_codes if keep is None else untold_codes[keep]
        if self.whole:
            column = self.sheet.columns[self.c_id]
            compact = CompactIds.of(column, digits, ok, nonblank, self.overrides)
            report._ids = (compact, keep, {}) if compact is not None else (column, keep, self.overrides)
        else:
            report._ids = (CompactIds(digits, _joined(self.odd_at), _joined_texts(self.odd)), keep, {})
        untold = 0 if untold_codes is None else int(np.count_nonzero(untold_codes))
        return _findings(report, self.sheet, errors, self.warnings, untold, variant, self.untold_warnings)

    def _pack_untold(self) -> None:
        import numpy as np

        if self.untold_at:
            self.untold_parts.append((np.array(self.untold_at, dtype=np.int64),
                                      np.frombuffer(bytes(self.untold_code), dtype=np.uint8)))
            self.untold_at.clear()
            self.untold_code.clear()

    def _untold_codes(self) -> np.ndarray | None:
        """Per row, the code of an invalid row whose finding is not listed (an index into CODES, 0: none),
        or None when every finding is listed."""
        import numpy as np

        self._pack_untold()
        if not any(len(at) for at, _ in self.untold_parts):
            return None
        codes = np.zeros(self.n, dtype=np.uint8)
        for at, code in self.untold_parts:
            codes[at] = code
        self.untold_parts.clear()
        return codes


UNTOLD_AT_ONCE = 50_000  # unlisted rows gathered (a list and a bytearray) before they are packed into arrays
_CODE_INDEX = {code: n for n, code in enumerate(CODES, start=1)}  # an untold row's code, in one byte
_CODE_OF = dict(enumerate(CODES, start=1))




def _no_data_rows(source: str) -> Finding:
    return Finding(None, None, "no-data-rows", f"{source}: the sheet has the header but no orders below it. Paste "
                   f"the order IDs under '{domain.ORDER_ID_COLUMN}'.", None, "sheet")


def _findings(report: ValidationReport, sheet: Sheet, errors: list[Finding], warnings: list[Finding], untold: int,
              variant: bool, untold_warnings: int = 0) -> ValidationReport:
    """The findings in row order, the sheet-level warnings first, into the report."""
    errors.sort(key=lambda f: (f.row or 0))
    warnings.sort(key=lambda f: (f.row or 0))
    warnings[:0] = [Finding(None, None, "cells-outside-header", f"{sheet.source}: {note}", None, "warning")
                    for note in sheet.notes]
    if variant:
        warnings.insert(0, Finding(None, None, "sheet-name-variant",
                                   f"{sheet.source}: the name '{shown(sheet.name)}' is read as "
                                   f"'{domain.ORDER_SHEET_NAME}' (the contract name followed by ' (N)' or a date); "
                                   "SRMS's own upload wants the exact name.", None, "warning"))
    if untold:
        warnings.insert(0, Finding(None, None, "findings-truncated",
                                   f"{sheet.source}: {untold:,} more rows are invalid; only the first "
                                   f"{MAX_FINDINGS:,} findings are listed. Fix those (often one cause) and validate "
                                   "again.", None, "warning"))
    if untold_warnings:
        warnings.insert(0, Finding(None, None, "findings-truncated",
                                   f"{sheet.source}: {untold_warnings:,} more rows had spaces around the ID "
                                   f"trimmed; only the first {MAX_FINDINGS:,} of those warnings are listed.",
                                   None, "warning"))
    report.errors = errors
    report.warnings = warnings
    return report


_PLAIN_ID = re.compile(r"OD[0-9]{18}")


def _explain(text: str, kind: str | None, row: int, errors: list[Finding], warnings: list[Finding]
             ) -> tuple[str | None, str | None, int]:
    """The findings of one ID that is not plainly valid, into ``errors`` and ``warnings``: (the ID as
    sent, trimmed, if it is valid, else None; the code of its first error if it was invalid past
    MAX_FINDINGS and left untold; the warnings left untold past MAX_FINDINGS). Both limits keep a
    sheet of garbage, or of a million IDs with a space after them, in bounded memory."""
    value, issues = check_order_id(text, kind)
    untold_warnings = 0
    if len(errors) >= MAX_FINDINGS:
        untold = next((code for code, _ in issues if CODES[code][0] != "warning"), None)
        if untold is not None:
            return None, untold, 0
    valid = True
    for code, message in issues:
        if CODES[code][0] != "warning":
            valid = False
            errors.append(Finding(row, domain.ORDER_ID_COLUMN, code, message, cell_value(text)))
        elif len(warnings) < MAX_FINDINGS:
            warnings.append(Finding(row, domain.ORDER_ID_COLUMN, code, message, cell_value(text), "warning"))
        else:
            untold_warnings += 1
    return (value if valid else None), None, untold_warnings


def _validate_small(sheet: Sheet, report: ValidationReport, c_id: int, variant: bool) -> ValidationReport:
    """The checks of the vectorised path, row by row in Python, for a short sheet read as Python
    strings: importing numpy would take longer than the whole sheet's checks. Same findings, same
    order (a test holds both paths to it)."""
    ids, numbers, columns = sheet.columns[c_id], sheet.row_numbers, sheet.columns
    kinds = sheet.cell_kinds.get(c_id, {})
    n = len(sheet)
    ok = [False] * n
    nonblank = [True] * n
    shown_ids = list(ids)  # each row's ID as the upload sends it (trimmed where that made it valid)
    errors: list[Finding] = []
    warnings: list[Finding] = []
    untold = untold_warnings = 0
    for i, text in enumerate(ids):
        kind = kinds.get(i)
        if kind not in ("number", "formula") and _PLAIN_ID.fullmatch(text):
            ok[i] = True
            continue
        if all(not col[i].strip() for col in columns):
            nonblank[i] = False
            continue
        value, untold_code, untold_warning = _explain(text, kind, int(numbers[i]), errors, warnings)
        untold += untold_code is not None
        untold_warnings += untold_warning
        if value is not None:
            ok[i] = True
            shown_ids[i] = value
    keep = [i for i in range(n) if nonblank[i]]
    if not keep:
        report.sheet_error = _no_data_rows(sheet.source)
        return report
    first: dict[str, int] = {}
    for i in range(n):
        if ok[i]:
            value = shown_ids[i]
            if value in first:
                ok[i] = False
                errors.append(_repeat(int(numbers[i]), value, first[value]))
            else:
                first[value] = int(numbers[i])
    _check_optional_columns(sheet, nonblank, ok, errors)
    report.rows = len(keep)
    report.row_numbers = [int(numbers[i]) for i in keep]
    report.valid_mask = [ok[i] for i in keep]
    report._ids = ([shown_ids[i] for i in keep], None, {})
    return _findings(report, sheet, errors, warnings, untold, variant, untold_warnings)


def scan_order_ids(col: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(valid, digits) for every row: valid is exactly the pattern OD + 18 ASCII digits, and digits
    is the 18 digits as an int64 where valid.

    Works on the UTF-8 bytes, zero-copy: an order ID is 20 bytes, read as four words (the "OD", two
    runs of eight digits, the last two digits) and checked and converted a word at a time, so a row
    costs a few array passes rather than one per character.
    """
    import numpy as np

    from fhs_bulk.sheets.read import column_buffers

    ok = np.zeros(n, dtype=bool)
    digits = np.zeros(n, dtype=np.int64)

    def scan(part: tuple[np.ndarray, np.ndarray, int]) -> None:
        offsets, data, first = part
        is20 = np.diff(offsets) == 20
        k = int(np.count_nonzero(is20))
        if k == 0:
            return
        whole = k == len(is20)
        rows = _twenty_byte_rows(offsets, data, is20, k)

        def words(size: int, at: int) -> np.ndarray:  # one word of every row, at a fixed stride
            return np.ndarray((k,), dtype=f"<u{size}", buffer=rows, offset=at, strides=(20,))

        good = words(2, 0) == 0x444F  # "OD", little-endian
        scratch = np.empty(k, dtype=np.uint64)
        value = _eight_digits(np.array(words(8, 2)), good, scratch)
        low = _eight_digits(np.array(words(8, 10)), good, scratch)
        last = words(2, 18) - np.uint16(0x3030)  # digits 19 and 20, each wrapping below "0"
        tens = last & np.uint16(0xFF)
        last >>= np.uint16(8)
        good &= tens < 10
        good &= last < 10
        value *= np.uint64(10**10)
        low *= np.uint64(100)
        value += low
        tens *= np.uint16(10)
        tens += last
        value += tens
        end = first + len(is20)
        if whole:
            ok[first:end] = good
            digits[first:end] = value.view(np.int64)
        else:
            ok[first:end][is20] = good
            digits[first:end][is20] = value.view(np.int64)

    parts = [piece for part in column_buffers(col) for piece in _pieces(*part)]
    _on_both_cores(scan, parts)
    return ok, digits


def _twenty_byte_rows(offsets: np.ndarray, data: np.ndarray, is20: np.ndarray, k: int) -> np.ndarray:
    """The bytes of the piece's 20-byte rows, back to back: a view when every row is 20 bytes, else a
    copy of the runs between the odd rows (a handful, in practice) or, for a sheet of mostly odd
    rows, a byte mask."""
    import numpy as np

    span = data[offsets[0]: offsets[-1]]
    if k == len(is20):
        return span
    odd = np.nonzero(~is20)[0]
    if len(odd) * 64 > len(is20):
        return span[np.repeat(is20, np.diff(offsets))]
    run_starts = [int(offsets[0]), *offsets[odd + 1].tolist()]
    run_ends = [*offsets[odd].tolist(), int(offsets[-1])]
    return np.concatenate([data[a:b] for a, b in zip(run_starts, run_ends, strict=True) if b > a])


_HIGH_NIBBLES = 0xF0F0F0F0F0F0F0F0
_ZEROS = 0x3030303030303030  # eight "0"s


def _eight_digits(word: np.ndarray, good: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Eight ASCII characters per little-endian uint64 (in place): clears ``good`` where one is not
    0-9 and returns their value, combining neighbours in pairs, fours, then eights."""
    import numpy as np

    np.bitwise_and(word, _HIGH_NIBBLES, out=scratch)  # each byte 0x30-0x3F ...
    good &= scratch == _ZEROS
    np.add(word, 0x0606060606060606, out=scratch)  # ... and still below 0x40 with 6 added: 0x30-0x39
    scratch &= _HIGH_NIBBLES
    good &= scratch == _ZEROS
    word -= _ZEROS
    for shift, scale, mask in ((8, 10, 0x00FF00FF00FF00FF), (16, 100, 0x0000FFFF0000FFFF),
                               (32, 10_000, 0x00000000FFFFFFFF)):
        np.right_shift(word, shift, out=scratch)
        word *= scale
        word += scratch
        word &= mask
    return word


PARALLEL_ROWS = 200_000  # from here on the ID checks are split between two threads (numpy lets go of the GIL)
PIECE_ROWS = 131_072  # rows per piece of the scan (two threads take pieces in turn)


def _pieces(offsets: np.ndarray, data: np.ndarray, first: int) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """A chunk of a column as pieces of PIECE_ROWS rows (views, no copies)."""
    rows = len(offsets) - 1
    for a in range(0, rows, PIECE_ROWS):
        yield offsets[a:min(rows, a + PIECE_ROWS) + 1], data, first + a


def _on_both_cores(fn: Callable[[Any], None], items: list[Any]) -> None:
    """``fn`` over ``items`` on two threads when there are many rows' worth, else on this one."""
    if len(items) * PIECE_ROWS < PARALLEL_ROWS:
        for item in items:
            fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="validate") as pool:
        for _ in pool.map(fn, items):
            pass


def _sort_plain(digits: np.ndarray, ok: np.ndarray) -> Future[np.ndarray]:
    """The digits of the rows valid as they stand, sorted (every other row reads -1): on a thread for
    a long sheet (numpy's sort lets go of the GIL), at once for a short one."""
    from concurrent.futures import Future

    import numpy as np

    def sort(snapshot: np.ndarray) -> np.ndarray:
        # The slow path writes digits meanwhile only where the snapshot says invalid: never taken here.
        values = np.where(snapshot, digits, -1)
        values.sort()
        return values

    if len(digits) < PARALLEL_ROWS:
        done: Future[np.ndarray] = Future()
        done.set_result(sort(ok))
        return done
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate-sort")
    try:
        return pool.submit(sort, ok.copy())  # the slow path turns rows valid meanwhile: not these
    finally:
        pool.shutdown(wait=False)


def _find_duplicates(ordered: np.ndarray, digits: np.ndarray, trimmed: list[int], ok: np.ndarray,
                     row_numbers: range, errors: list[Finding]) -> np.ndarray:
    """Later rows repeating an earlier row's ID become invalid: a sort of int64s, no string hashing.

    ``ordered`` is the plainly valid rows' digits sorted (-1 for the rest; a few ms per million): it
    says whether any ID repeats and which, and the rows valid once trimmed are looked up in it. The
    rows holding the repeated IDs are then found through a 2**20-entry table of their low bits (one
    gather, no second sort), and the few candidates checked exactly. Past MAX_FINDINGS findings a
    repeat is not listed (a sheet pasted twice stays in bounded memory): returns those repeats' rows."""
    import numpy as np

    same = ordered[1:] == ordered[:-1]
    repeated = np.unique(ordered[1:][same]) if same.any() else ordered[:0]
    del same
    if trimmed:
        extra = digits[trimmed]
        at = np.minimum(np.searchsorted(ordered, extra), len(ordered) - 1)
        values, counts = np.unique(extra, return_counts=True)
        repeated = np.union1d(repeated, np.concatenate([extra[ordered[at] == extra], values[counts > 1]]))
    repeated = repeated[repeated >= 0]
    if not len(repeated):
        return np.zeros(0, dtype=np.int64)
    low = (1 << 20) - 1
    table = np.zeros(low + 1, dtype=bool)
    table[repeated & low] = True
    found: dict[int, np.ndarray] = {}

    def search(start: int) -> None:  # a piece at a time, on both cores: small temporaries, no page faults
        low_bits = digits[start:start + PIECE_ROWS].astype(np.uint32)  # the bits the table needs
        low_bits &= low
        found[start] = np.nonzero(table[low_bits] & ok[start:start + PIECE_ROWS])[0] + start

    _on_both_cores(search, list(range(0, len(digits), PIECE_ROWS)))
    candidates = np.concatenate([found[start] for start in sorted(found)])
    hits = candidates[np.isin(digits[candidates], repeated)]  # ascending: sheet order
    # Grouped by ID (a stable sort keeps sheet order within each): every row after its group's first is
    # a repeat of that first row.
    order = np.argsort(digits[hits], kind="stable")
    values = digits[hits][order]
    starts = np.ones(len(values), dtype=bool)
    starts[1:] = values[1:] != values[:-1]
    group_first = hits[order[np.maximum.accumulate(np.where(starts, np.arange(len(values)), 0))]]
    repeats, firsts = hits[order[~starts]], group_first[~starts]
    by_row = np.argsort(repeats)
    repeats, firsts = repeats[by_row], firsts[by_row]
    ok[repeats] = False
    room = max(0, min(len(repeats), MAX_FINDINGS - len(errors)))  # the earliest repeats are listed
    for i, first in zip(repeats[:room].tolist(), firsts[:room].tolist(), strict=True):
        errors.append(_repeat(int(row_numbers[i]), f"OD{int(digits[i]):018d}", int(row_numbers[first])))
    return repeats[room:]


def _repeat(row: int, value: str, first: int) -> Finding:
    return Finding(row, domain.ORDER_ID_COLUMN, "order-id-duplicate",
                   f"'{value}' is already on row {first}; each order goes in once. Delete this row.", value)


def _check_optional_columns(sheet: Sheet, nonblank: list[bool], ok: list[bool], errors: list[Finding]) -> None:
    """FSN and service of a short sheet checked without numpy (lists per sheet row)."""
    found, _ = _optional_findings(sheet.headers, sheet.columns, nonblank, sheet.row_numbers.start, 0, {},
                                  limit=len(nonblank) * 2)  # a short sheet: every finding
    for i, finding in found:
        ok[i] = False
        errors.append(finding)


def _optional_findings(headers: list[str], columns: list[Any], nonblank: Any, first_row: int, first: int,
                       verdicts: dict[int, dict[str, tuple[str, str] | None]], limit: int = MAX_FINDINGS,
                       ) -> tuple[list[tuple[int, Finding]], dict[str, list[int]]]:
    """(row index + ``first``, finding) for the FSN and service cells of a block of rows that are not
    fit for a bulk upload, FSN first, up to ``limit`` findings; and the row indices of the rest by code
    (bounded memory for a sheet of millions of bad cells). Each distinct value is judged once (``verdicts``
    carries the judged values from block to block). ``nonblank`` per row of the block: a numpy array,
    or a list for a short sheet checked without numpy; ``first_row`` is the block's first spreadsheet row."""
    found: list[tuple[int, Finding]] = []
    beyond: dict[str, list[int]] = {}
    for name, judge in ((FSN_COLUMN, _judge_fsn), (SERVICE_COLUMN, _judge_service)):
        c = _find_column(headers, name)
        if c is None:
            continue
        seen = verdicts.setdefault(c, {})
        column = columns[c]
        for i, (code, message), cell in (_arrow_column_verdicts(column, judge, nonblank, seen)
                                         if not isinstance(column, list) else
                                         _list_column_verdicts(column, judge, nonblank, seen)):
            if len(found) < limit:
                found.append((first + i, Finding(first_row + i, headers[c], code, message, cell_value(cell))))
            else:
                beyond.setdefault(code, []).append(first + i)
    return found, beyond


def _list_column_verdicts(col: list[str], judge: Callable[[str], tuple[str, str] | None], nonblank: Any,
                          seen: dict[str, tuple[str, str] | None]) -> Iterator[tuple[int, tuple[str, str], str]]:
    """(row, verdict, cell) of the non-blank rows of a column of Python strings whose value fails
    ``judge``, row by row (each distinct value judged once)."""
    flags = nonblank if isinstance(nonblank, list) else nonblank.tolist()
    for i, cell in enumerate(col):
        if flags[i]:
            verdict = seen[cell] if cell in seen else seen.setdefault(cell, judge(cell))
            if verdict is not None:
                yield i, verdict, cell


def _arrow_column_verdicts(col: Any, judge: Callable[[str], tuple[str, str] | None], nonblank: np.ndarray,
                           seen: dict[str, tuple[str, str] | None]) -> Iterator[tuple[int, tuple[str, str], str]]:
    """(row, verdict, cell) of the non-blank rows of a pyarrow column whose value fails ``judge``:
    its distinct values judged, the bad rows found at once."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
    uniques: list[str] = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    verdicts = [seen[v] if v in seen else seen.setdefault(v, judge(v)) for v in uniques]
    bad = np.array([v is not None for v in verdicts], dtype=bool)
    if not bad.any():
        return
    for i in np.nonzero(bad[codes] & nonblank)[0].tolist():
        verdict = verdicts[codes[i]]
        assert verdict is not None
        yield i, verdict, uniques[codes[i]]


def _find_column(headers: Iterable[str], name: str) -> int | None:
    for i, h in enumerate(headers):
        if h.strip().casefold() == name:
            return i
    return None


def _judge_fsn(value: str) -> tuple[str, str] | None:
    v = value.strip()
    if v.startswith(domain.ODS_FSN_PREFIX):
        return None
    if not v:
        return ("fsn-not-ods", "the FSN is empty; only orders whose FSN starts with ODS may be bulk registered. "
                               "Fill it in or remove the row.")
    return ("fsn-not-ods", f"FSN '{shown(v)}' does not start with ODS: only ODS service orders may be bulk "
                           "registered. Remove the row (register it as a single ticket if it needs service).")


_ELIGIBLE_LOWER = {s.casefold(): s for s in domain.BULK_ELIGIBLE_SERVICES}


def _judge_service(value: str) -> tuple[str, str] | None:
    if domain.eligible_service(value):
        return None
    if not value.strip():
        return ("service-not-bulk-eligible", "the service is empty; name one of the 14 bulk-eligible services.")
    close = get_close_matches(" ".join(value.split()).casefold(), list(_ELIGIBLE_LOWER), n=1, cutoff=0.6)
    hint = f" Did you mean '{_ELIGIBLE_LOWER[close[0]]}'?" if close else (
        " Only the 14 bulk-eligible services may go in this sheet (see the README).")
    return ("service-not-bulk-eligible", f"service '{shown(value)}' is not bulk-eligible.{hint}")
