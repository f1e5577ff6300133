"""Case list filters and cursors, without a database: what SQL a filter asks for, and cursors
that round-trip and refuse forgeries."""

import base64
from datetime import datetime
from uuid import uuid4

import orjson
import pytest
from fastapi import HTTPException

from services.oversight.api.listing import VIETNAM, CaseFilter, Page, case_filter


def test_no_filter_is_everything_and_the_public_list_only_public_cases():
    assert CaseFilter().where() == ("true", [])
    assert CaseFilter().where(public_only=True) == ("is_public", [])


def test_filters_become_numbered_arguments():
    where = case_filter(area="760", unit=None, category="water", status="routed, triage", overdue=True,
                        received_from="2021-08-01", received_to="2021-08-31", tracking_code="r0b6s-x6293")
    sql, args = where.where(args=["first"])
    assert "area_code = $2" in sql and "category = $3" in sql and "tracking_code = $4" in sql
    assert "status = ANY($5::text[])" in sql and "coalesce(resolve_by, reach_by) < now()" in sql
    assert args[1:5] == ["760", "water", "R0B6S-X6293", ["routed", "triage"]]
    # Days are Vietnamese days, and the last one is taken in whole.
    assert args[5] == datetime(2021, 8, 1, tzinfo=VIETNAM) and args[6] == datetime(2021, 9, 1, tzinfo=VIETNAM)


@pytest.mark.parametrize("day", ["2021-07-01", "20210701", "2021-W26-4"])
def test_a_day_however_iso_spells_it_is_taken_whole(day):
    _, args = case_filter(received_from=day, received_to=day).where()
    assert args == [datetime(2021, 7, 1, tzinfo=VIETNAM), datetime(2021, 7, 2, tzinfo=VIETNAM)]


def test_unknown_statuses_and_dates_are_refused():
    with pytest.raises(HTTPException) as refused:
        case_filter(status="lost")
    assert refused.value.status_code == 422 and "routed" in refused.value.detail
    with pytest.raises(HTTPException):
        case_filter(received_from="last week")


def test_a_cursor_continues_after_the_last_row_of_its_page():
    rows = [{"received_at": datetime(2021, 8, 1, 9, i, tzinfo=VIETNAM), "case_id": f"00000000-0000-0000-0000-00000000000{i}"}
            for i in range(3)]
    page = Page(limit=2)
    shown, cursor = page.cut(rows)
    assert shown == rows[:2] and cursor
    clause, args = Page(limit=2, cursor=cursor).clause("true", [])
    assert "(received_at, case_id) < ($1, $2::uuid)" in clause and clause.endswith("LIMIT 3")
    assert args == [rows[1]["received_at"], rows[1]["case_id"]]
    assert Page(limit=5).cut(rows) == (rows, None)


def test_a_forged_cursor_is_refused():
    with pytest.raises(HTTPException) as refused:
        Page(cursor="bm90IGEgY3Vyc29y").clause("true", [])
    assert refused.value.status_code == 422


def test_a_tracking_code_is_read_as_the_public_lookup_reads_it():
    # Without its dash, and with O for 0 as it is heard over the phone.
    assert case_filter(tracking_code="RoB6SX6293").tracking_code == "R0B6S-X6293"
    with pytest.raises(HTTPException) as refused:
        case_filter(tracking_code="R0B6S-X6294")  # one character mistyped
    assert refused.value.status_code == 422 and "tracking code" in refused.value.detail


@pytest.mark.parametrize("filters", [
    {"received_to": "9999-12-31"}, {"received_from": "0001-01-01"}, {"received_to": "9999-12-31T23:59:59-14:00"},
    {"area": "760\x00"}, {"unit": "\x00"}, {"category": "water\x00"}, {"tracking_code": "R0B6S-X6293\x00"},
], ids=["to the last day", "from the first day", "past 9999 in UTC", "NUL in area", "NUL in unit", "NUL in category",
        "NUL in tracking code"])
def test_what_postgresql_cannot_be_asked_is_refused_with_the_reason(filters):
    with pytest.raises(HTTPException) as refused:
        case_filter(**filters)
    assert refused.value.status_code == 422 and refused.value.detail


@pytest.mark.parametrize("cursor", [
    ["2021-08-01T09:00:00+07:00", "not-a-uuid"], ["0001-01-01T00:00:00+07:00", str(uuid4())],
], ids=["id not a UUID", "time before year 1 in UTC"])
def test_a_made_up_cursor_is_refused(cursor):
    made_up = base64.urlsafe_b64encode(orjson.dumps(cursor)).decode()
    with pytest.raises(HTTPException) as refused:
        Page(cursor=made_up).clause("true", [])
    assert refused.value.status_code == 422
