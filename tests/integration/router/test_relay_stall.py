"""A stored event the relay cannot read, on the real PostgreSQL and Kafka: the relay holds there,
never skipping it (consumers take only events newer than what they have, so a skipped event is
lost for good), and says so until a router that reads it leads."""

import asyncio
import json

from services.router.api import failing_for
from services.router.outbox import Relay
from tests.integration.router.test_event_store import _published, settings, stored_cases  # noqa: F401 - a fixture
from tests.support.mesh import eventually

NEWER = "services.router.domain:Case.Transferred"  # a kind only a newer router knows


async def test_an_event_the_relay_cannot_read_holds_it_there_and_says_so_until_it_can(settings, kafka_bootstrap):
    async with stored_cases(settings, kafka_bootstrap, 3) as s:
        table = s.desk.recorder.events_table_name
        held = s.stored[len(s.stored) // 2]
        known = await s.conn.fetchval(f"SELECT topic FROM {table} WHERE notification_id = $1", held.id)
        await s.conn.execute(f"UPDATE {table} SET topic = $1 WHERE notification_id = $2", NEWER, held.id)
        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        running = asyncio.create_task(relay.run())
        try:
            await eventually(lambda: relay.failure == "TopicError", 30, what="the relay to show its failure")
            assert failing_for(relay) > 0
            await asyncio.sleep(2.5)  # it tries again and again, and holds there each time
            assert await s.conn.fetchval("SELECT position FROM outbox_position") < held.id
            assert failing_for(relay) >= 2

            # A router that reads it (here: the event as this one knows it) takes it on from there.
            await s.conn.execute(f"UPDATE {table} SET topic = $1 WHERE notification_id = $2", known, held.id)
            last = s.stored[-1].id
            await eventually(lambda: relay.position == last and relay.failing_since is None, 30,
                             what="the relay to get past it")
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    published = {(r.key.decode(), json.loads(r.value)["version"]) for r in await _published(kafka_bootstrap, s.ids)}
    assert published == {(str(n.originator_id), n.originator_version) for n in s.stored}  # the held one too
