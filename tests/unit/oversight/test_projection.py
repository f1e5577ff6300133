"""How a case's events fold into the row HĐND, MTTQ and the centre see."""

from datetime import datetime

from contracts.text import VIETNAM
from tests.unit.oversight.story import PHU_NHUAN, CaseStory

from services.oversight.projection import CASE_COLUMNS, fold


def fold_story(story: CaseStory, row=None):
    return fold(row, [e.model_dump(mode="json") for e in story.events])


def test_a_request_handled_to_the_end():
    story = CaseStory().opened().routed().assigned().accepted().progress().resolved().closed()
    row = fold_story(story)
    assert set(row) == set(CASE_COLUMNS)
    assert row["status"] == "closed" and row["unit_name"] == "UBND Quận 1" and row["area_code"] == "760"
    assert row["handler_name"] == "Trần Thị Thảo" and row["answer"].startswith("Đã trao")
    assert row["routed_at"] < row["accepted_at"] < row["resolved_at"] < row["closed_at"]
    assert row["version"] == len(story.events) and row["updated_at"] == story.events[-1].occurred_at


def test_batches_do_not_matter_and_a_repeated_or_late_event_does_not_take_a_case_back():
    story = CaseStory().opened().routed().accepted().resolved()
    bodies = [e.model_dump(mode="json") for e in story.events]
    at_once = fold(None, bodies)
    in_steps = fold(fold(None, bodies[:2]), bodies[2:])
    assert at_once == in_steps
    assert fold(at_once, [bodies[1]]) == at_once  # CaseRouted again: still resolved


def test_a_reopened_case_is_open_again_and_a_reroute_clears_the_handler():
    row = fold_story(CaseStory().opened().routed().assigned().resolved().reopened())
    assert row["status"] == "reopened" and row["resolved_at"] is None
    rerouted = fold_story(CaseStory().opened().routed().assigned().declined().routed(PHU_NHUAN))
    assert rerouted["status"] == "routed" and rerouted["unit_id"] == PHU_NHUAN.id and rerouted["handler_id"] is None


def test_triage_duplicates_and_escalation():
    assert fold_story(CaseStory().opened().triaged())["status"] == "triage"
    row = fold_story(CaseStory().opened().routed().linked_duplicate().linked_duplicate().escalated())
    assert row["duplicates"] == 2 and row["escalation_level"] == "unit_head" and row["status"] == "routed"


def test_events_of_a_case_never_opened_show_nothing():
    story = CaseStory().opened().routed()
    assert fold(None, [story.events[1].model_dump(mode="json")]) is None


def test_a_committed_date_without_a_zone_is_a_day_in_vietnam():
    # Old ProgressReported events carry "2026-12-05T00:00:00"; the contract reads it as Vietnam's time.
    progress = CaseStory().opened().routed().accepted().progress().bodies()
    progress[-1]["committed_date"] = "2026-12-05T00:00:00"
    assert fold(None, progress)["committed_date"] == datetime(2026, 12, 5, tzinfo=VIETNAM)
