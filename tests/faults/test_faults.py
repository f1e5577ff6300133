"""Faults, one at a time, under a steady stream of requests through the real mesh. After each:
every request that intake answered 202 is exactly one case; every case was routed exactly once;
oversight holds exactly what the event store holds; the audit chain verifies; and no recipient
was sent the same message twice.

The streams add up to more than 10,000 requests over the module."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import topics
from tests.support.load import Stream
from tests.support.mesh import oversight_get, wait_for

pytestmark = [pytest.mark.slow]
PER_SCENARIO = int(os.environ.get("FAULT_REQUESTS", "1700"))
RATE = float(os.environ.get("FAULT_RATE", "100"))


def dsn(mesh, service: str, pg_port: int) -> str:
    return f"postgresql://mesh@127.0.0.1:{pg_port}/{mesh.env[f'{service.upper()}_PG_DATABASE']}"


def last_errors(mesh, per_service: int = 5) -> str:
    """The last ERROR lines of each service's log, for a failure message (no personal data is logged)."""
    out = []
    for log in sorted(mesh.log_dir.glob("*.log")):
        lines = [line for line in log.read_text("utf-8", "replace").splitlines() if " ERROR " in line]
        out += [f"  {line[:300]}" for line in lines[-per_service:]]
    return "\n".join(out) or "  (none)"


def flowing(stream: Stream, seconds: float) -> None:
    """Wait, and fail unless requests were answered meanwhile: the next fault meets a load."""
    before = stream.done
    time.sleep(seconds)
    assert stream.thread.is_alive() and stream.done > before, "no request was answered: the load had stopped"


def restart(mesh, name: str, how: int = signal.SIGKILL) -> None:
    mesh.kill(name, how)
    time.sleep(0.5)
    mesh.start(name)
    mesh.wait_healthy(name, 120)


async def settle_and_check(mesh, stream: Stream, stand_in, pg_port: int, repeats_before: int) -> None:
    assert not stream.failed, f"{len(stream.failed)} requests never got a 202"
    assert stream.done == stream.count
    cases = sorted({r["case_id"] for r in stream.receipts.values()})
    assert len(cases) == stream.count, "two requests were given one case"

    router = await asyncpg.connect(dsn(mesh, "router", pg_port))
    oversight = await asyncpg.connect(dsn(mesh, "oversight", pg_port))
    notifier = await asyncpg.connect(dsn(mesh, "notifier", pg_port))
    try:
        async def settled():
            # Only this scenario's cases: the earlier ones, which no unit answers here, keep
            # escalating in the background (reach deadline, then the next step), as they would.
            in_oversight = await oversight.fetchval(
                "SELECT count(*) FROM cases WHERE case_id = ANY($1::uuid[]) AND handler_id IS NOT NULL", cases)
            last = await router.fetchval(
                "SELECT coalesce(max(notification_id), 0) FROM cases_events WHERE originator_id = ANY($1::uuid[])", cases)
            position = await router.fetchval("SELECT position FROM outbox_position")
            # Every delivery finished and announced: a send left in flight by a crash is retried
            # when its lease runs out, and belongs to the scenario that caused it.
            unfinished = await notifier.fetchval(
                "SELECT count(*) FROM deliveries WHERE case_id = ANY($1::uuid[]) AND (status IN ('pending', 'sending')"
                " OR (NOT published AND status IN ('sent', 'failed')))", cases)
            state = {"cases routed in oversight": in_oversight, "outbox behind by": max(0, last - position),
                     "deliveries unfinished": unfinished}
            return state, in_oversight == len(cases) and position >= last and unfinished == 0
        began = time.monotonic()
        while not (progress := await settled())[1]:
            assert time.monotonic() < began + 240, (
                f"the mesh did not catch up within 4 minutes: {progress[0]}, of {len(cases)} cases;"
                f" the services' last errors:\n{last_errors(mesh)}")
            await asyncio.sleep(0.5)
        print(f"\n  caught up {time.monotonic() - began:.1f} s after the last request", end="")

        per_case = await router.fetch(
            "SELECT originator_id::text AS case_id, count(*) AS events,"
            " count(*) FILTER (WHERE topic LIKE '%Case.Opened') AS opened,"
            " count(*) FILTER (WHERE topic LIKE '%Case.Routed') AS routed,"
            " count(*) FILTER (WHERE topic LIKE '%Case.AssignmentIssued') AS assigned"
            " FROM cases_events WHERE originator_id = ANY($1::uuid[]) GROUP BY 1", cases)
        assert len(per_case) == len(cases), "a request answered 202 has no case"
        assert {(r["opened"], r["routed"], r["assigned"]) for r in per_case} == {(1, 1, 1)}

        store_events = {r["case_id"]: r["events"] for r in per_case}
        projected = {r["case_id"]: r["n"] for r in await oversight.fetch(
            "SELECT case_id::text, count(*) AS n FROM case_events WHERE case_id = ANY($1::uuid[]) GROUP BY 1", cases)}
        assert projected == store_events, "oversight's events differ from the event store's"
        assert await oversight.fetchval("SELECT count(*) FROM cases") == await router.fetchval(
            "SELECT count(*) FROM cases_events WHERE topic LIKE '%Case.Opened'")
    finally:
        await router.close()
        await oversight.close()
        await notifier.close()

    # The whole chain is read and re-hashed: after five scenarios that is tens of thousands of
    # entries, and oversight (nice 19) shares the cores with the notifier still catching up. Ten
    # seconds was not always enough on a slow machine.
    verify = oversight_get(mesh, "/v1/audit/verify", timeout=120)
    assert verify.status_code == 200 and verify.json().get("ok") is True, verify.text

    def delivered():
        return all(stand_in.keys_for_case(c) for c in cases)
    wait_for(delivered, 120, what="a delivery for every case")
    for case in cases:
        keys = stand_in.keys_for_case(case)
        messages = {(stand_in.bodies[k]["path"], stand_in.bodies[k].get("to"), stand_in.bodies[k].get("text")) for k in keys}
        assert len(messages) == len(keys), f"case {case}: one message was sent under two delivery keys"
    # A send whose outcome the notifier could not record (it died, PostgreSQL was down, the answer
    # came after its time-out) is sent again under the same Idempotency-Key, which the recipient
    # drops: one message in effect. What must never happen is the same message under two keys.
    repeats = stand_in.repeats() - repeats_before
    print(f"\n  {stream.count} requests, {stream.retries} client retries, {repeats} repeated sends (same key)")


def run(mesh, fault) -> Stream:
    """At least PER_SCENARIO requests, and for as long as the fault takes: every kill meets a load."""
    stream = Stream(mesh.url("intake"), PER_SCENARIO, RATE).start(hold=True)
    time.sleep(2)
    try:
        fault(stream)
    finally:
        stream.release()
    return stream.join()


def scenario(mesh, stand_in, pg_port, fault) -> None:
    before = stand_in.repeats()
    stream = run(mesh, fault)
    asyncio.run(settle_and_check(mesh, stream, stand_in, pg_port, before))


def test_router_killed_five_times(fault_mesh, stand_in, pg_port):
    def fault(stream):
        for _ in range(5):
            flowing(stream, 1.5)
            restart(fault_mesh, "router")
    scenario(fault_mesh, stand_in, pg_port, fault)


def test_notifier_killed_five_times(fault_mesh, stand_in, pg_port):
    def fault(stream):
        for _ in range(5):
            flowing(stream, 1.5)
            restart(fault_mesh, "notifier")
    scenario(fault_mesh, stand_in, pg_port, fault)


def reading(mesh) -> dict[str, bool | None]:
    """What each consuming service's /healthz says of its consumers now (None: no answer in time, a
    service at the lowest priority on cores the load keeps busy)."""
    def says(name: str) -> bool | None:
        try:
            return httpx.get(mesh.url(name) + "/healthz", timeout=10).json()["consuming"]
        except httpx.HTTPError:
            return None
    return {name: says(name) for name in ("router", "notifier", "oversight")}


def test_kafka_broker_killed_and_restarted(fault_mesh, stand_in, pg_port, infra):
    def fault(stream):
        flowing(stream, 3)
        wait_for(lambda: all(reading(fault_mesh).values()), 30, what="every service to say it consumes")
        infra.crash_kafka()
        down = time.monotonic()
        # /healthz said "consuming" for good once a service had started: it must say the broker is gone.
        wait_for(lambda: all(v is False for v in reading(fault_mesh).values()), 30,
                 what="every service to say it is not consuming")
        time.sleep(max(0.0, 3 - (time.monotonic() - down)))
        infra.start_kafka()
        wait_for(lambda: all(reading(fault_mesh).values()), 120, what="every service to say it consumes again")
    scenario(fault_mesh, stand_in, pg_port, fault)


def test_postgres_restarted(fault_mesh, stand_in, pg_port, infra):
    def fault(stream):
        flowing(stream, 3)
        infra.crash_postgres()
        time.sleep(2)
        infra.start_postgres()
    scenario(fault_mesh, stand_in, pg_port, fault)


def test_oversight_killed_and_its_read_models_rebuilt(fault_mesh, stand_in, pg_port):
    def fault(stream):
        flowing(stream, 4)
        fault_mesh.kill("oversight")
        # Rebuilt and put in place (--swap): the checks after it read the rebuilt read models.
        rebuilt = subprocess.run([sys.executable, "-m", "services.oversight", "rebuild", "--swap"],
                                 cwd=fault_mesh.env["PYTHONPATH"], env=fault_mesh.env, timeout=300,
                                 capture_output=True, text=True)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr[-3000:]
        report = json.loads(rebuilt.stdout)
        assert report["equal"] and report["swapped"], rebuilt.stdout
        fault_mesh.start("oversight")
        fault_mesh.wait_healthy("oversight", 120)
    scenario(fault_mesh, stand_in, pg_port, fault)


async def _rewind(bootstrap: str, group: str, topic_names: tuple[str, ...], since: float) -> dict:
    """Move a (stopped) group's committed offsets back to the first record written after ``since``;
    the offsets, by (topic, partition)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topic_names for p in consumer.partitions_for_topic(t) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - the group has no subscription
            partitions = [TopicPartition(t, p) for t in topic_names for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)
        found = await consumer.offsets_for_times({tp: int(since * 1000) for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        back = {tp: (found[tp].offset if found[tp] else ends[tp]) for tp in partitions}
        await consumer.commit(back)
        return {(tp.topic, tp.partition): offset for tp, offset in back.items()}
    finally:
        await consumer.stop()


async def _rewind_oversight(database: str, back: dict) -> None:
    """Oversight reads each partition from where its read models stand, not from the group's offset:
    its stored positions go back too, so it is given everything again and must recognise it."""
    conn = await asyncpg.connect(database)
    try:
        await conn.executemany("UPDATE consumer_offsets SET next_offset = $3 WHERE topic = $1 AND partition = $2",
                               [(t, p, o) for (t, p), o in back.items()])
    finally:
        await conn.close()


def test_consumer_offsets_reset_so_everything_is_delivered_again(fault_mesh, stand_in, pg_port, kafka_bootstrap):
    groups = {"router": ((fault_mesh.env["ROUTER_GROUP_ID"], (topics.INTAKE_REQUESTS,)),
                         (fault_mesh.env["ROUTER_GROUP_ID"] + "-responses", (topics.UNIT_RESPONSES,))),
              "notifier": ((fault_mesh.env["NOTIFIER_GROUP_ID"], (topics.UNIT_ASSIGNMENTS, topics.CASE_EVENTS)),),
              "oversight": ((fault_mesh.env["OVERSIGHT_GROUP_ID"], (topics.CASE_EVENTS, topics.NOTIFY_DELIVERIES)),)}

    def fault(stream):
        while stream.done < stream.count * 0.8:
            time.sleep(0.5)
        for name in groups:
            fault_mesh.kill(name, signal.SIGTERM)
        for name, entries in groups.items():
            for group, topic_names in entries:
                # Back to where this mesh began: everything it ever consumed is delivered again.
                back = asyncio.run(_rewind(kafka_bootstrap, group, topic_names, since=fault_mesh.parked_at))
                if name == "oversight":
                    asyncio.run(_rewind_oversight(dsn(fault_mesh, "oversight", pg_port), back))
        for name in groups:
            fault_mesh.start(name)
        for name in groups:
            fault_mesh.wait_healthy(name, 120)
    scenario(fault_mesh, stand_in, pg_port, fault)
