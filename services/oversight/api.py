"""Oversight's HTTP edge: read only. Every route is GET (HEAD follows); the connection pool it
reads through belongs to a role that may only SELECT."""

import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from contracts.ids import normalise_tracking_code

router = APIRouter()
ROLES = ("council", "front", "centre")

PUBLIC_STATUS = {
    "received": ("Đã tiếp nhận", "Received"), "routed": ("Đã chuyển đơn vị xử lý", "Sent to the responsible unit"),
    "triage": ("Tổng đài đang phân loại", "Being sorted by the 1022 centre"), "declined": ("Đang chuyển lại", "Being rerouted"),
    "accepted": ("Đơn vị đã nhận xử lý", "Accepted by the unit"), "in_progress": ("Đang xử lý", "In progress"),
    "resolved": ("Đã có kết quả", "Resolved"), "closed": ("Đã đóng", "Closed"), "reopened": ("Đã mở lại", "Reopened"),
}


def role_of(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The caller's role from its bearer token; oversight data is never served without one."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    role = request.app.state.tokens.get(token) if token else None
    if role is None:
        raise HTTPException(401, "a valid bearer token is required (HĐND, MTTQ or the 1022 centre)",
                            headers={"WWW-Authenticate": "Bearer"})
    return role


def mask_name(name: str | None) -> str | None:
    """'Nguyễn Văn An' → 'N. V. An': enough to tell cases apart, not to identify the person."""
    if not name:
        return name
    parts = name.split()
    return " ".join([p[0] + "." for p in parts[:-1]] + [parts[-1][0] + "***"]) if parts else name


def mask_phone(phone: str | None) -> str | None:
    return phone[:4] + "*" * max(0, len(phone) - 7) + phone[-3:] if phone and len(phone) > 7 else phone


def present(row: Any, role: str) -> dict[str, Any]:
    """A case as a role may see it: citizens' contact in full only for the 1022 centre."""
    case = {k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if isinstance(v, UUID) else v) for k, v in dict(row).items()}
    if role != "centre":
        case["citizen_name"] = mask_name(case.get("citizen_name"))
        case["citizen_phone"] = mask_phone(case.get("citizen_phone"))
        case["citizen_email"] = None
    return case


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    ok = await request.app.state.reader.fetchval("SELECT true")
    return JSONResponse({"status": "ok" if ok else "down", "projected": request.app.state.projector.applied})


@router.get("/v1/cases/{case_id}")
async def get_case(request: Request, case_id: UUID, role: Annotated[str, Depends(role_of)]) -> dict[str, Any]:
    row = await request.app.state.reader.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
    if row is None:
        raise HTTPException(404, f"no case {case_id}")
    return present(row, role)


@router.get("/v1/public/requests/{tracking_code}")
async def public_status(request: Request, tracking_code: str) -> dict[str, Any]:
    """What a citizen holding a tracking code may see: status and unit, nothing personal."""
    code = normalise_tracking_code(tracking_code)
    if code is None:
        raise HTTPException(400, "not a valid tracking code (mã tra cứu không hợp lệ)")
    row = await request.app.state.reader.fetchrow(
        "SELECT tracking_code, category, status, unit_name, received_at, updated_at, resolve_by, is_public, answer"
        " FROM cases WHERE tracking_code = $1", code)
    if row is None:
        raise HTTPException(404, "no request with this tracking code yet (chưa có phản ánh với mã này)")
    vi, en = PUBLIC_STATUS.get(row["status"], (row["status"], row["status"]))
    return {
        "tracking_code": row["tracking_code"], "category": row["category"], "status": row["status"],
        "status_vi": vi, "status_en": en, "unit": row["unit_name"],
        "received_at": row["received_at"].isoformat() if row["received_at"] else None,
        "updated_at": row["updated_at"].isoformat(),
        "resolve_by": row["resolve_by"].isoformat() if row["resolve_by"] else None,
        # The unit's answer is published only for requests the citizen marked public.
        "answer": row["answer"] if row["is_public"] else None,
    }


def _mask_body(body: dict[str, Any], role: str) -> dict[str, Any]:
    if role == "centre" or "citizen" not in body:
        return body
    citizen = body.get("citizen") or {}
    return {**body, "citizen": {"full_name": mask_name(citizen.get("full_name")),
                                "phone": mask_phone(citizen.get("phone"))}}


@router.get("/v1/cases/{case_id}/timeline")
async def timeline(request: Request, case_id: UUID, role: Annotated[str, Depends(role_of)]) -> dict[str, Any]:
    """Every event of a case and every delivery about it: what, who, when."""
    reader = request.app.state.reader
    events = await reader.fetch(
        "SELECT event_id, version, event_type, occurred_at, producer, body FROM case_events"
        " WHERE case_id = $1 ORDER BY occurred_at, version", case_id)
    if not events:
        raise HTTPException(404, f"no case {case_id}")
    deliveries = await reader.fetch(
        "SELECT delivery_id, cause_event_id, recipient, channel, outcome, attempts, error, occurred_at"
        " FROM deliveries WHERE case_id = $1 ORDER BY occurred_at", case_id)
    return {
        "case_id": str(case_id),
        "events": [{"event_id": str(e["event_id"]), "version": e["version"], "event_type": e["event_type"],
                    "occurred_at": e["occurred_at"].isoformat(), "producer": e["producer"],
                    "body": _mask_body(json.loads(e["body"]), role)} for e in events],
        "deliveries": [{**{k: (str(v) if isinstance(v, UUID) else v) for k, v in dict(d).items()},
                        "occurred_at": d["occurred_at"].isoformat()} for d in deliveries],
    }
