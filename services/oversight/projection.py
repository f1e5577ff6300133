"""How case events fold into a case's read-model row, and the columns every event is kept in
beside its body (pure, no I/O).

The live projector and the rebuild use this one fold, and ``verify`` folds again to check the rows:
the same events always give the same row, whatever batches they arrived in. That is why
``updated_at`` is the time of the last event and not the time it was projected.

When the fold changes, ``FOLD_VERSION`` goes up, and each oversight folds every stored case again
at its next start (``refold.py``): the rows then say what the new fold makes of the same events,
as ``verify`` checks them.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from contracts.text import in_vietnam

# Raised with every change to what ``fold`` makes of the same events. 2: a reroute or triage
# leaves no acceptance or committed date of the unit before; triage shows the centre's time to
# send the case on (``reach_by``), no result deadline and no escalation of the unit before; a report without a date
# keeps the committed one; a reopened case shows no answer and keeps when it first reached its
# unit; a unit that lets a case go past its deadline unresolved is kept in ``left_late``.
FOLD_VERSION = 2

# The ``cases`` row: column → PostgreSQL type. The schema and the batched upsert are made from it.
CASE_COLUMNS: dict[str, str] = {
    "case_id": "uuid", "tracking_code": "text", "request_id": "uuid", "channel": "text", "category": "text",
    "priority": "text", "status": "text", "is_public": "boolean", "citizen_name": "text", "citizen_phone": "text",
    "citizen_email": "text", "address": "text", "description": "text", "area_code": "text", "area_name": "text",
    "unit_id": "text", "unit_name": "text", "unit_admin_code": "text", "handler_id": "text", "handler_name": "text",
    "triage_reason": "text", "answer": "text", "escalation_level": "text", "duplicates": "int",
    "duplicate_of": "uuid", "language": "text",
    "received_at": "timestamptz", "opened_at": "timestamptz", "routed_at": "timestamptz",
    "assigned_at": "timestamptz", "accepted_at": "timestamptz", "resolved_at": "timestamptz",
    "closed_at": "timestamptz", "committed_date": "timestamptz", "reach_by": "timestamptz",
    "resolve_by": "timestamptz", "version": "int", "updated_at": "timestamptz", "left_late": "text",
}
# Statuses in which the citizen is still waiting for a result (chờ kết quả).
OPEN_STATUSES = ("received", "routed", "triage", "declined", "accepted", "in_progress", "reopened")
# Statuses in which a unit holds the case: a route or triage from one of these takes it from that unit.
HELD_STATUSES = ("routed", "accepted", "in_progress")
# When a case is due, in SQL: its unit's result deadline; while the 1022 centre sorts it (triage: no
# unit holds it, no result is due yet), the centre's time to send it on (``reach_by``, the triage's
# ``sort_by``). Only a case in triage has a ``reach_by`` and no ``resolve_by``.
DUE_BY = "coalesce(resolve_by, reach_by)"
DELIVERY_TYPES = ("NotificationSent", "NotificationFailed")


def timestamp(value: str | None) -> datetime | None:
    """A time an event carries, as the read model keeps it: one without a zone is Vietnam's, as the
    contract reads it (old ProgressReported events carry such a ``committed_date``)."""
    return in_vietnam(datetime.fromisoformat(value)) if value else None


def opened_row(e: dict[str, Any]) -> dict[str, Any]:
    """The row a CaseOpened starts, every column present."""
    citizen = e.get("citizen") or {}
    row = dict.fromkeys(CASE_COLUMNS)
    row.update({
        "case_id": UUID(str(e["case_id"])), "tracking_code": e["tracking_code"], "request_id": UUID(str(e["request_id"])),
        "channel": e["channel"], "category": e["category"], "priority": e["priority"], "status": "received",
        "is_public": e["is_public"], "citizen_name": citizen.get("full_name"), "citizen_phone": citizen.get("phone"),
        "citizen_email": citizen.get("email"), "address": e["address"], "description": e["description"],
        "language": e.get("language", "vi"),
        "received_at": timestamp(e["received_at"]), "opened_at": timestamp(e["occurred_at"]), "duplicates": 0,
        "version": e["version"], "updated_at": timestamp(e["occurred_at"]),
    })
    return row


def changes(e: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """Columns of ``cases`` that an event (other than CaseOpened) sets, on the row it follows."""
    at = timestamp(e["occurred_at"])
    kind = e["event_type"]
    unit = e.get("unit") or {}
    if kind == "CaseRouted":
        # Back to the unit that resolved it (a reopening): the case reached that unit when it first did.
        back = row["status"] == "reopened" and row["unit_id"] == unit["id"]
        return {**_taken_from(row, at), "status": "routed", "unit_id": unit["id"], "unit_name": unit["name"],
                "unit_admin_code": unit.get("admin_code"), "area_code": e.get("area_code"),
                "area_name": e.get("area_name"), "routed_at": row["routed_at"] if back else at,
                "reach_by": timestamp(e["reach_by"]), "resolve_by": timestamp(e["resolve_by"]), "handler_id": None,
                "handler_name": None, "assigned_at": None, "accepted_at": None, "committed_date": None,
                "escalation_level": None, "triage_reason": None}
    if kind == "CaseTriaged":
        # The centre's time to send it to a unit (none from an older router), its escalations afresh;
        # no result is due until a unit has it (the router's timer for it is off meanwhile).
        return {**_taken_from(row, at), "status": "triage", "triage_reason": e["reason"], "unit_id": None,
                "unit_name": None, "unit_admin_code": None, "handler_id": None, "handler_name": None,
                "assigned_at": None, "accepted_at": None, "committed_date": None,
                "reach_by": timestamp(e.get("sort_by")), "resolve_by": None, "escalation_level": None}
    if kind == "AssignmentIssued":
        return {"handler_id": e["handler"]["id"], "handler_name": e["handler"]["name"], "assigned_at": at}
    if kind == "CaseAccepted":
        return {"status": "accepted", "accepted_at": at}
    if kind == "CaseDeclined":
        return {**_left(row, at), "status": "declined",
                **({"address": e["corrected_address"]} if e.get("corrected_address") else {})}
    if kind == "ProgressReported":
        # A routine report without a date leaves the unit's commitment as it stands (so does the router).
        committed = timestamp(e.get("committed_date"))
        return {"status": "in_progress", **({"committed_date": committed} if committed else {})}
    if kind == "CaseResolved":
        return {"status": "resolved", "resolved_at": at, "answer": e["answer"]}
    if kind == "CaseClosed":
        return {"status": "closed", "closed_at": at}
    if kind == "CaseReopened":
        # The citizen rejected the answer: it is in the timeline, no longer the case's answer. A
        # resolution past the deadline stays late to its unit: the case comes back with fresh deadlines.
        resolved, deadline = row["resolved_at"], row["resolve_by"]
        late = resolved is not None and deadline is not None and resolved > deadline
        return {**(_late_to(row) if late else {}), "status": "reopened", "resolved_at": None, "closed_at": None,
                "answer": None}
    if kind == "CaseEscalated":
        return {"escalation_level": e["level"]}
    if kind == "CaseMarkedDuplicate":
        return {"status": "duplicate", "duplicate_of": UUID(str(e["original_case_id"]))}
    return {}


def _taken_from(row: dict[str, Any], at: datetime | None) -> dict[str, Any]:
    """A route or triage while a unit holds the case (the centre's) takes it from that unit."""
    return _left(row, at) if row["status"] in HELD_STATUSES else {}


def _left(row: dict[str, Any], at: datetime | None) -> dict[str, Any]:
    """The unit holding the case lets it go at ``at`` (declines it, or the centre takes it): past its
    deadline, unresolved, it is late to that unit."""
    deadline = row["resolve_by"]
    if deadline is None or at is None or at <= deadline:
        return {}
    return _late_to(row)


def _late_to(row: dict[str, Any]) -> dict[str, Any]:
    """The unit holding the case is kept in ``left_late``, once: it let the case go unresolved, or
    had its late result reopened, past the deadline. The statistics count the case due and late to
    that unit while another holds it, so a unit cannot clear its lateness by handing a late case on."""
    if row["unit_id"] is None:
        return {}
    units = left_late_units(row["left_late"])
    if any(u["id"] == row["unit_id"] for u in units):
        return {}
    units.append({"id": row["unit_id"], "name": row["unit_name"], "admin_code": row["unit_admin_code"]})
    return {"left_late": orjson.dumps(units, option=orjson.OPT_SORT_KEYS).decode()}


def left_late_units(text: str | None) -> list[dict[str, Any]]:
    """The units ``left_late`` names, in the order they let the case go (each ``id``, ``name``, ``admin_code``)."""
    return orjson.loads(text) if text else []


def fold(row: dict[str, Any] | None, events: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The row after ``events`` (new to this row, any order); None while the case was never opened.

    Events apply in version order and only when newer than the row, so a late or repeated event
    cannot take a case back. A duplicate report counts whenever it is new (its id was not seen).
    """
    row = dict(row) if row is not None else None
    for e in sorted(events, key=lambda e: e["version"]):
        if e["event_type"] == "CaseOpened":
            row = row or opened_row(e)
            continue
        if row is None:
            continue  # history that starts after the case was opened (a trimmed topic): nothing to show
        if e["event_type"] == "DuplicateLinked":
            row["duplicates"] += 1
        if e["version"] > row["version"]:
            row.update(changes(e, row))
            row["version"] = e["version"]
            row["updated_at"] = timestamp(e["occurred_at"])
    return row


# The columns an event is kept in beside its body, in ``case_events`` and in ``deliveries``: column →
# PostgreSQL type, in the order ``stored_columns`` gives them. The inserts are made from these.
CASE_EVENT_COLUMNS: dict[str, str] = {
    "event_id": "uuid", "case_id": "uuid", "version": "int", "event_type": "text", "occurred_at": "timestamptz",
    "producer": "text"}
DELIVERY_COLUMNS: dict[str, str] = {
    "delivery_id": "uuid", "event_id": "uuid", "case_id": "uuid", "cause_event_id": "uuid", "recipient": "text",
    "channel": "text", "outcome": "text", "attempts": "int", "error": "text", "occurred_at": "timestamptz",
    "template": "text"}


def stored_columns(e: dict[str, Any]) -> dict[str, Any]:
    """The columns of ``case_events`` (of ``deliveries``, for a delivery) an event is kept in beside
    its body, as PostgreSQL gives them back. The API shows them, so ``verify`` checks them against the body."""
    if e["event_type"] in DELIVERY_TYPES:
        return {"delivery_id": UUID(str(e["delivery_id"])), "event_id": UUID(str(e["event_id"])),
                "case_id": UUID(str(e["case_id"])), "cause_event_id": UUID(str(e["cause_event_id"])),
                "recipient": e["recipient"], "channel": e["channel"],
                "outcome": "sent" if e["event_type"] == "NotificationSent" else "failed", "attempts": e["attempts"],
                "error": e.get("error"), "occurred_at": timestamp(e["occurred_at"]), "template": e.get("template")}
    return {"event_id": UUID(str(e["event_id"])), "case_id": UUID(str(e["case_id"])), "version": e["version"],
            "event_type": e["event_type"], "occurred_at": timestamp(e["occurred_at"]), "producer": e["producer"]}
