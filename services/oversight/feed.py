"""The live head of the audit chain, for the audit stream's live follow (Server-Sent Events).

The projector sends ``NOTIFY oversight_audit, '<seq>'`` in each batch's transaction, so listeners
hear of records only once they are committed. One listening connection serves every follower of
this instance; followers also look again every ``poll_seconds`` in case a notice was missed (the
listening connection dropped and came back).
"""

import asyncio
import contextlib
import logging
from typing import Any

from contracts.postgres import connect
from contracts.runtime import wait_a_while
from services.oversight.projector import AUDIT_CHANNEL

log = logging.getLogger(__name__)


class AuditFeed:
    def __init__(self, dsn: str, poll_seconds: float = 5.0):
        self.dsn = dsn
        self.poll_seconds = poll_seconds
        self.head = 0
        self.notices = 0  # heard so far
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_past(self, seq: int) -> None:
        """Return when the head may be past ``seq``: on a notice, or after ``poll_seconds``."""
        if self.head > seq:
            return
        await wait_a_while(self._moved, self.poll_seconds)

    def nothing_past(self, seq: int, notices: int) -> None:
        """The trail, read when ``notices`` had been heard, held nothing past ``seq``. A head above
        it is stale (a notice not from the projector, a database restored from a backup) and would
        wake followers at once, again and again, each time taking a reader's connection for nothing.
        A notice heard since that read is believed."""
        if notices == self.notices:
            self.head = min(self.head, seq)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.head = max(self.head, int(payload))
        self.notices += 1
        # Wake every waiter, then arm a fresh event for the next notice.
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def _listen(self) -> None:
        while True:
            conn = None
            try:
                conn = await connect(self.dsn)
                await conn.add_listener(AUDIT_CHANNEL, self._notified)
                self.head = max(self.head, await conn.fetchval("SELECT seq FROM audit_head WHERE id = 1") or 0)
                while not conn.is_closed():
                    await asyncio.sleep(self.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - followers still poll; we listen again
                log.warning("audit feed lost its listening connection (%s); listening again", error)
                await asyncio.sleep(1)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
