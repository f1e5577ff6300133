"""What HĐND and MTTQ read, over real HTTP on real PostgreSQL: the case list with its filters and
pages, the CSV export, the statistics per unit with their ranking, and the overdue list."""

import asyncio
import base64
import contextlib
import csv
import io
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.oversight.api import listing, turns
from services.oversight.api.listing import VIETNAM
from services.oversight.projection import OPEN_STATUSES
from tests.support.mesh import eventually
from tests.unit.oversight.story import PHU_NHUAN, QUAN_1, CaseStory

NOW = datetime.now(UTC)


def ago(**delta):
    return NOW - timedelta(**delta)


# Quận 1: one resolved on time, one resolved late, one overdue now, one fresh. Phú Nhuận: one on
# time, one fresh (not public). One the centre still has to sort (triage).
A1 = CaseStory(received_at=ago(days=10)).opened().routed(QUAN_1, 2).assigned().resolved(1).closed()
A2 = CaseStory(received_at=ago(days=10)).opened().routed(QUAN_1, 4).assigned().resolved(7)
A3 = CaseStory(received_at=ago(days=8)).opened().routed(QUAN_1, 6).assigned().accepted()
A4 = CaseStory(received_at=ago(hours=1)).opened().routed(QUAN_1, 2)
B1 = CaseStory(received_at=ago(days=3), category="covid_support").opened().routed(PHU_NHUAN, 1).resolved(2)
B2 = CaseStory(received_at=ago(hours=2), is_public=False).opened().routed(PHU_NHUAN, 3)
T1 = CaseStory(received_at=ago(minutes=50)).opened().triaged()
NEWEST_FIRST = [T1, A4, B2, B1, A3, A1, A2]  # A1 and A2 were received within microseconds


@pytest.fixture(scope="module", autouse=True)
async def cases(feed):
    await feed.apply([A1, A2, A3, A4, B1, B2, T1])


def codes(answer):
    return {c["tracking_code"] for c in answer.json()["items"]}


def test_filters_by_unit_area_category_status_overdue_and_code(api):
    assert codes(api.get(f"/v1/cases?unit={QUAN_1.id}")) == {s.tracking_code for s in (A1, A2, A3, A4)}
    assert codes(api.get("/v1/cases?area=768")) == {B1.tracking_code, B2.tracking_code}
    assert codes(api.get("/v1/cases?category=covid_support")) == {B1.tracking_code}
    assert codes(api.get("/v1/cases?status=routed,triage")) == {A4.tracking_code, B2.tracking_code, T1.tracking_code}
    assert codes(api.get("/v1/cases?overdue=true")) == {A3.tracking_code}
    assert len(codes(api.get("/v1/cases?overdue=false"))) == 6
    assert codes(api.get(f"/v1/cases?tracking_code={B1.tracking_code.lower()}")) == {B1.tracking_code}
    assert codes(api.get(f"/v1/cases?tracking_code={B1.tracking_code.replace('-', '')}")) == {B1.tracking_code}
    assert codes(api.get(f"/v1/cases?unit={QUAN_1.id}&status=closed")) == {A1.tracking_code}


def test_a_date_range_is_in_vietnamese_days_and_takes_in_the_last_day(api):
    day = (NOW - timedelta(days=10)).astimezone(VIETNAM).date().isoformat()
    assert codes(api.get(f"/v1/cases?to={day}")) == {A1.tracking_code, A2.tracking_code}
    since = (NOW - timedelta(days=4)).astimezone(VIETNAM).date().isoformat()
    assert codes(api.get(f"/v1/cases?from={since}")) == {s.tracking_code for s in (B1, A4, B2, T1)}
    window = api.get(f"/v1/cases?from={ago(days=9).isoformat()}&to={ago(days=2).isoformat()}".replace("+", "%2B"))
    assert codes(window) == {A3.tracking_code, B1.tracking_code}


def test_bad_filters_are_refused_with_the_reason(api):
    assert "unknown status" in api.get("/v1/cases?status=lost").json()["detail"]
    assert api.get("/v1/cases?from=yesterday").status_code == 422
    assert api.get("/v1/cases?cursor=not-a-cursor").status_code == 422
    assert api.get("/v1/cases?limit=501").status_code == 422


# A cursor made up, not given out: its case id is not a UUID.
MADE_UP_CURSOR = base64.urlsafe_b64encode(b'["2021-08-01T09:00:00+07:00","x"]').decode()


@pytest.mark.parametrize("path", [
    "/v1/public/stats/units?to=9999-12-31", "/v1/public/stats/units?from=0001-01-01",
    "/v1/public/requests?to=9999-12-31", "/v1/public/requests?from=0001-01-01", "/v1/cases?from=0001-01-01",
    "/v1/stats/units?to=9999-12-31", "/v1/cases.csv?from=0001-01-01",
    "/v1/cases?area=760%00", "/v1/stats/overview?unit=%00", "/v1/public/stats/units?category=%00",
    "/v1/public/requests?tracking_code=%00", "/v1/cases?tracking_code=ABCDE-FGHJK",
    # Each new public filter is figures computed over the whole history: an area must be a code.
    "/v1/public/stats/units?area=760%20OR%201",
    f"/v1/cases?cursor={MADE_UP_CURSOR}", f"/v1/stats/overdue?cursor={MADE_UP_CURSOR}",
])
def test_what_no_case_could_match_is_refused_with_the_reason(api, path):
    answer = api.get(path)
    assert answer.status_code == 422 and isinstance(answer.json()["detail"], str)


async def test_pages_are_stable_newest_first_even_when_cases_arrive_between_them(api, feed):
    first = api.get("/v1/cases?limit=3").json()
    assert [c["tracking_code"] for c in first["items"]] == [s.tracking_code for s in NEWEST_FIRST[:3]]
    late = CaseStory(received_at=NOW).opened()
    await feed.apply([late])
    seen = [c["tracking_code"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get(f"/v1/cases?limit=3&cursor={cursor}").json()
        seen += [c["tracking_code"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen[:5] == [s.tracking_code for s in NEWEST_FIRST[:5]]
    assert sorted(seen) == sorted(s.tracking_code for s in NEWEST_FIRST)  # nothing twice, nothing skipped
    assert api.get("/v1/cases?limit=1").json()["items"][0]["tracking_code"] == late.tracking_code


def test_the_csv_export_has_every_filtered_case_masked_by_role(api):
    answer = api.get(f"/v1/cases.csv?unit={QUAN_1.id}", role="front")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert {r["tracking_code"] for r in rows} == {s.tracking_code for s in (A1, A2, A3, A4)}
    # A phone starts with "+", which a spreadsheet would take for a formula: it is kept as text ('…).
    assert {r["citizen_name"] for r in rows} == {"N. T. H***"}
    assert {r["citizen_phone"] for r in rows} == {"'+********456"}
    assert {r["unit_name"] for r in rows} == {"UBND Quận 1"}
    full = list(csv.DictReader(io.StringIO(api.get("/v1/cases.csv?area=768", role="centre").content.decode("utf-8-sig"))))
    assert {r["citizen_name"] for r in full} == {"Nguyễn Thị Hoa"}


def test_figures_per_unit_and_their_ranking(api):
    units = {u["unit_id"]: u for u in api.get("/v1/stats/units", role="council").json()["units"]}
    quan_1, phu_nhuan = units[QUAN_1.id], units[PHU_NHUAN.id]
    assert {k: quan_1[k] for k in ("received", "open", "resolved", "resolved_on_time", "overdue_now", "due")} == \
        {"received": 4, "open": 2, "resolved": 2, "resolved_on_time": 1, "overdue_now": 1, "due": 3}
    assert quan_1["on_time_rate"] == pytest.approx(1 / 3, abs=1e-4)
    # Reaching the unit took 2, 4, 6 and 2 minutes after opening (3 s after receipt); resolving 1 and 7 days.
    assert quan_1["median_route_seconds"] == pytest.approx(183.0)
    assert quan_1["median_resolve_seconds"] == pytest.approx(4 * 86400)
    assert (phu_nhuan["on_time_rate"], phu_nhuan["overdue_now"], phu_nhuan["median_resolve_seconds"]) == (1.0, 0, 2 * 86400)
    assert (phu_nhuan["rank"], quan_1["rank"]) == (1, 2)
    assert len(units) == 2  # the case in triage has no unit yet


def test_counts_by_status_and_by_area(api):
    overview = api.get("/v1/stats/overview", role="front").json()
    # The pages test may have added a case just received (no area yet); the rest is fixed.
    by_status = {k: n for k, n in overview["by_status"].items() if k != "received"}
    assert by_status == {"closed": 1, "resolved": 2, "accepted": 1, "routed": 2, "triage": 1}
    assert overview["total"] == sum(overview["by_status"].values())
    areas = {a["area_code"]: a for a in overview["by_area"]}
    assert areas["760"]["total"] == 4 and areas["760"]["overdue_now"] == 1 and areas["760"]["area_name"] == "Quận 1"
    assert areas["768"]["by_status"] == {"resolved": 1, "routed": 1}
    assert overview["overdue_now"] == 1


def test_the_overdue_list_longest_overdue_first(api, feed):
    overdue = api.get("/v1/stats/overdue", role="council").json()
    assert [c["tracking_code"] for c in overdue["items"]] == [A3.tracking_code]
    assert overdue["items"][0]["citizen_name"] == "N. T. H***"
    by_deadline = api.get("/v1/cases?sort=deadline").json()["items"]
    deadlines = [c["resolve_by"] for c in by_deadline]
    assert deadlines == sorted(deadlines) and len(deadlines) == 6  # every case that has a deadline


def test_one_case_and_its_timeline(api):
    case = api.get(f"/v1/cases/{A1.case_id}").json()
    assert case["status"] == "closed" and case["handler_name"] == "Trần Thị Thảo"
    timeline = api.get(f"/v1/cases/{A1.case_id}/timeline", role="council").json()
    assert [e["event_type"] for e in timeline["events"]] == [e.event_type for e in A1.events]
    assert [e["event_id"] for e in timeline["events"]] == [str(e.event_id) for e in A1.events]
    assert all(e["producer"] == "router" for e in timeline["events"])
    assert [(d["recipient"], d["channel"], d["outcome"]) for d in timeline["deliveries"]] == \
        [("handler", "webhook", "sent"), ("citizen", "sms", "sent")]
    assert timeline["events"][0]["body"]["citizen"] == {"full_name": "N. T. H***", "phone": "+********456"}
    assert api.get("/v1/cases/00000000-0000-0000-0000-000000000000").status_code == 404


def test_the_public_list_by_deadline_is_of_open_requests(api):
    """By deadline, every page sorted all public cases with a deadline (no index has them all):
    anyone could make each page read the whole history. A deadline is what is still due."""
    everything = api.get("/v1/public/requests?limit=500", role=None).json()["items"]
    by_deadline = api.get("/v1/public/requests?sort=deadline&limit=500", role=None).json()["items"]
    open_ones = [c["tracking_code"] for c in everything if c["status"] in OPEN_STATUSES and c["resolve_by"]]
    assert open_ones and any(c["status"] not in OPEN_STATUSES for c in everything)
    assert sorted(c["tracking_code"] for c in by_deadline) == sorted(open_ones)
    assert [c["resolve_by"] for c in by_deadline] == sorted(c["resolve_by"] for c in by_deadline)


@contextlib.asynccontextmanager
async def held_up(api, paths):
    """``paths`` asked for by the public while the cases are locked (as a long query would hold them
    up), until each waits on the lock; yields the answers to come. The lock goes as the block ends."""
    holder = await asyncpg.connect(api.settings.dsn())
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")
            asked = [asyncio.create_task(asyncio.to_thread(api.get, path, role=None)) for path in paths]
            waiting = "SELECT count(*) >= $1 FROM pg_locks WHERE relation = 'cases'::regclass AND NOT granted"
            await eventually(lambda: holder.fetchval(waiting, len(paths)), 30, "the requests waiting on the lock")
            yield asked
    finally:
        await holder.close()


async def test_the_publics_figures_are_computed_one_at_a_time_and_a_caller_who_cannot_wait_is_told_to_return(
        api, monkeypatch):
    """Each new public filter is figures over the whole history: while one is being computed, the
    next waits its turn, then is answered 503 with Retry-After."""
    monkeypatch.setattr(turns, "GATE_WAIT_SECONDS", 0.5)
    async with held_up(api, ["/v1/public/stats/units?from=2026-01-01"]) as [first]:
        second = await asyncio.to_thread(api.get, "/v1/public/stats/units?from=2026-02-01", role=None)
        assert second.status_code == 503 and second.headers["retry-after"] == "5"
        assert "try again" in second.json()["detail"]
    assert (await first).status_code == 200
    # Once the first is done, the next is computed.
    assert api.get("/v1/public/stats/units?from=2026-02-01", role=None).status_code == 200


async def test_the_publics_pages_are_read_a_few_at_a_time_and_each_for_a_few_seconds(api, monkeypatch):
    """A filter no index serves (a category no public request has) read every public case; a few
    dozen such pages at once held every connection HĐND, MTTQ and the centre read through."""
    monkeypatch.setattr(turns, "GATE_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(listing, "PUBLIC_PAGE_SECONDS", 3.0)
    async with held_up(api, [f"/v1/public/requests?category=nothing-{n}" for n in range(2)]) as slow:
        third = await asyncio.to_thread(api.get, "/v1/public/requests?category=nothing-3", role=None)
        assert third.status_code == 503 and third.headers["retry-after"] == "5"
        cut_short = await asyncio.gather(*slow)
        assert [a.status_code for a in cut_short] == [503, 503] and "narrow it" in cut_short[0].json()["detail"]
        assert all(a.headers["retry-after"] for a in cut_short)
    assert api.get("/v1/public/requests?category=nothing-4", role=None).json()["items"] == []
