"""The public ranking narrowed to a small selection shows no unit a single request could be told
from: narrowed to one ward's requests of one kind on one day, it told a private request's unit,
outcome and times."""

from datetime import UTC, datetime

import pytest

from services.oversight.api.public import MIN_PUBLIC_REQUESTS
from tests.unit.oversight.story import PHU_NHUAN, QUAN_1, CaseStory

DAY = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City, 20 November
MANY = [CaseStory(phone=f"+8490312{i:04d}", category="vulnerable_person", is_public=False, received_at=DAY,
                  key=f"many-{i}").opened().routed(QUAN_1).assigned().resolved() for i in range(MIN_PUBLIC_REQUESTS)]
ONE = CaseStory(phone="+84903999999", category="vulnerable_person", is_public=False, received_at=DAY,
                key="one").opened().routed(PHU_NHUAN).assigned()


@pytest.fixture(scope="module", autouse=True)
async def cases(feed):
    await feed.apply([*MANY, ONE])


def test_a_narrowed_ranking_withholds_a_unit_with_too_few_requests(api):
    narrowed = api.get("/v1/public/stats/units?from=2026-11-20&to=2026-11-20&category=vulnerable_person",
                       role=None).json()
    assert [(u["unit_id"], u["rank"], u["received"]) for u in narrowed["units"]] == [
        (QUAN_1.id, 1, MIN_PUBLIC_REQUESTS)]
    assert narrowed["withheld_units"] == 1
    assert PHU_NHUAN.id not in str(narrowed)


def test_the_whole_ranking_and_the_oversight_bodies_see_every_unit(api):
    everything = api.get("/v1/public/stats/units", role=None).json()
    assert {u["unit_id"] for u in everything["units"]} == {QUAN_1.id, PHU_NHUAN.id}
    assert everything["withheld_units"] == 0
    council = api.get("/v1/stats/units?from=2026-11-20&to=2026-11-20&category=vulnerable_person", role="council")
    assert {u["unit_id"] for u in council.json()["units"]} == {QUAN_1.id, PHU_NHUAN.id}
