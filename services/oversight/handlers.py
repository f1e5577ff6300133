"""Oversight's Kafka edge: case events and delivery records into the read models.

A batch from both topics is projected in one transaction; a record that cannot be read goes to its
topic's dead-letter topic first and counts as read. If projecting fails, the batch is read again.
"""

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import ConsumerRebalanceListener, ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts import telemetry, topics
from contracts.events import CASE_EVENT, DELIVERY
from contracts.messaging import consumer_options, dead_letter, pause_then_raise, records_of
from contracts.postgres import fits_int
from contracts.text import refuse_nul
from services.oversight.projection import CASE_COLUMNS, DELIVERY_TYPES, changes, opened_row, timestamp
from services.oversight.projector import Projector

log = logging.getLogger(__name__)
ADAPTERS = {topics.CASE_EVENTS: CASE_EVENT, topics.NOTIFY_DELIVERIES: DELIVERY}
TOPICS = tuple(ADAPTERS)
# Ids written to uuid columns; the contract also reads "{…}", "urn:uuid:…" and 32 bare hex digits.
_IDS = ("event_id", "case_id", "delivery_id", "cause_event_id")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def body_of(record: ConsumerRecord) -> dict[str, Any]:
    """The event a record carries, checked against its contract; raises when it is not one.

    What is stored and audited is the JSON as it was published, fields this version of the contract
    does not know included: an upgraded oversight rebuilding the same history audits the same text.
    So the text itself must be what the projection reads: the contract is checked strictly (a
    version as text is not a version), JSON's own rules hold (no NaN), the time an event is filed
    under must be in it, not a default, PostgreSQL must be able to store its strings (no NUL), and
    the projection must be able to fold and store it (:func:`_projectable`).
    Each raises ValueError (ValidationError is one).
    """
    raw = record.value or b""
    refuse_nul(raw)
    ADAPTERS[record.topic].validate_json(raw, strict=True)
    body = orjson.loads(raw)
    if "occurred_at" not in body:
        raise ValueError("no occurred_at: the audit trail files every event under the time it happened")
    _projectable(body)
    return body


# What a dry run folds an event onto: it reads the event's own fields, whatever row it follows.
_NO_ROW = dict.fromkeys(CASE_COLUMNS)


def _projectable(body: dict[str, Any]) -> None:
    """ValueError unless the fold and PostgreSQL take the event as it is written: the contract reads
    some text that they do not (a time ending in a small "z", which Python 3.11 refuses; an id in braces, which
    asyncpg refuses; a version past int4), and such a record would fail its batch every time it is read.
    A dry run of the fold, a few microseconds."""
    # Only the fields the event's kind has: another kind's name among the fields a reader ignores
    # (a case event with "delivery_id": null from a newer router) is no reason to refuse it.
    kind = body["event_type"]
    delivery = kind in DELIVERY_TYPES
    for name in _IDS if delivery else _IDS[:2]:
        if name in body and not (isinstance(body[name], str) and _UUID.fullmatch(body[name])):
            raise ValueError(f"{name} is not a UUID as the mesh writes one (8-4-4-4-12 hex digits)")
    for name in ("attempts",) if delivery else ("version",):
        if name in body and not fits_int(body[name]):
            raise ValueError(f"{name} is past what PostgreSQL's int holds")
    row = opened_row(body) if kind == "CaseOpened" else {} if delivery else changes(body, _NO_ROW)
    for value in (timestamp(body["occurred_at"]), *row.values()):
        if isinstance(value, datetime):
            try:
                value.astimezone(UTC)  # how asyncpg gives it to PostgreSQL, and how it reads it back
            except OverflowError:
                raise ValueError(f"{value.isoformat()} is not a time between the years 1 and 9999 in UTC") from None


class ResumeWhereProjected(ConsumerRebalanceListener):
    """Each partition given to this consumer is read from where the read models stand in it, not
    from the group's committed offset. The two part when the database is restored from a backup
    (or moved to another cluster): it stands behind Kafka, and the records between were never
    projected, never audited, while verify said the chain was sound. Ahead of Kafka (a crash
    between the projection's commit and Kafka's), it skips what the projection would skip anyway.
    A partition the read models never read from starts as the group's does, and where it starts
    is recorded before anything is read from it: a backup taken before the partition's first
    record would otherwise hold no position in it, and restored, read on from the group's offset.

    The partitions are paused first, before anything is awaited: aiokafka starts fetching from the
    committed offsets as soon as they are assigned, and a batch read from there would move the
    stored position past the records this is for. The positions are read in the background, and
    asked for again until the database answers, the partitions paused meanwhile: the listener
    returns at once, since the group's heartbeat waits for it (a listener waiting on a database
    that hangs had the consumer put out of the group, again and again)."""

    RETRY_SECONDS = 2.0

    def __init__(self, projector: Projector) -> None:
        self.projector = projector
        self.subscriber: Any = None  # set once subscribed: its consumer is the one to move
        self.resuming: asyncio.Task | None = None

    async def on_partitions_revoked(self, revoked) -> None:
        if self.resuming is not None:
            self.resuming.cancel()
            self.resuming = None

    async def on_partitions_assigned(self, assigned) -> None:
        if not assigned or self.subscriber is None:
            return
        consumer = self.subscriber.consumer
        consumer.pause(*assigned)
        self.resuming = asyncio.get_running_loop().create_task(self._resume_when_readable(consumer, assigned))

    async def _resume(self, consumer: Any, assigned) -> bool:
        try:
            stands = await asyncio.wait_for(
                self.projector.positions([(tp.topic, tp.partition) for tp in assigned]), self.RETRY_SECONDS * 5)
            mine = consumer.assignment()
            unread = [tp for tp in assigned if tp in mine and (tp.topic, tp.partition) not in stands]
            if unread:
                starts = [await asyncio.wait_for(consumer.position(tp), self.RETRY_SECONDS * 5) for tp in unread]
                await asyncio.wait_for(self.projector.begin(
                    {(tp.topic, tp.partition): at for tp, at in zip(unread, starts)}), self.RETRY_SECONDS * 5)
        except Exception as error:  # noqa: BLE001 - asked again in the background, the partitions paused
            log.warning("where the read models stand could not be read or recorded (%s); the partitions wait",
                        type(error).__name__)
            return False
        mine = consumer.assignment()
        for tp in assigned:
            if tp in mine and (at := stands.get((tp.topic, tp.partition))) is not None:
                consumer.seek(tp, at)
        consumer.resume(*[tp for tp in assigned if tp in mine])
        return True

    async def _resume_when_readable(self, consumer: Any, assigned) -> None:
        while not await self._resume(consumer, assigned):
            await asyncio.sleep(self.RETRY_SECONDS)


def register(broker: KafkaBroker, projector: Projector, group_id: str, max_batch: int, gather_ms: int = 0) -> None:
    resume = ResumeWhereProjected(projector)
    subscriber = broker.subscriber(*TOPICS, listener=resume,
                                   **consumer_options(group_id, max_records=max_batch, gather_ms=gather_ms))
    resume.subscriber = subscriber

    @subscriber
    async def on_events(_: list[bytes], message: KafkaMessage) -> None:
        records = records_of(message)
        bodies: list[dict[str, Any] | None] = []
        waits, spans = [], []
        for record in records:
            try:
                body = body_of(record)
            except ValueError as error:
                waits.append(await dead_letter(broker, record, error))
                bodies.append(None)
                continue
            bodies.append(body)
            spans.append(telemetry.start_span_from(f"oversight.project {body['event_type']}", body.get("traceparent"),
                                                   body.get("tracestate")))

        async def set_aside(i: int, why: ValueError) -> None:
            await (await dead_letter(broker, records[i], why))

        try:
            for wait in waits:
                await wait
            await projector.apply(records, bodies, set_aside)
        except Exception as error:  # noqa: BLE001 - logged; the batch is read again
            log.exception("could not project %d records; the batch will be read again", len(records))
            await pause_then_raise(error)
        finally:
            for span in spans:
                span.end()
