"""A stored event the relay cannot publish, on the real PostgreSQL and Kafka: it is dead-lettered
with its place in the store, and every other case goes on being published."""

import json

import orjson

from contracts import topics
from services.router.outbox import Relay
from tests.integration.router.test_event_store import _published, settings, stored_cases  # noqa: F401
from tests.support.kafka import read_to_end


async def _spoil(s, notification_id: int, *, topic: str | None = None, phone: int | None = None) -> None:
    """Change one stored event as an older or newer version of the router might have written it."""
    table = s.desk.recorder.events_table_name
    if topic is not None:
        await s.conn.execute(f"UPDATE {table} SET topic = $1 WHERE notification_id = $2", topic, notification_id)
    if phone is not None:
        state = orjson.loads(await s.conn.fetchval(f"SELECT state FROM {table} WHERE notification_id = $1",
                                                   notification_id))
        state["payload"]["citizen"]["phone"] = phone
        await s.conn.execute(f"UPDATE {table} SET state = $1 WHERE notification_id = $2", orjson.dumps(state),
                             notification_id)


async def test_an_event_the_relay_cannot_read_is_dead_lettered_and_the_other_cases_published(settings, kafka_bootstrap):
    async with stored_cases(settings, kafka_bootstrap, 3) as s:
        opened = [n for n in s.stored if n.originator_version == 1]
        renamed, spoilt = opened[0], opened[1]
        await _spoil(s, renamed.id, topic="services.router.domain:Case.Renamed")
        await _spoil(s, spoilt.id, phone=84903123456)

        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        while await relay._relay_once(s.conn):
            pass
        await relay._recorded()
        assert await s.conn.fetchval("SELECT position FROM outbox_position") == s.stored[-1].id
        assert relay.dead_lettered == 2

    published = await _published(kafka_bootstrap, s.ids)
    others = [n for n in s.stored if n.id not in (renamed.id, spoilt.id)]
    assert sorted((r.key.decode(), json.loads(r.value)["version"]) for r in published) == sorted(
        (str(n.originator_id), n.originator_version) for n in others)

    letters = [r for r in await read_to_end(kafka_bootstrap, topics.dlq(topics.CASE_EVENTS))
               if r.key.decode() in s.ids]
    assert sorted(json.loads(r.value)["notification_id"] for r in letters) == sorted([renamed.id, spoilt.id])
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        body = json.loads(letter.value)
        assert headers["x-source-notification"] == str(body["notification_id"])
        assert body["case_id"] == letter.key.decode() and body["version"] == 1
        if body["notification_id"] == spoilt.id:
            assert headers["x-error-type"] == "ValidationError" and "citizen.phone" in headers["x-error"]
            # The error says where, not what: the citizen's number stays in the store.
            assert "903123456" not in letter.value.decode() + "".join(headers.values())
        else:
            assert "Case.Renamed" in body["stored_topic"]
