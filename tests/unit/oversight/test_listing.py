"""Case list filters and cursors, without a database: what SQL a filter asks for, and cursors
that round-trip and refuse forgeries."""

from datetime import datetime

import pytest
from fastapi import HTTPException

from services.oversight.api.listing import VIETNAM, CaseFilter, Page, case_filter


def test_no_filter_is_everything_and_the_public_list_only_public_cases():
    assert CaseFilter().where() == ("true", [])
    assert CaseFilter().where(public_only=True) == ("is_public", [])


def test_filters_become_numbered_arguments():
    where = case_filter(area="760", unit=None, category="water", status="routed, triage", overdue=True,
                        received_from="2021-08-01", received_to="2021-08-31", tracking_code="7k3mq-9pdx4")
    sql, args = where.where(args=["first"])
    assert "area_code = $2" in sql and "category = $3" in sql and "tracking_code = $4" in sql
    assert "status = ANY($5::text[])" in sql and "resolve_by < now()" in sql
    assert args[1:5] == ["760", "water", "7K3MQ-9PDX4", ["routed", "triage"]]
    # Days are Vietnamese days, and the last one is taken in whole.
    assert args[5] == datetime(2021, 8, 1, tzinfo=VIETNAM) and args[6] == datetime(2021, 9, 1, tzinfo=VIETNAM)


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
