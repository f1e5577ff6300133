"""The public's share of the readers' pool. What anyone may ask with filters of their own choosing
(the ranking, the list of public requests) is served a few at a time: one that cannot start within
:data:`GATE_WAIT_SECONDS` is answered 503 with Retry-After, and HĐND, MTTQ and the centre, signed in,
never wait behind it for a connection."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import HTTPException

GATE_WAIT_SECONDS = 10.0
RETRY_AFTER = {"Retry-After": "5"}


@contextlib.asynccontextmanager
async def turn(gate: asyncio.Semaphore) -> AsyncIterator[None]:
    """Hold one of ``gate``'s places for the block, or answer 503 if none frees in time."""
    try:
        await asyncio.wait_for(gate.acquire(), GATE_WAIT_SECONDS)
    except TimeoutError:
        raise HTTPException(503, "busy answering others; try again shortly", headers=RETRY_AFTER) from None
    try:
        yield
    finally:
        gate.release()
