"""Oversight's database restored from a backup, on the suite's real Kafka and PostgreSQL: the read
models stand behind the consumer group's committed offsets, and what was published in between is
read again from Kafka, not skipped."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from contracts import topics
from contracts.messaging import partition_for
from tests.integration.oversight.support import drop_database, publish, serve, settings_for, wait_for
from tests.support.databases import fresh_database
from tests.support.kafka import caught_up, partitions_of
from tests.support.mesh import park_group_at_end
from tests.unit.oversight.story import CaseStory

TOPICS = [topics.CASE_EVENTS, topics.NOTIFY_DELIVERIES]


def projected(running, story) -> None:
    wait_for(lambda: running.get(f"/v1/cases/{story.case_id}").status_code == 200, 120,
             what=f"case {story.tracking_code} in the read models")


@asynccontextmanager
async def restored_after(pg_admin_dsn: str, pg_port: int, kafka_bootstrap: str, group: str, before: CaseStory,
                         after: CaseStory) -> AsyncIterator[Any]:
    """Oversight projects ``before`` into a database, which is backed up; it then projects ``after``
    and the group commits past it; the backup is restored and served, which this yields."""
    database = await fresh_database(pg_admin_dsn, "oversight_restored")
    backup = f"{database}_backup"
    try:
        await publish(kafka_bootstrap, [before])
        with serve(settings_for(database, pg_port, kafka_bootstrap, group_id=group)) as running:
            projected(running, before)
            await caught_up(kafka_bootstrap, group, TOPICS)
        admin = await asyncpg.connect(pg_admin_dsn)
        try:
            await admin.execute(f'CREATE DATABASE "{backup}" TEMPLATE "{database}" OWNER mesh')
        finally:
            await admin.close()

        await publish(kafka_bootstrap, [after])
        with serve(settings_for(database, pg_port, kafka_bootstrap, group_id=group)) as running:
            projected(running, after)
            await caught_up(kafka_bootstrap, group, TOPICS)  # the group's offsets are past it now

        with serve(settings_for(backup, pg_port, kafka_bootstrap, group_id=group)) as restored:
            yield restored
    finally:
        await drop_database(pg_admin_dsn, backup)
        await drop_database(pg_admin_dsn, database)


async def test_a_database_restored_from_a_backup_reads_again_what_came_after_it(pg_admin_dsn, pg_port,
                                                                               kafka_bootstrap):
    """Before, each partition was read from the group's committed offset: the cases published after
    the backup was taken were never projected or audited, and verify still said the chain was sound."""
    group = f"oversight-restored-{uuid.uuid4().hex[:8]}"
    after = CaseStory().opened().routed().assigned()
    async with restored_after(pg_admin_dsn, pg_port, kafka_bootstrap, group, CaseStory().opened().routed(),
                              after) as restored:
        projected(restored, after)
        timeline = restored.get(f"/v1/cases/{after.case_id}/timeline").json()
        assert [e["version"] for e in timeline["events"]] == [1, 2, 3]
        assert restored.get("/v1/audit/verify").json()["ok"] is True


async def test_a_partition_that_had_nothing_when_the_backup_was_taken_is_read_again_from_where_it_began(
        pg_admin_dsn, pg_port, kafka_bootstrap):
    """A partition the projection had been given but had read nothing from had no position in the
    read models. Restored from a backup taken then, it was read on from the group's committed
    offset: the case published there after the backup was never projected, never audited, and
    verify said the chain was sound."""
    group = f"oversight-restored-{uuid.uuid4().hex[:8]}"
    await park_group_at_end(kafka_bootstrap, group, *TOPICS)  # a deployment's first day: nothing read yet
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    try:
        partitions = sorted(await partitions_of(consumer))
    finally:
        await consumer.stop()

    def partition(story: CaseStory) -> int:
        return partition_for(str(story.case_id).encode(), partitions, partitions)

    before = CaseStory().opened().routed()
    after = next(story for story in (CaseStory().opened().routed().assigned() for _ in range(200))
                 if partition(story) != partition(before))
    async with restored_after(pg_admin_dsn, pg_port, kafka_bootstrap, group, before, after) as restored:
        projected(restored, after)
        assert restored.get("/v1/audit/verify").json()["ok"] is True
