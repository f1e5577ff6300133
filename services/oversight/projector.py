"""The projector: applies a batch of records from ``case.events`` and ``notify.deliveries`` to the
read models and the audit chain, exactly once in effect.

A batch is one transaction: the events, the case rows they change, the audit records, the
checkpoints and the consumer position (``consumer_offsets``) commit together, so a batch read again
after a crash changes nothing; outbox re-publishes are recognised by event id. Each kind of write is
one statement over arrays (``unnest``) whatever the batch size, not a round trip per event.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import orjson

from services.oversight.chain import audited_text, chain_hash
from services.oversight.masking import CONTACTS, PHONES_FIRST_AND_LAST
from services.oversight.projection import (CASE_COLUMNS, CASE_EVENT_COLUMNS, DELIVERY_COLUMNS, DELIVERY_TYPES,
                                           FOLD_VERSION, fold, stored_columns, timestamp)

log = logging.getLogger(__name__)
# Listeners (the audit stream's live follow) are told the new head when a batch commits.
AUDIT_CHANNEL = "oversight_audit"
# Kafka offsets by (topic, partition).
Offsets = dict[tuple[str, int], int]

class OtherFold(RuntimeError):
    """The read models were folded again by an oversight of another fold: this one must not write them."""


UPSERT_CASES = (
    f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(CASE_COLUMNS.values()))
    + ") ON CONFLICT (case_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in CASE_COLUMNS if c != "case_id"))


def _insert_events(table: str, columns: dict[str, str]) -> str:
    """An event's ``stored_columns``, then its body, for a batch. Times are given as the fold reads
    them, not as text for PostgreSQL to read: the two read some differently (a comma before the
    fraction, an offset past 15:59)."""
    return (f"INSERT INTO {table} ({', '.join(columns)}, body) SELECT * FROM unnest("
            + ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(columns.values()))
            + f", ${len(columns) + 1}::text[]::jsonb[]) ON CONFLICT DO NOTHING RETURNING event_id")


_INSERT_CASE_EVENTS = _insert_events("case_events", CASE_EVENT_COLUMNS)
_INSERT_DELIVERIES = _insert_events("deliveries", DELIVERY_COLUMNS)
_INSERT_AUDIT = (
    "INSERT INTO audit_log (seq, event_id, event_type, case_id, occurred_at, canonical, prev_hash, hash)"
    " SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::uuid[], $5::timestamptz[], $6::text[],"
    " $7::text[], $8::text[])")
# The events kept of each case past a version, by the case's index.
_EARLIER_EVENTS = ("SELECT e.case_id, e.body::text AS body FROM unnest($1::uuid[], $2::int[]) AS b (case_id, past)"
                   " JOIN case_events e ON e.case_id = b.case_id AND e.version > b.past")
_SAVE_OFFSETS = (
    "INSERT INTO consumer_offsets (topic, partition, next_offset, first_offset)"
    " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[])"
    " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset)")


# Awaited for each record set aside (its index in the batch, and why): its dead letter.
SetAside = Callable[[int, ValueError], Awaitable[Any]]


class Position(Protocol):
    """Where a record came from: a Kafka ``ConsumerRecord`` has these, and so do the rebuild's."""

    topic: str
    partition: int
    offset: int


class Projector:
    """Applies batches of records; ``applied`` counts the events that were new."""

    def __init__(self, pool: asyncpg.Pool, *, audit_key: bytes = b"", checkpoint_every: int = 1000,
                 notify: bool = True):
        self.pool = pool
        self.audit_key = audit_key
        self.checkpoint_every = checkpoint_every
        self.notify = notify
        self.applied = 0
        # audit_form, once read: whether it has a row, its masked_since and its contacts_since.
        self.masking: tuple[bool, datetime | None, datetime | None] | None = None

    async def apply(self, records: Sequence[Position], bodies: Sequence[dict[str, Any] | None],
                    set_aside: SetAside | None = None) -> int:
        """Apply one batch; ``bodies[i]`` is the parsed record ``records[i]`` (None: dead-lettered).

        The audit trail files an event id once, across both topics. A record under an id it holds
        as the other kind (a delivery under a case event's id, or the other way round) failed its
        batch at every reading, and the projection stopped there for good. Such a record is set
        aside (``set_aside(i, why)`` is awaited: its dead letter) and the batch applied without it.
        In one batch, the case event is kept and the delivery set aside; across batches, the
        first applied is kept; the audit trail says which (the rebuild sets aside the same)."""
        bodies = list(bodies)
        while True:
            clashing = _clashing_within(bodies)
            if not clashing:
                try:
                    return await self._apply(records, bodies)
                except asyncpg.UniqueViolationError as error:
                    if error.constraint_name != "audit_log_event_id_key" or not (
                            clashing := await self._clashing_audited(bodies)):
                        raise
            for i in clashing:
                other = "a case event" if _is_delivery(bodies[i]) else "a delivery record"
                why = ValueError(f"event id {bodies[i]['event_id']} is already {other}'s: the audit trail files"
                                 " an id once")
                log.error("%s[%s]@%s set aside: its event id is already %s's", records[i].topic,
                          records[i].partition, records[i].offset, other)
                if set_aside is not None:
                    await set_aside(i, why)
                bodies[i] = None

    async def _clashing_audited(self, bodies: Sequence[dict[str, Any] | None]) -> list[int]:
        return await clashing_audited(self.pool, "audit_log", bodies)

    async def _apply(self, records: Sequence[Position], bodies: Sequence[dict[str, Any] | None]) -> int:
        if self.masking is None:  # set as the tables are made, and never changed after
            form = await self.pool.fetchrow("SELECT masked_since, nullif(contacts_since, '-infinity') AS contacts_since"
                                            " FROM audit_form WHERE id = 1")
            self.masking = (form is not None, form and form["masked_since"], form and form["contacts_since"])
        # Each body's audited text, by the body, made before the head is held: masking a long text
        # takes a while (up to 0.1 s), and every batch of every instance waits for the head.
        texts = {id(b): audited_text(b, self.audit_key, self._masks(b)) for b in bodies if b is not None}
        async with self.pool.acquire() as conn, conn.transaction():
            # The head's row lock serialises every batch of every instance: the chain has one order,
            # and the positions read next cannot be stale.
            head = await conn.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            # Read once the head is held, in a statement of its own: one that waited for the head
            # behind a refold's first transaction would otherwise see the version from before it.
            fold = await conn.fetchval("SELECT fold_version FROM projection_state WHERE id = 1")
            if fold is not None and fold != FOLD_VERSION:
                # Another instance folded the rows again with another fold (refold.py): rows of
                # this one's would be mixed in among them for good.
                raise OtherFold(f"the read models are of fold {fold} and this oversight folds with"
                                f" {FOLD_VERSION}: run one version of oversight on them")
            positions = {(r["topic"], r["partition"]): r["next_offset"] for r in await conn.fetch(
                "SELECT topic, partition, next_offset FROM consumer_offsets WHERE topic = ANY($1::text[])",
                list({r.topic for r in records}))}
            fresh, advanced, first = _unseen(records, bodies, positions)
            new = await self._store_events(conn, fresh)
            await self._project_cases(conn, [e for e in new if e["event_type"] not in DELIVERY_TYPES])
            seq, head_hash = await self._append_audit(conn, new, head["seq"], head["hash"], texts)
            await conn.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", seq, head_hash)
            if advanced:
                await conn.execute(_SAVE_OFFSETS, *(list(c) for c in zip(*(
                    (t, p, o, first[(t, p)]) for (t, p), o in advanced.items()))))
            if new and self.notify:
                await conn.execute("SELECT pg_notify($1, $2)", AUDIT_CHANNEL, str(seq))
        self.applied += len(new)
        return len(new)

    async def begin(self, starts: Offsets) -> None:
        """Record where the projection begins in partitions it has no position in yet: read from
        there, and a database restored from a backup taken before their first record knows to read
        them again from there, rather than from the group's offsets past what came after it."""
        if starts:
            await self.pool.execute(
                "INSERT INTO consumer_offsets (topic, partition, next_offset, first_offset)"
                " SELECT t, p, o, o FROM unnest($1::text[], $2::int[], $3::bigint[]) AS u(t, p, o)"
                " ON CONFLICT (topic, partition) DO NOTHING",
                [t for t, _ in starts], [p for _, p in starts], list(starts.values()))

    async def positions(self, partitions: Sequence[tuple[str, int]]) -> Offsets:
        """Where the read models stand in each of ``partitions`` that they have read from."""
        rows = await self.pool.fetch(
            "SELECT topic, partition, next_offset FROM consumer_offsets"
            " WHERE (topic, partition) IN (SELECT * FROM unnest($1::text[], $2::int[]))",
            [t for t, _ in partitions], [p for _, p in partitions])
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def _store_events(self, conn: asyncpg.Connection, fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep every event; return those not kept before, in batch order."""
        cases = [e for e in fresh if e["event_type"] not in DELIVERY_TYPES]
        deliveries = [e for e in fresh if e["event_type"] in DELIVERY_TYPES]
        stored: set[UUID] = set()
        for events, insert in ((cases, _INSERT_CASE_EVENTS), (deliveries, _INSERT_DELIVERIES)):
            if events:
                stored.update(r[0] for r in await conn.fetch(insert, *_columns(events, lambda e: (
                    *stored_columns(e).values(), orjson.dumps(e).decode()))))
        return [e for e in fresh if UUID(str(e["event_id"])) in stored]

    async def _project_cases(self, conn: asyncpg.Connection, events: list[dict[str, Any]]) -> None:
        """Fold the new events into their cases' rows and write the rows that changed, all at once."""
        if not events:
            return
        by_case: dict[UUID, list[dict[str, Any]]] = {}
        for e in events:
            by_case.setdefault(UUID(str(e["case_id"])), []).append(e)
        current = {r["case_id"]: dict(r) for r in await conn.fetch(
            "SELECT * FROM cases WHERE case_id = ANY($1::uuid[])", list(by_case))}
        # A case's events can reach oversight out of order across batches (a relay that failed over
        # publishes again from where it had recorded). One older than the case's row, or a
        # CaseOpened after events that follow it, was skipped by the fold: such a case is folded
        # again from the start, with every event of it kept. A case new to the read model whose
        # batch holds its versions from 1 on looks only past them, which finds nothing but rarely.
        past: dict[UUID, int] = {}  # case → the version its stored events are looked for past
        for c, es in by_case.items():
            versions = sorted(e["version"] for e in es)
            if c not in current:
                past[c] = versions[-1] if versions == list(range(1, len(versions) + 1)) else 0
            elif versions[0] < current[c]["version"]:
                past[c] = 0
        if past:
            in_batch = {UUID(str(e["event_id"])) for c in past for e in by_case[c]}
            for r in await conn.fetch(_EARLIER_EVENTS, list(past), list(past.values())):
                if UUID((e := orjson.loads(r["body"]))["event_id"]) not in in_batch:
                    by_case[r["case_id"]].append(e)
                    current.pop(r["case_id"], None)  # folded again from its first event
        changed = []
        for case_id, case_events in by_case.items():
            before = current.get(case_id)
            after = fold(before, case_events)
            if after is not None and after != before:
                changed.append(tuple(after[c] for c in CASE_COLUMNS))
        if changed:
            await conn.execute(UPSERT_CASES, *(list(column) for column in zip(*changed)))

    async def _append_audit(self, conn: asyncpg.Connection, new: list[dict[str, Any]], seq: int,
                            head: str, texts: dict[int, str]) -> tuple[int, str]:
        """Chain the new events (their audited ``texts`` by body) onto the head; checkpoint every
        ``checkpoint_every`` records."""
        rows, checkpoints = [], []
        for e in new:
            text = texts[id(e)]
            seq, prev, head = seq + 1, head, chain_hash(head, text)
            rows.append((seq, e["event_id"], e["event_type"], e.get("case_id"), timestamp(e["occurred_at"]), text, prev,
                         head))
            if seq % self.checkpoint_every == 0:
                checkpoints.append((seq, head))
        if rows:
            await conn.execute(_INSERT_AUDIT, *(list(column) for column in zip(*rows)))
        if checkpoints:
            await conn.executemany("INSERT INTO audit_checkpoints (seq, hash) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                   checkpoints)
        return seq, head


    def _masks(self, event: dict[str, Any]) -> int:
        """The masked form of the event's record (masking.py), 0 for none (chain.py)."""
        row, since, contacts_since = self.masking or (False, None, None)
        occurred = timestamp(event["occurred_at"])
        if not row or (since is not None and occurred < since):
            return 0
        return CONTACTS if contacts_since is None or occurred >= contacts_since else PHONES_FIRST_AND_LAST


async def clashing_audited(reader: Any, audit_log: str, bodies: Sequence[dict[str, Any] | None]) -> list[int]:
    """The bodies whose event id ``audit_log`` holds as the other kind (a delivery under a case event's
    id, or the other way round)."""
    ids = [UUID(str(b["event_id"])) for b in bodies if b is not None]
    audited = {r["event_id"]: r["event_type"] in DELIVERY_TYPES for r in await reader.fetch(
        f"SELECT event_id, event_type FROM {audit_log} WHERE event_id = ANY($1::uuid[])", ids)}
    return [i for i, b in enumerate(bodies) if b is not None
            and audited.get(UUID(str(b["event_id"])), _is_delivery(b)) != _is_delivery(b)]


def _is_delivery(body: dict[str, Any]) -> bool:
    return body["event_type"] in DELIVERY_TYPES


def _clashing_within(bodies: Sequence[dict[str, Any] | None]) -> list[int]:
    """The deliveries whose event id a case event of the same batch has."""
    kinds: dict[str, set[bool]] = {}
    for b in bodies:
        if b is not None:
            kinds.setdefault(str(b["event_id"]).lower(), set()).add(_is_delivery(b))
    if all(len(k) == 1 for k in kinds.values()):
        return []
    return [i for i, b in enumerate(bodies) if b is not None and _is_delivery(b)
            and len(kinds[str(b["event_id"]).lower()]) == 2]


def _unseen(records: Sequence[Position], bodies: Sequence[dict[str, Any] | None],
            positions: Offsets) -> tuple[list[dict[str, Any]], Offsets, Offsets]:
    """The parsed records past the stored positions, each event once; the positions after the
    batch; and the batch's first offset in each partition (kept where a partition's projection began)."""
    fresh, seen = [], set()
    advanced: Offsets = {}
    first: Offsets = {}
    for record, body in zip(records, bodies, strict=True):
        key = (record.topic, record.partition)
        advanced[key] = max(advanced.get(key, 0), record.offset + 1)
        first[key] = min(first.get(key, record.offset), record.offset)
        if body is None or record.offset < positions.get(key, 0):
            continue
        event_id = UUID(str(body["event_id"]))
        if event_id in seen:
            continue
        seen.add(event_id)
        fresh.append(body)
    return fresh, advanced, first


def _columns(items: list[dict[str, Any]], row: Any) -> list[list[Any]]:
    """Rows → one list per column, the shape ``unnest`` takes."""
    return [list(column) for column in zip(*(row(e) for e in items))]
