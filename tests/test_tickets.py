"""Single tickets and the tracker, against a real `srms serve`: create, re-create, conflicts, every
validation message, tracker round trips (xlsx keeps formatting and foreign columns; CSV)."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font, PatternFill

from fhs_bulk.sheets.contract import tracker_headers
from fhs_bulk.tickets.single import check_request, normalise_phone
from tests.conftest import TOKEN, cli_env, run_cli

TOMORROW = (date.today() + timedelta(days=1)).isoformat()


def args(order: str = "OD100000000000000001", **kw: str) -> list[str]:
    base = {"order": order, "name": "Asha Rao", "phone": "+91 98765 43210", "address": "12 MG Road",
            "city": "Bengaluru", "pincode": "560001", "service": "sp tv", "preferred-date": TOMORROW}
    base.update(kw)
    out = []
    for k, v in base.items():
        out += [f"--{k}", v]
    return out


def make_tracker(path: Path) -> Path:
    """A tracker as people keep it: a title row, formatting, a frozen header, a filter, extra columns,
    another sheet."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Installations"
    ws["A1"] = "Installation tracker - November"
    ws["A1"].font = Font(bold=True, size=14)
    headers = tracker_headers() + ["Team notes"]
    for c, h in enumerate(headers, 1):
        ws.cell(row=2, column=c, value=h).fill = PatternFill("solid", fgColor="FFFF00")
    ws.append(["OD100000000000000002", "", "", "SP AC", "Ravi", "9000000001", "400001", "", "", "", "", "", "", "",
               "", "call before", "VIP"])
    ws.append(["OD100000000000000003", "SRM-0000009999", "", "Geyser", "Meera", "", "", "", "", "", "", "", "", "",
               "", "", "=SUM(1,2)"])
    ws.freeze_panes = "A3"
    ws.auto_filter.ref = "A2:Q4"
    ws.column_dimensions["P"].width = 42
    wb.create_sheet("Notes")["A1"] = "keep me"
    wb.save(path)
    return path


def test_phone_and_request_checks() -> None:
    assert normalise_phone("+91 98765-43210") == "9876543210"
    assert normalise_phone("09876543210") == "9876543210"
    assert normalise_phone("919876543210") == "9876543210"
    assert normalise_phone("5876543210") is None
    req, problems = check_request({"order": "OD100000000000000001", "name": "A", "phone": "9876543210",
                                   "address": "x", "city": "y", "pincode": "560001", "service": "SP  tv",
                                   "preferred_date": TOMORROW})
    assert not problems and req["service"] == "SP TV" and req["client"] == "Jeeves Consumer Services"
    _, problems = check_request({"order": "OD1", "name": "", "phone": "12", "address": "x", "city": "y",
                                 "pincode": "012345", "service": "Geyzer", "preferred_date": "2026-02-30"})
    assert {(p.field, p.code) for p in problems} == {
        ("order", "order-id-length"), ("name", "field-missing"), ("phone", "phone-invalid"),
        ("pincode", "pincode-invalid"), ("service", "service-unknown"), ("preferred_date", "date-invalid")}
    assert any("Nearest: 'Geyser'" in p.message and "fhs-bulk services" in p.message for p in problems)
    _, problems = check_request({"order": "OD100000000000000001", "name": "A", "phone": "9876543210",
                                 "address": "x", "city": "y", "pincode": "560001", "service": "SP TV",
                                 "preferred_date": "2020-01-01"})
    assert [p.code for p in problems] == ["date-past"]


def test_create_recreate_and_tracker_xlsx(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    tracker = make_tracker(tmp_path / "tracker.xlsx")
    r = run_cli("ticket", "create", *args("OD100000000000000002"), "--tracker", str(tracker), env=env)
    assert r.returncode == 0, r.stderr
    tid = r.stdout.strip()
    assert tid.startswith("SRM-") and "9876543210" not in r.stdout + r.stderr
    again = run_cli("ticket", "create", *args("OD100000000000000002"), "--tracker", str(tracker), "--json", env=env)
    doc = json.loads(again.stdout)
    assert again.returncode == 0 and doc["ticket_id"] == tid and doc["status"] == "existing"
    assert doc["tracker"] == "unchanged"
    wb = load_workbook(tracker)
    ws = wb["Installations"]
    assert ws["B3"].value == tid  # filled in place, not duplicated
    assert ws.max_row == 4
    assert ws["A1"].font.bold and ws["A2"].fill.fgColor.rgb.endswith("FFFF00")
    assert ws.freeze_panes == "A3" and ws.auto_filter.ref == "A2:Q4" and ws.column_dimensions["P"].width == 42
    assert ws["Q3"].value == "VIP" and ws["P3"].value == "call before" and wb["Notes"]["A1"].value == "keep me"
    assert (tmp_path / "tracker.xlsx.bak").exists()
    # A new order gets a new row, filled from the request, phone as text.
    r = run_cli("ticket", "create", *args("OD100000000000000005", phone="9123456789"), "--tracker", str(tracker),
                env=env)
    assert r.returncode == 0
    ws = load_workbook(tracker)["Installations"]
    assert ws["A5"].value == "OD100000000000000005" and ws["F5"].value == "9123456789" and ws["F5"].data_type == "s"
    # A row holding another SRM ID is a conflict and is not overwritten.
    r = run_cli("ticket", "create", *args("OD100000000000000003"), "--tracker", str(tracker), env=env)
    assert r.returncode == 1 and "conflict" in r.stderr
    assert load_workbook(tracker)["Installations"]["B4"].value == "SRM-0000009999"
    # SRMS refuses a second, different ticket for an order.
    r = run_cli("ticket", "create", *args("OD100000000000000002", remarks="again"), env=env)
    assert r.returncode == 1 and "already has ticket" in r.stderr
    show = run_cli("ticket", "show", tid, "--json", env=env)
    t = json.loads(show.stdout)
    assert t["status"] == "CREATED" and t["phone"] == "98******10" and t["history"]
    assert TOKEN not in show.stdout + show.stderr


def test_validation_messages_exit_1_and_send_nothing(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("ticket", "create", *args("OD1", phone="123", pincode="012345", service="Teleport",
                                          **{"preferred-date": "2020-01-01"}), env=cli_env(tmp_path, srms))
    assert r.returncode == 1
    for code in ("order-id-length", "phone-invalid", "pincode-invalid", "service-unknown", "date-past"):
        assert code in r.stderr
    import sqlite3

    assert sqlite3.connect(srms.db).execute("SELECT count(*) FROM tickets").fetchone()[0] == 0


def test_from_sheet_and_csv_tracker(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    requests = tmp_path / "requests.csv"
    with open(requests, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["fk_order_id", "customer_name", "phone", "address", "city", "pincode", "service",
                    "preferred_date", "remarks"])
        w.writerow(["OD100000000000000011", "A B", "9876543210", "x", "Pune", "411001", "Geyser", TOMORROW, ""])
        w.writerow(["OD100000000000000012", "=cmd()", "9876543211", "y", "Pune", "411001", "Fan Insta", TOMORROW,
                    "-2"])
        w.writerow(["bad", "C", "1", "z", "Pune", "411001", "Fan Insta", TOMORROW, ""])
    tracker = tmp_path / "tracker.csv"
    tracker.write_text(",".join(f'"{h}"' for h in tracker_headers()) + "\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    r = run_cli("ticket", "create", "--from", str(requests), "--tracker", str(tracker), "--out", str(out),
                env=cli_env(tmp_path, srms))
    assert r.returncode == 1, r.stderr
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [x["status"] for x in rows] == ["created", "created", "invalid"]
    with open(tracker, newline="") as fh:
        trows = list(csv.DictReader(fh))
    assert [x["fk_order_id"] for x in trows] == ["OD100000000000000011", "OD100000000000000012"]
    assert trows[1]["Customer name"] == "'=cmd()"  # written formula-safe


def test_tracker_update_from_results_is_idempotent(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import GOOD, order_sheet

    env = cli_env(tmp_path, srms)
    results = tmp_path / "results.csv"
    assert run_cli("upload", str(order_sheet(tmp_path, GOOD[:5])), "--out", str(results), env=env).returncode == 0
    tracker = make_tracker(tmp_path / "tracker.xlsx")
    ws = load_workbook(tracker)["Installations"]
    ws_book = ws.parent
    ws["A3"] = GOOD[0]  # an existing row for the first order, SRM ID empty
    ws["A4"] = GOOD[1]  # an existing row holding another SRM ID: a conflict
    ws_book.save(tracker)
    r = run_cli("tracker", "update", str(tracker), "--from", str(results), "--json", env=env)
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and (doc["updated"], doc["added"], len(doc["conflicts"])) == (2, 3, 1)
    assert doc["conflicts"][0]["column"] == "SRM ID"
    before = tracker.read_bytes()
    r2 = run_cli("tracker", "update", str(tracker), "--from", str(results), "--json", env=env)
    doc2 = json.loads(r2.stdout)
    assert (doc2["updated"], doc2["added"], doc2["unchanged"]) == (0, 0, 4) and len(doc2["conflicts"]) == 1
    assert tracker.read_bytes() == before  # nothing rewritten, not even a timestamp
    ws = load_workbook(tracker)["Installations"]
    assert ws["B3"].value.startswith("SRM-") and ws["C3"].value.startswith("BK-") and ws["Q3"].value == "VIP"
    # --from-ledger gives the same answer
    r3 = run_cli("tracker", "update", str(tracker), "--from-ledger", "--json", env=env)
    assert json.loads(r3.stdout)["added"] == 0


@pytest.mark.parametrize("bad", ["missing.xlsx", "notes.txt"])
def test_unusable_tracker_exits_2(tmp_path: Path, bad: str) -> None:
    p = tmp_path / bad
    if bad.endswith(".txt"):
        p.write_text("x")
    results = tmp_path / "r.csv"
    results.write_text("row,fk_order_id,status,code,reference_id,ticket_id,message\n")
    r = run_cli("tracker", "update", str(p), "--from", str(results), env=cli_env(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_xlsx_cell_writer_and_its_fallback(tmp_path: Path) -> None:
    """The fast writer (worksheet XML only) and the openpyxl fallback give the same workbook."""
    from fhs_bulk.sheets.xlsx_cells import patch_sheet_xml
    from fhs_bulk.tracker.sheet import load_tracker

    for formula_in_owned_cell in (False, True):
        path = make_tracker(tmp_path / f"t{formula_in_owned_cell}.xlsx")
        if formula_in_owned_cell:
            wb = load_workbook(path)
            wb["Installations"]["C3"] = "=1+1"  # Reference ID of row 3 holds a formula: fast path declines
            wb.save(path)
        t = load_tracker(path)
        row = t.by_order()["OD100000000000000002"][0]
        t.set(row, "SRM ID", "SRM-0000000042")
        t.set(row, "Reference ID", "<&> =not a formula")
        t.add({"fk_order_id": "OD100000000000000009", "SRM ID": "SRM-0000000043", "Phone": "9876543210"})
        t.ensure_column("Last checked")
        t.save()
        wb = load_workbook(path)
        ws = wb["Installations"]
        assert ws["B3"].value == "SRM-0000000042" and ws["C3"].value == "<&> =not a formula"
        assert ws["C3"].data_type == "s" and ws["A5"].value == "OD100000000000000009" and ws["F5"].value == "9876543210"
        assert ws["Q3"].value == "VIP" and ws["Q4"].value == "=SUM(1,2)"  # foreign cells untouched
        assert ws["A2"].fill.fgColor.rgb.endswith("FFFF00") and ws.freeze_panes == "A3"
        assert wb["Notes"]["A1"].value == "keep me"
        again = load_tracker(path)  # and calamine reads what was written
        assert again.by_order()["OD100000000000000002"][0].values["SRM ID"] == "SRM-0000000042"
    assert patch_sheet_xml(b"<x:worksheet><x:sheetData/></x:worksheet>", {(1, 1): "a"}) is None


def test_xlsx_cell_writer_appends_to_the_shared_strings(tmp_path: Path) -> None:
    """Texts go into a shared-string table, once per distinct value: one is added to a workbook without
    (as openpyxl writes them), and a second write appends after the entries already there. Every other
    cell keeps its text, and openpyxl and calamine read the new ones."""
    import re
    import zipfile

    from fhs_bulk.sheets.xlsx_cells import set_cells
    from fhs_bulk.tracker.sheet import load_tracker

    path = make_tracker(tmp_path / "t.xlsx")
    before = load_workbook(path)["Installations"]
    old_values = {c.coordinate: c.value for row in before.iter_rows() for c in row if c.value is not None}
    first, second = tmp_path / "first.xlsx", tmp_path / "second.xlsx"
    assert set_cells(path, "Installations", {(3, 9): "ALLOCATED", (4, 9): "ALLOCATED", (3, 10): " two  spaces "},
                     first)
    assert set_cells(first, "Installations", {(4, 10): "<&>", (3, 11): "ALLOCATED"}, second)
    with zipfile.ZipFile(second) as z:
        sst = z.read("xl/sharedStrings.xml")
        sheet = z.read("xl/worksheets/sheet1.xml")
        assert b"sharedStrings" in z.read("[Content_Types].xml")
    assert b'xml:space="preserve"> two  spaces <' in sst and sst.count(b"<si>") == 3  # ALLOCATED once: reused
    for ref in ("I3", "I4", "J3", "J4", "K3"):
        assert re.search(rb'<c r="' + ref.encode() + rb'"[^>]*t="s"', sheet), ref
    ws = load_workbook(second)["Installations"]
    assert ws["I3"].value == ws["I4"].value == ws["K3"].value == "ALLOCATED" and ws["J3"].value == " two  spaces "
    assert ws["J4"].value == "<&>"
    assert all(ws[ref].value == value for ref, value in old_values.items() if ref[0] not in "IJK")
    assert load_tracker(second).rows[1].values["Status"] == "ALLOCATED"


def test_workbook_rows_read_as_text_when_asked(tmp_path: Path) -> None:
    """A workbook tracker's rows read their cells when asked: text stripped, numbers and dates as the
    sheet shows them, empty / zero / false as blank, blank and whitespace-only rows left out, a header
    named twice read from its last column; a cell set (or a new column) reads back and is saved."""
    from fhs_bulk.tracker.sheet import load_tracker

    wb = Workbook()
    ws = wb.active
    ws.title = "Tracker"
    ws.append(["fk_order_id", "SRM ID", "Reference ID", "Pincode", "Preferred date", "Remarks", "Remarks"])
    ws.append(["  OD100000000000000001 ", "SRM-0000000001", None, 560001, date(2026, 12, 1), "first", "last"])
    ws.append([None, None, None, None, None, None, None])  # blank
    ws.append(["   ", None, " ", None, None, None, None])  # whitespace only: blank
    ws.append([None, None, None, 0, None, None, False])  # zero and false read as blank: blank
    ws.append(["OD100000000000000002", None, "BK-X", 1.5, None, "", True])
    path = tmp_path / "tracker.xlsx"
    wb.save(path)
    t = load_tracker(path)
    assert [r.sheet_row for r in t.rows] == [2, 6]
    first, second = (r.values for r in t.rows)
    assert first["fk_order_id"] == "OD100000000000000001" and t.rows[0].order == "OD100000000000000001"
    assert (first["Pincode"], first["Preferred date"], first["Remarks"]) == ("560001", "2026-12-01", "last")
    assert first.get("Reference ID") == "" and first.get("No such column", "-") == "-"
    assert (second["Pincode"], second["Remarks"], second["Reference ID"]) == ("1.5", "TRUE", "BK-X")
    assert list(first) == ["fk_order_id", "SRM ID", "Reference ID", "Pincode", "Preferred date", "Remarks"]
    assert dict(second) == {"fk_order_id": "OD100000000000000002", "SRM ID": "", "Reference ID": "BK-X",
                            "Pincode": "1.5", "Preferred date": "", "Remarks": "TRUE"}
    with pytest.raises(KeyError):
        first["No such column"]
    assert t.set(t.rows[1], "SRM ID", "SRM-0000000002") and not t.set(t.rows[1], "SRM ID", "SRM-0000000002")
    assert t.set(t.rows[0], "Last checked", "2026-11-27")  # a column the tracker lacks
    assert t.rows[1].values["SRM ID"] == "SRM-0000000002" and t.rows[0].values["Last checked"] == "2026-11-27"
    cells = [("Reference ID", "BK-Y"), ("Status", "CREATED"), ("SRM ID", "SRM-0000000001")]  # in place, new, same
    assert t.set_row(t.rows[0], cells) and not t.set_row(t.rows[0], cells)
    assert (first["Reference ID"], first["Status"]) == ("BK-Y", "CREATED")
    t.save()
    again = load_tracker(path)
    assert again.rows[1].values["SRM ID"] == "SRM-0000000002" and again.rows[0].values["Last checked"] == "2026-11-27"
    assert again.rows[0].values["Remarks"] == "last" and again.rows[0].values["Reference ID"] == "BK-Y"
    assert again.rows[0].values["Status"] == "CREATED"
