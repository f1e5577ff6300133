"""Over real HTTP on real PostgreSQL: a unit that hands a case on past its deadline is counted late
in the figures HĐND, MTTQ and the public read; and rows made by an older fold are folded again
when oversight starts, so the figures and ``verify`` agree with the events."""

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.oversight import refold
from services.oversight.projection import FOLD_VERSION
from services.oversight.projector import OtherFold
from tests.integration.oversight.support import serve
from tests.unit.oversight.story import PHU_NHUAN, QUAN_1, CaseStory

NOW = datetime.now(UTC)
ROOT = Path(__file__).resolve().parents[3]

# Quận 1 resolves one case on time and declines another six days in, past its deadline; Phú Nhuận
# then resolves that one in its own fresh time. Five more Phú Nhuận cases keep it above the public
# ranking's smallest cell.
ON_TIME = CaseStory(received_at=NOW - timedelta(days=20)).opened().routed(QUAN_1).assigned().resolved(1)
HANDED_ON = (CaseStory(received_at=NOW - timedelta(days=20)).opened().routed(QUAN_1).assigned().accepted()
             .wait(days=6).declined().routed(PHU_NHUAN, fresh=True).assigned().resolved(7))
PHU_NHUAN_CASES = [CaseStory(received_at=NOW - timedelta(days=20)).opened().routed(PHU_NHUAN).resolved(2)
                   for _ in range(5)]
# Resolved late by Quận 1, reopened and back with it: counted as it stands (open), not late twice.
REOPENED_LATE = (CaseStory(received_at=NOW - timedelta(days=10)).opened().routed(QUAN_1).assigned().resolved(7)
                 .reopened().routed(QUAN_1, fresh=True))
# Accepted, a date committed, then a routine report; resolved, then reopened and routed back.
COMMITTED = CaseStory(received_at=NOW - timedelta(days=2)).opened().routed(QUAN_1).accepted()
COMMITTED.progress(committed_date=COMMITTED.received_at + timedelta(days=4)).progress()
REOPENED = (CaseStory(received_at=NOW - timedelta(days=3)).opened().routed(QUAN_1).assigned().resolved(1)
            .reopened().routed(QUAN_1, fresh=True))
# In the 1022 centre's triage: one it had an hour to send to a unit two hours ago, one due in three.
SORTED_LATE = CaseStory(received_at=NOW - timedelta(hours=3)).opened().triaged(sort_within=timedelta(hours=1))
SORTING = CaseStory(received_at=NOW - timedelta(hours=1)).opened().triaged(sort_within=timedelta(hours=4))


@pytest.fixture(scope="module", autouse=True)
async def cases(feed):
    await feed.apply([ON_TIME, HANDED_ON, *PHU_NHUAN_CASES, REOPENED_LATE, COMMITTED, REOPENED, SORTED_LATE, SORTING])


def units(api, path="/v1/stats/units", role="council"):
    return {u["unit_id"]: u for u in api.get(path, role=role).json()["units"]}


def test_a_case_handed_on_late_counts_due_and_late_to_the_unit_that_let_it_go(api):
    quan_1 = units(api)[QUAN_1.id]
    # Quận 1 holds ON_TIME, REOPENED_LATE, COMMITTED and REOPENED; it let HANDED_ON go late.
    assert {k: quan_1[k] for k in ("received", "resolved", "resolved_on_time", "overdue_now", "left_late", "due")} == \
        {"received": 4, "resolved": 1, "resolved_on_time": 1, "overdue_now": 0, "left_late": 1, "due": 2}
    assert quan_1["on_time_rate"] == 0.5  # it was 1.0: declining the late case cleared it
    phu_nhuan = units(api)[PHU_NHUAN.id]
    assert (phu_nhuan["left_late"], phu_nhuan["resolved_on_time"], phu_nhuan["on_time_rate"]) == (0, 6, 1.0)
    assert units(api, f"/v1/stats/units?unit={QUAN_1.id}")[QUAN_1.id]["left_late"] == 1
    assert units(api, f"/v1/stats/units?unit={PHU_NHUAN.id}").keys() == {PHU_NHUAN.id}


def test_a_unit_that_only_let_cases_go_late_is_still_ranked(api):
    """Filtered to the handed-on case's area, Quận 1 holds none of it and is still there."""
    day = (NOW - timedelta(days=20)).date().isoformat()
    figures = units(api, f"/v1/stats/units?area={PHU_NHUAN.admin_code}")
    assert figures[QUAN_1.id]["received"] == 0 and figures[QUAN_1.id]["left_late"] == 1
    assert figures[QUAN_1.id]["unit_name"] == QUAN_1.name and figures[QUAN_1.id]["on_time_rate"] == 0.0
    public = api.get(f"/v1/public/stats/units?from={day}", role=None).json()
    assert {u["unit_id"]: u["left_late"] for u in public["units"]}[PHU_NHUAN.id] == 0
    assert public["withheld_units"] == 1  # Quận 1, with fewer than five requests in those days


def test_the_case_rows_show_the_present_units_state(api):
    handed_on = api.get(f"/v1/cases/{HANDED_ON.case_id}", role="council").json()
    assert handed_on["unit_id"] == PHU_NHUAN.id and handed_on["accepted_at"] is None
    committed = api.get(f"/v1/cases/{COMMITTED.case_id}", role="council").json()
    assert datetime.fromisoformat(committed["committed_date"]) == COMMITTED.received_at + timedelta(days=4)
    # The citizen holding the code reads the date last promised, not the routing's, days before it.
    public = api.get(f"/v1/public/requests/{COMMITTED.tracking_code}", role=None).json()
    assert datetime.fromisoformat(public["expected_by"]) == COMMITTED.received_at + timedelta(days=4)
    assert public["resolve_by"] != public["expected_by"], "the routing's date is still there for the figures"
    reopened = api.get(f"/v1/cases/{REOPENED.case_id}", role="council").json()
    assert reopened["answer"] is None and reopened["status"] == "routed"


def test_a_case_the_centre_sorts_late_is_overdue_to_the_centre(api):
    """In triage no unit holds a case and no result is due yet: it is due to the centre, by its time
    to send the case on. A case the centre left unsorted past that was in no overdue list and, having
    no result deadline, in no list by deadline."""
    overdue = api.get("/v1/stats/overdue", role="council").json()["items"]
    assert [c["tracking_code"] for c in overdue] == [SORTED_LATE.tracking_code]
    assert overdue[0]["resolve_by"] is None
    assert datetime.fromisoformat(overdue[0]["reach_by"]) == SORTED_LATE.events[-1].sort_by
    assert api.get("/v1/stats/overview", role="front").json()["overdue_now"] == 1
    # By deadline, a page at a time: the cursor continues from the centre's time too.
    first = api.get("/v1/cases?status=triage&sort=deadline&limit=1", role="council").json()
    second = api.get(f"/v1/cases?status=triage&sort=deadline&limit=1&cursor={first['next_cursor']}",
                     role="council").json()
    assert [c["tracking_code"] for c in first["items"] + second["items"]] == \
        [SORTED_LATE.tracking_code, SORTING.tracking_code]
    assert second["next_cursor"] is None
    # The public's open requests by deadline have both, each with the centre's time to send it on.
    public = api.get("/v1/public/requests?sort=deadline&limit=500", role=None).json()["items"]
    reach = {c["tracking_code"]: datetime.fromisoformat(c["reach_by"]) for c in public if c["status"] == "triage"}
    assert reach == {story.tracking_code: story.events[-1].sort_by for story in (SORTED_LATE, SORTING)}
    status = api.get(f"/v1/public/requests/{SORTING.tracking_code}", role=None).json()
    assert status["status"] == "triage" and datetime.fromisoformat(status["reach_by"]) == SORTING.events[-1].sort_by


def refold_command(settings, *args):
    """``python -m services.oversight refold`` on the test's database, as an operator runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PGPORT": str(settings.pg_port),
           "OVERSIGHT_PG_DATABASE": settings.pg_database}
    return subprocess.run([sys.executable, "-m", "services.oversight", "refold", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


class Part:
    """Some of a story's records, for the projector to take in batches of their own."""

    def __init__(self, bodies):
        self.records = bodies

    def bodies(self):
        return self.records


async def test_a_decline_projected_in_a_later_batch_folds_the_same(api, feed):
    """The live projector folds each batch onto the stored row: the row and verify agree with a
    fold from the first event."""
    story = (CaseStory(received_at=NOW - timedelta(days=9)).opened().routed(PHU_NHUAN).accepted()
             .wait(days=6).declined().routed(QUAN_1, fresh=True))
    bodies = story.bodies()
    await feed.apply([Part(bodies[:3])])
    await feed.apply([Part(bodies[3:])])
    case = api.get(f"/v1/cases/{story.case_id}", role="council").json()
    assert case["unit_id"] == QUAN_1.id and case["accepted_at"] is None
    assert units(api)[PHU_NHUAN.id]["left_late"] == 1
    assert api.get("/v1/audit/verify", role="council").json()["ok"] is True


async def test_a_projector_waiting_behind_a_refolds_first_step_sees_the_new_fold(api, feed):
    """A refold records its fold first, holding the audit head. A projector of another fold that
    waited for the head read the fold as it stood before that, wrote its rows among the refolded
    ones, and kept them so."""
    refolding = await asyncpg.connect(api.settings.dsn())
    try:
        async with refolding.transaction():
            await refolding.execute("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE")
            await refolding.execute("UPDATE projection_state SET fold_version = $1", FOLD_VERSION + 1)
            projecting = asyncio.create_task(feed.apply([CaseStory().opened()]))
            # The activity a transaction reads is a snapshot of its first look, unless cleared.
            waiting = ("SELECT count(*) FROM (SELECT pg_stat_clear_snapshot()) AS cleared, pg_stat_activity"
                       " WHERE datname = $1 AND wait_event_type = 'Lock'")
            deadline = asyncio.get_running_loop().time() + 30
            while not await refolding.fetchval(waiting, api.settings.pg_database):
                assert not projecting.done() and asyncio.get_running_loop().time() < deadline, projecting
                await asyncio.sleep(0.05)
        with pytest.raises(OtherFold):
            await projecting
    finally:
        await refolding.execute("UPDATE projection_state SET fold_version = $1", FOLD_VERSION)
        await refolding.close()


async def test_rows_of_an_older_fold_are_folded_again_at_start(api, database, feed, monkeypatch):
    """What an oversight of the previous fold left: verify named a mismatch, and the figures
    counted the late case to nobody. At the next start the rows are what the events make."""
    owner = await asyncpg.connect(api.settings.dsn())
    try:
        assert await owner.fetchval("SELECT fold_version FROM projection_state") == FOLD_VERSION
        before = await owner.fetchrow("SELECT * FROM cases WHERE case_id = $1", HANDED_ON.case_id)
        await owner.execute("UPDATE cases SET left_late = NULL, accepted_at = $2 WHERE case_id = $1",
                            HANDED_ON.case_id, NOW - timedelta(days=19))
        await owner.execute("UPDATE cases SET committed_date = NULL WHERE case_id = $1", COMMITTED.case_id)
        await owner.execute("UPDATE projection_state SET fold_version = $1", FOLD_VERSION - 1)
        report = api.get("/v1/audit/verify", role="council").json()
        assert not report["ok"] and report["case_mismatch"]["reason"] == "the case row differs from what its events say"
        monkeypatch.setattr(refold, "BATCH", 2)  # a few cases a transaction: the batches' edges are crossed
        with serve(api.settings) as restarted:
            assert restarted.get("/v1/audit/verify", role="council").json()["ok"] is True
            assert units(restarted)[QUAN_1.id]["left_late"] == 1
        assert dict(await owner.fetchrow("SELECT * FROM cases WHERE case_id = $1", HANDED_ON.case_id)) == dict(before)
        assert await owner.fetchval("SELECT fold_version FROM projection_state") == FOLD_VERSION
        # Recorded and complete: the next start leaves even a row it would fold otherwise as it is.
        await owner.execute("UPDATE cases SET committed_date = NULL WHERE case_id = $1", COMMITTED.case_id)
        with serve(api.settings):
            pass
        assert await owner.fetchval("SELECT committed_date FROM cases WHERE case_id = $1", COMMITTED.case_id) is None
        # A newer oversight's fold: this one projects nothing onto its rows, and its start does not
        # fold them back (an old instance restarted during an upgrade); a rollback does, when asked.
        await owner.execute("UPDATE projection_state SET fold_version = $1", FOLD_VERSION + 1)
        with pytest.raises(OtherFold):
            await feed.apply([CaseStory().opened()])
        with serve(api.settings):
            pass
        assert await owner.fetchval("SELECT fold_version FROM projection_state") == FOLD_VERSION + 1
        refused = refold_command(api.settings)
        assert refused.returncode == 1 and "newer than this oversight's" in refused.stderr
        assert await refold.refold(owner, force=True) == 1
        assert await owner.fetchval("SELECT committed_date FROM cases WHERE case_id = $1", COMMITTED.case_id) is not None
        # A refold cut short (its mark left set) is done again at the next start.
        await owner.execute("UPDATE cases SET committed_date = NULL WHERE case_id = $1", COMMITTED.case_id)
        await owner.execute("UPDATE projection_state SET complete = false")
        with serve(api.settings):
            pass
        assert tuple(await owner.fetchrow("SELECT fold_version, complete FROM projection_state")) == (FOLD_VERSION, True)
        assert await owner.fetchval("SELECT committed_date FROM cases WHERE case_id = $1", COMMITTED.case_id) is not None
        # The command an operator runs: nothing to do now; forced, every case read and none changed.
        for args, said in (((), "nothing to fold again"), (("--force",), "0 rows folded again")):
            done = refold_command(api.settings, *args)
            assert (done.returncode, done.stdout.strip()) == (0, said), done.stderr
        # A row an oversight of c71242c..9ba46f3 recorded, before the mark: taken as complete.
        await owner.execute("ALTER TABLE projection_state DROP COLUMN complete")
        assert refold_command(api.settings).stdout.strip() == "nothing to fold again"
    finally:
        await owner.close()
