"""The bare pipe: the same messages through Kafka and into PostgreSQL with no logic at all —
aiokafka produce (acks=all) → consume → asyncpg COPY. What the mesh is measured against."""

import asyncio
import random
import time
import uuid

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from common import ADMIN_DSN, KAFKA, drop_database, fresh_database, web_request

from contracts import topics


async def bare_pipe(n: int) -> float:
    """Messages per second from the first send to the last row committed."""
    rng = random.Random(7)
    payloads = [(str(uuid.uuid4()).encode(), str(web_request(i, rng)).encode()) for i in range(n)]
    database = await fresh_database("bench_pipe")
    topic = topics.dlq(topics.INTAKE_REQUESTS)  # an existing topic, read from the end
    conn = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}")
    await conn.execute("CREATE TABLE pipe (key text, value bytea)")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, group_id=f"pipe-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="latest", enable_auto_commit=False)
    await consumer.start()
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=2,
                                max_batch_size=512 * 1024)
    await producer.start()

    async def drain() -> None:
        got = 0
        while got < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            rows = [(r.key.decode(), r.value) for rs in batch.values() for r in rs]
            if rows:
                await conn.copy_records_to_table("pipe", records=rows)
                await consumer.commit()
                got += len(rows)

    started = time.perf_counter()
    draining = asyncio.create_task(drain())
    sends = [await producer.send(topic, value, key=key) for key, value in payloads]
    await asyncio.gather(*sends)
    await draining
    took = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()
    await conn.close()
    await drop_database(database)
    return n / took
