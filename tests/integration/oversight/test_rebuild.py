"""Rebuilding the read models from the full history on the suite's Kafka, while the live service
keeps projecting: the rebuilt tables equal the live ones, a row altered in the live ones is found,
and a swap puts the rebuilt ones in place."""

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from contracts import topics
from services.oversight.chain import audited_text
from services.oversight.masking import PHONES_FIRST_AND_LAST
from services.oversight.projection import FOLD_VERSION
from services.oversight.rebuild import rebuild
from services.oversight.store import migrate
from tests.integration.oversight.support import AUDIT_KEY, publish, scratch_database, serve, settings_for, wait_for
from tests.support.kafka import send
from tests.support.mesh import eventually, park_group_at_end
from tests.unit.oversight.story import PHU_NHUAN, CaseStory

ROOT = Path(__file__).resolve().parents[3]
STORIES = [CaseStory().opened().routed().assigned().accepted().resolved().closed(),
           CaseStory().opened().routed().declined().routed(PHU_NHUAN).linked_duplicate(),
           CaseStory(is_public=False).opened().triaged(),
           # A number written into the text: the trail masks it, and the rebuilt trail must mask it alike.
           CaseStory(description="Bà cụ sống một mình, gọi cháu 0903 123 456").opened().routed(),
           CaseStory().opened().routed().assigned().resolved().reopened().escalated()]


# A delivery record published under the id of a case event published after it (a notifier's bug):
# the live projection keeps the delivery it read first and sets the case event aside. The rebuild
# reads both in batches of its own, and must set aside the same one for its tables to be equal.
CLASHING = CaseStory().opened().routed()
BOGUS = CaseStory().opened().delivered("handler", "email")
BOGUS.deliveries[0] = BOGUS.deliveries[0].model_copy(update={"event_id": CLASHING.events[0].event_id})


@pytest.fixture(scope="module", autouse=True)
async def history(live, kafka_bootstrap):
    await publish(kafka_bootstrap, STORIES)
    last = STORIES[-1]
    wait_for(lambda: live.get(f"/v1/cases/{last.case_id}").json().get("escalation_level"), 90,
             what="the live projection to reach the stories")
    conn = await asyncpg.connect(live.settings.dsn())
    try:
        await send(kafka_bootstrap, *BOGUS.deliveries, topic=topics.NOTIFY_DELIVERIES)
        bogus = BOGUS.deliveries[0].event_id
        await eventually(lambda: conn.fetchval("SELECT 1 FROM deliveries WHERE event_id = $1", bogus), 60,
                         what="the bogus delivery to be projected")
        await publish(kafka_bootstrap, [CLASHING])
        routed = CLASHING.events[1].event_id  # read after its CaseOpened, set aside
        await eventually(lambda: conn.fetchval("SELECT 1 FROM case_events WHERE event_id = $1", routed), 60,
                         what="the case event after the one under the delivery's id to be projected")
        assert not await conn.fetchval("SELECT 1 FROM case_events WHERE event_id = $1", bogus)
    finally:
        await conn.close()


async def test_the_rebuilt_read_models_equal_the_live_ones(live):
    report = await rebuild(live.settings)
    assert report["equal"], json.dumps(report, indent=1)
    assert report["whole_history"]  # this live projection read the topics from their first records
    assert set(report["tables"]) == {"cases", "case_events", "deliveries", "audit_log", "consumer_offsets"}
    cases = report["tables"]["cases"]
    assert cases["live"] == cases["rebuilt"] >= len(STORIES)
    assert report["events"] >= sum(len(s.bodies()) for s in STORIES)


def test_the_command_reports_equality_as_json(live):
    settings = live.settings
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PGPORT": str(settings.pg_port),
           "OVERSIGHT_PG_DATABASE": settings.pg_database, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap,
           "OVERSIGHT_AUDIT_KEY": AUDIT_KEY}
    done = subprocess.run([sys.executable, "-m", "services.oversight", "rebuild"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["equal"] is True


async def test_a_database_made_before_positions_kept_where_they_began_is_rebuilt_equal(live):
    """Its positions' first offsets were empty, and stayed so: the rebuild, which begins such a
    partition at its first record, never found the read models equal."""
    conn = await asyncpg.connect(live.settings.dsn())
    try:
        await conn.execute("UPDATE consumer_offsets SET first_offset = NULL")
        await migrate(conn, live.settings.reader_user)
    finally:
        await conn.close()
    report = await rebuild(live.settings)
    assert report["equal"], json.dumps(report, indent=1)


async def rebuilt_as_if_made_before(live, form: int, cut_over: str, restore: str) -> dict:
    """Rebuild with every masked record so far in ``form``, as if made before an upgrade whose time
    ``cut_over`` sets in audit_form (the chain's hashes are not compared); ``restore`` puts it back."""
    conn = await asyncpg.connect(live.settings.dsn())
    try:
        masked = {r["event_id"]: (r["canonical"], json.loads(r["body"])) for r in await conn.fetch(
            "SELECT a.event_id, a.canonical, coalesce(c.body, d.body)::text AS body FROM audit_log a"
            " LEFT JOIN case_events c USING (event_id) LEFT JOIN deliveries d USING (event_id)"
            " WHERE a.canonical LIKE '%masked_text_hmac%'")}
        assert STORIES[-2].events[0].event_id in masked  # the description with a number in it
        for event_id, (_, body) in masked.items():
            await conn.execute("UPDATE audit_log SET canonical = $2 WHERE event_id = $1", event_id,
                               audited_text(body, AUDIT_KEY.encode(), form))
        await conn.execute(f"UPDATE audit_form SET {cut_over}")
        return await rebuild(live.settings)
    finally:
        for event_id, (text, _) in masked.items():
            await conn.execute("UPDATE audit_log SET canonical = $2 WHERE event_id = $1", event_id, text)
        await conn.execute(f"UPDATE audit_form SET {restore}")
        await conn.close()


async def test_a_trail_begun_before_masking_is_rebuilt_in_the_form_each_record_has(live):
    """A trail an older oversight began keeps those records' text as written (chain.py): the rebuild
    must make them so too, or it never finds an upgraded database's trail equal."""
    report = await rebuilt_as_if_made_before(live, 0, "masked_since = now() + interval '1 day'", "masked_since = NULL")
    assert report["equal"], json.dumps(report, indent=1)


async def test_a_trail_of_the_first_masked_form_is_rebuilt_in_that_form(live):
    """Records made before e-mail addresses were masked and a number's first digits hidden keep that
    form (chain.py): the rebuild must make them so too, or it never finds an upgraded trail equal."""
    report = await rebuilt_as_if_made_before(live, PHONES_FIRST_AND_LAST, "contacts_since = now() + interval '1 day'",
                                             "contacts_since = '-infinity'")
    assert report["equal"], json.dumps(report, indent=1)


async def test_an_altered_live_row_is_found_and_a_swap_puts_the_rebuilt_ones_in_place(live):
    story = STORIES[0]
    conn = await asyncpg.connect(live.settings.dsn())
    try:
        await conn.execute("UPDATE cases SET status = 'in_progress', answer = NULL WHERE case_id = $1", story.case_id)
    finally:
        await conn.close()
    found = await rebuild(live.settings)
    assert not found["equal"]
    assert found["tables"]["cases"]["first"] == [{"key": str(story.case_id), "in": "both, differing"}]
    assert all(t["equal"] for name, t in found["tables"].items() if name != "cases")

    conn = await asyncpg.connect(live.settings.dsn())
    try:
        # The live rows as an oversight from before fold versions left them (no table for one): the
        # swapped ones are this fold's, and say so.
        await conn.execute("DROP TABLE projection_state")
        swapped = await rebuild(live.settings, swap=True)
        assert tuple(await conn.fetchrow("SELECT fold_version, complete FROM projection_state")) == (FOLD_VERSION, True)
    finally:
        await conn.close()
    assert swapped["swapped"]
    case = live.get(f"/v1/cases/{story.case_id}").json()
    assert case["status"] == "closed" and case["answer"].startswith("Đã trao")
    assert live.get("/v1/cases?limit=1", role="council").status_code == 200  # the reader may read the new tables
    assert (await rebuild(live.settings))["equal"]
    newer = CaseStory().opened().routed()
    await publish(live.settings.kafka_bootstrap, [newer])  # the projection goes on into the swapped tables
    wait_for(lambda: live.get(f"/v1/cases/{newer.case_id}").status_code == 200, 60, what="projection after the swap")


@pytest.fixture
def another_database(pg_admin_dsn):
    with scratch_database(pg_admin_dsn) as database:
        yield database


async def test_a_projection_that_began_mid_history_is_rebuilt_from_where_it_began(another_database, pg_port,
                                                                                 kafka_bootstrap):
    settings = settings_for(another_database, pg_port, kafka_bootstrap)
    # As the suite's meshes do: the group starts at the topics' ends, not at their first records.
    await park_group_at_end(kafka_bootstrap, settings.group_id, topics.CASE_EVENTS, topics.NOTIFY_DELIVERIES)
    with serve(settings) as running:
        story = CaseStory().opened().routed().assigned()
        await publish(kafka_bootstrap, [story])
        wait_for(lambda: running.get(f"/v1/cases/{story.case_id}").status_code == 200, 60,
                 what="the live projection to reach the story")
    report = await rebuild(settings)  # the service is stopped meanwhile: nothing to wait for
    assert report["equal"] and not report["whole_history"], json.dumps(report, indent=1)
    assert 1 <= report["tables"]["cases"]["rebuilt"] == report["tables"]["cases"]["live"]
