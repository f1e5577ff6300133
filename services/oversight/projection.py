"""How each case event changes the read model, and how it enters the audit chain (pure, no I/O)."""

import hashlib
import json
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


def canonical(body: dict[str, Any]) -> str:
    """The one text of an event that its hash covers: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, canonical_text: str) -> str:
    """Each record hashes the previous hash and the canonical event (SHA-256, hex)."""
    return hashlib.sha256((prev_hash + "\n" + canonical_text).encode("utf-8")).hexdigest()


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def opened_row(e: dict[str, Any]) -> dict[str, Any]:
    citizen = e.get("citizen") or {}
    return {
        "case_id": e["case_id"], "tracking_code": e["tracking_code"], "request_id": e["request_id"],
        "channel": e["channel"], "category": e["category"], "priority": e["priority"], "status": "received",
        "is_public": e["is_public"], "citizen_name": citizen.get("full_name"), "citizen_phone": citizen.get("phone"),
        "citizen_email": citizen.get("email"), "address": e["address"], "description": e["description"],
        "received_at": _ts(e["received_at"]), "opened_at": _ts(e["occurred_at"]), "version": e["version"],
    }


def changes(e: dict[str, Any]) -> dict[str, Any]:
    """Columns of ``cases`` that an event (other than CaseOpened) sets."""
    at = _ts(e["occurred_at"])
    kind = e["event_type"]
    unit = e.get("unit") or {}
    if kind == "CaseRouted":
        return {"status": "routed", "unit_id": unit["id"], "unit_name": unit["name"],
                "unit_admin_code": unit.get("admin_code"), "area_code": e.get("area_code"),
                "area_name": e.get("area_name"), "routed_at": at, "reach_by": _ts(e["reach_by"]),
                "resolve_by": _ts(e["resolve_by"]), "handler_id": None, "handler_name": None,
                "escalation_level": None, "triage_reason": None}
    if kind == "CaseTriaged":
        return {"status": "triage", "triage_reason": e["reason"], "unit_id": None, "unit_name": None,
                "unit_admin_code": None, "handler_id": None, "handler_name": None}
    if kind == "AssignmentIssued":
        return {"handler_id": e["handler"]["id"], "handler_name": e["handler"]["name"], "assigned_at": at}
    if kind == "CaseAccepted":
        return {"status": "accepted", "accepted_at": at}
    if kind == "CaseDeclined":
        return {"status": "declined"}
    if kind == "ProgressReported":
        return {"status": "in_progress", "committed_date": _ts(e.get("committed_date"))}
    if kind == "CaseResolved":
        return {"status": "resolved", "resolved_at": at, "answer": e["answer"]}
    if kind == "CaseClosed":
        return {"status": "closed", "closed_at": at}
    if kind == "CaseReopened":
        return {"status": "reopened", "resolved_at": None, "closed_at": None}
    if kind == "CaseEscalated":
        return {"escalation_level": e["level"]}
    if kind == "DuplicateLinked":
        return {"duplicates": 1}
    return {}
