"""Intake benchmark: how many requests per second the real intake process answers 202 (each one
acknowledged by Kafka with acks=all and recorded in PostgreSQL), and with what latency.

``.venv/bin/python bench/bench_intake.py [--seconds 20] [--concurrency 32]`` makes a fresh intake
database on the PostgreSQL at ``PGHOST``/``PGPORT`` (default 127.0.0.1:55432), starts
``python -m services.intake`` on a free loopback port against the Kafka at
``KAFKA_BOOTSTRAP_SERVERS`` (default 127.0.0.1:9092), posts web requests (each a new one: its own
Idempotency-Key, senders spread so no rate limit trips) from ``--concurrency`` clients for a short
warm-up and then ``--seconds``, and prints throughput and p50/p99 latency. The load generator runs
on the same machine, so the figures are for intake and its client sharing the cores. The process
is stopped and the database dropped at the end; the whole run stays within about a minute.
"""

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
BODY = {"full_name": "Nguyễn Thị Hoa", "address": "12 Nguyễn Văn Trỗi, Phường 12, Quận Phú Nhuận",
        "category": "essential_supplies", "description": "Gia đình 5 người đang cách ly, hết gạo.", "is_public": True}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def admin(pg: str, statement: str) -> None:
    conn = await asyncpg.connect(f"postgresql://{os.environ.get('PGUSER', 'mesh')}@{pg}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def start_intake(kafka: str, pg_host: str, pg_port: str, database: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INTAKE_HOST": "127.0.0.1", "INTAKE_PORT": str(port),
           "INTAKE_KAFKA_BOOTSTRAP": kafka, "INTAKE_PG_HOST": pg_host, "INTAKE_PG_PORT": pg_port,
           "INTAKE_PG_DATABASE": database, "INTAKE_SENDER_LIMIT": "1000000000",
           "INTAKE_TRACKING_CODE_KEY": secrets.token_urlsafe(32)}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "services.intake"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


async def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if (await client.get(url + "/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("intake did not become healthy (is Kafka at KAFKA_BOOTSTRAP_SERVERS up?)")


async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes,
               key: str) -> int:
    """One HTTP/1.1 request on a kept-alive connection; its status. A few lines of asyncio, because a
    full client library would take more of the two cores than the intake it measures."""
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Idempotency-Key: {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def load(port: int, concurrency: int, warmup: float, seconds: float) -> tuple[list[float], dict[int, int]]:
    """Post from ``concurrency`` clients; latencies (s) of the 202s after the warm-up, and every status."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    measure_from = time.monotonic() + warmup
    until = measure_from + seconds

    async def client_loop(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        try:
            while (start := time.monotonic()) < until:
                i += 1
                body = json.dumps({**BODY, "phone": f"09{(n * 100_000 + i) % 90_000_000 + 10_000_000:08d}"}).encode()
                status = await post(reader, writer, "/v1/channels/web/requests", body, str(uuid.uuid4()))
                if start >= measure_from:
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 202:
                        latencies.append(time.monotonic() - start)
        finally:
            writer.close()

    await asyncio.gather(*(client_loop(n) for n in range(concurrency)))
    return latencies, statuses


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    args.seconds = min(args.seconds, 45.0)  # the whole run stays near a minute

    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    pg_host, pg_port = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "55432")
    database = f"bench_intake_{uuid.uuid4().hex[:10]}"
    await admin(f"{pg_host}:{pg_port}", f'CREATE DATABASE "{database}"')
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"{database}.log"
    proc = start_intake(kafka, pg_host, pg_port, database, port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url, proc)
        latencies, statuses = await load(port, args.concurrency, args.warmup, args.seconds)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        await admin(f"{pg_host}:{pg_port}", f'DROP DATABASE IF EXISTS "{database}"')

    accepted = len(latencies)
    print(f"intake web channel, {args.concurrency} concurrent clients, {args.seconds:.0f}s after a "
          f"{args.warmup:.0f}s warm-up; Kafka {kafka}, PostgreSQL {pg_host}:{pg_port}; {os.cpu_count()} cores")
    print(f"  answered 202: {accepted} requests = {accepted / args.seconds:.0f} requests/s")
    if latencies:
        print(f"  latency of a 202: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
              f"p99 {percentile(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms, "
              f"mean {statistics.fmean(latencies) * 1000:.1f} ms")
    print(f"  statuses: {dict(sorted(statuses.items()))}")
    if set(statuses) - {202}:
        print(f"  intake's log: {log}")


if __name__ == "__main__":
    asyncio.run(main())
