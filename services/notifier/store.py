"""The notifier's record of every delivery, keyed by delivery id (its idempotency key)."""

import asyncpg

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id uuid PRIMARY KEY, case_id uuid NOT NULL, cause_event_id uuid NOT NULL,
    recipient text NOT NULL, channel text NOT NULL, status text NOT NULL,
    attempts int NOT NULL DEFAULT 0, last_error text, permanent boolean NOT NULL DEFAULT false,
    published boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS deliveries_case ON deliveries (case_id);
"""


class DeliveryLog:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def claim(self, deliveries) -> dict:
        """Record each delivery as pending if new; return the known state of every one."""
        async with self.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO deliveries (delivery_id, case_id, cause_event_id, recipient, channel, status)"
                " VALUES ($1, $2, $3, $4, $5, 'pending') ON CONFLICT DO NOTHING",
                [(d.delivery_id, d.case_id, d.cause_event_id, d.recipient, d.channel) for d in deliveries])
            rows = await conn.fetch(
                "SELECT delivery_id, status, attempts, published, last_error, permanent FROM deliveries"
                " WHERE delivery_id = ANY($1::uuid[])", [d.delivery_id for d in deliveries])
        return {r["delivery_id"]: r for r in rows}

    async def attempt(self, delivery_id) -> None:
        """Count a try before it is made: a crash mid-send leaves the count honest."""
        await self.pool.execute(
            "UPDATE deliveries SET attempts = attempts + 1, status = 'sending', updated_at = now() WHERE delivery_id = $1",
            delivery_id)

    async def finish(self, delivery_id, status: str, error: str | None = None, permanent: bool = False) -> None:
        await self.pool.execute(
            "UPDATE deliveries SET status = $2, last_error = $3, permanent = $4, updated_at = now() WHERE delivery_id = $1",
            delivery_id, status, error, permanent)

    async def mark_published(self, delivery_ids) -> None:
        await self.pool.execute("UPDATE deliveries SET published = true WHERE delivery_id = ANY($1::uuid[])",
                                list(delivery_ids))
