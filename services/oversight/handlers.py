"""Oversight's Kafka edge: case events and delivery records into the read models."""

import logging
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from contracts import telemetry, topics
from contracts.events import CASE_EVENT, DELIVERY
from contracts.messaging import consumer_options, dead_letter, pause_then_raise, records_of
from services.oversight.store import Projector

log = logging.getLogger(__name__)
ADAPTERS = {topics.CASE_EVENTS: CASE_EVENT, topics.NOTIFY_DELIVERIES: DELIVERY}


def register(broker: KafkaBroker, projector: Projector, group_id: str, max_batch: int) -> None:
    @broker.subscriber(topics.CASE_EVENTS, topics.NOTIFY_DELIVERIES, **consumer_options(group_id, max_records=max_batch))
    async def on_events(_: list[bytes], message: KafkaMessage) -> None:
        records = records_of(message)
        bodies: list[dict[str, Any] | None] = []
        waits, spans = [], []
        for record in records:
            try:
                event = ADAPTERS[record.topic].validate_json(record.value or b"")
            except ValidationError as error:
                waits.append(await dead_letter(broker, record, error))
                bodies.append(None)
                continue
            bodies.append(event.model_dump(mode="json"))
            spans.append(telemetry.start_span_from(f"oversight.project {event.event_type}", event.traceparent, event.tracestate))
        try:
            for wait in waits:
                await wait
            await projector.apply(records, bodies)
        except Exception as error:  # noqa: BLE001 - logged; the batch is read again
            log.exception("could not project %d records; the batch will be read again", len(records))
            await pause_then_raise(error)
        finally:
            for span in spans:
                span.end()
