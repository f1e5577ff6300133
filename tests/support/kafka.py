"""Reading and writing the mesh's topics from tests, as a district service or an auditor would."""

import asyncio
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import topics
from contracts.events import CASE_EVENT, UnitResponse


async def case_events(bootstrap: str, case_id: str, until: Callable[[list], bool], timeout: float = 30,
                      since_seconds: float = 900) -> list:
    """The case's events on ``case.events`` (from ``since_seconds`` ago) once ``until(events)`` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topics.CASE_EVENTS, p) for p in await _partitions(consumer)]
    consumer.assign(partitions)
    since = int((time.time() - since_seconds) * 1000)
    starts = await consumer.offsets_for_times({tp: since for tp in partitions})
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        consumer.seek(tp, starts[tp].offset if starts[tp] else ends[tp])
    seen: dict[str, object] = {}
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key == str(case_id).encode():
                        event = CASE_EVENT.validate_json(record.value)
                        seen[str(event.event_id)] = event  # an outbox re-publish repeats an event id
            events = sorted(seen.values(), key=lambda e: e.version)
            if until(events):
                return events
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"case {case_id}: timed out; saw {[e.event_type for e in events]}")
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - no subscription to fetch it for us
    return consumer.partitions_for_topic(topics.CASE_EVENTS) or set()


def kinds(events: list) -> list[str]:
    return [e.event_type for e in events]


def response(case_id: str, unit_id: str, kind: str, note: str = "", **extra) -> UnitResponse:
    return UnitResponse(event_id=uuid.uuid4(), correlation_id=uuid.UUID(case_id), producer="test-district",
                        response_id=uuid.uuid4(), case_id=uuid.UUID(case_id), unit_id=unit_id, kind=kind,
                        note=note, **extra)


async def send(bootstrap: str, *messages: UnitResponse | bytes, topic: str = topics.UNIT_RESPONSES) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for message in messages:
            value = message if isinstance(message, bytes) else message.model_dump_json().encode()
            key = b"raw" if isinstance(message, bytes) else str(message.case_id).encode()
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


