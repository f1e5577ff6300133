"""The notifier's Kafka edge: case events (citizens, escalations) and assignments (handlers).

Each batch is recorded before its offsets are committed; the sending happens elsewhere, so a slow
provider never holds a partition. A record that cannot be read is dead-lettered and the batch goes on.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from contracts import telemetry, topics
from contracts.events import CASE_EVENT, AssignmentIssued
from contracts.messaging import consumer_options, parse_or_dead_letter, pause_then_raise, records_of
from contracts.postgres import fits_int
from contracts.text import refuse_nul
from services.notifier.application import Notifier
from services.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)
ASSIGNMENT = TypeAdapter(AssignmentIssued)


def storable(event: Any) -> None:
    """ValueError for an event the notifier cannot record: its case's version is PostgreSQL's int,
    and a version past it failed the batch's transaction at every reading, for good."""
    if not fits_int(getattr(event, "version", 0)):
        raise ValueError("version is past what PostgreSQL's int holds")


def register(broker: KafkaBroker, notifier: Notifier, settings: NotifierSettings) -> None:
    options = consumer_options(settings.group_id, max_records=settings.max_batch, gather_ms=settings.gather_ms)

    async def take(message: KafkaMessage, adapter: TypeAdapter, use: Callable[[Sequence[Any]], Awaitable[None]]) -> None:
        # What the notifier records is PostgreSQL text: a NUL there would fail the batch for good.
        events = await parse_or_dead_letter(broker, records_of(message), adapter, refuse_nul, storable)
        # Each event's trace goes on through the notifier (its context is in the envelope).
        spans = [telemetry.start_span_from(f"notifier.record {e.event_type}", e.traceparent, e.tracestate)
                 for e in events]
        try:
            await use(events)
        except Exception as error:  # noqa: BLE001 - logged; the batch is read again
            log.exception("could not record what %d events call for; the batch will be read again", len(events))
            await pause_then_raise(error)
        finally:
            for span in spans:
                span.end()

    @broker.subscriber(topics.CASE_EVENTS, **options)
    async def on_case_events(_: list[bytes], message: KafkaMessage) -> None:
        await take(message, CASE_EVENT, notifier.take_case_events)

    @broker.subscriber(topics.UNIT_ASSIGNMENTS, **options)
    async def on_assignments(_: list[bytes], message: KafkaMessage) -> None:
        await take(message, ASSIGNMENT, notifier.take_assignments)
