"""Google Sheets through gspread against the local Sheets API (tests/google_api.py): validate and upload
from a Google Sheet, results written back as RAW values, error messages, and O(1) requests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import GOOD, NON_ODS, cli_env, run_cli
from tests.google_api import LocalGoogle

KEY = "1LH0M_0xJcf9T0vohrBypBLn4QmGOgdvSqR-izcBhcp0"


@pytest.fixture
def google() -> Iterator[LocalGoogle]:
    g = LocalGoogle()
    yield g
    g.stop()


def genv(tmp_path: Path, google: LocalGoogle, srms=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return cli_env(tmp_path, srms, FHS_GOOGLE_API_BASE=google.url, FHS_GOOGLE_TOKEN="local-test-token")


# ------------------------------------------------------------ conformance with recorded Google traffic
# Shapes as recorded in gspread's cassettes (SpreadsheetTest.test_values_get, test_add_del_worksheet):
# the same requests are sent to the local server and the answers must have the same form.


def test_conformance_with_recorded_shapes(google: LocalGoogle) -> None:
    google.state.add(KEY, "Test", {"Sheet1": []})
    c = httpx.Client(base_url=google.url, headers={"Authorization": "Bearer x"})
    title = "\U0001f335 test_values_get 1"
    add = c.post(f"/v4/spreadsheets/{KEY}:batchUpdate", json={"requests": [{"addSheet": {"properties": {
        "title": title, "sheetType": "GRID", "gridProperties": {"rowCount": 10, "columnCount": 10}}}}]}).json()
    assert set(add) == {"spreadsheetId", "replies"}
    props = add["replies"][0]["addSheet"]["properties"]
    assert set(props) == {"sheetId", "title", "index", "sheetType", "gridProperties"} and props["index"] == 1
    put = c.put(f"/v4/spreadsheets/{KEY}/values/{title}!A1", params={"valueInputOption": "RAW"},
                json={"values": [["a", "b", "c"], ["d", "e", "f"]]}).json()
    assert put == {"spreadsheetId": KEY, "updatedRange": f"'{title}'!A1:C2", "updatedRows": 2,
                   "updatedColumns": 3, "updatedCells": 6}
    got = c.get(f"/v4/spreadsheets/{KEY}/values/{title}").json()
    assert got == {"range": f"'{title}'!A1:J10", "majorDimension": "ROWS", "values": [["a", "b", "c"],
                                                                                       ["d", "e", "f"]]}
    meta = c.get(f"/v4/spreadsheets/{KEY}", params={"includeGridData": "false"}).json()
    assert set(meta) >= {"spreadsheetId", "properties", "sheets", "spreadsheetUrl"}
    missing = c.get("/v4/spreadsheets/nope")
    assert missing.status_code == 404 and set(missing.json()["error"]) == {"code", "message", "status"}
    beyond = c.put(f"/v4/spreadsheets/{KEY}/values/{title}!A11", params={"valueInputOption": "RAW"},
                   json={"values": [["x"]]})
    assert beyond.status_code == 400 and "exceeds grid limits" in beyond.json()["error"]["message"]


# ------------------------------------------------------------ the tool through gspread


def order_book(google: LocalGoogle, ids: list[str], title: str = "FK_ODS_ORDER_CREATE", key: str = KEY) -> None:
    google.state.add(key, title, {"Sheet1": [["fk_order_id", "remarks"]] + [[i, ""] for i in ids]})


def test_validate_from_url_key_and_title(google: LocalGoogle, tmp_path: Path) -> None:
    order_book(google, [GOOD[0], "1.18034507542581E+17", GOOD[0]])
    env = genv(tmp_path, google)
    for source in (f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=101", KEY, "gsheet:FK_ODS_ORDER_CREATE",
                   "gsheet:FK_ODS_ORDER_CREATE/Sheet1"):
        google.state.calls.clear()
        r = run_cli("validate", source, "--json", env=env)
        doc = json.loads(r.stdout)
        assert r.returncode == 1, (source, r.stderr)
        assert [e["code"] for e in doc["errors"]] == ["order-id-number", "order-id-duplicate"]
        assert doc["errors"][0]["row"] == 3
        assert google.state.count("GET") <= 4  # Drive search + metadata + one values request
    google.state.add("2" * 44, "Orders Nov", {"Sheet1": [["fk_order_id"], [GOOD[0]]]})
    r = run_cli("validate", "2" * 44, env=env)
    assert r.returncode == 2 and "FK_ODS_ORDER_CREATE" in r.stderr


def test_upload_writes_results_back_as_raw_values(google: LocalGoogle, srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    order_book(google, GOOD[:3] + [NON_ODS[0], "=HYPERLINK(\"x\")"])
    env = genv(tmp_path, google, srms)
    r = run_cli("upload", "gsheet:FK_ODS_ORDER_CREATE", "--out-worksheet", "results", env=env)
    assert r.returncode == 1, r.stderr
    book = google.state.books[KEY]
    sheet = next(s for s in book.sheets if s.title == "results")
    assert sheet.values[0][:6] == ["row", "fk_order_id", "status", "code", "reference_id", "ticket_id"]
    assert [row[2] for row in sheet.values[1:]] == ["registered"] * 3 + ["rejected", "invalid"]
    assert sheet.values[5][1] == '=HYPERLINK("x")'  # stays text: written RAW
    assert all(w["valueInputOption"] == "RAW" for w in google.state.writes)
    assert (sheet.rows, sheet.cols) == (6, 7)  # sized to fit
    # Again: the worksheet is replaced, not appended to.
    r = run_cli("upload", KEY, "--out-worksheet", "results", env=env)
    assert r.returncode == 1, r.stderr  # the rejected and invalid rows stay so
    sheet = next(s for s in google.state.books[KEY].sheets if s.title == "results")
    assert len(sheet.values) == 6 and sheet.values[1][2] == "already-registered"
    # --out to another spreadsheet
    google.state.add("3" * 44, "Nightly results", {"Sheet1": []})
    r = run_cli("upload", KEY, "--out", "gsheet:Nightly results", env=env)
    assert r.returncode == 1, r.stderr  # the rejected and invalid rows stay so
    assert any(s.title == "results" for s in google.state.books["3" * 44].sheets)


def test_errors_say_what_to_do(google: LocalGoogle, tmp_path: Path) -> None:
    order_book(google, [GOOD[0]])
    env = genv(tmp_path, google)
    google.state.fail[KEY] = 403
    r = run_cli("validate", KEY, env=env)
    assert r.returncode == 2 and "share the sheet with" in r.stderr and "Traceback" not in r.stderr
    del google.state.fail[KEY]
    r = run_cli("validate", "4" * 44, env=env)
    assert r.returncode == 2 and "no such Google spreadsheet" in r.stderr
    r = run_cli("validate", "gsheet:Nothing like it", env=env)
    assert r.returncode == 2 and "no spreadsheet with that title" in r.stderr
    google.state.add("5" * 44, "FK_ODS_ORDER_CREATE", {"Sheet1": [["fk_order_id"], [GOOD[0]]]})
    r = run_cli("validate", "gsheet:FK_ODS_ORDER_CREATE", env=env)
    assert r.returncode == 2 and KEY in r.stderr and "5" * 44 in r.stderr  # ambiguous: lists the keys
    del google.state.books["5" * 44]
    google.state.fail_once[KEY] = 429
    t = time.monotonic()
    r = run_cli("validate", KEY, env=env)
    assert r.returncode == 0, r.stderr  # quota error retried with back-off
    assert time.monotonic() - t >= 1
    env_no_creds = cli_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "missing.json"))
    r = run_cli("validate", KEY, env=env_no_creds)
    assert r.returncode == 2 and "credentials file" in r.stderr


def test_50k_rows_take_constant_requests(google: LocalGoogle, srms, tmp_path: Path,  # type: ignore[no-untyped-def]
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"OD{100000000000000000 + i}" for i in range(50_000)]
    order_book(google, ids)
    env = genv(tmp_path, google, srms)
    t = time.monotonic()
    r = run_cli("validate", KEY, "--json", env=env)
    read_s = time.monotonic() - t
    assert r.returncode == 0 and json.loads(r.stdout)["rows"] == 50_000
    assert google.state.count() <= 3
    google.state.calls.clear()
    from fhs_bulk.sheets.google import Google, GoogleRef

    monkeypatch.setenv("FHS_GOOGLE_API_BASE", google.url)
    monkeypatch.setenv("FHS_GOOGLE_TOKEN", "t")
    rows = [[i + 2, oid, "registered", "", "BK-x", "SRM-1", ""] for i, oid in enumerate(ids)]
    t = time.monotonic()
    Google().write(GoogleRef(key=KEY), "results", ["row", "fk_order_id", "status", "code", "reference_id",
                                                   "ticket_id", "message"], rows)
    write_s = time.monotonic() - t
    assert google.state.count() <= 4
    print(f"50,000 rows: read+validate {read_s:.2f}s (whole process), write {write_s:.2f}s")


def test_google_tracker_update_and_reconcile(google: LocalGoogle, srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fhs_bulk.sheets.contract import tracker_headers
    from tests.conftest import order_sheet

    env = genv(tmp_path, google, srms)
    results = tmp_path / "results.csv"
    assert run_cli("upload", str(order_sheet(tmp_path, GOOD[:4])), "--out", str(results), env=env).returncode == 0
    headers = tracker_headers()
    key = "6" * 44
    google.state.add(key, "Tracker for installation (ODS)", {"Tracker": [
        ["Installs, November"], headers + ["Team notes"],
        [GOOD[0]] + [""] * 14 + ["=call first", "VIP"]]})
    google.state.calls.clear()
    r = run_cli("tracker", "update", key, "--from", str(results), "--json", env=env)
    doc = json.loads(r.stdout)
    assert r.returncode == 0, r.stderr
    assert (doc["updated"], doc["added"]) == (1, 3)
    assert google.state.count("POST") <= 2  # one batched values write (plus a grid resize when needed)
    sheet = google.state.books[key].sheets[0]
    assert sheet.values[2][1].startswith("SRM-") and sheet.values[2][15:17] == ["=call first", "VIP"]
    assert [row[0] for row in sheet.values[3:6]] == GOOD[1:4]
    r2 = run_cli("tracker", "update", key, "--from", str(results), "--json", env=env)
    assert json.loads(r2.stdout)["unchanged"] == 4
    r3 = run_cli("tracker", "reconcile", key, "--write", "--json", env=env)
    # Freshly created tickets are not yet due: nothing needs attention, exit 0.
    assert r3.returncode == 0, r3.stderr
    sheet = google.state.books[key].sheets[0]
    assert sheet.values[2][headers.index("Status")] == "CREATED"
    assert all(w["valueInputOption"] == "RAW" for w in google.state.writes)
