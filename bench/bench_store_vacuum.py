"""How long a vacuum of the event store holds up the cases being opened.

The router's event store (eventsourcing) locks its table in EXCLUSIVE mode for every insert, so
notification ids commit in order; VACUUM and ANALYZE take a lock that conflicts with it. While one
runs, no case can be opened. This fills a table shaped like ``cases_events`` with ``--events``
rows, keeps writers inserting the way the store does (LOCK TABLE … IN EXCLUSIVE MODE, then a case's
three events, at ``--rate`` transactions/s), and times their waits during three vacuums:

1. the whole table, throttled as autovacuum is by default (cost delay 2 ms, limit 200), freezing —
   what PostgreSQL's forced anti-wraparound vacuum does, and it cannot be cancelled;
2. the 20 % of new events after which autovacuum comes by default, throttled — an autovacuum
   that an insert waits for longer than deadlock_timeout (1 s) is cancelled, and starts over later;
3. ``--new`` new events, unthrottled and freezing: the router's settings for its table
   (``services/router/outbox.py``, ``EVENT_STORE_UPKEEP``);
4. the forced whole-table pass once the passes before it froze every page: it skips them all.

Then it times the same waits during ANALYZE, which autovacuum runs after every 10 % of growth (every
few seconds while a table is young), and which is cancelled like a vacuum when an insert waits a
second for it: with the default statistics target, and with the router's (``EVENT_STORE_STATISTICS``).

    .venv/bin/python bench/bench_store_vacuum.py [--events 1000000] [--new 10000] [--rate 200]
"""

import argparse
import asyncio
import os
import sys
import time
import uuid

import asyncpg

sys.path.insert(0, os.path.dirname(__file__))
from common import ADMIN_DSN, drop_database, fresh_database, percentiles  # noqa: E402

from services.router.outbox import EVENT_STORE_STATISTICS  # noqa: E402

TABLE = """
CREATE TABLE events (originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text NOT NULL,
    state bytea NOT NULL, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))
    WITH (autovacuum_enabled = false);
CREATE UNIQUE INDEX events_notification ON events (notification_id);
"""
FILL = """
INSERT INTO events (originator_id, originator_version, topic, state)
SELECT gen_random_uuid(), v, 'services.router.domain:Case.Opened', convert_to(repeat(md5(n::text || v), 27), 'UTF8')
FROM generate_series(1, $1::int) n, generate_series(1, 3) v
"""

ANALYZED_AS_DEFAULT = "ALTER TABLE events " + ", ".join(
    f"ALTER COLUMN {c} SET STATISTICS -1" for c in ("originator_id", "originator_version", "topic", "state", "notification_id"))
ANALYZED_AS_THE_ROUTER = EVENT_STORE_STATISTICS.format(table="events")


async def writer(dsn: str, rate: float, waits: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """One case's three events per transaction, behind the store's table lock, at ``rate`` per second."""
    conn = await asyncpg.connect(dsn)
    state = b"x" * 860  # a stored case event is about 850 bytes
    try:
        next_at = time.perf_counter()
        while not stop.is_set():
            case = uuid.uuid4()
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
                await conn.executemany("INSERT INTO events (originator_id, originator_version, topic, state)"
                                       " VALUES ($1, $2, 'services.router.domain:Case.Opened', $3)",
                                       [(case, v, state) for v in (1, 2, 3)])
            waits.append((started, (time.perf_counter() - started) * 1000))
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        await conn.close()


async def during(dsn: str, rate: float, settings: str, vacuum: str) -> tuple[float, dict[str, float]]:
    """Run ``vacuum`` under ``settings`` while writers insert; its duration and the writers' waits meanwhile."""
    waits: list[tuple[float, float]] = []
    stop = asyncio.Event()
    writing = asyncio.create_task(writer(dsn, rate, waits, stop))
    await asyncio.sleep(1)
    conn = await asyncpg.connect(dsn)
    await conn.execute(settings)
    started = time.perf_counter()
    await conn.execute(vacuum)
    took = time.perf_counter() - started
    await conn.close()
    await asyncio.sleep(0.5)
    stop.set()
    await writing
    return took, percentiles([w for at, w in waits if started - 0.2 <= at <= started + took])


def held(took: float, waits: dict[str, float]) -> str:
    """How long a vacuum or analyze took, and how long the writers' inserts waited meanwhile."""
    return (f"{took * 1000:,.0f} ms; a case's insert meanwhile waits"
            f" p50 {waits.get('p50', 0):,.1f}, p99 {waits.get('p99', 0):,.1f}, max {waits.get('max', 0):,.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200)
    args = parser.parse_args()
    database = await fresh_database("bench_vacuum")
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}"
    try:
        conn = await asyncpg.connect(dsn)
        await conn.execute(TABLE)
        await conn.execute(FILL, args.events // 3)
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('events'))")
        await conn.close()
        print(f"event store vacuum: {args.events:,} events ({size}), writers at {args.rate:.0f} cases/s,"
              " each behind LOCK TABLE … IN EXCLUSIVE MODE as the store's inserts are")
        throttled = "SET vacuum_cost_delay = '2ms'; SET vacuum_cost_limit = 200"
        unthrottled = "SET vacuum_cost_delay = 0"
        growth = args.events // 5
        runs = [("whole table, throttled (autovacuum's defaults), freezing", 0, throttled),
                (f"{growth:,} new events (20 %), throttled (autovacuum's defaults)", growth, throttled),
                (f"{args.new:,} new events, unthrottled, freezing (the router's settings)", args.new, unthrottled),
                ("whole table again, every page already frozen (the forced pass, after passes that froze)", 0,
                 throttled)]
        for name, new, settings in runs:
            if new:  # the events added since the last vacuum
                conn = await asyncpg.connect(dsn)
                await conn.execute(FILL, new // 3)
                await conn.close()
            took, waits = await during(dsn, args.rate, settings, "VACUUM (FREEZE) events")
            print(f"  {name}: vacuum {held(took, waits)}")
        for name, statistics in (("default statistics target (100)", ANALYZED_AS_DEFAULT),
                                 ("the router's statistics targets", ANALYZED_AS_THE_ROUTER)):
            conn = await asyncpg.connect(dsn)
            await conn.execute(statistics)
            await conn.close()
            for _ in range(3):
                took, waits = await during(dsn, args.rate, "SET vacuum_cost_delay = 0", "ANALYZE events")
                print(f"  analyze, {name}: {held(took, waits)}")
    finally:
        await drop_database(database)


if __name__ == "__main__":
    asyncio.run(main())
