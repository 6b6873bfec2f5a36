"""The order sheet: every finding code, every sheet-level error, the file quirks of real programs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from fhs_bulk.cli import main
from fhs_bulk.validate.check import CODES, check_order_id, validate_sheet
from tests.conftest import SAMPLES

GOOD = ["OD118034507542581000", "OD118034507542581001", "OD218034507542581002"]


def write_csv(path: Path, rows: list[list[str]], *, bom: bool = False, newline: str = "\n",
              delimiter: str = ",") -> Path:
    text = newline.join(delimiter.join(r) for r in rows) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def sheet(tmp_path: Path, rows: list[list[str]], name: str = "FK_ODS_ORDER_CREATE.csv", **kw) -> Path:
    return write_csv(tmp_path / name, rows, **kw)


def codes(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.code for f in report.errors]


# ------------------------------------------------------------ the order-ID checker (property tests)

order_ids = st.from_regex(r"\AOD[0-9]{18}\Z")


@given(order_ids)
def test_every_valid_id_passes(oid: str) -> None:
    assert check_order_id(oid) == (oid, [])


@given(order_ids, st.integers(0, 19))
def test_lowercase_is_caught(oid: str, _: int) -> None:
    value, issues = check_order_id(oid.lower())
    assert [c for c, _ in issues] == ["order-id-lowercase"]
    assert "OD" + oid[2:] in issues[0][1]


@given(order_ids, st.integers(2, 19), st.sampled_from(["\u00a0", "\u200b", "-", "/", "é", "\u2009"]))
def test_foreign_character_named_by_code_point_and_position(oid: str, pos: int, ch: str) -> None:
    bad = oid[:pos] + ch + oid[pos:]
    _, issues = check_order_id(bad)
    assert [c for c, _ in issues] == ["order-id-character"]
    assert f"U+{ord(ch):04X}" in issues[0][1] and f"position {pos + 1}" in issues[0][1]


@given(order_ids, st.integers(2, 19))
def test_missing_digit_is_length(oid: str, pos: int) -> None:
    _, issues = check_order_id(oid[:pos] + oid[pos + 1:])
    assert [c for c, _ in issues] == ["order-id-length"]


@given(order_ids, st.integers(2, 19), st.sampled_from("0123456789"))
def test_extra_digit_is_length(oid: str, pos: int, d: str) -> None:
    _, issues = check_order_id(oid[:pos] + d + oid[pos:])
    assert [c for c, _ in issues] == ["order-id-length"]


@given(order_ids, st.integers(2, 19), st.sampled_from("ABCXYZ"))
def test_letter_among_digits(oid: str, pos: int, letter: str) -> None:
    _, issues = check_order_id(oid[:pos] + letter + oid[pos + 1:])
    assert [c for c, _ in issues] == ["order-id-digits"]


@given(order_ids, st.sampled_from(["OX", "DO", "0D", "QD"]))
def test_wrong_prefix(oid: str, prefix: str) -> None:
    _, issues = check_order_id(prefix + oid[2:])
    assert [c for c, _ in issues] == ["order-id-prefix"]


@given(order_ids, st.text(" \t", min_size=1, max_size=3), st.text(" \t", max_size=3))
def test_surrounding_spaces_are_a_warning_only(oid: str, before: str, after: str) -> None:
    value, issues = check_order_id(before + oid + after)
    assert value == oid
    assert [c for c, _ in issues] == ["order-id-whitespace"]


def test_number_shapes_and_formula_and_huge_value() -> None:
    assert check_order_id("1.18034507542581E+17")[1][0][0] == "order-id-number"
    assert check_order_id("118034507542581000", "number")[1][0][0] == "order-id-number"
    assert check_order_id("118034507542581000")[1][0][0] == "order-id-prefix"  # 18 digits: OD lost
    assert check_order_id('="OD118034507542581000"')[1][0][0] == "order-id-formula"
    huge = "OD" + "1" * 1_000_000
    _, issues = check_order_id(huge)
    assert issues[0][0] == "order-id-too-long" and len(issues[0][1]) < 300


# ------------------------------------------------------------ sheets


def test_valid_csv(tmp_path: Path) -> None:
    r = validate_sheet(sheet(tmp_path, [["fk_order_id"], *[[g] for g in GOOD]]))
    assert r.ok and r.rows == 3 and r.valid == 3 and r.exit_code == 0


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_bom_and_crlf(tmp_path: Path, bom: bool, newline: str) -> None:
    r = validate_sheet(sheet(tmp_path, [["fk_order_id", "remarks"], [GOOD[0], "x"], [GOOD[1], "y"]],
                             bom=bom, newline=newline))
    assert r.ok and r.valid == 2, r.as_dict()


def test_row_numbers_count_blank_lines_and_skip_blank_rows(tmp_path: Path) -> None:
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text(f"fk_order_id,remarks\n{GOOD[0]},a\n\n,\n{GOOD[0]},dup\n" + ",\n" * 5000, encoding="utf-8")
    r = validate_sheet(p)
    assert r.rows == 2
    assert [(f.row, f.code) for f in r.errors] == [(5, "order-id-duplicate")]
    assert "row 2" in r.errors[0].message


def test_duplicates_name_the_first_row(tmp_path: Path) -> None:
    rows = [["fk_order_id"], [GOOD[0]], [GOOD[1]], [GOOD[0]], [" " + GOOD[1]]]
    r = validate_sheet(sheet(tmp_path, rows))
    assert [(f.row, f.code) for f in r.errors] == [(4, "order-id-duplicate"), (5, "order-id-duplicate")]
    assert "row 2" in r.errors[0].message and "row 3" in r.errors[1].message
    assert [f.code for f in r.warnings] == ["order-id-whitespace"]


def test_fsn_and_service_columns(tmp_path: Path) -> None:
    rows = [["fk_order_id", "fsn", "service"], [GOOD[0], "ODSABCDEFGHIJKLM", "sp  tv"],
            [GOOD[1], "TVSABCDEFGHIJKLM", "SP TV"], [GOOD[2], "ODSABCDEFGHIJKLM", "Geyzer"]]
    r = validate_sheet(sheet(tmp_path, rows))
    assert [(f.row, f.code) for f in r.errors] == [(3, "fsn-not-ods"), (4, "service-not-bulk-eligible")]
    assert "Did you mean 'Geyser'" in r.errors[1].message
    assert r.valid == 1


@pytest.mark.parametrize("header,found", [("FK_ORDER_ID", "FK_ORDER_ID"), ("Order ID", "Order ID")])
def test_wrong_header_is_sheet_level(tmp_path: Path, header: str, found: str) -> None:
    r = validate_sheet(sheet(tmp_path, [[header], [GOOD[0]]]))
    assert r.sheet_error.code == "header-missing" and found in r.sheet_error.message
    assert "fk_order_id" in r.sheet_error.message and r.exit_code == 2


def test_duplicate_header(tmp_path: Path) -> None:
    r = validate_sheet(sheet(tmp_path, [["fk_order_id", "fk_order_id"], [GOOD[0], GOOD[1]]]))
    assert r.sheet_error.code == "header-duplicate"


def test_wrong_sheet_name(tmp_path: Path) -> None:
    r = validate_sheet(sheet(tmp_path, [["fk_order_id"], [GOOD[0]]], name="orders.csv"))
    assert r.sheet_error.code == "sheet-name" and "FK_ODS_ORDER_CREATE" in r.sheet_error.message


def test_no_data_rows(tmp_path: Path) -> None:
    r = validate_sheet(sheet(tmp_path, [["fk_order_id", "x"], ["", ""], [" ", ""]]))
    assert r.sheet_error.code == "no-data-rows"


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_exports_are_read(tmp_path: Path, delimiter: str) -> None:
    r = validate_sheet(sheet(tmp_path, [["fk_order_id", "remarks"], [GOOD[0], "a"], ["od1", "b"]],
                             delimiter=delimiter))
    assert r.rows == 2 and r.valid == 1 and codes(r) == ["order-id-lowercase"]


def test_other_encoding_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_bytes(f"fk_order_id,remarks\n{GOOD[0]},caf\xe9\n".encode("latin-1"))
    r = validate_sheet(p)
    assert r.sheet_error.code == "sheet-encoding" and "line 2" in r.sheet_error.message


def test_utf16_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_bytes(f"fk_order_id\n{GOOD[0]}\n".encode("utf-16"))
    assert validate_sheet(p).sheet_error.code == "sheet-encoding"


def test_ragged_csv_is_read(tmp_path: Path) -> None:
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text(f"fk_order_id,remarks\n{GOOD[0]}\n{GOOD[1]},a,extra\n", encoding="utf-8")
    r = validate_sheet(p)
    assert r.rows == 2 and r.valid == 2


@pytest.mark.parametrize("name,content,code", [
    ("FK_ODS_ORDER_CREATE.csv", None, "sheet-not-found"),
    ("FK_ODS_ORDER_CREATE.csv", b"", "sheet-empty-file"),
    ("FK_ODS_ORDER_CREATE.pdf", b"%PDF-1.4", "sheet-unknown-type"),
    ("FK_ODS_ORDER_CREATE.xlsx", b"\x00\x01garbage" * 50, "sheet-unreadable"),
    ("FK_ODS_ORDER_CREATE.csv", b"\x00\x01\x02garbage", "sheet-unreadable"),
])
def test_files_that_are_not_sheets(tmp_path: Path, name: str, content: bytes | None, code: str) -> None:
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content)
    r = validate_sheet(p)
    assert r.sheet_error.code == code and str(p) in r.sheet_error.message


def test_truncated_xlsx_and_directory(tmp_path: Path) -> None:
    full = xlsx(tmp_path / "full.xlsx", [["fk_order_id"], [GOOD[0]]])
    p = tmp_path / "FK_ODS_ORDER_CREATE.xlsx"
    p.write_bytes(full.read_bytes()[:300])
    assert validate_sheet(p).sheet_error.code == "sheet-unreadable"
    d = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    d.mkdir()
    assert validate_sheet(d).sheet_error.code == "sheet-is-directory"


def xlsx(path: Path, rows: list[list[object]], formulas: dict[str, str] | None = None,
         trailing_formatted: int = 0) -> Path:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    for ref, f in (formulas or {}).items():
        ws[ref] = f
    for i in range(trailing_formatted):
        ws.cell(row=len(rows) + 1 + i, column=1).number_format = "@"
        ws.cell(row=len(rows) + 1 + i, column=1).value = None
    wb.save(path)
    return path


def test_xlsx_number_formula_and_trailing_rows(tmp_path: Path) -> None:
    p = xlsx(tmp_path / "FK_ODS_ORDER_CREATE.xlsx",
             [["fk_order_id", "remarks"], [GOOD[0], "ok"], [118034507542581000, "number"], [None, "formula"],
              [GOOD[1], "ok"]],
             formulas={"A4": '="OD1180345075425"&"81009"'}, trailing_formatted=3000)
    r = validate_sheet(p)
    assert r.rows == 4 and r.valid == 2
    assert [(f.row, f.code) for f in r.errors] == [(3, "order-id-number"), (4, "order-id-formula")]
    assert "1.18034507542581E+17" in r.errors[0].message


def test_formulas_among_many_formatted_cells_are_found_in_linear_time(tmp_path: Path) -> None:
    """Formula cells are told from the sheet XML; 30,000 formatted empty cells after them once made
    that search quadratic (minutes). Every formula row is named, in seconds."""
    rows: list[list[object]] = [["fk_order_id", "remarks"]] + [[None, "formula"] for _ in range(50)]
    formulas = {f"A{r}": f'="{GOOD[0]}"' for r in range(2, 52)}
    p = xlsx(tmp_path / "FK_ODS_ORDER_CREATE.xlsx", rows, formulas=formulas, trailing_formatted=30_000)
    t0 = time.perf_counter()
    r = validate_sheet(p)
    assert time.perf_counter() - t0 < 15
    assert [(f.row, f.code) for f in r.errors] == [(row, "order-id-formula") for row in range(2, 52)]


def test_values_outside_the_header_are_a_warning(tmp_path: Path) -> None:
    p = xlsx(tmp_path / "FK_ODS_ORDER_CREATE.xlsx", [["fk_order_id"], [GOOD[0], None, "stray note"]])
    r = validate_sheet(p)
    assert r.ok and [w.code for w in r.warnings] == ["cells-outside-header"] and r.warnings[0].row is None


def test_xls_and_ods(tmp_path: Path) -> None:
    import xlwt

    wb = xlwt.Workbook()
    ws = wb.add_sheet("Sheet1")
    for i, v in enumerate(["fk_order_id", GOOD[0], 118034507542581000.0, "od1"]):
        ws.write(i, 0, v)
    wb.save(str(tmp_path / "FK_ODS_ORDER_CREATE.xls"))
    r = validate_sheet(tmp_path / "FK_ODS_ORDER_CREATE.xls")
    assert r.valid == 1 and codes(r) == ["order-id-number", "order-id-lowercase"]

    ods = tmp_path / "FK_ODS_ORDER_CREATE.ods"
    write_ods(ods, [["fk_order_id"], [GOOD[0]], [GOOD[0]], ["OD12"]])
    r = validate_sheet(ods)
    assert r.rows == 3 and codes(r) == ["order-id-duplicate", "order-id-length"]


def write_ods(path: Path, rows: list[list[str]]) -> None:
    """A minimal OpenDocument spreadsheet, as LibreOffice would read it."""
    cells = "".join(
        "<table:table-row>" + "".join(
            f'<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>' for v in r)
        + "</table:table-row>" for r in rows)
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="Sheet1">{cells}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>")
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", content)
        z.writestr("META-INF/manifest.xml", manifest)


# ------------------------------------------------------------ the command


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = sheet(tmp_path, [["fk_order_id"], [GOOD[0]]])
    res = runner.invoke(main, ["validate", str(ok), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout) == {"sheet": str(ok), "rows": 1, "valid": 1, "invalid": 0, "errors": [],
                                      "warnings": []}
    bad = sheet(tmp_path / "..", [["fk_order_id"], [GOOD[0]], ["od1 "]])
    res = runner.invoke(main, ["validate", str(bad), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and doc["invalid"] == 1 and doc["errors"][0]["row"] == 3
    assert doc["errors"][0]["column"] == "fk_order_id" and doc["warnings"][0]["code"] == "order-id-whitespace"
    assert doc == validate_sheet(str(bad)).as_dict()  # the streamed document is the report's dict
    res = runner.invoke(main, ["validate", str(tmp_path / "missing.csv"), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 2 and doc["errors"][0]["row"] is None and doc["errors"][0]["code"] == "sheet-not-found"
    res = runner.invoke(main, ["validate"])
    assert res.exit_code == 2


def test_cli_human_output_and_report(tmp_path: Path) -> None:
    p = sheet(tmp_path, [["fk_order_id"], *[[f"od{i}"] for i in range(30)]])
    out = tmp_path / "findings.xlsx"
    res = CliRunner().invoke(main, ["validate", str(p), "--report", str(out)])
    assert res.exit_code == 1
    # The report is the command's output (stdout); a cut list says where the rest is.
    assert "30 rows, 0 valid, 30 invalid" in res.stdout and f"and 10 more: see {out}" in res.stdout
    assert "\terror\torder-id-lowercase\t" in res.stdout and res.stderr == ""
    assert "Traceback" not in res.output
    ws = load_workbook(out).active
    assert ws.max_row == 31 and ws["D2"].value == "order-id-lowercase"
    csv_out = tmp_path / "findings.csv"
    CliRunner().invoke(main, ["validate", str(p), "--report", str(csv_out)])
    with open(csv_out, newline="") as fh:
        assert len(list(csv.reader(fh))) == 31


def test_samples_show_both_outcomes() -> None:
    from tests.conftest import SAMPLES

    for name in ("FK_ODS_ORDER_CREATE.xlsx", "FK_ODS_ORDER_CREATE.csv"):
        r = validate_sheet(SAMPLES / name)
        assert r.sheet_error is None and r.valid > 20 and r.invalid >= 4
        assert {"order-id-number", "order-id-duplicate", "order-id-lowercase", "order-id-character"} <= set(codes(r))


def test_every_code_is_documented_in_the_readme() -> None:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [c for c in CODES if f"`{c}`" not in readme]
    assert not missing, missing


@pytest.mark.parametrize("text", [
    "fk_order_id,remarks\nOD118034507542581000,ok\n\nOD118034507542581001,\"two\nlines\"\n,\n,\n",
    "\ufefffk_order_id;remarks\nOD118034507542581000;a\n od118034507542581001 ;b\n",
    "fk_order_id\r\nOD118034507542581000\r\n=1+1\r\n\r\n",
    "fk_order_id,fsn,service\nOD118034507542581000,ODSABC,AC Installation\nOD1,XYZ,Chimney\n",
    "fk_order_id\n OD118034507542581000 \n\nOD118034507542581000\nOD000000000000000009\nod1\n\n",
])
@pytest.mark.parametrize("odd_share", [16, 0])
def test_small_and_large_csv_readers_agree(tmp_path: Path, text: str, odd_share: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A small CSV is read by Python's csv module, a large one by pyarrow: the same file gives the same
    report either way, and the same IDs whether a long sheet's are kept as digits (``odd_share`` 0:
    always) or as the column's text."""
    from fhs_bulk.sheets import read
    from fhs_bulk.validate import ids

    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text(text, encoding="utf-8")
    small = validate_sheet(p)
    monkeypatch.setattr(read, "SMALL_CSV_BYTES", 0)
    monkeypatch.setattr(ids, "ODD_SHARE", odd_share)
    large = validate_sheet(p)
    assert small.as_dict() == large.as_dict()
    assert small.order_ids() == large.order_ids() and list(small.row_numbers) == list(large.row_numbers)
    for size in (1, 2, 3):
        assert [oid for _, part, _ in large.chunks(size) for oid in part] == small.order_ids()


def test_duplicates_are_exact_even_when_low_bits_collide(tmp_path: Path) -> None:
    """Repeated IDs are found through a table of their low bits: IDs that share those bits but differ
    are not duplicates; the one real repeat is, naming the first row."""
    base = 118034507542581000
    ids = [f"OD{base:018d}", f"OD{base + 2**20:018d}", f"OD{base + 2**21:018d}", f"OD{base + 7:018d}",
           f"OD{base:018d}"]
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text("fk_order_id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    r = validate_sheet(p)
    assert [(f.row, f.code) for f in r.errors] == [(6, "order-id-duplicate")]
    assert "already on row 2" in r.errors[0].message and r.valid == 4


def test_long_sheet_checked_on_two_threads_finds_every_mistake(tmp_path: Path) -> None:
    """A sheet long enough that its IDs are checked in pieces on two threads: mistakes at and around
    the pieces' edges, and repeats across pieces, are each found once, on their own rows."""
    from fhs_bulk.validate import check

    n = 3 * check.PIECE_ROWS + 17
    assert n >= check.PARALLEL_ROWS
    ids = [f"OD{118034507542581000 + i:018d}" for i in range(n)]
    bad = {}
    for edge in (0, check.PIECE_ROWS - 1, check.PIECE_ROWS, 2 * check.PIECE_ROWS + 1, n - 1):
        ids[edge] = ids[edge].lower()
        bad[edge + 2] = "order-id-lowercase"
    ids[check.PIECE_ROWS + 5] = ids[7]  # a repeat of a row in the first piece
    bad[check.PIECE_ROWS + 7] = "order-id-duplicate"
    ids[2 * check.PIECE_ROWS - 1] = ids[2 * check.PIECE_ROWS - 1][:19]  # one digit short, at a piece's end
    bad[2 * check.PIECE_ROWS + 1] = "order-id-length"
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text("fk_order_id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    r = validate_sheet(p)
    assert {f.row: f.code for f in r.errors} == bad and len(r.errors) == len(bad)
    assert r.valid == n - len(bad) and "row 9" in next(f.message for f in r.errors if f.code == "order-id-duplicate")


# One character changed, added or dropped: the shapes a fast check over bytes must tell from an ID.
_near_chars = st.sampled_from(list("0123456789/:ODoXé\u00a0 \t.=-"))
near_ids = st.one_of(
    order_ids,
    st.tuples(order_ids, st.integers(0, 19), _near_chars).map(lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + 1:]),
    st.tuples(order_ids, st.integers(0, 20), _near_chars).map(lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:]),
    st.tuples(order_ids, st.integers(0, 19)).map(lambda t: t[0][:t[1]] + t[0][t[1] + 1:]),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.one_of(near_ids, st.sampled_from(GOOD)), min_size=1, max_size=400))
def test_fast_check_agrees_with_the_classifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               ids: list[str]) -> None:
    """The bulk check reads IDs as bytes, a word at a time; whatever a row holds (a digit's neighbours
    in ASCII, a letter, a non-ASCII character, one character too many or too few), its verdict is the
    one-ID classifier's, and a repeat is a repeat of the trimmed ID; the same read in blocks, or row
    by row without numpy."""
    from fhs_bulk.sheets import read
    from fhs_bulk.validate import ids as compact

    monkeypatch.setattr(read, "SMALL_CSV_BYTES", 0)  # pyarrow and the bulk check, however short the sheet
    monkeypatch.setattr(compact, "ODD_SHARE", 0)  # the IDs kept as digits, whatever the share of odd rows
    monkeypatch.setattr(compact, "TEXTS_AT_ONCE", 16)  # and made again in several pieces
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text("fk_order_id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    expected: dict[int, str] = {}
    seen: set[str] = set()
    for row, raw in enumerate(ids, start=2):
        value, issues = check_order_id(raw)
        error = next((code for code, _ in issues if CODES[code][0] == "error"), None)
        if error is None and value in seen:
            error = "order-id-duplicate"
        if error:
            expected[row] = error
        else:
            seen.add(value)
    r = validate_sheet(p)
    assert {f.row: f.code for f in r.errors} == expected
    assert r.valid == len(ids) - len(expected)
    # Each row's ID as validation leaves it (trimmed if that made it valid), made again from digits.
    shown = [check_order_id(raw)[0] if row not in expected or expected[row] == "order-id-duplicate" else raw
             for row, raw in enumerate(ids, start=2)]
    assert [oid for _, part, _ in r.chunks(37) for oid in part] == r.order_ids() == shown
    # Read in blocks of a few rows (as a long CSV is): the same report, rows and IDs.
    monkeypatch.setattr(read, "STREAM_BYTES", 0)
    monkeypatch.setattr(read, "BLOCK_BYTES", 128)
    streamed = validate_sheet(p)
    monkeypatch.setattr(read, "STREAM_BYTES", 1 << 30)
    assert streamed.as_dict() == r.as_dict() and list(streamed.valid_mask) == list(r.valid_mask)
    assert [oid for _, part, _ in streamed.chunks(37) for oid in part] == shown
    # Read by Python's csv module instead, the sheet is checked row by row without numpy: the same report.
    monkeypatch.setattr(read, "SMALL_CSV_BYTES", 1 << 30)
    small = validate_sheet(p)
    assert isinstance(small.valid_mask, list)
    assert small.as_dict() == r.as_dict() and small.order_ids() == shown
    assert [rows for rows, _, _ in small.chunks(37)] == [rows for rows, _, _ in r.chunks(37)]


@pytest.mark.parametrize("sample", ["FK_ODS_ORDER_CREATE.csv", "FK_ODS_ORDER_CREATE.xlsx"])
def test_a_short_sheet_is_checked_without_numpy(sample: str) -> None:
    """numpy's import takes longer than checking a night's few hundred rows: neither it nor pyarrow is
    loaded to validate (or upload) a short sheet, CSV or workbook."""
    code = ("import sys; from fhs_bulk.validate.check import validate_sheet; "
            f"r = validate_sheet({str(SAMPLES / sample)!r}); "
            "print(r.rows, r.valid, len(r.errors), len(r.order_ids()), 'numpy' in sys.modules, "
            "'pyarrow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows, valid, errors, ids, numpy, arrow = out.stdout.split()
    assert int(rows) == int(ids) > int(valid) > 0 and int(errors) > 0
    assert (numpy, arrow) == ("False", "False")


_BASE = 118034507542581000
# Long enough for many 64-byte blocks: repeats (plain and trimmed) across blocks, blank rows between
# and after, lower case, a short ID, bad FSNs and services in several blocks, a cell with a line break.
_STREAMED = [
    "fk_order_id,fsn,service,remarks\n" + "".join(
        f"OD{_BASE + i:018d},ODSX{i % 3},{'SP AC' if i % 7 else 'Geyzer'},r{i}\n"
        for i in range(60)) + f"OD{_BASE + 3:018d},ODSX,SP AC,again\n"
    + f" OD{_BASE + 5:018d} ,XYZ,SP AC,\"two\nlines\"\n,,,\nod{_BASE + 70:018d},ODS1,Geyser,\n"
    + f"OD{_BASE + 71:018d},,SP AC,\nOD123,ODS1,SP AC,\n,,,\n,,,\n",
    "fk_order_id\n" + "".join(f"OD{_BASE + i % 40:018d}\n" for i in range(90)) + "\n\n"
    + f"  OD{_BASE + 1:018d}\t\nOD{_BASE + 99:018d}\n\n",
    "fk_order_id\n" + "".join(f"x{i}\n" if i % 2 else f"OD{_BASE + i:018d}\n" for i in range(80)),
]


@pytest.mark.parametrize("text", _STREAMED)
@pytest.mark.parametrize("block", [64, 1 << 20])
@pytest.mark.parametrize("spare", [True, False])
def test_a_csv_read_in_blocks_gets_the_same_report(tmp_path: Path, text: str, block: int, spare: bool,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A long CSV is checked a block at a time as pyarrow reads it: the same findings in the
    same order, the same rows, validity and IDs as the sheet read whole, however the blocks fall and
    whether the rows fit the room made for them or outgrow it block after block."""
    from fhs_bulk.sheets import read
    from fhs_bulk.validate import check

    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text(text, encoding="utf-8")
    monkeypatch.setattr(read, "SMALL_CSV_BYTES", 0)
    whole = validate_sheet(p)  # shorter than STREAM_BYTES: read whole
    monkeypatch.setattr(read, "STREAM_BYTES", 0)
    monkeypatch.setattr(read, "BLOCK_BYTES", block)
    monkeypatch.setattr(check, "ODD_AS_TEXT", 3)  # a block's invalid IDs kept as arrow text past 3
    if not spare:
        monkeypatch.setattr(read.CsvBlocks, "rows_expected", lambda self, first_block: first_block)
    blocks = []
    iterate = read.CsvBlocks.__iter__
    monkeypatch.setattr(read.CsvBlocks, "__iter__", lambda self: (blocks.append(1), (yield from iterate(self)))[1])
    streamed = validate_sheet(p)
    assert len(blocks) == 1  # read in blocks (and not again whole)
    assert streamed.as_dict() == whole.as_dict() and streamed.errors  # every shape above has findings
    assert list(streamed.row_numbers) == list(whole.row_numbers)
    assert list(streamed.valid_mask) == list(whole.valid_mask)
    assert streamed.order_ids() == whole.order_ids()
    for size in (1, 7):
        assert [oid for _, part, _ in streamed.chunks(size) for oid in part] == whole.order_ids()


def test_a_csv_pyarrow_gives_up_on_part_way_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ragged row after the first blocks: the rows already checked are dropped and the file read
    again whole (the general reader copes); a byte that is not UTF-8 part way is the encoding error,
    naming its line, as when read whole."""
    from fhs_bulk.sheets import read

    monkeypatch.setattr(read, "SMALL_CSV_BYTES", 0)
    monkeypatch.setattr(read, "STREAM_BYTES", 0)
    monkeypatch.setattr(read, "BLOCK_BYTES", 64)
    ids = [f"OD{_BASE + i:018d}" for i in range(40)]
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text("fk_order_id,fsn\n" + "".join(f"{oid},ODS1\n" for oid in ids) + f"{ids[0]},ODS1,extra\n")
    streamed = validate_sheet(p)
    monkeypatch.setattr(read, "STREAM_BYTES", 1 << 30)
    whole = validate_sheet(p)
    monkeypatch.setattr(read, "STREAM_BYTES", 0)
    assert streamed.as_dict() == whole.as_dict() and streamed.rows == 41 and codes(streamed) == ["order-id-duplicate"]
    assert streamed.order_ids() == whole.order_ids() == [*ids, ids[0]]
    assert [f.code for f in streamed.warnings] == ["cells-outside-header"]
    p.write_bytes(("fk_order_id\n" + "".join(f"{oid}\n" for oid in ids)).encode() + b"caf\xe9\n")
    streamed = validate_sheet(p)
    assert streamed.sheet_error is not None and streamed.sheet_error.code == "sheet-encoding"
    monkeypatch.setattr(read, "STREAM_BYTES", 1 << 30)
    assert "line 42" in streamed.sheet_error.message and streamed.as_dict() == validate_sheet(p).as_dict()


def test_a_csv_read_in_blocks_stops_its_reader_when_the_caller_stops(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks are parsed on a thread a few ahead of the caller: a caller that stops part way (an error,
    Ctrl-C) leaves no thread behind; one that reads to the end gets every row once."""
    import threading

    from fhs_bulk.sheets import read

    monkeypatch.setattr(read, "STREAM_BYTES", 0)
    monkeypatch.setattr(read, "SMALL_CSV_BYTES", 0)
    monkeypatch.setattr(read, "BLOCK_BYTES", 64)
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text("fk_order_id\n" + "".join(f"OD{_BASE + i:018d}\n" for i in range(500)))
    blocks = read.csv_blocks(p)
    assert blocks is not None
    rows = iter(blocks)
    next(rows)
    assert any(t.name == "csv-blocks" for t in threading.enumerate())
    rows.close()  # type: ignore[attr-defined]
    assert not any(t.name == "csv-blocks" for t in threading.enumerate())
    got = [oid for columns in blocks for oid in columns[0].to_pylist()]
    assert got == [f"OD{_BASE + i:018d}" for i in range(500)]


@pytest.mark.parametrize("shift", [-3, -2, -1, 0])
def test_a_long_csv_not_in_utf8_names_the_line(tmp_path: Path, shift: int) -> None:
    """The line named for a byte that is not UTF-8 is found a MiB at a time (a long CSV is never held
    whole for it), also when the byte follows a two-byte character split between two MiBs."""
    body = bytearray(b"fk_order_id,remarks\n")
    i = 0
    while len(body) < (1 << 20) - 200:
        body += f"OD{_BASE + i:018d},r\n".encode()
        i += 1
    prefix = f"OD{_BASE + i:018d},".encode()
    at = (1 << 20) + shift  # where the "é" starts; the stray byte follows it
    body += prefix + b"x" * (at - len(body) - len(prefix)) + "é".encode() + b"\xe9\n"
    body += b"".join(f"OD{_BASE + j:018d},r\n".encode() for j in range(i + 1, i + 1000))
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_bytes(bytes(body))
    r = validate_sheet(p)
    assert r.sheet_error is not None and r.sheet_error.code == "sheet-encoding"
    line = body.count(b"\n", 0, at) + 1
    assert f"line {line} is not UTF-8 text (byte 0xE9)" in r.sheet_error.message


@pytest.mark.parametrize("stream", [False, True])
def test_repeats_and_bad_cells_past_the_findings_limit_are_counted(tmp_path: Path, stream: bool,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A sheet pasted twice, a column of bad FSNs, or of bad IDs, past MAX_FINDINGS findings: the rows
    are still invalid, only the first findings are listed and the rest counted (memory stays bounded),
    each such row's code kept in a byte; IDs with a space after them likewise past MAX_FINDINGS
    warnings (still valid, trimmed); whether the sheet is read whole or in blocks."""
    from fhs_bulk.sheets import read
    from fhs_bulk.validate import check

    monkeypatch.setattr(check, "MAX_FINDINGS", 50)
    monkeypatch.setattr(read, "SMALL_CSV_BYTES", 0)
    if stream:
        monkeypatch.setattr(read, "STREAM_BYTES", 0)
        monkeypatch.setattr(read, "BLOCK_BYTES", 256)
    ids = [f"OD{_BASE + i:018d}" for i in range(6000)]  # past SMALL_ROWS: the vectorised checks
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_text("fk_order_id,fsn\n" + "".join(f"{oid},{'ODS1' if n < 9000 else 'TV1'}\n"
                                               for n, oid in enumerate(ids + ids[:4000])))
    r = validate_sheet(p)
    assert r.rows == 10_000 and r.valid == 6000 and r.invalid == 4000
    assert len(r.errors) == 50 and {f.code for f in r.errors} == {"order-id-duplicate"}
    truncated = [w for w in r.warnings if w.code == "findings-truncated"]
    assert len(truncated) == 1 and "3,950 more rows" in truncated[0].message
    listed = {f.row for f in r.errors}
    assert all(r.untold_code(row) is None for row in listed)  # listed: their finding says it
    assert r.untold_code(2) is None and r.untold_code(6000 + 2 + 3999) == "order-id-duplicate"
    assert sum(r.untold_code(row) == "order-id-duplicate" for row in range(6002, 10002)) == 3950
    p.write_text("fk_order_id,fsn\n" + "".join(f"{oid},{'TV1' if n % 2 else 'ODS1'}\n" for n, oid in enumerate(ids)))
    r = validate_sheet(p)
    assert r.valid == 3000 and len(r.errors) == 50 and {f.code for f in r.errors} == {"fsn-not-ods"}
    assert "2,950 more rows" in next(w for w in r.warnings if w.code == "findings-truncated").message
    assert r.untold_code(6001) == "fsn-not-ods" and r.untold_code(6000) is None
    p.write_text("fk_order_id\n" + "".join(f"{oid.lower()}\n" for oid in ids))  # garbage: every ID invalid
    r = validate_sheet(p)
    assert r.valid == 0 and len(r.errors) == 50 and r.untold_code(6001) == "order-id-lowercase"
    p.write_text("fk_order_id\n" + "".join(f"{oid} \n" for oid in ids))  # every ID with a space after it
    r = validate_sheet(p)
    assert r.valid == 6000 and not r.errors and r.order_ids() == ids
    assert [w.code for w in r.warnings].count("order-id-whitespace") == 50
    assert "5,950 more rows had spaces around the ID trimmed" in r.warnings[0].message
