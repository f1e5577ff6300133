"""The Case aggregate on its own: its lifecycle, its refusals, and replay from its events."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.application import Application

from services.router.domain import Case, CaseError, NotYourCase

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
UNIT = {"id": "hcmc-2021/768", "name": "UBND Quận Phú Nhuận", "admin_code": "768"}
OTHER = {"id": "hcmc-2021/760", "name": "UBND Quận 1", "admin_code": "760"}


def meta(n: int = 0) -> dict:
    return {"correlation_id": "c", "causation_id": f"m{n}", "traceparent": None, "tracestate": None}


def opened() -> Case:
    return Case(case_id=uuid.uuid4(), meta=meta(), payload={
        "tracking_code": "ABCDE-FGHJK", "request_id": str(uuid.uuid4()), "channel": "web",
        "received_at": NOW.isoformat(), "category": "essential_supplies", "priority": "urgent",
        "description": "hết gạo", "address": "P.12 Q.Phú Nhuận", "citizen": {"phone": "+84903123456"},
        "is_public": True})


def routed(unit=UNIT) -> Case:
    case = opened()
    case.route_to(unit, area_code=unit["admin_code"], area_name=unit["name"], rule="category:essential_supplies->area",
                  reason="test", directory_version="hcmc-2021.1", reach_by=NOW + timedelta(minutes=5),
                  resolve_by=NOW + timedelta(days=1), meta=meta(1))
    return case


def test_the_whole_lifecycle():
    case = routed()
    case.issue_assignment(uuid.uuid4(), {"id": "h1", "name": "Lê Văn A"}, (), meta(2))
    case.accept(UNIT["id"], "h1", meta(3))
    case.report_progress(UNIT["id"], "đang xử lý", None, meta(4))
    case.resolve(UNIT["id"], "đã hỗ trợ 20kg gạo", meta(5))
    case.close("citizen satisfied", meta(6))
    assert case.status == "closed" and not case.is_open
    case.reopen("vẫn chưa nhận được", meta(7))
    assert case.status == "reopened" and case.is_open


def test_only_the_unit_holding_the_case_may_answer():
    case = routed()
    with pytest.raises(NotYourCase):
        case.accept(OTHER["id"], None, meta(2))
    with pytest.raises(NotYourCase):
        case.resolve(OTHER["id"], "x", meta(2))


def test_a_case_cannot_skip_its_states():
    case = routed()
    with pytest.raises(CaseError):
        case.close("too early", meta(2))
    case.accept(UNIT["id"], None, meta(3))
    version = case.version
    case.accept(UNIT["id"], None, meta(4))  # said again: already so, nothing recorded, no error
    assert case.version == version and case.status == "accepted"
    case.resolve(UNIT["id"], "Đã hỗ trợ", meta(5))
    with pytest.raises(CaseError):
        case.accept(UNIT["id"], None, meta(6))


def test_deadlines_matter_until_the_unit_acts():
    case = routed()
    assert case.deadline_missed("reach") and case.deadline_missed("resolve")
    case.escalate("reach", "unit_head", "late", meta(2))
    assert case.escalated_at("reach", "unit_head") and not case.escalated_at("reach", "centre")
    case.accept(UNIT["id"], None, meta(3))
    assert not case.deadline_missed("reach") and case.deadline_missed("resolve")
    case.resolve(UNIT["id"], "xong", meta(4))
    assert not case.deadline_missed("resolve")


def test_a_case_in_triage_has_the_centres_time_to_reach_a_unit():
    """A case in triage had no deadline at all: one the centre never sorted waited for good, and
    nobody was told."""
    case = opened()
    case.send_to_triage("no ward named", "hcmc-2021.1", meta(1), sort_by=NOW + timedelta(minutes=5))
    assert case.deadline_missed("reach") and not case.deadline_missed("resolve")
    assert case.due_for("reach", "unit_head", timedelta(minutes=10)) == NOW + timedelta(minutes=5)
    centre = {"id": "hcmc-2021/centre", "name": "Tổng đài 1022", "admin_code": None}
    case.escalate("reach", "unit_head", "late", meta(2), unit=centre)
    assert case.escalated_at("reach", "unit_head")
    case.route_to(UNIT, area_code="768", area_name="Phú Nhuận", rule="centre:decision", reason="x",
                  directory_version="hcmc-2021.1", reach_by=NOW + timedelta(minutes=30),
                  resolve_by=NOW + timedelta(days=5), meta=meta(3))
    assert not case.escalated_at("reach", "unit_head")  # the unit's own time, its chain afresh
    # A triage recorded by an older router, without a time to sort it: nothing to escalate.
    older = opened()
    older.send_to_triage("no ward named", "hcmc-2021.1", meta(1))
    assert not older.deadline_missed("reach")


def test_an_escalation_to_the_centre_carries_the_centres_channels():
    """The notifier told the centre at the generic webhook only: the event named no channels."""
    from services.router.directory import Handler, Unit

    duty = Handler("hcmc-2021/1022/h01", "Phạm Hoàng Khang", frozenset({"all"}), "24h")
    centre = Unit("hcmc-2021/1022", "Tổng đài 1022", "centre", "79", None, (duty,), ("email", "webhook"),
                  (("email", "truongca@1022.hcmc.example"),))
    case = opened()
    case.send_to_triage("no ward named", "hcmc-2021.1", meta(1), sort_by=NOW + timedelta(minutes=5))
    case.escalate("reach", "unit_head", "late", meta(2), unit={"id": centre.id, "name": centre.name},
                  notify=centre.own_channels())
    case.escalate("resolve", "unit_head", "late", meta(3))  # a unit's case: no unit named, no channels
    named, unnamed = [e.payload for e in case.collect_events() if type(e).__name__ == "Escalated"]
    assert named["notify"] == [{"channel": "email", "address": "truongca@1022.hcmc.example"},
                               {"channel": "webhook", "address": None}]
    assert "notify" not in unnamed and "unit" not in unnamed


def test_a_message_seen_before_is_recognised():
    case = routed()
    assert case.has_seen("m1") and not case.has_seen("m9")


def test_replaying_the_events_gives_the_same_state():
    app = Application()
    case = routed()
    case.issue_assignment(uuid.uuid4(), {"id": "h1", "name": "Lê Văn A"}, (), meta(2))
    case.decline(UNIT["id"], "không thuộc địa bàn", meta(3))
    case.route_to(OTHER, area_code="760", area_name="Quận 1", rule="declined->corrected", reason="x",
                  directory_version="hcmc-2021.1", reach_by=NOW, resolve_by=NOW, meta=meta(4))
    app.save(case)
    replayed = app.repository.get(case.id)
    assert replayed.__dict__ == case.__dict__
    assert [d["unit"] for d in replayed.decisions] == [UNIT["id"], OTHER["id"]]
    assert replayed.tried_units == [UNIT["id"], OTHER["id"]]


@pytest.mark.parametrize("accepted_first", [False, True])
def test_a_unit_that_reported_progress_can_still_hand_the_case_back(accepted_first):
    case = routed()
    if accepted_first:
        case.accept(UNIT["id"], None, meta(2))
    case.report_progress(UNIT["id"], "đang xem", None, meta(3))
    case.decline(UNIT["id"], "không thuộc địa bàn", meta(4), corrected_address="5 Lê Lợi, Quận 1")
    assert case.status == "received" and case.address == "5 Lê Lợi, Quận 1"
    with pytest.raises(CaseError):
        case.decline(UNIT["id"], "again", meta(5))
