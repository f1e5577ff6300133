"""The router's Kafka edges: requests in, units' responses in. Effects are durable before the
batch is acknowledged; a batch that fails is read again (at-least-once, idempotent by case id)."""

import asyncio
import logging
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts import telemetry, topics
from contracts.events import RequestReceived, UnitResponse
from contracts.messaging import consumer_options, parse_or_dead_letter, pause_then_raise, records_of
from pydantic import TypeAdapter

log = logging.getLogger(__name__)
REQUEST = TypeAdapter(RequestReceived)
RESPONSE = TypeAdapter(UnitResponse)


def register(broker: KafkaBroker, desk, relay, group_id: str, max_batch: int, stats: dict[str, int]) -> None:
    """Subscribe the router's handlers; called by ``create_app`` so nothing happens at import."""

    @broker.subscriber(topics.INTAKE_REQUESTS, **consumer_options(group_id, max_records=max_batch))
    async def on_requests(_: list[bytes], message: KafkaMessage) -> None:
        requests = await parse_or_dead_letter(broker, records_of(message), REQUEST)
        if not requests:
            return
        spans = [telemetry.start_span_from("router.open_case", r.traceparent, r.tracestate) for r in requests]
        try:
            opened = await asyncio.to_thread(desk.receive, requests, datetime.now(UTC))
        except Exception as error:  # noqa: BLE001 - logged, then the batch is read again
            log.exception("could not open %d cases; the batch will be read again", len(requests))
            await pause_then_raise(error)
        finally:
            for span in spans:
                span.end()
        stats["requests"] += len(requests)
        stats["opened"] += len(opened)
        relay.wake.set()

    @broker.subscriber(topics.UNIT_RESPONSES, **consumer_options(f"{group_id}-responses", max_records=max_batch))
    async def on_responses(_: list[bytes], message: KafkaMessage) -> None:
        responses = await parse_or_dead_letter(broker, records_of(message), RESPONSE)
        if not responses:
            return
        try:
            refused = await asyncio.to_thread(desk.answer, responses, datetime.now(UTC))
        except Exception as error:  # noqa: BLE001
            log.exception("could not apply %d unit responses; the batch will be read again", len(responses))
            await pause_then_raise(error)
        for response, why in refused:
            # A response the case cannot take is the unit's mistake: it goes to the dead letters, with why.
            log.warning("refused response %s for case %s: %s", response.response_id, response.case_id, why)
        if refused:
            await _dead_letter_refused(broker, refused)
        stats["responses"] += len(responses)
        relay.wake.set()


async def _dead_letter_refused(broker: KafkaBroker, refused) -> None:
    waits = []
    for response, why in refused:
        waits.append(await broker.publish(
            response.model_dump_json().encode(), topic=topics.dlq(topics.UNIT_RESPONSES),
            key=str(response.case_id).encode(), no_confirm=True,
            headers={"x-error": why[:2000], "x-error-type": "Refused", "x-source-topic": topics.UNIT_RESPONSES}))
    await asyncio.gather(*waits)
