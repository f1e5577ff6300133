"""A case's whole life through the running mesh: the unit answers on ``unit.responses``, the
router records and publishes each step on ``case.events``; triage, decline and reroute,
escalation, duplicates and reopening included. Real Kafka, real PostgreSQL, real processes."""

import asyncio
import json
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from contracts import topics
from contracts.text import VIETNAM
from tests.support.kafka import case_events, kinds, response, send
from tests.support.mesh import die_with_parent, oversight_get, wait_for

CENTRE = "hcmc-2021/1022"
PHU_NHUAN, GO_VAP = "hcmc-2021/768", "hcmc-2021/764"


def submit(mesh, address="45 Lê Văn Sỹ, Phường 13, Quận Phú Nhuận, TP.HCM", category="essential_supplies",
           phone=None, description="Cần hỗ trợ gấp.") -> dict:
    body = {"full_name": "Lê Thị Mai", "phone": phone or f"0912{random.randrange(10**6):06d}", "address": address,
            "category": category, "description": description, "is_public": False}
    answer = httpx.post(mesh.url("intake") + "/v1/channels/web/requests", json=body,
                        headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=15)
    assert answer.status_code == 202, answer.text
    return answer.json()


def has(*wanted):
    return lambda events: all(kinds(events).count(k) >= n for k, n in _counts(wanted).items())


def _counts(wanted):
    out = {}
    for k in wanted:
        out[k] = out.get(k, 0) + 1
    return out


async def test_received_routed_accepted_in_progress_resolved_closed_and_reopened(mesh, kafka_bootstrap):
    case = submit(mesh)["case_id"]
    events = await case_events(kafka_bootstrap, case, has("AssignmentIssued"))
    assert kinds(events) == ["CaseOpened", "CaseRouted", "AssignmentIssued"]
    assert events[1].unit.id == PHU_NHUAN and events[1].directory_version.startswith("hcmc-2021")
    assert events[1].rule == "category:essential_supplies->area" and events[1].reason
    handler = events[2].handler.id

    await send(kafka_bootstrap, response(case, PHU_NHUAN, "accept", handler_id=handler),
               response(case, PHU_NHUAN, "progress", "Đang liên hệ"),
               response(case, PHU_NHUAN, "resolve", "Đã trao 20 kg gạo"),
               response(case, CENTRE, "close", "Người dân xác nhận"))
    events = await case_events(kafka_bootstrap, case, has("CaseClosed"))
    assert kinds(events)[3:] == ["CaseAccepted", "ProgressReported", "CaseResolved", "CaseClosed"]
    assert events[5].answer == "Đã trao 20 kg gạo"

    await send(kafka_bootstrap, response(case, CENTRE, "reopen", "Chưa nhận đủ"))
    events = await case_events(kafka_bootstrap, case, has("AssignmentIssued", "AssignmentIssued"))
    assert kinds(events)[7:] == ["CaseReopened", "CaseRouted", "AssignmentIssued"]
    assert events[8].unit.id == PHU_NHUAN  # back to the unit that resolved it


async def test_a_decline_with_the_right_address_reroutes_and_without_goes_to_the_centre(mesh, kafka_bootstrap):
    rerouted = submit(mesh)["case_id"]
    to_centre = submit(mesh)["case_id"]
    for case in (rerouted, to_centre):
        await case_events(kafka_bootstrap, case, has("AssignmentIssued"))
    await send(kafka_bootstrap,
               response(rerouted, PHU_NHUAN, "decline", "Sai địa bàn",
                        corrected_address="88 Phan Văn Trị, Phường 10, Quận Gò Vấp"),
               response(to_centre, PHU_NHUAN, "decline", "Không thuộc thẩm quyền"))
    events = await case_events(kafka_bootstrap, rerouted, has("CaseDeclined", "AssignmentIssued", "AssignmentIssued"))
    assert kinds(events)[3:] == ["CaseDeclined", "CaseRouted", "AssignmentIssued"]
    assert events[4].unit.id == GO_VAP
    # Gò Vấp's handler is sent to the corrected address: the assignment carried the first one.
    assert events[3].corrected_address == events[5].address == "88 Phan Văn Trị, Phường 10, Quận Gò Vấp"
    wait_for(lambda: oversight_get(mesh, f"/v1/cases/{rerouted}").json().get("address") == events[5].address, 30,
             what="oversight to show the rerouted case at its corrected address")

    events = await case_events(kafka_bootstrap, to_centre, has("CaseTriaged"))
    assert kinds(events)[3:] == ["CaseDeclined", "CaseTriaged"]
    assert PHU_NHUAN in events[4].reason

    await send(kafka_bootstrap, response(to_centre, CENTRE, "route", "Tổng đài chuyển Gò Vấp", target_unit_id=GO_VAP))
    events = await case_events(kafka_bootstrap, to_centre, has("CaseTriaged", "AssignmentIssued", "AssignmentIssued"))
    assert events[5].event_type == "CaseRouted" and events[5].unit.id == GO_VAP and events[5].rule == "centre:decision"


async def test_an_address_that_could_be_two_places_goes_to_triage_with_the_reason(mesh, kafka_bootstrap):
    case = submit(mesh, address="Phường 1")["case_id"]
    events = await case_events(kafka_bootstrap, case, has("CaseTriaged"))
    assert kinds(events) == ["CaseOpened", "CaseTriaged"]
    assert "Phường 1" in events[1].reason or "phường 1" in events[1].reason


async def test_a_case_the_centre_does_not_sort_in_time_is_escalated_to_the_centre(mesh, kafka_bootstrap):
    """A case in triage had no deadline: one the centre never sent to a unit waited for good and
    nobody was told. 'traffic' must reach a unit within 3 s here: from its triage, the centre's
    duty head is told on the centre's webhook, then its leadership."""
    case = submit(mesh, address="Phường 1", category="traffic")["case_id"]
    events = await case_events(kafka_bootstrap, case, has("CaseEscalated", "CaseEscalated"), timeout=60)
    assert kinds(events) == ["CaseOpened", "CaseTriaged", "CaseEscalated", "CaseEscalated"]
    assert events[1].sort_by is not None
    assert [(e.deadline, e.level, e.unit.id) for e in events[2:]] == [("reach", "unit_head", CENTRE),
                                                                      ("reach", "centre", CENTRE)]

    def told_the_centre():
        deliveries = oversight_get(mesh, f"/v1/cases/{case}/timeline").json()["deliveries"]
        return [d for d in deliveries if d["template"] == "triage_escalated" and d["outcome"] == "sent"]

    told = wait_for(lambda: len(told_the_centre()) == 2 and told_the_centre(), timeout=60,
                    what="both escalations sent to the centre")
    assert {(d["recipient"], d["channel"]) for d in told} == {("unit", "webhook")}


@pytest.fixture
def second_router(mesh):
    """Another router process on the same store and consumer group, as a city would run two."""
    port = mesh.ports["router"] + 10
    log = open(mesh.log_dir / "router-2.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "services.router", "serve"], cwd=mesh.env["PYTHONPATH"],
                            env={**mesh.env, "ROUTER_PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)  # a killed pytest leaves no router on its port
    deadline = time.monotonic() + 60
    while not _healthy(port):
        assert time.monotonic() < deadline and proc.poll() is None, "the second router did not start"
        time.sleep(0.3)
    yield proc
    proc.terminate()
    proc.wait(30)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def test_a_missed_deadline_climbs_once_per_step_even_with_two_routers(mesh, kafka_bootstrap, second_router):
    cases = [submit(mesh, address="88 Phan Văn Trị, Phường 10, Quận Gò Vấp", category="traffic")["case_id"]
             for _ in range(4)]
    for case in cases:
        events = await case_events(kafka_bootstrap, case, has("CaseEscalated", "CaseEscalated", "CaseEscalated"),
                                   timeout=60)
        await asyncio.sleep(3)  # a second timer firing the same step would show by now
        events = await case_events(kafka_bootstrap, case, has("CaseEscalated"), timeout=30, complete=True)
        steps = [(e.deadline, e.level) for e in events if e.event_type == "CaseEscalated"]
        assert [s for s in steps if s[0] == "reach"] == [("reach", "unit_head"), ("reach", "centre")]
        assert len(steps) == len(set(steps)), f"a deadline step escalated twice: {steps}"
        # The last step names the centre: "centre informed" reached only the unit's own channels.
        assert {e.unit.id for e in events if e.event_type == "CaseEscalated" and e.level == "centre"} == {CENTRE}

    def told_the_centre():
        deliveries = oversight_get(mesh, f"/v1/cases/{cases[0]}/timeline").json()["deliveries"]
        return [d for d in deliveries if d["template"] == "centre_escalated" and d["outcome"] == "sent"]

    told = wait_for(told_the_centre, timeout=60, what="the centre told at the chain's last step")
    assert {(d["recipient"], d["channel"]) for d in told} == {("unit", "webhook")}


async def test_a_second_report_of_the_same_trouble_is_linked_not_opened_again(mesh, kafka_bootstrap):
    phone = f"0987{random.randrange(10**6):06d}"
    first = submit(mesh, phone=phone)
    await case_events(kafka_bootstrap, first["case_id"], has("AssignmentIssued"))
    second = submit(mesh, phone=phone, address="45 Le Van Sy, P13, Phu Nhuan, HCM",
                    description="Thêm: cháu bé bị sốt, cần thuốc hạ sốt.")
    events = await case_events(kafka_bootstrap, second["case_id"], has("CaseMarkedDuplicate"))
    assert kinds(events) == ["CaseOpened", "CaseMarkedDuplicate"]
    assert str(events[1].original_case_id) == first["case_id"]
    original = await case_events(kafka_bootstrap, first["case_id"], has("DuplicateLinked"))
    assert original[-1].duplicate_tracking_code == second["tracking_code"]
    # What the second report added reaches the unit that holds the case, not only the audit trail.
    assert original[-1].description == "Thêm: cháu bé bị sốt, cần thuốc hạ sốt."

    def told_the_unit():
        deliveries = oversight_get(mesh, f"/v1/cases/{first['case_id']}/timeline").json()["deliveries"]
        return [d for d in deliveries if d["template"] == "duplicate_report" and d["outcome"] == "sent"]

    told = wait_for(told_the_unit, timeout=60, what="the linked report sent to the unit")
    assert ("unit", "webhook") in {(d["recipient"], d["channel"]) for d in told}


async def test_repeat_reports_sent_together_open_one_case_even_with_two_routers(mesh, kafka_bootstrap, second_router):
    # Each router knows its own new cases at once and the other's only once its relay has recorded
    # them: two reports of one trouble sent together must still meet in one router.
    phones = [f"0978{random.randrange(10**6):06d}" for _ in range(6)]
    pairs = await asyncio.gather(*(asyncio.gather(
        asyncio.to_thread(submit, mesh, phone=phone),
        asyncio.to_thread(submit, mesh, phone=phone, address="45 Le Van Sy, P13, Phu Nhuan, HCM")) for phone in phones))
    settled = lambda events: {"CaseRouted", "CaseMarkedDuplicate"} & set(kinds(events))  # noqa: E731
    for one, other in pairs:
        first, second = [await case_events(kafka_bootstrap, r["case_id"], settled, timeout=60) for r in (one, other)]
        marked = [events for events in (first, second) if "CaseMarkedDuplicate" in kinds(events)]
        assert len(marked) == 1, f"{one['tracking_code']} and {other['tracking_code']}: {kinds(first)}, {kinds(second)}"
        original = one if marked[0] is second else other
        assert str(marked[0][-1].original_case_id) == original["case_id"]


async def test_only_the_unit_holding_a_case_may_answer_and_a_repeat_counts_once(mesh, kafka_bootstrap):
    case = submit(mesh)["case_id"]
    await case_events(kafka_bootstrap, case, has("AssignmentIssued"))
    dlq = AIOKafkaConsumer(topics.dlq(topics.UNIT_RESPONSES), bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest", group_id=f"test-{uuid.uuid4()}")
    await dlq.start()
    try:
        intruder = response(case, GO_VAP, "resolve", "không phải của tôi")
        accept = response(case, PHU_NHUAN, "accept")
        await send(kafka_bootstrap, intruder, accept, accept)  # the accept is delivered twice
        events = await case_events(kafka_bootstrap, case, has("CaseAccepted"))
        refused = None
        while refused is None:
            batch = await dlq.getmany(timeout_ms=15_000)
            assert batch, "the intruder's response was not dead-lettered"
            refused = next((r for rs in batch.values() for r in rs if str(intruder.event_id).encode() in r.value), None)
        assert b"does not hold" in dict(refused.headers)["x-error"]
    finally:
        await dlq.stop()
    await send(kafka_bootstrap, response(case, PHU_NHUAN, "progress", "ok"))
    events = await case_events(kafka_bootstrap, case, has("ProgressReported"))
    assert kinds(events).count("CaseAccepted") == 1 and "CaseResolved" not in kinds(events)


async def test_a_units_note_is_kept_as_text_and_a_date_without_a_zone_is_vietnams(mesh, kafka_bootstrap):
    """What a district service sends is cleaned as a citizen's text is: a NUL in a note once stalled
    the notifier and oversight on its partition for good (trace context that is not W3C's is dropped,
    for the same reason), and a committed date without a zone was read as UTC by oversight, so its
    audit verification reported a tampered case."""
    case = submit(mesh)["case_id"]
    await case_events(kafka_bootstrap, case, has("AssignmentIssued"))
    await send(kafka_bootstrap, response(case, PHU_NHUAN, "accept"))
    await case_events(kafka_bootstrap, case, has("CaseAccepted"))
    # A day to come (one already past when given is refused): "2026-12-05" was, from that day on.
    day = (datetime.now(VIETNAM) + timedelta(days=10)).date()
    progress = response(case, PHU_NHUAN, "progress").model_dump(mode="json") | {
        "note": "Đã liên hệ\u0000 gia đình", "committed_date": day.isoformat(), "traceparent": "00-\u0000-not-w3c"}
    resolve = response(case, PHU_NHUAN, "resolve").model_dump(mode="json") | {"note": "Đã trao\u0000 20 kg gạo"}
    await send(kafka_bootstrap, json.dumps(progress).encode(), json.dumps(resolve).encode())

    events = await case_events(kafka_bootstrap, case, has("CaseResolved"))
    assert events[-2].note == "Đã liên hệ gia đình" and events[-1].answer == "Đã trao 20 kg gạo"
    end_of_day = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=VIETNAM)
    assert events[-2].committed_date == end_of_day  # the whole day, Vietnam's
    row = wait_for(lambda: (r := oversight_get(mesh, f"/v1/cases/{case}").json()).get("status") == "resolved" and r,
                   60, what="the resolved case in oversight")
    assert row["answer"] == "Đã trao 20 kg gạo"
    assert datetime.fromisoformat(row["committed_date"]) == end_of_day
    report = oversight_get(mesh, "/v1/audit/verify", timeout=120).json()
    assert report["ok"] and report["case_mismatch"] is None, report
