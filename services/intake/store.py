"""Intake's PostgreSQL tables: receipts (idempotency), rate windows, uploads, and the Zalo dialogue.

Every intake instance shares these, which is what makes idempotency and rate limits hold when
several instances run behind one address. Schema creation takes an advisory lock so that
instances starting together do not race on ``CREATE TABLE IF NOT EXISTS``.
"""

import uuid
from dataclasses import dataclass

import asyncpg

SCHEMA_LOCK = 1022_0001
SCHEMA = """
CREATE TABLE IF NOT EXISTS intake_receipts (
    request_id uuid PRIMARY KEY, channel text NOT NULL, tracking_code text NOT NULL, fingerprint text NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'accepted')),
    claimed_at timestamptz NOT NULL DEFAULT now(), accepted_at timestamptz);
CREATE INDEX IF NOT EXISTS intake_receipts_code ON intake_receipts (tracking_code);
CREATE TABLE IF NOT EXISTS intake_rate_windows (
    sender text NOT NULL, window_start timestamptz NOT NULL, hits int NOT NULL,
    PRIMARY KEY (sender, window_start));
CREATE TABLE IF NOT EXISTS intake_attachments (
    attachment_id uuid PRIMARY KEY, name text NOT NULL, media_type text NOT NULL, size int NOT NULL,
    sha256 text NOT NULL, content bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS zalo_events (
    event_key text PRIMARY KEY, user_id text NOT NULL, event_name text NOT NULL,
    sent_at timestamptz NOT NULL, body bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(), processed_at timestamptz);
CREATE INDEX IF NOT EXISTS zalo_events_pending ON zalo_events (user_id, sent_at) WHERE processed_at IS NULL;
CREATE TABLE IF NOT EXISTS zalo_conversations (
    user_id text PRIMARY KEY, state text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS zalo_replies (
    reply_id bigserial PRIMARY KEY, user_id text NOT NULL, text text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), sent_at timestamptz, attempts int NOT NULL DEFAULT 0,
    last_error text, next_attempt_at timestamptz DEFAULT now());
CREATE INDEX IF NOT EXISTS zalo_replies_unsent ON zalo_replies (user_id, reply_id) WHERE sent_at IS NULL;
"""


async def open_pool(dsn: str, size: int) -> asyncpg.Pool:
    """A pool on the intake database, its tables created if missing."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(SCHEMA)
    return pool


@dataclass(frozen=True)
class Claim:
    """What the receipts table says about a request id when a channel asks to publish it."""

    state: str  # "ours" (publish it), "accepted" (already on Kafka), "in_progress", "conflict"


class Receipts:
    """Which requests Kafka already holds, by request id: a retry is answered, not republished.

    A claim is ``pending`` while one instance publishes; it becomes ``accepted`` after Kafka's
    acknowledgement, and is deleted when the publish fails, so nothing is half-accepted. A pending
    claim older than the publish timeout was left by a crash and may be taken over.
    """

    def __init__(self, pool: asyncpg.Pool, stale_after_seconds: float):
        self.pool, self.stale_after = pool, stale_after_seconds

    async def claim(self, request_id: uuid.UUID, channel: str, tracking_code: str, fingerprint: str) -> Claim:
        row = await self.pool.fetchrow(
            "INSERT INTO intake_receipts AS r (request_id, channel, tracking_code, fingerprint, state)"
            " VALUES ($1, $2, $3, $4, 'pending')"
            " ON CONFLICT (request_id) DO UPDATE SET claimed_at = now()"
            "  WHERE r.state = 'pending' AND r.fingerprint = $4 AND r.claimed_at < now() - make_interval(secs => $5::float8)"
            " RETURNING state", request_id, channel, tracking_code, fingerprint, self.stale_after)
        if row is not None:
            return Claim("ours")
        known = await self.pool.fetchrow("SELECT state, fingerprint FROM intake_receipts WHERE request_id = $1",
                                         request_id)
        if known is None:  # released between our two statements: the caller may simply retry
            return Claim("in_progress")
        if known["fingerprint"] != fingerprint:
            return Claim("conflict")
        return Claim("accepted" if known["state"] == "accepted" else "in_progress")

    async def accept(self, request_id: uuid.UUID) -> None:
        await self.pool.execute("UPDATE intake_receipts SET state = 'accepted', accepted_at = now()"
                                " WHERE request_id = $1", request_id)

    async def known(self, tracking_code: str) -> bool:
        """Whether Kafka holds a request with this tracking code (oversight may not have it yet)."""
        return bool(await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM intake_receipts"
                                             " WHERE tracking_code = $1 AND state = 'accepted')", tracking_code))

    async def release(self, request_id: uuid.UUID) -> None:
        await self.pool.execute("DELETE FROM intake_receipts WHERE request_id = $1 AND state = 'pending'", request_id)


class RateLimits:
    """Fixed windows counted in PostgreSQL, on the database's clock, so every instance agrees."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def hit(self, sender: str, limit: int, window_seconds: int) -> int | None:
        """Count one request of ``sender``; the seconds to wait when it is over ``limit``, else None."""
        row = await self.pool.fetchrow(
            "WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / $2::int) * $2::int) AS start)"
            " INSERT INTO intake_rate_windows AS r (sender, window_start, hits) SELECT $1, w.start, 1 FROM w"
            " ON CONFLICT (sender, window_start) DO UPDATE SET hits = r.hits + 1"
            " RETURNING hits, ceil(extract(epoch FROM r.window_start + make_interval(secs => $2::int) - now()))::int AS left",
            sender, window_seconds)
        return max(1, row["left"]) if row["hits"] > limit else None

    async def forget_before(self, seconds: int) -> None:
        await self.pool.execute("DELETE FROM intake_rate_windows WHERE window_start < now() - make_interval(secs => $1::int)",
                                seconds)


@dataclass(frozen=True)
class Upload:
    """A file a citizen attached to the web form."""

    name: str
    media_type: str
    content: bytes
    sha256: str


class Attachments:
    """Uploaded files, stored once by id; requests carry only a link to them."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def keep(self, attachment_id: uuid.UUID, upload: Upload) -> None:
        await self.pool.execute(
            "INSERT INTO intake_attachments (attachment_id, name, media_type, size, sha256, content)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            attachment_id, upload.name, upload.media_type, len(upload.content), upload.sha256, upload.content)

    async def get(self, attachment_id: uuid.UUID) -> asyncpg.Record | None:
        return await self.pool.fetchrow("SELECT name, media_type, content FROM intake_attachments"
                                        " WHERE attachment_id = $1", attachment_id)
