"""A batch read again while what it writes to is down puts its unreadable record on the dead-letter
topic once, not once for each reading; a dead letter the broker did not take is sent again."""

import asyncio
import json
import logging
import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaMessage
from pydantic import BaseModel, TypeAdapter

from contracts.events import UnitResponse
from contracts.messaging import (DEAD_LETTER_BYTES, consumer_options, kafka_broker, parse_or_dead_letter,
                                 pause_then_raise, records_of)
from contracts.text import refuse_nul
from contracts.topics import dlq
from tests.support.kafka import caught_up, read_to_end
from tests.support.mesh import eventually


class Note(BaseModel):
    text: str


NOTE = TypeAdapter(Note)
RESPONSE = TypeAdapter(UnitResponse)


async def fresh_topic(kafka_bootstrap: str) -> str:
    """A topic of one partition, and its dead-letter topic, for one test."""
    topic = f"dead-letters-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1), NewTopic(dlq(topic), 1, 1)])
    finally:
        await admin.close()
    return topic


async def dead_letters_on(kafka_bootstrap: str, topic: str) -> list[bytes]:
    return [record.value for record in await read_to_end(kafka_bootstrap, dlq(topic))]


async def test_a_bad_record_in_a_batch_read_again_is_dead_lettered_once(kafka_bootstrap, caplog):
    caplog.set_level(logging.INFO)
    topic, broker = await fresh_topic(kafka_bootstrap), kafka_broker(kafka_bootstrap, client_id="dead-letter-test")
    readings, taken = 0, []

    @broker.subscriber(topic, **consumer_options(f"{topic}-group"))
    async def on_batch(_: list[bytes], message: KafkaMessage) -> None:
        nonlocal readings
        notes = await parse_or_dead_letter(broker, records_of(message), NOTE)
        readings += 1
        if readings <= 3:  # what the batch is recorded in is down: it is read again, three times
            await pause_then_raise(RuntimeError("the database is down"))
        taken.extend(n.text for n in notes)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for value in (b'{"text": "before"}', b"not json", b'{"text": "after"}'):  # one batch
            await producer.send(topic, value)
        await producer.flush()
        await broker.start()
        await eventually(lambda: "after" in taken, 60, "the batch to be taken once the database is back")
        assert readings >= 4 and taken.count("before") == 1 and taken.count("after") == 1
        assert await dead_letters_on(kafka_bootstrap, topic) == [b"not json"]
        # The log says what went wrong, each time, and not that each batch came and went: faststream
        # logged "Received" and "Processed" for every batch, nearly every line of the router's log.
        ours = [r for r in caplog.records if r.name == "contracts.messaging"]
        failures = [r for r in ours if r.levelno == logging.ERROR and r.exc_info
                    and str(r.exc_info[1]) == "the database is down"]
        assert len(failures) == 3
        assert not [r.getMessage() for r in ours if r.getMessage() in ("Received", "Processed")]
    finally:
        await producer.stop()
        await broker.stop()


async def test_a_dead_letter_the_broker_did_not_take_is_sent_again(kafka_bootstrap, monkeypatch):
    topic, broker = await fresh_topic(kafka_bootstrap), kafka_broker(kafka_bootstrap, client_id="dead-letter-test")
    readings, taken, refusals = 0, [], 0
    publish = broker.publish

    async def refused_once(*args, **kwargs):
        nonlocal refusals
        if readings == 0:  # the broker does not take the first dead letter
            refusals += 1
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(RuntimeError("NotEnoughReplicas"))
            return failed
        return await publish(*args, **kwargs)

    monkeypatch.setattr(broker, "publish", refused_once)

    @broker.subscriber(topic, **consumer_options(f"{topic}-group"))
    async def on_batch(_: list[bytes], message: KafkaMessage) -> None:
        nonlocal readings
        try:
            notes = await parse_or_dead_letter(broker, records_of(message), NOTE)
        except RuntimeError as error:
            readings += 1
            await pause_then_raise(error)
        readings += 1
        taken.extend(n.text for n in notes)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    await broker.start()
    try:
        await producer.send_and_wait(topic, b"not json either")
        await producer.send_and_wait(topic, b'{"text": "good"}')
        await eventually(lambda: "good" in taken, 60, "the good record")
        assert refusals == 1, "the dead letter went through the broker that refused it"
        assert await dead_letters_on(kafka_bootstrap, topic) == [b"not json either"]
    finally:
        await producer.stop()
        await broker.stop()


async def test_a_record_nested_too_deep_for_a_check_is_dead_lettered_and_the_batch_goes_on(kafka_bootstrap):
    """A NUL inside JSON nested 900 deep made the NUL check raise RecursionError, which is no
    ValueError: the batch failed at every reading and nothing after it on the topic was read."""
    topic, broker = await fresh_topic(kafka_bootstrap), kafka_broker(kafka_bootstrap, client_id="dead-letter-test")
    taken: list[str] = []
    deep = b'{"text": ' + b"[" * 900 + b'"\\u0000"' + b"]" * 900 + b"}"
    deeper = b"[" * 5000 + b"]" * 5000  # past what orjson and pydantic read at all

    @broker.subscriber(topic, **consumer_options(f"{topic}-group"))
    async def on_batch(_: list[bytes], message: KafkaMessage) -> None:
        taken.extend(n.text for n in await parse_or_dead_letter(broker, records_of(message), NOTE, refuse_nul))

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for value in (b'{"text": "before"}', deep, deeper, b'{"text": "after"}'):
            await producer.send(topic, value)
        await producer.flush()
        await broker.start()
        await eventually(lambda: "after" in taken, 60, "the records after the deep one")
        assert taken == ["before", "after"]
        assert await dead_letters_on(kafka_bootstrap, topic) == [deep, deeper]
    finally:
        await producer.stop()
        await broker.stop()


async def test_a_unit_response_too_long_is_dead_lettered_in_part_and_the_batch_goes_on(kafka_bootstrap):
    """A district service's response with a note of megabytes, compressed by its producer: the
    router stored the note in the case's event, which could not be published, and nothing after
    it was. Its texts are bounded now, so it is refused; its dead letter, sent whole, was past
    what a producer sends, failed every time, and held up its batch for good."""
    topic, broker = await fresh_topic(kafka_bootstrap), kafka_broker(kafka_bootstrap, client_id="dead-letter-test")
    taken: list[str] = []
    response = {"event_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4()), "producer": "district-760",
                "occurred_at": "2026-12-04T10:00:00+07:00", "response_id": str(uuid.uuid4()),
                "case_id": str(uuid.uuid4()), "unit_id": "hcmc-2021/760", "kind": "progress"}
    huge = json.dumps({**response, "note": "Đang xử lý. " * 200_000}).encode()
    fine = json.dumps({**response, "response_id": str(uuid.uuid4()), "note": "Đang xử lý."}).encode()

    @broker.subscriber(topic, **consumer_options(f"{topic}-group"))
    async def on_batch(_: list[bytes], message: KafkaMessage) -> None:
        taken.extend(r.note for r in await parse_or_dead_letter(broker, records_of(message), RESPONSE))

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type="gzip",
                                max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        # Its key too is past what a dead letter can carry beside half a megabyte of its value.
        await producer.send(topic, huge, key=b"k" * 600_000)
        await producer.send(topic, fine)
        await producer.flush()
        await broker.start()
        await eventually(lambda: "Đang xử lý." in taken, 60, "the response after the long one")
        [letter] = await read_to_end(kafka_bootstrap, dlq(topic))
        assert len(letter.value) == DEAD_LETTER_BYTES and letter.value == huge[:DEAD_LETTER_BYTES]
        assert dict(letter.headers)["x-truncated-from"] == str(len(huge)).encode()
        assert letter.key == b"k" * 1024 and dict(letter.headers)["x-key-truncated-from"] == b"600000"
        assert b"note" in dict(letter.headers)["x-error"]
    finally:
        await producer.stop()
        await broker.stop()


async def test_a_header_in_another_encoding_or_with_no_value_loses_nothing_around_it(kafka_bootstrap):
    """faststream decodes every header as UTF-8 before the mesh's code runs: one in TCVN3 or with
    no value raised there, and the whole batch around it was skipped unread, its offsets committed
    with the next batch's. Every record is now read, that one with its header as best it can be."""
    topic, broker = await fresh_topic(kafka_bootstrap), kafka_broker(kafka_bootstrap, client_id="dead-letter-test")
    taken, seen_headers = [], []

    @broker.subscriber(topic, **consumer_options(f"{topic}-group"))
    async def on_batch(_: list[bytes], message: KafkaMessage) -> None:
        notes = await parse_or_dead_letter(broker, records_of(message), NOTE)
        seen_headers.extend(dict(r.headers).get("x-unit") for r in records_of(message))
        taken.extend(n.text for n in notes)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        # A district's reply_to, first in the batch (where faststream reads it): no consumer of the
        # mesh answers one, and this topic does not exist.
        await producer.send(topic, b'{"text": "reply"}', headers=[("reply_to", b"no-such-topic")])
        await producer.send(topic, b'{"text": "before"}')
        await producer.send(topic, b'{"text": "tcvn3"}', headers=[("x-unit", "Qu\xb8n 1".encode("latin-1"))])
        await producer.send(topic, b'{"text": "empty"}', headers=[("x-unit", None)])
        await producer.send(topic, b'{"text": "after"}', headers=[("x-unit", "Quận 3".encode())])
        await producer.flush()
        await broker.start()
        await eventually(lambda: "after" in taken, 60, "the batch to be read")
        await caught_up(kafka_bootstrap, f"{topic}-group", [topic], timeout=30)  # committed, not read again
        assert sorted(taken) == ["after", "before", "empty", "reply", "tcvn3"]
        assert seen_headers[-1] == "Quận 3".encode() and "Qu\ufffdn 1".encode() in seen_headers
    finally:
        await producer.stop()
        await broker.stop()
