"""The mock SRMS's API: bulk registration jobs and tickets, each a router over the store.

The store and the settings are read from ``request.app.state`` (set by ``create_app``), so the routes
are plain module-level functions that the OpenAPI document describes, replays (200) included.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from fhs_bulk import __version__
from fhs_bulk.srms import schemas as s
from fhs_bulk.srms.mock.errors import ApiError
from fhs_bulk.srms.mock.store import ActionRefused, KeyReused, OrderHasTicket, Store

IdempotencyKey = Annotated[str, Header(min_length=1, max_length=200, pattern=r"\S",
                                       description="any unique string (a UUID); the same key and body "
                                                   "return the same result")]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorBody, "description": desc} for code, desc in (
        (400, "bad request (e.g. no Idempotency-Key)"), (401, "no bearer token"), (403, "wrong token"),
        (404, "not found"), (409, "conflict"), (422, "invalid request; error.field names the field"),
        (429, "rate limited; honour Retry-After"), (500, "internal error"), (503, "unavailable; retry"))
}




async def require_token(request: Request,
                        authorization: str | None = Header(default=None, include_in_schema=False)) -> None:
    """Bearer token, compared in constant time (async: no thread-pool hop per request)."""
    if not authorization or not authorization.startswith("Bearer "):
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    given = authorization[7:].strip().encode()
    if not hmac.compare_digest(given, request.app.state.token):
        raise ApiError(403, "forbidden", "the token is not valid for this SRMS")


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]
REPLAYED = "the answer this Idempotency-Key got the first time (a replay; nothing new is created)"

health = APIRouter(tags=["health"])
bulk = APIRouter(tags=["bulk"])
tickets = APIRouter(tags=["tickets"])


@health.get("/ping", response_model=s.Health, summary="Check the token (authenticated)")
async def ping() -> s.Health:
    return s.Health(version=__version__)


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    job = dict(job)
    ready_at = job.pop("ready_at")
    job["state"] = "complete" if time.time() >= ready_at else "in_progress"
    return job


@bulk.post("/bulk-jobs", response_model=s.BulkJob, status_code=201,
           responses={200: {"model": s.BulkJob, "description": REPLAYED}},
           summary="Create a bulk registration job (up to 1,000 orders)")
async def create_job(body: s.BulkJobCreate, response: Response, request: Request, store: StoreDep,
                     idempotency_key: IdempotencyKey) -> dict[str, Any]:
    key = idempotency_key.strip()
    try:
        job, created = store.create_job(key, body.order_ids, request.app.state.chaos.job_delay_ms / 1000)
    except KeyReused:
        raise ApiError(409, "idempotency-key-reused", "this Idempotency-Key was used with a different body") from None
    if not created:
        response.status_code = 200
    return job_view(job)


@bulk.get("/bulk-jobs/{job_id}", response_model=s.BulkJob)
async def get_job(job_id: str, store: StoreDep) -> dict[str, Any]:
    job = store.get_job(job_id)
    if job is None:
        raise ApiError(404, "job-not-found", f"no job {job_id[:80]}")
    return job_view(job)


def complete_results(store: Store, job_id: str) -> list[dict[str, Any]]:
    job = store.get_job(job_id)
    if job is None:
        raise ApiError(404, "job-not-found", f"no job {job_id[:80]}")
    if job_view(job)["state"] != "complete":
        raise ApiError(409, "job-not-complete", "the job is still in progress; poll it", field=None,
                       headers={"Retry-After": "1"})
    return store.job_results(job_id) or []


@bulk.get("/bulk-jobs/{job_id}/results", response_model=s.BulkJobResults)
async def job_results(job_id: str, store: StoreDep) -> Response:
    # The store's results already have the documented shape: encoded once by the json module rather
    # than validated and serialised again through the response model (the busiest read of an upload).
    body = json.dumps({"job_id": job_id, "results": complete_results(store, job_id)}, separators=(",", ":"))
    return Response(body, media_type="application/json")


@bulk.get("/bulk-jobs/{job_id}/results.csv", response_class=Response,
          responses={200: {"content": {"text/csv": {}}, "description": "the output file"}})
async def job_results_csv(job_id: str, store: StoreDep) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["fk_order_id", "reference_id", "status", "code"])
    for r in complete_results(store, job_id):
        w.writerow([r["fk_order_id"], r["reference_id"] or "", r["status"], r["code"] or ""])
    return Response(buf.getvalue(), media_type="text/csv")


@bulk.post("/registrations/lookup", response_model=s.Registrations,
           summary="Which of these orders are registered (read-only)")
async def lookup(body: s.OrderLookup, store: StoreDep) -> dict[str, Any]:
    return {"registrations": store.lookup(body.order_ids)}


@tickets.post("/tickets", response_model=s.Ticket, status_code=201,
              responses={200: {"model": s.Ticket, "description": REPLAYED}},
              summary="Create one ticket (client Jeeves Consumer Services)")
async def create_ticket(body: s.TicketCreate, response: Response, store: StoreDep,
                        idempotency_key: IdempotencyKey) -> dict[str, Any]:
    key = idempotency_key.strip()
    try:
        ticket, created = store.create_ticket(key, body.model_dump(mode="json"))
    except KeyReused:
        raise ApiError(409, "idempotency-key-reused", "this Idempotency-Key was used with a different body") from None
    except OrderHasTicket as exc:
        raise ApiError(409, "order-has-ticket", f"order {body.fk_order_id} already has ticket {exc.ticket_id}",
                       field="fk_order_id") from None
    if not created:
        response.status_code = 200
    return ticket


@tickets.get("/tickets/{ticket_id}", response_model=s.Ticket,
             summary="One ticket by Service Ticket ID or BK- reference ID")
async def get_ticket(ticket_id: str, store: StoreDep) -> dict[str, Any]:
    found, _ = store.get_tickets([ticket_id])
    if not found:
        raise ApiError(404, "ticket-not-found", f"no ticket {ticket_id[:80]}")
    return found[0]


@tickets.post("/tickets/query", response_model=s.Tickets,
              summary="Up to 1,000 tickets by Service Ticket ID or BK- reference ID")
async def query_tickets(body: s.TicketQuery, store: StoreDep) -> dict[str, Any]:
    found, unknown = store.get_tickets(body.ids)
    return {"tickets": found, "unknown": unknown}


ACTION_ERRORS: dict[int | str, dict[str, Any]] = {409: {"model": s.ErrorBody, "description":
                                                        "refused by a process rule: ticket-not-open, "
                       "ticket-not-cancel-initiated, ticket-not-completed, ticket-reopened, warranty-expired, "
                       "date-past, date-too-far, idempotency-key-reused"}}


def _act(store: Store, action: str, key: str, ticket_id: str, body: dict[str, Any], response: Response,
         created_status: int) -> dict[str, Any]:
    try:
        ticket, done = store.act(action, key.strip(), ticket_id, body)
    except KeyReused:
        raise ApiError(409, "idempotency-key-reused", "this Idempotency-Key was used with a different body") from None
    except LookupError:
        raise ApiError(404, "ticket-not-found", f"no ticket {ticket_id[:80]}") from None
    except ActionRefused as exc:
        raise ApiError(409, exc.code, exc.message) from None
    response.status_code = created_status if done else 200
    if not done:
        response.headers["Idempotent-Replayed"] = "true"
    return ticket


@tickets.post("/tickets/{ticket_id}/reschedule", response_model=s.Ticket,
              responses={**ACTION_ERRORS, 200: {"model": s.Ticket, "description": "rescheduled (or a replay)"}},
              summary="Reschedule an open ticket to the customer's preferred date")
async def reschedule(ticket_id: str, body: s.RescheduleRequest, response: Response, store: StoreDep,
                     idempotency_key: IdempotencyKey) -> dict[str, Any]:
    return _act(store, "reschedule", idempotency_key, ticket_id, body.model_dump(mode="json"), response, 200)


@tickets.post("/tickets/{ticket_id}/cancel", response_model=s.Ticket,
              responses={**ACTION_ERRORS, 200: {"model": s.Ticket, "description": "cancelled (or a replay)"}},
              summary="Cancel SVC: only a ticket in CANCEL_INITIATED")
async def cancel(ticket_id: str, body: s.CancelRequest, response: Response, store: StoreDep,
                 idempotency_key: IdempotencyKey) -> dict[str, Any]:
    return _act(store, "cancel", idempotency_key, ticket_id, body.model_dump(mode="json"), response, 200)


@tickets.post("/tickets/{ticket_id}/reopen", response_model=s.Ticket, status_code=201,
              responses={**ACTION_ERRORS, 200: {"model": s.Ticket, "description": REPLAYED}},
              summary="Reopen a COMPLETED ticket within the warranty: a new ticket linked both ways")
async def reopen(ticket_id: str, body: s.ReopenRequest, response: Response, store: StoreDep,
                 idempotency_key: IdempotencyKey) -> dict[str, Any]:
    return _act(store, "reopen", idempotency_key, ticket_id, body.model_dump(mode="json", exclude_none=True),
                response, 201)
