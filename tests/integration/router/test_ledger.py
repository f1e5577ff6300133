"""The router's ledger on the real PostgreSQL: the handlers' load it hands the router is the number
of cases each handler holds open — after cases close, after the relay applies the same events
again, and in a database that held open cases before the load was counted."""

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from contracts.events import UnitRef
from contracts.postgres import create_pool
from services.router import ledger, outbox
from tests.support.databases import drop_database, fresh_database
from tests.unit.oversight.story import PHU_NHUAN, QUAN_1, CaseStory

pytestmark = pytest.mark.postgres


@contextlib.asynccontextmanager
async def ledger_database(admin_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A fresh database with the ledger's tables and the relay's position, dropped afterwards."""
    name = await fresh_database(admin_dsn, "it_ledger")
    made = await create_pool(admin_dsn.rsplit("/", 1)[0] + "/" + name, min_size=1, max_size=2)
    try:
        await made.execute(outbox.SCHEMA)
        yield made
    finally:
        await made.close()
        await drop_database(admin_dsn, name)


@pytest.fixture
async def pool(pg_admin_dsn):
    async with ledger_database(pg_admin_dsn) as made:
        yield made


def stories() -> list[CaseStory]:
    """Three cases for Quận 1's handler, two for Phú Nhuận's; one of Quận 1's resolved, one declined."""
    quan_1 = [CaseStory(phone=f"+8490300000{i}").opened().routed(QUAN_1).assigned() for i in range(3)]
    phu_nhuan = [CaseStory(phone=f"+8490400000{i}").opened().routed(PHU_NHUAN).assigned() for i in range(2)]
    quan_1[0].accepted().resolved()
    quan_1[1].declined()
    return quan_1 + phu_nhuan


async def apply(pool: asyncpg.Pool, cases: list[CaseStory]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await ledger.apply(conn, [e for story in cases for e in story.events])


async def counted(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT handler_id, count(*) AS n FROM case_handler WHERE open GROUP BY handler_id")
    return {r["handler_id"]: r["n"] for r in rows}


async def test_a_handlers_load_is_the_cases_they_hold_open_and_a_replay_does_not_change_it(pool):
    cases = stories()
    await apply(pool, cases)
    load, seen = await ledger.handler_load(pool)
    assert load == {f"{QUAN_1.id}/h01": 1, f"{PHU_NHUAN.id}/h01": 2} == await counted(pool)
    assert set(seen) == {f"{QUAN_1.id}/h01", f"{PHU_NHUAN.id}/h01"}

    await apply(pool, cases)  # the relay died before recording its position and applies them again
    assert (await ledger.handler_load(pool))[0] == load


async def test_open_cases_from_before_the_load_was_counted_are_counted(pool):
    await apply(pool, stories())
    # The database as an earlier router left it: open cases, no counter.
    await pool.execute("DROP TRIGGER case_handler_counts ON case_handler; DROP TABLE handler_open")
    await pool.execute(ledger.SCHEMA)  # the next router's start
    assert (await ledger.handler_load(pool))[0] == await counted(pool) == {f"{QUAN_1.id}/h01": 1,
                                                                           f"{PHU_NHUAN.id}/h01": 2}
    await apply(pool, [CaseStory(phone="+84903999999").opened().routed(QUAN_1).assigned()])
    assert (await ledger.handler_load(pool))[0][f"{QUAN_1.id}/h01"] == 2


async def test_a_duplicate_is_an_open_case_of_the_same_phone_and_category(pool):
    water = CaseStory(phone="+84903111111", category="water").opened().routed(QUAN_1).assigned()
    lighting = CaseStory(phone="+84903111111", category="lighting").opened().routed(QUAN_1).assigned()
    closed = CaseStory(phone="+84903222222", category="water").opened().routed(QUAN_1).assigned().accepted().resolved()
    await apply(pool, [water, lighting, closed])
    await pool.execute("UPDATE outbox_position SET position = 4022")
    found, recorded = await ledger.open_duplicates(pool, [("+84903111111", "water"), ("+84903222222", "water"),
                                                          ("+84903333333", "water")])
    assert {key: [c["case_id"] for c in cases] for key, cases in found.items()} == {
        ("+84903111111", "water"): [water.case_id]}
    assert recorded == 4022
    assert await ledger.open_duplicates(pool, [("+84903333333", "water")]) == ({}, 4022)
    await pool.execute("DELETE FROM outbox_position")  # a partial schema: the ledger still answers
    assert (await ledger.open_duplicates(pool, [("+84903111111", "water")]))[0] == found


async def test_a_rerouted_case_is_listed_for_each_area_it_was_routed_to(pool):
    """A repeat of the first report, its address as before, routes to the first area: the case is
    found there after a unit declined it to another."""
    moved = (CaseStory(phone="+84903444444", category="water").opened().routed(QUAN_1).assigned()
             .declined().routed(PHU_NHUAN, fresh=True))
    unrouted = CaseStory(phone="+84903555555", category="water").opened()
    for _ in range(2):  # the relay applying the same events again lists nothing twice
        await apply(pool, [moved, unrouted])
        found, _ = await ledger.open_duplicates(pool, [("+84903444444", "water"), ("+84903555555", "water")])
        assert {key: [(c["case_id"], c["area_code"]) for c in cases] for key, cases in found.items()} == {
            ("+84903444444", "water"): [(moved.case_id, "760"), (moved.case_id, "768")],
            ("+84903555555", "water"): [(unrouted.case_id, None)]}
    # A row an older router's relay kept, its latest area only: it starts the list when the case moves.
    await pool.execute("UPDATE reports SET areas = NULL WHERE case_id = $1", moved.case_id)
    assert [c["area_code"] for c in (await ledger.open_duplicates(pool, [("+84903444444", "water")]))[0][
        ("+84903444444", "water")]] == ["768"]
    await pool.execute("UPDATE reports SET areas = NULL, area_code = '760' WHERE case_id = $1", moved.case_id)
    async with pool.acquire() as conn, conn.transaction():
        await ledger.apply(conn, moved.events[-1:])  # routed to Phú Nhuận, by this router's relay
    # An older relay moves its latest area alone: that is listed too, and kept when the case moves on.
    await pool.execute("UPDATE reports SET area_code = '769' WHERE case_id = $1", moved.case_id)
    found, _ = await ledger.open_duplicates(pool, [("+84903444444", "water")])
    assert [c["area_code"] for c in found[("+84903444444", "water")]] == ["760", "768", "769"]
    moved.declined().routed(UnitRef(id="hcmc-2021/770", name="UBND Quận 3", admin_code="770"), fresh=True)
    async with pool.acquire() as conn, conn.transaction():
        await ledger.apply(conn, moved.events[-2:])
    found, _ = await ledger.open_duplicates(pool, [("+84903444444", "water")])
    assert [c["area_code"] for c in found[("+84903444444", "water")]] == ["760", "768", "769", "770"]


def every_kind_of_change() -> list[CaseStory]:
    """Cases that between them make every change the ledger knows, several to one handler."""
    committed = datetime(2026, 12, 20, 17, 0, tzinfo=UTC)
    return [
        CaseStory(phone="+84905000001").opened().routed(QUAN_1).assigned().accepted()
        .progress(committed_date=committed),
        CaseStory(phone="+84905000002").opened().routed(QUAN_1).assigned().escalated(),
        CaseStory(phone="+84905000003").opened().routed(QUAN_1).assigned().declined(),
        CaseStory(phone="+84905000004").opened().triaged(),
        CaseStory(phone="+84905000005").opened().routed(PHU_NHUAN).assigned().accepted().resolved().closed().reopened(),
        CaseStory(phone="+84905000006").opened().routed(PHU_NHUAN).assigned(),
        CaseStory(phone="+84905000007").opened().routed(PHU_NHUAN).assigned().accepted().resolved().closed(),
        # Escalated at its unit, declined, then the centre's to sort: its time to, its chain afresh.
        CaseStory(phone="+84905000008").opened().routed(QUAN_1).assigned().escalated("reach", "centre").declined()
        .triaged(sort_within=timedelta(minutes=5)),
    ]


async def rows(pool: asyncpg.Pool) -> dict[str, list[tuple]]:
    return {table: [tuple(r) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for table in ("deadlines", "case_handler", "handler_open", "handler_seen", "reports")}


async def test_the_ledger_is_the_same_however_the_relay_batches_the_events(pool, pg_admin_dsn):
    cases = every_kind_of_change()
    await apply(pool, cases)  # every case at once, as a relay catching up reads them
    at_once = await rows(pool)

    async with ledger_database(pg_admin_dsn) as other:
        for event in sorted((e for story in cases for e in story.events), key=lambda e: e.occurred_at):
            async with other.acquire() as conn, conn.transaction():
                await ledger.apply(conn, [event])  # one at a time, as a relay keeping up reads them
        assert await rows(other) == at_once

    by_case = {story.case_id: story for story in cases}
    accepted, escalated, declined, triaged, reopened, waiting, closed, sorting = by_case.values()
    deadlines = {(r[0], r[1]): r for r in at_once["deadlines"]}
    assert deadlines[accepted.case_id, "reach"][4] is False  # reached the unit in time
    assert deadlines[accepted.case_id, "resolve"][2] == accepted.events[-1].committed_date  # the unit's own date
    assert deadlines[escalated.case_id, "resolve"][3] == "unit_head"
    assert not any(deadlines[declined.case_id, kind][4] for kind in ("reach", "resolve"))
    assert not any(r[0] == triaged.case_id for r in at_once["deadlines"])  # an older router's triage
    assert deadlines[sorting.case_id, "reach"][2:5] == (sorting.events[-1].sort_by, "handler", True)
    assert deadlines[sorting.case_id, "resolve"][4] is False
    assert not any(deadlines[closed.case_id, kind][4] for kind in ("reach", "resolve"))
    assert {r[0]: r[5] for r in at_once["reports"]} == {
        accepted.case_id: True, escalated.case_id: True, declined.case_id: True, triaged.case_id: True,
        reopened.case_id: True, waiting.case_id: True, closed.case_id: False, sorting.case_id: True}
    assert {r[0]: r[1] for r in at_once["handler_open"]} == {f"{QUAN_1.id}/h01": 2, f"{PHU_NHUAN.id}/h01": 1}
    assert {r[0] for r in at_once["handler_seen"]} == {f"{QUAN_1.id}/h01", f"{PHU_NHUAN.id}/h01"}
