"""The mock SRMS in-process, on an ephemeral loopback port, for runs with no SRMS configured.

The client still talks HTTP to it, so an embedded run exercises exactly the code that talks to
production.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from fhs_bulk.errors import SrmsUnavailable


def default_db_path() -> Path:
    from fhs_bulk.session import default_embedded_db

    return default_embedded_db()


class EmbeddedSrms:
    def __init__(self, db_path: str | Path | None = None, catalogue: str | Path | None = None) -> None:
        self.db_path = Path(db_path) if db_path else default_db_path()
        self.catalogue = catalogue
        self.token = secrets.token_urlsafe(24)
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def identity(self) -> str:
        return f"embedded:{self.db_path}"

    def __enter__(self) -> EmbeddedSrms:
        import uvicorn

        from fhs_bulk.srms.mock import catalogue as cat
        from fhs_bulk.srms.mock.app import create_app
        from fhs_bulk.srms.mock.store import Store

        store = Store(self.db_path)
        store.load_catalogue(cat.load(self.catalogue or cat.bundled_path()))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(store, self.token), log_level="error", access_log=False,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="embedded-srms", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SrmsUnavailable("the embedded SRMS did not start", code="embedded-srms")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        self._store = store
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._store.close()
