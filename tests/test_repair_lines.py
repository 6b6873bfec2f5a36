"""Repair tickets are judged by their own line's L1 table. The tables below are transcribed from the
process document (DOMAIN.md, from the seeds), not read from the code: a row's expected CRM tag comes
from here, and the code must agree."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli

IST_OFFSET = timedelta(hours=5, minutes=30)
MOBILE = {"Mobile Repair", "Laptop Repair"}
LARGE = {"TV Repair", "AC Repair", "Refrigerator Repair", "Washing Machine Repair"}
OUT_OF_SPD = "Inbound >> Complaint >> Delay in Service >> Out of SPD >> Unresolved"
RESCHEDULE = "Reschedule >> preferred date >> Remarks >> Submit"
TAT = "Inbound >> Enquiry >> Enquiry About TAT/SPD >> Resolved"

# (status, sub-statuses or None for any, condition, CRM tag), first match wins, as the document lists them.
INSTALLATION = [
    ("CANCELED", None, "any", "Inbound >> Enquiry >> Enquiry about the cancellation >> Resolved"),
    ("CREATED", None, "spd-breached", OUT_OF_SPD),
    ("SERVICE_PENDING", {"VENDOR_OFFLOAD"}, "spd-breached", OUT_OF_SPD),
    ("CREATED", None, "spd-ok", TAT),
    ("SERVICE_PENDING", {"VENDOR_OFFLOAD"}, "spd-ok", TAT),
    ("ALLOCATED", None, "spd-breached", OUT_OF_SPD),
    ("ALLOCATED", None, "spd-ok", RESCHEDULE),
    ("RESCHEDULED", {"TECHNICIAN_RESCHEDULE"}, "any", OUT_OF_SPD),
    ("RESCHEDULED", {"CUSTOMER_RESCHEDULE"}, "spd-breached",
     "Reschedule, or Inbound >> Complaint >> Fake status updated by technician >> Unresolved"),
    ("RESCHEDULED", {"CUSTOMER_RESCHEDULE"}, "spd-ok", RESCHEDULE),
    ("RESCHEDULED", {"CUSTOMER_NOT_RESPONDING"}, "any",
     "Reschedule, or Inbound >> Complaint >> Fake closure/ Fake Status >> Unresolved"),
    ("COMPLETED", None, "within-30", "Inbound >> Request >> Request to reopen ticket >> Resolved"),
    ("COMPLETED", None, "after-30", "Inbound >> Enquiry >> Post Policy-Service Denial"),
]
LARGE_REPAIR = [row if (row[0], row[2]) != ("COMPLETED", "after-30") else
                ("COMPLETED", None, "after-30", "Inbound >> Enquiry >> Enquiry About Service Charges >> Resolved")
                for row in INSTALLATION]
IN_REPAIR = {"INWARD", "DIAGNOSIS", "ESTIMATION_REQUESTED", "ESTIMATION_RESPONSE_PENDING", "ESTIMATION_APPROVED",
             "REPAIR_IN_PROGRESS", "QC_PENDING", "QC_SUCCESS"}
MOBILE_REPAIR = [
    ("CREATED", None, "spd-ok", "Inbound >> Enquiry >> Pickup Status Enquiry >> Resolved"),
    ("PICKUP", {"ALLOCATED"}, "spd-ok", "Inbound >> Enquiry >> Pickup Status Enquiry >> Resolved"),
    ("CREATED", None, "spd-breached", "Inbound >> Complaint >> Delay in pickup >> Unresolved"),
    ("PICKUP", {"ALLOCATED"}, "spd-breached", "Inbound >> Complaint >> Delay in pickup >> Unresolved"),
    ("WORKSHOP", IN_REPAIR, "any", TAT),
    ("WORKSHOP", {"ESTIMATION_REJECTED"}, "any", TAT),
    ("DROP", {"ALLOCATED"}, "delivery-ok", "Inbound >> Enquiry >> Delivery Status Enquiry >> Resolved"),
    ("DROP", {"ALLOCATED", "TECHNICIAN_REACHED_SITE", "NOT_APPLICABLE"}, "delivery-breached",
     "Inbound >> Complaint >> Delay in delivery >> Unresolved"),
    ("COMPLETED", None, "within-30", "Inbound >> Request >> Request to reopen ticket >> Resolved"),
    ("DROP", {"COMPLETED"}, "within-30", "Inbound >> Request >> Request to reopen ticket >> Resolved"),
    ("COMPLETED", None, "after-30", "Inbound >> Enquiry >> Request to reopen ticket >> Unresolved"),
    ("DROP", {"COMPLETED"}, "after-30", "Inbound >> Enquiry >> Request to reopen ticket >> Unresolved"),
]


def ist_day(stamp: str) -> date:
    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")) + IST_OFFSET).date()


def next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def conditions(t: dict, as_of: date) -> set[str]:
    """The conditions the document's tables name, judged from the ticket as the document defines them."""
    held = {"any"}
    mobile = t["service"] in MOBILE
    spd = date.fromisoformat(t["spd"])
    held.add("spd-breached" if spd < as_of else "spd-ok")
    served = [h for h in t["history"] if h["status"] == "COMPLETED" or (h["status"], h["sub_status"]) ==
              ("DROP", "COMPLETED")]
    if served:
        held.add("within-30" if (as_of - ist_day(served[0]["at"])).days <= 30 else "after-30")
    if mobile:
        done = [h for h in t["history"] if (h["status"], h["sub_status"]) in (("WORKSHOP", "REPAIR_COMPLETED"),
                                                                            ("WORKSHOP", "ESTIMATION_REJECTED"))]
        late = bool(done) and as_of > next_weekday(ist_day(done[-1]["at"]))
        held.add("delivery-breached" if late else "delivery-ok")
    return held


def expected_tag(t: dict, as_of: date) -> str | None:
    table = MOBILE_REPAIR if t["service"] in MOBILE else LARGE_REPAIR if t["service"] in LARGE else INSTALLATION
    held = conditions(t, as_of)
    for status, subs, condition, tag in table:
        if t["status"] == status and (subs is None or t["sub_status"] in subs) and condition in held:
            return tag
    return None  # the line's table has no row: a fallback, marked as such


def test_each_line_is_judged_by_its_own_table(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    services = ["Mobile Repair", "Laptop Repair", "TV Repair", "AC Repair", "Refrigerator Repair",
                "Washing Machine Repair", "SP TV", "Geyser"]
    start = datetime.now().date() + timedelta(days=1)
    requests = tmp_path / "requests.csv"
    requests.write_text("fk_order_id,customer_name,phone,address,city,pincode,service,preferred_date\n" + "".join(
        f"OD7{i:017d},Asha,9876543210,1 MG Road,Pune,411001,{services[i % 8]},{start.isoformat()}\n"
        for i in range(48)), encoding="utf-8")
    created = tmp_path / "created.csv"
    r = run_cli("ticket", "create", "--from", str(requests), "--out", str(created), env=env)
    assert r.returncode == 0, r.stderr
    with open(created, newline="", encoding="utf-8") as fh:
        ids = [(row["fk_order_id"], row["ticket_id"]) for row in csv.DictReader(fh)]
    assert len(ids) == 48
    srms.stop()
    until = start + timedelta(days=6)
    assert run_cli("srms", "advance", "--db", str(srms.db), "--until", until.isoformat(), "--seed", "11",
                   env=env).returncode == 0
    # One mobile repair deterministically waiting for delivery: repaired five days before the judging day.
    as_of = until + timedelta(days=3)
    late_id = next(tid for (_, tid), i in zip(ids, range(48), strict=True) if services[i % 8] == "Mobile Repair")
    repaired = (datetime.combine(as_of - timedelta(days=5), datetime.min.time()) - IST_OFFSET).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    with sqlite3.connect(srms.db) as con:
        con.execute("INSERT INTO history VALUES (?,?,?,?,?)", (late_id, repaired, "WORKSHOP", "REPAIR_COMPLETED", ""))
        con.execute("INSERT INTO history VALUES (?,?,?,?,?)", (late_id, repaired, "DROP", "ALLOCATED", ""))
        con.execute("UPDATE tickets SET status='DROP', sub_status='ALLOCATED', status_changed_at=? WHERE ticket_id=?",
                    (repaired, late_id))
    srms.start()
    tracker = tmp_path / "tracker.csv"
    tracker.write_text("fk_order_id,SRM ID\n" + "".join(f"{o},{t}\n" for o, t in ids), encoding="utf-8")
    r = run_cli("tracker", "reconcile", str(tracker), "--as-of", as_of.isoformat(), "--json", env=env)
    assert r.returncode in (0, 1), r.stderr
    rows = {row["srm_id"]: row for row in json.loads(r.stdout)["rows"]}
    with srms.client() as http:  # the tickets as SRMS holds them, in one query over HTTP
        found = http.post("/v1/tickets/query", json={"ids": [tid for _, tid in ids]}).json()["tickets"]
    tickets = {t["ticket_id"]: t for t in found}
    process = fallback = 0
    lines = set()
    for tid, t in tickets.items():
        row = rows[tid]
        want = expected_tag(t, as_of)
        lines.add(row["line"])
        if want is None:
            fallback += 1
            assert row["rule_source"] == "fallback", (t["service"], t["status"], t["sub_status"], row)
        else:
            process += 1
            assert row["rule_source"] == "process" and row["crm_tag"] == want, (
                t["service"], t["status"], t["sub_status"], sorted(conditions(t, as_of)), row["crm_tag"], want)
    assert lines == {"installation", "mobile-repair", "large-repair"} and process > 30
    late = rows[late_id]
    assert "delivery-breached" in late["findings"] and late["days_late"] >= 2 and late["delivery_due"]
    assert late["crm_tag"] == "Inbound >> Complaint >> Delay in delivery >> Unresolved"
    large = [tickets[tid] for tid in tickets if tickets[tid]["service"] in LARGE]
    assert {t["status"] for t in large} & {"ALLOCATED", "COMPLETED"}  # moves like an installation
    assert not {t["status"] for t in large} & {"PICKUP", "WORKSHOP", "DROP"}


def test_services_lists_every_line(tmp_path: Path) -> None:
    r = run_cli("services", "--json", env=cli_env(tmp_path))
    doc = {s["name"]: s for s in json.loads(r.stdout)["services"]}
    assert {doc[n]["line"] for n in LARGE} == {"large-repair"} and {doc[n]["line"] for n in MOBILE} == {"mobile-repair"}
    assert doc["SP TV"]["bulk_eligible"] and not doc["TV Repair"]["bulk_eligible"] and doc["TV Repair"]["tat_days"] > 0


def _flags(condition: str) -> dict[str, object]:
    return {"spd_breached": condition == "spd-breached", "delivery_breached": condition == "delivery-breached",
            "within_warranty": True if condition == "within-30" else False if condition == "after-30" else None}


@pytest.mark.parametrize("line, row", [("mobile-repair", r) for r in MOBILE_REPAIR] +
                         [("large-repair", r) for r in LARGE_REPAIR] + [("installation", r) for r in INSTALLATION])
def test_each_table_row(line: str, row: tuple) -> None:
    """Each transcribed row: a ticket in its state under its condition gets its tag, from the process."""
    from fhs_bulk.tracker.reconcile import next_action

    status, subs, condition, tag = row
    for sub in sorted(subs) if subs else ["NOT_APPLICABLE"]:
        _, got_tag, _, source = next_action(status, sub, line=line, **_flags(condition))  # type: ignore[arg-type]
        assert (got_tag, source) == (tag, "process"), (line, status, sub, condition)
