"""The oversight API changes nothing and shows nothing without a token, over real HTTP: every
method but GET and HEAD is refused, and the role it reads through may only SELECT."""

import asyncpg
import httpx
import pytest

from tests.integration.oversight.support import TOKENS, auth
from tests.unit.oversight.story import CaseStory

STORY = CaseStory().opened().routed().assigned()
PATHS = ["/v1/cases", f"/v1/cases/{STORY.case_id}", f"/v1/cases/{STORY.case_id}/timeline", "/v1/cases.csv",
         "/v1/stats/units", "/v1/stats/overview", "/v1/stats/overdue", "/v1/audit/events", "/v1/audit/verify",
         "/v1/audit/checkpoints", "/v1/whoami"]
PUBLIC = [f"/v1/public/requests/{STORY.tracking_code}", "/v1/public/requests", "/v1/public/stats/units", "/", "/healthz"]
WRITES = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"]


@pytest.fixture(scope="module", autouse=True)
async def one_case(feed):
    await feed.apply([STORY])


@pytest.mark.parametrize("method", WRITES)
def test_every_write_method_is_refused_everywhere_even_for_the_centre(api, method):
    for path in PATHS + PUBLIC + ["/v1/anything-else"]:
        answer = httpx.request(method, api.url + path, headers=auth("centre"), json={"status": "closed"}, timeout=10)
        assert answer.status_code == 405, (method, path, answer.status_code)
        assert answer.headers["allow"] == "GET, HEAD"
    assert api.get(f"/v1/cases/{STORY.case_id}").json()["status"] == "routed"


def test_head_answers_like_get_without_a_body(api):
    for path in [f"/v1/cases/{STORY.case_id}", "/v1/cases.csv", "/v1/audit/events", "/"]:
        get = api.get(path)
        head = httpx.head(api.url + path, headers=auth("centre"), timeout=10)
        assert head.status_code == get.status_code == 200
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    follow = httpx.head(api.url + "/v1/audit/events?follow=true", headers=auth("council"), timeout=10)
    assert follow.status_code == 200 and follow.headers["content-type"].startswith("text/event-stream")


def test_no_oversight_data_without_a_valid_token(api):
    for path in PATHS:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": TOKENS["centre"][:-1]}):
            answer = httpx.get(api.url + path, headers=headers, timeout=10)
            assert answer.status_code == 401, (path, headers)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert STORY.tracking_code not in answer.text
    for path in PUBLIC:
        assert api.get(path, role=None).status_code == 200, path


def test_each_token_gives_its_role(api):
    assert {role: api.get("/v1/whoami", role=role).json()["role"] for role in TOKENS} == {r: r for r in TOKENS}


async def test_the_role_the_api_reads_through_may_only_select(api):
    reader = await asyncpg.connect(api.settings.dsn(reader=True))
    try:
        assert await reader.fetchval("SELECT count(*) FROM cases") == 1
        for statement in ("INSERT INTO cases (case_id, tracking_code, status, version, updated_at)"
                          " VALUES (gen_random_uuid(), 'X', 'received', 1, now())",
                          "UPDATE cases SET status = 'closed'", "DELETE FROM audit_log",
                          "UPDATE audit_head SET seq = 0", "TRUNCATE case_events",
                          "INSERT INTO consumer_offsets VALUES ('t', 0, 0)", "CREATE TABLE mine (x int)"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.execute(statement)
    finally:
        await reader.close()
