"""Oversight's PostgreSQL: the schema, and applying a batch of events exactly once in effect.

A batch is one transaction: the events, the case rows they change, the audit records and the
consumer position (``consumer_offsets``) commit together, so a batch read again after a crash
changes nothing. Outbox re-publishes are recognised by event id.
"""

import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from services.oversight.projection import GENESIS, canonical, chain_hash, changes, opened_row

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS consumer_offsets (
    topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL, PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS cases (
    case_id uuid PRIMARY KEY, tracking_code text NOT NULL UNIQUE, request_id uuid, channel text, category text,
    priority text, status text NOT NULL, is_public boolean NOT NULL DEFAULT false,
    citizen_name text, citizen_phone text, citizen_email text, address text, description text,
    area_code text, area_name text, unit_id text, unit_name text, unit_admin_code text,
    handler_id text, handler_name text, triage_reason text, answer text, escalation_level text,
    duplicates int NOT NULL DEFAULT 0,
    received_at timestamptz, opened_at timestamptz, routed_at timestamptz, assigned_at timestamptz,
    accepted_at timestamptz, resolved_at timestamptz, closed_at timestamptz, committed_date timestamptz,
    reach_by timestamptz, resolve_by timestamptz, version int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS cases_unit ON cases (unit_id, status);
CREATE INDEX IF NOT EXISTS cases_status ON cases (status, resolve_by);
CREATE INDEX IF NOT EXISTS cases_area ON cases (area_code);
CREATE INDEX IF NOT EXISTS cases_received ON cases (received_at);
CREATE TABLE IF NOT EXISTS case_events (
    event_id uuid PRIMARY KEY, case_id uuid NOT NULL, version int, event_type text NOT NULL,
    occurred_at timestamptz NOT NULL, producer text, body jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS case_events_case ON case_events (case_id, occurred_at);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id uuid PRIMARY KEY, event_id uuid NOT NULL UNIQUE, case_id uuid NOT NULL, cause_event_id uuid,
    recipient text, channel text, outcome text, attempts int, error text, occurred_at timestamptz);
CREATE INDEX IF NOT EXISTS deliveries_case ON deliveries (case_id);
CREATE TABLE IF NOT EXISTS audit_log (
    seq bigint PRIMARY KEY, event_id uuid NOT NULL UNIQUE, event_type text NOT NULL, case_id uuid,
    occurred_at timestamptz NOT NULL, canonical text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (
    id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, hash text NOT NULL);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS}') ON CONFLICT DO NOTHING;
"""

READ_TABLES = ("cases", "case_events", "deliveries", "audit_log", "audit_head")


async def migrate(conn: asyncpg.Connection, reader_role: str) -> None:
    """Create the tables, and a role that may SELECT them and nothing else (the API's)."""
    await conn.execute(SCHEMA)
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", reader_role)
    if not exists:
        await conn.execute(f'CREATE ROLE "{reader_role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
    db = await conn.fetchval("SELECT current_database()")
    await conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO "{reader_role}"')
    await conn.execute(f'GRANT USAGE ON SCHEMA public TO "{reader_role}"')
    await conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{reader_role}"')
    await conn.execute(f'GRANT SELECT ON {", ".join(READ_TABLES)} TO "{reader_role}"')


class Projector:
    """Applies batches of records from ``case.events`` and ``notify.deliveries``."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool
        self.applied = 0

    async def apply(self, records: Sequence[ConsumerRecord], bodies: Sequence[dict[str, Any] | None]) -> int:
        """Apply one batch; ``bodies[i]`` is the parsed record ``records[i]`` (None: dead-lettered)."""
        new = 0
        async with self.pool.acquire() as conn, conn.transaction():
            positions = {(r["topic"], r["partition"]): r["next_offset"] for r in await conn.fetch(
                "SELECT topic, partition, next_offset FROM consumer_offsets WHERE topic = ANY($1::text[])",
                list({r.topic for r in records}))}
            head = await conn.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            seq, prev = head["seq"], head["hash"]
            advanced: dict[tuple[str, int], int] = {}
            for record, body in zip(records, bodies, strict=True):
                key = (record.topic, record.partition)
                advanced[key] = max(advanced.get(key, 0), record.offset + 1)
                if body is None or record.offset < positions.get(key, 0):
                    continue
                if not await self._record(conn, body):
                    continue  # the same event again (an outbox re-publish)
                new += 1
                text = canonical(body)
                seq, prev_hash = seq + 1, prev
                prev = chain_hash(prev_hash, text)
                await conn.execute(
                    "INSERT INTO audit_log (seq, event_id, event_type, case_id, occurred_at, canonical, prev_hash, hash)"
                    " VALUES ($1, $2, $3, $4, $5::text::timestamptz, $6, $7, $8)",
                    seq, body["event_id"], body["event_type"], body.get("case_id"), body["occurred_at"], text, prev_hash, prev)
            await conn.execute("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", seq, prev)
            await conn.executemany(
                "INSERT INTO consumer_offsets (topic, partition, next_offset) VALUES ($1, $2, $3)"
                " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset)",
                [(t, p, o) for (t, p), o in advanced.items()])
        self.applied += new
        return new

    async def _record(self, conn: asyncpg.Connection, e: dict[str, Any]) -> bool:
        """Store one event and project it; False when it was already there."""
        kind = e["event_type"]
        if kind in ("NotificationSent", "NotificationFailed"):
            return await conn.fetchval(
                "INSERT INTO deliveries (delivery_id, event_id, case_id, cause_event_id, recipient, channel, outcome,"
                " attempts, error, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::timestamptz)"
                " ON CONFLICT DO NOTHING RETURNING true",
                e["delivery_id"], e["event_id"], e["case_id"], e["cause_event_id"], e["recipient"], e["channel"],
                "sent" if kind == "NotificationSent" else "failed", e["attempts"], e.get("error"), e["occurred_at"]) or False
        inserted = await conn.fetchval(
            "INSERT INTO case_events (event_id, case_id, version, event_type, occurred_at, producer, body)"
            " VALUES ($1, $2, $3, $4, $5::text::timestamptz, $6, $7::jsonb) ON CONFLICT DO NOTHING RETURNING true",
            e["event_id"], e["case_id"], e["version"], kind, e["occurred_at"], e["producer"], json.dumps(e))
        if not inserted:
            return False
        if kind == "CaseOpened":
            row = opened_row(e)
            cols = list(row)
            await conn.execute(
                f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})"
                " ON CONFLICT (case_id) DO NOTHING", *row.values())
            return True
        change = changes(e)
        if change.pop("duplicates", None):
            await conn.execute("UPDATE cases SET duplicates = duplicates + 1 WHERE case_id = $1", e["case_id"])
        if change:
            sets = ", ".join(f"{col} = ${i + 3}" for i, col in enumerate(change))
            await conn.execute(
                f"UPDATE cases SET {sets}, version = $2, updated_at = now() WHERE case_id = $1 AND version < $2",
                e["case_id"], e["version"], *change.values())
        return True
