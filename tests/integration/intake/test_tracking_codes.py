"""Tracking codes are unique: a code another request holds is never given again, however the odds
fall, and a request keeps the code it was given."""

import asyncio
import logging
import uuid

import asyncpg
import httpx
import pytest

from contracts import ids
from tests.integration.intake.harness import TRACKING_CODE_KEY
from tests.integration.intake.test_web import post

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
KEY = TRACKING_CODE_KEY.encode()

# intake_receipts as intake made it before its codes were kept unique.
RECEIPTS_BEFORE = """
CREATE TABLE intake_receipts (
    request_id uuid PRIMARY KEY, channel text NOT NULL, tracking_code text NOT NULL, fingerprint text NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'accepted')),
    claimed_at timestamptz NOT NULL DEFAULT now(), accepted_at timestamptz);
CREATE INDEX intake_receipts_code ON intake_receipts (tracking_code);
"""


@pytest.fixture
async def database(pg_admin_dsn, intake_database):
    conn = await asyncpg.connect(pg_admin_dsn.rsplit("/", 1)[0] + "/" + intake_database)
    yield conn
    await conn.close()


async def hold(database, code: str) -> None:
    """A receipt of another, accepted request holding ``code``."""
    await database.execute("INSERT INTO intake_receipts (request_id, channel, tracking_code, fingerprint, state,"
                           " accepted_at) VALUES ($1, 'web', $2, 'another request', 'accepted', now())",
                           uuid.uuid4(), code)


async def test_knowing_a_requests_channel_key_is_not_enough_to_work_out_its_code(intake):
    key = f"web-{uuid.uuid4()}"
    request = ids.request_id("web", key)
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await post(client, intake, key=key)
    assert answer.status_code == 202
    assert answer.json()["tracking_code"] == ids.tracking_code(request, 0, KEY), "made with intake's key"
    assert answer.json()["tracking_code"] != ids.tracking_code(request), "what anyone with the channel key could make"


async def test_a_code_another_request_holds_is_not_given_again_and_a_retry_gets_the_one_given(
        intake, database, tail):
    key = f"web-{uuid.uuid4()}"
    request = ids.request_id("web", key)
    taken = ids.tracking_code(request, 0, KEY)
    await hold(database, taken)
    async with httpx.AsyncClient(timeout=15) as client:
        first = await post(client, intake, key=key)
        again = await post(client, intake, key=key)
    assert first.status_code == 202 and again.status_code == 202
    code = first.json()["tracking_code"]
    assert code != taken and ids.normalise_tracking_code(code) == code
    assert code == ids.tracking_code(request, 1, KEY), "the next code is the request's own, so it is always the same"
    assert again.json() == first.json()
    assert await database.fetchval("SELECT tracking_code FROM intake_receipts WHERE request_id = $1", request) == code
    await tail.settle()
    [event] = tail.with_ids({str(request)})
    assert event.tracking_code == code, "Kafka holds the code the citizen was given"


async def test_requests_whose_first_codes_all_collide_get_distinct_codes_on_two_instances_at_once(
        start_intake, monkeypatch, tail):
    real, shared = ids.tracking_code, uuid.uuid4()
    monkeypatch.setattr(ids, "tracking_code", lambda request, attempt=0, key=b"":
                        real(shared, 0, key) if attempt == 0 else real(request, attempt, key))
    one, two = start_intake(), start_intake()
    keys = [f"web-{uuid.uuid4()}" for _ in range(8)]
    async with httpx.AsyncClient(timeout=15) as client:
        first = await asyncio.gather(*(post(client, (one, two)[n % 2], key=key) for n, key in enumerate(keys)))
        again = await asyncio.gather(*(post(client, (two, one)[n % 2], key=key) for n, key in enumerate(keys)))
    assert [a.status_code for a in first + again] == [202] * 16, [a.text for a in first + again]
    codes = [a.json()["tracking_code"] for a in first]
    assert len(set(codes)) == 8 and all(ids.normalise_tracking_code(c) == c for c in codes)
    assert [a.json() for a in again] == [a.json() for a in first]
    await tail.settle()
    published = {str(e.request_id): e.tracking_code for e in tail.with_ids({a.json()["request_id"] for a in first})}
    assert published == {a.json()["request_id"]: a.json()["tracking_code"] for a in first}


async def test_a_database_already_holding_a_shared_code_starts_and_gives_that_code_to_nobody_else(
        start_intake, database, caplog):
    key = f"web-{uuid.uuid4()}"
    shared = ids.tracking_code(ids.request_id("web", key), 0, KEY)
    await database.execute(RECEIPTS_BEFORE)
    await hold(database, shared)
    await hold(database, shared)
    with caplog.at_level(logging.ERROR, logger="services.intake.store"):
        intake = start_intake()
    assert shared in caplog.text, "the codes already given twice are named for an operator"
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await post(client, intake, key=key)
    assert answer.status_code == 202 and answer.json()["tracking_code"] != shared
    with pytest.raises(asyncpg.UniqueViolationError):  # from now on the database holds every code once
        await hold(database, answer.json()["tracking_code"])


async def test_a_code_another_instance_is_giving_at_the_same_moment_is_not_given_twice(
        intake, database, intake_database):
    key = f"web-{uuid.uuid4()}"
    request = ids.request_id("web", key)
    taken = ids.tracking_code(request, 0, KEY)
    async with httpx.AsyncClient(timeout=15) as client:
        async with database.transaction():  # another instance's claim of that code, not committed yet
            await hold(database, taken)
            pending = asyncio.create_task(post(client, intake, key=key))
            async with asyncio.timeout(10):
                while not await database.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                                                  " AND wait_event_type = 'Lock'", intake_database):
                    await asyncio.sleep(0.05)  # intake's claim waits to see whether that code is given
        answer = await pending
    assert answer.status_code == 202, answer.text
    assert answer.json()["tracking_code"] == ids.tracking_code(request, 1, KEY)
