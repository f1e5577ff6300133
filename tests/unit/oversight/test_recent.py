"""Statistics kept for a few seconds: computed once for everyone asking meanwhile, never kept when they failed."""

import asyncio

import pytest

from services.oversight.api.recent import Recent


async def test_figures_are_computed_once_while_fresh_and_again_when_stale():
    computed = []

    async def compute():
        computed.append(1)
        await asyncio.sleep(0.05)
        return len(computed)

    recent = Recent(0.2)
    assert await asyncio.gather(*(recent.get("units", compute) for _ in range(5))) == [1] * 5
    assert await recent.get("units", compute) == 1
    assert await recent.get("overview", compute) == 2
    await asyncio.sleep(0.25)
    assert await recent.get("units", compute) == 3


async def test_a_failure_is_not_kept():
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("database restarting")
        return "figures"

    recent = Recent(60)
    with pytest.raises(ConnectionError):
        await recent.get("units", flaky)
    assert await recent.get("units", flaky) == "figures"


async def test_figures_slower_than_their_freshness_are_computed_once_at_a_time():
    """Counted from its start, a computation longer than the figures stay fresh was started again
    by each request after that, while the first still ran: each copy a reader's connection."""
    running, most = [0], [0]

    async def slow():
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.3)
        running[0] -= 1
        return "figures"

    recent = Recent(0.05)
    first = asyncio.ensure_future(recent.get("units", slow))
    await asyncio.sleep(0.1)  # past the freshness, the first still computing
    assert await asyncio.gather(first, recent.get("units", slow)) == ["figures", "figures"]
    assert most[0] == 1
