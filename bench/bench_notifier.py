"""Notifier benchmark: deliveries per second, end to end, on real Kafka and PostgreSQL.

``.venv/bin/python bench/bench_notifier.py [--cases 2000] [--concurrency 32] [--seconds 120]``
makes a fresh database on the PostgreSQL at ``PGPORT`` (default 55432), starts the real notifier
(``python -m services.notifier``) against the Kafka at ``KAFKA_BOOTSTRAP_SERVERS`` (default
127.0.0.1:9092), with a local HTTP stand-in as district webhook and SMS gateway, publishes for
each case its ``CaseOpened`` (an SMS to the citizen) and its ``AssignmentIssued`` (a webhook to
the unit), and times them until every outcome is on ``notify.deliveries``: two deliveries per case,
each recorded, sent, finished and announced. Bounded by ``--seconds``; the database is dropped at
the end. Figures go to stdout.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, os.path.dirname(__file__))
from common import cpu_seconds  # noqa: E402

from contracts import topics  # noqa: E402
from contracts.events import Citizen  # noqa: E402
from tests.integration.notifier.harness import (NotifierProcess, Watch, as_router, fresh_notifier_database,  # noqa: E402
                                                new_group, notifier_env, ours, publish, skip_history)
from tests.integration.notifier.standins import StandIn  # noqa: E402
from tests.unit.notifier.factories import Story  # noqa: E402


async def bench(bootstrap: str, pg_port: int, cases: int, concurrency: int, seconds: float) -> None:
    admin_dsn = f"postgresql://mesh@127.0.0.1:{pg_port}/postgres"
    database, group = await fresh_notifier_database(admin_dsn), new_group()
    await skip_history(bootstrap, group)
    stand_in = StandIn()
    env = notifier_env(bootstrap, pg_port, database, group, stand_in, NOTIFIER_CONCURRENCY=str(concurrency),
                       NOTIFIER_SEND_TIMEOUT_SECONDS="10", NOTIFIER_LEASE_SECONDS="30")
    notifier = NotifierProcess(env, Path(tempfile.mkdtemp(prefix="bench-notifier-"))).start()
    stories = [Story(citizen=Citizen(phone=f"+8428{i:08d}")) for i in range(cases)]
    wanted = {str(s.case_id) for s in stories}
    events = [pair for s in stories for pair in as_router(s.opened(), s.assigned())]
    try:
        async with Watch(bootstrap, topics.NOTIFY_DELIVERIES, ours(group, wanted)) as outcomes:
            pid = notifier.mesh.procs["notifier"].pid
            began, cpu_before = time.monotonic(), cpu_seconds(pid)
            await publish(bootstrap, events)
            published = time.monotonic() - began
            try:
                await outcomes.until(lambda seen: len(seen) >= 2 * cases, seconds, "every outcome")
            except AssertionError:
                print(f"stopped at the {seconds:.0f}s bound", file=sys.stderr)
            took, cpu = time.monotonic() - began, cpu_seconds(pid) - cpu_before
        arrivals = sorted(r.at for r in stand_in.about("/", {s.case_id for s in stories}))
        sent = sum(1 for v, _ in outcomes.seen if v["event_type"] == "NotificationSent")
        print(f"notifier benchmark: {cases} cases, {2 * cases} deliveries (SMS + webhook), "
              f"concurrency {concurrency} per channel")
        print(f"  published the events in        {published:6.2f} s")
        print(f"  outcomes announced             {len(outcomes.seen)} ({sent} sent) in {took:6.2f} s")
        print(f"  deliveries per second          {len(outcomes.seen) / took:8.1f}  (end to end: Kafka in, "
              "PostgreSQL, provider, Kafka out)")
        print(f"  notifier CPU per delivery      {cpu / max(len(outcomes.seen), 1) * 1000:8.2f} ms  "
              f"({cpu:.1f} s of CPU over {took:.1f} s: the machine's load bounds the rate)")
        if len(arrivals) > 1:
            span = arrivals[-1] - arrivals[0]
            print(f"  provider requests per second   {len(arrivals) / span:8.1f}  ({len(arrivals)} requests in {span:.2f} s)")
            gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
            print(f"  largest gap between requests   {max(gaps) * 1000:8.1f} ms (median {statistics.median(gaps) * 1000:.2f} ms)")
    finally:
        notifier.stop()
        stand_in.close()
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    pg_port = int(os.environ.get("PGPORT", "55432"))
    asyncio.run(bench(bootstrap, pg_port, args.cases, args.concurrency, args.seconds))


if __name__ == "__main__":
    main()
