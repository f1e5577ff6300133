"""Intake's use case: accept a request once, only once Kafka holds it, and not from a flood.

Every channel ends here. The order matters: a retry of an accepted request is answered from the
receipts before anything else (it costs the sender nothing), then the sender's rate limit is
counted, then RequestReceived is published and the answer waits for Kafka's acknowledgement; a
publish that fails gives the count back. The tracking code given, published and answered is the
one the receipt holds, which is the request's first code unless another request already held it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

import asyncpg
from faststream.kafka import KafkaBroker
from opentelemetry import trace

from contracts import ids, telemetry, topics
from contracts.events import RequestReceived
from contracts.messaging import start_when_reachable
from contracts.postgres import DATABASE_DOWN
from services.intake.domain import Problem, fingerprint, fingerprint_of_old, receipt, too_many
from services.intake.settings import IntakeSettings
from services.intake.store import Attachments, Limit, RateLimits, Receipts, open_pool

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """Kafka or PostgreSQL did not answer in time: the caller must retry (503 with Retry-After)."""


@contextlib.contextmanager
def database_answers() -> Iterator[None]:
    """Turn a database outage into :class:`Unavailable` so the caller gets 503, not 500."""
    try:
        yield
    except DATABASE_DOWN as error:
        log.warning("PostgreSQL unavailable: %s", type(error).__name__)
        raise Unavailable("PostgreSQL unavailable") from error


def recorded(request: RequestReceived, tracking_code: str | None) -> RequestReceived:
    """``request`` with the tracking code its receipt holds: built, a request has only a stand-in."""
    if tracking_code is None or tracking_code == request.tracking_code:
        return request
    return request.model_copy(update={"tracking_code": tracking_code})


class Intake:
    def __init__(self, broker: KafkaBroker, settings: IntakeSettings):
        self.broker = broker
        self.settings = settings
        self.kafka_ready = False
        self.publish_failing_since: float | None = None  # time.time() of the first of the failures in a row
        self.pool: asyncpg.Pool | None = None
        self._receipts: Receipts | None = None
        self.report_key = settings.required_tracking_code_key()  # main refused to start without it

    @property
    def connected(self) -> bool:
        return self.kafka_ready and self.pool is not None

    async def connect_forever(self) -> None:
        """Connect to Kafka, retrying; intake answers 503 meanwhile instead of refusing to start."""
        await start_when_reachable(self.broker.connect)
        self.kafka_ready = True

    async def open_database_forever(self) -> None:
        async def open_() -> None:
            pool = await open_pool(self.settings.dsn(), self.settings.pg_pool_size,
                                   self.settings.pg_command_timeout_seconds)
            # A claim is held while a form's files are kept and while Kafka is asked (each at most
            # the publish time-out): past both, and a margin, it was left by a crash.
            self._receipts = Receipts(pool, self.settings.publish_timeout_seconds * 3,
                                      self.settings.required_tracking_code_key())
            self.pool = pool

        await start_when_reachable(open_, "PostgreSQL")

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise Unavailable("PostgreSQL not connected")
        return self.pool

    @property
    def receipts(self) -> Receipts:
        if self._receipts is None:
            raise Unavailable("PostgreSQL not connected")
        return self._receipts

    @property
    def rate_limits(self) -> RateLimits:
        return RateLimits(self._pool())

    @property
    def attachments(self) -> Attachments:
        return Attachments(self._pool())

    async def submit(self, request: RequestReceived, sender: str | None, sender_field: str = "phone",
                     before_publish: Callable[[], Awaitable[None]] | None = None) -> dict[str, str]:
        """Accept ``request`` once; ``sender`` is its rate-limit key (None: already limited upstream).
        ``before_publish`` (the form's files kept) runs once the request is let in, before Kafka has it."""
        if not self.connected:
            raise Unavailable("not connected yet")
        limit = None if sender is None else Limit(sender, self.settings.sender_limit, self.settings.sender_window_seconds)
        with database_answers():
            claim = await self.receipts.claim(request.request_id, request.channel, fingerprint(request), limit,
                                              old_fingerprint=fingerprint_of_old(request))
            if claim.wait is not None:
                raise too_many(sender_field, claim.wait)
            if claim.state == "accepted":
                return receipt(recorded(request, claim.tracking_code))
            if claim.state == "conflict":
                raise Problem("channel_key", "Khóa chống gửi trùng này đã được dùng cho một phản ánh khác",
                              "This idempotency key was already used for a different request", status=422)
            if claim.state == "in_progress":
                raise Problem("channel_key", "Phản ánh này đang được xử lý, vui lòng thử lại sau giây lát",
                              "This request is being accepted right now; retry in a moment", status=409,
                              headers={"Retry-After": "1"})
        request = recorded(request, claim.tracking_code)
        try:
            if before_publish is not None:
                with database_answers():
                    try:  # within the claim's time, as the publish is: a slow pool is a 503, not a 409 later
                        await asyncio.wait_for(before_publish(), self.settings.publish_timeout_seconds)
                    except TimeoutError as error:
                        raise Unavailable("PostgreSQL did not keep the files in time") from error
            await self.publish(request)
        except Unavailable:
            with contextlib.suppress(*DATABASE_DOWN):
                await self.receipts.release(request.request_id, limit, claim)
            raise
        try:
            await self.receipts.accept(request.request_id)
        except DATABASE_DOWN as error:
            # Kafka holds it, so it is accepted; the pending claim lets a retry republish the same event.
            log.warning("accepted %s but could not record it: %s", request.request_id, type(error).__name__)
        return receipt(request)

    async def publish(self, request: RequestReceived) -> None:
        """Publish RequestReceived and wait for the broker's acknowledgement (acks=all)."""
        if not self.kafka_ready:
            raise Unavailable("Kafka not connected")
        with trace.get_tracer(__name__).start_as_current_span("intake.submit", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("mesh.case_id", str(request.case_id))
            span.set_attribute("mesh.channel", request.channel)
            request = request.model_copy(update=telemetry.current_trace_context())
            try:
                await asyncio.wait_for(
                    self.broker.publish(request.model_dump_json().encode(), topic=topics.INTAKE_REQUESTS,
                                        key=ids.report_key(request.citizen.phone, request.case_id, self.report_key)),
                    self.settings.publish_timeout_seconds,
                )
            except Exception as error:
                self.publish_failing_since = self.publish_failing_since or time.time()
                if isinstance(error, TimeoutError):
                    raise Unavailable("Kafka did not acknowledge in time") from error
                log.warning("publish failed: %s", type(error).__name__)
                raise Unavailable(type(error).__name__) from error
            self.publish_failing_since = None

    async def kafka_answers_now(self, timeout: float = 0.5) -> bool:
        """Whether the Kafka cluster answers now, within ``timeout``."""
        try:
            return await self.broker.ping(timeout)
        except Exception:  # noqa: BLE001 - any failure to answer is an answer
            return False

    async def database_answers_now(self, timeout: float = 0.5) -> bool:
        """Whether PostgreSQL answers a query now, within ``timeout``."""
        if self.pool is None:
            return False
        try:  # the connection's wait counted too: a pool none of whose connections comes back is down
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), timeout)
        except (*DATABASE_DOWN, asyncpg.PostgresError):
            return False
        return True

    async def tidy_forever(self, every_seconds: float = 60.0) -> None:
        """Forget rate windows nobody can be limited by any more; any instance may do it, any time."""
        longest = max(self.settings.sender_window_seconds, self.settings.zalo_window_seconds)
        while True:
            await asyncio.sleep(every_seconds)
            if self.pool is not None:
                with contextlib.suppress(*DATABASE_DOWN):
                    await self.rate_limits.forget_before(longest * 2)
