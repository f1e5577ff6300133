"""The router's ledger (deadlines, handler load, open reports), before and after batching, in one
run on one machine: the outbox relay applies it in the same transaction as its position, so its
speed is the relay's.

The same events — cases opened, routed and assigned, half of them then accepted — are applied to
two fresh databases, both in the relay's transactions of ``--batch`` notifications (500 when it
catches up, fewer while it keeps up): "before" one event at a time (a round trip
per statement, as the relay did), "after" the whole batch at once (since 2026-12-02 a set-based
statement per kind of change and round; before that, a round of ``executemany``). The two must
leave the same rows; the figures are events per second and the CPU, in microseconds an event, of the
database's backend and of this process (asyncpg's side).

    .venv/bin/python bench/bench_ledger.py [--cases 5000] [--runs 3] [--batch 500]
"""

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import ADMIN_DSN, cpu_seconds, drop_database, fresh_database  # noqa: E402

import asyncpg  # noqa: E402
import psutil  # noqa: E402

from services.router import ledger  # noqa: E402
from tests.unit.oversight.story import PHU_NHUAN, QUAN_1, CaseStory  # noqa: E402

TABLES = ("deadlines", "case_handler", "handler_seen", "reports")


def events(cases: int) -> list:
    """Store order: the relay sees cases interleaved, as the router saves them batch by batch."""
    stories = [CaseStory(phone=f"+8490{i:07d}").opened().routed(QUAN_1 if i % 2 else PHU_NHUAN).assigned()
               for i in range(cases)]
    for story in stories[::2]:
        story.accepted()
    out = []
    for step in range(max(len(s.events) for s in stories)):
        out += [s.events[step] for s in stories if step < len(s.events)]
    return out


async def timed(name: str, batches: list[list], one_at_a_time: bool) -> tuple[float, float, float, str]:
    conn = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + "/" + name)
    try:
        await conn.execute(ledger.SCHEMA)
        backend, client = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()")), psutil.Process()
        started, backend_cpu, client_cpu = time.perf_counter(), cpu_seconds(backend), cpu_seconds(client)
        for batch in batches:
            async with conn.transaction():
                for part in ([e] for e in batch) if one_at_a_time else (batch,):
                    await ledger.apply(conn, part)
        seconds = time.perf_counter() - started
        backend_cpu, client_cpu = cpu_seconds(backend) - backend_cpu, cpu_seconds(client) - client_cpu
        digest = await conn.fetchval("SELECT md5(string_agg(t, '|' ORDER BY t)) FROM (" + " UNION ALL ".join(
            f"SELECT '{t}' || ({t}.*)::text AS t FROM {t}" for t in TABLES) + ") rows")
        return seconds, backend_cpu, client_cpu, digest
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="notifications a relay transaction")
    args = parser.parse_args()
    stream = events(args.cases)
    relay_batches = [stream[i:i + args.batch] for i in range(0, len(stream), args.batch)]
    print(f"router ledger, {args.cases} cases = {len(stream)} events in batches of {args.batch},"
          " PostgreSQL fsync on, runs interleaved:")
    for run in range(1, args.runs + 1):
        figures = []
        for label, one_at_a_time in (("before (an event at a time)", True), ("after (the batch at once)", False)):
            name = await fresh_database("bench_ledger")
            try:
                seconds, backend_cpu, client_cpu, digest = await timed(name, relay_batches, one_at_a_time)
            finally:
                await drop_database(name)
            figures.append(digest)
            per_event = 1e6 / len(stream)
            print(f"  run {run} {label:27s} {seconds:6.2f} s  {len(stream) / seconds:>7,.0f} events/s  CPU an event:"
                  f" PostgreSQL {backend_cpu * per_event:4.0f} µs, client {client_cpu * per_event:4.0f} µs")
        assert figures[0] == figures[1], "batching changed what the ledger holds"


if __name__ == "__main__":
    asyncio.run(main())
