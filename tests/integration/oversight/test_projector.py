"""The projector on real PostgreSQL: exactly once in effect, whatever is read again, and one sound
chain when two instances project at the same time."""

import asyncio

import asyncpg
import pytest

from contracts import topics
from services.oversight.projector import Projector
from services.oversight.store import migrate
from services.oversight.verify import verify
from tests.integration.oversight.support import AUDIT_KEY, Position, drop_database
from tests.support.databases import fresh_database
from tests.unit.oversight.story import CaseStory


@pytest.fixture
async def pool(pg_admin_dsn, pg_port):
    database = await fresh_database(pg_admin_dsn, "oversight_projector")
    dsn = f"postgresql://mesh@127.0.0.1:{pg_port}/{database}"
    conn = await asyncpg.connect(dsn)
    await migrate(conn, "oversight_reader")
    await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()
    await drop_database(pg_admin_dsn, database)


def batch(stories, partition=0, first_offset=0):
    bodies = [b for s in stories for b in s.bodies()]
    positions = [Position(topics.NOTIFY_DELIVERIES if b["event_type"].startswith("Notification") else topics.CASE_EVENTS,
                          partition, first_offset + i) for i, b in enumerate(bodies)]
    return positions, bodies


async def counts(pool):
    return dict(await pool.fetchrow(
        "SELECT (SELECT count(*) FROM cases) AS cases, (SELECT count(*) FROM case_events) AS events,"
        " (SELECT count(*) FROM deliveries) AS deliveries, (SELECT seq FROM audit_head) AS audited"))


async def test_a_batch_read_again_changes_nothing(pool):
    projector = Projector(pool, audit_key=AUDIT_KEY.encode())
    stories = [CaseStory().opened().routed().assigned().resolved() for _ in range(20)]
    positions, bodies = batch(stories)
    assert await projector.apply(positions, bodies) == len(bodies)
    before = await counts(pool)
    assert before == {"cases": 20, "events": 80, "deliveries": 40, "audited": 120}
    assert await projector.apply(positions, bodies) == 0  # a redelivery after a crash before Kafka's commit
    assert await counts(pool) == before


async def test_an_outbox_republish_at_a_new_offset_is_recognised_by_its_event_id(pool):
    projector = Projector(pool)
    story = CaseStory().opened().routed()
    await projector.apply(*batch([story]))
    positions, bodies = batch([story], first_offset=100)
    assert await projector.apply(positions + positions[:1], bodies + bodies[:1]) == 0
    assert (await counts(pool))["audited"] == 2


async def test_an_unreadable_record_counts_as_read_and_the_rest_of_the_batch_goes_on(pool):
    projector = Projector(pool)
    positions, bodies = batch([CaseStory().opened(), CaseStory().opened()])
    bodies[0] = None  # dead-lettered by the handler
    assert await projector.apply(positions, bodies) == 1
    offsets = await pool.fetchval("SELECT next_offset FROM consumer_offsets WHERE topic = $1", topics.CASE_EVENTS)
    assert offsets == 2


@pytest.mark.parametrize("arrival", ["case event first", "delivery first", "in a later batch", "both at once"])
async def test_a_delivery_under_a_case_events_id_is_set_aside_and_the_rest_projected(pool, arrival):
    """The audit trail files an event id once. A delivery record published under a case event's id
    (a notifier's bug, a hostile producer) failed its batch at every reading: the projection stopped
    there for good. In one batch, the later of the two was dropped without a word, the case event
    too when the delivery came first (batches follow partitions, not time)."""
    projector = Projector(pool)
    first = CaseStory().opened().routed()
    second = CaseStory().opened().routed().delivered("handler", "email").delivered("citizen", "sms")
    if arrival == "in a later batch":
        await projector.apply(*batch([first]))
        positions, bodies = batch([second], first_offset=10)
    else:
        positions, bodies = batch([first, second], first_offset=10)
    deliveries = [i for i, b in enumerate(bodies) if b["event_type"].startswith("Notification")]
    bodies[deliveries[0]]["event_id"] = str(first.events[0].event_id)
    if arrival == "both at once":  # one clash within the batch and one with what is stored
        already = CaseStory().opened()
        await projector.apply(*batch([already], partition=1))
        bodies[deliveries[1]]["event_id"] = str(already.events[0].event_id)
    if arrival == "delivery first":
        order = deliveries[:1] + [i for i in range(len(bodies)) if i != deliveries[0]]
        positions, bodies = [positions[i] for i in order], [bodies[i] for i in order]
    clashing = [i for i, b in enumerate(bodies) if b["event_type"].startswith("Notification")
                and b["event_id"] in {str(first.events[0].event_id)} | (
                    {str(already.events[0].event_id)} if arrival == "both at once" else set())]
    set_aside = []

    async def dead_letter(i, why):
        set_aside.append((i, str(why)))

    applied = await projector.apply(positions, bodies, dead_letter)
    assert sorted(i for i, _ in set_aside) == clashing
    assert all("already a case event's" in why for _, why in set_aside)
    assert applied == len(bodies) - len(clashing)
    stored = await counts(pool)
    assert stored["cases"] == 2 + (arrival == "both at once") and stored["events"] == 4 + (arrival == "both at once")
    assert stored["deliveries"] == 2 - len(clashing)
    report = await verify(pool, b"")
    assert report["ok"], report


async def test_two_instances_projecting_at_once_make_one_sound_chain(pool):
    first, second = Projector(pool), Projector(pool)
    work = [batch([CaseStory().opened().routed().resolved() for _ in range(10)], partition=p) for p in range(6)]
    await asyncio.gather(*(proj.apply(*b) for proj, b in zip([first, second] * 3, work, strict=True)))
    assert (await counts(pool))["audited"] == 6 * 10 * 4
    report = await verify(pool, b"")
    assert report["ok"], report


async def test_a_time_postgresql_reads_otherwise_is_kept_as_the_fold_reads_it(pool):
    """The contract reads a comma before the fraction and an offset past 15:59; PostgreSQL refused both."""
    positions, bodies = batch([CaseStory().opened().routed()])
    bodies[1]["occurred_at"] = "2026-12-05T10:00:00,5+16:00"
    assert await Projector(pool).apply(positions, bodies) == 2
    assert await pool.fetchval("SELECT c.routed_at = e.occurred_at FROM cases c JOIN case_events e USING (case_id)"
                               " WHERE e.version = 2")
    report = await verify(pool, b"")
    assert report["ok"], report


async def test_a_cases_events_out_of_order_across_batches_show_it_as_it_is(pool):
    """A relay that fails over publishes again from where it had recorded, so a case's events can
    come over two batches out of order. The fold skipped an event older than the case's row, and
    everything before a late CaseOpened: oversight showed a resolved case as opened, or as having
    no unit, until a rebuild. It is now folded again from the case's first event."""
    projector = Projector(pool)
    opened_late = CaseStory().opened().routed().assigned().accepted().resolved()
    routed_late = CaseStory().opened().routed().assigned().accepted()
    offsets = iter(range(100))
    for story, late in ((opened_late, [0]), (routed_late, [1])):
        bodies = [e.model_dump(mode="json") for e in story.events]
        for part in ([b for i, b in enumerate(bodies) if i not in late], [bodies[i] for i in late]):
            positions = [Position(topics.CASE_EVENTS, 0, next(offsets)) for _ in part]
            assert await projector.apply(positions, part) == len(part)
    rows = {r["case_id"]: r for r in await pool.fetch("SELECT case_id, status, unit_name, handler_name, version"
                                                        " FROM cases")}
    assert dict(rows[opened_late.case_id]) == {
        "case_id": opened_late.case_id, "status": "resolved", "unit_name": "UBND Quận 1",
        "handler_name": "Trần Thị Thảo", "version": 5}
    assert dict(rows[routed_late.case_id]) == {
        "case_id": routed_late.case_id, "status": "accepted", "unit_name": "UBND Quận 1",
        "handler_name": "Trần Thị Thảo", "version": 4}
    report = await verify(pool, b"")
    assert report["ok"], report


async def test_two_cases_with_one_tracking_code_are_both_projected(pool):
    """An older intake gave a few codes to more than one request, and Kafka keeps those for good. A
    unique code in the read model failed the second such case's batch at every reading: the
    projection stopped there, and every later case with it."""
    first = CaseStory().opened().routed()
    second = CaseStory()
    second.tracking_code = first.tracking_code
    second.opened().routed()
    later = CaseStory().opened()
    projector = Projector(pool, audit_key=AUDIT_KEY.encode())
    await projector.apply(*batch([first]))
    await projector.apply(*batch([second, later], first_offset=10))
    assert await pool.fetchval("SELECT count(*) FROM cases WHERE tracking_code = $1", first.tracking_code) == 2
    assert (await counts(pool))["cases"] == 3
    assert (await verify(pool, AUDIT_KEY.encode()))["ok"]


async def test_a_database_made_when_codes_were_unique_takes_a_shared_code_after_migrating(pool):
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE cases DROP CONSTRAINT IF EXISTS cases_tracking_code_key;"
                           " ALTER TABLE cases ADD CONSTRAINT cases_tracking_code_key UNIQUE (tracking_code)")
        await migrate(conn, "oversight_reader")
    first = CaseStory().opened()
    second = CaseStory()
    second.tracking_code = first.tracking_code
    await Projector(pool).apply(*batch([first, second.opened()]))
    assert (await counts(pool))["cases"] == 2
