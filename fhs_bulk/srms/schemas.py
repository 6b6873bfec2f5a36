"""The SRMS API, as pydantic models: the server validates with them and the client parses with them,
so the two cannot drift."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from fhs_bulk import domain


def body_hash(payload: Any) -> str:
    """The digest both sides use to tell "the same request again" from "another request"."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()

MAX_BATCH = domain.MAX_BATCH
ORDER_ID_RE = domain.ORDER_ID_PATTERN
REFERENCE_ID_RE = r"^BK-[0-9A-Za-z]{4}[0-9a-f]{32}$"
TICKET_ID_RE = r"^SRM-[0-9]{10}$"
REFERENCE_ID_PATTERN = re.compile(REFERENCE_ID_RE)
TICKET_ID_PATTERN = re.compile(TICKET_ID_RE)

OrderId = Annotated[str, Field(pattern=ORDER_ID_RE, examples=["OD118034507542581000"])]
RejectCode = Literal["fsn-not-ods", "service-not-bulk-eligible", "order-not-found"]
Service = Literal[domain.KNOWN_SERVICES]  # type: ignore[valid-type]
JobState = Literal["in_progress", "complete"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Model):
    code: str
    message: str
    field: str | None = None


class ErrorBody(_Model):
    error: ErrorDetail


class Health(_Model):
    status: Literal["ok"] = "ok"
    version: str


class BulkJobCreate(_Model):
    order_ids: list[OrderId] = Field(min_length=1, max_length=MAX_BATCH)


class BulkJob(_Model):
    job_id: str
    state: JobState
    created_at: str
    total: int
    registered: int
    already_registered: int
    rejected: int


class OrderOutcome(_Model):
    fk_order_id: str
    status: Literal["registered", "already-registered", "rejected"]
    code: RejectCode | None = None
    reference_id: str | None = None
    ticket_id: str | None = None
    service: str | None = Field(default=None, description="the order's service, for service-not-bulk-eligible")


class BulkJobResults(_Model):
    job_id: str
    results: list[OrderOutcome]


class OrderLookup(_Model):
    order_ids: list[OrderId] = Field(min_length=1, max_length=MAX_BATCH)


class Registration(_Model):
    fk_order_id: str
    reference_id: str | None
    ticket_id: str


class Registrations(_Model):
    registrations: list[Registration]


class TicketCreate(_Model):
    client: Literal["Jeeves Consumer Services"] = "Jeeves Consumer Services"
    fk_order_id: OrderId
    customer_name: Annotated[str, Field(min_length=1, max_length=200)]
    phone: Annotated[str, Field(pattern=r"^[6-9][0-9]{9}$", description="10-digit Indian mobile number")]
    address: Annotated[str, Field(min_length=1, max_length=500)]
    city: Annotated[str, Field(min_length=1, max_length=100)]
    pincode: Annotated[str, Field(pattern=r"^[1-9][0-9]{5}$")]
    service: Service
    preferred_date: date
    remarks: Annotated[str, Field(max_length=2000)] = ""


Day = date  # a field named `date` must not shadow the type
Phone = Annotated[str, Field(pattern=r"^[6-9][0-9]{9}$", description="10-digit Indian mobile number")]


class RescheduleRequest(_Model):
    """Reschedule >> Select date (preferred date) >> Remarks >> Submit."""

    date: Day
    remarks: Annotated[str, Field(max_length=2000)] = ""


class CancelRequest(_Model):
    """Cancel SVC >> Cancel Reason >> Remark >> Submit (only from CANCEL_INITIATED)."""

    reason: Literal["CUSTOMER_NOT_READY", "CUSTOMER_NOT_RESPONDING"] = "CUSTOMER_NOT_READY"
    remarks: Annotated[str, Field(max_length=2000)] = "Cancel"


class ReopenRequest(_Model):
    """Reopen a COMPLETED ticket within the warranty: a new ticket, optionally with new contact details."""

    remarks: Annotated[str, Field(max_length=2000)] = ""
    phone: Phone | None = None
    alternate_phone: Phone | None = None
    address: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    city: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    pincode: Annotated[str, Field(pattern=r"^[1-9][0-9]{5}$")] | None = None


class HistoryEntry(_Model):
    at: str
    status: str
    sub_status: str
    remark: str = ""


class Ticket(_Model):
    ticket_id: str
    reference_id: str | None
    fk_order_id: str
    client: str
    source: Literal["bulk", "single"]
    service: str
    customer_name: str
    phone: str
    address: str
    city: str
    pincode: str
    preferred_date: str | None
    spd: str
    status: str
    sub_status: str
    remarks: str
    created_at: str
    updated_at: str
    status_changed_at: str
    history: list[HistoryEntry]
    alternate_phone: str | None = None
    reopened_from: str | None = Field(default=None, description="the ticket this one reopens")
    reopened_as: str | None = Field(default=None, description="the ticket that reopened this one")


class TicketQuery(_Model):
    ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=MAX_BATCH)


class Tickets(_Model):
    tickets: list[Ticket]
    unknown: list[str]


def _projection(model: type[BaseModel], name: str, fields: tuple[str, ...], **overrides: Any) -> type[BaseModel]:
    """A model of some of ``model``'s fields (their types and defaults taken from it), ignoring the
    rest of what is sent: for a reader that needs only those."""
    spec: dict[str, Any] = {f: (model.model_fields[f].annotation, model.model_fields[f]) for f in fields}
    spec.update(overrides)
    return create_model(name, __config__=ConfigDict(extra="ignore"), **spec)


# What reconcile judges a ticket by: its journey, its dates and its IDs. Reading only these from a
# query's answer takes half the time of reading whole tickets (100,000 tickets: ~0.3 s less).
HistoryState = _projection(HistoryEntry, "HistoryState", ("at", "status", "sub_status"))
TicketState = _projection(Ticket, "TicketState", (
    "ticket_id", "reference_id", "fk_order_id", "service", "spd", "status", "sub_status", "created_at",
    "status_changed_at"), history=(list[HistoryState], ...))  # type: ignore[valid-type]
TicketStates = _projection(Tickets, "TicketStates", ("unknown",),
                           tickets=(list[TicketState], ...))  # type: ignore[valid-type]
