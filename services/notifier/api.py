"""The notifier's HTTP edge: health, and counts for Prometheus."""

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> dict:
    return {"status": "ok", **request.app.state.notifier.counts}


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    counts = request.app.state.notifier.counts
    backlog = await request.app.state.deliveries.backlog()
    lines = [f"notifier_deliveries_{k}_total {v}\n" for k, v in counts.items()]
    lines += [f"notifier_deliveries_{k} {v}\n" for k, v in backlog.items()]
    return PlainTextResponse("".join(lines))
