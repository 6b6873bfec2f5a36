"""The realism knobs (latency, rate limit, injected faults, dropped connections, open-job limit) as
pure ASGI middleware, so the healthy path costs next to nothing; all off by default and deterministic
for a seed."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any

from fhs_bulk.srms import API_PREFIX
from fhs_bulk.srms.mock.errors import error_response


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


class DroppedConnection(Exception):
    """Raised after the response head is sent, so uvicorn closes the socket: the client never sees the answer."""


class QuietDrops(logging.Filter):
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
        if scope["type"] != "http" or not path.startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        c = self.chaos
        if c.rate_limit:
            wait = self._take_token()
            if wait:
                resp = error_response(429, "rate-limited", f"more than {c.rate_limit:g} requests per second",
                              headers={"Retry-After": str(max(1, math.ceil(wait)))})
                await resp(scope, receive, send)
                return
        if c.fail_rate and self.rng.random() < c.fail_rate:
            status = self.rng.choice((500, 503))
            resp = error_response(status, "unavailable" if status == 503 else "internal",
                          "injected fault (--fail-rate)", headers={"Retry-After": "0"} if status == 503 else None)
            await resp(scope, receive, send)
            return
        is_job = scope["method"] == "POST" and path == f"{API_PREFIX}/bulk-jobs"
        if is_job and c.max_jobs and self.jobs_in_flight >= c.max_jobs:
            resp = error_response(429, "too-many-jobs", f"at most {c.max_jobs} jobs may be open at once",
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


