"""Group commit: many small writes that arrive together leave as one statement and one commit.

A caller hands in its item and waits until the write that carried it has committed, so it
keeps the guarantee of a write of its own. The first item is written at once — nothing waits for
company when the service is quiet — and what arrives while that write runs goes out together in
the next one. Under load the batches grow by themselves, and the commits per second stay about
what the database answers in a second rather than what the callers ask for.

A write may also answer each item: when it returns a list, one result per item in the batch's
order, each caller gets its own.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """``write`` must be safe to repeat: a failed batch is tried again (``retries`` times, a
    moment apart) before its callers hear of it, since one error now fails many callers at once."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Result] | None]], *, max_batch: int = 1000,
                 retries: int = 2, retry_pause: float = 0.05):
        self.write, self.max_batch, self.retries, self.retry_pause = write, max_batch, retries, retry_pause
        self.waiting: list[tuple[Item, asyncio.Future[Result | None]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result | None:
        """Write ``item`` with whatever else is waiting; returns once it is committed (with the
        write's answer for it, if it gives one), raises if its batch failed."""
        done: asyncio.Future[Result | None] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, done))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write_all())
        return await done

    async def _write_all(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result | None]]] = []
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:self.max_batch], self.waiting[self.max_batch:]
                _settle(batch, *await self._write_one([item for item, _ in batch]))
        except asyncio.CancelledError:  # the service is stopping: nobody is left waiting forever
            for _, done in batch + self.waiting:
                done.cancel()
            self.waiting = []
            raise

    async def _write_one(self, items: list[Item]) -> tuple[Sequence[Result] | None, Exception | None]:
        for attempt in range(self.retries + 1):
            try:
                results = await self.write(items)
                if results is not None and len(results) != len(items):
                    return None, ValueError(f"the write answered {len(results)} of {len(items)} items")
                return results, None
            except Exception as error:  # noqa: BLE001 - tried again, then each caller gets it
                if attempt == self.retries:
                    return None, error
                await asyncio.sleep(self.retry_pause * 2 ** attempt)
        return None, None


def _settle(batch: list[tuple[object, asyncio.Future[Result | None]]], results: Sequence[Result] | None,
            error: Exception | None) -> None:
    for i, (_, done) in enumerate(batch):
        if done.done():
            continue  # its caller stopped waiting
        if error is None:
            done.set_result(None if results is None else results[i])
        else:
            done.set_exception(error)
