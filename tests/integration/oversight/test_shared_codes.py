"""A tracking code an older intake gave to more than one request, over real HTTP: both cases are
kept and listed, and the public lookup names neither, since either could be another citizen's."""

import pytest

from tests.unit.oversight.story import CaseStory

FIRST = CaseStory(name="Trần Văn Nam", is_public=False).opened().routed()
SECOND = CaseStory(name="Lê Thị Mai")
SECOND.tracking_code = FIRST.tracking_code
SECOND.opened().routed().assigned()


@pytest.fixture(scope="module", autouse=True)
async def cases(feed):
    await feed.apply([FIRST, SECOND])


def test_the_public_lookup_of_a_shared_code_says_to_call_1022_and_nothing_of_either(api):
    answer = api.get(f"/v1/public/requests/{FIRST.tracking_code}", role=None)
    assert answer.status_code == 409 and "1022" in answer.json()["detail"]
    assert "status" not in answer.text and "unit" not in answer.text


def test_the_centre_finds_both_cases_by_the_code(api):
    listed = api.get(f"/v1/cases?tracking_code={FIRST.tracking_code}", role="centre").json()
    assert {c["case_id"] for c in listed["items"]} == {str(FIRST.case_id), str(SECOND.case_id)}
