"""Intake's PostgreSQL tables: receipts (idempotency), rate windows, uploads, and the Zalo dialogue.

Every intake instance shares these, which is what makes idempotency, unique tracking codes and
rate limits hold when several instances run behind one address. Schema creation takes an advisory
lock so that instances starting together do not race on ``CREATE TABLE IF NOT EXISTS``.
"""

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from contracts import ids
from contracts.batching import GroupCommit
from contracts.postgres import connect, create_pool

log = logging.getLogger(__name__)

SCHEMA_LOCK = 1022_0001
SCHEMA = """
CREATE TABLE IF NOT EXISTS intake_receipts (
    request_id uuid PRIMARY KEY, channel text NOT NULL, tracking_code text NOT NULL, fingerprint text NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'accepted')),
    claimed_at timestamptz NOT NULL DEFAULT now(), accepted_at timestamptz);
-- A claim taken over from crashed sends with other content: their contents' fingerprints too. Added
-- only where missing: ALTER TABLE takes its exclusive lock before it looks, on every start, and a
-- long reader of the table (a backup) would hold every claim behind it.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'intake_receipts'::regclass
                 AND attname = 'earlier_fingerprints' AND NOT attisdropped) THEN
    ALTER TABLE intake_receipts ADD COLUMN earlier_fingerprints text[] NOT NULL DEFAULT '{}';
  END IF;
END $$;
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
-- Who is sending a user's replies, until when: one sender per user across instances, holding no
-- connection while the OA API answers.
CREATE TABLE IF NOT EXISTS zalo_reply_leases (
    user_id text PRIMARY KEY, holder uuid NOT NULL, until timestamptz NOT NULL);
-- The OA's access and refresh tokens, one pair for every instance (services/intake/oa_token.py),
-- and the seeds from the configuration already taken.
CREATE TABLE IF NOT EXISTS zalo_oa_token (
    one boolean PRIMARY KEY DEFAULT true CHECK (one), access_token text NOT NULL, refresh_token text NOT NULL,
    expires_at timestamptz NOT NULL, refreshed_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS zalo_oa_seeds (seed_sha256 text PRIMARY KEY, seeded_at timestamptz NOT NULL DEFAULT now());
"""


# Each tracking code is held by one receipt: what stops two instances giving one code at once.
CODE_INDEX = "intake_receipts_tracking_code"


async def open_pool(dsn: str, size: int, command_timeout: float | None = None) -> asyncpg.Pool:
    """A pool on the intake database, its tables created if missing (on a connection of its own,
    with no time limit: another instance may hold the schema's lock, an index may take a while).
    Each statement on the pool, and each connection it makes, is given ``command_timeout``."""
    gate = await connect(dsn, timeout=command_timeout or 60)
    try:
        async with gate.transaction():
            await gate.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await gate.execute(SCHEMA)
            await _unique_codes(gate)
    finally:
        await gate.close()
    return await create_pool(dsn, min_size=1, max_size=size, command_timeout=command_timeout,
                             timeout=command_timeout or 60)


async def _unique_codes(conn: asyncpg.Connection) -> None:
    """Make each tracking code unique in the receipts, once, on a database made before they were.

    Codes an older intake already gave to more than one request cannot be taken back (citizens have
    them, Kafka holds them), so the index leaves out all but the first holder of each and the codes
    are logged for an operator; every other code, and every code given from now on, is unique.
    """
    if await conn.fetchval("SELECT to_regclass($1)", CODE_INDEX) is not None:
        return
    shared = await conn.fetch("SELECT tracking_code, array_agg(request_id ORDER BY claimed_at, request_id) AS holders"
                              " FROM intake_receipts GROUP BY tracking_code HAVING count(*) > 1 ORDER BY tracking_code")
    if not shared:
        await conn.execute(f"CREATE UNIQUE INDEX {CODE_INDEX} ON intake_receipts (tracking_code)")
        await conn.execute("DROP INDEX IF EXISTS intake_receipts_code")  # the unique index serves its look-ups
        return
    log.error("%d tracking codes were given to more than one request before codes were kept unique: %s."
              " No request gets them again, but a citizen looking one up may find another's case, and oversight"
              " can hold only one case for each: those requests need an operator", len(shared),
              ", ".join(f"{row['tracking_code']} ({', '.join(map(str, row['holders']))})" for row in shared))
    later = ", ".join(f"'{holder}'" for row in shared for holder in row["holders"][1:])
    await conn.execute(f"CREATE UNIQUE INDEX {CODE_INDEX} ON intake_receipts (tracking_code)"
                       f" WHERE request_id NOT IN ({later})")
    await conn.execute("CREATE INDEX IF NOT EXISTS intake_receipts_code ON intake_receipts (tracking_code)")


@dataclass(frozen=True)
class Claim:
    """What the receipts table says about a request id when a channel asks to publish it."""

    state: str  # "ours" (publish it), "accepted" (already on Kafka), "in_progress", "conflict"
    wait: int | None = None  # ours, but the sender is over their limit: seconds until they may send again
    tracking_code: str | None = None  # ours or accepted: the code its receipt holds, the one to give
    claimed_at: datetime | None = None  # ours: when, on the database's clock, which names the claim to release


@dataclass(frozen=True)
class Limit:
    """A sender's rate limit: at most ``requests`` in each window of ``window_seconds``."""

    sender: str
    requests: int
    window_seconds: int


# A fixed window on the database's clock, so every instance agrees; {w} is the window's length, and
# {at} the moment in it (the transaction's now(), or when a receipt was claimed).
_WINDOW = "to_timestamp(floor(extract(epoch FROM {at}) / {w}) * {w})"
# Adds the counted hits to each sender's window; says the total and the seconds the window has left.
_COUNT = (" ON CONFLICT (sender, window_start) DO UPDATE SET hits = w.hits + excluded.hits RETURNING w.sender, hits,"
          " ceil(extract(epoch FROM w.window_start + make_interval(secs => {w}) - now()))::int AS wait_seconds")
# One sender counted on its own (the Zalo chatbot's messages).
_HIT_ALONE = ("INSERT INTO intake_rate_windows AS w (sender, window_start, hits) SELECT $1, "
              + _WINDOW.format(at="now()", w="$2::int")
              + ", 1" + _COUNT.format(w="$2::int"))
# The claims of the requests that arrive together, and each sender's count, in one statement and
# one commit: on the path of every new request. A request is ours when its receipt is new, or is a
# pending claim left by a crash (older than ``stale_after``), whatever the retry says: an operator's
# call entered again by a colleague, refused as another request's, could never be taken. The claim
# keeps its code, and the earlier contents' fingerprints beside the new one: any of them may be on
# Kafka already (a crash after the publish; the router keeps whichever copy reached it first), and
# a retry of any is the same request. A new
# receipt takes the request's candidate code unless another request holds it ("held": the caller
# tries the next one). Each sender's window counts our requests at once; for the others, the
# receipt as it was says why they are not ours.
_CLAIM = (
    "WITH input AS (SELECT i.*, EXISTS (SELECT 1 FROM intake_receipts h WHERE h.tracking_code = i.tracking_code"
    "   AND h.request_id <> i.request_id) AND NOT EXISTS (SELECT 1 FROM intake_receipts o"
    "   WHERE o.request_id = i.request_id) AS held"
    "  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $6::text[], $8::text[])"
    "  AS i(request_id, channel, tracking_code, fingerprint, sender, old_fingerprint)),"
    " claim AS (INSERT INTO intake_receipts AS r"
    "   (request_id, channel, tracking_code, fingerprint, earlier_fingerprints, state)"
    "  SELECT request_id, channel, tracking_code, fingerprint, array_remove(ARRAY[old_fingerprint], NULL),"
    "   'pending' FROM input WHERE NOT held ORDER BY request_id"
    "  ON CONFLICT (request_id) DO UPDATE SET claimed_at = now(), fingerprint = excluded.fingerprint,"
    "   earlier_fingerprints = CASE WHEN r.fingerprint = excluded.fingerprint"
    "    OR r.fingerprint = ANY(r.earlier_fingerprints) THEN r.earlier_fingerprints"
    "    ELSE array_append(r.earlier_fingerprints, r.fingerprint) END"
    "   WHERE r.state = 'pending' AND r.claimed_at < now() - make_interval(secs => $5::float8)"
    "  RETURNING r.request_id, r.tracking_code, r.claimed_at),"
    " hit AS (INSERT INTO intake_rate_windows AS w (sender, window_start, hits)"
    "  SELECT i.sender, " + _WINDOW.format(at="now()", w="$7::int") + ", count(*)"
    "  FROM input i JOIN claim USING (request_id)"
    "  WHERE i.sender IS NOT NULL GROUP BY i.sender ORDER BY i.sender" + _COUNT.format(w="$7::int") + ")"
    " SELECT i.request_id, claim.request_id IS NOT NULL AS ours, i.held, claim.claimed_at,"
    " coalesce(claim.tracking_code, known.tracking_code) AS tracking_code,"
    " hit.hits, hit.wait_seconds, known.state, known.fingerprint, known.earlier_fingerprints"
    " FROM input i LEFT JOIN claim USING (request_id) LEFT JOIN hit ON hit.sender = i.sender"
    " LEFT JOIN intake_receipts known ON known.request_id = i.request_id AND claim.request_id IS NULL")
# A receipt the statement above could not see: committed by another instance while it ran.
_KNOWN = ("SELECT request_id, state, fingerprint, earlier_fingerprints, tracking_code FROM intake_receipts"
          " WHERE request_id = ANY($1::uuid[])")
# A pending claim given up, and its count given back to the window it was counted in, together. Only
# the claim this instance made: one that took it over since (it went stale) is the other's to settle.
_RELEASE = (
    "WITH released AS (DELETE FROM intake_receipts WHERE request_id = $1 AND state = 'pending'"
    "  AND claimed_at = $4 RETURNING claimed_at)"
    " UPDATE intake_rate_windows w SET hits = w.hits - 1 FROM released"
    " WHERE w.sender = $2 AND w.window_start = " + _WINDOW.format(at="released.claimed_at", w="$3::int")
    + " AND w.hits > 0")


@dataclass(frozen=True)
class _Claiming:
    """A request waiting for its claim, with what its answer depends on."""

    request_id: uuid.UUID
    channel: str
    tracking_code: str  # the candidate: the request's code for ``attempt``
    fingerprint: str
    limit: Limit | None
    attempt: int = 0
    code_key: bytes = b""
    # The same content as older intakes hashed it: kept beside the fingerprint, so that an older
    # intake, in a rolling upgrade or after a rollback, knows a retry of it too.
    old_fingerprint: str | None = None

    def next_code(self) -> "_Claiming":
        """The same claim with the request's next candidate code, its current one being held."""
        attempt = self.attempt + 1
        code = ids.tracking_code(self.request_id, attempt, self.code_key)
        return replace(self, tracking_code=code, attempt=attempt)


class Receipts:
    """Which requests Kafka already holds, by request id: a retry is answered, not republished.

    A claim is ``pending`` while one instance publishes; it becomes ``accepted`` after Kafka's
    acknowledgement, and is deleted when the publish fails or the sender is over their limit, so
    nothing is half-accepted, and the sender's count for it is given back. A pending claim older
    than ``stale_after_seconds`` (intake gives three times its publish timeout) was left by a crash and
    may be taken over.

    The receipt holds the request's tracking code, given once and never to two requests; a request
    whose code another holds tries its next (``ids.tracking_code(request_id, attempt, code_key)``).
    """

    def __init__(self, pool: asyncpg.Pool, stale_after_seconds: float, code_key: bytes):
        self.pool, self.stale_after, self.code_key = pool, stale_after_seconds, code_key
        # Requests that arrive together are claimed together, and those accepted together are
        # recorded together: a statement and a commit for each group, not for each request. A
        # claim is not tried again: had the failed try committed after all, the repeat would find
        # the claims and call them "in progress" until they go stale.
        self._claim: GroupCommit[_Claiming, Claim] = GroupCommit(self._claim_all, retries=0)
        self.accept: GroupCommit[uuid.UUID, None] = GroupCommit(self._accept_all)

    async def claim(self, request_id: uuid.UUID, channel: str, fingerprint: str,
                    limit: Limit | None = None, old_fingerprint: str | None = None) -> Claim:
        """Claim the request for publishing and, when it is ours, count it against ``limit``; the
        claim says the tracking code its receipt holds: the request's first that no other held.
        A receipt of ``fingerprint`` or of ``old_fingerprint`` is of the same content."""
        first_code = ids.tracking_code(request_id, 0, self.code_key)
        claim = await self._claim(_Claiming(request_id, channel, first_code, fingerprint, limit,
                                            code_key=self.code_key, old_fingerprint=old_fingerprint))
        assert claim is not None  # _claim_all answers every item
        if claim.wait is not None:
            await self.release(request_id, limit, claim)
        return claim

    async def _claim_all(self, items: list[_Claiming]) -> list[Claim]:
        """Claim a batch. A request id twice in the batch is claimed once: while that claim is ours,
        the second copy is in progress (or a conflict), else it is answered from the receipt.

        A request whose code another holds is claimed again with its next code, and so is a batch
        that met a code another instance was giving at the same moment: that statement wrote nothing."""
        first: dict[uuid.UUID, _Claiming] = {}
        for item in items:
            first.setdefault(item.request_id, item)
        rows: dict[uuid.UUID, Mapping[str, Any]] = {}
        answers: dict[uuid.UUID, Claim] = {}
        todo = list(first.values())
        while todo:
            batch, later = _apart(todo)
            try:
                found = await self._claim_batch(batch)
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name != CODE_INDEX:
                    raise
                continue  # the repeat sees the other's receipt, and its code held
            rows.update(found)
            answers.update(_answers([item for item in batch if not found[item.request_id]["held"]], found))
            todo = later + [item.next_code() for item in batch if found[item.request_id]["held"]]
        out = []
        for item in items:
            original = first[item.request_id]
            if item is original:
                answer = answers[item.request_id]
            elif answers[item.request_id].state == "ours":
                answer = Claim("in_progress")  # see _verdict
            else:
                answer = _verdict(rows[item.request_id], item)
            claimed_at = rows[item.request_id].get("claimed_at") if item is original else None
            out.append(replace(answer, tracking_code=rows[item.request_id]["tracking_code"], claimed_at=claimed_at))
        return out

    async def _claim_batch(self, batch: list[_Claiming]) -> dict[uuid.UUID, Mapping[str, Any]]:
        """Claim in one statement (one for each window length, in one transaction, should limits
        ever differ in the batch); each request's row, ``held`` when its candidate code is another's."""
        groups: dict[int, list[_Claiming]] = {}
        for item in batch:
            if item.limit is not None:
                groups.setdefault(item.limit.window_seconds, []).append(item)
        unlimited = [item for item in batch if item.limit is None]
        if not groups:
            groups[1] = []  # the window length is unused when nobody is counted
        next(iter(groups.values())).extend(unlimited)
        if len(groups) == 1:
            rows = await self._claim_groups(self.pool, groups)
        else:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await self._claim_groups(conn, groups)
        unseen = [r for r, row in rows.items() if not row["ours"] and row["state"] is None]
        if unseen:
            rows.update({r["request_id"]: {**r, "ours": False, "held": False}
                         for r in await self.pool.fetch(_KNOWN, unseen)})
        return rows

    async def _claim_groups(self, db: asyncpg.Pool | asyncpg.Connection,
                            groups: dict[int, list[_Claiming]]) -> dict[uuid.UUID, Mapping[str, Any]]:
        rows: dict[uuid.UUID, Mapping[str, Any]] = {}
        for window, batch in groups.items():
            rows.update((r["request_id"], r) for r in await db.fetch(
                _CLAIM, [i.request_id for i in batch], [i.channel for i in batch], [i.tracking_code for i in batch],
                [i.fingerprint for i in batch], self.stale_after,
                [i.limit.sender if i.limit else None for i in batch], window,
                [i.old_fingerprint for i in batch]))
        return rows

    async def _accept_all(self, request_ids: list[uuid.UUID]) -> None:
        await self.pool.execute("UPDATE intake_receipts SET state = 'accepted', accepted_at = now()"
                                " WHERE request_id = ANY($1::uuid[])", sorted(request_ids))

    async def known(self, tracking_code: str) -> bool:
        """Whether Kafka holds a request with this tracking code (oversight may not have it yet)."""
        return bool(await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM intake_receipts"
                                             " WHERE tracking_code = $1 AND state = 'accepted')", tracking_code))

    async def release(self, request_id: uuid.UUID, limit: Limit | None, claim: Claim) -> None:
        """Give up ``claim``, ours and pending (its publish failed, or its sender is over ``limit``),
        and give the sender back its count, so that retrying through an outage does not use up the limit."""
        await self.pool.execute(_RELEASE, request_id, limit and limit.sender, limit.window_seconds if limit else 1,
                                claim.claimed_at)


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


def _apart(todo: list[_Claiming]) -> tuple[list[_Claiming], list[_Claiming]]:
    """The claims that may go in one statement, no two trying one code (both would be inserted, and
    the statement fail however often it ran), and the rest for the next."""
    codes: set[str] = set()
    batch: list[_Claiming] = []
    later: list[_Claiming] = []
    for item in todo:
        (later if item.tracking_code in codes else batch).append(item)
        codes.add(item.tracking_code)
    return batch, later


def _answers(batch: list[_Claiming], rows: Mapping[uuid.UUID, Mapping[str, Any]]) -> dict[uuid.UUID, Claim]:
    """Each request's claim, from its row; a sender's requests take their places in its window in
    the batch's order, and those past the limit are told how long to wait."""
    out: dict[uuid.UUID, Claim] = {}
    ours_by_sender: dict[str, list[tuple[_Claiming, Limit]]] = {}
    for item in batch:
        row = rows[item.request_id]
        if not row["ours"]:
            out[item.request_id] = _verdict(row, item)
            continue
        out[item.request_id] = Claim("ours")
        if item.limit is not None:
            ours_by_sender.setdefault(item.limit.sender, []).append((item, item.limit))
    for counted in ours_by_sender.values():
        window = rows[counted[0][0].request_id]
        for place, (item, limit) in enumerate(counted, start=window["hits"] - len(counted) + 1):
            if place > limit.requests:
                out[item.request_id] = Claim("ours", wait=max(1, window["wait_seconds"]))
    return out


def _verdict(row: Mapping[str, Any], item: _Claiming) -> Claim:
    """Why a request is not ours, from its receipt as last read."""
    if row["state"] is None:  # released since (its publish failed): the caller may simply retry
        return Claim("in_progress")
    if row["state"] == "pending":
        # Whatever it says: a claim being published may yet fail, or be left by a crash for the
        # retry to take over, so the sender is told to retry, not that the key is another's.
        return Claim("in_progress")
    known = {row["fingerprint"], *(row.get("earlier_fingerprints") or ())}
    same = item.fingerprint in known or item.old_fingerprint in known
    return Claim("accepted" if same else "conflict")


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
