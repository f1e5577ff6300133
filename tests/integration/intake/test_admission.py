"""Admission control over real HTTP, Kafka and PostgreSQL: past its limit of submissions in flight,
intake refuses at once with 503 and Retry-After, answers everything else as usual, and a refused
request retried later is accepted once."""

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest

from tests.integration.intake.test_open311 import report
from tests.integration.intake.test_web import REQUEST, post

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def waiting_on_lock(conn: asyncpg.Connection, count: int, timeout: float = 15) -> None:
    """Until ``count`` of intake's statements wait for the lock this test holds."""
    deadline = time.monotonic() + timeout
    # The activity view is read once per transaction unless its snapshot is let go.
    while await conn.execute("SELECT pg_stat_clear_snapshot()") and await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                              " AND wait_event_type = 'Lock'") < count:
        assert time.monotonic() < deadline, f"intake never had {count} submissions waiting on PostgreSQL"
        await asyncio.sleep(0.05)


async def test_past_its_limit_intake_refuses_at_once_and_the_retry_is_accepted_once(
        start_intake, intake_database, pg_admin_dsn, keys, tail):
    intake = start_intake(max_in_flight=1, retry_after_seconds=2)
    blocker = await asyncpg.connect(pg_admin_dsn.rsplit("/", 1)[0] + "/" + intake_database)
    async with httpx.AsyncClient(timeout=30) as client:
        # A submission held in flight: its receipt cannot be written while the table is locked. (One:
        # a second would wait behind the first's claim inside intake, where this test cannot see it.)
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE intake_receipts IN ACCESS EXCLUSIVE MODE")
        held = [asyncio.create_task(post(client, intake, {**REQUEST, "phone": "0903 000 001"}))]
        await waiting_on_lock(blocker, 1)

        refused_key = str(uuid.uuid4())
        # The table stays locked until after these: a refusal that waited behind the submission in
        # flight would not come back at all.
        refused = await post(client, intake, {**REQUEST, "phone": "0903 000 003"}, key=refused_key)
        open311 = await client.post(intake.url + "/open311/v2/requests.json", data=report(keys))
        health = await client.get(intake.url + "/healthz")
        categories = await client.get(intake.url + "/v1/categories")
        await lock.rollback()
        accepted = await asyncio.gather(*held)

        retried = await post(client, intake, {**REQUEST, "phone": "0903 000 003"}, key=refused_key)
    await blocker.close()

    assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
    assert refused.json()["errors"][0]["reason_en"].startswith("Too many requests in progress")
    assert refused.json()["errors"][0]["reason_vi"]
    assert open311.status_code == 503 and open311.json()[0]["code"] == 503, "Open311 gets GeoReport's error list"
    assert health.status_code == 200 and categories.status_code == 200, "only submissions are limited"
    assert [a.status_code for a in accepted] == [202], "the submission in flight finishes normally"
    assert retried.status_code == 202

    await tail.settle()
    request_ids = {a.json()["request_id"] for a in [*accepted, retried]}
    published = tail.with_ids(request_ids)
    assert sorted(str(r.request_id) for r in published) == sorted(request_ids), "each accepted request once"
    assert {r.citizen.phone for r in published} == {"+84903000001", "+84903000003"}


async def test_connections_that_send_headers_and_then_nothing_take_no_place_in_flight(start_intake):
    """A place in flight was taken before the body was read, and the body read had no end: a few
    connections sending headers and then nothing (a stalled upload, or someone doing it on purpose)
    took every place, and every channel's submissions were refused with 503 while they stayed open."""
    intake = start_intake(max_in_flight=2)
    host, port = intake.url.removeprefix("http://").split(":")
    stalled = []
    try:
        for _ in range(4):
            _, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"POST /v1/channels/web/requests HTTP/1.1\r\nHost: intake\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            await writer.drain()
            stalled.append(writer)
        await asyncio.sleep(1)  # their headers are read, and their bodies awaited
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await post(client, intake, {**REQUEST, "phone": "0903 000 007"})
        assert answer.status_code == 202, answer.text
    finally:
        for writer in stalled:
            writer.close()
