"""Deadline timers: durable (rows in ``deadlines``) and safe with several router instances
(each due row is locked while it is escalated, and the others skip it).

A missed deadline climbs a chain — the handler's unit head, then the 1022 centre — one step
per interval, each step a CaseEscalated event on the case.
"""

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg

from services.router import ledger
from services.router.domain import LEVELS

log = logging.getLogger(__name__)
NEXT_LEVEL = dict(zip(LEVELS, LEVELS[1:]))  # handler → unit head → centre


class Timers:
    def __init__(self, desk, pool: asyncpg.Pool, poll_seconds: float):
        self.desk, self.pool, self.poll_seconds = desk, pool, poll_seconds
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

        A row its case says is not due yet is left as it is, for the relay to move on, and is not
        counted: the timers then wait their poll rather than read it again at once."""
        handled = 0
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await ledger.due(conn)
            for row in rows:
                level = NEXT_LEVEL.get(row["level"])
                if level is None:
                    await conn.execute("UPDATE deadlines SET active = false WHERE case_id = $1 AND kind = $2",
                                       row["case_id"], row["kind"])
                    handled += 1
                    continue
                still_due = await asyncio.to_thread(self.desk.escalate, row["case_id"], row["kind"], level,
                                                    datetime.now(UTC))
                if still_due is None:
                    continue
                self.escalated += int(still_due)
                handled += 1
                await conn.execute(
                    "UPDATE deadlines SET level = $3, due_at = $4, active = $5 WHERE case_id = $1 AND kind = $2",
                    row["case_id"], row["kind"], level, row["due_at"] + self.desk.escalation_step[row["kind"]],
                    still_due and level in NEXT_LEVEL)
        return handled
