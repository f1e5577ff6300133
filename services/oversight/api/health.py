"""``GET /healthz``: the database answers through the reader role, and how far the projection got."""

from typing import Any

from fastapi import APIRouter, Request

from contracts.messaging import consuming

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    reader = request.app.state.reader
    head = await reader.fetchval("SELECT seq FROM audit_head WHERE id = 1")
    projector = request.app.state.projector
    # consuming: whether the projection reads Kafka now (None: this instance serves the API only).
    return {"status": "ok", "audit_head": head, "projected": projector.applied if projector else None,
            "consuming": consuming(request.app.state.broker) if projector else None}
