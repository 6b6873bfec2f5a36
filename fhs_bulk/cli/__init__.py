"""The command line: each command parses options, opens a session, calls one library function and
renders its result. Heavy libraries are imported inside the commands, so ``fhs-bulk --help`` stays instant.

One module per command group; importing them registers their commands on ``main``.
"""

from fhs_bulk.cli import runs, samples, services, srms, ticket, tracker, upload, validate  # noqa: F401 (registers)
from fhs_bulk.cli._app import main

__all__ = ["main"]
