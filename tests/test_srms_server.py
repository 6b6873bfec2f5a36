"""The mock SRMS over real HTTP: auth on every route, bulk jobs, idempotency, tickets, persistence
across restarts and SIGKILL, the realism knobs, and the journey."""

from __future__ import annotations

import json
import signal
import sqlite3
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from fhs_bulk import domain
from fhs_bulk.srms.mock import catalogue
from fhs_bulk.srms.schemas import REFERENCE_ID_PATTERN, TICKET_ID_PATTERN
from tests.conftest import run_cli

CAT = catalogue.load(catalogue.bundled_path())
GOOD = [r["fk_order_id"] for r in CAT if r["fsn"].startswith("ODS") and domain.eligible_service(r["service"])]
NON_ODS = [r["fk_order_id"] for r in CAT if not r["fsn"].startswith("ODS")]
INELIGIBLE = [r["fk_order_id"] for r in CAT if r["fsn"].startswith("ODS") and not domain.eligible_service(r["service"])]


def job(c: httpx.Client, ids: list[str], key: str | None = None) -> httpx.Response:
    return c.post("/v1/bulk-jobs", json={"order_ids": ids}, headers={"Idempotency-Key": key or str(uuid.uuid4())})


def results(c: httpx.Client, job_id: str) -> list[dict]:
    r = c.get(f"/v1/bulk-jobs/{job_id}/results")
    assert r.status_code == 200, r.text
    return r.json()["results"]


def ticket_body(order: str = "OD100000000000000001", **kw: str) -> dict:
    body = {"fk_order_id": order, "customer_name": "Asha Rao", "phone": "9876543210", "address": "12 MG Road",
            "city": "Bengaluru", "pincode": "560001", "service": "SP TV",
            "preferred_date": (date.today() + timedelta(days=2)).isoformat(), "remarks": "wall mount"}
    body.update(kw)
    return body


def test_every_business_route_needs_the_token(srms) -> None:  # type: ignore[no-untyped-def]
    spec = httpx.get(srms.url + "/openapi.json").json()
    routes = [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p != "/healthz"]
    assert len(routes) >= 7
    for method, path in routes:
        url = srms.url + path.replace("{job_id}", "job-x").replace("{ticket_id}", "SRM-0000000001")
        none = httpx.request(method, url, json={})
        wrong = httpx.request(method, url, json={}, headers={"Authorization": "Bearer nope"})
        assert none.status_code == 401, (method, path, none.status_code)
        assert wrong.status_code == 403, (method, path, wrong.status_code)
        assert none.json()["error"]["code"] == "unauthorized"
    assert httpx.get(srms.url + "/healthz").status_code == 200
    assert httpx.get(srms.url + "/docs").status_code == 200


def test_bulk_job_outcomes_and_output_file(srms) -> None:  # type: ignore[no-untyped-def]
    c = srms.client()
    ids = GOOD[:3] + [NON_ODS[0], INELIGIBLE[0], "OD999999999999999999"]
    r = job(c, ids)
    assert r.status_code == 201
    j = r.json()
    assert (j["state"], j["total"], j["registered"], j["rejected"]) == ("complete", 6, 3, 3)
    res = results(c, j["job_id"])
    assert [x["fk_order_id"] for x in res] == ids
    assert [x["code"] for x in res[3:]] == ["fsn-not-ods", "service-not-bulk-eligible", "order-not-found"]
    refs = [x["reference_id"] for x in res[:3]]
    assert all(REFERENCE_ID_PATTERN.fullmatch(x) for x in refs) and len(set(refs)) == 3
    assert all(TICKET_ID_PATTERN.fullmatch(x["ticket_id"]) for x in res[:3])
    # Registered at most once, ever: a new job answers already-registered with the same IDs.
    again = results(c, job(c, GOOD[:3]).json()["job_id"])
    assert [(x["status"], x["reference_id"]) for x in again] == [("already-registered", r) for r in refs]
    csv_text = c.get(f"/v1/bulk-jobs/{j['job_id']}/results.csv").text
    assert csv_text.splitlines()[0] == "fk_order_id,reference_id,status,code"
    assert f"{GOOD[0]},{refs[0]},registered," in csv_text
    # Every registered order is a CREATED ticket with an SPD.
    t = c.get(f"/v1/tickets/{refs[0]}").json()
    assert (t["status"], t["sub_status"], t["fk_order_id"]) == ("CREATED", "NOT_APPLICABLE", GOOD[0])
    assert date.fromisoformat(t["spd"]) >= date.today() - timedelta(days=1)


def test_idempotency_key(srms) -> None:  # type: ignore[no-untyped-def]
    c = srms.client()
    key = str(uuid.uuid4())
    first = job(c, GOOD[10:15], key)
    second = job(c, GOOD[10:15], key)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["job_id"] == second.json()["job_id"]
    assert results(c, first.json()["job_id"]) == results(c, second.json()["job_id"])
    clash = job(c, GOOD[10:14], key)
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "idempotency-key-reused"
    missing = c.post("/v1/bulk-jobs", json={"order_ids": GOOD[:1]})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "header.idempotency-key"


def test_limits_and_field_errors(srms) -> None:  # type: ignore[no-untyped-def]
    c = srms.client()
    too_many = job(c, [f"OD{i:018d}" for i in range(1001)])
    assert too_many.status_code == 422
    bad = job(c, ["od1"])
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "body.order_ids.0"
    for field, value in (("phone", "12345"), ("pincode", "012345"), ("service", "Teleportation"),
                         ("preferred_date", "2026-02-30"), ("client", "Someone Else")):
        r = c.post("/v1/tickets", json=ticket_body(**{field: value}), headers={"Idempotency-Key": "k-" + field})
        assert r.status_code == 422, (field, r.text)
        assert field in r.json()["error"]["field"], r.json()


def test_single_tickets(srms) -> None:  # type: ignore[no-untyped-def]
    c = srms.client()
    body = ticket_body()
    r1 = c.post("/v1/tickets", json=body, headers={"Idempotency-Key": "t1"})
    r2 = c.post("/v1/tickets", json=body, headers={"Idempotency-Key": "t1"})
    assert r1.status_code == 201 and r2.status_code == 200 and r1.json() == r2.json()
    t = r1.json()
    assert t["client"] == "Jeeves Consumer Services" and t["source"] == "single" and t["reference_id"] is None
    assert t["spd"] == body["preferred_date"] and t["history"][0]["status"] == "CREATED"
    other = c.post("/v1/tickets", json=ticket_body(remarks="again"), headers={"Idempotency-Key": "t2"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "order-has-ticket"
    q = c.post("/v1/tickets/query", json={"ids": [t["ticket_id"], "SRM-0000099999"]}).json()
    assert [x["ticket_id"] for x in q["tickets"]] == [t["ticket_id"]] and q["unknown"] == ["SRM-0000099999"]
    assert c.get("/v1/tickets/SRM-0000099999").status_code == 404


def test_restart_and_sigkill_lose_nothing(srms) -> None:  # type: ignore[no-untyped-def]
    c = srms.client()
    res = results(c, job(c, GOOD[20:40]).json()["job_id"])
    srms.stop(signal.SIGKILL)  # right after the acknowledged answer
    srms.start()
    c = srms.client()
    again = results(c, job(c, GOOD[20:40]).json()["job_id"])
    assert [x["reference_id"] for x in again] == [x["reference_id"] for x in res]
    assert {x["status"] for x in again} == {"already-registered"}
    srms.restart()
    assert srms.client().get(f"/v1/tickets/{res[0]['ticket_id']}").status_code == 200


def test_rate_limit_fail_rate_and_max_jobs(srms_factory) -> None:  # type: ignore[no-untyped-def]
    limited = srms_factory("--rate-limit", "5", "--seed", "1")
    c = limited.client()
    codes = [c.post("/v1/registrations/lookup", json={"order_ids": GOOD[:1]}).status_code for _ in range(15)]
    assert 429 in codes and 200 in codes
    r429 = next(r for r in (c.post("/v1/registrations/lookup", json={"order_ids": GOOD[:1]}) for _ in range(10))
                if r.status_code == 429)
    assert int(r429.headers["Retry-After"]) >= 1
    flaky = srms_factory("--fail-rate", "0.5", "--seed", "3")
    c = flaky.client()
    codes = [c.post("/v1/registrations/lookup", json={"order_ids": GOOD[:1]}).status_code for _ in range(40)]
    assert {500, 503} <= set(codes) and 200 in codes
    assert all(httpx.get(flaky.url + "/healthz").status_code == 200 for _ in range(5))


def test_max_jobs(srms_factory) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    srv = srms_factory("--max-jobs", "1", "--latency-ms", "400", "--seed", "2")

    def one(i: int) -> httpx.Response:
        with srv.client() as c:
            return job(c, GOOD[70 + i:71 + i])

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(one, range(3)))
    codes = sorted(r.status_code for r in answers)
    assert codes[0] == 201 and 429 in codes
    limited = next(r for r in answers if r.status_code == 429)
    assert limited.json()["error"]["code"] == "too-many-jobs" and limited.headers["Retry-After"] == "1"


def test_drop_commits_then_drops(srms_factory) -> None:  # type: ignore[no-untyped-def]
    srv = srms_factory("--drop-rate", "1.0")
    c = srv.client()
    with pytest.raises(httpx.RemoteProtocolError):
        job(c, GOOD[50:52], "drop-key")
    db = sqlite3.connect(srv.db)
    assert db.execute("SELECT count(*) FROM tickets WHERE fk_order_id IN (?, ?)", GOOD[50:52]).fetchone()[0] == 2


def test_job_delay_reads_in_progress(srms_factory) -> None:  # type: ignore[no-untyped-def]
    srv = srms_factory("--job-delay-ms", "400")
    c = srv.client()
    j = job(c, GOOD[60:61]).json()
    assert j["state"] == "in_progress"
    assert c.get(f"/v1/bulk-jobs/{j['job_id']}/results").status_code == 409
    import time

    time.sleep(0.5)
    assert c.get(f"/v1/bulk-jobs/{j['job_id']}").json()["state"] == "complete"


def test_advance_moves_only_through_journey_pairs(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = srms.client()
    results(c, job(c, GOOD[:150]).json()["job_id"])
    srms.stop()
    env = {"PATH": "/usr/bin:/bin"}
    until = (date.today() + timedelta(days=12)).isoformat()
    out = run_cli("srms", "advance", "--db", str(srms.db), "--until", until, "--seed", "5", "--json", env=env)
    assert out.returncode == 0, out.stderr
    db = sqlite3.connect(srms.db)
    pairs = set(db.execute("SELECT status, sub_status FROM history UNION SELECT status, sub_status FROM tickets"))
    assert pairs <= domain.JOURNEY_PAIRS, pairs - domain.JOURNEY_PAIRS
    statuses = {p[0] for p in pairs}
    assert {"COMPLETED", "ALLOCATED", "RESCHEDULED"} <= statuses
    # What advance reports is what the store now holds: its counts by state match the tickets.
    report = json.loads(out.stdout)
    held = dict(db.execute("SELECT status, count(*) FROM tickets GROUP BY status").fetchall())
    changes = db.execute("SELECT count(*) FROM history WHERE status != 'CREATED'").fetchone()[0]
    db.close()
    assert report["tickets"] == 150 and report["by_state"] == held and report["events"] == changes > 150


def test_advance_is_deterministic(srms_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv = srms_factory()
    c = srv.client()
    results(c, job(c, GOOD[:80]).json()["job_id"])
    srv.stop()
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(srv.db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    until = (date.today() + timedelta(days=8)).isoformat()
    for db in (srv.db, copy):
        assert run_cli("srms", "advance", "--db", str(db), "--until", until, "--seed", "9",
                       env={"PATH": "/usr/bin:/bin"}).returncode == 0
    q = "SELECT ticket_id, status, sub_status, status_changed_at FROM tickets ORDER BY seq"
    assert sqlite3.connect(srv.db).execute(q).fetchall() == sqlite3.connect(copy).execute(q).fetchall()


def test_serve_needs_a_token(tmp_path: Path) -> None:
    out = run_cli("srms", "serve", "--db", str(tmp_path / "x.sqlite"), env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert out.returncode == 2 and "token" in out.stderr and "Traceback" not in out.stderr


def test_openapi_declares_replays_and_405_says_allow(srms) -> None:  # type: ignore[no-untyped-def]
    doc = httpx.get(srms.url + "/openapi.json").json()
    for path in ("/v1/bulk-jobs", "/v1/tickets"):
        responses = doc["paths"][path]["post"]["responses"]
        assert {"200", "201"} <= set(responses), (path, sorted(responses))
        assert "replay" in responses["200"]["description"]
    c = srms.client()
    key = str(uuid.uuid4())
    first = c.post("/v1/bulk-jobs", json={"order_ids": GOOD[:2]}, headers={"Idempotency-Key": key})
    replay = c.post("/v1/bulk-jobs", json={"order_ids": GOOD[:2]}, headers={"Idempotency-Key": key})
    assert (first.status_code, replay.status_code) == (201, 200) and first.json()["job_id"] == replay.json()["job_id"]
    wrong = c.delete("/v1/bulk-jobs")
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]
    assert wrong.json()["error"]["code"] == "method-not-allowed"


def test_ticket_states_read_what_reconcile_needs_of_a_query(srms) -> None:  # type: ignore[no-untyped-def]
    """The client's ``ticket_states`` reads a query's answer as the projection reconcile judges by: the
    same values as the whole tickets for every field it keeps, and nothing else."""
    from fhs_bulk.srms.client import SrmsClient
    from fhs_bulk.srms.schemas import Ticket, TicketState

    c = srms.client()
    ids = [t["reference_id"] for t in results(c, job(c, GOOD[:3]).json()["job_id"])] + ["SRM-0000099999"]
    with SrmsClient(srms.url, srms.token) as client:
        full, states = client.query_tickets(ids), client.ticket_states(ids)
    assert states.unknown == full.unknown == ["SRM-0000099999"] and len(states.tickets) == 3
    kept = set(TicketState.model_fields)
    assert kept < set(Ticket.model_fields) and {"history", "status", "sub_status", "spd"} <= kept
    for whole, state in zip(full.tickets, states.tickets, strict=True):
        assert state.model_dump() == whole.model_dump(include=kept, exclude={"history": {"__all__": {"remark"}}})
