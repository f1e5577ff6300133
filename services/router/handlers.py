"""The router's Kafka edges: requests in, units' responses in. Effects are durable before the
batch is acknowledged; a batch that fails is read again (at-least-once, idempotent by case id
and by message id)."""

import asyncio
import logging
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from contracts import telemetry, topics
from contracts.events import RequestReceived, UnitResponse
from contracts.messaging import consumer_options, parse_or_dead_letter, pause_then_raise, records_of
from services.router import ledger
from services.router.application import Workload

log = logging.getLogger(__name__)
REQUEST = TypeAdapter(RequestReceived)
RESPONSE = TypeAdapter(UnitResponse)


def register(broker: KafkaBroker, desk, pool, group_id: str, max_batch: int, stats: dict[str, int],
             gather_ms: int = 0) -> None:
    """Subscribe the router's handlers; called by ``create_app`` so nothing happens at import."""

    async def workload() -> Workload:
        return Workload(*await ledger.handler_load(pool))

    @broker.subscriber(topics.INTAKE_REQUESTS, **consumer_options(group_id, max_records=max_batch, gather_ms=gather_ms))
    async def on_requests(_: list[bytes], message: KafkaMessage) -> None:
        requests = await parse_or_dead_letter(broker, records_of(message), REQUEST)
        if not requests:
            return
        spans = [telemetry.start_span_from("router.open_case", r.traceparent, r.tracestate) for r in requests]
        try:
            # Both lookups at once: each is a round trip on the path of every new case.
            reports, load = await asyncio.gather(
                ledger.open_duplicates(pool, [(r.citizen.phone, r.category) for r in requests if r.citizen.phone]),
                workload())
            opened = await asyncio.to_thread(desk.receive, requests, datetime.now(UTC), load, reports)
        except Exception as error:  # noqa: BLE001 - logged, then the batch is read again
            log.exception("could not open %d cases; the batch will be read again", len(requests))
            await pause_then_raise(error)
        finally:
            for span in spans:
                span.end()
        stats["requests"] += len(requests)
        stats["opened"] += len(opened)

    @broker.subscriber(topics.UNIT_RESPONSES, **consumer_options(f"{group_id}-responses", max_records=max_batch))
    async def on_responses(_: list[bytes], message: KafkaMessage) -> None:
        responses = await parse_or_dead_letter(broker, records_of(message), RESPONSE)
        if not responses:
            return
        try:
            refused = await asyncio.to_thread(desk.answer, responses, datetime.now(UTC), await workload())
        except Exception as error:  # noqa: BLE001 - logged, then the batch is read again
            log.exception("could not apply %d unit responses; the batch will be read again", len(responses))
            await pause_then_raise(error)
        if refused:
            # A response the case cannot take is the sender's mistake: dead-lettered with why, not retried.
            waits = []
            for response, why in refused:
                log.warning("refused response %s for case %s: %s", response.event_id, response.case_id, why)
                waits.append(await broker.publish(
                    response.model_dump_json().encode(), topic=topics.dlq(topics.UNIT_RESPONSES),
                    key=str(response.case_id).encode(), no_confirm=True,
                    headers={"x-error": why[:2000], "x-error-type": "Refused", "x-source-topic": topics.UNIT_RESPONSES}))
            await asyncio.gather(*waits)
        stats["responses"] += len(responses)
        stats["refused"] += len(refused)
