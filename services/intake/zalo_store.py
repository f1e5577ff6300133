"""The Zalo chatbot's tables: the inbox of verified events, each user's conversation, and the
replies still to send (an outbox, so a reply survives a crash or an OA API outage)."""

import uuid
from datetime import UTC, datetime

import asyncpg


class ZaloInbox:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def seen(self, key: str) -> bool:
        """Whether an event with this key is kept (kept past its age window: an older one is refused)."""
        return await self.pool.fetchval("SELECT EXISTS (SELECT FROM zalo_events WHERE event_key = $1)", key)

    async def record(self, key: str, user_id: str, event_name: str, sent_at_ms: int, body: bytes) -> bool:
        """Keep a verified event; False when its key was seen before (sent again)."""
        sent_at = datetime.fromtimestamp(sent_at_ms / 1000, UTC)
        row = await self.pool.fetchrow(
            "INSERT INTO zalo_events (event_key, user_id, event_name, sent_at, body) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT DO NOTHING RETURNING event_key", key, user_id, event_name, sent_at, body)
        return row is not None

    async def users_with_work(self, older_than_seconds: float, limit: int = 100) -> list[str]:
        """Users whose events or replies wait longer than a live webhook would have taken."""
        rows = await self.pool.fetch(
            "(SELECT DISTINCT user_id FROM zalo_events WHERE processed_at IS NULL"
            "   AND received_at < now() - make_interval(secs => $1::float8) LIMIT $2)"
            " UNION (SELECT DISTINCT user_id FROM zalo_replies WHERE sent_at IS NULL AND next_attempt_at <= now()"
            "   AND created_at < now() - make_interval(secs => $1::float8) LIMIT $2)",
            older_than_seconds, limit)
        return [r["user_id"] for r in rows]

    async def prune(self, events_after_seconds: int, conversations_after_seconds: int) -> None:
        """Forget what can no longer matter: processed events past the replay window, old replies."""
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM zalo_events WHERE processed_at IS NOT NULL"
                               " AND received_at < now() - make_interval(secs => $1::int)", events_after_seconds)
            await conn.execute("DELETE FROM zalo_replies WHERE (sent_at IS NOT NULL OR next_attempt_at IS NULL)"
                               " AND created_at < now() - interval '7 days'")
            await conn.execute("DELETE FROM zalo_conversations WHERE updated_at < now() - make_interval(secs => $1::int)",
                               conversations_after_seconds)
            await conn.execute("DELETE FROM zalo_reply_leases WHERE until < now() - interval '1 hour'")


async def lock_conversation(conn: asyncpg.Connection, user_id: str) -> str | None:
    """The user's conversation state, locked until the transaction ends: one step at a time per user,
    across every intake instance."""
    # Made or locked in one statement: DO NOTHING locks no row, and a prune deleting the row between
    # the insert and a SELECT ... FOR UPDATE left the step unlocked, its state saved nowhere.
    return await conn.fetchval("INSERT INTO zalo_conversations (user_id, state) VALUES ($1, '')"
                               " ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id RETURNING state",
                               user_id)


async def pending_events(conn: asyncpg.Connection, user_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT event_key, body FROM zalo_events WHERE user_id = $1 AND processed_at IS NULL"
                            " ORDER BY sent_at, received_at, event_key", user_id)


async def save_step(conn: asyncpg.Connection, user_id: str, state: str, event_keys: list[str],
                    replies: list[str]) -> None:
    await conn.execute("UPDATE zalo_conversations SET state = $2, updated_at = now() WHERE user_id = $1",
                       user_id, state)
    await conn.execute("UPDATE zalo_events SET processed_at = now() WHERE event_key = ANY($1::text[])", event_keys)
    await conn.executemany("INSERT INTO zalo_replies (user_id, text) VALUES ($1, $2)",
                           [(user_id, text) for text in replies])


async def lease_replies(pool: asyncpg.Pool, user_id: str, holder: uuid.UUID, seconds: float) -> bool:
    """Take the sending of the user's replies for ``seconds``, unless another holds it; True if taken."""
    return bool(await pool.fetchval(
        "INSERT INTO zalo_reply_leases (user_id, holder, until) VALUES ($1, $2, now() + make_interval(secs => $3))"
        " ON CONFLICT (user_id) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until"
        " WHERE zalo_reply_leases.until < now() RETURNING true", user_id, holder, seconds))


async def release_replies(pool: asyncpg.Pool, user_id: str, holder: uuid.UUID) -> None:
    await pool.execute("DELETE FROM zalo_reply_leases WHERE user_id = $1 AND holder = $2", user_id, holder)


async def next_reply(pool: asyncpg.Pool, user_id: str, holder: uuid.UUID, seconds: float) -> asyncpg.Record | None:
    """The user's first reply not yet sent, if it is due and the lease is still ``holder``'s (renewed
    for ``seconds``). One waiting for its next try holds back the replies after it: never out of order."""
    row = await pool.fetchrow(
        "WITH held AS (UPDATE zalo_reply_leases SET until = now() + make_interval(secs => $3)"
        "   WHERE user_id = $1 AND holder = $2 RETURNING user_id)"
        " SELECT reply_id, text, attempts, next_attempt_at <= now() AS due,"
        "   extract(epoch FROM now() - created_at)::float8 AS age FROM zalo_replies"
        " WHERE user_id = $1 AND sent_at IS NULL AND next_attempt_at IS NOT NULL AND EXISTS (SELECT 1 FROM held)"
        " ORDER BY reply_id LIMIT 1", user_id, holder, seconds)
    return row if row is not None and row["due"] else None


async def mark_sent(pool: asyncpg.Pool, reply_id: int) -> None:
    """Recorded on its own, as soon as the OA API took it: nothing that fails later sends it again."""
    await pool.execute("UPDATE zalo_replies SET sent_at = now(), attempts = attempts + 1 WHERE reply_id = $1",
                       reply_id)


async def mark_failed(pool: asyncpg.Pool, reply_id: int, error: str, retry_in: float | None) -> None:
    """Count a failed try; ``retry_in`` None gives up on the reply (next_attempt_at is cleared)."""
    await pool.execute(
        "UPDATE zalo_replies SET attempts = attempts + 1, last_error = $2,"
        " next_attempt_at = CASE WHEN $3::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $3::float8) END"
        " WHERE reply_id = $1", reply_id, error[:500], retry_in)
