"""Running the real oversight service for a test: its app under uvicorn on a free loopback port,
on a fresh database of the suite's PostgreSQL, with its own consumer group on the suite's Kafka;
and two ways to give it cases — published on Kafka, or applied by the projector directly."""

import asyncio
import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
import httpx
import uvicorn

from contracts import topics
from services.oversight.main import create_app
from services.oversight.projector import Projector
from services.oversight.settings import OversightSettings
from tests.support.databases import drop_database, fresh_database
from tests.support.kafka import send
from tests.support.mesh import wait_for  # noqa: F401 - the suite's one polling helper, for these tests too
from tests.unit.oversight.story import CaseStory

TOKENS = {"council": "council-token-for-tests", "front": "front-token-for-tests", "centre": "centre-token-for-tests"}
AUDIT_KEY = secrets.token_urlsafe(32)  # made for this run: oversight refuses to start without one


def auth(role: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}


def settings_for(database: str, pg_port: int, kafka_bootstrap: str, **overrides: Any) -> OversightSettings:
    given: dict[str, Any] = dict(
        pg_port=pg_port, pg_database=database, kafka_bootstrap=kafka_bootstrap, group_id=f"oversight-{database}",
        token_council=TOKENS["council"], token_front=TOKENS["front"], token_centre=TOKENS["centre"],
        audit_key=AUDIT_KEY, checkpoint_every=5, checkpoint_seconds=1.0, checkpoint_topic="", stats_cache_seconds=0)
    return OversightSettings(**{**given, **overrides})


def new_database(admin_dsn: str) -> str:
    return asyncio.run(fresh_database(admin_dsn, "oversight_test"))


@contextlib.contextmanager
def scratch_database(admin_dsn: str) -> Iterator[str]:
    """A fresh database for the block, dropped after it."""
    name = new_database(admin_dsn)
    try:
        yield name
    finally:
        asyncio.run(drop_database(admin_dsn, name))


@dataclass
class Running:
    url: str
    settings: OversightSettings

    def get(self, path: str, role: str | None = "centre", **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers={**auth(role), **kwargs.pop("headers", {})}, timeout=60, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(settings: OversightSettings) -> Iterator[Running]:
    """The oversight app under uvicorn in a thread of its own (its own event loop), until the block ends."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"oversight-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("oversight did not start")
        time.sleep(0.05)
    try:
        yield Running(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(30)


class Position(NamedTuple):
    topic: str
    partition: int
    offset: int


class DirectFeed:
    """Applies stories through the real projector on the real database, as if read from Kafka
    (one partition per topic, offsets counting up): for tests where Kafka is not the point."""

    def __init__(self, settings: OversightSettings):
        self.settings = settings
        self.offsets = {topics.CASE_EVENTS: 0, topics.NOTIFY_DELIVERIES: 0}

    def records(self, stories: Iterable[CaseStory]) -> tuple[list[Position], list[dict[str, Any]]]:
        positions, bodies = [], []
        for story in stories:
            for body in story.bodies():
                topic = topics.NOTIFY_DELIVERIES if body["event_type"].startswith("Notification") else topics.CASE_EVENTS
                positions.append(Position(topic, 0, self.offsets[topic]))
                self.offsets[topic] += 1
                bodies.append(body)
        return positions, bodies

    async def apply(self, stories: Iterable[CaseStory]) -> int:
        positions, bodies = self.records(stories)
        pool = await asyncpg.create_pool(self.settings.dsn(), min_size=1, max_size=1)
        try:
            return await Projector(pool, audit_key=self.settings.audit_key.get_secret_value().encode(),
                                   checkpoint_every=self.settings.checkpoint_every).apply(positions, bodies)
        finally:
            await pool.close()


async def publish(kafka_bootstrap: str, stories: Iterable[CaseStory]) -> None:
    """Publish stories as the router and the notifier would: case events and deliveries, by case id."""
    for story in stories:
        await send(kafka_bootstrap, *story.events, topic=topics.CASE_EVENTS)
        if story.deliveries:
            await send(kafka_bootstrap, *story.deliveries, topic=topics.NOTIFY_DELIVERIES)
