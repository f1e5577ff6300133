"""The whole mesh under an open-loop load, against the machine's ceiling.

Requests arrive at a fixed rate (each sent at its scheduled time, whether or not earlier ones
were answered), over HTTP to intake, with durable settings (acks=all, PostgreSQL fsync on). For
each accepted request it times 202 → AssignmentIssued on Kafka, 202 → visible in oversight's read
model and 202 → the citizen's first message sent (as oversight records it), and samples CPU and
peak memory of each service, the CPU of everything else on the machine (broker, PostgreSQL,
stand-ins, itself) and of the machine as a whole, and the WAL PostgreSQL wrote. In the same run,
the bare pipe — aiokafka produce → consume → asyncpg COPY, no logic — gives the ceiling, and the
mesh's sustained throughput is reported as a share of it.

    .venv/bin/python bench/bench_e2e.py [--rates 200,400,2000] [--seconds 20] [--routers 1] [--warmup 10]
                                        [--latencies PREFIX]   # every request's timings, to see when the tail came

Needs the infrastructure of `make run` (or KAFKA_BOOTSTRAP_SERVERS / PGPORT); it starts its own
services on ports 17001-17006 (the four, the district units' and the message gateways' stand-ins)
with fresh databases, dropped at the end, and consumer groups parked at the topics' ends.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import uvloop
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, os.path.dirname(__file__))
from common import (ADMIN_DSN, KAFKA, PGPORT, ROOT, cpu_seconds, drop_database, fresh_database,  # noqa: E402
                    park_group_at_end, percentiles)
from pipe import bare_pipe  # noqa: E402

sys.path.insert(0, str(ROOT / "deploy" / "local"))
from mesh import Mesh  # noqa: E402

from contracts import topics  # noqa: E402

# Addresses that route to a unit (a triaged case has no assignment to time).
ROUTABLE = ["45 Lê Văn Sỹ, Phường 13, Quận Phú Nhuận, TP.HCM", "88 Phan Văn Trị, Phường 10, Gò Vấp",
            "P. Thảo Điền, Q.2, Hồ Chí Minh", "12 Lý Tự Trọng, P. Bến Nghé, Q.1, TPHCM",
            "234 Nguyễn Trãi, Phường 3, Quận 5, TP HCM", "102 Lê Văn Việt, P. Hiệp Phú, TP Thủ Đức",
            "45 Lê Văn Sỹ, P.13, Q.3, TPHCM", "Phuong 14 Quan Go Vap HCM"]
CATEGORIES = ["essential_supplies", "covid_support", "vulnerable_person", "lighting", "water", "other"]


class Stamps:
    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.accepted: dict[str, float] = {}
        self.assigned: dict[str, float] = {}
        self.visible: dict[str, float] = {}
        self.told: dict[str, float] = {}  # the citizen's first message sent, as oversight records it
        # The same path as the mesh saw it: the record timestamps (the producers' clocks, wall time
        # in ms) of RequestReceived, published before the 202 is sent, and of AssignmentIssued. No
        # delay of this generator's loop is in them, which is in every figure above.
        self.received_on_kafka: dict[str, float] = {}
        self.assigned_on_kafka: dict[str, float] = {}
        # Between the two, when the router decided: AssignmentIssued's occurred_at, the router's
        # clock as it made the event, before the event store's commit and the relay's publish.
        self.decided: dict[str, float] = {}
        self.errors: dict[int | str, int] = {}  # by HTTP status, or by the client's error when there was none


async def load(url: str, rate: float, seconds: float, stamps: Stamps, rng: random.Random) -> float:
    """Send rate × seconds requests at fixed arrival times; returns the wall time it took."""
    connector = aiohttp.TCPConnector(limit=2000)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Every request its own phone: two with the same phone, area and category would rightly be
        # opened as one case and its duplicate, which has no assignment to time.
        first_phone = rng.randrange(10**7)

        async def one(i: int) -> None:
            body = {"full_name": "Nguyễn Văn Bình", "phone": f"09{rng.choice('0134678')}{(first_phone + i) % 10**7:07d}",
                    "address": rng.choice(ROUTABLE), "category": rng.choice(CATEGORIES),
                    "description": f"Yêu cầu hỗ trợ số {i}: gia đình đang gặp khó khăn.", "is_public": i % 2 == 0}
            sent = time.perf_counter()
            try:
                async with session.post(url, json=body, headers={"Idempotency-Key": str(uuid.uuid4())}) as r:
                    answer = await r.json()
                    status = r.status
            except aiohttp.ClientError as error:
                status = type(error).__name__  # which failure it was: refused, reset, timed out…
            if status == 202:
                stamps.sent[answer["case_id"]] = sent
                stamps.accepted[answer["case_id"]] = time.perf_counter()
            else:
                stamps.errors[status] = stamps.errors.get(status, 0) + 1

        total = int(rate * seconds)
        started = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - started


def send_load(url: str, rate: float, seconds: float, seed: str) -> tuple[float, dict, dict, dict, float]:
    """:func:`load` in a process of its own; returns the time it took, the send and 202 stamps, the
    errors, and the CPU seconds it used.

    At 2,000 requests/s offered, tens of thousands of requests in flight held the loop they shared
    with the watchers: AssignmentIssued was read seconds after Kafka had it (202 → AssignmentIssued
    p50 7 s by this process's reading, 0.3 s by Kafka's clocks), and the run seemed to last that
    much longer. Stamps are ``time.perf_counter()``, the machine's monotonic clock in both processes.
    """
    stamps, cpu = Stamps(), time.process_time()
    took = uvloop.run(load(url, rate, seconds, stamps, random.Random(seed)))
    return took, stamps.sent, stamps.accepted, stamps.errors, time.process_time() - cpu


async def watch_kafka(group: str, stamps: Stamps, stop: asyncio.Event) -> None:
    """AssignmentIssued as this generator reads it, and both ends of the path as Kafka stamped them."""
    consumer = AIOKafkaConsumer(topics.UNIT_ASSIGNMENTS, topics.INTAKE_REQUESTS, bootstrap_servers=KAFKA,
                                group_id=group, enable_auto_commit=True, auto_offset_reset="latest")
    await consumer.start()
    try:
        while not stop.is_set():
            for partition, records in (await consumer.getmany(timeout_ms=100, max_records=5000)).items():
                now = time.perf_counter()
                assignments = partition.topic == topics.UNIT_ASSIGNMENTS
                for record in records:
                    if assignments:
                        event = json.loads(record.value)
                        case_id = event["case_id"]
                        stamps.assigned.setdefault(case_id, now)
                        stamps.assigned_on_kafka.setdefault(case_id, record.timestamp / 1000)
                        stamps.decided.setdefault(case_id, datetime.fromisoformat(event["occurred_at"]).timestamp())
                    else:  # a request's key is its reporter's: the case is in the record
                        case_id = json.loads(record.value)["case_id"]
                        stamps.received_on_kafka.setdefault(case_id, record.timestamp / 1000)
    finally:
        await consumer.stop()


# What oversight shows of a case, read from its audit log's tail: the case's row is written in the
# transaction that chains its CaseOpened, and the citizen's first message in the one that chains
# its NotificationSent. Chain order is commit order, so a position past the last row read misses
# nothing, and each poll reads only what is new (asking after every case not yet seen, 20 times a
# second, cost the database more as the notifier fell behind).
_TAIL = ("SELECT a.seq, a.event_type, a.case_id::text AS case_id, d.recipient, d.outcome FROM audit_log a"
         " LEFT JOIN deliveries d ON d.event_id = a.event_id AND a.event_type = 'NotificationSent'"
         " WHERE a.seq > $1 AND a.event_type IN ('CaseOpened', 'NotificationSent') ORDER BY a.seq LIMIT $2")
_TAIL_PAGE = 10000


async def watch_oversight(dsn: str, stamps: Stamps, stop: asyncio.Event) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        last = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM audit_log")
        while not stop.is_set():
            rows = await conn.fetch(_TAIL, last, _TAIL_PAGE)
            now = time.perf_counter()
            for row in rows:
                if row["event_type"] == "CaseOpened":
                    stamps.visible.setdefault(row["case_id"], now)
                elif row["recipient"] == "citizen" and row["outcome"] == "sent":
                    stamps.told.setdefault(row["case_id"], now)
            last = rows[-1]["seq"] if rows else last
            if len(rows) < _TAIL_PAGE:
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def wal_written() -> float:
    """Bytes of WAL PostgreSQL has written since it was made: the difference of two is a run's."""
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        return float(await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"))
    finally:
        await conn.close()


class Sampler:
    """CPU seconds and peak resident memory of each service process."""

    def __init__(self, pids: dict[str, int]):
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.cpu0 = {n: cpu_seconds(p) for n, p in self.procs.items()}
        self.peak = {n: 0 for n in self.procs}

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for name, proc in self.procs.items():
                self.peak[name] = max(self.peak[name], proc.memory_info().rss)
            await asyncio.sleep(0.5)

    def report(self, seconds: float) -> dict[str, dict[str, float]]:
        return {n: {"cpu_cores": (cpu_seconds(p) - self.cpu0[n]) / seconds, "peak_rss_mib": self.peak[n] / 2**20}
                for n, p in self.procs.items()}


def _others() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of what shares the machine with the services: the broker, PostgreSQL's
    processes (a backend per pooled connection), the stand-ins for the district units (the
    assignment webhooks) and for the SMS and mail gateways, and this load generator (its sending
    process is added by the caller). Every Kafka broker and PostgreSQL on the machine is counted:
    run nothing else beside the benchmark."""
    found = {}
    for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        name, cmdline, times = proc.info["name"], " ".join(proc.info["cmdline"] or ()), proc.info["cpu_times"]
        kind = ("Kafka broker" if name == "java" and "kafka.Kafka" in cmdline else "PostgreSQL" if name == "postgres"
                else "district stand-in" if "examples.district_client" in cmdline
                else "gateway stand-ins" if "examples.gateways" in cmdline
                else "load generator" if proc.pid == os.getpid() else None)
        if kind and times:
            found[proc.pid] = (kind, times.user + times.system)
    return found


class Machine:
    """The whole machine's busy cores over a run, the share of it that is not the services', and
    the time the hypervisor gave to others while this machine wanted to run (steal)."""

    def __init__(self) -> None:
        self.times0, self.others0 = psutil.cpu_times(), _others()

    def report(self, seconds: float) -> dict[str, float]:
        cores: dict[str, float] = {}
        for pid, (kind, cpu) in _others().items():  # a process started during the run counts from zero
            cores[kind] = cores.get(kind, 0.0) + (cpu - self.others0.get(pid, (kind, 0.0))[1]) / seconds
        t = psutil.cpu_times()
        spent = {f: getattr(t, f, 0.0) - getattr(self.times0, f, 0.0)
                 for f in ("user", "nice", "system", "irq", "softirq", "steal")}
        busy = spent["user"] + spent["nice"] + spent["system"] + spent["irq"] + spent["softirq"]
        return {**cores, "whole machine": busy / seconds, "stolen by the host": spent["steal"] / seconds}


async def start_mesh(routers: int) -> tuple[Mesh, str, list[subprocess.Popen], list[str]]:
    suffix = uuid.uuid4().hex[:6]
    dbs = {s: await fresh_database(f"bench_{s}") for s in ("router", "notifier", "oversight", "intake")}
    groups = {s: f"bench-{s}-{suffix}" for s in ("router", "notifier", "oversight")}
    await park_group_at_end(groups["router"], topics.INTAKE_REQUESTS)
    await park_group_at_end(groups["router"] + "-responses", topics.UNIT_RESPONSES)
    await park_group_at_end(groups["notifier"], topics.UNIT_ASSIGNMENTS, topics.CASE_EVENTS)
    await park_group_at_end(groups["oversight"], topics.CASE_EVENTS, topics.NOTIFY_DELIVERIES)
    env = {"KAFKA_BOOTSTRAP_SERVERS": KAFKA, "PGPORT": str(PGPORT), "OTEL_TRACES_EXPORTER": "none",
           "ROUTER_PG_DATABASE": dbs["router"], "NOTIFIER_PG_DATABASE": dbs["notifier"],
           "OVERSIGHT_PG_DATABASE": dbs["oversight"], "INTAKE_PG_DATABASE": dbs["intake"],
           "ROUTER_GROUP_ID": groups["router"], "NOTIFIER_GROUP_ID": groups["notifier"],
           "OVERSIGHT_GROUP_ID": groups["oversight"], "DISTRICT_UNITS": "none",
           # The load generator is one sender: per-sender flood limits would refuse it.
           "INTAKE_SENDER_LIMIT": "1000000000",
           "OVERSIGHT_TOKEN_CENTRE": "bench-" + suffix, "OVERSIGHT_AUDIT_KEY": secrets.token_urlsafe(32),
           "INTAKE_TRACKING_CODE_KEY": secrets.token_urlsafe(32)}
    mesh = Mesh(env, ROOT / ".local" / "bench" / f"mesh-{suffix}",
                ports={"intake": 17001, "router": 17002, "oversight": 17003, "notifier": 17004}, district_port=17005,
                # The SMS and mail gateways' stand-ins, so the citizens' and handlers' messages are
                # sent as in a deployment, not dead-lettered for want of a provider.
                gateways_port=17006)
    mesh.start_all()
    extra = []
    for i in range(1, routers):
        log = open(mesh.log_dir / f"router-{i}.log", "ab")
        extra.append(subprocess.Popen([sys.executable, "-m", "services.router", "serve"], cwd=ROOT,
                                      env={**mesh.env, "ROUTER_PORT": str(17010 + i)}, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    await asyncio.sleep(5)  # the router group rebalances across the instances before the load
    return mesh, ADMIN_DSN.rsplit("/", 1)[0] + f"/{dbs['oversight']}", extra, list(dbs.values())


async def one_rate(mesh: Mesh, oversight_dsn: str, pids: dict[str, int], rate: float, seconds: float,
                   seed: str, sender: ProcessPoolExecutor, latencies: str | None = None) -> dict:
    stamps, stop = Stamps(), asyncio.Event()
    group = f"bench-watch-{uuid.uuid4().hex[:6]}"
    await park_group_at_end(group, topics.UNIT_ASSIGNMENTS, topics.INTAKE_REQUESTS)
    watchers = [asyncio.create_task(watch_kafka(group, stamps, stop)),
                asyncio.create_task(watch_oversight(oversight_dsn, stamps, stop))]
    await asyncio.sleep(1)
    # CPU is counted from here, over the same seconds the throughput is, and so is PostgreSQL's WAL.
    wal_at = await wal_written()
    sampler, machine = Sampler(pids), Machine()
    watchers.append(asyncio.create_task(sampler.run(stop)))
    started = time.perf_counter()
    took, stamps.sent, stamps.accepted, stamps.errors, sender_cpu = await asyncio.get_running_loop().run_in_executor(
        sender, send_load, mesh.url("intake") + "/v1/channels/web/requests", rate, seconds, seed)
    deadline = time.perf_counter() + 60  # past this the backlog itself is the answer
    # Only this run's accepted requests count: the watchers also see what an earlier rate left behind.
    while time.perf_counter() < deadline and (len(stamps.assigned.keys() & stamps.accepted.keys()) < len(stamps.accepted)
                                             or len(stamps.visible.keys() & stamps.accepted.keys()) < len(stamps.accepted)):
        await asyncio.sleep(0.2)
    finished = max([started + took, *(stamps.assigned[c] for c in stamps.accepted if c in stamps.assigned),
                    *(stamps.visible[c] for c in stamps.accepted if c in stamps.visible)])
    services, machine_cpu = sampler.report(finished - started), machine.report(finished - started)
    machine_cpu["load generator"] = machine_cpu.get("load generator", 0.0) + sender_cpu / (finished - started)
    wal = await wal_written() - wal_at
    # The citizen's first message is waited for and timed too, but it is not part of the end-to-end
    # figure, and the CPU spent catching up on messages after it is not in the CPU figures.
    while time.perf_counter() < deadline and len(stamps.told.keys() & stamps.accepted.keys()) < len(stamps.accepted):
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*watchers)
    accepted = stamps.accepted
    to_assignment = [(stamps.assigned[c] - accepted[c]) * 1000 for c in accepted if c in stamps.assigned]
    to_oversight = [(stamps.visible[c] - accepted[c]) * 1000 for c in accepted if c in stamps.visible]
    to_citizen = [(stamps.told[c] - accepted[c]) * 1000 for c in accepted if c in stamps.told]
    on_kafka = {c: (stamps.assigned_on_kafka[c] - stamps.received_on_kafka[c]) * 1000 for c in accepted
                if c in stamps.assigned_on_kafka and c in stamps.received_on_kafka}
    # The same path cut where the router decided: RequestReceived → decision (Kafka's delivery, the
    # router's fetch, gathering and routing) and decision → AssignmentIssued (the event store's
    # commit and the relay's publish).
    to_decision = [(stamps.decided[c] - stamps.received_on_kafka[c]) * 1000 for c in on_kafka]
    to_publish = [(stamps.assigned_on_kafka[c] - stamps.decided[c]) * 1000 for c in on_kafka]
    http = [(accepted[c] - stamps.sent[c]) * 1000 for c in accepted]
    if latencies:  # each assigned request: when it was sent (s into the run), HTTP, to AssignmentIssued, on Kafka (ms)
        Path(latencies).write_text(json.dumps(
            [(round(stamps.sent[c] - started, 3), round((accepted[c] - stamps.sent[c]) * 1000, 1),
              round((stamps.assigned[c] - accepted[c]) * 1000, 1),
              round(on_kafka[c], 1) if c in on_kafka else None)
             for c in accepted if c in stamps.assigned]))
    done = len([c for c in accepted if c in stamps.visible and c in stamps.assigned])
    return {"offered_rate": rate, "seconds": seconds, "accepted": len(accepted), "errors": stamps.errors,
            "completed": done, "throughput": done / (finished - started),
            "http_202_ms": percentiles(http), "to_assignment_ms": percentiles(to_assignment),
            "on_kafka_ms": percentiles(list(on_kafka.values())),
            "to_decision_ms": percentiles(to_decision), "decision_to_published_ms": percentiles(to_publish),
            "to_oversight_ms": percentiles(to_oversight), "told": len(to_citizen),
            "to_citizen_ms": percentiles(to_citizen), "services": services, "machine": machine_cpu,
            "wal_bytes_per_request": wal / max(1, len(accepted))}


def show(result: dict) -> None:
    def line(name: str, p: dict) -> str:
        return (f"    {name:<26} p50 {p.get('p50', float('nan')):8.1f}  p99 {p.get('p99', float('nan')):8.1f}"
                f"  p99.9 {p.get('p99.9', float('nan')):8.1f}  max {p.get('max', float('nan')):8.1f} ms")
    print(f"  offered {result['offered_rate']:.0f} req/s for {result['seconds']:.0f} s: {result['accepted']} answered 202,"
          f" errors {result['errors'] or 'none'}, {result['completed']} assigned and visible;"
          f" sustained {result['throughput']:.0f} req/s end to end")
    print(line("HTTP 202", result["http_202_ms"]))
    print(line("202 → AssignmentIssued", result["to_assignment_ms"]))
    print(line("  the same, Kafka's clocks", result["on_kafka_ms"]))
    print(line("    of it, to the decision", result["to_decision_ms"]))
    print(line("    decision → published", result["decision_to_published_ms"]))
    print(line("202 → visible in oversight", result["to_oversight_ms"]))
    print(line(f"202 → citizen told ({result['told']})", result["to_citizen_ms"]))
    for name, s in result["services"].items():
        print(f"    {name:<12} CPU {s['cpu_cores']:.2f} cores   peak RSS {s['peak_rss_mib']:.0f} MiB")
    print("    " + ", ".join(f"{name} {cores:.2f}" for name, cores in result["machine"].items())
          + f" of {os.cpu_count()} cores")
    print(f"    PostgreSQL wrote {result['wal_bytes_per_request'] / 1024:.1f} KiB of WAL an accepted request"
          " over those seconds")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="200,400,2000")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--routers", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=10,
                        help="seconds at the first rate before measuring; reported, not counted")
    parser.add_argument("--pipe-messages", type=int, default=50_000)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--latencies", help="also write every request's timings, one file a rate: PREFIX-RATE.json")
    args = parser.parse_args()
    conn = await asyncpg.connect(ADMIN_DSN)
    fsync = await conn.fetchval("SHOW fsync")
    await conn.close()
    ceiling = await bare_pipe(args.pipe_messages)
    print(f"end-to-end benchmark: {os.cpu_count()} cores, Kafka {KAFKA} (acks=all), PostgreSQL fsync={fsync},"
          f" {args.routers} router process(es)")
    print(f"  ceiling (bare pipe: aiokafka produce → consume → asyncpg COPY): {ceiling:,.0f} msg/s")
    # The requests are sent from a process of its own (see send_load), started before the mesh.
    sender = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    await asyncio.get_running_loop().run_in_executor(sender, time.perf_counter)
    mesh, oversight_dsn, extra, databases = await start_mesh(args.routers)
    results = []
    try:
        pids = {name: proc.pid for name, proc in mesh.procs.items() if name not in ("district", "gateways")}
        pids.update({f"router-{i + 1}": p.pid for i, p in enumerate(extra)})
        rates = [float(r) for r in args.rates.split(",")]
        if args.warmup > 0:
            # Fresh services, a young JVM and cold caches: the first seconds are slower than any
            # after them. They are shown, so the cold start is not hidden, but not counted.
            print("  warm-up, not counted:")
            show(await one_rate(mesh, oversight_dsn, pids, rates[0], args.warmup, "warm-up", sender))
        for index, rate in enumerate(rates):
            # Each run its own requests, for the same reason.
            result = await one_rate(mesh, oversight_dsn, pids, rate, args.seconds, f"{index}/{rate}", sender,
                                    f"{args.latencies}-{rate:.0f}.json" if args.latencies else None)
            result["share_of_ceiling"] = result["throughput"] / ceiling
            results.append(result)
            show(result)
            print(f"    = {result['share_of_ceiling']:.1%} of the bare-pipe ceiling")
    finally:
        for proc in extra:
            proc.terminate()
        mesh.stop_all()
        sender.shutdown()
        for name in databases:  # each run makes its own; a disk of old runs helps no one
            await drop_database(name)
    if args.json:
        Path(args.json).write_text(json.dumps({"ceiling": ceiling, "routers": args.routers, "results": results}, indent=2))


if __name__ == "__main__":
    # The load generator shares the two cores with the mesh, and its own loops' delay is in every
    # latency it reports: they run on uvloop, as the services do (through uvicorn).
    uvloop.run(main())
