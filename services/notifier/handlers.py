"""The notifier's Kafka edge: assignments to the units' handlers."""

import logging

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from contracts import topics
from contracts.events import AssignmentIssued
from contracts.messaging import consumer_options, parse_or_dead_letter, pause_then_raise, records_of
from services.notifier.application import Notifier
from services.notifier.domain import for_assignment

log = logging.getLogger(__name__)
ASSIGNMENT = TypeAdapter(AssignmentIssued)


def register(broker: KafkaBroker, notifier: Notifier, settings) -> None:
    @broker.subscriber(topics.UNIT_ASSIGNMENTS, **consumer_options(settings.group_id, max_records=settings.max_batch))
    async def on_assignments(_: list[bytes], message: KafkaMessage) -> None:
        assignments = await parse_or_dead_letter(broker, records_of(message), ASSIGNMENT)
        deliveries = [d for a in assignments for d in for_assignment(a, settings.unit_webhook_url)]
        try:
            await notifier.deliver(deliveries, topics.UNIT_ASSIGNMENTS)
        except Exception as error:  # noqa: BLE001 - logged; the batch is read again
            log.exception("could not record %d deliveries; the batch will be read again", len(deliveries))
            await pause_then_raise(error)
