"""Who sees what, over real HTTP: citizens' names and phones in full for the 1022 centre, masked
for HĐND and MTTQ, never for the public; requests not marked public invisible to the public."""

import json

import pytest

from contracts.text import VIETNAM
from tests.unit.oversight.story import CaseStory

PUBLIC = CaseStory(name="Trần Văn Nam", phone="+84912345678").opened().routed().assigned().resolved()
PRIVATE = CaseStory(name="Lê Thị Mai", phone="+84987654321", is_public=False).opened().routed().assigned().resolved()
PERSONAL = ["Trần Văn Nam", "Lê Thị Mai", "+84912345678", "+84987654321", "912345678", "987654321", "hoa@example.vn"]
# Numbers written into the text: a neighbour's in the description, the citizen's in the answer.
WRITTEN = (CaseStory(description="Bà cụ sống một mình, hết gạo. Gọi hàng xóm 0903 111 222.").opened().routed()
           .assigned().resolved(answer="Đã trao gạo. Đã gọi bà qua số 0987-333-444 để xác nhận."))
WRITTEN_NUMBERS = ["0903 111 222", "0987-333-444", "903111222", "987333444"]


@pytest.fixture(scope="module", autouse=True)
async def cases(feed):
    await feed.apply([PUBLIC, PRIVATE, WRITTEN])


def oversight_views(api, role):
    case_id = PUBLIC.case_id
    return {path: api.get(path, role=role).text for path in (
        f"/v1/cases/{case_id}", f"/v1/cases?tracking_code={PUBLIC.tracking_code}", f"/v1/cases/{case_id}/timeline",
        "/v1/cases.csv", "/v1/audit/events")}


def test_the_centre_sees_names_and_phones_in_full(api):
    case = api.get(f"/v1/cases/{PUBLIC.case_id}", role="centre").json()
    assert (case["citizen_name"], case["citizen_phone"], case["citizen_email"]) == \
        ("Trần Văn Nam", "+84912345678", "hoa@example.vn")
    opened = api.get(f"/v1/cases/{PUBLIC.case_id}/timeline", role="centre").json()["events"][0]["body"]
    assert opened["citizen"]["full_name"] == "Trần Văn Nam"
    assert "Trần Văn Nam" in api.get(f"/v1/cases.csv?tracking_code={PUBLIC.tracking_code}", role="centre").text


@pytest.mark.parametrize("role", ["council", "front"])
def test_the_council_and_the_front_see_them_masked_everywhere(api, role):
    for path, text in oversight_views(api, role).items():
        for secret in PERSONAL:
            assert secret not in text, (role, path, secret)
    case = api.get(f"/v1/cases/{PUBLIC.case_id}", role=role).json()
    assert (case["citizen_name"], case["citizen_phone"], case["citizen_email"]) == ("T. V. N***", "+********678", None)


@pytest.mark.parametrize("role", ["council", "front"])
def test_phone_numbers_written_into_a_case_are_masked_for_the_council_and_the_front(api, role):
    """A citizen writes a neighbour's number into the description, a unit the citizen's into its
    answer: HĐND and MTTQ read them as they read the citizen's own, masked."""
    views = {path: api.get(path, role=role).text for path in (
        f"/v1/cases/{WRITTEN.case_id}", f"/v1/cases/{WRITTEN.case_id}/timeline",
        f"/v1/cases.csv?tracking_code={WRITTEN.tracking_code}")}
    for path, text in views.items():
        for number in WRITTEN_NUMBERS:
            assert number not in text, (role, path, number)
    case = api.get(f"/v1/cases/{WRITTEN.case_id}", role=role).json()
    assert case["description"] == "Bà cụ sống một mình, hết gạo. Gọi hàng xóm **** *** 222."
    assert case["answer"] == "Đã trao gạo. Đã gọi bà qua số ****-***-444 để xác nhận."
    centre = api.get(f"/v1/cases/{WRITTEN.case_id}/timeline", role="centre").text
    assert all(number in centre for number in WRITTEN_NUMBERS[:2])
    public = api.get(f"/v1/public/requests/{WRITTEN.tracking_code}", role=None).json()
    assert public["answer"] == case["answer"]


def test_the_audit_trail_holds_no_personal_data_for_anyone(api):
    trail = api.get("/v1/audit/events", role="centre").text
    assert trail.count("\n") == len(PUBLIC.bodies()) + len(PRIVATE.bodies()) + len(WRITTEN.bodies())
    for secret in PERSONAL:
        assert secret not in trail
    opened = json.loads(trail.splitlines()[0])
    assert opened["event_type"] == "CaseOpened" and '"citizen":{"hmac_sha256":' in opened["canonical"]


def test_the_public_sees_a_public_request_without_anything_personal(api):
    seen = api.get(f"/v1/public/requests/{PUBLIC.tracking_code.lower().replace('-', ' ')}", role=None).json()
    assert seen["status"] == "resolved" and seen["status_vi"] == "Đã có kết quả" and seen["unit"] == "UBND Quận 1"
    assert seen["category_vi"] == "Hộ gia đình thiếu nhu yếu phẩm" and seen["answer"].startswith("Đã trao")
    listed = api.get("/v1/public/requests", role=None).text
    for text in (str(seen), listed, api.get("/v1/public/stats/units", role=None).text):
        for secret in PERSONAL + ["Nguyễn Văn Trỗi", "cách ly"]:
            assert secret not in text


def test_a_request_not_marked_public_is_in_no_public_list_and_its_lookup_says_only_where_it_stands(api):
    for path in ("/v1/public/requests", f"/v1/public/requests?tracking_code={PRIVATE.tracking_code}",
                 "/v1/public/requests?status=resolved", "/v1/public/requests?limit=500&area=760"):
        answer = api.get(path, role=None)
        assert answer.status_code == 200
        assert PRIVATE.tracking_code not in answer.text, path
    assert PUBLIC.tracking_code in api.get("/v1/public/requests", role=None).text
    lookup = api.get(f"/v1/public/requests/{PRIVATE.tracking_code}", role=None).json()
    assert set(lookup) == {"tracking_code", "is_public", "status", "status_vi", "status_en", "received_at",
                           "updated_at", "resolve_by", "reach_by", "resolved_at", "committed_date", "expected_by"}
    assert lookup["is_public"] is False and lookup["status"] == "resolved"


def test_the_public_ranking_cannot_be_narrowed_to_one_request(api):
    """It counts requests not marked public too; narrowed to one, it told their unit and category."""
    everything = api.get("/v1/public/stats/units", role=None).json()["units"]
    for narrowing in (f"tracking_code={PRIVATE.tracking_code}", "status=resolved", "unit=hcmc-2021/760"):
        assert api.get(f"/v1/public/stats/units?{narrowing}", role=None).json()["units"] == everything, narrowing
    day = PRIVATE.received_at.astimezone(VIETNAM).date().isoformat()
    assert api.get(f"/v1/public/stats/units?from={day}T00:00:00&to={day}T23:59:59", role=None).status_code == 422
    by_day = api.get(f"/v1/public/stats/units?from={day}&to={day}&category=essential_supplies", role=None)
    assert by_day.status_code == 200 and by_day.json()["units"] == [], "two requests: fewer than a unit is shown for"
    assert by_day.json()["withheld_units"] == 1


def test_a_lookup_of_a_wrong_or_unknown_code(api):
    assert api.get("/v1/public/requests/NOT-A-CODE", role=None).status_code == 400
    unknown = CaseStory().tracking_code
    assert api.get(f"/v1/public/requests/{unknown}", role=None).status_code == 404


def test_the_public_ranking_is_the_oversight_ranking_without_the_rest(api):
    public = api.get("/v1/public/stats/units", role=None).json()["units"]
    full = api.get("/v1/stats/units", role="council").json()["units"]
    assert [(u["unit_id"], u["rank"], u["on_time_rate"]) for u in public] == \
        [(u["unit_id"], u["rank"], u["on_time_rate"]) for u in full]
