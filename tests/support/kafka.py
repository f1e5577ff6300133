"""Reading and writing the mesh's topics from tests, as a district service or an auditor would."""

import asyncio
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts import topics
from contracts.events import CASE_EVENT, UnitResponse


async def case_events(bootstrap: str, case_id: str, until: Callable[[list], bool], timeout: float = 30,
                      since_seconds: float = 900, complete: bool = False) -> list:
    """The case's events on ``case.events`` (from ``since_seconds`` ago) once ``until(events)`` holds;
    ``complete``: and once every partition is read to where it ended at the call, so an event
    published before the call (a second of one kind, say) cannot be missed for stopping early."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topics.CASE_EVENTS, p) for p in await partitions_of(consumer)]
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
            if until(events) and not (complete and [tp for tp in partitions if await consumer.position(tp) < ends[tp]]):
                return events
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"case {case_id}: timed out; saw {[e.event_type for e in events]}")
    finally:
        await consumer.stop()


async def read_to_end(bootstrap: str, topic: str, timeout: float = 30) -> list[ConsumerRecord]:
    """Every record on ``topic`` up to where its partitions ended when this was called: all that a
    publisher acknowledged before, however slowly the fetches come, and nothing published after."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(consumer, topic)]
        assert partitions, f"topic {topic} has no partitions"
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends, out = await consumer.end_offsets(partitions), []
        deadline = asyncio.get_running_loop().time() + timeout
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{topic}: not read to its end in {timeout}s; read {len(out)} records")
            for tp, records in (await consumer.getmany(*partitions, timeout_ms=500)).items():
                out += [r for r in records if r.offset < ends[tp]]
        return out
    finally:
        await consumer.stop()


async def caught_up(bootstrap: str, group: str, names: list[str], timeout: float = 60) -> None:
    """Wait until consumer group ``group`` has committed every record on the topics ``names`` that
    was published before this call: what it does with them is done."""
    consumer, admin = AIOKafkaConsumer(bootstrap_servers=bootstrap), AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        partitions = [TopicPartition(name, p) for name in names for p in await partitions_of(consumer, name)]
        ends = await consumer.end_offsets(partitions)

        async def done() -> bool:
            committed = await admin.list_consumer_group_offsets(group)
            return all(ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp]) for tp in partitions)
        deadline = asyncio.get_running_loop().time() + timeout
        while not await done():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"group {group} did not catch up with {names} in {timeout}s")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
        await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str = topics.CASE_EVENTS) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - no subscription to fetch it for us
    return consumer.partitions_for_topic(topic) or set()


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


