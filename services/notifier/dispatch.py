"""Sending: one dispatcher per channel leases due deliveries, sends them concurrently, and finishes
each as sent, failed, or put back for a later try with exponential backoff and jitter.

A try that is waiting for its next attempt holds nothing: it sits in the table with its time, so
a slow or failing provider never holds up the Kafka consumer, nor the other channels. A sender
that dies mid-send leaves its lease to run out; then the delivery is sent again under the same
key, which the receiver can recognise. A citizen's message refused for good on one channel, or
refused on every try with none of them unanswered, goes on by the citizen's next route
(:func:`~services.notifier.domain.follow_on`).
"""

import asyncio
import logging
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from contracts.runtime import wait_a_while
from services.notifier.domain import Delivery, Policy, follow_on
from services.notifier.providers import NotConfigured, Permanent, Providers, Transient, Unanswered
from services.notifier.settings import SEND_GRACE
from services.notifier.store import DeliveryLog

log = logging.getLogger(__name__)

T = TypeVar("T")
# Failed tries in a row on a channel at which its dispatcher says so in the log, then every 10,000th.
LOUD_AT = (10, 100, 1_000, 10_000)
_ADDRESSES = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+|\+?\d[\d .-]{6,}\d")


def redact(error: str, target: str) -> str:
    """An error without the recipient's address or number in it: errors are published and shown.
    Nor with a NUL (a receiver's binary answer), which PostgreSQL's text cannot store."""
    error = error.replace("\x00", "")
    if target:
        error = error.replace(target, "…")
    return _ADDRESSES.sub("…", error)[:500]


@dataclass(frozen=True)
class Retry:
    """How often and how soon: ``max_attempts`` tries in all, the n-th wait around ``base * 2**(n-1)``."""

    max_attempts: int
    base: float
    cap: float

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Equal jitter: half the exponential step for sure, half at random, so retries of many
        deliveries spread out but each still backs off."""
        step = min(self.cap, self.base * 2 ** (attempts - 1))
        return step / 2 + rng.uniform(0, step / 2)


class Dispatcher:
    """Sends one channel's deliveries, at most ``concurrency`` at a time, and at most a quarter of
    them to one receiver: a district's service that hangs holds its own share of the slots while
    the other districts' assignments go on."""

    def __init__(self, deliveries: DeliveryLog, providers: Providers, channel: str, *, policy: Policy, retry: Retry,
                 send_timeout: float, lease_seconds: float, concurrency: int, poll_seconds: float,
                 finished: asyncio.Event, counts: dict[str, int], rng: random.Random | None = None,
                 overdue_seconds: float = 0.0):
        self.log, self.providers, self.channel, self.policy, self.retry = deliveries, providers, channel, policy, retry
        self.send_timeout, self.lease_seconds, self.concurrency = send_timeout, lease_seconds, concurrency
        self.poll_seconds, self.finished, self.counts = poll_seconds, finished, counts
        self.rng = rng or random.Random()
        # Only deliveries due this long ago are taken: for a channel this notifier has no provider
        # for, what another notifier that has one leaves waiting that long.
        self.overdue_seconds = overdue_seconds
        self.wake = asyncio.Event()
        self.in_flight: set[asyncio.Task] = set()
        self.per_receiver = max(1, concurrency // 4)
        self.to: Counter[str] = Counter()  # sends in flight, by receiver (``Delivery.target``)
        # Tries in a row that failed, whatever the receiver: a gateway misconfigured or down shows
        # here (and in /metrics) within minutes, though each of its messages is tried for an hour.
        self.failed_in_a_row = 0

    async def run(self) -> None:
        while True:
            self.wake.clear()
            free = self.concurrency - len(self.in_flight)
            if free > 0:
                # The leases end no sooner than this: they are taken after it.
                lease_ends = asyncio.get_running_loop().time() + self.lease_seconds
                busy = [target for target, sending in self.to.items() if sending >= self.per_receiver]
                try:
                    token, claimed = await self.log.claim(self.channel, free, self.lease_seconds, busy,
                                                          self.overdue_seconds)
                except Exception:  # noqa: BLE001 - the database may come back; the work waits in it
                    log.exception("could not claim %s deliveries; trying again shortly", self.channel)
                    await asyncio.sleep(1.0)
                    continue
                over = []
                for delivery, attempts in claimed:
                    if self.to[delivery.target] >= self.per_receiver:
                        over.append(delivery.delivery_id)  # one claim took more than the receiver's share
                        continue
                    self.to[delivery.target] += 1
                    task = asyncio.create_task(self._send(delivery, attempts, token, lease_ends))
                    self.in_flight.add(task)
                    task.add_done_callback(self._done)
                if over:
                    await self._give_back(token, over)
                    self.wake.set()  # other receivers' work may be waiting behind what was given back
            # Woken by new work, by half the slots coming free, or by the clock for retries falling due.
            await wait_a_while(self.wake, self.poll_seconds)

    async def _give_back(self, claim, delivery_ids: list) -> None:
        """Let what waits its receiver's turn be claimed again at once, its try not counted; if the
        database will not, its lease runs out first."""
        try:
            await self.log.give_back(claim, delivery_ids)
        except Exception:  # noqa: BLE001 - they are claimed again once their lease ends
            log.warning("could not give back %d %s deliveries; they wait for their lease to end",
                        len(delivery_ids), self.channel, exc_info=True)

    def _done(self, task: asyncio.Task) -> None:
        self.in_flight.discard(task)
        # Claim again once half the slots are free: one claim per batch, not one per message.
        if len(self.in_flight) <= self.concurrency // 2:
            self.wake.set()

    async def stop(self) -> None:
        """Let the sends in flight finish (each is bounded by the send time-out)."""
        if self.in_flight:
            await asyncio.wait(self.in_flight, timeout=self.send_timeout + SEND_GRACE + 1)

    async def _send(self, delivery: Delivery, attempts: int, claim, lease_ends: float) -> None:
        try:
            await self._try(delivery, attempts, claim, lease_ends)
        finally:
            self.to[delivery.target] -= 1
            if not self.to[delivery.target]:
                del self.to[delivery.target]

    async def _try(self, delivery: Delivery, attempts: int, claim, lease_ends: float) -> None:
        delivery_id = delivery.delivery_id
        try:
            if attempts > self.retry.max_attempts:
                # Its last try was cut short by a stopped sender: nothing is known of it but that.
                await self._record(lease_ends, self.log.failed, delivery_id, claim,
                                   f"gave up after {attempts - 1} tries; the last was cut short", permanent=False)
                self._count("failed")
                return
            try:
                await asyncio.wait_for(self.providers.get(self.channel).send(delivery), self.send_timeout + SEND_GRACE)
            except Permanent as error:
                self._failed_try(reason := redact(str(error), delivery.target))
                # A channel not configured here refused nothing: its message goes on by another route
                # only if no earlier try (another notifier's) may have got through.
                await self._give_up(delivery, claim, lease_ends, reason, permanent=True,
                                    untried=isinstance(error, NotConfigured))
            except (Transient, TimeoutError) as error:
                self._failed_try(reason := redact(str(error) or type(error).__name__, delivery.target))
                unanswered = isinstance(error, (Unanswered, TimeoutError))
                if attempts < self.retry.max_attempts:
                    await self._record(lease_ends, self.log.retry_later, delivery_id, claim,
                                       self.retry.delay(attempts, self.rng), reason, maybe_taken=unanswered)
                    self.counts["retried"] += 1
                elif unanswered:
                    # The last try may have reached the citizen: no second message by another route.
                    await self._record(lease_ends, self.log.failed, delivery_id, claim,
                                       f"{reason} (after {attempts} tries; the last unanswered)", permanent=False)
                    self._count("failed")
                else:
                    await self._give_up(delivery, claim, lease_ends, f"{reason} (after {attempts} tries)",
                                        permanent=False)
            else:
                self._took_try()
                await self._record(lease_ends, self.log.sent, delivery_id, claim)
                self._count("sent")
        except Exception:  # noqa: BLE001 - its lease runs out and it is tried again under the same key
            log.exception("delivery %s on %s: outcome not recorded; it will be tried again", delivery_id, self.channel)

    async def _give_up(self, delivery: Delivery, claim, lease_ends: float, reason: str, permanent: bool,
                       untried: bool = False) -> None:
        """Fail a delivery its channel refused (``untried``: that could not try it); a citizen's goes
        on by their next route, if they left one."""
        if delivery.recipient == "citizen":
            def next_route(failed: Delivery, record, why: str | None) -> Delivery | None:
                return follow_on(failed, record, self.policy, reason, why)

            went_on = await self._record(lease_ends, self.log.fail_over, delivery, claim, reason, next_route,
                                         permanent=permanent, untried=untried)
            self.counts["failed"] += max(0, len(went_on) - 1)  # the later messages moved with it
        else:
            await self._record(lease_ends, self.log.failed, delivery.delivery_id, claim, reason, permanent=permanent)
        self._count("failed")

    async def _record(self, lease_ends: float, write: Callable[..., Awaitable[T]], *args, **kwargs) -> T:
        """Write a try's outcome; while the database is away (a restart, a fail-over) keep trying,
        backing off, until the lease ends: an outcome not written is a message sent again then."""
        pause, loop = 0.1, asyncio.get_running_loop()
        while True:
            try:
                return await write(*args, **kwargs)
            except Exception:  # noqa: BLE001 - tried again while the lease lasts, then raised
                if loop.time() + pause >= lease_ends:
                    raise
                if pause == 0.1:
                    log.warning("could not record a %s delivery's outcome; trying again until its lease ends",
                                self.channel, exc_info=True)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _failed_try(self, reason: str) -> None:
        self.failed_in_a_row += 1
        if self.failed_in_a_row in LOUD_AT or self.failed_in_a_row % LOUD_AT[-1] == 0:
            # Only the kind of failure ("HTTP 503", "Zalo error -32", "TimeoutError"): the rest is the
            # receiver's words, which may echo the message.
            log.warning("%s: the last %d tries all failed, the last with %s", self.channel, self.failed_in_a_row,
                        reason.split(":", 1)[0][:80])

    def _took_try(self) -> None:
        if self.failed_in_a_row >= LOUD_AT[0]:
            log.warning("%s: a try went through again, after %d that failed", self.channel, self.failed_in_a_row)
        self.failed_in_a_row = 0

    def _count(self, outcome: str) -> None:
        self.counts[outcome] += 1
        self.finished.set()
