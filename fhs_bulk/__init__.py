"""fhs-bulk: register Flipkart Home Services ODS orders as SRMS service tickets, and keep the tracker true.

The library is the product; the ``fhs-bulk`` command is a view of it. A notebook does what the CLI does::

    import fhs_bulk

    report = fhs_bulk.validate_sheet("FK_ODS_ORDER_CREATE.xlsx")
    with fhs_bulk.Session(state_dir="state") as session:        # embedded mock SRMS when no url= is given
        result = fhs_bulk.upload(session, "FK_ODS_ORDER_CREATE.xlsx", out="results.csv")
    result.to_pandas()

Names are imported on first use, so ``import fhs_bulk`` (and ``fhs-bulk --help``) stay instant.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from fhs_bulk.errors import (
    CODES,
    ConfigError,
    DataError,
    DiskFull,
    Exit,
    FhsError,
    GoogleError,
    Interrupted,
    LockHeld,
    OutputError,
    SheetError,
    SrmsError,
    SrmsUnavailable,
    UsageError,
)

__version__ = "0.2.0"

_LAZY = {
    "Session": "fhs_bulk.session",
    "SheetRef": "fhs_bulk.sheets.ref",
    "validate_sheet": "fhs_bulk.validate.check",
    "ValidationReport": "fhs_bulk.validate.check",
    "Finding": "fhs_bulk.validate.check",
    "UploadOptions": "fhs_bulk.upload.run",
    "UploadResult": "fhs_bulk.upload.run",
    "RowResult": "fhs_bulk.upload.run",
    "create_tickets": "fhs_bulk.tickets.batch",
    "TicketRun": "fhs_bulk.tickets.batch",
    "show_ticket": "fhs_bulk.tickets.single",
    "update_tracker": "fhs_bulk.tracker.sheet",
    "registrations_from_results": "fhs_bulk.tracker.sheet",
    "registrations_from_ledger": "fhs_bulk.tracker.sheet",
    "UpdateResult": "fhs_bulk.tracker.sheet",
    "reconcile": "fhs_bulk.tracker.reconcile",
    "ReconcileResult": "fhs_bulk.tracker.reconcile",
}

__all__ = [
    "CODES", "ConfigError", "DataError", "DiskFull", "Exit", "FhsError", "Finding", "GoogleError", "Interrupted",
    "LockHeld", "OutputError", "ReconcileResult", "RowResult", "Session", "SheetError", "SheetRef", "SrmsError",
    "SrmsUnavailable", "TicketRun", "UpdateResult", "UploadOptions", "UploadResult", "UsageError", "ValidationReport",
    "__version__", "create_tickets", "reconcile", "registrations_from_ledger", "registrations_from_results",
    "show_ticket", "update_tracker", "upload", "validate_sheet",
]

if TYPE_CHECKING:
    from fhs_bulk.session import Session
    from fhs_bulk.sheets.ref import SheetRef
    from fhs_bulk.tickets.batch import TicketRun, create_tickets
    from fhs_bulk.tickets.single import show_ticket
    from fhs_bulk.tracker.reconcile import ReconcileResult, reconcile
    from fhs_bulk.tracker.sheet import (
        UpdateResult,
        registrations_from_ledger,
        registrations_from_results,
        update_tracker,
    )
    from fhs_bulk.upload.run import RowResult, UploadOptions, UploadResult, upload
    from fhs_bulk.validate.check import Finding, ValidationReport, validate_sheet


# fhs_bulk.upload is the subpackage, made callable: it is the upload function too (see its __init__).
import_module("fhs_bulk.upload")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fhs_bulk' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
