"""Intake's PostgreSQL tables: receipts (idempotency), rate windows, uploads, and the Zalo dialogue.

Every intake instance shares these, which is what makes idempotency and rate limits hold when
several instances run behind one address. Schema creation takes an advisory lock so that
instances starting together do not race on ``CREATE TABLE IF NOT EXISTS``.
"""

import uuid
from dataclasses import dataclass

import asyncpg

from contracts.batching import GroupCommit
from contracts.postgres import create_pool

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
    pool = await create_pool(dsn, min_size=1, max_size=size)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(SCHEMA)
    return pool


@dataclass(frozen=True)
class Claim:
    """What the receipts table says about a request id when a channel asks to publish it."""

    state: str  # "ours" (publish it), "accepted" (already on Kafka), "in_progress", "conflict"
    wait: int | None = None  # ours, but the sender is over their limit: seconds until they may send again


@dataclass(frozen=True)
class Limit:
    """A sender's rate limit: at most ``requests`` in each window of ``window_seconds``."""

    sender: str
    requests: int
    window_seconds: int


# A fixed window on the database's clock, so every instance agrees; {w} is the window's length.
_WINDOW = "to_timestamp(floor(extract(epoch FROM now()) / {w}) * {w})"
_HIT = ("INSERT INTO intake_rate_windows AS w (sender, window_start, hits) SELECT {sender}, " + _WINDOW + ", 1 {only}"
        " ON CONFLICT (sender, window_start) DO UPDATE SET hits = w.hits + 1"
        " RETURNING hits, ceil(extract(epoch FROM w.window_start + make_interval(secs => {w}) - now()))::int AS wait_seconds")
# One sender counted on its own (the Zalo chatbot's messages), formatted once.
_HIT_ALONE = _HIT.format(sender="$1", w="$2::int", only="")
# The claim and, when it is ours, the sender's count, in one statement: one round trip and one
# commit on the path of every new request instead of two.
_CLAIM = (
    "WITH claim AS (INSERT INTO intake_receipts AS r (request_id, channel, tracking_code, fingerprint, state)"
    "  VALUES ($1, $2, $3, $4, 'pending')"
    "  ON CONFLICT (request_id) DO UPDATE SET claimed_at = now()"
    "   WHERE r.state = 'pending' AND r.fingerprint = $4 AND r.claimed_at < now() - make_interval(secs => $5::float8)"
    "  RETURNING 1),"
    " hit AS (" + _HIT.format(sender="$6::text", w="$7::int", only="WHERE $6::text IS NOT NULL AND EXISTS (SELECT 1 FROM claim)") + ")"
    " SELECT EXISTS (SELECT 1 FROM claim) AS ours, (SELECT hits FROM hit) AS hits, (SELECT wait_seconds FROM hit) AS wait_seconds")


class Receipts:
    """Which requests Kafka already holds, by request id: a retry is answered, not republished.

    A claim is ``pending`` while one instance publishes; it becomes ``accepted`` after Kafka's
    acknowledgement, and is deleted when the publish fails or the sender is over their limit, so
    nothing is half-accepted. A pending claim older than the publish timeout was left by a crash
    and may be taken over.
    """

    def __init__(self, pool: asyncpg.Pool, stale_after_seconds: float):
        self.pool, self.stale_after = pool, stale_after_seconds
        # Requests accepted together are recorded together: one commit for all of them.
        self.accept = GroupCommit(self._accept_all)

    async def claim(self, request_id: uuid.UUID, channel: str, tracking_code: str, fingerprint: str,
                    limit: Limit | None = None) -> Claim:
        """Claim the request for publishing and, when it is ours, count it against ``limit``."""
        row = await self.pool.fetchrow(_CLAIM, request_id, channel, tracking_code, fingerprint, self.stale_after,
                                       limit.sender if limit else None, limit.window_seconds if limit else 1)
        if row["ours"]:
            if limit is not None and row["hits"] > limit.requests:
                await self.release(request_id)
                return Claim("ours", wait=max(1, row["wait_seconds"]))
            return Claim("ours")
        known = await self.pool.fetchrow("SELECT state, fingerprint FROM intake_receipts WHERE request_id = $1",
                                         request_id)
        if known is None:  # released between our two statements: the caller may simply retry
            return Claim("in_progress")
        if known["fingerprint"] != fingerprint:
            return Claim("conflict")
        return Claim("accepted" if known["state"] == "accepted" else "in_progress")

    async def _accept_all(self, request_ids: list[uuid.UUID]) -> None:
        await self.pool.execute("UPDATE intake_receipts SET state = 'accepted', accepted_at = now()"
                                " WHERE request_id = ANY($1::uuid[])", sorted(request_ids))

    async def known(self, tracking_code: str) -> bool:
        """Whether Kafka holds a request with this tracking code (oversight may not have it yet)."""
        return bool(await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM intake_receipts"
                                             " WHERE tracking_code = $1 AND state = 'accepted')", tracking_code))

    async def release(self, request_id: uuid.UUID) -> None:
        await self.pool.execute("DELETE FROM intake_receipts WHERE request_id = $1 AND state = 'pending'", request_id)


class RateLimits:
    """Fixed windows counted in PostgreSQL, on the database's clock, so every instance agrees (for
    the Zalo chatbot's messages; a request's own count goes with its claim)."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def hit(self, sender: str, limit: int, window_seconds: int) -> int | None:
        """Count one request of ``sender``; the seconds to wait when it is over ``limit``, else None."""
        row = await self.pool.fetchrow(_HIT_ALONE, sender, window_seconds)
        return max(1, row["wait_seconds"]) if row["hits"] > limit else None

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
