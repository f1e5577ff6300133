"""Deadline timers: durable (rows in ``deadlines``) and safe with several router instances
(each due row is locked while it is escalated, and the others skip it).

A missed deadline climbs a chain — the handler's unit head, then the 1022 centre — one step
per interval, each step a CaseEscalated event on the case.

A deadline is escalated only once every unit's answer sent before it has been applied
(:class:`AnswersApplied`): a router back from a stop, or one whose group is still reading a
backlog of ``unit.responses``, once told citizens their case was late, and unit heads their unit
was, when the answer had come in time and sat unread behind the timers.
"""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import NamedTuple

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from contracts import topics
from services.router import ledger
from services.router.domain import LEVELS

log = logging.getLogger(__name__)
NEXT_LEVEL = dict(zip(LEVELS, LEVELS[1:]))  # handler → unit head → centre


class Snapshot(NamedTuple):
    """unit.responses as it was ``at``: each partition's (first, end) offsets."""

    at: datetime
    offsets: dict[TopicPartition, tuple[int, int]]


class AnswersApplied:
    """Up to when every unit's answer is applied, across the router instances: the moment of the
    latest snapshot of ``unit.responses``' ends that the responses group's committed offsets have
    all reached. An answer on the topic before that moment lies below those ends, and a committed
    offset is past work already saved. The next snapshot is taken when one is reached, so the
    moment trails the present by about a poll and the group's lag, and nothing grows meanwhile."""

    def __init__(self, bootstrap: str, group_id: str):
        self.group_id = group_id
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="router-timers")
        self.offsets = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="router-timers",
                                        enable_auto_commit=False)  # no group: it only reads the topic's ends
        self.started = False
        self.target: Snapshot | None = None
        self.until: datetime | None = None
        self.failing = False  # whether the last reading failed
        self.started_at = datetime.now(UTC)

    async def applied_until(self) -> datetime | None:
        """The moment, or None before any is known. Kafka not answering, the last one known: no
        later deadline is escalated while the answers cannot be read."""
        try:
            if not self.started:
                await self.admin.start()
                await self.offsets.start()
                self.started = True
            now = await self._snapshot()
            # A topic made again, or given other partitions, never reaches the ends it had: aimed
            # at the ends as they are now, the moment moves on again (else no deadline would be).
            if self.target is None or self.target.offsets.keys() != now.offsets.keys() or \
                    any(now.offsets[tp][1] < end for tp, (_, end) in self.target.offsets.items()):
                self.target = now
            ends = {tp: end for tp, (_, end) in self.target.offsets.items()}
            committed = await self.admin.list_consumer_group_offsets(self.group_id, partitions=list(ends))
            # No offset committed: the group starts at the beginning (auto_offset_reset=earliest).
            if all(_offset(committed.get(tp), now.offsets[tp][0]) >= end for tp, end in ends.items()):
                self.until, self.target = self.target.at, now
            self.failing = False
        except Exception as error:  # noqa: BLE001 - Kafka not answering, or answering oddly: the last moment holds
            if not self.failing:  # once an outage, not at every poll
                log.warning("could not read how far the units' answers are applied (%s); deadlines after %s"
                            " wait", type(error).__name__, self.until)
            self.failing = True
        return self.until

    def behind(self, now: datetime) -> float:
        """Seconds the deadlines wait for the answers: how far the moment trails ``now`` (from the
        router's start while none is known)."""
        return (now - (self.until or self.started_at)).total_seconds()

    async def _snapshot(self) -> Snapshot:
        at = datetime.now(UTC)  # before the ends are read: what was on the topic then lies below them
        [described] = await self.admin.describe_topics([topics.UNIT_RESPONSES])
        partitions = [TopicPartition(topics.UNIT_RESPONSES, p["partition"]) for p in described["partitions"]]
        if not partitions:
            raise KafkaError(f"{topics.UNIT_RESPONSES} has no partitions")
        firsts, ends = await self.offsets.beginning_offsets(partitions), await self.offsets.end_offsets(partitions)
        return Snapshot(at, {tp: (firsts[tp], ends[tp]) for tp in partitions})

    async def close(self) -> None:
        for stop in (self.offsets.stop, self.admin.close):  # either may have started alone
            with contextlib.suppress(Exception):
                await stop()


def _offset(committed, first: int) -> int:
    return committed.offset if committed is not None and committed.offset >= 0 else first


class Timers:
    def __init__(self, desk, pool: asyncpg.Pool, poll_seconds: float, answers: AnswersApplied | None = None):
        """``answers`` None: every answer is taken as applied (a test that applies them itself)."""
        self.desk, self.pool, self.poll_seconds, self.answers = desk, pool, poll_seconds, answers
        self.escalated = 0

    async def run(self) -> None:
        while True:
            try:
                fired = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("deadline check failed; trying again")
                fired = 0
            if not fired:
                await asyncio.sleep(self.poll_seconds)

    async def tick(self) -> int:
        """Escalate every passed deadline once; returns how many rows were handled.

        A row its case says is not due yet is moved to when the case says it is (the relay sets it
        right, if the case has moved on since). Left as it was, it was read again at every poll, and
        a hundred of them (rows a router with a shorter escalation step had set, before an
        upgrade lengthened it) filled every read: no other deadline was escalated meanwhile."""
        handled = 0
        before = None
        if self.answers is not None and (before := await self.answers.applied_until()) is None:
            return 0
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await ledger.due(conn, before=before)
            for row in rows:
                level = NEXT_LEVEL.get(row["level"])
                if level is None:
                    await conn.execute("UPDATE deadlines SET active = false WHERE case_id = $1 AND kind = $2",
                                       row["case_id"], row["kind"])
                    handled += 1
                    continue
                still_due = await asyncio.to_thread(self.desk.escalate, row["case_id"], row["kind"], level,
                                                    datetime.now(UTC))
                if isinstance(still_due, datetime):
                    await conn.execute("UPDATE deadlines SET due_at = $3 WHERE case_id = $1 AND kind = $2",
                                       row["case_id"], row["kind"], still_due)
                    handled += 1
                    continue
                self.escalated += int(still_due)
                handled += 1
                await conn.execute(
                    "UPDATE deadlines SET level = $3, due_at = $4, active = $5 WHERE case_id = $1 AND kind = $2",
                    row["case_id"], row["kind"], level, row["due_at"] + self.desk.escalation_step[row["kind"]],
                    still_due and level in NEXT_LEVEL)
        return handled
