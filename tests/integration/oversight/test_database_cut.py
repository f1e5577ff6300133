"""Oversight's PostgreSQL gone without a word (nothing passes, no connection closed): the API,
the public's lookup and /healthz included, answers 503 with Retry-After rather than a bare 500 or
nothing for the quarter of an hour TCP takes to give up; and answers again once it is back."""

import asyncio
import contextlib
import time
import uuid

import httpx
import pytest

from contracts import ids
from tests.integration.oversight.support import auth, serve, settings_for
from tests.support.network import Cut

pytestmark = pytest.mark.postgres


async def test_a_database_cut_off_is_answered_503_and_read_again_once_it_is_back(database, pg_port, kafka_bootstrap):
    async with Cut(pg_port) as cut:
        with contextlib.ExitStack() as stack:
            # Started off the test's loop: the cut's proxy runs on it.
            settings = settings_for(database, cut.port, kafka_bootstrap, consume=False, pg_command_timeout_seconds=2.0)
            api = await asyncio.to_thread(stack.enter_context, serve(settings))
            try:
                async with httpx.AsyncClient(timeout=60) as client:
                    paths = ("/healthz", "/v1/cases", f"/v1/public/requests/{ids.tracking_code(uuid.uuid4())}")
                    before = [await client.get(api.url + p, headers=auth("centre")) for p in paths]
                    cut.flowing = False
                    during = [await client.get(api.url + p, headers=auth("centre")) for p in paths]
                    cut.flowing = True
                    deadline, after = time.monotonic() + 60, None
                    while time.monotonic() < deadline:
                        after = await client.get(api.url + "/healthz")
                        if after.status_code == 200:
                            break
                        assert after.status_code == 503, after.text
                        await asyncio.sleep(0.5)
            finally:
                await asyncio.to_thread(stack.close)
    assert [b.status_code for b in before] == [200, 200, 404]
    assert [d.status_code for d in during] == [503] * 3, [d.text for d in during]
    assert all(d.headers.get("Retry-After") for d in during)
    assert after.status_code == 200, after.text
