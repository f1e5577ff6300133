"""How the notifier's tests and benchmark run it: as a real process whose providers are the local
stand-ins, on a fresh database and consumer group, with helpers to publish and watch topics."""

import json
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from contracts import topics
from tests.integration.notifier.standins import MailBox, StandIn
from tests.support.databases import fresh_database
from tests.support.mesh import Mesh

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notifier_env(kafka_bootstrap: str, pg_port: int, database: str, group_id: str, stand_in: StandIn,
                 mailbox: MailBox | None = None, **overrides: str) -> dict[str, str]:
    """The environment of a notifier process whose providers are all local stand-ins."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PGPORT": str(pg_port), "NOTIFIER_PG_DATABASE": database,
        "NOTIFIER_GROUP_ID": group_id, "NOTIFIER_UNIT_WEBHOOK_URL": stand_in.url + "/units/{unit_id}",
        "NOTIFIER_SMS_GATEWAY_URL": stand_in.url + "/sms", "NOTIFIER_PUSH_GATEWAY_URL": stand_in.url + "/push",
        "NOTIFIER_ZALO_API_URL": stand_in.url + "/zalo", "NOTIFIER_ZALO_ACCESS_TOKEN": "test-token",
        "NOTIFIER_MAX_ATTEMPTS": "4", "NOTIFIER_BACKOFF_BASE_SECONDS": "0.1", "NOTIFIER_BACKOFF_MAX_SECONDS": "0.5",
        "NOTIFIER_SEND_TIMEOUT_SECONDS": "4", "NOTIFIER_LEASE_SECONDS": "8", "NOTIFIER_POLL_SECONDS": "0.1",
        "OTEL_TRACES_EXPORTER": "none",
    }
    if mailbox:
        env |= {"NOTIFIER_SMTP_HOST": "127.0.0.1", "NOTIFIER_SMTP_PORT": str(mailbox.port)}
    return env | overrides


class NotifierProcess:
    """``python -m services.notifier`` as a real process, on its own port, database and group."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.port = free_port()
        self.mesh = Mesh(env, log_dir, ports={"notifier": self.port}, district_port=None)

    def start(self, timeout: float = 60) -> "NotifierProcess":
        self.mesh.start("notifier")
        self.mesh.wait_healthy("notifier", timeout)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last words."""
        self.mesh.kill("notifier")

    def stop(self) -> None:
        self.mesh.stop_all()

    @property
    def log(self) -> str:
        return (self.mesh.log_dir / "notifier.log").read_text(errors="replace")


async def fresh_notifier_database(admin_dsn: str) -> str:
    return await fresh_database(admin_dsn, "notifier")


def new_group() -> str:
    return f"notifier-test-{uuid.uuid4().hex[:10]}"


async def ends_of(bootstrap: str, names: tuple[str, ...]) -> dict[TopicPartition, int]:
    """The end offset of every partition of these topics."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # the public way to a topic's partitions
    await producer.start()
    try:
        partitions = [TopicPartition(t, p) for t in names for p in sorted(await producer.partitions_for(t))]
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def skip_history(bootstrap: str, group_id: str, names: tuple[str, ...] = (topics.CASE_EVENTS, topics.UNIT_ASSIGNMENTS)) -> None:
    """Commit the group's offsets at the topics' ends, so a new notifier reads only what comes next
    (the shared broker holds other tests' events) without racing its own group join."""
    ends = await ends_of(bootstrap, names)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


def ours(group_id: str, cases: set[str]):
    """Records about these cases from this test's notifier: the notifiers of other suites on the
    shared broker read the same events and announce their own outcomes."""
    return lambda value, headers: value.get("case_id") in cases and headers.get("x-notifier-group") == group_id


class Watch:
    """Reads a topic from where it ended when the watch began, keeping records that ``keep`` accepts."""

    def __init__(self, bootstrap: str, topic: str, keep: Callable[[dict, dict[str, str]], bool]):
        self.bootstrap, self.topic, self.keep = bootstrap, topic, keep
        self.seen: list[tuple[dict, dict[str, str]]] = []

    async def __aenter__(self) -> "Watch":
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        ends = await ends_of(self.bootstrap, (self.topic,))
        await self.consumer.start()
        self.consumer.assign(list(ends))
        for tp, offset in ends.items():
            self.consumer.seek(tp, offset)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def until(self, enough: Callable[[list], bool], timeout: float, what: str) -> list[tuple[dict, dict[str, str]]]:
        deadline = time.monotonic() + timeout
        while not enough(self.seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what} on {self.topic}; saw {self.seen!r}")
            batches = await self.consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    value = json.loads(record.value)
                    headers = {k: v.decode() for k, v in (record.headers or ())}
                    if self.keep(value, headers):
                        self.seen.append((value, headers))
        return self.seen

    async def quiet_for(self, seconds: float) -> None:
        """Keep reading for ``seconds`` more, to catch anything that should not come."""
        deadline = time.monotonic() + seconds
        await self.until(lambda _: time.monotonic() > deadline, seconds + 5, "nothing more")


def as_router(*events: Any) -> list[tuple[str, Any]]:
    """Where the router puts each case event: ``case.events``, and assignments also ``unit.assignments``."""
    out = []
    for event in events:
        out.append((topics.CASE_EVENTS, event))
        if event.event_type == "AssignmentIssued":
            out.append((topics.UNIT_ASSIGNMENTS, event))
    return out


async def publish(bootstrap: str, events: list[tuple[str, Any]]) -> None:
    """Publish contract events, each to its topic, keyed as the router keys them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for topic, event in events:
            key = event.unit.id if topic == topics.UNIT_ASSIGNMENTS else str(event.case_id)
            await producer.send(topic, event.model_dump_json().encode(), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()
