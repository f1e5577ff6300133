"""A stored event the relay cannot read, on the real PostgreSQL and Kafka: the relay holds there,
never skipping it (consumers take only events newer than what they have, so a skipped event is
lost for good), and says so until a router that reads it leads; so does one with a field it
does not know."""

import asyncio
import json
import time

import pytest

from services.router.api import failing_for
from services.router.outbox import Relay
from tests.integration.router.test_event_store import _published, settings, stored_cases  # noqa: F401 - a fixture
from tests.support.mesh import eventually

# A kind only a newer router knows; a field only a newer router knows, in an event of a known kind.
NEWER_KIND = "UPDATE {table} SET topic = 'services.router.domain:Case.Transferred' WHERE notification_id = $1"
NEWER_FIELD = ("UPDATE {table} SET state = convert_to(jsonb_set(convert_from(state, 'UTF8')::jsonb,"
               " '{{payload,transferred_from}}', '\"hcm-q-1\"')::text, 'UTF8') WHERE notification_id = $1")


@pytest.mark.parametrize(("newer", "failure"), [(NEWER_KIND, "TopicError"), (NEWER_FIELD, "NewerThanThisRouter")],
                         ids=["kind", "field"])
async def test_an_event_the_relay_cannot_read_holds_it_there_and_says_so_until_it_can(settings, kafka_bootstrap,
                                                                                     newer, failure):
    """Two routers, as the manifests run: the lead passes from one failing router to the other every
    second or so, and each must go on showing the stall from when it first met it. An event with a
    field this router does not know (a newer router saved it, in a rolling upgrade) is held too:
    published as this router reads it, the field would be gone from ``case.events`` for good."""
    async with stored_cases(settings, kafka_bootstrap, 3) as s:
        table = s.desk.recorder.events_table_name
        held = s.stored[len(s.stored) // 2]
        known = await s.conn.fetchrow(f"SELECT topic, state FROM {table} WHERE notification_id = $1", held.id)
        await s.conn.execute(newer.format(table=table), held.id)
        relays = [Relay(s.desk, s.producer, settings.dsn(), 0.05) for _ in range(2)]
        running = [asyncio.create_task(relay.run()) for relay in relays]
        try:
            await eventually(lambda: all(r.failure == failure for r in relays), 30,
                             what="both routers to have met the failure")
            await asyncio.sleep(2.5)  # they try again and again, in turn, and hold there each time
            assert await s.conn.fetchval("SELECT position FROM outbox_position") < held.id
            assert all(failing_for(r) >= 2.5 for r in relays), [failing_for(r) for r in relays]
            assert all(r.failure == failure for r in relays)

            # A router that reads it (here: the event as this one knows it) takes it on from there.
            await s.conn.execute(f"UPDATE {table} SET topic = $1, state = $2 WHERE notification_id = $3",
                                 known["topic"], known["state"], held.id)
            last = s.stored[-1].id
            await eventually(lambda: max(r.position for r in relays) == last, 30, what="the relay to get past it")
            await eventually(lambda: all(r.failing_since is None for r in relays), 30,
                             what="neither router to show a failure")
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
    published = {(r.key.decode(), json.loads(r.value)["version"]) for r in await _published(kafka_bootstrap, s.ids)}
    assert published == {(str(n.originator_id), n.originator_version) for n in s.stored}  # the held one too


async def test_a_failure_met_with_nothing_left_to_publish_is_over_once_another_router_leads(settings, kafka_bootstrap):
    """A leader whose connection dropped on a quiet night (nothing to publish) became a standby
    that showed the failure, growing, until the next case was relayed: hours of a false alert."""
    async with stored_cases(settings, kafka_bootstrap, 2) as s:
        leader = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        leading = asyncio.create_task(leader.run())
        failed = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        standing_by = None
        try:
            await eventually(lambda: leader.position == s.stored[-1].id, 30,
                             what="the leader to publish everything")
            await asyncio.sleep(0.5)  # its position recorded
            # As a leader whose connection had just dropped leaves itself: failed where all was published.
            failed.failing_since, failed.failure = time.time(), "ConnectionDoesNotExistError"
            failed.stuck_at = s.stored[-1].id
            standing_by = asyncio.create_task(failed.run())
            await eventually(lambda: failed.failing_since is None, 30, what="the standby to see nothing is held up")
            assert not failed.is_leader and failing_for(failed) == 0
        finally:
            for task in (leading, standing_by):
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for t in (leading, standing_by) if t), return_exceptions=True)
