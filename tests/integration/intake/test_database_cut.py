"""Intake's PostgreSQL gone without a word (its host lost, a network partition): nothing passes,
and no connection is closed. Every request is answered, 503 with Retry-After, rather than held
for the quarter of an hour TCP takes to give up, and the health check says so; and intake takes
requests again when it is back."""

import asyncio
import time

import httpx
import pytest

from tests.integration.intake.test_web import REQUEST, post
from tests.integration.intake.test_zalo import Citizen, replies
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
            # Its monitoring hears of it: an instance that lost its database said "ok" until restarted.
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
    assert health_during.json() == {"status": "degraded", "kafka": True, "postgres": False}
    assert health_after.status_code == 200 and health_after.json() == {"status": "ok", "kafka": True, "postgres": True}


async def test_zalo_messages_sent_while_the_database_is_cut_off_are_answered_once_it_is_back(start_intake, pg_port,
                                                                                           keys, oa):
    """Zalo does not send an event again: answered 503 in an outage, each message a citizen sent (a
    "Đồng ý" among them) was lost, and they were never answered."""
    async with Cut(pg_port) as cut:
        intake = await asyncio.to_thread(start_intake, pg_port=cut.port, pg_command_timeout_seconds=2.0)
        async with httpx.AsyncClient(timeout=60) as client:
            citizen = Citizen(keys, intake, client)
            cut.flowing = False
            taken = [await citizen.send(citizen.event("follow")), await citizen.says("1")]
            await asyncio.sleep(1.0)
            assert oa.texts_to(citizen.user_id) == [], "nothing can be answered while the database is away"
            cut.flowing = True
            said = await replies(oa, citizen.user_id, 3, timeout=60)
    assert [t.status_code for t in taken] == [200, 200]
    assert "xin chào" in said[0] and "lĩnh vực" in said[1] and "địa chỉ" in said[2], said
