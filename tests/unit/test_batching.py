"""Group commit: writes handed in together leave together, and each caller learns how its own went."""

import asyncio

import pytest

from contracts.batching import GroupCommit


class Table:
    """Records each write's batch; a write of a poisoned item fails as a whole."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, items: list[int]) -> None:
        await self.gate.wait()
        if -1 in items:
            raise ValueError("bad row")
        self.batches.append(items)


async def behind_a_slow_write(table: Table, commit, first, rest) -> list[asyncio.Task]:
    """Start ``first`` while the table is held, then hand in ``rest`` while it is being written."""
    table.gate.clear()
    tasks = [asyncio.create_task(first)]
    await asyncio.sleep(0.01)  # the first write is under way
    tasks += [asyncio.create_task(c) for c in rest]
    await asyncio.sleep(0.01)
    return tasks


async def test_a_lone_write_goes_at_once():
    table = Table()
    await asyncio.wait_for(GroupCommit(table.write)(7), 1)
    assert table.batches == [[7]]


async def test_writes_arriving_while_one_runs_leave_together_and_each_caller_returns_after_its_commit():
    table, finished = Table(), []
    commit = GroupCommit(table.write)

    async def one(i: int) -> None:
        await commit(i)
        finished.append(i)

    tasks = await behind_a_slow_write(table, commit, one(0), [one(i) for i in range(1, 50)])
    assert finished == []  # nobody is told "written" before the database said so
    table.gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert table.batches == [[0], list(range(1, 50))]
    assert sorted(finished) == list(range(50))


async def test_a_failed_batch_fails_its_own_callers_and_the_next_batch_still_goes():
    table = Table()
    commit = GroupCommit(table.write, max_batch=2, retry_pause=0.001)
    results = await behind_a_slow_write(table, commit, commit(1), [commit(i) for i in (2, -1, 4, 5)])
    table.gate.set()
    outcomes = await asyncio.gather(*results, return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["NoneType", "ValueError", "ValueError", "NoneType", "NoneType"]
    assert table.batches == [[1], [4, 5]]


async def test_batches_are_no_larger_than_asked():
    table = Table()
    commit = GroupCommit(table.write, max_batch=10)
    tasks = await behind_a_slow_write(table, commit, commit(0), [commit(i) for i in range(1, 25)])
    table.gate.set()
    await asyncio.gather(*tasks)
    assert [len(b) for b in table.batches] == [1, 10, 10, 4]


async def test_stopping_the_writer_does_not_leave_callers_waiting_forever():
    table = Table()
    commit = GroupCommit(table.write)
    table.gate.clear()
    tasks = [asyncio.create_task(commit(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    commit.writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.gather(*tasks), 1)


async def test_a_batch_that_fails_once_is_written_on_the_next_try_and_nobody_hears_of_it():
    table, failures = Table(), [ConnectionResetError("connection reset")]

    async def flaky(items: list[int]) -> None:
        if failures:
            raise failures.pop()
        await table.write(items)

    commit = GroupCommit(flaky, retry_pause=0.001)
    await asyncio.wait_for(asyncio.gather(*(commit(i) for i in range(3))), 1)
    assert table.batches == [[0, 1, 2]]


async def test_a_write_that_answers_each_item_gives_every_caller_its_own_answer():
    table = Table()

    async def squares(items: list[int]) -> list[int]:
        await table.write(items)
        return [i * i for i in items]

    commit = GroupCommit(squares)
    tasks = await behind_a_slow_write(table, commit, commit(2), [commit(3), commit(4), commit(5)])
    table.gate.set()
    assert await asyncio.gather(*tasks) == [4, 9, 16, 25]
    assert table.batches == [[2], [3, 4, 5]]  # the answers came from two batches


async def test_a_write_that_answers_the_wrong_number_of_items_fails_its_callers_instead_of_leaving_them_waiting():
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    commit = GroupCommit(short, retries=0)
    with pytest.raises(ValueError, match="answered 0 of 1"):
        await asyncio.wait_for(commit(1), 1)
