"""Moving tickets along the journey (``fhs-bulk srms advance``): realistic odds, only pairs from the
journey table, deterministic for a seed and independent of the order tickets are visited in."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from fhs_bulk import domain
from fhs_bulk.srms.mock.store import IST, Store, iso

State = tuple[str, str]
STAY = ("STAY", "")  # no change until `until`: the ticket gets stuck

# For installation and maintenance tickets: next state -> weight.
INSTALL_STEPS: dict[State, dict[State, float]] = {
    ("CREATED", "NOT_APPLICABLE"): {("ALLOCATED", "NOT_APPLICABLE"): 75, ("SERVICE_PENDING", "VENDOR_OFFLOAD"): 8,
                                    ("CANCEL_INITIATED", "NOT_SERVICEABLE"): 3, STAY: 14},
    ("SERVICE_PENDING", "VENDOR_OFFLOAD"): {("ALLOCATED", "NOT_APPLICABLE"): 80, STAY: 20},
    ("ALLOCATED", "NOT_APPLICABLE"): {
        ("COMPLETED", "NOT_APPLICABLE"): 62, ("RESCHEDULED", "CUSTOMER_RESCHEDULE"): 8,
        ("RESCHEDULED", "TECHNICIAN_RESCHEDULE"): 6, ("RESCHEDULED", "CUSTOMER_NOT_RESPONDING"): 6,
        ("RESCHEDULED", "SITE_NOT_READY"): 4, ("RESCHEDULED", "SERVICEABILITY_CONSTRAINT"): 2,
        ("CANCEL_INITIATED", "CUSTOMER_NOT_READY"): 3, STAY: 9},
    **{("RESCHEDULED", sub): {("ALLOCATED", "NOT_APPLICABLE"): 65,
                              ("CANCEL_INITIATED", "CUSTOMER_NOT_RESPONDING"): 10, STAY: 25}
       for sub in domain.JOURNEY["RESCHEDULED"]},
    **{("CANCEL_INITIATED", sub): {("CANCELED", "CUSTOMER_NOT_RESPONDING" if sub == "CUSTOMER_NOT_RESPONDING"
                                    else "CUSTOMER_NOT_READY"): 90, STAY: 10}
       for sub in domain.JOURNEY["CANCEL_INITIATED"]},
}

# Mobile and laptop repair: pickup, workshop, drop.
_REPAIR_CHAIN: list[State] = [
    ("PICKUP", "ALLOCATED"), ("WORKSHOP", "INWARD"), ("WORKSHOP", "DIAGNOSIS"), ("WORKSHOP", "ESTIMATION_REQUESTED"),
    ("WORKSHOP", "ESTIMATION_RESPONSE_PENDING"), ("WORKSHOP", "ESTIMATION_APPROVED"),
    ("WORKSHOP", "REPAIR_IN_PROGRESS"), ("WORKSHOP", "REPAIR_COMPLETED"), ("WORKSHOP", "QC_PENDING"),
    ("WORKSHOP", "QC_SUCCESS"), ("DROP", "ALLOCATED"), ("DROP", "TECHNICIAN_REACHED_SITE"), ("DROP", "COMPLETED"),
    ("COMPLETED", "NOT_APPLICABLE"),
]
REPAIR_STEPS: dict[State, dict[State, float]] = {
    ("CREATED", "NOT_APPLICABLE"): {_REPAIR_CHAIN[0]: 90, STAY: 10},
    **{a: {b: 92, STAY: 8} for a, b in zip(_REPAIR_CHAIN, _REPAIR_CHAIN[1:], strict=False)},
}
REPAIR_STEPS[("WORKSHOP", "ESTIMATION_RESPONSE_PENDING")] = {
    ("WORKSHOP", "ESTIMATION_APPROVED"): 80, ("WORKSHOP", "ESTIMATION_REJECTED"): 12, STAY: 8}
REPAIR_STEPS[("WORKSHOP", "ESTIMATION_REJECTED")] = {("DROP", "ALLOCATED"): 90, STAY: 10}
REPAIR_STEPS[("DROP", "TECHNICIAN_REACHED_SITE")] = {("DROP", "COMPLETED"): 85, ("DROP", "ISSUE_NOT_RESOLVED"): 10,
                                                     STAY: 5}
REPAIR_STEPS[("DROP", "ISSUE_NOT_RESOLVED")] = {("WORKSHOP", "INWARD"): 70, STAY: 30}

REMARKS = {
    "ALLOCATED": "technician assigned", "COMPLETED": "customer shared the COP code",
    "CUSTOMER_RESCHEDULE": "customer asked for another date", "TECHNICIAN_RESCHEDULE": "technician on leave",
    "CUSTOMER_NOT_RESPONDING": "customer did not answer calls", "SITE_NOT_READY": "wall not ready for mounting",
    "SERVICEABILITY_CONSTRAINT": "no technician in the area", "VENDOR_OFFLOAD": "moved to a branch with capacity",
}


@dataclass
class AdvanceResult:
    tickets: int
    events: int
    by_state: dict[str, int]


def _rng(seed: int, ticket_id: str) -> random.Random:
    return random.Random(f"{seed}:{ticket_id}")


def plan(ticket: dict, until: datetime, seed: int) -> tuple[list[tuple[str, str, str, str, str]], str | None]:
    """Events for one ticket from its last change up to ``until``; and a new SPD when rescheduled."""
    rng = _rng(seed, ticket["ticket_id"] + ticket["status_changed_at"])
    # Mobile and laptop repair go pickup -> workshop -> drop; large repair moves like an installation.
    steps = REPAIR_STEPS if domain.service_line(ticket["service"]) == domain.MOBILE_REPAIR else INSTALL_STEPS
    state: State = (ticket["status"], ticket["sub_status"])
    at = datetime.fromisoformat(ticket["status_changed_at"].replace("Z", "+00:00"))
    events: list[tuple[str, str, str, str, str]] = []
    new_spd = None
    while state in steps:
        options = steps[state]
        nxt = rng.choices(list(options), weights=list(options.values()))[0]
        if nxt == STAY:
            break
        at = at + timedelta(hours=rng.uniform(6, 60))
        if at > until:
            break
        assert domain.is_journey_state(*nxt), nxt
        state = nxt
        events.append((ticket["ticket_id"], iso(at), nxt[0], nxt[1], REMARKS.get(nxt[1], REMARKS.get(nxt[0], ""))))
        if nxt == ("RESCHEDULED", "CUSTOMER_RESCHEDULE"):
            new_spd = (at.astimezone(IST).date() + timedelta(days=rng.randint(1, 4))).isoformat()
    return events, new_spd


def advance(store: Store, until: date, seed: int = 0) -> AdvanceResult:
    end = datetime.combine(until, time(23, 59), IST).astimezone(UTC)
    events: list[tuple[str, str, str, str, str]] = []
    spd_changes: dict[str, str] = {}
    tickets = store.open_tickets()
    for t in tickets:
        evs, spd = plan(t, end, seed)
        events.extend(evs)
        if spd:
            spd_changes[t["ticket_id"]] = spd
    if events:
        store.apply_events(events, spd_changes)
    by_state: dict[str, int] = {}
    for (st,) in store.db.execute("SELECT status FROM tickets"):
        by_state[st] = by_state.get(st, 0) + 1
    return AdvanceResult(tickets=len(tickets), events=len(events), by_state=dict(sorted(by_state.items())))
