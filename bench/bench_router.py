"""Cases routed per second through Kafka and the event store, batching both.

Produces N ready-made RequestReceived messages onto ``intake.requests.v1`` and times a real router
process (or two: ``--routers 2``) from the first message to the moment every case is stored
(opened, routed, assigned) and every stored event is published by the outbox relay.

    .venv/bin/python bench/bench_router.py [--requests 20000] [--routers 1] [--rate 200]

With ``--rate`` the requests are sent at that fixed arrival rate instead of all at once, as they
come in a day's work, and it also prints each router's CPU a case and how many transactions the
cases were saved in: at a moderate rate the batches are small, and what a batch costs shows.

Kafka and PostgreSQL from KAFKA_BOOTSTRAP_SERVERS and PGPORT (the `make run` ones by default);
it uses a fresh database and a consumer group parked at the end of the topic, and drops both.
"""

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request

import asyncpg
import psutil
from aiokafka import AIOKafkaProducer

sys.path.insert(0, os.path.dirname(__file__))
from common import (ADMIN_DSN, KAFKA, PGPORT, ROOT, cpu_seconds, drop_database, fresh_database, park_group_at_end,
                    web_request)

from contracts import topics  # noqa: E402
from contracts.categories import load as categories  # noqa: E402
from services.intake.domain import Submission, build_request  # noqa: E402


def start_router(i: int, database: str, group: str, log_dir) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "PGPORT": str(PGPORT),
           "ROUTER_PG_DATABASE": database, "ROUTER_GROUP_ID": group, "ROUTER_PORT": str(17902 + i)}
    log = open(log_dir / f"router-{i}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "services.router", "serve"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def cpu_split(pid: int) -> tuple[float, float]:
    """A process's CPU so far: its main thread's and its other threads' (the event store's saves), in
    seconds. The process's own figure keeps the time of threads that have ended."""
    main = next(t for t in psutil.Process(pid).threads() if t.id == pid)
    loop = main.user_time + main.system_time
    return loop, cpu_seconds(pid) - loop


async def send_paced(producer: AIOKafkaProducer, messages, rate: float | None) -> list:
    """Send every message, at ``rate`` a second from now (open loop) or all at once; the acknowledgements' futures."""
    sends = []
    started = time.perf_counter()
    for i, m in enumerate(messages):
        if rate:
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        sends.append(await producer.send(topics.INTAKE_REQUESTS, m.model_dump_json().encode(),
                                         key=str(m.case_id).encode()))
    return sends


def healthy(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"router on {port} not healthy")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--routers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=None, help="requests a second (default: all at once)")
    args = parser.parse_args()
    rng = random.Random(1022)
    cats = categories()
    messages = [build_request("web", f"bench-{time.time_ns()}-{i}", Submission(**web_request(i, rng)), cats)
                for i in range(args.requests)]
    database = await fresh_database("bench_router")
    group = f"bench-router-{time.time_ns()}"
    await park_group_at_end(group, topics.INTAKE_REQUESTS)
    await park_group_at_end(f"{group}-responses", topics.UNIT_RESPONSES)
    log_dir = ROOT / ".local" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    routers = [start_router(i, database, group, log_dir) for i in range(args.routers)]
    try:
        for i in range(args.routers):
            healthy(17902 + i)
        await asyncio.sleep(3)  # let the group settle so the partitions are spread before the load
        db = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}")
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=5,
                                    max_batch_size=256 * 1024)
        await producer.start()
        cpu_before = [cpu_split(r.pid) for r in routers]
        started = time.perf_counter()
        await asyncio.gather(*await send_paced(producer, messages, args.rate))
        produced = time.perf_counter() - started
        opened_at = None
        while True:
            opened = await db.fetchval("SELECT count(*) FROM cases_events WHERE originator_version = 1")
            top = await db.fetchval("SELECT coalesce(max(notification_id), 0) FROM cases_events")
            position = await db.fetchval("SELECT position FROM outbox_position WHERE name = 'case.events'") or 0
            now = time.perf_counter() - started
            if opened >= args.requests and opened_at is None:
                opened_at = now
            if opened >= args.requests and position >= top:
                published_at = now
                break
            if now > 600:
                raise TimeoutError(f"only {opened} cases opened, position {position}/{top}")
            await asyncio.sleep(0.05)
        cpu_after = [cpu_split(r.pid) for r in routers]
        # Each save of a batch is one transaction: its events share the inserting transaction's id. A
        # batch met again (a rebalance, a redelivery) is saved case by case: it counts as several.
        saves = await db.fetchval("SELECT count(DISTINCT xmin::text) FROM cases_events WHERE originator_version = 1")
        await producer.stop()
        await db.close()
        print(f"router benchmark: {args.requests} requests, {args.routers} router process(es), Kafka {KAFKA}")
        print(f"  produced onto intake.requests in {produced:.2f} s")
        print(f"  all cases stored (opened, routed, assigned): {opened_at:.2f} s"
              f"  → {args.requests / opened_at:,.0f} cases/s")
        print(f"  all events published by the outbox:          {published_at:.2f} s"
              f"  → {args.requests / published_at:,.0f} cases/s ({top} events)")
        print(f"  saved in {saves} transactions: {args.requests / saves:.1f} cases a save")
        for i, (before, after) in enumerate(zip(cpu_before, cpu_after, strict=True)):
            main, other = after[0] - before[0], after[1] - before[1]
            print(f"  router-{i} CPU {main + other:.2f} s ({main:.2f} s its event loop, {other:.2f} s its other"
                  f" threads): {1000 * (main + other) / args.requests:.2f} ms a case of all sent")
    finally:
        for router in routers:
            os.killpg(router.pid, signal.SIGTERM)
        for router in routers:
            router.wait(30)
        await drop_database(database)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    asyncio.run(main())
