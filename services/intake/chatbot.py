"""The Zalo chatbot "1022 TPHCM": verified webhook events in, dialogue steps, replies out.

The webhook only records an event (after its signature, age, replay and rate checks) and wakes a
background task, so Zalo gets its answer at once whatever the dialogue or the OA API do. The task
waits a moment for events sent together to be recorded (by whichever instance took each), then
takes the user's conversation under a row lock, applies every unprocessed event in Zalo's order,
publishes the request when the citizen confirmed (waiting for Kafka), and stores the replies in
the same transaction; the replies are then sent through the OA API. Work a crash or an outage left
undone is found again by each instance's sweeper, so nothing depends on the process that received
the event staying up.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from contracts.categories import Category
from services.intake.application import Intake, Unavailable, database_answers
from services.intake.dialogue import RECEIVED, Conversation, Turn, step
from services.intake.domain import Problem, build_request, sender_key, too_many
from services.intake.oa_client import OAClient, SendFailed
from services.intake.settings import IntakeSettings
from services.intake.zalo_events import ZaloEvent
from services.intake.zalo_store import (ZaloInbox, lease_replies, lock_conversation, mark_failed, mark_sent,
                                        next_reply, pending_events, release_replies, save_step)

log = logging.getLogger(__name__)
SORRY = "Xin lỗi, tổng đài chưa thể tiếp nhận phản ánh này. Anh/chị vui lòng thử lại hoặc gọi 1022."
PRUNE_EVERY_SWEEPS = 30
# After a confirmation Kafka (or PostgreSQL) did not take, the next ones are put off at once for
# this long rather than each waiting out the publish time-out: each waits holding one of the few
# dialogue steps, and in an outage every other citizen's next question queued behind them (100
# confirmations waiting: about 100 s for each reply of a citizen who was only giving an address).
PUBLISH_QUIET_SECONDS = 10.0
# Verified events held in memory while PostgreSQL cannot take them (about 2 KB each); past this, 503.
HELD_AT_MOST = 10_000
HELD_RETRY_SECONDS = 0.5


class Chatbot:
    def __init__(self, intake: Intake, oa: OAClient | None, settings: IntakeSettings,
                 categories: dict[str, Category]):
        self.intake, self.oa, self.settings, self.categories = intake, oa, settings, categories
        self.working: dict[str, asyncio.Task] = {}  # the one task working for each user, here
        self.woken_again: set[str] = set()
        # A dialogue step holds a pooled connection (the user's row lock) while it submits, which
        # takes another: at most a quarter of the pool does that at once, so the rest is always
        # there for the submissions, every other channel and the webhook itself. Sending replies
        # holds a connection only for each short write, never while the OA API answers: it is not
        # counted, so a slow OA API never holds up the dialogue.
        self.steps = asyncio.Semaphore(max(1, settings.pg_pool_size // 4))
        self.publish_quiet_until = 0.0  # the loop's time until which a confirmation is put off unasked
        self.held: dict[str, tuple[ZaloEvent, bytes]] = {}  # verified events PostgreSQL could not take yet, in order
        self.draining: asyncio.Task | None = None  # the one task recording them

    def _inbox(self) -> ZaloInbox:
        return ZaloInbox(self.intake._pool())

    async def receive(self, event: ZaloEvent, body: bytes) -> None:
        """Take a verified event: 429 for a flooding user. An event already taken is answered as
        taken (200) and does nothing again: Zalo sends an event again when its answer came late,
        and refused, it would go on sending it; counted, it would push the citizen over the limit.

        PostgreSQL unreachable, the event is held here and answered as taken: Zalo does not send
        an event again, and every message a citizen sent in an outage (a "Đồng ý" among them) was
        lost unanswered. While any are held, later ones queue behind them, so that they are
        recorded in order, by one task, once PostgreSQL answers. A crash of this instance
        meanwhile loses them, and so does a shutdown that cannot record them in its few seconds."""
        if not self.held:
            try:
                await self._receive(event, body)
                return
            except Unavailable:
                pass
        if len(self.held) >= HELD_AT_MOST and event.key not in self.held:
            raise Unavailable("PostgreSQL unreachable, and this instance holds as many Zalo events as it may")
        self.held.setdefault(event.key, (event, body))
        if self.draining is None or self.draining.done():
            log.warning("PostgreSQL unreachable: Zalo events are held until it answers")
            self.draining = asyncio.get_running_loop().create_task(self._record_held())

    async def _record_held(self) -> None:
        """Record the held events, oldest first, as soon as PostgreSQL takes them, and wake their
        dialogues; not counted against the citizens' limits: they were answered as taken."""
        while self.held:
            key, (event, body) = next(iter(self.held.items()))
            try:
                with database_answers():
                    inbox = self._inbox()
                    if not await inbox.seen(event.key):
                        await inbox.record(event.key, event.user_id, event.event_name, event.sent_at_ms, body)
            except Exception as error:  # noqa: BLE001 - still down (Unavailable), or a blip: tried again
                if not isinstance(error, Unavailable):
                    log.warning("a held Zalo event not recorded yet: %s", type(error).__name__)
                await asyncio.sleep(HELD_RETRY_SECONDS)
                continue
            del self.held[key]
            self.wake(event.user_id)
        log.info("every Zalo event held through the outage is recorded")

    async def _receive(self, event: ZaloEvent, body: bytes) -> None:
        with database_answers():
            inbox = self._inbox()
            if await inbox.seen(event.key):
                return
            # Counted before it is kept: kept first and dropped again when refused, a copy answered
            # 200 meanwhile was lost with it, or the dialogue had already taken it.
            limit, window = self.settings.zalo_message_limit, self.settings.zalo_window_seconds
            wait = await self.intake.rate_limits.hit(sender_key("zalo", event.user_id), limit, window)
            if wait is not None:
                raise too_many("sender.id", wait)
            if not await inbox.record(event.key, event.user_id, event.event_name, event.sent_at_ms, body):
                return  # a copy that arrived together with it, kept first (both were counted)
        self.wake(event.user_id)

    def wake(self, user_id: str) -> asyncio.Task:
        """Run the user's dialogue soon, after the webhook has answered; the task doing it.

        One task per user at a time: a message that comes while it works has it go round once more.
        A task per message once waited on the user's row lock holding a pooled connection, and a
        burst of messages as the citizen confirmed took the whole pool: the step holding the lock
        could not get the connection it submits with, and every channel of intake hung.
        """
        task = self.working.get(user_id)
        if task is not None and not task.done():
            self.woken_again.add(user_id)
            return task
        task = asyncio.get_running_loop().create_task(self._work_while_woken(user_id))
        self.working[user_id] = task
        return task

    async def _work_while_woken(self, user_id: str) -> None:
        try:
            while True:
                self.woken_again.discard(user_id)
                await self._work(user_id)
                if user_id not in self.woken_again:
                    return
        finally:
            self.working.pop(user_id, None)

    async def _work(self, user_id: str) -> None:
        # Zalo may send a user's events together, and behind a load balancer each to another
        # instance: the one recorded a moment later by another is waited for, so it is read in order.
        await asyncio.sleep(self.settings.zalo_settle_seconds)
        try:
            async with self.steps:
                await self.converse(user_id)
        except Exception as error:  # noqa: BLE001 - the events stay unprocessed; the sweeper retries
            log.warning("Zalo dialogue step postponed: %s", _what_failed(error))
        try:
            await self.deliver(user_id)
        except Exception as error:  # noqa: BLE001 - the replies stay unsent; the sweeper retries
            log.warning("Zalo replies postponed: %s", type(error).__name__)

    async def converse(self, user_id: str) -> None:
        """Apply the user's unprocessed events, in order, in one transaction with their replies."""
        ttl = self.settings.zalo_conversation_ttl_hours * 3600
        async with self.intake._pool().acquire() as conn, conn.transaction():
            state = await lock_conversation(conn, user_id)
            events = await pending_events(conn, user_id)
            if not events:
                return
            conversation, replies = Conversation.loads(state), []
            for row in events:
                try:
                    # Read as the webhook read it (json.loads takes the lone surrogates Zalo may send).
                    incoming = ZaloEvent.model_validate(json.loads(row["body"])).incoming()
                except (ValueError, RecursionError) as error:  # a verified event we cannot read must not block the user
                    # By a digest of its key: a key without a msg_id holds the citizen's Zalo id.
                    log.error("Zalo event %s skipped, unreadable: %s",
                              hashlib.sha256(row["event_key"].encode()).hexdigest()[:16], _what_failed(error))
                    continue
                if incoming is None:
                    continue
                try:
                    turn = step(conversation, incoming, self.categories, ttl)
                except (ValidationError, ValueError) as error:
                    log.error("Zalo dialogue could not take an event: %s", _what_failed(error))
                    turn = Turn(Conversation(updated_at=incoming.at), [SORRY])
                if turn.confirmed is not None:
                    turn.replies.append(await self._submit(user_id, turn, incoming.at))
                conversation, replies = turn.conversation, replies + turn.replies
            await save_step(conn, user_id, conversation.dumps(), [r["event_key"] for r in events], replies)

    async def _submit(self, user_id: str, turn: Turn, at: float) -> str:
        """Publish the confirmed request (Unavailable propagates: the step is retried later)."""
        loop = asyncio.get_running_loop()
        if loop.time() < self.publish_quiet_until:
            raise Unavailable("a confirmation was not taken moments ago: put off without asking")
        try:
            request = build_request("zalo", turn.channel_key, turn.confirmed, self.categories,
                                    citizen_extra={"zalo_user_id": user_id},
                                    received_at=datetime.fromtimestamp(at, UTC))
            receipt = await self.intake.submit(request, sender=None)
        except Unavailable:
            self.publish_quiet_until = loop.time() + PUBLISH_QUIET_SECONDS
            raise
        except Problem as problem:
            if problem.status == 409:  # being published by another instance right now
                raise
            return f"{SORRY} ({problem.vi})"
        return RECEIVED.format(code=receipt["tracking_code"])

    async def deliver(self, user_id: str) -> None:
        """Send the user's due replies in order; a reply that fails holds back the ones after it.

        One sender per user across instances, by a lease, and no pooled connection is held while
        the OA API answers: a hanging OA API once held a connection per user being answered, until
        the pool every channel uses was gone. Each reply is recorded as sent as soon as the OA API
        took it, on its own: a shutdown or a database blip later in the round once undid that, and
        the citizen got the replies again."""
        if self.oa is None:
            return
        pool, holder = self.intake._pool(), uuid.uuid4()
        send_timeout = self.settings.zalo_send_timeout_seconds
        lease = 2 * send_timeout + 5  # a send, and the writes around it
        if not await lease_replies(pool, user_id, holder, lease):
            return  # another task or instance is sending them, in order
        try:
            while (reply := await next_reply(pool, user_id, holder, lease)) is not None:
                try:
                    # Within its lease, whatever the OA API does: httpx's time-out is per read, and
                    # a reply sent past the lease could be sent again by whoever takes it next.
                    await asyncio.wait_for(self.oa.send_text(user_id, reply["text"]), send_timeout)
                except (SendFailed, TimeoutError) as error:
                    failure = error if isinstance(error, SendFailed) else \
                        SendFailed("the OA API did not answer in time", retry=True)
                    if await self._failed(reply, failure):
                        return
                    continue
                await mark_sent(pool, reply["reply_id"])
        finally:
            with contextlib.suppress(Exception):  # else the lease runs out on its own
                await release_replies(pool, user_id, holder)

    async def _failed(self, reply, failure: SendFailed) -> bool:
        """Count a failed try of ``reply``; True when it is to be tried again later (it holds back
        the replies after it), False when it is given up."""
        ttl = self.settings.zalo_conversation_ttl_hours * 3600
        wait = retry_in(reply["attempts"], reply["age"], failure.retry, ttl)
        await mark_failed(self.intake._pool(), reply["reply_id"], str(failure), wait)
        log.warning("Zalo reply not sent (%s)%s", failure, "; will retry" if wait is not None else "; giving up")
        return wait is not None

    async def sweep_forever(self) -> None:
        """Pick up dialogue steps and replies that no live task is doing (crash, outage, restart)."""
        every = self.settings.zalo_sweep_seconds
        sweeps = 0
        while True:
            await asyncio.sleep(every)
            if self.intake.pool is None:
                continue
            sweeps += 1
            try:
                for user_id in await self._inbox().users_with_work(older_than_seconds=every):
                    self.wake(user_id)  # not awaited: a user whose OA sends hang holds up no other
                if sweeps % PRUNE_EVERY_SWEEPS == 0:
                    await self._inbox().prune(self.settings.zalo_max_event_age_seconds * 2,
                                              self.settings.zalo_conversation_ttl_hours * 3600 * 2)
            except Exception as error:  # noqa: BLE001 - a sweep that fails is simply the next one's work
                log.warning("Zalo sweep failed: %s", type(error).__name__)

    async def drain(self, timeout: float = 5.0) -> None:
        """Let running dialogue tasks finish at shutdown, and held events be recorded; whatever is
        cut off, the next start sweeps (held events, not recorded, are lost: said in the log)."""
        running = [*self.working.values(), *([self.draining] if self.draining else [])]
        if running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*running, return_exceptions=True), timeout)
        if self.held:
            log.error("%d Zalo events held through a database outage are lost with this shutdown", len(self.held))


def retry_in(attempts: int, age_seconds: float, retry: bool, give_up_after: float) -> float | None:
    """Seconds until a failed reply's next try (1, 2, 4 … 256, then every 300), or None to give up:
    at once on a refusal no later try can change, else once the reply is as old as a conversation
    may be. Eight tries once gave up after two minutes of an OA API or token outage, and every reply
    the citizen was waiting for (the questions, the tracking code) was dropped one after another."""
    wait = min(300.0, 2.0 ** attempts)
    return wait if retry and age_seconds + wait < give_up_after else None


def _what_failed(error: Exception) -> str:
    """An error as the log may keep it: its kind and, for a validation error, the fields that failed,
    never the values (a citizen's words, phone, address, a file's name)."""
    if isinstance(error, ValidationError):
        return f"{type(error).__name__} in " + ", ".join(sorted({".".join(map(str, e["loc"])) or "?"
                                                                  for e in error.errors()}))
    return type(error).__name__
