"""The router's HTTP edge: health and metrics only (its real work is on Kafka)."""

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from contracts.messaging import consuming

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    state = request.app.state
    ok = state.broker_running
    relay = state.relay
    failing = relay.failing_since and datetime.fromtimestamp(relay.failing_since, UTC).isoformat()
    return JSONResponse({"status": "ok" if ok else "starting", "consuming": consuming(state.broker),
                         "outbox_leader": relay.is_leader,
                         "outbox_failing_since": failing, "outbox_failure": relay.failure,
                         "directory_version": state.desk.directory.version}, status_code=200 if ok else 503)


@router.get("/directory")
async def directory(request: Request) -> dict:
    """The directory this router routes with, and every version of it ever installed here."""
    state = request.app.state
    d = state.desk.directory
    return {"edition": d.edition, "version": d.version, "digest": d.digest, "units": len(d.units),
            "installed": state.directory_record.installs}


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    state = request.app.state
    lines = [f"router_{name}_total {value}" for name, value in state.stats.items()]
    lines += [f"router_outbox_published_total {state.relay.published}",
              f"router_outbox_position {state.relay.position}",
              f"router_outbox_leader {int(state.relay.is_leader)}",
              f"router_outbox_failing_seconds {failing_for(state.relay):.0f}",
              f"router_escalations_total {state.timers.escalated}",
              f"router_deadlines_held_for_answers_seconds {state.timers.answers.behind(datetime.now(UTC)):.0f}"]
    return PlainTextResponse("\n".join(lines) + "\n")


def failing_for(relay: Any) -> float:
    """How long the outbox relay has not got past a failure (0: it is not failing)."""
    return time.time() - relay.failing_since if relay.failing_since else 0.0
