"""Acting on the worklist: reschedule, cancel and reopen, each rule of the process (domain.ACTION_RULES)
through a real `srms serve`, exactly once, written back to the tracker."""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from fhs_bulk import domain
from tests.conftest import GOOD, INELIGIBLE, cli_env, order_sheet, read_results, run_cli

IST = domain.IST
OPEN_STATES = [("CREATED", "NOT_APPLICABLE"), ("ALLOCATED", "NOT_APPLICABLE"), ("SERVICE_PENDING", "VENDOR_OFFLOAD"),
               ("RESCHEDULED", "CUSTOMER_NOT_RESPONDING")]


def today() -> date:
    return datetime.now(IST).date()


def registered(srms, tmp_path: Path, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Upload n orders; their Service Ticket IDs."""
    out = tmp_path / "up.csv"
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:n])), "--out", str(out), env=cli_env(tmp_path, srms))
    assert r.returncode == 0, r.stderr
    return [row["ticket_id"] for row in read_results(out)]


def put_state(db: Path, ticket_id: str, status: str, sub: str, *, days_ago: int = 0) -> None:
    """SRMS moved the ticket (as `srms advance` would), ``days_ago`` days before today."""
    at = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE tickets SET status=?, sub_status=?, status_changed_at=?, updated_at=? WHERE ticket_id=?",
                    (status, sub, at, at, ticket_id))
        con.execute("INSERT INTO history VALUES (?,?,?,?,?)", (ticket_id, at, status, sub, "moved by the test"))


def history_len(db: Path, ticket_id: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM history WHERE ticket_id=?", (ticket_id,)).fetchone()[0]


def args_for(action: str) -> list[str]:
    return {"reschedule": ["--date", (today() + timedelta(days=3)).isoformat(), "--remarks", "customer away"],
            "cancel": [], "reopen": ["--remarks", "still leaking"]}[action]


@pytest.mark.parametrize("rule", domain.ACTION_RULES, ids=lambda r: r.action)
def test_each_action_rule_allows_its_states_and_refuses_the_others(srms, tmp_path: Path, rule) -> None:  # type: ignore[no-untyped-def]
    ids = registered(srms, tmp_path, 2)
    env = cli_env(tmp_path, srms)
    allowed = {"reschedule": ("ALLOCATED", "NOT_APPLICABLE"), "cancel": ("CANCEL_INITIATED", "CUSTOMER_NOT_READY"),
               "reopen": ("COMPLETED", "NOT_APPLICABLE")}[rule.action]
    refused = {"reschedule": ("CANCEL_INITIATED", "NOT_SERVICEABLE"), "cancel": ("ALLOCATED", "NOT_APPLICABLE"),
               "reopen": ("RESCHEDULED", "CUSTOMER_RESCHEDULE")}[rule.action]
    assert domain.action_refusal(rule.action, allowed[0]) is None
    assert domain.action_refusal(rule.action, refused[0]) == rule
    put_state(srms.db, ids[0], *allowed)
    put_state(srms.db, ids[1], *refused)
    ok = run_cli("ticket", rule.action, ids[0], *args_for(rule.action), "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)["outcomes"][0]
    status, sub = rule.result
    assert doc["status"] == "done" and doc["ticket_status"] == f"{status}/{sub or 'CUSTOMER_NOT_READY'}"
    no = run_cli("ticket", rule.action, ids[1], *args_for(rule.action), env=env)
    assert no.returncode == 1 and rule.refusal_code in no.stderr and rule.rule in no.stderr, no.stderr
    if rule.action == "reopen":
        new = doc["ticket_id"]
        shown = json.loads(run_cli("ticket", "show", new, "--json", env=env).stdout)
        old = json.loads(run_cli("ticket", "show", ids[0], "--json", env=env).stdout)
        assert new != ids[0] and shown["reopened_from"] == ids[0] and old["reopened_as"] == new
        assert shown["fk_order_id"] == old["fk_order_id"] and shown["status"] == "CREATED"
    if rule.action == "reschedule":
        t = json.loads(run_cli("ticket", "show", ids[0], "--json", env=env).stdout)
        assert t["spd"] == args_for("reschedule")[1] and t["history"][-1]["remark"] == "customer away"


def test_the_same_action_twice_changes_nothing(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = registered(srms, tmp_path, 3)
    env = cli_env(tmp_path, srms)
    put_state(srms.db, ids[0], "ALLOCATED", "NOT_APPLICABLE")
    put_state(srms.db, ids[1], "CANCEL_INITIATED", "CUSTOMER_NOT_READY")
    put_state(srms.db, ids[2], "COMPLETED", "NOT_APPLICABLE")
    for tid, action in ((ids[0], "reschedule"), (ids[1], "cancel"), (ids[2], "reopen")):
        first = run_cli("ticket", action, tid, *args_for(action), "--json", env=env)
        before = history_len(srms.db, tid)
        again = run_cli("ticket", action, tid, *args_for(action), "--json", env=env)
        assert first.returncode == again.returncode == 0, again.stderr
        a, b = json.loads(first.stdout)["outcomes"][0], json.loads(again.stdout)["outcomes"][0]
        assert (a["status"], b["status"]) == ("done", "replayed") and a["ticket_id"] == b["ticket_id"]
        assert history_len(srms.db, tid) == before
    with sqlite3.connect(srms.db) as con:
        assert con.execute("SELECT count(*) FROM tickets WHERE reopened_from=?", (ids[2],)).fetchone()[0] == 1


def test_cancel_reason_and_remarks(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = registered(srms, tmp_path, 1)
    env = cli_env(tmp_path, srms)
    put_state(srms.db, ids[0], "CANCEL_INITIATED", "CUSTOMER_NOT_RESPONDING")
    r = run_cli("ticket", "cancel", ids[0], "--reason", "CUSTOMER_NOT_RESPONDING", env=env)
    assert r.returncode == 0, r.stderr
    t = json.loads(run_cli("ticket", "show", ids[0], "--json", env=env).stdout)
    assert (t["status"], t["sub_status"]) == ("CANCELED", "CUSTOMER_NOT_RESPONDING")
    assert t["history"][-1]["remark"] == "Cancel"


def test_reopen_after_the_warranty_is_denied(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = registered(srms, tmp_path, 2)
    env = cli_env(tmp_path, srms)
    put_state(srms.db, ids[0], "COMPLETED", "NOT_APPLICABLE", days_ago=31)
    put_state(srms.db, ids[1], "COMPLETED", "NOT_APPLICABLE", days_ago=29)
    r = run_cli("ticket", "reopen", ids[0], env=env)
    assert r.returncode == 1 and "warranty-expired" in r.stderr and "post policy service denial" in r.stderr
    assert run_cli("ticket", "reopen", ids[1], env=env).returncode == 0


def test_inputs_are_checked_before_sending(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = registered(srms, tmp_path, 1)
    env = cli_env(tmp_path, srms)
    cases = [
        (["reschedule", ids[0], "--date", "2026-02-30"], "date-invalid"),
        (["reschedule", ids[0], "--date", (today() - timedelta(days=1)).isoformat()], "date-past"),
        (["reschedule", ids[0], "--date", (today() + timedelta(days=31)).isoformat()], "date-too-far"),
        (["reschedule", ids[0]], "field-missing"),
        (["reopen", ids[0], "--phone", "12345"], "phone-invalid"),
        (["reopen", ids[0], "--address", "2 New Road"], "field-missing"),
        (["reopen", ids[0], "--address", "2 New Road", "--city", "Pune", "--pincode", "012345"], "pincode-invalid"),
        (["cancel", "XYZ-1"], "ticket-id-invalid"),
    ]
    before = history_len(srms.db, ids[0])
    for args, code in cases:
        r = run_cli("ticket", *args, env=env)
        assert r.returncode == 1 and code in r.stderr, (args, r.stderr)
    assert history_len(srms.db, ids[0]) == before
    assert run_cli("ticket", "cancel", env=env).returncode == 2  # no ID at all


def test_from_sheet_out_and_tracker(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = registered(srms, tmp_path, 4)
    env = cli_env(tmp_path, srms)
    for tid in ids[:3]:
        put_state(srms.db, tid, "COMPLETED", "NOT_APPLICABLE")
    tracker = tmp_path / "tracker.csv"
    with open(tracker, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["fk_order_id", "SRM ID", "Status", "Remarks"])
        for oid, tid in zip(GOOD[:4], ids, strict=True):
            w.writerow([oid, tid, "COMPLETED", "note"])
    sheet = tmp_path / "reopens.csv"
    with open(sheet, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["SRM ID", "Remarks", "Alternate phone"])
        w.writerow([ids[0], "fan noisy", "9876501234"])
        w.writerow([ids[1], "", ""])
        w.writerow([ids[3], "not completed yet", ""])  # refused by the rule: the others go on
        w.writerow([ids[2], "", "123"])  # invalid
    out = tmp_path / "out.csv"
    r = run_cli("ticket", "reopen", "--from", str(sheet), "--out", str(out), "--tracker", str(tracker), env=env)
    assert r.returncode == 1, r.stderr
    rows = read_results(out)
    assert [x["row"] for x in rows] == ["2", "3", "4", "5"]
    assert [x["status"] for x in rows] == ["done", "done", "refused", "invalid"]
    assert rows[2]["code"] == "ticket-not-completed" and rows[3]["code"] == "phone-invalid"
    with open(tracker, newline="", encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert got[0]["SRM ID"] == rows[0]["ticket_id"] and got[0]["Earlier SRM IDs"] == ids[0]
    assert got[0]["Status"] == "CREATED" and got[0]["Remarks"] == "note"
    assert got[3]["SRM ID"] == ids[3] and not got[3]["Earlier SRM IDs"]  # its line is left as it was
    listing = json.loads(run_cli("runs", "--json", env=env).stdout)["runs"]
    assert listing[0]["command"] == "ticket reopen" and listing[0]["exit_code"] == 1


def test_reconcile_names_the_action_and_its_command(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = registered(srms, tmp_path, 3)
    env = cli_env(tmp_path, srms)
    put_state(srms.db, ids[0], "CANCEL_INITIATED", "CUSTOMER_NOT_READY")
    put_state(srms.db, ids[1], "COMPLETED", "NOT_APPLICABLE")
    tracker = tmp_path / "tracker.csv"
    tracker.write_text("fk_order_id,SRM ID\n" + "".join(f"{o},{t}\n" for o, t in zip(GOOD[:3], ids, strict=True)),
                       encoding="utf-8")
    r = run_cli("tracker", "reconcile", str(tracker), "--json", "--report", str(tmp_path / "w.xlsx"), env=env)
    rows = {x["srm_id"]: x for x in json.loads(r.stdout)["rows"]}
    assert rows[ids[0]]["action"] == "cancel" and rows[ids[0]]["command"] == f"fhs-bulk ticket cancel {ids[0]}"
    assert rows[ids[1]]["action"] == "reopen" and rows[ids[1]]["command"] == f"fhs-bulk ticket reopen {ids[1]}"
    assert rows[ids[2]]["action"] == "inform" and rows[ids[2]]["command"] is None
    from openpyxl import load_workbook

    ws = load_workbook(tmp_path / "w.xlsx")["Worklist"]
    header = [c.value for c in ws[1]]
    assert "Action" in header and "Command" in header


def test_upload_singles_out_is_a_ready_ticket_create_sheet(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    singles = tmp_path / "singles.csv"
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:2] + INELIGIBLE[:2])), "--singles-out", str(singles),
                env=env)
    assert r.returncode == 1, r.stderr
    rows = read_results(singles)
    assert [x["fk_order_id"] for x in rows] == INELIGIBLE[:2]
    assert all(x["service"] and domain.known_service(x["service"]) for x in rows)
    assert list(rows[0]) == ["fk_order_id", "customer_name", "phone", "address", "city", "pincode", "service",
                             "preferred_date", "remarks"]
    again = run_cli("ticket", "create", "--from", str(singles), env=env)
    assert again.returncode == 1 and "field-missing" in again.stderr  # the columns to fill in


@pytest.mark.slow
def test_sigkill_during_500_reopens_then_rerun_leaves_one_new_ticket_each(srms_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fhs_bulk.srms.mock import catalogue

    cat = catalogue.write(tmp_path / "cat.csv", catalogue.generate(500, seed=8, non_ods_every=0, ineligible_every=0))
    ids = [r["fk_order_id"] for r in catalogue.load(cat)]
    srv = srms_factory("--latency-ms", "10", "--drop-rate", "0.05", "--seed", "4", catalogue=cat)
    env = cli_env(tmp_path, srv)
    sheet = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    sheet.write_text("fk_order_id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    out = tmp_path / "up.csv"
    assert run_cli("upload", str(sheet), "--out", str(out), env=env, timeout=300).returncode == 0
    tickets = [row["ticket_id"] for row in read_results(out)]
    with sqlite3.connect(srv.db) as con:
        con.execute("UPDATE tickets SET status='COMPLETED', sub_status='NOT_APPLICABLE'")
    reopens = tmp_path / "reopens.csv"
    reopens.write_text("srm_id,remarks\n" + "".join(f"{t},not fixed\n" for t in tickets), encoding="utf-8")
    cmd = [sys.executable, "-m", "fhs_bulk", "ticket", "reopen", "--from", str(reopens)]
    killed = 0
    for _ in range(3):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    final = run_cli("ticket", "reopen", "--from", str(reopens), "--json", env=env, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    assert killed >= 1
    with sqlite3.connect(srv.db) as con:
        links = con.execute("SELECT reopened_from, count(*) FROM tickets WHERE reopened_from IS NOT NULL "
                            "GROUP BY reopened_from").fetchall()
    assert len(links) == 500 and all(n == 1 for _, n in links)
    outcomes = json.loads(final.stdout)["outcomes"]
    assert {o["status"] for o in outcomes} <= {"done", "replayed"} and len({o["ticket_id"] for o in outcomes}) == 500


@pytest.mark.slow  # 12 tickets through actions, then 20 days of journey
def test_advance_moves_rescheduled_and_reopened_tickets_on(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Six of each: the journey's odds let a single ticket stay put (25% for a reschedule), not all six."""
    ids = registered(srms, tmp_path, 12)
    env = cli_env(tmp_path, srms)
    rescheduled, reopened = ids[:6], []
    for tid in rescheduled:
        put_state(srms.db, tid, "ALLOCATED", "NOT_APPLICABLE")
        assert run_cli("ticket", "reschedule", tid, *args_for("reschedule"), env=env).returncode == 0
    for tid in ids[6:]:
        put_state(srms.db, tid, "COMPLETED", "NOT_APPLICABLE")
        out = run_cli("ticket", "reopen", tid, "--json", env=env)
        reopened.append(json.loads(out.stdout)["outcomes"][0]["ticket_id"])
    srms.stop()
    until = (today() + timedelta(days=20)).isoformat()
    assert run_cli("srms", "advance", "--db", str(srms.db), "--until", until, "--seed", "2", env=env).returncode == 0
    with sqlite3.connect(srms.db) as con:
        states = dict(con.execute("SELECT ticket_id, status FROM tickets"))
    assert sum(states[t] != "RESCHEDULED" for t in rescheduled) >= 2
    assert sum(states[t] != "CREATED" for t in reopened) >= 3
