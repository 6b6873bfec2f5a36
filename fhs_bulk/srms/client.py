"""The SRMS client: httpx with connection reuse, tenacity retries that honour Retry-After, and a
total deadline so an unattended run never hangs. The token lives in one header and nowhere else."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception

from fhs_bulk.errors import Interrupted, SrmsError, SrmsUnavailable
from fhs_bulk.srms import API_PREFIX

if TYPE_CHECKING:
    from fhs_bulk.srms import schemas as s

log = logging.getLogger("fhs_bulk.srms")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Retryable(Exception):
    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after


@dataclass
class RetryStats:
    retries: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str) -> None:
        self.retries += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, _Retryable):
        return str(exc.status)
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection dropped"
    if isinstance(exc, httpx.TransportError):
        return "connection error"
    return type(exc).__name__


class SrmsClient:
    """Retries go on until the deadline (``attempts`` caps them only when given), honouring
    Retry-After; ``cancel`` (a threading.Event) stops retries, waits and polls at once."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0, deadline: float = 600.0,
                 attempts: int | None = None, backoff: float = 0.2, max_backoff: float = 10.0,
                 connections: int = 16, cancel: threading.Event | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.deadline_at = time.monotonic() + deadline
        self.attempts = attempts
        self.cancel = cancel or threading.Event()
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = RetryStats()
        self._http = httpx.Client(
            base_url=self.base_url,
            # Certificates matter only over https; the CA bundle takes ~30 ms to load, so a plain http
            # SRMS (a local mock, a gateway on the same host) does not load it.
            verify=self.base_url.lower().startswith("https://"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "fhs-bulk"},
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    def __repr__(self) -> str:  # never the token
        return f"SrmsClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SrmsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing

    def remaining(self) -> float:
        """Seconds left of the whole run's deadline (retries stop before it)."""
        return max(0.0, self.deadline_at - time.monotonic())

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            wait = min(exc.retry_after, self.max_backoff) + random.uniform(0, 0.05)
        else:
            base = min(self.max_backoff, self.backoff * (2 ** (state.attempt_number - 1)))
            wait = random.uniform(base / 2, base)  # jitter
        return min(wait, max(0.0, self.remaining()))

    def _sleep(self, seconds: float) -> None:
        """Sleep between attempts, waking at once when the run is cancelled."""
        if self.cancel.wait(seconds):
            raise Interrupted("interrupted while waiting to retry SRMS", code="interrupted")

    def _stop(self, state: RetryCallState) -> bool:
        if self.cancel.is_set() or self.remaining() <= 0:
            return True
        return self.attempts is not None and state.attempt_number >= self.attempts

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.stats.note(_reason(exc))
        # One line per burst (the first retry of a request) at INFO; each further retry at DEBUG.
        log.log(logging.INFO if state.attempt_number == 1 else logging.DEBUG,
                "SRMS: %s; retrying with back-off (attempt %d)", _reason(exc), state.attempt_number + 1)

    def _request(self, method: str, path: str, model: str | None, *, json: Any = None, content: bytes | None = None,
                 headers: dict[str, str] | None = None, retry: bool = True,
                 on_status: Callable[[httpx.Response], Any] | None = None) -> Any:
        """The answer read into the API's model named ``model`` (None: its body as it came)."""

        def once() -> Any:
            if self.cancel.is_set():
                raise Interrupted("interrupted before SRMS answered", code="interrupted")
            if self.remaining() <= 0:
                raise SrmsUnavailable(f"the deadline of {self.deadline:g}s passed before SRMS answered; "
                                      "try again later")
            resp = self._http.request(method, path, json=json, content=content, headers=headers)
            if resp.status_code in RETRY_STATUSES:
                raise _Retryable(resp.status_code, _retry_after(resp), _error_text(resp))
            if on_status is not None:
                special = on_status(resp)
                if special is not None:
                    return special
            if resp.status_code >= 400:
                code, message, fld = _error_parts(resp)
                raise SrmsError(resp.status_code, code, message, fld)
            return _parsed(model, resp.content) if model is not None else resp.content

        if not retry:
            return once()
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable | httpx.TransportError)),
            stop=self._stop,
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(once)
        except _Retryable as exc:
            if self.cancel.is_set():
                raise Interrupted("interrupted before SRMS answered", code="interrupted") from None
            raise SrmsUnavailable(f"SRMS at {self.base_url} kept answering {exc.status} ({exc}) for "
                                  f"{self.deadline:g}s (the deadline); try again later") from None
        except httpx.TransportError as exc:
            if self.cancel.is_set():
                raise Interrupted("interrupted before SRMS answered", code="interrupted") from None
            raise SrmsUnavailable(f"SRMS at {self.base_url} could not be reached ({_reason(exc)}: "
                                  f"{type(exc).__name__}); try again later") from None

    # ------------------------------------------------------------ API

    def health(self) -> s.Health:
        return self._request("GET", "/healthz", "Health")

    def ping(self, budget: float = 120.0) -> None:
        """Fail fast on a wrong URL or token, before any work; an SRMS that stays down is given up on
        after ``budget`` seconds (or the deadline, if sooner), so cron does not wait out a whole outage.
        Its answer is read without the API's models, which are loaded at the first real answer (see
        ``_parsed``): an upload's first batches go out before that."""
        saved = self.deadline_at, self.deadline
        self.deadline = min(self.deadline, budget)
        self.deadline_at = min(self.deadline_at, time.monotonic() + budget)
        try:
            body = self._request("GET", f"{API_PREFIX}/ping", None)
        finally:
            self.deadline_at, self.deadline = saved
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("status") != "ok":
            raise SrmsError(200, "not-srms", f"{self.base_url}{API_PREFIX}/ping did not answer as SRMS does "
                                             f"({body[:80].decode('utf-8', 'replace')!r}); check the SRMS URL "
                                             "(FHS_SRMS_URL)")

    def create_job(self, order_ids: list[str], key: str, *, ids_json: str | None = None) -> s.BulkJob:
        if ids_json is None:
            return self._request("POST", f"{API_PREFIX}/bulk-jobs", "BulkJob",
                                 json={"order_ids": order_ids}, headers={"Idempotency-Key": key})
        return self._request("POST", f"{API_PREFIX}/bulk-jobs", "BulkJob",
                             content=f'{{"order_ids":{ids_json}}}'.encode(),
                             headers={"Idempotency-Key": key, "Content-Type": "application/json"})

    def get_job(self, job_id: str) -> s.BulkJob:
        return self._request("GET", f"{API_PREFIX}/bulk-jobs/{job_id}", "BulkJob")

    def job_results(self, job_id: str) -> s.BulkJobResults:
        return self._request("GET", f"{API_PREFIX}/bulk-jobs/{job_id}/results", "BulkJobResults")

    def register(self, order_ids: list[str], key: str, *, poll: float = 0.05, max_poll: float = 2.0,
                 ids_json: str | None = None) -> s.BulkJobResults:
        """Create (or find again, by key) a job and wait for its per-order results. ``ids_json``: the
        order IDs already as a JSON array (the ledger's batch body), sent as they are."""
        job = self.create_job(order_ids, key, ids_json=ids_json)
        while job.state != "complete":
            if self.remaining() <= 0:
                raise SrmsUnavailable(f"job {job.job_id} did not complete within {self.deadline:g}s")
            if self.cancel.wait(poll):
                raise Interrupted(f"interrupted while job {job.job_id} was running", code="interrupted")
            poll = min(max_poll, poll * 2)
            job = self.get_job(job.job_id)
        return self.job_results(job.job_id)

    def lookup(self, order_ids: list[str]) -> s.Registrations:
        return self._request("POST", f"{API_PREFIX}/registrations/lookup", "Registrations",
                             json={"order_ids": order_ids})

    def create_ticket(self, request: s.TicketCreate, key: str) -> tuple[s.Ticket, bool]:
        """(ticket, created): SRMS answers 201 for a new ticket, 200 for the one this key made before."""
        status: list[int] = []

        def note(resp: httpx.Response) -> None:
            status.append(resp.status_code)

        ticket = self._request("POST", f"{API_PREFIX}/tickets", "Ticket", json=request.model_dump(mode="json"),
                               headers={"Idempotency-Key": key}, on_status=note)
        return ticket, status[-1] == 201

    def get_ticket(self, ticket_id: str) -> s.Ticket | None:
        def not_found(resp: httpx.Response) -> s.Ticket | None:
            if resp.status_code == 404:
                raise _NotFound()
            return None

        try:
            return self._request("GET", f"{API_PREFIX}/tickets/{ticket_id}", "Ticket", on_status=not_found)
        except _NotFound:
            return None

    def act(self, action: str, ticket_id: str, body: s.RescheduleRequest | s.CancelRequest | s.ReopenRequest,
            key: str) -> tuple[s.Ticket, bool]:
        """Reschedule, cancel or reopen; (the ticket after it, or the new one for a reopen; done now).
        A replay (same key and body) answers 200 with the first answer."""
        replayed: list[bool] = []

        def note(resp: httpx.Response) -> None:
            replayed.append(resp.headers.get("Idempotent-Replayed") == "true")

        ticket = self._request("POST", f"{API_PREFIX}/tickets/{ticket_id}/{action}", "Ticket",
                               json=body.model_dump(mode="json", exclude_none=True),
                               headers={"Idempotency-Key": key}, on_status=note)
        return ticket, not replayed[-1]

    def query_tickets(self, ids: list[str]) -> s.Tickets:
        return self._request("POST", f"{API_PREFIX}/tickets/query", "Tickets", json={"ids": ids})

    def ticket_states(self, ids: list[str]) -> Any:
        """``query_tickets`` read as ``s.TicketStates``: only what reconcile judges a ticket by."""
        return self._request("POST", f"{API_PREFIX}/tickets/query", "TicketStates", json={"ids": ids})


class _NotFound(Exception):
    pass


def _parsed(model: str, content: bytes) -> Any:
    """An answer read into the API's model ``model`` (a name in ``schemas``). The models are imported
    here, at the first answer, not with the client: pydantic and the API's models are ~60 ms of CPU,
    which an upload then spends while SRMS works on its first batches instead of before sending them."""
    from fhs_bulk.srms import schemas

    return getattr(schemas, model).model_validate_json(content)


def new_key() -> str:
    return str(uuid.uuid4())


def _error_parts(resp: httpx.Response) -> tuple[str, str, str | None]:
    try:
        body = resp.json()
        err = body.get("error") or {}
        return str(err.get("code") or resp.status_code), str(err.get("message") or "")[:500], err.get("field")
    except Exception:
        return str(resp.status_code), resp.text[:200], None


def _error_text(resp: httpx.Response) -> str:
    code, message, _ = _error_parts(resp)
    return f"{code}: {message}" if message else code
