"""A consumer whose group stopped coordinating is restarted and reads on, instead of sitting in
the service reading nothing while the service looks healthy."""

import asyncio
import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaMessage

from contracts.messaging import (consumer_options, consuming, coordination_failure, kafka_broker, keep_consumers_reading,
                                records_of)
from tests.support.mesh import eventually


async def test_a_consumer_whose_group_stopped_coordinating_is_restarted_and_reads_on(kafka_bootstrap):
    topic, group = f"restart-{uuid.uuid4().hex[:8]}", f"restart-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()
    seen: list[bytes] = []
    broker = kafka_broker(kafka_bootstrap, client_id="restart-test")

    subscriber = broker.subscriber(topic, **consumer_options(group))

    @subscriber
    async def on_batch(_: list[bytes], message: KafkaMessage) -> None:
        seen.extend(record.value for record in records_of(message))

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await broker.start()
    await producer.start()
    watchdog = None
    try:
        await producer.send_and_wait(topic, b"before")
        await eventually(lambda: b"before" in seen, 30, "the first record")
        assert consuming(broker)

        # What a broker restart did under uvloop: an error aiokafka does not expect while it looks
        # for the group's coordinator ends the coordination for good.
        coordinator = subscriber.consumer._coordinator

        async def broken_lookup(*_, **__):
            raise RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed")

        coordinator._client.coordinator_lookup = broken_lookup
        coordinator.coordinator_dead()
        await eventually(lambda: coordination_failure(subscriber) is not None, 30, "the coordination to fail")
        assert not consuming(broker), "/healthz would still say the service consumes"
        await producer.send_and_wait(topic, b"after")
        await asyncio.sleep(3)
        assert b"after" not in seen, "the stalled consumer read on by itself: nothing to restart"

        watchdog = asyncio.create_task(keep_consumers_reading(broker, every_seconds=0.2))
        await eventually(lambda: b"after" in seen, 60, "the record sent after the failure")
        assert coordination_failure(subscriber) is None
        assert consuming(broker)
    finally:
        if watchdog:
            watchdog.cancel()
        await producer.stop()
        await broker.stop()
