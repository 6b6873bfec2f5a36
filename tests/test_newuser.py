"""What a new user trips over: streams, error lines, cut lists, values, names, layouts, rehearsals."""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook

from fhs_bulk.cli import main
from tests.conftest import GOOD, cli_env, order_sheet, read_results, run_cli


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_report_on_stdout_errors_on_stderr_with_their_code(tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "FK_ODS_ORDER_CREATE.csv", [["fk_order_id"], [GOOD[0]], ["od1"]])
    r = run_cli("validate", str(sheet), env=cli_env(tmp_path))
    assert r.returncode == 1 and "2 rows, 1 valid, 1 invalid, 0 warnings" in r.stdout and r.stderr == ""
    missing = run_cli("validate", str(tmp_path / "FK_ODS_ORDER_CREATE.xlsx"), env=cli_env(tmp_path))
    assert missing.stdout == "" and missing.stderr.startswith("error: ") and missing.stderr.rstrip().endswith(
        "[sheet-not-found]")
    one = write_csv(tmp_path / "one" / "FK_ODS_ORDER_CREATE.csv", [["fk_order_id"], [" " + GOOD[0]]]) \
        if (tmp_path / "one").mkdir() is None else None
    assert one is not None
    r = run_cli("validate", str(one), env=cli_env(tmp_path))
    assert "1 row, 1 valid, 0 invalid, 1 warning" in r.stdout  # no "1 rows", "1 warnings"
    assert "\twarning\torder-id-whitespace\t" in r.stdout  # the severity column


def test_upload_lists_are_cut_saying_where_the_rest_is(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.csv"
    sheet = order_sheet(tmp_path, GOOD[:2], extra=[[f"od{i}", ""] for i in range(14)])
    r = run_cli("upload", str(sheet), "--out", str(out), env=cli_env(tmp_path, srms))
    assert r.returncode == 1
    assert f"... and 4 more: see {out}" in r.stdout
    assert "1 batch" in r.stderr and "1 batches" not in r.stderr


def test_values_are_the_cell_text_as_it_is(tmp_path: Path) -> None:
    nbsp = GOOD[0][:10] + "\u00a0" + GOOD[0][10:]
    sheet = write_csv(tmp_path / "FK_ODS_ORDER_CREATE.csv", [["fk_order_id"], [nbsp]])
    doc = json.loads(run_cli("validate", str(sheet), "--json", env=cli_env(tmp_path)).stdout)
    assert doc["errors"][0]["value"] == nbsp and "U+00A0" in doc["errors"][0]["message"]
    report = tmp_path / "f.csv"
    CliRunner().invoke(main, ["validate", str(sheet), "--report", str(report)])
    assert read_results(report)[0]["value"] == nbsp


def test_out_must_be_csv_xlsx_or_a_google_sheet(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:1])), "--out", str(tmp_path / "x.txt"),
                env=cli_env(tmp_path, srms))
    assert r.returncode == 2 and "[output-type]" in r.stderr and not (tmp_path / "x.txt").exists()


def test_dry_run_lists_orders_and_exits_as_the_real_run_would(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import NON_ODS

    env = cli_env(tmp_path, srms)
    sheet = order_sheet(tmp_path, GOOD[:3] + [NON_ODS[0]])
    assert run_cli("upload", str(sheet), "--out", str(tmp_path / "a.csv"), env=env).returncode == 1
    more = order_sheet(tmp_path, GOOD[:5] + [NON_ODS[0]], extra=[["od1", ""]])
    r = run_cli("upload", str(more), "--dry-run", "--json", env=env)
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["exit_code"] == 1
    assert doc["orders"]["would-send"] == GOOD[3:5] and doc["orders"]["already-registered"] == GOOD[:3]
    assert doc["orders"]["rejected"] == [NON_ODS[0]] and doc["orders"]["invalid"] == ["od1"]


def test_copies_of_the_sheet_name_are_accepted_with_a_warning(tmp_path: Path) -> None:
    for name, ok in (("FK_ODS_ORDER_CREATE (1).csv", True), ("FK_ODS_ORDER_CREATE_2026-11-26.csv", True),
                     ("FK_ODS_ORDER_CREATE-20261126.csv", True), ("FK_ODS_ORDER_CREATE copy.csv", False),
                     ("orders.csv", False)):
        d = tmp_path / str(abs(hash(name)))
        d.mkdir()
        sheet = write_csv(d / name, [["fk_order_id"], [GOOD[0]]])
        doc = json.loads(run_cli("validate", str(sheet), "--json", env=cli_env(tmp_path)).stdout)
        if ok:
            assert doc["valid"] == 1 and [w["code"] for w in doc["warnings"]] == ["sheet-name-variant"], name
        else:
            assert doc["errors"][0]["code"] == "sheet-name", name


def test_reconcile_warns_when_history_runs_past_as_of(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    out = tmp_path / "r.csv"
    assert run_cli("upload", str(order_sheet(tmp_path, GOOD[:10])), "--out", str(out), env=env).returncode == 0
    srms.stop()
    until = (date.today() + timedelta(days=15)).isoformat()
    assert run_cli("srms", "advance", "--db", str(srms.db), "--until", until, env=env).returncode == 0
    srms.start()
    tracker = write_csv(tmp_path / "t.csv", [["fk_order_id", "SRM ID"]] +
                        [[x["fk_order_id"], x["ticket_id"]] for x in read_results(out)])
    r = run_cli("tracker", "reconcile", str(tracker), env=env)
    assert "warning: SRMS history holds events up to" in r.stderr and "--as-of" in r.stderr
    r = run_cli("tracker", "reconcile", str(tracker), "--as-of", until, env=env)
    assert "warning: SRMS history" not in r.stderr


def test_results_and_report_xlsx_are_ready_to_read(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.xlsx"
    env = cli_env(tmp_path, srms)
    assert run_cli("upload", str(order_sheet(tmp_path, GOOD[:3])), "--out", str(out), env=env).returncode == 0
    ws = load_workbook(out).active
    assert ws.freeze_panes == "A2" and ws["A1"].font.b and ws.auto_filter.ref == "A1:G4"
    assert ws.column_dimensions["B"].width >= 20 and ws["B2"].data_type == "s"
    tracker = write_csv(tmp_path / "t.csv", [["fk_order_id", "SRM ID"]] +
                        [[GOOD[i], ws.cell(row=i + 2, column=6).value] for i in range(3)] +
                        [[GOOD[5], "SRM-0000099999"]])  # an unknown ticket: a worklist row
    report = tmp_path / "w.xlsx"
    run_cli("tracker", "reconcile", str(tracker), "--report", str(report), env=env)
    wl = load_workbook(report)["Worklist"]
    assert wl.page_setup.orientation == "landscape" and wl.sheet_properties.pageSetUpPr.fitToPage
    assert wl.page_setup.fitToWidth == 1 and wl.print_title_rows == "$1:$1"
    html = tmp_path / "w.html"
    run_cli("tracker", "reconcile", str(tracker), "--report", str(html), env=env)
    page = html.read_text(encoding="utf-8")
    assert 'name="viewport"' in page and "white-space: nowrap" in page and '<td class="id">SRM-' in page


def test_rehearse_a_night_without_python(tmp_path: Path, srms_factory) -> None:  # type: ignore[no-untyped-def]
    night = tmp_path / "night"
    r = run_cli("samples", "make", "--orders", "3000", "--seed", "5", "--out", str(night), env=cli_env(tmp_path))
    assert r.returncode == 0
    again = tmp_path / "again"
    run_cli("samples", "make", "--orders", "3000", "--seed", "5", "--out", str(again), env=cli_env(tmp_path))
    sheet = night / "FK_ODS_ORDER_CREATE.csv"
    assert sheet.read_bytes() == (again / "FK_ODS_ORDER_CREATE.csv").read_bytes()  # deterministic for a seed
    srv = srms_factory("--orders", "3000", "--seed", "5")
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), "--json", env=cli_env(tmp_path, srv))
    counts = json.loads(r.stdout)["counts"]
    assert counts["registered"] > 2700 and counts["rejected"] > 50 and counts["invalid"] > 5
    assert counts["failed"] == 0


def test_help_and_docs_say_what_they_should() -> None:
    r = CliRunner().invoke(main, ["tracker", "update", "--help"])
    assert "--json" in r.output and "One JSON document" in r.output
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert "_FHS_BULK_COMPLETE=bash_source" in readme and "| 143 |" in readme


def test_encrypted_or_zip_files_named_csv_are_not_read_as_text(tmp_path: Path) -> None:
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x", "y")
    r = run_cli("validate", str(p), env=cli_env(tmp_path))
    assert r.returncode == 2 and "Rename it to .xlsx" in r.stderr
