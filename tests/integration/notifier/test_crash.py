"""One message per event per recipient, even when the notifier is killed in the middle of sending.

The notifier runs as a real process; the stand-in takes its time to answer, so when the process is
SIGKILLed some messages are answered, some accepted but not yet answered, and some not yet sent.
After a restart on the same database and consumer group, every message arrives, the ones caught in
flight arrive again under the same ``Idempotency-Key`` — which a receiver that keeps its keys drops —
and nothing else arrives twice.
"""

import threading

import pytest

from contracts.events import Citizen
from tests.integration.notifier.harness import as_router, publish
from tests.support.mesh import eventually
from tests.unit.notifier.factories import Story

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

STORIES = 16


async def test_killed_mid_send_and_restarted_each_recipient_gets_each_message_once(
        kafka_bootstrap, start_notifier, stand_in, outcomes):
    slow = threading.Event()
    slow.set()
    stand_in.answer("/", lambda request, nth: (200, {"ok": True}, 1.0 if slow.is_set() else 0.0))
    # Four at a time per channel: at the kill some are done, some in flight and some still waiting.
    notifier = start_notifier(NOTIFIER_CONCURRENCY="4")
    stories = [Story(citizen=Citizen(phone=f"+842810230{i:02d}")) for i in range(STORIES)]
    cases = {s.case_id for s in stories}
    outcomes.cases.update(str(c) for c in cases)
    events = []
    for story in stories:
        events += as_router(story.opened(), story.assigned())  # an SMS to the citizen, a webhook to the unit
    await publish(kafka_bootstrap, events)

    await eventually(lambda: sum(stand_in.arrivals("/", cases).values()) >= STORIES, 30, "half the messages sent")
    notifier.kill()
    caught = set(stand_in.arrivals("/", cases))
    assert 0 < len(caught) < 2 * STORIES, "killed in the middle of sending"
    slow.clear()

    start_notifier(NOTIFIER_CONCURRENCY="4")
    await outcomes.until(lambda seen: len({v["delivery_id"] for v, _ in seen}) == 2 * STORIES, 60,
                         "every delivery's outcome")
    await outcomes.quiet_for(1.0)

    sms, webhooks = stand_in.arrivals("/sms", cases), stand_in.arrivals("/units/", cases)
    for story in stories:
        assert len(stand_in.arrivals("/sms", [story.case_id])) == 1, "one SMS key per event per citizen"
        assert len(stand_in.arrivals("/units/", [story.case_id])) == 1, "one webhook key per event per unit"
    arrivals = sms + webhooks
    resent = {key for key, n in arrivals.items() if n > 1}
    assert resent, "some messages were in flight at the kill and were sent again"
    assert resent <= caught, "only messages caught in flight are sent again"
    assert max(arrivals.values()) == 2

    announced = {v["delivery_id"]: v for v, _ in outcomes.seen}
    assert set(announced) == set(arrivals)
    assert {v["event_type"] for v in announced.values()} == {"NotificationSent"}
    assert all(announced[key]["attempts"] == 2 for key in resent), "the resend is counted as a second try"
    by_delivery = {}
    for v, _ in outcomes.seen:
        by_delivery.setdefault(v["delivery_id"], set()).add(v["event_id"])
    assert all(len(ids) == 1 for ids in by_delivery.values()), "an outcome announced twice keeps its event id"
