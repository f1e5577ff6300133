"""The notifier's Zalo messages go with the OA access token intake keeps fresh: the notifier as a
real process borrows it from a real intake over HTTP, and a stand-in for Zalo (its OAuth server
and message API) takes only the tokens it issued and has not revoked."""

import secrets

import pytest

from contracts.events import Citizen
from tests.integration.intake.harness import RunningIntake, Secrets, ZaloOA, settings_for
from tests.integration.notifier.harness import as_router, publish
from tests.support.databases import fresh_database
from tests.unit.notifier.factories import Story

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
APP_SECRET = secrets.token_urlsafe(24)
READER_KEY = secrets.token_urlsafe(24)


@pytest.fixture
def zalo():
    stand_in = ZaloOA()
    yield stand_in
    stand_in.close()


@pytest.fixture
async def lending_intake(kafka_bootstrap, pg_port, pg_admin_dsn, zalo):
    database = await fresh_database(pg_admin_dsn, "intake_it")
    seed = zalo.authorize(APP_SECRET, lifetime=90000)
    settings = settings_for(kafka_bootstrap, pg_port, database, Secrets(), zalo_access_token="",
                            zalo_refresh_token=seed, zalo_app_secret=APP_SECRET,
                            zalo_oauth_url=zalo.url + "/v4/oa/access_token", zalo_token_reader_key=READER_KEY)
    intake = RunningIntake(settings).start()
    yield intake
    intake.stop()


async def test_a_citizen_hears_on_zalo_after_the_token_is_refused_and_through_an_intake_outage(
        kafka_bootstrap, start_notifier, zalo, lending_intake, outcomes):
    start_notifier(NOTIFIER_ZALO_API_URL=zalo.url + "/v3.0/oa/message/cs", NOTIFIER_ZALO_ACCESS_TOKEN="",
                   NOTIFIER_ZALO_TOKEN_URL=lending_intake.url + "/internal/zalo/access-token",
                   NOTIFIER_ZALO_TOKEN_KEY=READER_KEY)
    before, refused, outage = (Story(channel="zalo", citizen=Citizen(zalo_user_id=f"zl-token-{secrets.token_hex(4)}"))
                               for _ in range(3))

    async def told(story: Story) -> dict:
        outcomes.cases.add(str(story.case_id))
        await publish(kafka_bootstrap, as_router(story.opened()))
        seen = await outcomes.until(lambda seen: any(v["case_id"] == str(story.case_id) for v, _ in seen), 30,
                                    "the citizen's message")
        return next(v for v, _ in seen if v["case_id"] == str(story.case_id))

    first = await told(before)
    zalo.revoke()  # Zalo stops taking the token the notifier holds
    second = await told(refused)
    lending_intake.stop()  # the notifier goes on with the token it borrowed
    third = await told(outage)

    assert [o["event_type"] for o in (first, second, third)] == ["NotificationSent"] * 3
    assert first["attempts"] == 1 and second["attempts"] == 2 and third["attempts"] == 1
    (_, old), = zalo.taken(before.citizen.zalo_user_id)
    (_, new), = zalo.taken(refused.citizen.zalo_user_id)
    assert new != old and [token for _, token in zalo.taken(outage.citizen.zalo_user_id)] == [new]
    assert zalo.refreshes == 2 and zalo.reused == []
