"""Figures over the whole history (statistics per unit, counts by area) kept for a few seconds.

Computing them reads every case — about a quarter of a second at a hundred thousand cases — while
a dashboard on every desk of HĐND and MTTQ asks for them again and again. Each answer says when it
was computed (``as_of``); requests arriving while one is being computed wait for that one.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

KEPT_AT_MOST = 256


class Recent:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self._kept: dict[str, tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        """The value computed for ``key`` less than ``seconds`` ago, or a fresh one."""
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is None or now - kept[0] >= self.seconds or (kept[1].done() and kept[1].exception()):
            if len(self._kept) >= KEPT_AT_MOST:
                self._kept.pop(min(self._kept, key=lambda k: self._kept[k][0]))
            kept = (now, asyncio.ensure_future(compute()))
            self._kept[key] = kept
        # Shielded: a caller that goes away does not cancel the work the others wait for.
        return await asyncio.shield(kept[1])
