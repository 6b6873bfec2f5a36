"""Formula-safe CSV from JSON rows: the fast path (string operations) writes exactly what the csv
module writes for the defused cells, whatever the cells hold."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fhs_bulk.sheets.write import defuse, json_rows_csv

CELL = st.one_of(st.none(), st.integers(-10**12, 10**12),
                 st.text(alphabet=st.sampled_from(list('ab ,"[]\\\r\n\t=+-@\ufeff\u200bé𝄞null')), max_size=8),
                 st.text(max_size=6))


def reference(rows: list[list[object]]) -> str:
    fh = io.StringIO()
    csv.writer(fh).writerows([defuse(v) for v in row] for row in rows)
    return fh.getvalue()


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 7).flatmap(lambda n: st.lists(st.lists(CELL, min_size=n, max_size=n), max_size=6)))
@example([[2, "OD1", "already-registered", None, "BK-1", "SRM-1", "registered by an earlier run"]])
@example([[None, "x"], [None, None]])
@example([["a,b", "[x]"], ["null", ",null"]])
@example([["=1+1", "\ufeff=A1"], ["-", "@x"]])
def test_json_rows_csv_matches_the_csv_module(rows: list[list[object]]) -> None:
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
    columns = len(rows[0]) if rows else 1
    assert json_rows_csv(text, len(rows), columns) == reference(rows)


def test_plain_rows_take_the_fast_path_and_still_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [[i + 2, f"OD{i:018d}", "registered", None, f"BK-{i:036d}", None, ""] for i in range(1000)]
    with monkeypatch.context() as m:
        m.setattr(csv, "writer", None)  # the fast path needs no csv writer
        out = json_rows_csv(json.dumps(rows, separators=(",", ":"), ensure_ascii=False), 1000, 7)
    assert list(csv.reader(io.StringIO(out))) == [["" if v is None else str(v) for v in r] for r in rows]


NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
SHEET = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
         '2006/main"><dimension ref="A1:C4"/><sheetData>{rows}</sheetData></worksheet>')
ROWS = {
    "compact": '<row r="1" spans="1:3"><c r="A1" t="inlineStr"><is><t>a1</t></is></c><c r="C1" s="2"><v>7</v></c>'
               '</row><row r="3" spans="1:3"/><row r="4"><c r="B4" t="inlineStr"><is><r><rPr><color rgb="FFFF0000"/>'
               '</rPr><t>rich</t></r></is></c><c r="C4"><f>1+1</f><v>2</v></c></row>',
    "pretty": '\n  <row r="1" spans="1:3">\n    <c r="A1" t="inlineStr"><is><t>a1</t></is></c>\n    <c r="C1" s="2">'
              '<v>7</v></c>\n  </row>\n  <row r="3" spans="1:3"/>\n  <row r="4">\n    <c r="B4" t="inlineStr"><is><r>'
              '<rPr><color rgb="FFFF0000"/></rPr><t>rich</t></r></is></c>\n    <c r="C4"><f>1+1</f><v>2</v></c>\n'
              '  </row>\n',
    "odd": '<row  r="1"><c  r="A1" t="inlineStr"><is><t>a1</t></is></c><c s="2" r="C1"><v>7</v></c></row>'
           '<row r="3"/><row r="4"><c r="B4" t="inlineStr"><is><r><rPr><color rgb="FFFF0000"/></rPr><t>rich</t></r>'
           '</is></c><c r="C4"><f>1+1</f><v>2</v></c></row>',
}


def sheet_cells(xml: bytes) -> list[tuple[int, list[tuple[str, str, str | None]]]]:
    """(row, [(ref, text, style)]) in document order, as an XML parser reads them."""
    import xml.etree.ElementTree as ET

    out = []
    for row in ET.fromstring(xml).iter(NS + "row"):
        cells = [(c.get("r") or "", "".join(t.text or "" for t in c.iter(NS + "t")) or
                  "".join(v.text or "" for v in c.iter(NS + "v")), c.get("s")) for c in row.iter(NS + "c")]
        out.append((int(row.get("r") or 0), cells))
    return out


@pytest.mark.parametrize("layout", sorted(ROWS))
def test_sheet_rows_patched_whatever_the_layout(layout: str) -> None:
    """Cells set in changed rows, new rows in order, every other cell (styles, rich text, formulas
    outside the written cells) kept, however the rows are laid out."""
    from fhs_bulk.sheets.xlsx_cells import patch_sheet_rows

    xml = SHEET.format(rows=ROWS[layout]).encode()
    out = patch_sheet_rows(xml, {1: {2: "b1 <&>", 3: "c1"}, 2: {1: "new"}, 3: {2: "b3"}, 4: {1: "a4"}, 6: {3: "c6"}})
    assert out is not None
    assert sheet_cells(out) == [
        (1, [("A1", "a1", None), ("B1", "b1 <&>", None), ("C1", "c1", "2")]),  # style of the replaced cell kept
        (2, [("A2", "new", None)]),
        (3, [("B3", "b3", None)]),
        (4, [("A4", "a4", None), ("B4", "rich", None), ("C4", "2", None)]),
        (6, [("C6", "c6", None)]),
    ]
    assert b"<f>1+1</f>" in out and b'<color rgb="FFFF0000"/>' in out and b'<dimension ref="A1:C6"/>' in out
    assert patch_sheet_rows(xml, {4: {3: "x"}}) is None  # a formula is never overwritten
