"""The deadline timers and the units' answers on the real Kafka and PostgreSQL: a deadline is
escalated only once every answer on ``unit.responses`` before it has been applied by the group
that reads them, whichever router instance that is."""

import asyncio
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts import topics
from contracts.postgres import create_pool
from services.router.application import Workload
from services.router.outbox import Relay
from services.router.timers import AnswersApplied, Timers
from tests.integration.router.test_event_store import (LONG_AGO, escalations_of, relay_all, settings,  # noqa: F401
                                                       stored_cases)
from tests.support.kafka import response, send


async def commit_at_the_ends(bootstrap: str, group: str) -> None:
    """As the group does once it has read and applied everything on the topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topics.UNIT_RESPONSES])
    finally:
        await admin.close()
    partitions = [TopicPartition(topics.UNIT_RESPONSES, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    consumer.assign(partitions)
    try:
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: end for tp, end in ends.items()})
    finally:
        await consumer.stop()


async def test_a_deadline_waits_until_the_answers_sent_before_it_are_applied(settings, kafka_bootstrap):
    """A router back from a stop ran its timers before its group had read the answers queued
    meanwhile: a unit that had resolved its case in time had its unit head told it was late, and
    the citizen was apologised to, then given the result."""
    async with stored_cases(settings, kafka_bootstrap, 2, at=LONG_AGO) as s:
        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        await relay_all(relay, s.conn)
        answered, silent = sorted(uuid.UUID(i) for i in s.ids)
        case = await asyncio.to_thread(s.desk.repository.get, answered)
        resolved = response(str(answered), case.unit["id"], "resolve", "Đã trao 20 kg gạo.")
        await send(kafka_bootstrap, resolved)  # in time, while no router read the answers
        group = f"it-answers-{uuid.uuid4()}"  # a group that has read none of the topic yet
        answers = AnswersApplied(kafka_bootstrap, group)
        pool = await create_pool(settings.dsn(), min_size=1, max_size=2)
        try:
            timers, first_read = Timers(s.desk, pool, 60, answers), datetime.now(UTC)
            for _ in range(3):
                assert await timers.tick() == 0
            assert answers.behind(datetime.now(UTC)) > 0 and answers.until is None
            for case_id in (answered, silent):
                assert [n for n, _ in await escalations_of(s.desk, case_id) if n == "Escalated"] == []

            # The group reads the answers, applies them, and commits.
            await asyncio.to_thread(s.desk.answer, [resolved], datetime.now(UTC), Workload())
            await commit_at_the_ends(kafka_bootstrap, group)
            for _ in range(50):
                await timers.tick()
                if timers.escalated:
                    break
                await asyncio.sleep(0.1)
            await relay_all(relay, s.conn)
            assert answers.until >= first_read, "no longer held once the answers are applied"
        finally:
            await pool.close()
            await answers.close()
        heard = {c: [step for n, step in await escalations_of(s.desk, c) if n == "Escalated"]
                 for c in (answered, silent)}
    assert heard[answered] == [], "the unit that answered in time is not escalated"
    assert "reach/unit_head" in heard[silent], "the unit that never answered is"
