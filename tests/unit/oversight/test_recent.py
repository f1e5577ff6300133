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
