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
# One sender counted on its own (the Zalo chatbot's messages).
_HIT_ALONE = ("INSERT INTO intake_rate_windows AS w (sender, window_start, hits) SELECT $1, " + _WINDOW.format(w="$2::int")
              + ", 1 ON CONFLICT (sender, window_start) DO UPDATE SET hits = w.hits + 1"
              " RETURNING hits, ceil(extract(epoch FROM w.window_start + make_interval(secs => $2::int) - now()))::int"
              " AS wait_seconds")
# The claims of the requests that arrive together, and each sender's count, in one statement and
# one commit: on the path of every new request. A request is ours when its receipt is new, or is a
# pending claim left by a crash (same content, older than the publish timeout). Each sender's
# window counts our requests at once; the rows of receipts that were not ours say why.
_CLAIM = (
    "WITH input AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $6::text[])"
    "  AS i(request_id, channel, tracking_code, fingerprint, sender)),"
    " claim AS (INSERT INTO intake_receipts AS r (request_id, channel, tracking_code, fingerprint, state)"
    "  SELECT request_id, channel, tracking_code, fingerprint, 'pending' FROM input ORDER BY request_id"
    "  ON CONFLICT (request_id) DO UPDATE SET claimed_at = now()"
    "   WHERE r.state = 'pending' AND r.fingerprint = excluded.fingerprint"
    "    AND r.claimed_at < now() - make_interval(secs => $5::float8)"
    "  RETURNING request_id),"
    " hit AS (INSERT INTO intake_rate_windows AS w (sender, window_start, hits)"
    "  SELECT i.sender, " + _WINDOW.format(w="$7::int") + ", count(*) FROM input i JOIN claim USING (request_id)"
    "  WHERE i.sender IS NOT NULL GROUP BY i.sender ORDER BY i.sender"
    "  ON CONFLICT (sender, window_start) DO UPDATE SET hits = w.hits + excluded.hits"
    "  RETURNING w.sender, hits,"
    "   ceil(extract(epoch FROM w.window_start + make_interval(secs => $7::int) - now()))::int AS wait_seconds)"
    " SELECT i.request_id, claim.request_id IS NOT NULL AS ours, hit.hits, hit.wait_seconds, known.state, known.fingerprint"
    " FROM input i LEFT JOIN claim USING (request_id) LEFT JOIN hit ON hit.sender = i.sender"
    " LEFT JOIN intake_receipts known ON known.request_id = i.request_id AND claim.request_id IS NULL")


@dataclass(frozen=True)
class _Claiming:
    request_id: uuid.UUID
    channel: str
    tracking_code: str
    fingerprint: str
    limit: Limit | None


class Receipts:
    """Which requests Kafka already holds, by request id: a retry is answered, not republished.

    A claim is ``pending`` while one instance publishes; it becomes ``accepted`` after Kafka's
    acknowledgement, and is deleted when the publish fails or the sender is over their limit, so
    nothing is half-accepted. A pending claim older than the publish timeout was left by a crash
    and may be taken over.
    """

    def __init__(self, pool: asyncpg.Pool, stale_after_seconds: float):
        self.pool, self.stale_after = pool, stale_after_seconds
        # Requests that arrive together are claimed together, and those accepted together are
        # recorded together: a statement and a commit for each group, not for each request. A
        # claim is not tried again: a repeat would find its own claim and call it "in progress".
        self._claim = GroupCommit(self._claim_all, retries=0)
        self.accept = GroupCommit(self._accept_all)

    async def claim(self, request_id: uuid.UUID, channel: str, tracking_code: str, fingerprint: str,
                    limit: Limit | None = None) -> Claim:
        """Claim the request for publishing and, when it is ours, count it against ``limit``."""
        claim = await self._claim(_Claiming(request_id, channel, tracking_code, fingerprint, limit))
        assert claim is not None
        if claim.wait is not None:
            await self.release(request_id)
        return claim

    async def _claim_all(self, items: list[_Claiming]) -> list[Claim]:
        """Claim a batch; a request id twice in it is the second time "in progress" (or a conflict)."""
        first: dict[uuid.UUID, _Claiming] = {}
        for item in items:
            first.setdefault(item.request_id, item)
        answers: dict[uuid.UUID, Claim] = {}
        # One window length per statement (there is one setting; a Zalo message counts on its own).
        windows: dict[int, list[_Claiming]] = {}
        for item in first.values():
            windows.setdefault(item.limit.window_seconds if item.limit else 1, []).append(item)
        for window, batch in windows.items():
            rows = await self.pool.fetch(_CLAIM, [i.request_id for i in batch], [i.channel for i in batch],
                                         [i.tracking_code for i in batch], [i.fingerprint for i in batch],
                                         self.stale_after, [i.limit.sender if i.limit else None for i in batch], window)
            answers.update(_answers(batch, {r["request_id"]: r for r in rows}))
        return [answers[item.request_id] if first[item.request_id] is item
                else Claim("in_progress" if item.fingerprint == first[item.request_id].fingerprint else "conflict")
                for item in items]

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


def _answers(batch: list[_Claiming], rows: dict[uuid.UUID, asyncpg.Record]) -> dict[uuid.UUID, Claim]:
    """Each request's claim, from its row; a sender's requests take their places in its window in
    the batch's order, and those past the limit are told how long to wait."""
    out: dict[uuid.UUID, Claim] = {}
    ours_by_sender: dict[str, list[_Claiming]] = {}
    for item in batch:
        row = rows[item.request_id]
        if row["ours"]:
            if item.limit is not None:
                ours_by_sender.setdefault(item.limit.sender, []).append(item)
            out[item.request_id] = Claim("ours")
        elif row["state"] is None:  # released meanwhile: the caller may simply retry
            out[item.request_id] = Claim("in_progress")
        elif row["fingerprint"] != item.fingerprint:
            out[item.request_id] = Claim("conflict")
        else:
            out[item.request_id] = Claim("accepted" if row["state"] == "accepted" else "in_progress")
    for items in ours_by_sender.values():
        last = rows[items[0].request_id]
        for place, item in enumerate(items, start=last["hits"] - len(items) + 1):
            assert item.limit is not None
            if place > item.limit.requests:
                out[item.request_id] = Claim("ours", wait=max(1, last["wait_seconds"]))
    return out


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
