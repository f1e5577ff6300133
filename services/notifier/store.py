"""The notifier's tables: what it knows of each case, and every delivery with its outcome.

``deliveries`` is keyed by the delivery key and doubles as the queue of work: a delivery is
inserted ``pending`` in the same transaction as the case record that called for it, claimed
under a lease (``claim`` and ``lease_until``; it stays ``pending``), and finished ``sent`` or
``failed``, or put back for its next try. ``published`` says whether its outcome is on
``notify.deliveries`` yet.
Both tables hold personal data (the citizen's contact): nothing here is ever logged.
"""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import asyncpg
import orjson

from contracts.batching import GroupCommit
from contracts.postgres import add_column
from services.notifier.domain import CHANNEL_NAMES, CaseRecord, Delivery, remember_refused

SCHEMA = f"""
DO $$ BEGIN
    -- The foundation's first deliveries table had another shape: keep it aside, start afresh.
    IF EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'deliveries')
       AND NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                       AND table_name = 'deliveries' AND column_name = 'payload') THEN
        ALTER TABLE deliveries RENAME TO deliveries_foundation;
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS case_records (
    case_id uuid PRIMARY KEY, version int NOT NULL DEFAULT 0, record jsonb NOT NULL DEFAULT '{{}}',
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id uuid PRIMARY KEY, seq bigserial NOT NULL, case_id uuid NOT NULL, cause_event_id uuid NOT NULL,
    correlation_id uuid NOT NULL, traceparent text, source_topic text NOT NULL,
    recipient text NOT NULL, channel text NOT NULL, target text NOT NULL, template text NOT NULL,
    subject text NOT NULL, body text NOT NULL, payload jsonb NOT NULL, note text,
    status text NOT NULL, attempts int NOT NULL DEFAULT 0, next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz, claim uuid, last_error text, permanent boolean NOT NULL DEFAULT false,
    published boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz);
-- Half of each page is left free: a record's or delivery's next version then goes to the same page,
-- where PostgreSQL logs only the bytes that changed, not the whole row (its text and event) again.
-- A delivery changes three times (claimed, finished, announced), a record with each case event.
ALTER TABLE case_records SET (fillfactor = 50);
-- Whether some try may have reached the receiver though none was recorded as sent: one that went
-- out unanswered (a time-out, a dropped connection), or one whose sender died mid-try. Such a
-- citizen's message never goes on by another route: they might hear it twice.
{add_column("deliveries", "maybe_taken", "boolean NOT NULL DEFAULT false")}
ALTER TABLE deliveries SET (fillfactor = 50);
-- The unit a webhook goes to, whose key signs it (providers.WebhookProvider); none on rows from before.
{add_column("deliveries", "unit_id", "text")}
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS deliveries_by_case ON deliveries (case_id, seq);
CREATE INDEX IF NOT EXISTS deliveries_unpublished ON deliveries (seq) WHERE NOT published AND status IN ('sent', 'failed');
-- A delivery in any other status would be neither claimed nor announced: lost without a word.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'deliveries_status_known'
                   AND conrelid = 'deliveries'::regclass) THEN
        ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_known
            CHECK (status IN ('pending', 'sending', 'sent', 'failed'));
    END IF;
END $$;
"""
# Held while the tables are made: notifiers starting together on an empty database would race
# (PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent one), and all but one failed.
SCHEMA_LOCK = 1022_0004

DELIVERY_COLUMNS = ("delivery_id, case_id, cause_event_id, correlation_id, recipient, channel, target, template, subject,"
                    " body, payload, source_topic, traceparent, note, unit_id")
# Messages to one citizen go out in the order their events happened: one still being tried holds back the later ones.
# So do a unit's about one case at one address, by the case's version: a unit whose service was down
# was told a case had been taken from it and then, its assignment's retry coming later, given the
# case; a case routed back to it reached it before the notice that it had once been taken away. Its
# deliveries come from two topics (the assignment from unit.assignments, the notice from
# case.events), so the order they were planned in is not the case's: the version is. (Only among
# deliveries planned: one whose topic's reader lags behind the other's is not waited for.)
# The earlier message is looked for by case (deliveries_by_case). Its state is written as "not
# finished" on purpose: "status IN ('pending', 'sending')" let the planner answer the question from
# deliveries_due instead, reading every waiting delivery for each candidate. With some statistics it
# did, when the notifier was behind: 49 ms a claim, 0.8-3 s with 5,000-24,000 waiting. The two
# forms mean the same (a delivery is pending, sent or failed; or sending, below); this one fits no other index.
# A claim leaves the status alone and touches no indexed column, so the row's new version is a
# heap-only one (its page has room, see SCHEMA): no new entry in any of the four indexes. Rows
# "sending" are from notifiers before that, and are claimed like "pending" ones.
CLAIM = f"""
WITH due AS (
    SELECT d.delivery_id FROM deliveries d
    WHERE d.channel = $1 AND d.status IN ('pending', 'sending')
      AND d.next_attempt_at <= now() - make_interval(secs => $6)
      AND (d.lease_until IS NULL OR d.lease_until < now()) AND d.target <> ALL($5::text[])
      AND NOT EXISTS (
          SELECT 1 FROM deliveries e WHERE e.case_id = d.case_id AND e.status NOT IN ('sent', 'failed')
            AND CASE WHEN d.recipient = 'citizen' THEN e.recipient = 'citizen' AND e.seq < d.seq
                     ELSE e.recipient <> 'citizen' AND e.target = d.target
                          AND (e.payload->>'version')::bigint < (d.payload->>'version')::bigint END)
    ORDER BY d.next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE deliveries SET attempts = attempts + 1, claim = $3,
    lease_until = now() + make_interval(secs => $4), updated_at = now(),
    maybe_taken = deliveries.maybe_taken OR deliveries.lease_until IS NOT NULL  -- a lease run out: its try unknown
FROM due WHERE deliveries.delivery_id = due.delivery_id
RETURNING {", ".join("deliveries." + c.strip() for c in DELIVERY_COLUMNS.split(","))}, deliveries.attempts
"""


# Deliveries as one array per column: one statement for a batch, in the batch's order (``seq``
# orders a citizen's messages); a delivery key already known is left as it is.
INSERT = f"""
INSERT INTO deliveries ({DELIVERY_COLUMNS}, status, last_error, permanent, finished_at)
SELECT d.delivery_id, d.case_id, d.cause_event_id, d.correlation_id, d.recipient, d.channel, d.target, d.template,
    d.subject, d.body, d.payload::jsonb, d.source_topic, d.traceparent, d.note, d.unit_id, d.status, d.last_error,
    d.permanent, CASE WHEN d.permanent THEN now() END
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
            $17::text[], $18::bool[]) WITH ORDINALITY
    AS d(delivery_id, case_id, cause_event_id, correlation_id, recipient, channel, target, template, subject, body,
         payload, source_topic, traceparent, note, unit_id, status, last_error, permanent, n)
ORDER BY d.n
ON CONFLICT (delivery_id) DO NOTHING
RETURNING delivery_id
"""

# How tries ended, many at once; only the claim that made a try may finish it. "pending" puts the
# delivery back for another try after its delay.
FINISH = """
UPDATE deliveries d SET status = f.status, last_error = f.error, permanent = f.permanent, lease_until = NULL,
    next_attempt_at = CASE WHEN f.status = 'pending' THEN now() + make_interval(secs => f.delay) ELSE d.next_attempt_at END,
    finished_at = CASE WHEN f.status = 'pending' THEN NULL ELSE now() END, updated_at = now(),
    maybe_taken = d.maybe_taken OR f.maybe_taken
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bool[], $6::float8[], $7::bool[])
    AS f(delivery_id, claim, status, error, permanent, delay, maybe_taken)
WHERE d.delivery_id = f.delivery_id AND d.claim = f.claim
"""

# A citizen's delivery refused, when its message goes on by another route.
FAIL_OVER = """
UPDATE deliveries SET status = 'failed', last_error = $3, permanent = $4, lease_until = NULL, finished_at = now(),
    updated_at = now()
WHERE delivery_id = $1 AND claim = $2 AND status IN ('pending', 'sending')
RETURNING seq
"""
# Whether an earlier try of this claim's delivery may have reached the receiver.
MAYBE_TAKEN = "SELECT maybe_taken FROM deliveries WHERE delivery_id = $1 AND claim = $2 FOR UPDATE"
# The same citizen's later messages waiting on the channel and address that refused an earlier one on
# every try; none that some try may have reached (``maybe_taken``), nor one leased (a lease that ran out
# leaves its try unknown). They wait behind the earlier one, so they are seldom tried yet.
WAITING_BEHIND = f"""
SELECT {DELIVERY_COLUMNS}, seq FROM deliveries
WHERE case_id = $1 AND recipient = 'citizen' AND channel = $2 AND target = $3 AND seq > $4
  AND status IN ('pending', 'sending') AND lease_until IS NULL AND NOT maybe_taken
ORDER BY seq FOR UPDATE
"""
MOVED = """
UPDATE deliveries SET status = 'failed', last_error = $2, permanent = false, finished_at = now(), updated_at = now()
WHERE delivery_id = $1
"""


class _Finish(NamedTuple):
    delivery_id: uuid.UUID
    claim: uuid.UUID
    status: str  # sent | failed | pending
    error: str | None
    permanent: bool
    delay: float
    maybe_taken: bool = False  # this try went out and no answer came


@dataclass(frozen=True)
class Outcome:
    """How a delivery ended, as ``notify.deliveries`` will tell it."""

    delivery: Delivery
    status: str  # sent | failed
    attempts: int
    error: str | None
    permanent: bool


def _row(d: Delivery) -> tuple[Any, ...]:
    return (d.delivery_id, d.case_id, d.cause_event_id, d.correlation_id, d.recipient, d.channel, d.target,
            d.template, d.subject, d.text, orjson.dumps(d.payload).decode(), d.source_topic, d.traceparent, d.note,
            d.unit_id, "failed" if d.undeliverable else "pending", d.undeliverable, d.undeliverable is not None)


def _delivery(row: asyncpg.Record) -> Delivery:
    return Delivery(row["delivery_id"], row["case_id"], row["cause_event_id"], row["correlation_id"], row["recipient"],
                    row["channel"], row["target"], row["template"], row["subject"], row["body"],
                    orjson.loads(row["payload"]), row["source_topic"], row["traceparent"], row["note"],
                    unit_id=row["unit_id"])


def backlog_of(waiting: dict[str, tuple[int, float]], unannounced: int) -> dict[str, int]:
    """:meth:`DeliveryLog.backlog` from what :meth:`DeliveryLog.waiting` and ``unannounced`` gave."""
    return {**{f"pending_{channel}": n for channel, (n, _) in waiting.items()}, "unannounced": unannounced}


class DeliveryLog:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool
        # How tries end — sent, failed, or put back for later — is written for many deliveries at
        # once: a statement and a commit per batch, not per delivery.
        self._finish: GroupCommit[_Finish, None] = GroupCommit(self._write_finishes)

    async def create(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await conn.execute(SCHEMA)

    async def take(self, case_ids: Sequence[uuid.UUID],
                   apply: Callable[[dict[uuid.UUID, CaseRecord]], list[Delivery]]) -> int:
        """In one transaction: lock these cases' records, let ``apply`` change them and name the
        deliveries they call for, and store both. Returns how many deliveries were new."""
        ordered = sorted(set(case_ids))  # one lock order for every instance: no deadlocks in a rebalance
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany("INSERT INTO case_records (case_id) VALUES ($1) ON CONFLICT DO NOTHING",
                                   [(c,) for c in ordered])
            rows = await conn.fetch("SELECT case_id, record FROM case_records WHERE case_id = ANY($1::uuid[])"
                                    " ORDER BY case_id FOR UPDATE", ordered)
            records = {r["case_id"]: CaseRecord.from_json(orjson.loads(r["record"])) for r in rows}
            before = {c: rec.version for c, rec in records.items()}
            deliveries = apply(records)
            await conn.executemany(
                "UPDATE case_records SET version = $2, record = $3::jsonb, updated_at = now() WHERE case_id = $1",
                [(c, rec.version, orjson.dumps(rec).decode()) for c, rec in records.items()  # orjson writes a dataclass as its fields
                 if rec.version != before[c]])
            return await self._insert(conn, deliveries)

    async def add_reading(self, case_ids: Sequence[uuid.UUID],
                          choose: Callable[[dict[uuid.UUID, CaseRecord]], list[Delivery]]) -> int:
        """In one transaction: read these cases' records (those there are), let ``choose`` name the
        deliveries to store, and store them. The records are share-locked until then, so a case
        event taken meanwhile (``take``) is applied either before the reading or after the
        deliveries are stored: never between."""
        ordered = sorted(set(case_ids))  # the order ``take`` locks in
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch("SELECT case_id, record FROM case_records WHERE case_id = ANY($1::uuid[])"
                                    " ORDER BY case_id FOR SHARE", ordered)
            records = {r["case_id"]: CaseRecord.from_json(orjson.loads(r["record"])) for r in rows}
            return await self._insert(conn, choose(records))

    async def add(self, deliveries: Sequence[Delivery]) -> int:
        """Store deliveries that need no case record; a known delivery key is left as it is."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._insert(conn, deliveries)

    @staticmethod
    async def _insert(conn: asyncpg.Connection, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        new = await conn.fetch(INSERT, *(list(column) for column in zip(*map(_row, deliveries))))
        return len(new)

    async def claim(self, channel: str, limit: int, lease_seconds: float, busy: Sequence[str] = (),
                    overdue_seconds: float = 0.0) -> tuple[uuid.UUID, list[tuple[Delivery, int]]]:
        """Lease up to ``limit`` deliveries of a channel due at least ``overdue_seconds`` ago, none to a
        receiver in ``busy``; each try is counted before it is made, so a crash in the middle of a
        send leaves an honest count."""
        token = uuid.uuid4()
        rows = await self.pool.fetch(CLAIM, channel, limit, token, lease_seconds, list(busy), overdue_seconds)
        return token, [(_delivery(r), r["attempts"]) for r in rows]

    async def give_back(self, claim: uuid.UUID, delivery_ids: Sequence[uuid.UUID]) -> None:
        """Release deliveries claimed but not tried: due again at once, their try not counted."""
        await self.pool.execute("UPDATE deliveries SET attempts = attempts - 1, lease_until = NULL, updated_at = now()"
                                " WHERE delivery_id = ANY($1::uuid[]) AND claim = $2", list(delivery_ids), claim)

    async def sent(self, delivery_id: uuid.UUID, claim: uuid.UUID) -> None:
        await self._finish(_Finish(delivery_id, claim, "sent", None, False, 0.0))

    async def retry_later(self, delivery_id: uuid.UUID, claim: uuid.UUID, delay: float, error: str,
                          maybe_taken: bool = False) -> None:
        await self._finish(_Finish(delivery_id, claim, "pending", error, False, delay, maybe_taken))

    async def failed(self, delivery_id: uuid.UUID, claim: uuid.UUID, error: str, permanent: bool) -> None:
        await self._finish(_Finish(delivery_id, claim, "failed", error, permanent, 0.0))

    async def fail_over(self, delivery: Delivery, claim: uuid.UUID, error: str,
                        next_route: Callable[[Delivery, CaseRecord, str | None], Delivery | None],
                        permanent: bool = True, untried: bool = False) -> list[Delivery]:
        """Fail a citizen's delivery its channel refused (for good, or on every try) and, in the same
        transaction, store what ``next_route`` makes of it from the case's record: the same message by
        the citizen's next route (:func:`~services.notifier.domain.follow_on`, whose third argument
        says why a message moves untried). The follow-on takes the failed one's place in the
        citizen's order (its ``seq``), so no later message overtakes it. One refused on every try goes
        on only if no try of it may have got through (``maybe_taken``), as does one this notifier
        could not try (``untried``: the channel is not configured here). For one refused on every
        try, the citizen's later messages waiting on that channel and address then go on by the
        same route with it, rather than each spending its own hour of tries there. Only the claim
        that made the try may; returns the follow-ons stored, the failed delivery's first."""
        async with self.pool.acquire() as conn, conn.transaction():
            saved = await conn.fetchval("SELECT record FROM case_records WHERE case_id = $1 FOR UPDATE",
                                        delivery.case_id)
            record = CaseRecord.from_json(orjson.loads(saved)) if saved else CaseRecord()
            after, refused = next_route(delivery, record, None), error
            if (after is not None and (untried or not permanent)
                    and await conn.fetchval(MAYBE_TAKEN, delivery.delivery_id, claim)):
                # Refused now, but an earlier try may have got through: not sent a second time elsewhere.
                after, error = None, f"{error}; an earlier try went unanswered, so not sent by another route"
            if after is not None:
                error = f"{error}; sent by {CHANNEL_NAMES[after.channel]} instead"
            seq = await conn.fetchval(FAIL_OVER, delivery.delivery_id, claim, error, permanent)
            if seq is None or after is None:
                return []  # another claim has it, or the failure is final
            moves = [(delivery, seq, after)]
            if not permanent:
                if saved:  # the citizen's next messages skip the channel for a while (domain.citizen_route)
                    remember_refused(record, delivery.channel, datetime.now(UTC))
                    await conn.execute("UPDATE case_records SET record = $2::jsonb, updated_at = now()"
                                       " WHERE case_id = $1", delivery.case_id, orjson.dumps(record).decode())
                why = (f"not tried by {CHANNEL_NAMES[delivery.channel]}: it refused an earlier message to this"
                       f" citizen on every try ({refused})")
                for row in await conn.fetch(WAITING_BEHIND, delivery.case_id, delivery.channel, delivery.target, seq):
                    later = _delivery(row)
                    moved = next_route(later, record, why)
                    if moved is not None:
                        await conn.execute(MOVED, later.delivery_id,
                                           f"{why}; sent by {CHANNEL_NAMES[moved.channel]} instead")
                        moves.append((later, row["seq"], moved))
            await self._insert(conn, [moved for _, _, moved in moves])
            await conn.executemany("UPDATE deliveries SET seq = $2 WHERE delivery_id = $1",
                                   [(moved.delivery_id, seq) for _, seq, moved in moves])
            return [moved for _, _, moved in moves]

    async def _write_finishes(self, finishes: list[_Finish]) -> None:
        # In key order, so two notifiers finishing overlapping rows lock them in the same order.
        await self.pool.execute(FINISH, *(list(column) for column in zip(*sorted(finishes))))

    async def announce(self, limit: int, publish: Callable[[list[Outcome]], Awaitable[None]]) -> int:
        """Hand finished, unannounced outcomes to ``publish``; mark them announced once it returned.

        The rows stay locked meanwhile, so two notifiers never announce the same ones at once.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {DELIVERY_COLUMNS}, status, attempts, last_error, permanent FROM deliveries"
                " WHERE NOT published AND status IN ('sent', 'failed') ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit)
            if not rows:
                return 0
            await publish([Outcome(_delivery(r), r["status"], r["attempts"], r["last_error"], r["permanent"])
                           for r in rows])
            await conn.execute("UPDATE deliveries SET published = true WHERE delivery_id = ANY($1::uuid[])",
                               [r["delivery_id"] for r in rows])
            return len(rows)

    async def backlog(self) -> dict[str, int]:
        """Deliveries waiting to be sent, by channel, and outcomes waiting to be announced."""
        return backlog_of(await self.waiting(), await self.unannounced())

    async def unannounced(self) -> int:
        return await self.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE NOT published AND status IN ('sent', 'failed')")

    async def waiting(self) -> dict[str, tuple[int, float]]:
        """By channel, how many deliveries wait to be sent and for how many seconds the oldest has."""
        rows = await self.pool.fetch(
            "SELECT channel, count(*) AS n, extract(epoch FROM now() - min(created_at))::float8 AS age"
            " FROM deliveries WHERE status IN ('pending', 'sending') GROUP BY channel")
        return {r["channel"]: (r["n"], r["age"]) for r in rows}
