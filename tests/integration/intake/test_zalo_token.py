"""The Zalo OA access token kept fresh: intake refreshes it against a local stand-in for Zalo's
OAuth server, which spends each refresh token on its first use, over real HTTP and PostgreSQL.

Zalo's access tokens live 25 hours. With only a fixed one configured, the chatbot and the
notifier's Zalo messages stopped a day after each deploy, until someone pasted in a new token."""

import asyncio
import secrets
import time

import asyncpg
import httpx
import pytest

from contracts.zalo_token import digest
from tests.integration.intake.test_zalo import Citizen

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
APP_SECRET = secrets.token_urlsafe(24)
READER_KEY = secrets.token_urlsafe(24)
LEND = "/internal/zalo/access-token"


def refreshing(oa, seed: str) -> dict:
    """Intake's settings for keeping the token fresh from ``seed``, with no fixed token to fall back on."""
    return {"zalo_refresh_token": seed, "zalo_app_secret": APP_SECRET, "zalo_access_token": "",
            "zalo_oauth_url": oa.url + "/v4/oa/access_token", "zalo_token_reader_key": READER_KEY}


async def taken(oa, user_id: str, count: int, timeout: float = 20) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while len(oa.taken(user_id)) < count:
        assert time.monotonic() < deadline, f"expected {count} replies taken, got {oa.taken(user_id)}"
        await asyncio.sleep(0.05)
    return oa.taken(user_id)


async def borrow(client: httpx.AsyncClient, intake, refused: str | None = None) -> str:
    answer = await client.post(intake.url + LEND, json={"refused": refused} if refused else None,
                               headers={"Authorization": f"Bearer {READER_KEY}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()["access_token"]


async def test_replies_keep_going_out_after_the_access_token_expires(start_intake, keys, oa):
    seed = oa.authorize(APP_SECRET, lifetime=4)
    intake = start_intake(**refreshing(oa, seed))
    async with httpx.AsyncClient(timeout=15) as client:
        citizen = Citizen(keys, intake, client)
        await citizen.says("xin chào")
        await taken(oa, citizen.user_id, 2)
        await asyncio.sleep(4.5)  # the token those went with has expired
        await citizen.says("Đèn đường hỏng cả dãy, buổi tối rất tối và nguy hiểm")
        replies = await taken(oa, citizen.user_id, 3)
    assert replies[0][1] != replies[2][1], "the reply after expiry went with a fresh token"
    assert oa.reused == [], "a refresh token was tried after it was spent"


async def test_a_refused_token_is_replaced_and_the_reply_goes_on_the_next_try(start_intake, keys, oa):
    seed = oa.authorize(APP_SECRET, lifetime=90000)
    intake = start_intake(**refreshing(oa, seed))
    async with httpx.AsyncClient(timeout=15) as client:
        citizen = Citizen(keys, intake, client)
        await citizen.says("xin chào")
        (_, before), _ = await taken(oa, citizen.user_id, 2)
        oa.revoke()  # Zalo stops taking every token issued so far
        await citizen.says("Đèn đường hỏng cả dãy, buổi tối rất tối và nguy hiểm")
        replies = await taken(oa, citizen.user_id, 4)  # two to this message
    assert [token for _, token in replies] == [before, before, replies[2][1], replies[2][1]] and replies[2][1] != before
    assert oa.refreshes == 2 and oa.reused == []
    assert len(oa.texts_to(citizen.user_id)) == 5, "one refused try, then each reply once"


async def test_instances_told_of_one_refusal_at_once_buy_one_new_pair(start_intake, oa):
    seed = oa.authorize(APP_SECRET, lifetime=90000)
    first, second = start_intake(**refreshing(oa, seed)), start_intake(**refreshing(oa, seed))
    async with httpx.AsyncClient(timeout=40) as client:
        token = await borrow(client, first)
        assert await borrow(client, second) == token, "both instances lend the one kept token"
        bought = oa.refreshes
        fresh = await asyncio.gather(*(borrow(client, instance, refused=digest(token))
                                       for instance in (first, second) for _ in range(5)))
    assert set(fresh) != {token} and len(set(fresh)) == 1
    assert oa.refreshes == bought + 1 and oa.reused == []


async def test_the_kept_pair_outlives_a_restart_and_a_spent_seed_is_not_taken_again(start_intake, oa):
    seed = oa.authorize(APP_SECRET, lifetime=90000)
    first = start_intake(**refreshing(oa, seed))
    async with httpx.AsyncClient(timeout=15) as client:
        token = await borrow(client, first)
        first.stop()
        again = start_intake(**refreshing(oa, seed))  # the same configuration, its seed spent
        assert await borrow(client, again) == token
        oa.revoke()
        assert await borrow(client, again, refused=digest(token)) != token, "the kept refresh token bought a pair"
    assert oa.refreshes == 2 and oa.reused == []


async def test_the_token_is_lent_only_to_the_holder_of_the_reader_key(start_intake, oa):
    seed = oa.authorize(APP_SECRET, lifetime=90000)
    lending = start_intake(**refreshing(oa, seed))
    closed = start_intake(**(refreshing(oa, seed) | {"zalo_token_reader_key": ""}))
    async with httpx.AsyncClient(timeout=15) as client:
        nobody = await client.post(lending.url + LEND)
        wrong = await client.post(lending.url + LEND, headers={"Authorization": "Bearer " + secrets.token_urlsafe(24)})
        not_here = await client.post(closed.url + LEND, headers={"Authorization": f"Bearer {READER_KEY}"})
    assert nobody.status_code == 401 and wrong.status_code == 401
    assert "access_token" not in wrong.text
    assert not_here.status_code == 503


async def test_a_refresh_zalo_answers_slowly_is_kept_though_the_send_waiting_for_it_gave_up(start_intake, keys, oa):
    """A reply's send gives up after its time-out. The refresh it was waiting for ran inside it and
    was cut off after Zalo had spent the refresh token: the new pair was never written."""
    seed = oa.authorize(APP_SECRET, lifetime=90000)
    oa.oauth_delay = 2.5
    intake = start_intake(zalo_send_timeout_seconds=1.0, **refreshing(oa, seed))
    async with httpx.AsyncClient(timeout=40) as client:
        citizen = Citizen(keys, intake, client)
        await citizen.says("xin chào")
        replies = await taken(oa, citizen.user_id, 2, timeout=30)
        oa.oauth_delay = 0.0
        oa.revoke()  # the pair must have been written for its refresh token to buy the next
        fresh = await borrow(client, intake, refused=digest(replies[0][1]))
    assert fresh != replies[0][1] and oa.refreshes == 2 and oa.reused == []


async def test_a_refreshed_pair_postgresql_would_not_take_is_used_and_stored_once_it_does(start_intake, intake_database,
                                                                                        pg_admin_dsn, oa):
    """Zalo had spent the old refresh token; the write of the new pair failed and the pair was dropped."""
    seed = oa.authorize(APP_SECRET, lifetime=90000)
    intake = start_intake(**refreshing(oa, seed))
    db = await asyncpg.connect(pg_admin_dsn.rsplit("/", 1)[0] + "/" + intake_database)
    async with httpx.AsyncClient(timeout=15) as client:
        first = await borrow(client, intake)
        await db.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                         " $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;"
                         " CREATE TRIGGER refuse BEFORE UPDATE ON zalo_oa_token FOR EACH ROW EXECUTE FUNCTION refuse()")
        second = await borrow(client, intake, refused=digest(first))
        assert second != first, "the new pair is used though it could not be written"
        await db.execute("DROP TRIGGER refuse ON zalo_oa_token")
        deadline = time.monotonic() + 20
        while await db.fetchval("SELECT access_token FROM zalo_oa_token") != second:
            assert time.monotonic() < deadline, "the new pair was never written"
            assert await borrow(client, intake) == second
            await asyncio.sleep(0.2)
    await db.close()
    oa.revoke()
    async with httpx.AsyncClient(timeout=15) as client:
        assert await borrow(client, start_intake(**refreshing(oa, seed)), refused=digest(second)) not in (first, second)
    assert oa.refreshes == 3 and oa.reused == []


async def test_a_token_zalo_refused_is_not_lent_again_while_no_new_one_can_be_had(start_intake, oa):
    """A refusal that came while a refresh could not be had (Zalo's OAuth failing) was forgotten,
    and the refused token lent again: the notifier spent its tries on it."""
    seed = oa.authorize(APP_SECRET, lifetime=90000)
    intake = start_intake(**refreshing(oa, seed))
    async with httpx.AsyncClient(timeout=40) as client:
        token = await borrow(client, intake)
        oa.app_secret = secrets.token_urlsafe(24)  # Zalo's OAuth refuses every refresh from now on
        oa.revoke()
        headers = {"Authorization": f"Bearer {READER_KEY}"}
        refused = await client.post(intake.url + LEND, json={"refused": digest(token)}, headers=headers)
        again = await client.post(intake.url + LEND, headers=headers)
    assert refused.status_code == 503 and again.status_code == 503
    assert token not in refused.text + again.text
