"""How a case's events fold into the row HĐND, MTTQ and the centre see."""

from datetime import datetime, timedelta

from contracts.text import VIETNAM
from tests.unit.oversight.story import PHU_NHUAN, QUAN_1, CaseStory

from services.oversight.projection import CASE_COLUMNS, fold, left_late_units


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


def test_the_next_unit_starts_with_no_acceptance_assignment_or_date_of_the_one_before():
    """A rerouted case showed the first unit's acceptance and committed date as the second unit's."""
    story = CaseStory().opened().routed().assigned().accepted()
    story.progress(committed_date=story.received_at + timedelta(days=3)).declined().routed(PHU_NHUAN)
    row = fold_story(story)
    assert row["unit_id"] == PHU_NHUAN.id and row["status"] == "routed"
    assert (row["accepted_at"], row["committed_date"], row["assigned_at"]) == (None, None, None)


def test_a_routine_report_keeps_the_date_the_unit_committed_to():
    """A progress report without a date erased the committed date HĐND and MTTQ saw."""
    story = CaseStory().opened().routed().accepted()
    promised = story.received_at + timedelta(days=3)
    row = fold_story(story.progress(committed_date=promised).progress())
    assert row["status"] == "in_progress" and row["committed_date"] == promised


def test_a_reopened_case_shows_no_answer_and_keeps_when_it_reached_its_unit():
    """The rejected answer stayed the case's answer; going back to the same unit restarted its
    'reached the unit' time, which put the first handling into the median time to route."""
    story = CaseStory().opened().routed().assigned().resolved()
    first_routed = fold_story(story)["routed_at"]
    row = fold_story(story.reopened().routed())
    assert row["status"] == "routed" and row["answer"] is None and row["resolved_at"] is None
    assert row["routed_at"] == first_routed
    elsewhere = fold_story(CaseStory().opened().routed().assigned().resolved().reopened().routed(PHU_NHUAN))
    assert elsewhere["routed_at"] > first_routed  # another unit: it reached that one now


def test_a_unit_that_lets_a_case_go_past_its_deadline_is_kept_as_having_left_it_late():
    """Declined, or taken by the centre, after the 5-day deadline, the case went to the next unit
    with fresh deadlines, and the first unit's lateness was counted nowhere."""
    declined = fold_story(CaseStory().opened().routed().accepted().wait(days=6).declined().routed(PHU_NHUAN))
    assert [u["id"] for u in left_late_units(declined["left_late"])] == [QUAN_1.id]
    assert left_late_units(declined["left_late"])[0]["name"] == QUAN_1.name
    taken = fold_story(CaseStory().opened().routed().accepted().wait(days=6).routed(PHU_NHUAN))
    assert [u["id"] for u in left_late_units(taken["left_late"])] == [QUAN_1.id]
    to_triage = fold_story(CaseStory().opened().routed().wait(days=6).triaged())
    assert [u["id"] for u in left_late_units(to_triage["left_late"])] == [QUAN_1.id]


def test_a_case_let_go_in_time_or_resolved_is_no_units_lateness():
    in_time = CaseStory().opened().routed().accepted().declined().routed(PHU_NHUAN)
    assert fold_story(in_time)["left_late"] is None
    reopened = CaseStory().opened().routed().assigned().resolved(after_days=2).reopened().routed(fresh=True)
    assert fold_story(reopened)["left_late"] is None
    # Declined late, then the same unit again: it let the case go late once.
    twice = CaseStory().opened().routed().wait(days=6).declined().routed().wait(days=6).declined().routed(PHU_NHUAN)
    assert [u["id"] for u in left_late_units(fold_story(twice)["left_late"])] == [QUAN_1.id]


def test_a_late_result_reopened_stays_late_to_its_unit():
    """The case comes back with fresh deadlines, and the late resolution was counted nowhere."""
    story = CaseStory().opened().routed().assigned().resolved(after_days=7).reopened().routed(fresh=True)
    row = fold_story(story)
    assert row["status"] == "routed" and row["resolve_by"] > story.received_at + timedelta(days=7)
    assert [u["id"] for u in left_late_units(row["left_late"])] == [QUAN_1.id]


def test_triage_after_a_decline_shows_nothing_of_the_unit_before_and_the_centres_time():
    story = CaseStory().opened().routed().assigned().accepted().escalated("reach", "centre")
    story.progress(committed_date=story.received_at + timedelta(days=3)).declined().triaged(timedelta(minutes=5))
    row = fold_story(story)
    assert row["status"] == "triage" and row["unit_id"] is None
    assert (row["accepted_at"], row["committed_date"], row["assigned_at"], row["handler_id"]) == (None,) * 4
    assert row["escalation_level"] is None and row["reach_by"] == story.events[-1].sort_by
    assert row["resolve_by"] is None  # no result is due until a unit has it
    assert fold_story(story.escalated("reach", "unit_head"))["escalation_level"] == "unit_head"


def test_lateness_folds_the_same_in_any_batches():
    bodies = CaseStory().opened().routed().accepted().wait(days=6).declined().routed(PHU_NHUAN).bodies()[:5]
    bodies = [b for b in bodies if not b["event_type"].startswith("Notification")]
    assert fold(fold(None, bodies[:3]), bodies[3:]) == fold(None, bodies)
