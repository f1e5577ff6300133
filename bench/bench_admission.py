"""What a refusal costs: intake's CPU per submission it turns away at its admission limit.

Under overload every refused submission still costs intake an HTTP exchange; if that were close to
the cost of an accepted one, refusing would not help. This starts ``python -m services.intake``
with ``INTAKE_MAX_IN_FLIGHT=0`` (every channel submission refused) on a fresh database, posts
``--requests`` web requests from ``--concurrency`` keep-alive clients, and prints intake's CPU per
refusal and refusals per second (the client shares the cores, so the rate is a floor).

    .venv/bin/python bench/bench_admission.py [--requests 20000] [--concurrency 50]
"""

import argparse
import asyncio
import os
import random
import secrets
import socket
import subprocess
import sys
import time

import aiohttp

sys.path.insert(0, os.path.dirname(__file__))
from common import KAFKA, PGPORT, ROOT, cpu_seconds, drop_database, fresh_database, web_request  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    database, port = await fresh_database("bench_admission"), free_port()
    env = {**os.environ, "INTAKE_MAX_IN_FLIGHT": "0", "INTAKE_PORT": str(port), "INTAKE_PG_DATABASE": database,
           "KAFKA_BOOTSTRAP_SERVERS": KAFKA, "PGPORT": str(PGPORT), "OTEL_TRACES_EXPORTER": "none",
           "PYTHONPATH": str(ROOT), "INTAKE_TRACKING_CODE_KEY": secrets.token_urlsafe(32)}
    proc = subprocess.Popen([sys.executable, "-m", "services.intake"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    rng = random.Random(7)
    bodies = [web_request(i, rng) for i in range(args.requests)]
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with session.get(url + "/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("intake did not become healthy")
                await asyncio.sleep(0.2)
            statuses: dict[int, int] = {}
            slots = asyncio.Semaphore(args.concurrency)

            async def one(i: int) -> None:
                async with slots, session.post(url + "/v1/channels/web/requests", json=bodies[i],
                                               headers={"Idempotency-Key": f"bench-{i}"}) as answer:
                    await answer.read()
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1

            cpu0, started = cpu_seconds(proc.pid), time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(args.requests)))
            took, cpu = time.perf_counter() - started, cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(20)
        await drop_database(database)
    print(f"admission limit 0: {args.requests} web submissions, answers {statuses}")
    print(f"  intake CPU per refusal {cpu / args.requests * 1e6:.0f} µs;"
          f" {args.requests / took:,.0f} refusals/s with the client on the same cores")


if __name__ == "__main__":
    asyncio.run(main())
