"""The whole service on the suite's Kafka: what the router and the notifier publish shows up once,
the audit trail follows it live (Server-Sent Events), and checkpoints are published for keeping."""

import json
import uuid

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts import topics
from contracts.events import AuditCheckpoint
from tests.integration.oversight.support import auth, drop_database, publish, serve, settings_for, wait_for
from tests.support.databases import fresh_database
from tests.support.kafka import caught_up, send
from tests.support.mesh import eventually
from tests.unit.oversight.story import CaseStory


def mine(timeline, story):
    """The timeline's deliveries that the story made (other meshes on these topics notify too)."""
    ours = {str(d.delivery_id) for d in story.deliveries}
    return [d for d in timeline["deliveries"] if d["delivery_id"] in ours]


def shown(live, story):
    def check():
        answer = live.get(f"/v1/cases/{story.case_id}/timeline")
        timeline = answer.json() if answer.status_code == 200 else None
        done = timeline and len(timeline["events"]) == len(story.events) and \
            len(mine(timeline, story)) == len(story.deliveries)
        return timeline if done else None
    return wait_for(check, 60, what=f"case {story.tracking_code} fully projected")


async def test_published_events_show_up_once_even_when_published_again(live, kafka_bootstrap):
    story = CaseStory().opened().routed().assigned().accepted().resolved()
    await publish(kafka_bootstrap, [story])
    shown(live, story)
    await publish(kafka_bootstrap, [story])  # the router's outbox re-publishing after a crash
    await caught_up(kafka_bootstrap, live.settings.group_id, [topics.CASE_EVENTS, topics.NOTIFY_DELIVERIES])
    timeline = live.get(f"/v1/cases/{story.case_id}/timeline").json()
    assert [e["version"] for e in timeline["events"]] == [1, 2, 3, 4, 5] and len(mine(timeline, story)) == 2
    conn = await asyncpg.connect(live.settings.dsn())
    try:
        audited = await conn.fetchval("SELECT count(*) FROM audit_log WHERE event_id = ANY($1::uuid[])",
                                      [b["event_id"] for b in story.bodies()])
        assert audited == 7
    finally:
        await conn.close()
    assert live.get(f"/v1/cases/{story.case_id}").json()["status"] == "resolved"


def opened_but(**changes) -> bytes:
    """A CaseOpened as the router writes it, changed; a key set to None is left out."""
    body = CaseStory().opened().bodies()[0] | changes
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.mark.parametrize("garbage", [
    json.dumps({"event_type": "CaseOpened", "note": f"not a case {uuid.uuid4()}"}).encode(),
    # Each of these passed the contract and then failed in the projection, the batch read again for good.
    opened_but(occurred_at=None),
    opened_but(version="1"),
    opened_but(confidence="NaN").replace(b'"NaN"', b"NaN"),
    opened_but(occurred_at="2026-12-05T10:00:00z"),  # Python 3.11 does not read the small z
    opened_but(event_id=f"{{{uuid.uuid4()}}}"),  # nor asyncpg an id in braces
    opened_but(version=2**31),
], ids=["not a case", "no occurred_at", "version as text", "NaN", "small z", "id in braces", "version past int4"])
async def test_an_unreadable_record_is_dead_lettered_and_the_next_one_projected(garbage, live, kafka_bootstrap):
    dlq = AIOKafkaConsumer(topics.dlq(topics.CASE_EVENTS), bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest", group_id=f"dlq-watch-{uuid.uuid4()}")
    await dlq.start()
    try:
        await send(kafka_bootstrap, garbage, topic=topics.CASE_EVENTS)
        story = CaseStory().opened()
        await publish(kafka_bootstrap, [story])
        shown(live, story)
        found = None
        while found is None:
            fetched = await dlq.getmany(timeout_ms=20_000)
            assert fetched, "nothing was dead-lettered"
            found = next((r for rs in fetched.values() for r in rs if r.value == garbage), None)
        assert dict(found.headers)["x-source-topic"] == topics.CASE_EVENTS.encode()
    finally:
        await dlq.stop()


async def test_a_delivery_under_a_case_events_id_is_dead_lettered_and_what_follows_projected(live, kafka_bootstrap):
    dlq = AIOKafkaConsumer(topics.dlq(topics.NOTIFY_DELIVERIES), bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest", group_id=f"dlq-watch-{uuid.uuid4()}")
    await dlq.start()
    try:
        first = CaseStory().opened().routed()
        await publish(kafka_bootstrap, [first])
        shown(live, first)
        clashing = CaseStory().opened().delivered("handler", "email")
        clashing.deliveries[0] = clashing.deliveries[0].model_copy(update={"event_id": first.events[0].event_id})
        after = CaseStory().opened().routed()
        await publish(kafka_bootstrap, [clashing, after])
        shown(live, after)
        found = None
        while found is None:
            fetched = await dlq.getmany(timeout_ms=20_000)
            assert fetched, "nothing was dead-lettered"
            found = next((r for rs in fetched.values() for r in rs if r.key == str(clashing.case_id).encode()), None)
        assert "already a case event's" in dict(found.headers)["x-error"].decode()
        assert live.get("/v1/audit/verify", role="council").json()["ok"]
    finally:
        await dlq.stop()


def sse_events(lines, done):
    """Read Server-Sent Events until ``done(records)``; (id, record) pairs. Other tests' events come
    through the same topics, so the stream carries theirs as well."""
    got, event_id = [], None
    for line in lines:
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            got.append((event_id, json.loads(line[6:])))
            if done(got):
                return got
    raise AssertionError(f"the stream ended after {len(got)} records")


async def test_the_audit_trail_is_followed_live_and_resumed_from_the_last_event_id(live, kafka_bootstrap):
    head = live.get("/healthz").json()["audit_head"]
    story = CaseStory().opened().routed().assigned()
    headers = {**auth("council"), "Accept": "text/event-stream"}
    with httpx.stream("GET", f"{live.url}/v1/audit/events?after={head}", headers=headers,
                      timeout=httpx.Timeout(10, read=60)) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 2000"
        await publish(kafka_bootstrap, [story])
        mine = {str(b["event_id"]) for b in story.bodies()}
        received = sse_events(lines, lambda got: mine <= {r["event_id"] for _, r in got})
    seqs = [r["seq"] for _, r in received]
    assert [i for i, _ in received] == seqs == list(range(head + 1, head + 1 + len(seqs)))
    with httpx.stream("GET", f"{live.url}/v1/audit/events?follow=true", timeout=httpx.Timeout(10, read=60),
                      headers={**auth("front"), "Last-Event-ID": str(head + 2)}) as stream:
        resumed = sse_events(stream.iter_lines(), lambda got: len(got) == 2)
    assert [r for _, r in resumed] == [r for _, r in received[2:4]]


async def test_a_head_above_the_trail_does_not_wake_followers_again_and_again(live, kafka_bootstrap):
    """A notice of a head the trail does not have (a database restored from a backup under a
    running oversight, or anyone who may connect sending one) woke each follower at once, for good:
    keep-alives by the thousand, each taking a reader's connection for nothing."""
    head = live.get("/healthz").json()["audit_head"]
    headers = {**auth("council"), "Accept": "text/event-stream"}
    with httpx.stream("GET", f"{live.url}/v1/audit/events?after={head}", headers=headers,
                      timeout=httpx.Timeout(10, read=60)) as stream:
        lines = stream.iter_lines()
        assert next(lines) == "retry: 2000"
        conn = await asyncpg.connect(live.settings.dsn())
        try:
            await conn.execute("SELECT pg_notify('oversight_audit', '999999999')")
        finally:
            await conn.close()
        story = CaseStory().opened().routed()
        await publish(kafka_bootstrap, [story])
        mine = {str(b["event_id"]) for b in story.bodies()}
        seen, keep_alives = set(), 0
        for line in lines:  # the story's records still come, live
            keep_alives += line == ": keep-alive"
            if line.startswith("data: "):
                seen.add(json.loads(line[6:])["event_id"])
            if mine <= seen:
                break
    # A wake per notice or per five-second look; the story's records were a few seconds away.
    assert keep_alives < 50, keep_alives


async def test_checkpoints_are_published_for_keeping(pg_admin_dsn, pg_port, kafka_bootstrap):
    topic = f"audit.checkpoints.test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    database = await fresh_database(pg_admin_dsn, "oversight_test")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                group_id=f"keeper-{uuid.uuid4()}")
    try:
        settings = settings_for(database, pg_port, kafka_bootstrap, checkpoint_topic=topic)
        with serve(settings) as running:
            await consumer.start()
            kept: dict[int, str] = {}
            while not kept:
                fetched = await consumer.getmany(timeout_ms=30_000)
                assert fetched, "no checkpoint was published"
                for record in (r for rs in fetched.values() for r in rs):
                    checkpoint = AuditCheckpoint.model_validate_json(record.value)
                    kept[checkpoint.seq] = checkpoint.head_hash
            seq, head_hash = min(kept.items())
            report = running.get(f"/v1/audit/verify?seq={seq}&hash={head_hash}", role="front").json()
            assert report["checkpoint"]["matches"] and report["ok"]

            def marked():
                # Kafka's acknowledgement comes before the row is marked, so a keeper may read the
                # record a moment before the API says it was published.
                stored = running.get("/v1/audit/checkpoints", role="front").json()["checkpoints"]
                return {c["seq"]: c["hash"] for c in stored if c["published"]}.items() >= kept.items()
            await eventually(marked, 30, what="the received checkpoints shown as published")
    finally:
        await consumer.stop()
        await admin.delete_topics([topic])
        await admin.close()
        await drop_database(pg_admin_dsn, database)
