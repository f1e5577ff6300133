"""A claim left pending by a crash, on the real PostgreSQL: the request's retry takes it over, and
an instance giving up its own claim late never undoes another's."""

import asyncio
import uuid

import pytest

from contracts import ids
from services.intake.store import Claim, Limit, Receipts, open_pool

pytestmark = pytest.mark.postgres
STALE = 0.3  # seconds: intake gives three times its publish time-out


@pytest.fixture
async def pool(pg_admin_dsn, intake_database):
    pool = await open_pool(pg_admin_dsn.rsplit("/", 1)[0] + "/" + intake_database, 4)
    yield pool
    await pool.close()


async def test_a_crashed_claim_is_taken_over_by_a_retry_that_differs_from_it(pool):
    """An operator's call entered again after intake died mid-publish: a colleague's retyping (the
    fingerprint holds who took it) was refused as another request's, for good, and the call was
    never a case."""
    receipts = Receipts(pool, STALE, b"key")
    request = ids.request_id("phone", f"call-{uuid.uuid4()}")
    first = await receipts.claim(request, "phone", "as operator 17 typed it")
    assert first.state == "ours"  # ... and intake dies before it publishes
    assert (await receipts.claim(request, "phone", "as operator 42 typed it")).state == "in_progress"
    await asyncio.sleep(STALE + 0.1)
    again = await receipts.claim(request, "phone", "as operator 42 typed it")
    assert again.state == "ours" and again.tracking_code == first.tracking_code  # ... and intake dies again
    await asyncio.sleep(STALE + 0.1)
    third = await receipts.claim(request, "phone", "as operator 9 typed it")
    assert third.state == "ours" and third.tracking_code == first.tracking_code
    await receipts.accept(request)
    # Any may be what Kafka holds: the router keeps the copy that reached it first. A retry of any
    # is answered with the request's code; anything else is another request's key.
    for retried in ("as operator 9 typed it", "as operator 42 typed it", "as operator 17 typed it"):
        assert await receipts.claim(request, "phone", retried) == Claim("accepted", tracking_code=first.tracking_code)
    assert (await receipts.claim(request, "phone", "another call")).state == "conflict"


async def test_giving_up_a_claim_late_leaves_the_claim_that_took_it_over(pool):
    """Instance A's publish ran past the claim's time; B took the claim over and published. A's
    release, coming after, deleted B's claim: B's acceptance then recorded nothing, the tracking
    code was unknown to the status lookup, and the sender's count was given back for B's request."""
    a, b = Receipts(pool, STALE, b"key"), Receipts(pool, STALE, b"key")
    limit = Limit(f"web:{uuid.uuid4()}", requests=10, window_seconds=600)
    request = ids.request_id("web", f"form-{uuid.uuid4()}")
    mine = await a.claim(request, "web", "the form", limit)
    await asyncio.sleep(STALE + 0.1)
    theirs = await b.claim(request, "web", "the form", limit)
    assert theirs.state == "ours"
    await a.release(request, limit, mine)  # A's publish failed at last
    await b.accept(request)
    assert await b.known(theirs.tracking_code), "B's request is on Kafka: its code must be found"
    hits = await pool.fetchval("SELECT sum(hits) FROM intake_rate_windows WHERE sender = $1", limit.sender)
    assert hits == 2, "each claim counted once; B's count is not given back"


async def test_a_request_an_upgraded_intake_took_is_known_to_an_older_one_and_back(pool):
    """Intakes hash a request two ways since its fingerprint left out what is at its defaults: a
    retry reaching an older instance (a rolling upgrade, a rollback) was refused as another's."""
    receipts = Receipts(pool, STALE, b"key")
    newer = ids.request_id("web", f"form-{uuid.uuid4()}")
    assert (await receipts.claim(newer, "web", "without defaults", old_fingerprint="every field")).state == "ours"
    await receipts.accept(newer)
    assert (await receipts.claim(newer, "web", "every field")).state == "accepted", "as an older intake asks"
    older = ids.request_id("web", f"form-{uuid.uuid4()}")
    assert (await receipts.claim(older, "web", "every field")).state == "ours"  # as an older intake made it
    await receipts.accept(older)
    assert (await receipts.claim(older, "web", "without defaults", old_fingerprint="every field")).state == "accepted"
    other = await receipts.claim(older, "web", "other content", old_fingerprint="other, every field")
    assert other.state == "conflict"
