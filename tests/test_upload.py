"""The bulk upload against a real `srms serve` subprocess: statuses, exactly-once across restarts,
faults and dropped connections, the lock, the token, the embedded default."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from tests.conftest import GOOD, INELIGIBLE, NON_ODS, SAMPLES, TOKEN, cli_env, order_sheet, read_results, run_cli


def test_mixed_sheet_gives_every_status(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = GOOD[:5] + [NON_ODS[0], INELIGIBLE[0], "OD999999999999999999"]
    sheet = order_sheet(tmp_path, ids, extra=[["od1", "typo"], ["=HYPERLINK(1)", "formula"]])
    out = tmp_path / "results.csv"
    env = cli_env(tmp_path, srms)
    r = run_cli("upload", str(sheet), "--out", str(out), "--json", env=env)
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)
    assert summary["counts"] == {"registered": 5, "already-registered": 0, "rejected": 3, "invalid": 2, "failed": 0}
    rows = read_results(out)
    assert [x["row"] for x in rows] == [str(i) for i in range(2, 12)]
    assert [x["status"] for x in rows[5:8]] == ["rejected"] * 3
    assert [x["code"] for x in rows[5:8]] == ["fsn-not-ods", "service-not-bulk-eligible", "order-not-found"]
    assert rows[8]["code"] == "order-id-lowercase"
    # The formula-looking cell is written so no spreadsheet evaluates it.
    assert rows[9]["fk_order_id"] == "'=HYPERLINK(1)" and rows[9]["code"] == "order-id-formula"
    assert all(x["reference_id"].startswith("BK-") for x in rows[:5])
    assert TOKEN not in r.stdout + r.stderr


def test_rerun_after_restart_returns_same_ids_and_changes_nothing(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sheet = order_sheet(tmp_path, GOOD[:40])
    env = cli_env(tmp_path, srms)
    assert run_cli("upload", str(sheet), "--out", str(tmp_path / "a.csv"), "--batch-size", "7", env=env).returncode == 0
    srms.restart()
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "b.csv"), "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["sent"] == 0
    a, b = read_results(tmp_path / "a.csv"), read_results(tmp_path / "b.csv")
    assert {x["status"] for x in a} == {"registered"} and {x["status"] for x in b} == {"already-registered"}
    assert [x["reference_id"] for x in a] == [x["reference_id"] for x in b]
    # Even without the ledger, SRMS answers with the same IDs.
    env2 = cli_env(tmp_path, srms, FHS_STATE_DIR=str(tmp_path / "fresh-state"))
    run_cli("upload", str(sheet), "--out", str(tmp_path / "c.csv"), env=env2)
    assert [x["reference_id"] for x in read_results(tmp_path / "c.csv")] == [x["reference_id"] for x in a]


@pytest.mark.parametrize("knobs", [("--fail-rate", "0.2", "--seed", "11"), ("--drop-rate", "0.1", "--seed", "12"),
                                   ("--rate-limit", "40", "--seed", "13")])
def test_faults_still_give_exactly_once(srms_factory, tmp_path: Path, knobs: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    srv = srms_factory(*knobs)
    sheet = order_sheet(tmp_path, GOOD[:120])
    env = cli_env(tmp_path, srv)
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), "--batch-size", "10", "--json", env=env)
    final = r
    while final.returncode == 3:  # transient failures: re-run, as cron would
        final = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), "--batch-size", "10", "--json",
                        env=env)
    assert final.returncode == 0, final.stderr
    rows = read_results(tmp_path / "r.csv")
    refs = [x["reference_id"] for x in rows]
    assert all(refs) and len(set(refs)) == len(refs) == 120
    import sqlite3

    db = sqlite3.connect(srv.db)
    assert db.execute("SELECT count(*), count(DISTINCT fk_order_id) FROM tickets").fetchone() == (120, 120)
    server_refs = dict(db.execute("SELECT fk_order_id, reference_id FROM tickets"))
    assert all(server_refs[x["fk_order_id"]] == x["reference_id"] for x in rows)
    assert json.loads(r.stdout)["retries"] > 0 or knobs[0] == "--rate-limit"


def test_srms_down_exits_3_and_rerun_finishes(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sheet = order_sheet(tmp_path, GOOD[:12])
    env = cli_env(tmp_path, srms)
    srms.stop()
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), "--deadline", "1", env=env)
    assert r.returncode == 3, r.stderr
    assert {x["status"] for x in read_results(tmp_path / "r.csv")} == {"failed"}
    assert "Traceback" not in r.stderr
    srms.start()
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), env=env)
    assert r.returncode == 0 and {x["status"] for x in read_results(tmp_path / "r.csv")} == {"registered"}


def test_a_web_server_that_is_not_srms_is_named(tmp_path: Path) -> None:
    """A URL that answers 200 but is not SRMS (a web page): exit 2 with what to check, nothing planned."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            body = b"<html><body>Welcome</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = cli_env(tmp_path, FHS_SRMS_URL=f"http://127.0.0.1:{server.server_address[1]}", FHS_SRMS_TOKEN=TOKEN)
        r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:3])), "--out", str(tmp_path / "r.csv"), env=env)
    finally:
        server.shutdown()
    assert r.returncode == 2 and "did not answer as SRMS does" in r.stderr and "FHS_SRMS_URL" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    ledger = sqlite3.connect(tmp_path / "state" / "ledger.sqlite")
    assert ledger.execute("SELECT count(*) FROM batches").fetchone() == (0,)


def test_the_api_models_load_at_the_first_answer_not_the_ping(srms) -> None:  # type: ignore[no-untyped-def]
    """The client pings without pydantic (an upload's first batches go out meanwhile) and reads every
    later answer into the API's models."""
    code = ("import sys; from fhs_bulk.srms.client import SrmsClient\n"
            f"c = SrmsClient({srms.url!r}, {srms.token!r})\n"
            "c.ping(); print('pydantic' in sys.modules)\n"
            f"r = c.register({GOOD[:2]!r}, 'k-1'); print('pydantic' in sys.modules, type(r).__name__, "
            "[x.status for x in r.results])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["False", "True BulkJobResults ['registered', 'registered']"], out


def test_rerun_the_ledger_answers_needs_no_srms(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A re-run whose orders the ledger holds is answered from it: SRMS down changes nothing; a new
    order in the sheet is what needs SRMS, and fails transiently (exit 3)."""
    env = cli_env(tmp_path, srms)
    out = tmp_path / "r.csv"
    assert run_cli("upload", str(order_sheet(tmp_path, GOOD[:5])), "--out", str(out), env=env).returncode == 0
    first = read_results(out)
    srms.stop()
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:5])), "--out", str(out), "--deadline", "1", env=env)
    assert r.returncode == 0, r.stderr
    again = read_results(out)
    assert [x["status"] for x in again] == ["already-registered"] * 5
    assert [x["reference_id"] for x in again] == [x["reference_id"] for x in first]
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:6])), "--out", str(out), "--deadline", "1", env=env)
    assert r.returncode == 3, r.stderr
    assert [x["status"] for x in read_results(out)] == ["already-registered"] * 5 + ["failed"]


def test_ledger_made_before_the_rowid_layout_keeps_working(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A ledger whose per-order table is the earlier WITHOUT ROWID one: an upload indexes into it and
    a re-run answers from it."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    db = sqlite3.connect(state / "ledger.sqlite")
    db.execute("CREATE TABLE orders (srms_id INTEGER NOT NULL, fk_order_id TEXT NOT NULL, status TEXT NOT NULL, "
               "code TEXT, reference_id TEXT, ticket_id TEXT, batch_key TEXT, updated_at TEXT NOT NULL, "
               "PRIMARY KEY (srms_id, fk_order_id)) WITHOUT ROWID")
    db.close()
    env = cli_env(tmp_path, srms)
    out = tmp_path / "r.csv"
    assert run_cli("upload", str(order_sheet(tmp_path, GOOD[:6])), "--out", str(out), env=env).returncode == 0
    first = read_results(out)
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:6])), "--out", str(out), "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["sent"] == 0, r.stderr
    assert [(x["status"], x["reference_id"]) for x in read_results(out)] == [
        ("already-registered", x["reference_id"]) for x in first]
    db = sqlite3.connect(state / "ledger.sqlite")
    assert "WITHOUT ROWID" in db.execute("SELECT sql FROM sqlite_master WHERE name = 'orders'").fetchone()[0]
    assert db.execute("SELECT count(*) FROM orders").fetchone()[0] == 6


def test_bodies_planned_while_the_sheet_is_read_are_sent_as_recorded(
        srms_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Once SRMS has answered the ping, batches are recorded while the sheet is still being read and
    their bodies let go, and sent from the first ones on: SRMS answers batches before the sheet's last
    rows are planned. Each is sent as read back from the ledger. Every order is registered once, in
    sheet order, with SRMS's own reference ID; a re-run sends nothing."""
    import fhs_bulk
    import fhs_bulk.upload.run as run
    from fhs_bulk.srms.mock import catalogue

    cat_rows = list(catalogue.generate(2000, seed=8, non_ods_every=0, ineligible_every=0))
    srv = srms_factory(catalogue=catalogue.write(tmp_path / "catalogue.csv", cat_rows))
    ids = [r["fk_order_id"] for r in cat_rows]
    monkeypatch.setattr(run, "CHUNK_ROWS", 150)
    monkeypatch.setattr(run, "PLAN_BATCHES", 4)
    plans: list[int] = []  # the bodies each planning step recorded
    answered_while_planning: list[int] = []  # the jobs SRMS had made when the third planning step began
    plan = run._plan

    def planning(session: fhs_bulk.Session, bodies: list[tuple[str, int]]) -> list[tuple[str, int]]:
        plans.append(len(bodies))
        if len(plans) == 3:  # wait (up to 20 s) for SRMS to have answered a batch already planned
            deadline = time.monotonic() + 20
            with contextlib.closing(sqlite3.connect(srv.db)) as server_db:
                while time.monotonic() < deadline and not answered_while_planning:
                    jobs = server_db.execute("SELECT count(*) FROM jobs").fetchone()[0]
                    answered_while_planning.extend([jobs] if jobs else [])
                    time.sleep(0.01)
        return plan(session, bodies)

    monkeypatch.setattr(run, "_plan", planning)
    sheet = order_sheet(tmp_path, ids)
    options = fhs_bulk.UploadOptions(batch_size=10)
    with fhs_bulk.Session(url=srv.url, token=srv.token, state_dir=tmp_path / "state") as session:
        result = fhs_bulk.upload(session, sheet, out=tmp_path / "r.csv", options=options)
        assert result.counts["registered"] == 2000 and result.sent == 2000 and result.batches == 200
        assert len(plans) > 10 and sum(plans) == 200  # recorded as the chunks were read, not all at the end
        assert answered_while_planning and plans[0] == 15  # the first chunk's bodies went out at once
        server = dict(sqlite3.connect(srv.db).execute("SELECT fk_order_id, reference_id FROM tickets"))
        assert [(x.fk_order_id, x.reference_id) for x in result.rows] == [(o, server[o]) for o in ids]
        db = sqlite3.connect(tmp_path / "state" / "ledger.sqlite")
        bodies = [json.loads(b) for (b,) in db.execute("SELECT order_ids FROM batch_bodies")]
        assert sorted(o for body in bodies for o in body) == sorted(ids)
        again = fhs_bulk.upload(session, sheet, out=tmp_path / "r.csv", options=options)
        assert again.sent == 0 and again.counts["already-registered"] == 2000


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["registered", "already-registered", "rejected"]),
                          st.none() | st.text(max_size=4), st.none() | st.text(max_size=4)), min_size=1, max_size=6))
@example([("registered", "=", "")])
@example([("registered", "a\x1eb\x1fc\x1fd", None), ("rejected", None, "\x1f")])
@example([("registered", "X\x1f=t\x1eOD000000000000000005\x1fregistered\x1f=r", None)])  # splits as two rows
def test_lookups_ahead_hold_what_held_holds(tmp_path_factory: pytest.TempPathFactory,
                                           answers: list[tuple[str, str | None, str | None]]) -> None:
    """The lookup thread's one-text answers are exactly ``held(brief=True)``'s rows, whatever SRMS put in a
    reference or ticket ID (an empty one, one holding the text's separators)."""
    from fhs_bulk.state.ledger import Ledger

    ledger = Ledger.open(tmp_path_factory.mktemp("ledger"))
    try:
        ids = [f"OD{i:018d}" for i in range(len(answers) + 2)]  # the last two never sent
        ledger.plan("srms", [("k1", json.dumps(ids[:-2]))])
        outcomes = [(oid, status, "order-not-found" if status == "rejected" else None, ref, tid)
                    for oid, (status, ref, tid) in zip(ids[:-2], answers, strict=True)]
        ledger.record_many("srms", [("k1", "job-1", outcomes)])
        ledger.index("srms")
        lookups = ledger.lookups("srms")
        try:
            assert lookups.ahead(ids)() == ledger.held("srms", ids, brief=True)
            assert len(lookups.ahead(ids)()) == len(answers)
        finally:
            lookups.close()
    finally:
        ledger.close()


def test_a_long_csv_uploaded_as_it_is_read(srms_factory, tmp_path: Path,  # type: ignore[no-untyped-def]
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload checks a long CSV a block at a time (its memory stays flat): each row's result is what
    it is when the sheet is read whole; invalid rows, repeats and rows past a blank one included."""
    import fhs_bulk
    from fhs_bulk.sheets import read
    from fhs_bulk.srms.mock import catalogue

    cat_rows = list(catalogue.generate(300, seed=9, non_ods_every=0, ineligible_every=0))
    srv = srms_factory(catalogue=catalogue.write(tmp_path / "catalogue.csv", cat_rows))
    ids = [r["fk_order_id"] for r in cat_rows]
    cells = [*ids[:150], "", ids[3], f" {ids[150]} ", ids[151].lower(), *ids[152:]]
    sheet = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    sheet.write_text("fk_order_id\n" + "\n".join(cells) + "\n")
    monkeypatch.setattr(read, "SMALL_CSV_BYTES", 0)
    monkeypatch.setattr(read, "STREAM_BYTES", 0)
    monkeypatch.setattr(read, "BLOCK_BYTES", 512)
    blocks: list[int] = []
    iterate = read.CsvBlocks.__iter__
    monkeypatch.setattr(read.CsvBlocks, "__iter__",
                        lambda self: (yield from ((blocks.append(1), b)[1] for b in iterate(self))))
    with fhs_bulk.Session(url=srv.url, token=srv.token, state_dir=tmp_path / "state") as session:
        result = fhs_bulk.upload(session, sheet, out=tmp_path / "r.csv")
    assert len(blocks) > 10  # read in blocks, not whole
    assert result.counts["registered"] == 299 and result.sent == 299
    rows = {x.row: x for x in result.rows}
    assert len(rows) == 301 and 152 not in rows  # the blank row is no order
    assert (rows[153].status, rows[153].code) == ("invalid", "order-id-duplicate")
    assert rows[154].fk_order_id == ids[150] and rows[154].status == "registered"
    assert (rows[155].status, rows[155].code) == ("invalid", "order-id-lowercase")
    server = dict(sqlite3.connect(srv.db).execute("SELECT fk_order_id, reference_id FROM tickets"))
    assert sorted(server) == sorted(ids[:151] + ids[152:])
    assert all(x.reference_id == server[x.fk_order_id] for x in result.rows if x.status == "registered")


def test_rows_past_the_listed_findings_keep_their_code(srms_factory, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A sheet pasted twice past the findings validation lists: every repeat is `invalid` with the code
    `order-id-duplicate` in the results, listed or only counted; each order is registered once."""
    import fhs_bulk
    from fhs_bulk.sheets import read
    from fhs_bulk.srms.mock import catalogue
    from fhs_bulk.validate import check

    cat_rows = list(catalogue.generate(40, seed=10, non_ods_every=0, ineligible_every=0))
    srv = srms_factory(catalogue=catalogue.write(tmp_path / "catalogue.csv", cat_rows))
    ids = [r["fk_order_id"] for r in cat_rows]
    monkeypatch.setattr(check, "MAX_FINDINGS", 5)
    monkeypatch.setattr(read, "SMALL_CSV_BYTES", 0)  # the vectorised checks, as for a long sheet
    sheet = order_sheet(tmp_path, ids + ids)
    with fhs_bulk.Session(url=srv.url, token=srv.token, state_dir=tmp_path / "state") as session:
        result = fhs_bulk.upload(session, sheet, out=tmp_path / "r.csv")
    assert result.counts["registered"] == 40 and result.counts["invalid"] == 40
    repeats = [x for x in result.rows if x.row >= 42]
    assert [(x.status, x.code) for x in repeats] == [("invalid", "order-id-duplicate")] * 40
    assert sum("is already on row" in x.message for x in repeats) == 5
    assert all("earlier row" in x.message for x in repeats[5:])


def test_result_rows_read_back_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Results kept as compressed chunks (past a few rows, in a temporary file) read back exactly, in
    order, whichever way they are read; the CSV lines come defused."""
    import csv
    import io
    import json
    import zlib

    from fhs_bulk.upload import run

    monkeypatch.setattr(run, "COMPRESS_AFTER", 3)
    rows = run.ResultRows()
    data = [[i + 2, f"OD{i:018d}", "registered", None, f"BK-{i:036d}", f"SRM-{i:010d}", ""] for i in range(16)]
    data[7][1], data[7][2] = "=HYPERLINK(1)", "invalid"
    for i in range(0, 16, 2):
        rows.add([list(r) for r in data[i:i + 2]])
    assert len(rows) == 16 and list(rows.lists()) == data
    assert rows[7].fk_order_id == "=HYPERLINK(1)" and rows[-1].row == 17 and [r.row for r in rows] == list(range(2, 18))
    safe = list(csv.reader(io.StringIO("".join(rows.csv_texts()))))
    assert safe[7][1] == "'=HYPERLINK(1)" and safe[6] == [str(v) if v is not None else "" for v in data[6]]
    with pytest.raises(IndexError):
        rows[16]
    assert [r for chunk in rows.chunks() for r in chunk] == data
    assert [r for blob in rows.blobs() for r in json.loads(zlib.decompress(blob))] == data  # the history's format


def test_lock_exits_4_naming_the_holder(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    state = Path(env["FHS_STATE_DIR"])
    state.mkdir(parents=True)
    fd = os.open(state / "upload.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, json.dumps({"pid": 4242, "host": "cron-box", "started": "2026-11-25T01:00:00+00:00"}).encode())
    try:
        r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:2])), env=env)
    finally:
        os.close(fd)
    assert r.returncode == 4 and "pid 4242" in r.stderr and "2026-11-25T01:00:00" in r.stderr


def test_sheet_problems_exit_2_and_strict_exits_1(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    wrong = tmp_path / "orders.csv"
    wrong.write_text("fk_order_id\n" + GOOD[0] + "\n")
    r = run_cli("upload", str(wrong), env=env)
    assert r.returncode == 2 and "FK_ODS_ORDER_CREATE" in r.stderr
    sheet = order_sheet(tmp_path, GOOD[:2], extra=[["od1", ""]])
    r = run_cli("upload", str(sheet), "--strict", env=env)
    assert r.returncode == 1 and "nothing was sent" in r.stderr
    r = run_cli("upload", str(sheet), "--batch-size", "5000", env=env)
    assert r.returncode == 2 and "--batch-size" in r.stderr
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.pdf"), env=env)
    assert r.returncode == 2 and "[output-type]" in r.stderr and "Traceback" not in r.stderr


def test_dry_run_sends_nothing(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    first = run_cli("upload", str(order_sheet(tmp_path, GOOD[:3])), "--out", str(tmp_path / "a.csv"), env=env)
    assert first.returncode == 0, first.stderr
    sheet = order_sheet(tmp_path, GOOD[:6])
    r = run_cli("upload", str(sheet), "--dry-run", "--json", env=cli_env(tmp_path, srms,
                                                                         FHS_STATE_DIR=str(tmp_path / "s2")))
    doc = json.loads(r.stdout)
    assert doc["counts"]["already-registered"] == 3 and doc["counts"]["would-send"] == 3 and doc["sent"] == 0
    import sqlite3

    assert sqlite3.connect(srms.db).execute("SELECT count(*) FROM tickets").fetchone()[0] == 3


def test_xlsx_results_are_text_not_formulas(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sheet = order_sheet(tmp_path, GOOD[:2], extra=[["=1+1", "x"], ["@SUM(A1)", "y"]])
    out = tmp_path / "results.xlsx"
    r = run_cli("upload", str(sheet), "--out", str(out), env=cli_env(tmp_path, srms))
    assert r.returncode == 1
    ws = load_workbook(out).active
    assert [c.value for c in ws[1]] == ["row", "fk_order_id", "status", "code", "reference_id", "ticket_id",
                                        "message"]
    assert ws["B4"].value == "=1+1" and ws["B4"].data_type == "s"
    assert ws["B5"].data_type == "s"


def test_token_never_printed_even_with_debug(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    log = tmp_path / "upload.log"
    r = run_cli("--debug", "upload", str(order_sheet(tmp_path, GOOD[:3])), "--log-file", str(log), env=env)
    assert r.returncode == 0
    assert TOKEN not in r.stdout + r.stderr + log.read_text()
    env["FHS_SRMS_TOKEN"] = "wrong-" + TOKEN
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:3])), env=env)
    assert r.returncode == 0, r.stderr  # the ledger answers a re-run: SRMS is not asked
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[3:6])), env=env)
    assert r.returncode == 2 and "403" in r.stderr and TOKEN not in r.stderr


def test_embedded_default_on_the_samples(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    out = tmp_path / "results.csv"
    r = run_cli("upload", str(SAMPLES / "FK_ODS_ORDER_CREATE.xlsx"), "--out", str(out), env=env, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "embedded mock SRMS" in r.stderr
    rows = read_results(out)
    assert {x["status"] for x in rows} == {"registered", "rejected", "invalid"}
    r2 = run_cli("upload", str(SAMPLES / "FK_ODS_ORDER_CREATE.xlsx"), "--out", str(out), env=env, cwd=tmp_path)
    rows2 = read_results(out)
    assert r2.returncode == 1
    assert [x["reference_id"] for x in rows] == [x["reference_id"] for x in rows2]
    assert "already-registered" in {x["status"] for x in rows2}


def test_long_mixed_sheet_rows_settled_while_sending(srms_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Result rows are settled between answers (a step at a time) and the answers indexed while sending:
    every row of a long sheet mixing new, earlier, refused, invalid and repeated orders still gets the
    right status and SRMS's own reference ID, in sheet order, and the next run finds every order."""
    import random
    import sqlite3

    from fhs_bulk import domain
    from fhs_bulk.srms.mock import catalogue

    cat_rows = list(catalogue.generate(9000, seed=5, non_ods_every=7, ineligible_every=11))
    cat = catalogue.write(tmp_path / "catalogue.csv", cat_rows)
    srv = srms_factory("--latency-ms", "5", catalogue=cat)
    env = cli_env(tmp_path, srv)
    ids = [r["fk_order_id"] for r in cat_rows]
    refused = {r["fk_order_id"] for r in cat_rows
               if not r["fsn"].startswith("ODS") or not domain.eligible_service(r["service"])}
    first = order_sheet(tmp_path, ids[:2500])
    assert run_cli("upload", str(first), "--out", str(tmp_path / "a.csv"), env=env).returncode == 1
    earlier = {x["fk_order_id"]: x["reference_id"] for x in read_results(tmp_path / "a.csv")}

    rng = random.Random(3)
    order = ids[:]
    rng.shuffle(order)
    cells: list[str] = []
    for i, oid in enumerate(order):
        cells.append(oid)
        if i % 997 == 0:
            cells.append(oid.lower())  # invalid
        if i % 1499 == 0:
            cells.append(oid)  # a repeat: invalid
    (tmp_path / "long").mkdir()
    sheet = tmp_path / "long" / "FK_ODS_ORDER_CREATE.csv"
    sheet.write_text("fk_order_id\n" + "\n".join(cells) + "\n", encoding="utf-8")
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "b.csv"), "--batch-size", "100", "--json", env=env)
    assert r.returncode == 1, r.stderr
    rows = read_results(tmp_path / "b.csv")
    assert [int(x["row"]) for x in rows] == list(range(2, len(cells) + 2))
    server = dict(sqlite3.connect(srv.db).execute("SELECT fk_order_id, reference_id FROM tickets"))
    seen: set[str] = set()
    for x, cell in zip(rows, cells, strict=True):
        oid = x["fk_order_id"]
        assert oid == cell
        if oid != oid.upper() or oid in seen:
            assert x["status"] == "invalid", x
            continue
        seen.add(oid)
        if oid in refused:
            assert x["status"] == "rejected" and x["code"], x
        elif oid in earlier:
            assert x["status"] == "already-registered" and x["reference_id"] == earlier[oid], x
        else:
            assert x["status"] == "registered" and x["reference_id"] == server[oid], x
    summary = json.loads(r.stdout)
    assert summary["sent"] == 9000 - len({o for o in ids[:2500] if o not in refused})
    again = run_cli("upload", str(sheet), "--out", str(tmp_path / "c.csv"), "--json", env=env)
    assert json.loads(again.stdout)["sent"] == len(refused), again.stderr  # only what SRMS refused is asked again
    assert {x["status"] for x in read_results(tmp_path / "c.csv")} == {"already-registered", "rejected", "invalid"}
