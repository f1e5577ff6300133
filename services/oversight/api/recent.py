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
        self._kept: dict[str, _Kept] = {}

    async def get(self, key: str, compute: Callable[[], Awaitable[Any]]) -> Any:
        """The value computed for ``key`` less than ``seconds`` ago, the one being computed, or a fresh one.

        Its age counts from when it was done: counted from its start, figures that took longer
        than ``seconds`` to compute (millions of cases) were started again by every request after
        that while the first still ran, each copy holding a reader's connection."""
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is None or kept.stale(now, self.seconds):
            if len(self._kept) >= KEPT_AT_MOST:
                self._kept.pop(min(self._kept, key=lambda k: self._kept[k].started))
            kept = _Kept(now, asyncio.ensure_future(compute()))
            self._kept[key] = kept
        # Shielded: a caller that goes away does not cancel the work the others wait for.
        return await asyncio.shield(kept.future)


class _Kept:
    def __init__(self, started: float, future: "asyncio.Future[Any]"):
        self.started, self.future = started, future
        self.finished: float | None = None
        future.add_done_callback(self._done)

    def _done(self, _: "asyncio.Future[Any]") -> None:
        self.finished = time.monotonic()

    def stale(self, now: float, seconds: float) -> bool:
        if not self.future.done():
            return False  # being computed: wait for it
        failed = self.future.cancelled() or self.future.exception() is not None
        # finished is set by a callback a moment after the value: until then it is fresh.
        return failed or (self.finished is not None and now - self.finished >= seconds)
