"""Reading a sheet of requests (`ticket create --from`, `ticket reschedule|cancel|reopen --from`): each
field found under any of its accepted column names (the tracker's spellings too), blank rows skipped,
spreadsheet row numbers kept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fhs_bulk.errors import SheetError


def read_requests(path: str, fields: Sequence[str], columns: Mapping[str, Sequence[str]], key: str,
                  key_name: str) -> list[tuple[int, dict[str, str]]]:
    """(row, {field: text}) per non-blank row; the ``key`` field's column must be there."""
    from fhs_bulk.sheets.read import column_list, read_sheet

    sheet = read_sheet(path)
    lookup = {h.strip().casefold(): i for i, h in enumerate(sheet.headers)}
    cols: dict[str, list[str]] = {}
    for fld in fields:
        for name in columns[fld]:
            if name.casefold() in lookup:
                cols[fld] = column_list(sheet.columns[lookup[name.casefold()]])
                break
    if key not in cols:
        raise SheetError(f"{path}: no {key_name} column; see the README for the request sheet's columns.",
                         code="header-missing", path=path)
    out = []
    for i, row in enumerate(sheet.row_numbers):
        values = {fld: cols[fld][i] if fld in cols else "" for fld in fields}
        if any(v.strip() for v in values.values()):
            out.append((row, values))
    return out
