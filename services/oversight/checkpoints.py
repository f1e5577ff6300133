"""Checkpoints of the audit chain: the head hash and the record count at intervals, kept in
``audit_checkpoints``, served at ``GET /v1/audit/checkpoints`` and published on Kafka.

The projector writes one every ``checkpoint_every`` records inside its batch; :class:`Checkpointer`
adds one when ``checkpoint_seconds`` passed and the head moved, then publishes what is not yet
published. HĐND and MTTQ keep copies; ``GET /v1/audit/verify?seq=…&hash=…`` later shows whether the
chain still passes through a copy. Any instance may run it: a checkpoint is keyed by its sequence
number, and rows being published are locked (SKIP LOCKED) so two instances do not both send them.
"""

import asyncio
import logging

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker

from contracts import ids
from contracts.events import AuditCheckpoint
from contracts.messaging import publish_all

log = logging.getLogger(__name__)
PRODUCER = "oversight"
MISSING_TOPIC_RETRY_SECONDS = 300.0


async def checkpoint_now(conn: asyncpg.Connection, older_than_seconds: float = 0.0) -> int | None:
    """Record the head as a checkpoint if it moved since the last one and that one is old enough."""
    return await conn.fetchval(
        "INSERT INTO audit_checkpoints (seq, hash) SELECT h.seq, h.hash FROM audit_head h"
        " WHERE h.seq > 0 AND NOT EXISTS (SELECT 1 FROM audit_checkpoints c WHERE c.seq >= h.seq"
        "   OR c.made_at > now() - make_interval(secs => $1))"
        " ON CONFLICT DO NOTHING RETURNING seq", older_than_seconds)


async def publish_pending(pool: asyncpg.Pool, broker: KafkaBroker, topic: str, batch: int = 500) -> int:
    """Publish checkpoints not yet published, oldest first; marked only after Kafka acknowledged them."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT seq, hash, made_at FROM audit_checkpoints WHERE NOT published ORDER BY seq LIMIT $1"
            " FOR UPDATE SKIP LOCKED", batch)
        if not rows:
            return 0
        items = []
        for r in rows:
            event_id = ids.event_id("audit-checkpoint", r["seq"])
            event = AuditCheckpoint(event_id=event_id, correlation_id=event_id, producer=PRODUCER,
                                    seq=r["seq"], head_hash=r["hash"], made_at=r["made_at"])
            items.append((topic, b"audit", event.model_dump_json().encode()))
        await publish_all(broker, items)
        await conn.execute("UPDATE audit_checkpoints SET published = true WHERE seq = ANY($1::bigint[])",
                           [r["seq"] for r in rows])
    return len(rows)


class Checkpointer:
    """Time-based checkpoints and their publication, as a background task of the service."""

    def __init__(self, pool: asyncpg.Pool, broker: KafkaBroker | None, bootstrap: str, topic: str,
                 every_seconds: float):
        self.pool, self.broker, self.bootstrap, self.topic = pool, broker, bootstrap, topic
        self.every_seconds = every_seconds
        # Publish the projector's count-based checkpoints soon, without waiting a whole period.
        self.tick = min(every_seconds, 5.0)
        self.topic_seen_at: float | None = None
        self.topic_missed_at = float("-inf")

    async def run(self) -> None:
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await checkpoint_now(conn, self.every_seconds)
                if self.broker is not None and self.topic and await self._topic_exists():
                    await publish_pending(self.pool, self.broker, self.topic)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - logged; the next tick tries again
                log.warning("audit checkpoint not made or not published yet: %s", error)
            await asyncio.sleep(self.tick)

    async def _topic_exists(self) -> bool:
        """Whether the topic is there; asked again every few minutes while it is not (the broker
        does not make topics on first use, and publishing to a missing one blocks and fails)."""
        loop = asyncio.get_running_loop()
        if self.topic_seen_at is not None or loop.time() - self.topic_missed_at < MISSING_TOPIC_RETRY_SECONDS:
            return self.topic_seen_at is not None
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="oversight-checkpoints")
        await admin.start()
        try:
            exists = self.topic in await admin.list_topics()
        finally:
            await admin.close()
        if exists:
            self.topic_seen_at = loop.time()
        else:
            self.topic_missed_at = loop.time()
            log.warning("topic %s does not exist: checkpoints are kept and served, not published, until it does",
                        self.topic)
        return exists
