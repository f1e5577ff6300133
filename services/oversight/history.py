"""The history on Kafka of ``case.events`` and ``notify.deliveries``, read partition by partition
from where the live projection began there (the first record, unless its group was started
elsewhere) up to chosen offsets, for the rebuild.

No consumer group: the rebuild owns every partition, commits nothing and leaves the live
projection's group alone. Each partition is read up to its target and no further (a record past it
is put back for a later, farther target), so the rebuild can stop exactly where the live one stands.
"""

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.oversight.handlers import TOPICS, body_of
from services.oversight.projector import Offsets, Projector, clashing_audited


class History:
    """The rebuild's reader of both topics, every partition assigned to it."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                         auto_offset_reset="earliest", client_id="oversight-rebuild")
        self.partitions: list[TopicPartition] = []
        # The next offset to read, per (topic, partition): what the rebuild has projected so far.
        self.positions: Offsets = {}
        # Each partition's first record on Kafka, and where the rebuild began reading it.
        self.beginnings: Offsets = {}
        self.started: Offsets = {}
        self.unreadable = 0

    async def start(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="oversight-rebuild")
        await admin.start()
        try:
            described = await admin.describe_topics(list(TOPICS))
        finally:
            await admin.close()
        self.partitions = [TopicPartition(t["topic"], p["partition"]) for t in described
                           for p in sorted(t["partitions"], key=lambda p: p["partition"])]
        await self.consumer.start()
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)
        begin = await self.consumer.beginning_offsets(self.partitions)
        self.beginnings = {(tp.topic, tp.partition): begin[tp] for tp in self.partitions}
        self.positions = dict(self.beginnings)

    def begin_at(self, starts: Offsets) -> None:
        """Start each partition not read yet where the live projection began in it."""
        for tp in self.partitions:
            key = (tp.topic, tp.partition)
            if key not in starts or key in self.started:
                continue
            if starts[key] > self.positions[key]:
                self.consumer.seek(tp, starts[key])
                self.positions[key] = starts[key]
            self.started[key] = self.positions[key]

    async def stop(self) -> None:
        await self.consumer.stop()

    async def project_until(self, targets: Offsets, projector: Projector, batch: int) -> None:
        """Read and project every partition up to (not including) its target offset."""
        def unfinished() -> list[TopicPartition]:
            return [tp for tp in self.partitions if self.positions[(tp.topic, tp.partition)] < targets.get((tp.topic, tp.partition), 0)]

        self.consumer.pause(*self.partitions)
        while todo := unfinished():
            self.consumer.resume(*todo)
            fetched = await self.consumer.getmany(*todo, timeout_ms=1000, max_records=batch)
            records: list[Any] = []
            bodies: list[dict[str, Any] | None] = []
            for tp, batch_records in fetched.items():
                key = (tp.topic, tp.partition)
                for record in batch_records:
                    if record.offset >= targets.get(key, 0):
                        self.consumer.seek(tp, record.offset)  # the next, farther target reads it again
                        break
                    records.append(record)
                    bodies.append(self._body(record))
                    self.positions[key] = record.offset + 1
            if records:
                # A record under an event id the live audit trail holds as the other kind was set
                # aside there (Projector.apply), whichever the order it was read in: so it is here.
                for i in await clashing_audited(projector.pool, "public.audit_log", bodies):
                    bodies[i] = None
                    self.unreadable += 1
                await projector.apply(records, bodies, self._set_aside)
            self.consumer.pause(*self.partitions)

    async def _set_aside(self, _i: int, _why: ValueError) -> None:
        self.unreadable += 1  # the live consumer dead-lettered it too

    def _body(self, record: Any) -> dict[str, Any] | None:
        """What the live consumer projects of a record; None for what it dead-lettered."""
        try:
            return body_of(record)
        except ValueError:  # ValidationError is one
            self.unreadable += 1
            return None
