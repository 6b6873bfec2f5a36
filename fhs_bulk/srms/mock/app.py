"""The mock SRMS: FastAPI over the SQLite store, with auth and realism knobs (latency, rate limit,
faults, dropped connections), all off by default and deterministic for a seed."""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fhs_bulk import __version__
from fhs_bulk.srms import schemas as s
from fhs_bulk.srms.mock.store import KeyReused, OrderHasTicket, Store

log = logging.getLogger("fhs_bulk.srms.mock.app")


@dataclass
class Chaos:
    """Realism knobs. Zero means off."""

    latency_ms: float = 0.0
    rate_limit: float = 0.0  # requests per second, token bucket
    fail_rate: float = 0.0  # 500/503 before doing anything
    drop_rate: float = 0.0  # do the work, then drop the connection mid-answer
    max_jobs: int = 0  # bulk job creations in flight at once
    job_delay_ms: float = 0.0  # a job reads 'in_progress' this long after creation
    seed: int | None = None

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in (
            ("latency-ms", self.latency_ms), ("rate-limit", self.rate_limit), ("fail-rate", self.fail_rate),
            ("drop-rate", self.drop_rate), ("max-jobs", self.max_jobs), ("job-delay-ms", self.job_delay_ms))
            if value]
        return ", ".join(parts) if parts else "none"

    @property
    def active(self) -> bool:
        return self.describe() != "none"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers


def _error(status: int, code: str, message: str, field: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


class DroppedConnection(Exception):
    """Raised after the response head is sent, so uvicorn closes the socket: the client never sees the answer."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


class ChaosMiddleware:
    """Pure ASGI, so the healthy path costs next to nothing."""

    def __init__(self, app: Any, chaos: Chaos) -> None:
        self.app = app
        self.chaos = chaos
        self.rng = random.Random(chaos.seed)
        self.tokens = chaos.rate_limit
        self.last = time.monotonic()
        self.jobs_in_flight = 0

    def _take_token(self) -> float:
        """0 if a request may pass, else seconds until one may."""
        rate = self.chaos.rate_limit
        now = time.monotonic()
        self.tokens = min(rate, self.tokens + (now - self.last) * rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(s.API_PREFIX):
            await self.app(scope, receive, send)
            return
        c = self.chaos
        if c.rate_limit:
            wait = self._take_token()
            if wait:
                resp = _error(429, "rate-limited", f"more than {c.rate_limit:g} requests per second",
                              headers={"Retry-After": str(max(1, math.ceil(wait)))})
                await resp(scope, receive, send)
                return
        if c.fail_rate and self.rng.random() < c.fail_rate:
            status = self.rng.choice((500, 503))
            resp = _error(status, "unavailable" if status == 503 else "internal",
                          "injected fault (--fail-rate)", headers={"Retry-After": "0"} if status == 503 else None)
            await resp(scope, receive, send)
            return
        is_job = scope["method"] == "POST" and path == f"{s.API_PREFIX}/bulk-jobs"
        if is_job and c.max_jobs and self.jobs_in_flight >= c.max_jobs:
            resp = _error(429, "too-many-jobs", f"at most {c.max_jobs} jobs may be open at once",
                          headers={"Retry-After": "1"})
            await resp(scope, receive, send)
            return
        if is_job:
            self.jobs_in_flight += 1
        try:
            if c.latency_ms:
                jitter = self.rng.uniform(0.5, 1.5)
                await asyncio.sleep(c.latency_ms * jitter / 1000)
            drop = bool(c.drop_rate) and self.rng.random() < c.drop_rate
            if not drop:
                await self.app(scope, receive, send)
                return

            async def send_head_only(message: dict) -> None:
                if message["type"] == "http.response.start":
                    await send(message)
                elif message["type"] == "http.response.body" and not message.get("more_body"):
                    raise DroppedConnection()

            await self.app(scope, receive, send_head_only)
        finally:
            if is_job:
                self.jobs_in_flight -= 1


IdempotencyKey = Annotated[str, Header(min_length=1, max_length=200, pattern=r"\S",
                                       description="any unique string (a UUID); the same key and body "
                                                   "return the same result")]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorBody, "description": desc} for code, desc in (
        (400, "bad request (e.g. no Idempotency-Key)"), (401, "no bearer token"), (403, "wrong token"),
        (404, "not found"), (409, "conflict"), (422, "invalid request; error.field names the field"),
        (429, "rate limited; honour Retry-After"), (500, "internal error"), (503, "unavailable; retry"))
}


def create_app(store: Store, token: str, chaos: Chaos | None = None) -> FastAPI:
    chaos = chaos or Chaos()
    app = FastAPI(title="SRMS (mock)", version=__version__,
                  description="Service-request management system of the service partner (Jeeves). "
                              "Mock served by fhs-bulk; same API as the client expects of production.")
    expected = token.encode()

    def require_token(authorization: str | None = Header(default=None, include_in_schema=False)) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>",
                           headers={"WWW-Authenticate": "Bearer"})
        given = authorization[7:].strip().encode()
        if not hmac.compare_digest(given, expected):
            raise ApiError(403, "forbidden", "the token is not valid for this SRMS")

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or None
        msg = str(first.get("msg", "invalid request"))
        if len(errs) > 1:
            msg += f" (and {len(errs) - 1} more)"
        return _error(422, "invalid-request", f"{where}: {msg}" if where else msg, where)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.get("/healthz", response_model=s.Health, tags=["health"])
    async def healthz() -> s.Health:
        return s.Health(version=__version__)

    api = APIRouter(prefix=s.API_PREFIX, dependencies=[Depends(require_token)], responses=ERROR_RESPONSES)

    def job_view(job: dict) -> dict:
        job = dict(job)
        ready_at = job.pop("ready_at")
        job["state"] = "complete" if time.time() >= ready_at else "in_progress"
        return job

    @api.get("/ping", response_model=s.Health, tags=["health"], summary="Check the token (authenticated)")
    async def ping() -> s.Health:
        return s.Health(version=__version__)

    @api.post("/bulk-jobs", response_model=s.BulkJob, status_code=201, tags=["bulk"],
              summary="Create a bulk registration job (up to 1,000 orders)")
    async def create_job(body: s.BulkJobCreate, response: Response,
                         idempotency_key: IdempotencyKey) -> dict:
        key = idempotency_key.strip()
        try:
            job, created = store.create_job(key, body.order_ids, chaos.job_delay_ms / 1000)
        except KeyReused:
            raise ApiError(409, "idempotency-key-reused",
                           "this Idempotency-Key was used with a different body") from None
        if not created:
            response.status_code = 200
        return job_view(job)

    @api.get("/bulk-jobs/{job_id}", response_model=s.BulkJob, tags=["bulk"])
    async def get_job(job_id: str) -> dict:
        job = store.get_job(job_id)
        if job is None:
            raise ApiError(404, "job-not-found", f"no job {job_id[:80]}")
        return job_view(job)

    def complete_results(job_id: str) -> list[dict]:
        job = store.get_job(job_id)
        if job is None:
            raise ApiError(404, "job-not-found", f"no job {job_id[:80]}")
        if job_view(job)["state"] != "complete":
            raise ApiError(409, "job-not-complete", "the job is still in progress; poll it", field=None,
                           headers={"Retry-After": "1"})
        return store.job_results(job_id) or []

    @api.get("/bulk-jobs/{job_id}/results", response_model=s.BulkJobResults, tags=["bulk"])
    async def job_results(job_id: str) -> dict:
        return {"job_id": job_id, "results": complete_results(job_id)}

    @api.get("/bulk-jobs/{job_id}/results.csv", tags=["bulk"], response_class=Response,
             responses={200: {"content": {"text/csv": {}}, "description": "the output file"}})
    async def job_results_csv(job_id: str) -> Response:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["fk_order_id", "reference_id", "status", "code"])
        for r in complete_results(job_id):
            w.writerow([r["fk_order_id"], r["reference_id"] or "", r["status"], r["code"] or ""])
        return Response(buf.getvalue(), media_type="text/csv")

    @api.post("/registrations/lookup", response_model=s.Registrations, tags=["bulk"],
              summary="Which of these orders are registered (read-only)")
    async def lookup(body: s.OrderLookup) -> dict:
        return {"registrations": store.lookup(body.order_ids)}

    @api.post("/tickets", response_model=s.Ticket, status_code=201, tags=["tickets"],
              summary="Create one ticket (client Jeeves Consumer Services)")
    async def create_ticket(body: s.TicketCreate, response: Response,
                            idempotency_key: IdempotencyKey) -> dict:
        key = idempotency_key.strip()
        try:
            ticket, created = store.create_ticket(key, body.model_dump(mode="json"))
        except KeyReused:
            raise ApiError(409, "idempotency-key-reused",
                           "this Idempotency-Key was used with a different body") from None
        except OrderHasTicket as exc:
            raise ApiError(409, "order-has-ticket", f"order {body.fk_order_id} already has ticket {exc.ticket_id}",
                           field="fk_order_id") from None
        if not created:
            response.status_code = 200
        return ticket

    @api.get("/tickets/{ticket_id}", response_model=s.Ticket, tags=["tickets"],
             summary="One ticket by Service Ticket ID or BK- reference ID")
    async def get_ticket(ticket_id: str) -> dict:
        found, _ = store.get_tickets([ticket_id])
        if not found:
            raise ApiError(404, "ticket-not-found", f"no ticket {ticket_id[:80]}")
        return found[0]

    @api.post("/tickets/query", response_model=s.Tickets, tags=["tickets"],
              summary="Up to 1,000 tickets by Service Ticket ID or BK- reference ID")
    async def query_tickets(body: s.TicketQuery) -> dict:
        found, unknown = store.get_tickets(body.ids)
        return {"tickets": found, "unknown": unknown}

    app.include_router(api)
    app.state.store = store
    app.state.chaos = chaos
    wrapped = ChaosMiddleware(app, chaos) if chaos.active else app
    if chaos.drop_rate:
        logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    return wrapped  # type: ignore[return-value]


def serve(store: Store, token: str, host: str, port: int, chaos: Chaos, *, log_level: str = "warning",
          sockets: list | None = None, ready: Any = None) -> None:
    """Run the service until interrupted (the CLI's ``srms serve``)."""
    import uvicorn

    app = create_app(store, token, chaos)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            timeout_keep_alive=30, lifespan="off")
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
