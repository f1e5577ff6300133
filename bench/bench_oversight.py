"""Oversight benchmark: how fast the projector takes events in, and how fast the read-only API
answers once the read models hold a million events or more.

``.venv/bin/python bench/bench_oversight.py [--events 1000000] [--batch 1000] [--requests 400] [--verify]``
makes a fresh database on the PostgreSQL at 127.0.0.1:``PGPORT`` (default 55432),
projects a synthetic history through the real :class:`Projector` in Kafka-sized batches, then starts
the real service (API only, no Kafka) on a free loopback port and times its answers over HTTP.
The database is dropped at the end. Figures go to stdout.

The history is made of contract events (their JSON form), cases moving through the lifecycle in
waves so that each batch touches many cases, as the live topics do.
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
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ADMIN_DSN, PGPORT, ROOT, drop_database, fresh_database, percentiles  # noqa: E402

from contracts import ids, topics  # noqa: E402
from contracts.events import CASE_EVENT, DELIVERY  # noqa: E402
from services.oversight.projector import Projector  # noqa: E402
from services.oversight.store import migrate  # noqa: E402

PARTITIONS = topics.PARTITIONS
CATEGORIES = ("essential_supplies", "covid_support", "vulnerable_person", "traffic", "water", "lighting", "other")
UNITS = [(f"hcmc-2021/{code}", f"UBND Quận {name}", str(code)) for code, name in zip(
    range(760, 784), ["1", "12", "Gò Vấp", "Bình Thạnh", "Tân Bình", "Tân Phú", "Phú Nhuận", "Thủ Đức", "3", "10",
                      "11", "4", "5", "6", "8", "Bình Tân", "7", "Củ Chi", "Hóc Môn", "Bình Chánh", "Nhà Bè", "Cần Giờ",
                      "2", "9"], strict=True)]
TOKEN = "bench-centre-token"


class Record(NamedTuple):
    """What the projector needs of a Kafka record: where it came from."""

    topic: str
    partition: int
    offset: int


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _envelope(kind: str, case: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    return {"event_id": str(ids.event_id("case", case["case_id"], version)), "schema_version": 1,
            "occurred_at": _iso(at), "correlation_id": case["case_id"], "causation_id": None, "producer": "router",
            "traceparent": None, "tracestate": None, "case_id": case["case_id"],
            "tracking_code": case["tracking_code"], "version": version, "event_type": kind}


def case_story(n: int, rng: random.Random, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """One case's events, in order, as (topic, JSON body) — from opening to closing, or still open."""
    request = ids.request_id("web", f"bench-{n}")
    case = {"case_id": str(ids.case_id(request)), "tracking_code": ids.tracking_code(request)}
    unit_id, unit_name, code = rng.choice(UNITS)
    unit = {"id": unit_id, "name": unit_name, "admin_code": code}
    citizen = {"full_name": f"Nguyễn Văn {n}", "phone": f"+8490{n % 10_000_000:07d}", "email": None,
               "zalo_user_id": None, "app_user_id": None}
    received = now - timedelta(days=rng.uniform(0, 60))
    t = received + timedelta(seconds=rng.uniform(1, 5))
    category = rng.choice(CATEGORIES)
    story: list[tuple[str, dict[str, Any]]] = [(topics.CASE_EVENTS, {
        **_envelope("CaseOpened", case, 1, t), "request_id": str(request), "channel": "web",
        "received_at": _iso(received), "category": category, "priority": "normal",
        "description": "Gia đình 5 người đang cách ly, hết gạo.", "address": f"{n} Lê Lợi, {unit_name}",
        "citizen": citizen, "is_public": n % 3 != 0})]
    routed = t + timedelta(seconds=rng.uniform(5, 400))
    resolve_by = received + timedelta(days=5)
    story.append((topics.CASE_EVENTS, {
        **_envelope("CaseRouted", case, 2, routed), "unit": unit, "area_code": code, "area_name": unit_name[5:],
        "rule": "address", "reason": "địa chỉ thuộc địa bàn", "directory_version": "hcmc-2021.1",
        "reach_by": _iso(received + timedelta(minutes=5)), "resolve_by": _iso(resolve_by)}))
    assigned = routed + timedelta(seconds=1)
    assignment = _envelope("AssignmentIssued", case, 3, assigned)
    story.append((topics.CASE_EVENTS, {
        **assignment, "assignment_id": str(uuid.UUID(int=rng.getrandbits(128))), "unit": unit,
        "handler": {"id": f"{unit_id}/h01", "name": "Trần Thị Thảo"}, "category": category, "priority": "normal",
        "description": "Gia đình 5 người đang cách ly, hết gạo.", "address": f"{n} Lê Lợi", "citizen": citizen,
        "channel": "web", "respond_by": _iso(received + timedelta(minutes=5)), "resolve_by": _iso(resolve_by)}))
    story.append((topics.NOTIFY_DELIVERIES, _delivery(n, 1, case, assignment, "handler", assigned)))
    version, at = 4, assigned + timedelta(minutes=rng.uniform(1, 120))
    if at > now:
        return story
    story.append((topics.CASE_EVENTS, {**_envelope("CaseAccepted", case, version, at), "unit": unit,
                                       "handler_id": f"{unit_id}/h01"}))
    version += 1
    if rng.random() < 0.3:
        at += timedelta(hours=rng.uniform(1, 48))
        story.append((topics.CASE_EVENTS, {**_envelope("ProgressReported", case, version, at), "unit": unit,
                                           "note": "Đang xác minh", "committed_date": None}))
        version += 1
    at = received + timedelta(days=rng.uniform(0.2, 7))
    if at > now or rng.random() < 0.08:
        return story  # still open; overdue once past resolve_by
    resolved = _envelope("CaseResolved", case, version, at)
    story.append((topics.CASE_EVENTS, {**resolved, "unit": unit, "answer": "Đã hỗ trợ 20kg gạo."}))
    story.append((topics.NOTIFY_DELIVERIES, _delivery(n, 2, case, resolved, "citizen", at + timedelta(seconds=2))))
    if rng.random() < 0.6 and at + timedelta(days=2) < now:
        story.append((topics.CASE_EVENTS, {**_envelope("CaseClosed", case, version + 1, at + timedelta(days=2)),
                                           "reason": "người dân xác nhận"}))
    return story


def _delivery(n: int, k: int, case: dict[str, Any], cause: dict[str, Any], recipient: str, at: datetime) -> dict[str, Any]:
    delivery_id = str(ids.event_id("delivery", n, k))
    return {"event_id": str(ids.event_id("delivery-event", n, k)), "schema_version": 1, "occurred_at": _iso(at),
            "correlation_id": case["case_id"], "causation_id": cause["event_id"], "producer": "notifier",
            "traceparent": None, "tracestate": None, "event_type": "NotificationSent", "delivery_id": delivery_id,
            "case_id": case["case_id"], "cause_event_id": cause["event_id"], "recipient": recipient,
            "channel": "webhook" if recipient == "handler" else "sms", "attempts": 1}


def history(events: int, wave: int = 2000, seed: int = 1022) -> Iterator[tuple[Record, dict[str, Any]]]:
    """At least ``events`` records, in topic-partition order, cases moving through their lives in waves."""
    rng, now = random.Random(seed), datetime.now(UTC)
    offsets: dict[tuple[str, int], int] = {}
    made, n = 0, 0
    while made < events:
        stories = [case_story(n + i, rng, now) for i in range(wave)]
        n += wave
        for step in range(max(len(s) for s in stories)):
            for story in stories:
                if step < len(story):
                    topic, body = story[step]
                    partition = int(body["case_id"][:8], 16) % PARTITIONS
                    offset = offsets.get((topic, partition), 0)
                    offsets[(topic, partition)] = offset + 1
                    made += 1
                    yield Record(topic, partition, offset), body


def check_contract(sample: list[dict[str, Any]]) -> None:
    """The synthetic bodies are what the contracts say: parse a sample through the real adapters."""
    for body in sample:
        (DELIVERY if body["event_type"].startswith("Notification") else CASE_EVENT).validate_python(body)


async def project(dsn: str, events: int, batch: int) -> tuple[int, float, list[str]]:
    """Project ``events`` synthetic events; the number applied, seconds taken and a few case ids."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    projector = Projector(pool)
    records: list[Record] = []
    bodies: list[dict[str, Any]] = []
    spent, applied, case_ids = 0.0, 0, []
    for record, body in history(events):
        records.append(record)
        bodies.append(body)
        if len(case_ids) < 2000 and body["event_type"] == "CaseOpened":
            case_ids.append(body["case_id"])
        if len(records) == batch:
            if applied == 0:
                check_contract(bodies[:50])
            started = time.perf_counter()
            applied += await projector.apply(records, bodies)
            spent += time.perf_counter() - started
            records, bodies = [], []
            if applied and applied % 100_000 < batch:
                print(f"  … {applied:,} events, {applied / spent:,.0f} events/s", file=sys.stderr)
    if records:
        started = time.perf_counter()
        applied += await projector.apply(records, bodies)
        spent += time.perf_counter() - started
    await pool.close()
    return applied, spent, case_ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(env: dict[str, str], port: int) -> subprocess.Popen:
    """The real service, API only (no Kafka), on the bench's database."""
    process = subprocess.Popen([sys.executable, "-m", "services.oversight"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"oversight exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("oversight did not answer /healthz")


def timings(client: httpx.Client, paths: list[str], rounds: int) -> tuple[float, float]:
    """p50 and p99 in milliseconds of ``rounds`` sequential GETs over ``paths`` (cycled)."""
    spent = []
    for i in range(rounds):
        started = time.perf_counter()
        answer = client.get(paths[i % len(paths)])
        spent.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    figures = percentiles(spent)
    return figures["p50"], figures["p99"]


def measure_api(port: int, case_ids: list[str], codes: list[str], rounds: int) -> dict[str, tuple[float, float]]:
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    since = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
        second_page = client.get("/v1/cases?limit=50").json()["next_cursor"]
        lists = ["/v1/cases?limit=50", f"/v1/cases?limit=50&cursor={second_page}", f"/v1/cases?unit={UNITS[3][0]}",
                 "/v1/cases?status=accepted,in_progress", "/v1/cases?overdue=true", f"/v1/cases?area=770&from={since}",
                 "/v1/cases?category=covid_support&limit=100", "/v1/stats/overdue?limit=100"]
        paths = {
            "list": lists,
            "stats per unit": ["/v1/stats/units"],
            "stats overview": ["/v1/stats/overview"],
            "one case": [f"/v1/cases/{rng.choice(case_ids)}" for _ in range(rounds)],
            "timeline": [f"/v1/cases/{rng.choice(case_ids)}/timeline" for _ in range(rounds)],
            "public lookup": [f"/v1/public/requests/{rng.choice(codes)}" for _ in range(rounds)],
        }
        for group in paths.values():  # warm the pool and the caches once
            client.get(group[0])
        return {name: timings(client, group, rounds) for name, group in paths.items()}


async def prepare(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    await migrate(conn, "oversight_reader")
    await conn.close()


async def sizes(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT (SELECT count(*) FROM cases) AS cases, (SELECT count(*) FROM case_events) AS"
                                  " case_events, (SELECT count(*) FROM deliveries) AS deliveries,"
                                  " (SELECT seq FROM audit_head) AS audited, pg_database_size(current_database()) AS bytes")
        return dict(row)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="records per projector batch (the consumer's max)")
    parser.add_argument("--requests", type=int, default=400, help="requests per API endpoint group")
    parser.add_argument("--verify", action="store_true", help="also time GET /v1/audit/verify once")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (its name is printed)")
    args = parser.parse_args()
    database = asyncio.run(fresh_database("bench_oversight"))
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}"
    api = None
    try:
        asyncio.run(prepare(dsn))
        print(f"projecting {args.events:,} events in batches of {args.batch} into {database} …", file=sys.stderr)
        applied, spent, case_ids = asyncio.run(project(dsn, args.events, args.batch))
        held = asyncio.run(sizes(dsn))
        print(f"projection: {applied:,} events in {spent:.1f} s = {applied / spent:,.0f} events/s "
              f"(batches of {args.batch}; {held['cases']:,} cases, {held['case_events']:,} case events, "
              f"{held['deliveries']:,} deliveries, {held['audited']:,} audit records, {held['bytes'] / 2**20:,.0f} MiB)")
        api_port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PGHOST": "127.0.0.1", "PGPORT": str(PGPORT), "PGUSER": "mesh",
               "OVERSIGHT_PG_DATABASE": database, "OVERSIGHT_PORT": str(api_port), "OVERSIGHT_CONSUME": "false",
               "OVERSIGHT_TOKEN_CENTRE": TOKEN, "OVERSIGHT_AUDIT_KEY": secrets.token_urlsafe(32),
               "OTEL_TRACES_EXPORTER": "none"}
        api = start_api(env, api_port)
        codes = [ids.tracking_code(ids.request_id("web", f"bench-{n}")) for n in range(0, held["cases"], 97)]
        print(f"API latency over HTTP, {args.requests} sequential requests each (ms):")
        for name, (p50, p99) in measure_api(api_port, case_ids, codes, args.requests).items():
            print(f"  {name:<16} p50 {p50:8.2f}   p99 {p99:8.2f}")
        api.terminate()
        api.wait(30)
        # The statistics are kept for a few seconds; what computing them afresh costs, every time:
        api = start_api({**env, "OVERSIGHT_STATS_CACHE_SECONDS": "0"}, api_port)
        print(f"statistics computed afresh on every request (OVERSIGHT_STATS_CACHE_SECONDS=0), {args.requests // 10} each (ms):")
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=60) as client:
            for name, path in (("stats per unit", "/v1/stats/units"), ("stats overview", "/v1/stats/overview")):
                p50, p99 = timings(client, [path], max(10, args.requests // 10))
                print(f"  {name:<16} p50 {p50:8.2f}   p99 {p99:8.2f}")
        if args.verify:
            started = time.perf_counter()
            report = httpx.get(f"http://127.0.0.1:{api_port}/v1/audit/verify", timeout=3600,
                               headers={"Authorization": f"Bearer {TOKEN}"}).json()
            print(f"verify: ok={report['ok']} over {report['chained']:,} records in {time.perf_counter() - started:.1f} s")
    finally:
        if api is not None:
            api.terminate()
            api.wait(30)
        if args.keep:
            print(f"kept the database {database}", file=sys.stderr)
        else:
            asyncio.run(drop_database(database))


if __name__ == "__main__":
    main()
