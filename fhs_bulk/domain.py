"""Rules from the support knowledge base, kept once, as data.

Everything here comes from the seed documents (see DOMAIN.md); code elsewhere reads these tables
instead of re-stating them, and the tests check one case per row.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import NamedTuple

# Dates the process judges (SPD, today, warranty) are in India's time zone.
IST = timezone(timedelta(hours=5, minutes=30), "IST")


def today_ist() -> date:
    """Today in India: the day SPDs, breaches and reschedules are judged by."""
    return datetime.now(IST).date()

ORDER_SHEET_NAME = "FK_ODS_ORDER_CREATE"
ORDER_ID_COLUMN = "fk_order_id"
ORDER_ID_PATTERN = r"^OD[0-9]{18}$"  # OD + 18 digits: the one definition
MAX_BATCH = 1000  # orders per SRMS bulk job
TRACKER_SHEET_NAME = "Tracker for installation (ODS)"
ODS_FSN_PREFIX = "ODS"
CLIENT_NAME = "Jeeves Consumer Services"

# The services that may go in a bulk registration sheet, spelled as the process document does.
BULK_ELIGIBLE_SERVICES: tuple[str, ...] = (
    "APNA Complex",
    "SP TV",
    "SP AC",
    "SP WM",
    "Geyser",
    "Fan Insta",
    "Bed Insta",
    "Wardrobe Installation",
    "TV Entertainment unit",
    "Office & Study chair",
    "Coffee & centre table assembly",
    "Office & study table installation",
    "Shoe rack setup installation",
    "Cycle Installation",
)

# Services SRMS knows that are not bulk-eligible (single tickets only).
OTHER_SERVICES: tuple[str, ...] = (
    "Mobile Repair",
    "Laptop Repair",
    "Water Purifier Service",
    "Chimney Installation",
)

# Large-repair services (TV, AC, refrigerator, washing machine: "L1 PROCESS: LARGE REPAIR"); single tickets.
LARGE_REPAIR_SERVICES: tuple[str, ...] = ("TV Repair", "AC Repair", "Refrigerator Repair", "Washing Machine Repair")
MOBILE_REPAIR_SERVICES: tuple[str, ...] = ("Mobile Repair", "Laptop Repair")

# Each service's line: whose L1 table judges its tickets.
INSTALLATION = "installation"  # installation and maintenance
MOBILE_REPAIR = "mobile-repair"
LARGE_REPAIR = "large-repair"

# Days from registration to the service promised date when the order names no preferred date.
SERVICE_TAT_DAYS: dict[str, int] = {
    **{name: 2 for name in BULK_ELIGIBLE_SERVICES},
    "Wardrobe Installation": 4,
    "Bed Insta": 3,
    "APNA Complex": 5,
    "Mobile Repair": 7,
    "Laptop Repair": 7,
    "Water Purifier Service": 3,
    "Chimney Installation": 3,
    **{name: 3 for name in LARGE_REPAIR_SERVICES},
}

KNOWN_SERVICES: tuple[str, ...] = BULK_ELIGIBLE_SERVICES + OTHER_SERVICES + LARGE_REPAIR_SERVICES
SERVICE_LINES: dict[str, str] = {
    **{name: INSTALLATION for name in KNOWN_SERVICES},
    **{name: MOBILE_REPAIR for name in MOBILE_REPAIR_SERVICES},
    **{name: LARGE_REPAIR for name in LARGE_REPAIR_SERVICES},
}


@lru_cache(maxsize=256)
def service_line(service: str) -> str:
    """The line a service belongs to (installation for a name SRMS does not know)."""
    canonical = known_service(service) if service else None
    return SERVICE_LINES.get(canonical or "", INSTALLATION)


def service_key(name: str) -> str:
    """Case- and space-insensitive key under which service names compare."""
    return "".join(name.split()).casefold()


_ELIGIBLE_BY_KEY = {service_key(s): s for s in BULK_ELIGIBLE_SERVICES}
_KNOWN_BY_KEY = {service_key(s): s for s in KNOWN_SERVICES}


def eligible_service(name: str) -> str | None:
    """The canonical eligible service a sheet's spelling means, or None."""
    return _ELIGIBLE_BY_KEY.get(service_key(name))


def known_service(name: str) -> str | None:
    return _KNOWN_BY_KEY.get(service_key(name))


# The ticket journey: every (status, sub-status) pair SRMS has. Nothing else is a state.
JOURNEY: dict[str, tuple[str, ...]] = {
    "CREATED": ("NOT_APPLICABLE",),
    "ALLOCATED": ("NOT_APPLICABLE",),
    "RESCHEDULED": (
        "SITE_NOT_READY",
        "CUSTOMER_RESCHEDULE",
        "TECHNICIAN_RESCHEDULE",
        "CUSTOMER_NOT_RESPONDING",
        "SERVICEABILITY_CONSTRAINT",
    ),
    "CANCEL_INITIATED": ("CUSTOMER_NOT_RESPONDING", "CUSTOMER_NOT_READY", "NOT_SERVICEABLE"),
    "CANCELED": ("CUSTOMER_NOT_RESPONDING", "CUSTOMER_NOT_READY"),
    "COMPLETED": ("NOT_APPLICABLE",),
    "SERVICE_PENDING": ("VENDOR_OFFLOAD",),
    "PICKUP": ("ALLOCATED",),
    "WORKSHOP": (
        "INWARD",
        "DIAGNOSIS",
        "ESTIMATION_REQUESTED",
        "ESTIMATION_RESPONSE_PENDING",
        "ESTIMATION_APPROVED",
        "ESTIMATION_REJECTED",
        "REPAIR_IN_PROGRESS",
        "REPAIR_COMPLETED",
        "QC_PENDING",
        "QC_SUCCESS",
        "TRANSIT_DAMAGE",
    ),
    "DROP": ("ALLOCATED", "TECHNICIAN_REACHED_SITE", "COMPLETED", "ISSUE_NOT_RESOLVED", "NOT_APPLICABLE"),
}

JOURNEY_PAIRS: frozenset[tuple[str, str]] = frozenset(
    (status, sub) for status, subs in JOURNEY.items() for sub in subs
)
CLOSED_STATUSES: frozenset[str] = frozenset({"COMPLETED", "CANCELED"})


def is_journey_state(status: str, sub_status: str) -> bool:
    return (status, sub_status) in JOURNEY_PAIRS


WARRANTY_DAYS = 30

# Conditions an L1 rule may depend on (evaluated by the reconciler).
SPD_BREACHED = "spd-breached"
SPD_NOT_BREACHED = "spd-not-breached"
RESCHEDULE_BREACHED = "reschedule-date-breached"
RESCHEDULE_NOT_BREACHED = "reschedule-date-not-breached"
WITHIN_WARRANTY = "within-warranty"
AFTER_WARRANTY = "after-warranty"
ANY = "any"

TAG_OUT_OF_SPD = "Inbound >> Complaint >> Delay in Service >> Out of SPD >> Unresolved"
TAG_RESCHEDULE = "Reschedule >> preferred date >> Remarks >> Submit"


class L1Rule(NamedTuple):
    status: str
    sub_status: str | tuple[str, ...] | None  # None: any sub-status of the status; a tuple: any of them
    condition: str
    next_action: str
    crm_tag: str
    action: str = "inform"  # machine-readable: what kind of step (see ACTION_CODES)


# What each rule's step is, as a code an analyst can filter on; the ones a command carries out name it.
ACTION_CODES: dict[str, str] = {
    "reschedule": "fhs-bulk ticket reschedule {id} --date YYYY-MM-DD",
    "cancel": "fhs-bulk ticket cancel {id}",
    "reopen": "fhs-bulk ticket reopen {id}",
    "escalate-l2": "",  # in Kapture, outside SRMS
    "deny": "",  # tell the customer; nothing to do in SRMS
    "inform": "",  # tell the customer the status or date
    "fix-tracker": "",  # the tracker row itself is wrong
    "none": "",
}


# The L1 process table (installation and maintenance). First match wins.
L1_RULES: tuple[L1Rule, ...] = (
    L1Rule("CANCELED", None, ANY, "tell customer, check refund, ask for a fresh order",
           "Inbound >> Enquiry >> Enquiry about the cancellation >> Resolved"),
    L1Rule("CREATED", None, SPD_BREACHED, "apologise, escalate to L2, share Oathkeeper TAT", TAG_OUT_OF_SPD,
           "escalate-l2"),
    L1Rule("SERVICE_PENDING", "VENDOR_OFFLOAD", SPD_BREACHED,
           "apologise, escalate to L2, share Oathkeeper TAT", TAG_OUT_OF_SPD, "escalate-l2"),
    L1Rule("CREATED", None, SPD_NOT_BREACHED, "tell customer the SPD",
           "Inbound >> Enquiry >> Enquiry About TAT/SPD >> Resolved"),
    L1Rule("SERVICE_PENDING", "VENDOR_OFFLOAD", SPD_NOT_BREACHED, "tell customer the SPD",
           "Inbound >> Enquiry >> Enquiry About TAT/SPD >> Resolved"),
    L1Rule("ALLOCATED", None, SPD_BREACHED, "escalate to L2, share Oathkeeper TAT", TAG_OUT_OF_SPD, "escalate-l2"),
    L1Rule("ALLOCATED", None, SPD_NOT_BREACHED, "reschedule if the customer asks", TAG_RESCHEDULE, "reschedule"),
    L1Rule("RESCHEDULED", "TECHNICIAN_RESCHEDULE", ANY, "escalate to L2, share Oathkeeper TAT", TAG_OUT_OF_SPD,
           "escalate-l2"),
    L1Rule("RESCHEDULED", "CUSTOMER_RESCHEDULE", RESCHEDULE_BREACHED,
           "apologise, agree a new date or escalate",
           "Reschedule, or Inbound >> Complaint >> Fake status updated by technician >> Unresolved", "reschedule"),
    L1Rule("RESCHEDULED", "CUSTOMER_RESCHEDULE", RESCHEDULE_NOT_BREACHED,
           "tell customer the rescheduled date; reschedule if they ask", TAG_RESCHEDULE, "reschedule"),
    L1Rule("RESCHEDULED", "CUSTOMER_NOT_RESPONDING", ANY, "reschedule; ask for an alternate number",
           "Reschedule, or Inbound >> Complaint >> Fake closure/ Fake Status >> Unresolved", "reschedule"),
    L1Rule("COMPLETED", None, WITHIN_WARRANTY, "customer may reopen via self-serve",
           "Inbound >> Request >> Request to reopen ticket >> Resolved", "reopen"),
    L1Rule("COMPLETED", None, AFTER_WARRANTY, "service warranty over: deny",
           "Inbound >> Enquiry >> Post Policy-Service Denial", "deny"),
)

DELIVERY_BREACHED = "delivery-breached"
DELIVERY_NOT_BREACHED = "delivery-not-breached"
TAG_TAT_ENQUIRY = "Inbound >> Enquiry >> Enquiry About TAT/SPD >> Resolved"
WORKSHOP_IN_REPAIR = ("INWARD", "DIAGNOSIS", "ESTIMATION_REQUESTED", "ESTIMATION_RESPONSE_PENDING",
                      "ESTIMATION_APPROVED",
                      "REPAIR_IN_PROGRESS", "QC_PENDING", "QC_SUCCESS")
DELIVERY_PENDING = ("ALLOCATED", "TECHNICIAN_REACHED_SITE", "NOT_APPLICABLE")
DELIVERY_BUSINESS_DAYS = 1  # "the product is delivered within 1 business day" of the repair (Monday-Friday)
REPAIR_DONE = (("WORKSHOP", "REPAIR_COMPLETED"), ("WORKSHOP", "ESTIMATION_REJECTED"))

# "L1 PROCESS: MOBILE REPAIR" (mobile and laptop repair): the SPD is the pickup date. First match wins.
MOBILE_REPAIR_RULES: tuple[L1Rule, ...] = (
    L1Rule("CREATED", None, SPD_NOT_BREACHED, "share the pickup date",
           "Inbound >> Enquiry >> Pickup Status Enquiry >> Resolved", "inform"),
    L1Rule("PICKUP", "ALLOCATED", SPD_NOT_BREACHED, "share the pickup date",
           "Inbound >> Enquiry >> Pickup Status Enquiry >> Resolved", "inform"),
    L1Rule("CREATED", None, SPD_BREACHED, "apologise, escalate",
           "Inbound >> Complaint >> Delay in pickup >> Unresolved", "escalate-l2"),
    L1Rule("PICKUP", "ALLOCATED", SPD_BREACHED, "apologise, escalate",
           "Inbound >> Complaint >> Delay in pickup >> Unresolved", "escalate-l2"),
    L1Rule("WORKSHOP", WORKSHOP_IN_REPAIR, ANY,
           "share the repair status; repair takes 2-3 days; estimation accepted/rejected via self-serve",
           TAG_TAT_ENQUIRY, "inform"),
    L1Rule("WORKSHOP", "ESTIMATION_REJECTED", ANY, "the phone comes back unrepaired; share when", TAG_TAT_ENQUIRY,
           "inform"),
    L1Rule("DROP", "ALLOCATED", DELIVERY_NOT_BREACHED, "share the delivery status",
           "Inbound >> Enquiry >> Delivery Status Enquiry >> Resolved", "inform"),
    L1Rule("DROP", DELIVERY_PENDING, DELIVERY_BREACHED, "apologise, escalate",
           "Inbound >> Complaint >> Delay in delivery >> Unresolved", "escalate-l2"),
    L1Rule("COMPLETED", None, WITHIN_WARRANTY, "guide the customer to reopen via self-serve",
           "Inbound >> Request >> Request to reopen ticket >> Resolved", "reopen"),
    L1Rule("DROP", "COMPLETED", WITHIN_WARRANTY, "guide the customer to reopen via self-serve",
           "Inbound >> Request >> Request to reopen ticket >> Resolved", "reopen"),
    L1Rule("COMPLETED", None, AFTER_WARRANTY, "reopen not possible",
           "Inbound >> Enquiry >> Request to reopen ticket >> Unresolved", "deny"),
    L1Rule("DROP", "COMPLETED", AFTER_WARRANTY, "reopen not possible",
           "Inbound >> Enquiry >> Request to reopen ticket >> Unresolved", "deny"),
)

# "L1 PROCESS: LARGE REPAIR": the installation table, except a COMPLETED ticket after 30 days (a new
# paid visit).
LARGE_REPAIR_RULES: tuple[L1Rule, ...] = tuple(
    L1Rule("COMPLETED", None, AFTER_WARRANTY, "warranty over: a new visit is charged; share the service charges",
           "Inbound >> Enquiry >> Enquiry About Service Charges >> Resolved", "inform")
    if (r.status, r.condition) == ("COMPLETED", AFTER_WARRANTY) else r for r in L1_RULES)

L1_TABLES: dict[str, tuple[L1Rule, ...]] = {
    INSTALLATION: L1_RULES, MOBILE_REPAIR: MOBILE_REPAIR_RULES, LARGE_REPAIR: LARGE_REPAIR_RULES}

# States the L1 table says nothing about. Not from the seed's table: what support can still do.
FALLBACK_RULES: tuple[L1Rule, ...] = (
    L1Rule("CANCEL_INITIATED", None, ANY,
           "cancellation in progress: tell the customer; an agent can cancel only in this state", "", "cancel"),
    L1Rule("RESCHEDULED", None, SPD_BREACHED, "escalate to L2, share Oathkeeper TAT", TAG_OUT_OF_SPD, "escalate-l2"),
    L1Rule("RESCHEDULED", None, SPD_NOT_BREACHED, "tell customer the reason (see remarks) and the SPD", ""),
    L1Rule("PICKUP", None, ANY, "repair: product being picked up; share the SPD", ""),
    L1Rule("WORKSHOP", None, ANY, "repair in the workshop: share the stage and the SPD", ""),
    L1Rule("DROP", None, ANY, "repair: product on its way back; share the SPD", ""),
)


# ---------------------------------------------------------------- actions on a ticket
# "Reschedule >> Select date (Preferred date) >> Remarks >> Submit"; "Cancel SVC >> Cancel Reason
# Customer_Not_Ready >> Remark Cancel >> Submit. Only applicable to tickets in cancel initiated state";
# Reopen: a COMPLETED ticket within the 30-day warranty gives a new ticket (DOMAIN.md, "Actions").


class ActionRule(NamedTuple):
    action: str
    allowed_from: frozenset[str] | None  # statuses it may start from; None: any not in refused_from
    refused_from: frozenset[str]
    refusal_code: str  # the SRMS error code when the ticket is in another state
    rule: str  # the process document's words, quoted in refusals
    result: tuple[str, str | None]  # (status, sub-status) after; sub-status None: the cancel reason


ACTION_RULES: tuple[ActionRule, ...] = (
    ActionRule("reschedule", None, frozenset({"COMPLETED", "CANCELED", "CANCEL_INITIATED"}), "ticket-not-open",
               "only an open ticket can be rescheduled (not COMPLETED, CANCELED or CANCEL_INITIATED)",
               ("RESCHEDULED", "CUSTOMER_RESCHEDULE")),
    ActionRule("cancel", frozenset({"CANCEL_INITIATED"}), frozenset(), "ticket-not-cancel-initiated",
               "Cancel SVC is only applicable to tickets in cancel initiated state", ("CANCELED", None)),
    ActionRule("reopen", frozenset({"COMPLETED"}), frozenset(), "ticket-not-completed",
               "only a COMPLETED ticket can be reopened (within 30 days of the day of service)",
               ("CREATED", "NOT_APPLICABLE")),
)
ACTIONS: dict[str, ActionRule] = {r.action: r for r in ACTION_RULES}

RESCHEDULE_HORIZON_DAYS = 30  # a reschedule date is today .. today + 30 days (Asia/Kolkata)
CANCEL_REASONS: tuple[str, ...] = ("CUSTOMER_NOT_READY", "CUSTOMER_NOT_RESPONDING")
DEFAULT_CANCEL_REASON = "CUSTOMER_NOT_READY"
DEFAULT_CANCEL_REMARKS = "Cancel"
WARRANTY_EXPIRED = "warranty-expired"  # "post policy service denial"


def action_refusal(action: str, status: str) -> ActionRule | None:
    """The rule that refuses ``action`` on a ticket in ``status``, or None when the state allows it."""
    rule = ACTIONS[action]
    if rule.allowed_from is not None and status not in rule.allowed_from:
        return rule
    if status in rule.refused_from:
        return rule
    return None
