"""Delivering: each delivery is recorded before it is tried, tried with exponential backoff and
jitter, finished as sent or failed, and published on ``notify.deliveries`` so oversight shows it.

A delivery already sent is never sent again, whatever Kafka redelivers. One that failed for good
also goes to the dead-letter topic of the event that caused it, with the reason.
"""

import asyncio
import json
import logging
import random
from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from contracts import ids, topics
from contracts.events import NotificationFailed, NotificationSent
from contracts.messaging import publish_all
from services.notifier.domain import Delivery
from services.notifier.providers import Permanent, Providers, Transient
from services.notifier.store import DeliveryLog

log = logging.getLogger(__name__)
PRODUCER = "notifier"
DONE = ("sent", "failed")


class Notifier:
    def __init__(self, deliveries: DeliveryLog, providers: Providers, broker: KafkaBroker, *, max_attempts: int,
                 backoff_base: float, backoff_max: float, send_timeout: float, concurrency: int,
                 rng: random.Random | None = None):
        self.log, self.providers, self.broker = deliveries, providers, broker
        self.max_attempts, self.backoff_base, self.backoff_max = max_attempts, backoff_base, backoff_max
        self.send_timeout = send_timeout
        self.limit = asyncio.Semaphore(concurrency)
        self.rng = rng or random.Random()
        self.counts = {"sent": 0, "failed": 0, "skipped": 0}

    async def deliver(self, deliveries: Sequence[Delivery], source_topic: str) -> None:
        """Deliver a batch; returns when every outcome is recorded and published."""
        if not deliveries:
            return
        states = await self.log.claim(deliveries)
        todo = [d for d in deliveries if states[d.delivery_id]["status"] not in DONE]
        self.counts["skipped"] += len(deliveries) - len(todo)
        results = await asyncio.gather(*(self._one(d, states[d.delivery_id]["attempts"]) for d in todo))
        outcome = {d.delivery_id: r for d, r in zip(todo, results, strict=True)}
        for d in deliveries:
            state = states[d.delivery_id]
            if d.delivery_id not in outcome and state["status"] in DONE and not state["published"]:
                # Finished before a crash but never announced: announce it now.
                outcome[d.delivery_id] = (state["status"], state["attempts"], state["last_error"], state["permanent"])
        await self._announce([d for d in deliveries if d.delivery_id in outcome], outcome, source_topic)

    async def _one(self, delivery: Delivery, attempts: int) -> tuple[str, int, str | None, bool]:
        async with self.limit:
            while True:
                attempts += 1
                await self.log.attempt(delivery.delivery_id)
                try:
                    provider = self.providers.get(delivery.channel)
                    await asyncio.wait_for(provider.send(delivery), self.send_timeout)
                except Permanent as error:
                    await self.log.finish(delivery.delivery_id, "failed", str(error), permanent=True)
                    return "failed", attempts, str(error), True
                except (Transient, TimeoutError) as error:
                    reason = str(error) or type(error).__name__
                    if attempts >= self.max_attempts:
                        await self.log.finish(delivery.delivery_id, "failed", reason)
                        return "failed", attempts, reason, False
                    await asyncio.sleep(self._backoff(attempts))
                    continue
                await self.log.finish(delivery.delivery_id, "sent")
                return "sent", attempts, None, False

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter, so retries from many deliveries do not march together."""
        return self.rng.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempts - 1)))

    async def _announce(self, deliveries: Sequence[Delivery], outcome: dict, source_topic: str) -> None:
        items, dead = [], []
        for d in deliveries:
            status, attempts, error, permanent = outcome[d.delivery_id]
            common = {"event_id": ids.event_id("delivery-outcome", d.delivery_id), "correlation_id": d.correlation_id,
                      "causation_id": d.cause_event_id, "producer": PRODUCER, "traceparent": d.traceparent,
                      "delivery_id": d.delivery_id, "case_id": d.case_id, "cause_event_id": d.cause_event_id,
                      "recipient": d.recipient, "channel": d.channel, "attempts": attempts}
            if status == "sent":
                event = NotificationSent(**common)
            else:
                event = NotificationFailed(**common, error=error or "unknown", permanent=bool(permanent))
                dead.append((d, error))
            self.counts[status] += 1
            items.append((topics.NOTIFY_DELIVERIES, str(d.case_id).encode(), event.model_dump_json().encode()))
        futures = [await self.broker.publish(
            json.dumps(d.payload).encode(), topic=topics.dlq(source_topic),
            key=str(d.case_id).encode(), no_confirm=True,
            headers={"x-error": (error or "")[:2000], "x-error-type": "DeliveryFailed", "x-source-topic": source_topic,
                     "x-delivery-id": str(d.delivery_id), "x-channel": d.channel}) for d, error in dead]
        await publish_all(self.broker, items)
        await asyncio.gather(*futures)
        await self.log.mark_published([d.delivery_id for d in deliveries])
