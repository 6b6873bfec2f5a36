"""Choosing the SRMS to talk to: the configured one, or the embedded mock when none is set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fhs_bulk.config import SrmsSettings
from fhs_bulk.srms.client import SrmsClient


@dataclass
class Connection:
    client: SrmsClient
    identity: str  # what the ledger keys orders by: the URL, or 'embedded:<db path>'
    description: str
    embedded: bool


@contextmanager
def connect(settings: SrmsSettings, *, deadline: float = 900.0, timeout: float = 30.0,
            connections: int = 16) -> Iterator[Connection]:
    if settings.url:
        with SrmsClient(settings.url, settings.token or "", deadline=deadline, timeout=timeout,
                        connections=connections) as client:
            yield Connection(client, settings.url, f"SRMS at {settings.url}", embedded=False)
        return
    from fhs_bulk.srms.mock.embedded import EmbeddedSrms

    with EmbeddedSrms() as srms, SrmsClient(srms.url, srms.token, deadline=deadline, timeout=timeout,
                                            connections=connections) as client:
        yield Connection(client, srms.identity,
                         f"embedded mock SRMS on the bundled catalogue (state: {srms.db_path}); "
                         "set FHS_SRMS_URL to use a real SRMS", embedded=True)
