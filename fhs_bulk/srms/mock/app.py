"""The mock SRMS application: FastAPI over the SQLite store, the API routers behind a bearer token,
one JSON error shape, and the realism knobs (``faults``) wrapped around it when any is on.

``/openapi.json`` works offline. ``/docs`` (Swagger UI) loads its script and style from a CDN, so it
needs a network to render; the README says so.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fhs_bulk import __version__
from fhs_bulk.srms import API_PREFIX
from fhs_bulk.srms import schemas as s
from fhs_bulk.srms.mock import routers
from fhs_bulk.srms.mock.errors import ApiError, error_response
from fhs_bulk.srms.mock.faults import Chaos, ChaosMiddleware, QuietDrops
from fhs_bulk.srms.mock.store import Store

__all__ = ["Chaos", "create_app", "serve"]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorBody, "description": desc} for code, desc in (
        (400, "bad request (e.g. no Idempotency-Key)"), (401, "no bearer token"), (403, "wrong token"),
        (404, "not found"), (409, "conflict"), (422, "invalid request; error.field names the field"),
        (429, "rate limited; honour Retry-After"), (500, "internal error"), (503, "unavailable; retry"))
}


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = exc.errors()
    first = errs[0] if errs else {}
    where = ".".join(str(p) for p in first.get("loc", ())) or None
    msg = str(first.get("msg", "invalid request"))
    if len(errs) > 1:
        msg += f" (and {len(errs) - 1} more)"
    return error_response(422, "invalid-request", f"{where}: {msg}" if where else msg, where)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    # Keep the framework's headers (405 carries Allow).
    return error_response(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}) or None)


def create_app(store: Store, token: str, chaos: Chaos | None = None) -> Any:
    """The ASGI app: FastAPI, wrapped in the fault middleware when a knob is on."""
    chaos = chaos or Chaos()
    app = FastAPI(title="SRMS (mock)", version=__version__,
                  description="Service-request management system of the service partner (Jeeves). "
                              "Mock served by fhs-bulk; same API as the client expects of production.")
    app.state.store = store
    app.state.chaos = chaos
    app.state.token = token.encode()
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)

    @app.get("/healthz", response_model=s.Health, tags=["health"])
    async def healthz() -> s.Health:
        return s.Health(version=__version__)

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(routers.require_token)], responses=ERROR_RESPONSES)
    for router in (routers.health, routers.bulk, routers.tickets):
        api.include_router(router)
    app.include_router(api)
    if chaos.drop_rate:
        logging.getLogger("uvicorn.error").addFilter(QuietDrops())
    return ChaosMiddleware(app, chaos) if chaos.active else app


def serve(store: Store, token: str, host: str, port: int, chaos: Chaos, *, log_level: str = "warning",
          sockets: list | None = None, ready: Any = None) -> None:
    """Run the service until interrupted (the CLI's ``srms serve``)."""
    import uvicorn

    app = create_app(store, token, chaos)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            timeout_keep_alive=30, lifespan="off")
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
