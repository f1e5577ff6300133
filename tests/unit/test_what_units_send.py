"""A date a district service commits to, and the times and trace context it sends, as the mesh reads them."""

import json
import uuid
from datetime import datetime

import pytest

from contracts.events import CASE_EVENT, UnitResponse
from contracts.text import VIETNAM
from services.notifier.templates import committed_by, render
from tests.unit.notifier.factories import Story


def committed(value: str | int | float) -> datetime:
    """The committed date of a progress report sent on the wire with ``value``."""
    case = str(uuid.uuid4())
    wire = {"event_id": str(uuid.uuid4()), "correlation_id": case, "producer": "district", "response_id": str(uuid.uuid4()),
            "case_id": case, "unit_id": "hcm-q-phu-nhuan", "kind": "progress", "committed_date": value}
    return UnitResponse.model_validate_json(json.dumps(wire)).committed_date


def test_a_day_alone_gives_the_unit_the_whole_of_that_day_in_vietnam():
    # Read as the day's first instant, "the 5th" made the citizen's apology go out on the 5th's morning.
    assert committed("2026-12-05") == datetime(2026, 12, 5, 23, 59, 59, tzinfo=VIETNAM)
    assert committed_by(committed("2026-12-05")) == {"at": "", "date": "05/12/2026"}


@pytest.mark.parametrize(("given", "meant"), [
    ("2026-12-05T00:00:00", datetime(2026, 12, 5, tzinfo=VIETNAM)),
    ("2026-12-05T17:00:00+07:00", datetime(2026, 12, 5, 17, tzinfo=VIETNAM)),
    ("2026-12-05T10:00:00Z", datetime(2026, 12, 5, 17, tzinfo=VIETNAM)),
])
def test_a_date_with_a_time_is_taken_as_given(given, meant):
    assert committed(given) == meant


@pytest.mark.parametrize(("given", "meant"), [
    ("20261205", datetime(2026, 12, 5, 23, 59, 59, tzinfo=VIETNAM)),  # ISO 8601's basic day
    ("2026-12-05 17:00:00+07", datetime(2026, 12, 5, 17, tzinfo=VIETNAM)),  # PostgreSQL's way of writing it
    ("20261205T170000+0700", datetime(2026, 12, 5, 17, tzinfo=VIETNAM)),
    ("2026-W49-6", datetime(2026, 12, 5, 23, 59, 59, tzinfo=VIETNAM)),  # a day alone, as a week's day
    ("  2026-12-05T17:00 ", datetime(2026, 12, 5, 17, tzinfo=VIETNAM)),
])
def test_other_iso_spellings_of_a_date_are_read(given, meant):
    assert committed(given) == meant


@pytest.mark.parametrize("given", [20261205, "1733390000", 1733390000.0])
def test_a_number_is_refused_not_read_as_seconds_since_1970(given):
    # pydantic reads a number as a Unix time: "20261205" was 23 August 1970, a promise already broken.
    with pytest.raises(ValueError, match="not a number"):
        committed(given)


def test_a_time_the_mesh_could_not_write_back_is_refused_not_taken():
    """Python reads an offset with seconds ("+07:00:30"); the strict readers of the case's events
    do not. Taken, it was stored in the case's ProgressReported, which the outbox then could not
    publish: no case's events went out after it."""
    with pytest.raises(ValueError):
        committed("2026-12-10T17:00:00+07:00:30")
    with pytest.raises(ValueError):  # a week is not a day: its Monday gave the unit six days less
        committed("2026-W49")


def test_a_units_answer_timed_with_an_offset_of_hours_is_read():
    case = str(uuid.uuid4())
    wire = {"event_id": str(uuid.uuid4()), "correlation_id": case, "producer": "district", "case_id": case,
            "response_id": str(uuid.uuid4()), "unit_id": "hcm-q-phu-nhuan", "kind": "accept",
            "occurred_at": "2026-12-05 09:30:00+07"}
    answered = UnitResponse.model_validate_json(json.dumps(wire)).occurred_at
    assert answered == datetime(2026, 12, 5, 9, 30, tzinfo=VIETNAM)


@pytest.mark.parametrize("given", ["2026-12-05T09:30:00", "2026-12-05 09:30", "20261205T093000"])
def test_a_units_answer_timed_without_a_zone_is_read_as_vietnams(given):
    """A district service that sends its local time lost its whole answer to the dead letters, a
    result with it: the case stayed open, escalated, and the citizen was apologised to instead."""
    case = str(uuid.uuid4())
    wire = {"event_id": str(uuid.uuid4()), "correlation_id": case, "producer": "district", "case_id": case,
            "response_id": str(uuid.uuid4()), "unit_id": "hcm-q-phu-nhuan", "kind": "resolve",
            "answer": "Đã hỗ trợ.", "occurred_at": given}
    assert UnitResponse.model_validate_json(json.dumps(wire)).occurred_at == datetime(2026, 12, 5, 9, 30,
                                                                                      tzinfo=VIETNAM)


def test_the_citizen_is_told_the_day_itself_is_allowed():
    _, text = render("apology_dated", "vi", code="7K3MQ-9PDX4", unit="UBND Phường 12",
                     **committed_by(committed("2026-12-05")))
    assert "chậm nhất ngày 05/12/2026" in text and "trước ngày" not in text


def test_the_citizen_is_told_the_hour_of_a_promise_made_to_the_hour():
    """Told "by 05/12" of a promise of 08:00 that day, the citizen was apologised to again at 08:00,
    when the router escalated the missed promise: a day that was not over yet."""
    texts = [render("apology_dated", language, code="7K3MQ-9PDX4", unit="UBND Phường 12",
                     **committed_by(committed("2026-12-05T08:00:00+07:00")))[1] for language in ("vi", "en")]
    assert "chậm nhất 08:00 ngày 05/12/2026" in texts[0]
    assert "by 08:00 05/12/2026" in texts[1]


def test_the_progress_report_the_router_writes_is_read_by_a_strict_reader():
    # Oversight checks case events strictly; a rule that parsed dates before pydantic did refused them.
    story = Story()
    story.opened()
    event = story.progress(committed("2026-12-05"))
    again = CASE_EVENT.validate_json(event.model_dump_json(), strict=True)
    assert again.committed_date == datetime(2026, 12, 5, 23, 59, 59, tzinfo=VIETNAM)


@pytest.mark.parametrize(("given", "kept"), [
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", True),
    ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future-field", True),  # a later version's
    ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", False),
    ("00-00000000000000000000000000000000-b7ad6b7169203331-01", False),
    ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", False),
    ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", False),
])
def test_a_units_trace_context_is_kept_only_when_w3c_calls_it_valid(given, kept):
    # An invalid one was carried into the case's events and on to the district services' webhooks.
    case = str(uuid.uuid4())
    wire = {"event_id": str(uuid.uuid4()), "correlation_id": case, "producer": "district", "case_id": case,
            "response_id": str(uuid.uuid4()), "unit_id": "hcm-q-phu-nhuan", "kind": "accept", "traceparent": given}
    assert UnitResponse.model_validate_json(json.dumps(wire)).traceparent == (given if kept else None)
