"""The notifier's use cases: take events in (record the deliveries they call for) and announce
how deliveries ended (``NotificationSent``/``NotificationFailed`` on ``notify.deliveries``, and a
failed one also on the dead-letter topic of the event that caused it, with the reason).

What "exactly once, in effect" rests on:

- Planning is idempotent. A case event is applied to its case record once, by version, in the
  same transaction as the deliveries it calls for; an assignment's deliveries are keyed by the
  event; known keys are left alone. Kafka may redeliver anything: no second delivery is made.
- Sending is at least once, with one key. A delivery is finished only after its provider
  answered. If the notifier dies after the provider accepted a message and before that was
  recorded, the message is sent again when the lease runs out — with the same
  ``Idempotency-Key`` (``Message-ID`` by e-mail). A receiver that keeps the keys it has seen
  (the district services, a gateway that supports it) drops the repeat; one that does not (Zalo's
  API, a plain SMTP server) may show it twice. That happens on a crash, and on a send that went out
  and got no answer (a time-out, a dropped connection, a 5xx): it is tried again on its own
  channel, never by another route. A 2xx is a delivery even if the rest of its answer breaks off.
- Announcing is at least once, with one event id per outcome: oversight keeps the first.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from contracts import ids, topics
from contracts.envelope import utcnow
from contracts.events import NotificationFailed, NotificationSent
from contracts.messaging import send_all
from contracts.runtime import wait_a_while
from services.notifier.domain import Policy, for_assignment, plan, taken_away
from services.notifier.store import DeliveryLog, Outcome

log = logging.getLogger(__name__)
PRODUCER = "notifier"


class Notifier:
    """Takes events from Kafka and records the deliveries they call for; dispatchers send them."""

    def __init__(self, deliveries: DeliveryLog, policy: Policy, *, on_new_work: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = utcnow):
        self.log, self.policy, self.on_new_work, self.clock = deliveries, policy, on_new_work, clock
        self.counts = {"planned": 0, "superseded": 0, "sent": 0, "failed": 0, "retried": 0}

    async def take_case_events(self, events: Sequence[Any]) -> None:
        """Apply case events, in their order, to the cases' records; store what they call for."""
        if not events:
            return
        now = self.clock()

        def apply(records: dict) -> list:
            return [d for e in events for d in plan(records[e.case_id], e, self.policy, now)]

        self._planned(await self.log.take([e.case_id for e in events], apply))

    async def take_assignments(self, assignments: Sequence[Any]) -> None:
        """Store the deliveries that tell each unit and its handler of a new assignment, unless the
        case has been taken from the unit since: ``unit.assignments`` is read apart from
        ``case.events``, and a reader that lags minutes behind would give the unit, after the notice
        that the case was withdrawn, the case it no longer holds."""
        if not assignments:
            return

        def apply(records: dict) -> list:
            out = []
            for a in assignments:
                deliveries = for_assignment(a, self.policy)
                if taken_away(records.get(a.case_id), a):
                    self.counts["superseded"] += len(deliveries)
                    log.info("assignment %s of case %s not sent: the case left unit %s since",
                             a.assignment_id, a.case_id, a.unit.id)
                    continue
                out += deliveries
            return out

        self._planned(await self.log.add_reading([a.case_id for a in assignments], apply))

    def _planned(self, new: int) -> None:
        self.counts["planned"] += new
        if new:
            self.on_new_work()


class Announcer:
    """Publishes finished deliveries, in batches, until none is left unannounced."""

    def __init__(self, deliveries: DeliveryLog, producer: AIOKafkaProducer, *, group_id: str, batch: int,
                 poll_seconds: float):
        self.log, self.producer, self.batch, self.poll_seconds = deliveries, producer, batch, poll_seconds
        # Which notifier deployment (its consumer group) announced it: several may read one broker.
        self.origin = {"x-notifier-group": group_id}
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            self.wake.clear()
            try:
                while await self.log.announce(self.batch, self.publish) == self.batch:
                    pass
            except Exception:  # noqa: BLE001 - Kafka or the database may come back; outcomes wait in the table
                log.exception("could not announce delivery outcomes; trying again shortly")
                await asyncio.sleep(1.0)
                continue
            await wait_a_while(self.wake, self.poll_seconds * 4)

    async def publish(self, outcomes: Sequence[Outcome]) -> None:
        """Every outcome on notify.deliveries; each failure also dead-lettered with its reason."""
        items, headers = [], []
        for o in outcomes:
            d = o.delivery
            common = {"event_id": ids.event_id("delivery-outcome", d.delivery_id), "correlation_id": d.correlation_id,
                      "causation_id": d.cause_event_id, "producer": PRODUCER, "traceparent": d.traceparent,
                      "delivery_id": d.delivery_id, "case_id": d.case_id, "cause_event_id": d.cause_event_id,
                      "recipient": d.recipient, "channel": d.channel, "attempts": o.attempts,
                      "template": d.template, "note": d.note}
            if o.status == "sent":
                event = NotificationSent(**common)
            else:
                event = NotificationFailed(**common, error=o.error or "unknown", permanent=o.permanent)
                items.append((topics.dlq(d.source_topic), str(d.case_id).encode(), orjson.dumps(d.payload)))
                headers.append({**self.origin, "x-error": o.error or "unknown", "x-error-type": "DeliveryFailed",
                                "x-source-topic": d.source_topic, "x-delivery-id": str(d.delivery_id),
                                "x-recipient": d.recipient, "x-channel": d.channel, "x-attempts": str(o.attempts),
                                "x-permanent": str(o.permanent).lower()})
            items.append((topics.NOTIFY_DELIVERIES, str(d.case_id).encode(), event.model_dump_json().encode()))
            headers.append(self.origin)
        await send_all(self.producer, items, headers)
