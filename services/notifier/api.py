"""The notifier's HTTP edge: health, and counts for Prometheus."""

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from contracts.messaging import consuming
from services.notifier.store import backlog_of

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> dict:
    state = request.app.state
    return {"status": "ok", "consuming": consuming(state.broker), **state.notifier.counts}


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    """Counts since start; the backlog by channel and the age of its oldest delivery; and, for each
    channel this notifier sends on, the tries in a row that failed: the figures to alert on when a
    gateway is down or misconfigured, long before its messages' hour of tries runs out."""
    counts, deliveries = request.app.state.notifier.counts, request.app.state.deliveries
    waiting = await deliveries.waiting()  # read once: the backlog's counts and its ages
    lines = [f"notifier_deliveries_{k}_total {v}\n" for k, v in counts.items()]
    backlog = backlog_of(waiting, await deliveries.unannounced())
    lines += [f"notifier_deliveries_{k} {v}\n" for k, v in backlog.items()]
    lines += [f'notifier_oldest_pending_seconds{{channel="{channel}"}} {age:.1f}\n'
              for channel, (_, age) in sorted(waiting.items())]
    lines += [f'notifier_failed_tries_in_a_row{{channel="{d.channel}"}} {d.failed_in_a_row}\n'
              for d in request.app.state.dispatchers if d.channel in d.providers.by_channel]
    return PlainTextResponse("".join(lines))
