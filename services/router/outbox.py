"""The outbox relay: publishes what the event store recorded, from its notification log.

The position of the last published notification is kept in ``outbox_position``, recorded while the
next batch goes out. A crash between the store's commit and the position's re-publishes from that
position (up to two batches) — never loses; consumers recognise the repeat by the event id, which
is derived from (case id, version).

Only one relay in the mesh publishes at a time: each router instance tries a PostgreSQL advisory
lock and the one that holds it relays, the others stand by and take over if it dies.

The relay is woken by the event store itself: every insert, by any router instance, sends a NOTIFY
on the store's channel as it commits, and the leader LISTENs on it. Between notifications it does
not ask the database anything; a slow poll remains as a safety net.

A relay that fails starts again from the stored position, however often it takes: a stored event
this code cannot read (one a newer router wrote, in a rolling upgrade) holds every case after it
until a router that reads it leads, and is never skipped, since consumers take only events newer than
what they have. Such a stall is shown: ``failing_since`` and ``failure`` (in ``/healthz`` and
``router_outbox_failing_seconds``) say, on every router that met it, since when the outbox has not
got past it, and what it was.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts import ids, topics
from contracts.events import CASE_EVENT
from contracts.messaging import send_all
from contracts.postgres import connect
from contracts.runtime import wait_a_while
from services.router import ledger
from services.router.domain import CONTRACT_TYPES

log = logging.getLogger(__name__)
LOCK_KEY = 1022_0001
PRODUCER = "router"

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_position (
    name text PRIMARY KEY,
    position bigint NOT NULL
);
INSERT INTO outbox_position (name, position) VALUES ('case.events', 0) ON CONFLICT DO NOTHING;
""" + ledger.SCHEMA
_POSITION = "SELECT position FROM outbox_position WHERE name = 'case.events'"
# Held while the tables are made: routers starting together on an empty database would race.
SCHEMA_LOCK = 1022_0002


# The event store's inserts lock its table (EXCLUSIVE, so notification ids commit in order), and
# that lock conflicts with VACUUM and ANALYZE: while one runs, no case is opened. By default
# autovacuum comes after 20 % growth and is throttled, so its passes grow with the table; one that
# holds an insert past deadlock_timeout (1 s) is cancelled (seen in a benchmark run: p99 1 s), never
# finishes, and ends as the forced anti-wraparound pass over the whole table, which cannot be
# cancelled: 12 s per million events here (bench/bench_store_vacuum.py). Instead: a pass per 10,000
# new events, unthrottled, freezing what it reads (about 50 ms), so later passes, the forced one
# too, skip every page already frozen (45 ms at a million events).
EVENT_STORE_UPKEEP = """
ALTER TABLE {table} SET (autovacuum_vacuum_insert_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_cost_delay = 0, autovacuum_freeze_min_age = 0, log_autovacuum_min_duration = 250)
"""

# ANALYZE conflicts with the inserts' lock too, and autovacuum runs it after every 10 % of growth.
# With the default statistics target it samples 30,000 rows, the serialized events with them: 0.9
# to 1.9 s on a 350,000-event table while the soak ran, and one an insert waits a second for is
# cancelled and comes back. The store is only ever read by key and by notification id, for which
# 3,000 rows give the planner all it uses; the events' bodies are never filtered or sorted on.
EVENT_STORE_STATISTICS = """
ALTER TABLE {table} ALTER COLUMN originator_id SET STATISTICS 10, ALTER COLUMN originator_version SET STATISTICS 10,
    ALTER COLUMN topic SET STATISTICS 10, ALTER COLUMN notification_id SET STATISTICS 10,
    ALTER COLUMN state SET STATISTICS 0
"""


async def tune_event_store(conn: asyncpg.Connection, table: str) -> None:
    """Autovacuum and statistics settings for the event store's table that keep its vacuums and
    analyses short (above)."""
    quoted = ".".join(f'"{part}"' for part in table.split("."))
    await conn.execute(EVENT_STORE_UPKEEP.format(table=quoted))
    await conn.execute(EVENT_STORE_STATISTICS.format(table=quoted))


async def create_schema(conn: asyncpg.Connection) -> None:
    """The relay's and the ledger's tables, created if missing, by one router at a time."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(SCHEMA)


class NewerThanThisRouter(Exception):
    """A stored event carries what this router's contract does not know: a newer router wrote it."""


def to_contract(domain_event: Any) -> Any:
    """The contract event (a CaseEvent) for one stored aggregate event.

    An event with a field this router's contract does not know was saved by a newer router (both
    run during a rolling upgrade, and either may lead the relay): published as this router reads
    it, the field would be gone from ``case.events`` for good, since its event id is taken. It is
    refused instead, and the relay waits at it until a router that knows it leads (as it does at
    an event of a kind it does not know)."""
    name = type(domain_event).__name__
    meta = domain_event.meta
    case_id = domain_event.originator_id
    fields = {
        **domain_event.payload,
        "event_type": CONTRACT_TYPES[name],
        "event_id": ids.event_id("case", case_id, domain_event.originator_version),
        "case_id": case_id,
        "version": domain_event.originator_version,
        "occurred_at": domain_event.timestamp,
        "producer": PRODUCER,
        "correlation_id": meta.get("correlation_id") or case_id,
        "causation_id": meta.get("causation_id"),
        "traceparent": meta.get("traceparent"),
        "tracestate": meta.get("tracestate"),
    }
    contract = CASE_EVENT.validate_python(fields)
    unknown = domain_event.payload.keys() - type(contract).model_fields.keys()
    if unknown:
        raise NewerThanThisRouter(f"{name} of case {case_id} version {domain_event.originator_version} has"
                                  f" {', '.join(sorted(unknown))}, which this router does not know")
    return contract


def messages_for(event: Any) -> list[tuple[str, bytes, bytes]]:
    """Where a case event goes: always ``case.events`` by case, and assignments also by unit."""
    value = event.model_dump_json().encode()
    out = [(topics.CASE_EVENTS, str(event.case_id).encode(), value)]
    if event.event_type == "AssignmentIssued":
        out.append((topics.UNIT_ASSIGNMENTS, event.unit.id.encode(), value))
    return out


class Relay:
    def __init__(self, desk: Any, producer: AIOKafkaProducer, dsn: str, poll_seconds: float, batch: int = 500,
                 command_timeout: float = 30.0):
        self.desk, self.producer, self.dsn = desk, producer, dsn
        self.poll_seconds, self.batch = poll_seconds, batch
        # A leader whose connection stops answering (its network to PostgreSQL cut) gives up after
        # this long and starts again, instead of waiting for a record forever while holding the lead.
        self.command_timeout = command_timeout
        self.wake = asyncio.Event()
        self.position = 0
        self.published = 0
        self.recorded = 0  # the stored position, as last read or recorded
        self.failing_since: float | None = None  # time.time() of the first failure since the relay last got on
        self.failure: str | None = None  # the last failure's kind
        self.stuck_at = 0  # the stored position when that failure came
        self.is_leader = False
        self.recording: asyncio.Task | None = None

    async def run(self) -> None:
        """Relay forever; on any failure wait a moment and start again from the stored position."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("outbox relay failed; restarting from the stored position")
                self.is_leader = False
                if self.failing_since is None:
                    self.failing_since, self.stuck_at = time.time(), self.recorded
                self.failure = type(error).__name__
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        conn = await connect(self.dsn, command_timeout=self.command_timeout)
        try:
            await create_schema(conn)
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                # Another router leads. A stall is shown by every router that met it until the stored
                # position passes where it was met: the lead passes from one failing router to the
                # next every second or so, and each would otherwise show a failure a second old.
                # One met with nothing left to publish (PostgreSQL restarted on a quiet night) is over.
                if self.failing_since is not None and await self._got_past(conn):
                    self._got_on()
                await asyncio.sleep(1.0)
            self.is_leader = True
            await conn.add_listener(self.desk.recorder.channel_name, self._notified)
            self.position = self.recorded = await conn.fetchval(_POSITION)
            log.info("outbox relay leading from notification %s", self.position)
            while True:
                # Cleared before the round, not after: cases saved while it runs wake the next one
                # at once instead of waiting out the poll.
                self.wake.clear()
                sent = await self._relay_once(conn)
                if sent < self.batch:
                    await wait_a_while(self.wake, self.poll_seconds)
        finally:
            self.is_leader = False
            if self.recording is not None:
                # Let the last position be recorded if it can be; if not, its batch is published
                # again. The record is over before its connection closes.
                await asyncio.wait([self.recording], timeout=5)
                self.recording.cancel()
                await asyncio.gather(self.recording, return_exceptions=True)
                self.recording = None
            try:
                await conn.close(timeout=5)
            except Exception:  # noqa: BLE001 - a connection that will not close politely is dropped
                conn.terminate()

    def _got_on(self) -> None:
        self.failing_since = self.failure = None

    async def _got_past(self, conn: asyncpg.Connection) -> bool:
        """Whether the outbox has got past where this router's failure was met, or has nothing to publish."""
        stored = await conn.fetchval(_POSITION)
        newest = await asyncio.to_thread(self.desk.recorder.max_notification_id)
        return stored > self.stuck_at or stored >= (newest or 0)

    def _notified(self, *_: Any) -> None:
        self.wake.set()

    async def _relay_once(self, conn: asyncpg.Connection) -> int:
        notifications = await asyncio.to_thread(
            self.desk.recorder.select_notifications, start=self.position + 1, limit=self.batch)
        if not notifications:
            await self._recorded()  # nothing new: the stored position catches up
            self._got_on()
            return 0
        # Only the cases' events are published; the directory's installs stay in the store.
        events = [to_contract(e) for n in notifications
                  if type(e := self.desk.mapper.to_domain_event(n)).__name__ in CONTRACT_TYPES]
        await self._publish(events)
        # The batch is recorded while the next one is read and published, so a new case does not
        # wait for the last batch's bookkeeping; batches are recorded one at a time, in order.
        await self._recorded()
        self.recording = asyncio.create_task(self._record(conn, events, notifications[-1].id))
        self.position = notifications[-1].id
        self.published += len(events)
        return len(notifications)

    async def _record(self, conn: asyncpg.Connection, events: Sequence[Any], position: int) -> None:
        async with conn.transaction():
            # The router's own tables move with the position: a re-publish re-applies, harmlessly.
            await ledger.apply(conn, events, self.desk.escalation_step)
            await conn.execute("UPDATE outbox_position SET position = $1 WHERE name = 'case.events'", position)
        self.recorded = position
        self._got_on()

    async def _recorded(self) -> None:
        """Wait for the batch being recorded, if any; its failure is the relay's."""
        if self.recording is not None:
            # Shielded: a relay told to stop while waiting here still lets the record finish (above).
            await asyncio.shield(self.recording)
            self.recording = None

    async def _publish(self, events: Sequence[Any]) -> None:
        """Every message with its case's trace context in the headers; returns once all are acknowledged."""
        items, headers = [], []
        for event in events:
            context = {k: v for k, v in (("traceparent", event.traceparent), ("tracestate", event.tracestate)) if v}
            for message in messages_for(event):
                items.append(message)
                headers.append(context)
        await send_all(self.producer, items, headers)
