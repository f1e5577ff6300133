"""Intake's PostgreSQL gone without a word (its host lost, a network partition): nothing passes,
and no connection is closed. Every request is answered, 503 with Retry-After, rather than held
for the quarter of an hour TCP takes to give up, and the health check says so; and intake takes
requests again when it is back."""

import asyncio
import time

import httpx
import pytest

from tests.integration.intake.test_web import REQUEST, post
from tests.support.network import Cut

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_a_database_cut_off_is_answered_503_and_taken_again_once_it_is_back(start_intake, pg_port):
    async with Cut(pg_port) as cut:
        # Started off the test's loop: the cut's proxy runs on it, and intake's start waits for PostgreSQL.
        intake = await asyncio.to_thread(start_intake, pg_port=cut.port, pg_command_timeout_seconds=2.0)
        async with httpx.AsyncClient(timeout=60) as client:
            before = await post(client, intake, {**REQUEST, "phone": "0912 000 551"})
            cut.flowing = False
            during = await asyncio.gather(*(post(client, intake, {**REQUEST, "phone": f"0912 000 56{n}"})
                                            for n in range(3)))
            # Its balancer hears of it: an instance that lost its database said "ok" until restarted.
            health_during = await client.get(intake.url + "/healthz")
            cut.flowing = True
            deadline, after = time.monotonic() + 60, None
            while time.monotonic() < deadline:
                after = await post(client, intake, {**REQUEST, "phone": "0912 000 571"})
                if after.status_code == 202:
                    break
                assert after.status_code == 503, after.text
                await asyncio.sleep(0.5)
            health_after = await client.get(intake.url + "/healthz")
    assert before.status_code == 202, before.text
    assert [d.status_code for d in during] == [503] * 3, [d.text for d in during]
    assert all(d.headers.get("Retry-After") for d in during)
    assert after.status_code == 202, after.text
    assert health_during.status_code == 503 and health_during.json()["postgres"] is False
    assert health_after.status_code == 200 and health_after.json() == {"status": "ok", "kafka": True, "postgres": True}
