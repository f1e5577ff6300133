"""The notifier's queue of deliveries on the real PostgreSQL: a claimed delivery is one notifier's
until its lease ends, only the claim that made a try may finish it, a citizen's later message
waits for the earlier one, an assignment read after its case left the unit is not given, a
citizen's message refused for good goes on once and in its place (and, refused on every try,
takes the later ones waiting behind it along),
an outcome is written through a blip of PostgreSQL, deliveries a notifier of an older version left
"sending" are tried, and notifiers starting together on an empty database all start, as does one
while another holds the deliveries locked; a status it does not know is refused."""

import asyncio
import dataclasses
import random
import uuid
from datetime import timedelta

import asyncpg
import orjson
import pytest

from contracts.postgres import create_pool
from contracts.events import UnitRef
from services.notifier.application import Notifier
from services.notifier.dispatch import Dispatcher, Retry
from services.notifier.domain import Delivery, Policy, follow_on
from services.notifier.providers import Providers, Transient
from services.notifier.store import DeliveryLog
from tests.support.databases import drop_database, fresh_database
from tests.support.mesh import eventually
from tests.unit.notifier.factories import Story

pytestmark = pytest.mark.postgres


@pytest.fixture
async def log(pg_admin_dsn):
    name = await fresh_database(pg_admin_dsn, "it_queue")
    pool = await create_pool(pg_admin_dsn.rsplit("/", 1)[0] + "/" + name, min_size=1, max_size=4)
    made = DeliveryLog(pool)
    await made.create()
    yield made
    await pool.close()
    await drop_database(pg_admin_dsn, name)


POLICY = Policy(frozenset({"webhook", "sms", "email", "push", "zalo"}), "http://district/{unit_id}", timedelta(days=7))


def delivery(case_id: uuid.UUID, recipient: str = "citizen", channel: str = "sms") -> Delivery:
    return Delivery(uuid.uuid4(), case_id, uuid.uuid4(), uuid.uuid4(), recipient, channel, "+84903123456",
                    "case_received", "1022", "Đã nhận phản ánh", {"event_type": "CaseOpened"}, "case.events.v1")


async def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_ends(log):
    first = delivery(uuid.uuid4())
    await log.add([first])
    claim, taken = await log.claim("sms", 10, lease_seconds=0.5)
    assert [(d.delivery_id, attempts) for d, attempts in taken] == [(first.delivery_id, 1)]
    assert (await log.claim("sms", 10, lease_seconds=0.5))[1] == []  # another notifier, while the lease runs
    assert await log.backlog() == {"pending_sms": 1, "unannounced": 0}

    await asyncio.sleep(0.6)  # the first notifier died mid-send: its lease runs out
    second, again = await log.claim("sms", 10, lease_seconds=30)
    assert [(d.delivery_id, attempts) for d, attempts in again] == [(first.delivery_id, 2)]

    await log.sent(first.delivery_id, claim)  # the dead notifier's try finishes nothing
    assert (await log.backlog())["pending_sms"] == 1
    await log.sent(first.delivery_id, second)
    assert await log.backlog() == {"unannounced": 1}


async def test_a_citizens_next_message_waits_until_the_one_before_is_finished(log):
    case_id = uuid.uuid4()
    received, routed = delivery(case_id), delivery(case_id)
    await log.add([received, routed])
    claim, taken = await log.claim("sms", 10, lease_seconds=30)
    assert [d.delivery_id for d, _ in taken] == [received.delivery_id]
    assert (await log.claim("sms", 10, lease_seconds=30))[1] == []  # "routed" must not overtake "received"
    await log.sent(received.delivery_id, claim)
    assert [d.delivery_id for d, _ in (await log.claim("sms", 10, lease_seconds=30))[1]] == [routed.delivery_id]


async def test_a_units_messages_about_a_case_go_out_in_the_cases_order_whatever_order_they_came_in(log):
    """The unit's service was down and its assignment waited for a retry; meanwhile the centre gave
    the case to another unit, and the notice that it was taken away was planned, with no wait. The
    unit heard that the case was withdrawn, then, minutes later, was given it: it worked a case it
    did not hold, and every answer it sent was refused. The two come from two topics, so the notice
    may be planned first: the case's version orders them."""
    case_id, webhook = uuid.uuid4(), "https://district.example/1022/webhook"

    def to_unit(template: str, version: int) -> Delivery:
        return dataclasses.replace(delivery(case_id, "unit", "webhook"), target=webhook, template=template,
                                   payload={"event_type": template, "version": version})

    assigned, withdrawn, escalated = to_unit("assignment", 3), to_unit("withdrawn", 6), to_unit("handler_escalated", 5)
    elsewhere = dataclasses.replace(to_unit("assignment", 7), target="https://other.example/1022/webhook")
    await log.add([withdrawn, elsewhere, escalated, assigned])
    claim, taken = await log.claim("webhook", 10, lease_seconds=30)
    assert {d.delivery_id for d, _ in taken} == {assigned.delivery_id, elsewhere.delivery_id}
    await log.retry_later(assigned.delivery_id, claim, 0.0, "503 Service Unavailable")
    await log.sent(elsewhere.delivery_id, claim)
    claim, taken = await log.claim("webhook", 10, lease_seconds=30)
    assert [d.delivery_id for d, _ in taken] == [assigned.delivery_id], "nothing overtakes the assignment"
    for later in (escalated, withdrawn):
        await log.sent(taken[0][0].delivery_id, claim)
        claim, taken = await log.claim("webhook", 10, lease_seconds=30)
        assert [d.delivery_id for d, _ in taken] == [later.delivery_id]


async def test_an_assignment_read_after_the_case_left_its_unit_is_not_given_to_the_unit(log):
    """The reader of ``unit.assignments`` lagged minutes behind the one of ``case.events``: the unit
    was told the case had been withdrawn, and then given it, for a case that another unit held."""
    notifier = Notifier(log, POLICY)
    other = UnitRef(id="hcm-q-go-vap", name="UBND Quận Gò Vấp", admin_code="764")
    moved = Story()
    first = [moved.opened(), moved.routed(), moved.assigned()]
    then = [moved.routed(other), moved.assigned(unit=other)]
    await notifier.take_case_events(first + then)
    await notifier.take_assignments([first[-1], then[-1]])

    async def to_units(case_id: uuid.UUID) -> list[tuple[str, str]]:
        return [(r["template"], r["unit_id"]) for r in await log.pool.fetch(
            "SELECT template, unit_id FROM deliveries WHERE case_id = $1 AND recipient <> 'citizen'"
            " ORDER BY (payload->>'version')::bigint", case_id)]

    assert await to_units(moved.case_id) == [("withdrawn", "hcm-q-phu-nhuan"), ("assignment", "hcm-q-go-vap")]
    assert notifier.counts["superseded"] == 1
    # Read before the case events that take the case away, the assignment is given, and goes first.
    early = Story()
    first = [early.opened(), early.routed(), early.assigned()]
    await notifier.take_case_events(first)
    await notifier.take_assignments([first[-1]])
    await notifier.take_case_events([early.routed(other)])
    assert await to_units(early.case_id) == [("assignment", "hcm-q-phu-nhuan"), ("withdrawn", "hcm-q-phu-nhuan")]
    # The case events not read yet at all: the assignment is given.
    unread = Story()
    assigned = [unread.opened(), unread.routed(), unread.assigned()][-1]
    await notifier.take_assignments([assigned])
    assert await to_units(unread.case_id) == [("assignment", "hcm-q-phu-nhuan")]


async def test_a_citizens_message_refused_for_good_goes_on_once_in_its_place(log):
    case_id = uuid.uuid4()
    citizen = {"app_user_id": "app-9", "phone": "+84903123456"}
    await log.pool.execute("INSERT INTO case_records (case_id, version, record) VALUES ($1, 1, $2::jsonb)", case_id,
                           orjson.dumps({"version": 1, "channel": "app", "citizen": citizen}).decode())
    received, routed = delivery(case_id, channel="push"), delivery(case_id, channel="push")
    await log.add([received, routed])
    claim, taken = await log.claim("push", 10, lease_seconds=30)
    assert [d for d, _ in taken] == [received]

    def by_next_route(failed, record, why):
        return follow_on(failed, record, POLICY, "HTTP 404: unknown device", why)
    assert await log.fail_over(received, uuid.uuid4(), "HTTP 404", by_next_route) == [], "a claim that ran out"
    [sms] = await log.fail_over(received, claim, "HTTP 404", by_next_route)
    assert (sms.channel, sms.target, sms.text) == ("sms", "+84903123456", received.text)
    # Written again (its answer was lost), or by a second notifier: still one follow-on.
    assert await log.fail_over(received, claim, "HTTP 404", by_next_route) == []
    assert (await log.claim("push", 10, lease_seconds=30))[1] == [], "routed must not overtake the follow-on"
    sms_claim, again = await log.claim("sms", 10, lease_seconds=30)
    assert again == [(sms, 1)]
    await log.sent(sms.delivery_id, sms_claim)
    assert [d for d, _ in (await log.claim("push", 10, lease_seconds=30))[1]] == [routed]

    saved = orjson.loads(await log.pool.fetchval("SELECT record FROM case_records WHERE case_id = $1", case_id))
    assert saved.get("refused", {}) == {}, "refused for good, by this device: nothing to remember of the channel"
    told = []

    async def publish(outcomes):
        told.extend((o.delivery.delivery_id, o.status, o.error, o.permanent) for o in outcomes)
    await log.announce(10, publish)
    assert told == [(received.delivery_id, "failed", "HTTP 404; sent by SMS instead", True),
                    (sms.delivery_id, "sent", None, False)]


class Taker:
    """A provider that takes every message; the first it takes, PostgreSQL goes away for a while."""

    def __init__(self, blip):
        self.blip, self.taken = blip, []

    async def send(self, delivery: Delivery) -> None:
        self.taken.append(delivery.delivery_id)
        if len(self.taken) == 1:
            await self.blip()


async def test_a_sent_message_is_recorded_through_a_blip_of_postgresql_and_not_sent_again(log, pg_admin_dsn):
    """PostgreSQL restarts just after a provider took a message: the outcome is written once it is
    back, and the message is not sent a second time when the lease runs out."""
    name = await log.pool.fetchval("SELECT current_database()")
    admin = await asyncpg.connect(pg_admin_dsn)

    async def back_in(seconds: float) -> None:
        await asyncio.sleep(seconds)
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    async def blip() -> None:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        returning.append(asyncio.create_task(back_in(2.5)))

    returning: list[asyncio.Task] = []
    taker = Taker(blip)
    dispatcher = Dispatcher(log, Providers({"sms": taker}), "sms", policy=POLICY, retry=Retry(4, 0.1, 0.5),
                            send_timeout=1, lease_seconds=8, concurrency=4, poll_seconds=0.1,
                            finished=asyncio.Event(), counts=dict.fromkeys(("sent", "failed", "retried"), 0),
                            rng=random.Random(7))
    one = delivery(uuid.uuid4())
    await log.add([one])
    running = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.sleep(11)  # the blip, then past the end of the lease
    finally:
        running.cancel()
        await asyncio.gather(running, *returning, return_exceptions=True)
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert taker.taken == [one.delivery_id], "sent once"
    assert await log.backlog() == {"unannounced": 1}



@pytest.mark.parametrize("permanent", [False, True], ids=["refused on every try", "refused for good"])
async def test_a_message_some_try_of_which_may_have_got_through_does_not_go_on_by_another_route(log, permanent):
    """Refused on its last try, but an earlier try's sender died mid-send (its lease ran out), or an
    earlier try went unanswered: the citizen may have it, so it fails without a second message.
    One refused on every try goes on by e-mail. A receiver's refusal for good ("no such number")
    says the earlier try did not reach the citizen either: all go on by e-mail, or none would."""
    citizen = {"phone": "+84903123456", "email": "binh@example.vn"}
    cases = [uuid.uuid4() for _ in range(3)]
    for case_id in cases:
        await log.pool.execute("INSERT INTO case_records (case_id, version, record) VALUES ($1, 1, $2::jsonb)", case_id,
                               orjson.dumps({"version": 1, "channel": "web", "citizen": citizen}).decode())
    after_a_crash, after_no_answer, refused = (delivery(case_id) for case_id in cases)
    await log.add([after_a_crash])
    _, taken = await log.claim("sms", 10, lease_seconds=0.2)  # its sender dies: nothing is recorded
    assert [d for d, _ in taken] == [after_a_crash]
    await asyncio.sleep(0.5)
    await log.add([after_no_answer, refused])
    claim, taken = await log.claim("sms", 10, lease_seconds=30)
    assert len(taken) == 3
    await log.retry_later(after_no_answer.delivery_id, claim, 0.0, "TimeoutError", maybe_taken=True)
    for other in (after_a_crash, refused):
        await log.retry_later(other.delivery_id, claim, 0.0, "HTTP 503")
    claim, taken = await log.claim("sms", 10, lease_seconds=30)
    assert len(taken) == 3
    went_on = {}
    for failed in (after_a_crash, after_no_answer, refused):
        def by_next_route(failed, record, why):
            return follow_on(failed, record, POLICY, "HTTP 503", why)
        went_on[failed.delivery_id] = await log.fail_over(failed, claim, "HTTP 503 (after 3 tries)", by_next_route,
                                                          permanent=permanent)
    if permanent:
        assert all([d.channel for d in moved] == ["email"] for moved in went_on.values()), went_on
        return
    assert went_on[after_a_crash.delivery_id] == went_on[after_no_answer.delivery_id] == []
    assert [d.channel for d in went_on[refused.delivery_id]] == ["email"]
    errors = dict(await log.pool.fetch("SELECT delivery_id, last_error FROM deliveries WHERE channel = 'sms'"))
    for failed in (after_a_crash, after_no_answer):
        assert errors[failed.delivery_id].endswith("an earlier try went unanswered, so not sent by another route")
    assert errors[refused.delivery_id].endswith("sent by e-mail instead")

async def test_a_notifier_without_the_channel_sends_on_by_another_route_only_what_no_try_may_have_reached(log):
    """A notifier without SMS configured takes over SMS messages (another's lease ran out, or a
    rolling change dropped its settings). That is no refusal by the receiver: a message whose
    earlier try went unanswered may be on the citizen's phone, and went by e-mail too."""
    citizen = {"phone": "+84903123456", "email": "binh@example.vn"}
    cases = [uuid.uuid4() for _ in range(2)]
    for case_id in cases:
        await log.pool.execute("INSERT INTO case_records (case_id, version, record) VALUES ($1, 1, $2::jsonb)", case_id,
                               orjson.dumps({"version": 1, "channel": "web", "citizen": citizen}).decode())
    unanswered, untried = (delivery(case_id) for case_id in cases)
    await log.add([unanswered])
    claim, _ = await log.claim("sms", 10, lease_seconds=30)
    await log.retry_later(unanswered.delivery_id, claim, 0.0, "TimeoutError", maybe_taken=True)
    await log.add([untried])
    dispatcher = Dispatcher(log, Providers({}), "sms", policy=POLICY, retry=Retry(4, 0.1, 0.5),
                            send_timeout=1, lease_seconds=8, concurrency=4, poll_seconds=0.1,
                            finished=asyncio.Event(), counts=dict.fromkeys(("sent", "failed", "retried"), 0),
                            rng=random.Random(7))
    running = asyncio.create_task(dispatcher.run())
    try:
        await eventually(lambda: dispatcher.counts["failed"] >= 2, 30, "both SMS messages to end")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    mails = {r["case_id"] for r in await log.pool.fetch("SELECT case_id FROM deliveries WHERE channel = 'email'")}
    assert mails == {untried.case_id}, "only the message no try may have reached goes by e-mail"
    # Nothing refused it: the citizen's SMS is not passed over for an hour by the notifiers that have it.
    records = [orjson.loads(r["record"]) for r in await log.pool.fetch(
        "SELECT record FROM case_records WHERE case_id = ANY($1)", cases)]
    assert records and not any(r.get("refused") for r in records)
    error = await log.pool.fetchval("SELECT last_error FROM deliveries WHERE delivery_id = $1", unanswered.delivery_id)
    assert "not configured here" in error and error.endswith("so not sent by another route")


async def test_a_citizens_later_messages_waiting_on_a_channel_that_refused_every_try_go_on_with_it(log):
    """SMS refused "received" on every try: "routed" and "resolved", waiting behind it for that
    number, go on by e-mail with it, untried and in order, instead of each spending its own hour of
    tries. One a try may have reached stays, and one leased; so do another citizen's, and the unit's."""
    case_id, other_case = uuid.uuid4(), uuid.uuid4()
    citizen = {"phone": "+84903123456", "email": "an@example.vn"}
    for c in (case_id, other_case):
        await log.pool.execute("INSERT INTO case_records (case_id, version, record) VALUES ($1, 1, $2::jsonb)", c,
                               orjson.dumps({"version": 1, "channel": "web", "citizen": citizen}).decode())
    received, routed, resolved, reached, leased = (delivery(case_id) for _ in range(5))
    others, unit = delivery(other_case), delivery(case_id, "unit", "sms")
    await log.add([received, routed, resolved, reached, leased, others, unit])
    await log.pool.execute("UPDATE deliveries SET maybe_taken = true WHERE delivery_id = $1", reached.delivery_id)
    # Leased by a notifier of an older version, which did not keep the order: its try is unknown.
    await log.pool.execute("UPDATE deliveries SET lease_until = now() + interval '1 hour' WHERE delivery_id = $1",
                           leased.delivery_id)
    claim, taken = await log.claim("sms", 10, lease_seconds=30)
    assert {d.delivery_id for d, _ in taken} == {received.delivery_id, others.delivery_id, unit.delivery_id}
    await log.retry_later(others.delivery_id, claim, 60.0, "HTTP 503")
    await log.sent(unit.delivery_id, claim)

    def by_next_route(failed, record, why):
        return follow_on(failed, record, POLICY, "HTTP 503 (after 25 tries)", why)
    went_on = await log.fail_over(received, claim, "HTTP 503 (after 25 tries)", by_next_route, permanent=False)
    assert [(d.channel, d.target, d.text) for d in went_on] == [("email", "an@example.vn", d.text)
                                                                for d in (received, routed, resolved)]
    assert "refused it (HTTP 503 (after 25 tries))" in went_on[0].note
    assert all(d.note.startswith("not tried by SMS: it refused an earlier message to this citizen on every try")
               for d in went_on[1:])
    rows = {r["delivery_id"]: r for r in await log.pool.fetch("SELECT * FROM deliveries WHERE channel = 'sms'")}
    assert [(rows[d.delivery_id]["status"], rows[d.delivery_id]["attempts"]) for d in (routed, resolved)] == [
        ("failed", 0), ("failed", 0)]
    assert rows[routed.delivery_id]["last_error"].endswith("; sent by e-mail instead")
    assert {rows[d.delivery_id]["status"] for d in (reached, leased, others)} == {"pending"}
    # The citizen's messages planned in the next hour pass SMS over (domain.citizen_route).
    record = orjson.loads(await log.pool.fetchval("SELECT record FROM case_records WHERE case_id = $1", case_id))
    assert list(record["refused"]) == ["sms"] and record["version"] == 1

    order = []
    for _ in range(3):  # one at a time, in the citizen's order
        mail_claim, taken = await log.claim("email", 10, lease_seconds=30)
        assert len(taken) == 1
        order.append(taken[0][0])
        await log.sent(taken[0][0].delivery_id, mail_claim)
    assert order == went_on
    # The message a try may have reached is the SMS's again, after the three it waited behind.
    assert [d for d, _ in (await log.claim("sms", 10, lease_seconds=30))[1]] == [reached]


class Gateway:
    """A provider that refuses every message until it is mended."""

    def __init__(self):
        self.mended, self.taken = False, []

    async def send(self, delivery: Delivery) -> None:
        if not self.mended:
            raise Transient("HTTP 503: gateway down for +84903123456")
        self.taken.append(delivery.delivery_id)


async def test_a_gateway_failing_every_try_is_told_within_its_first_tries_and_again_when_mended(log, caplog):
    """Each message is tried for an hour, but the channel's tries failing in a row show at once:
    counted for /metrics, and said in the log at the tenth, without the number; the count is back
    to zero, and the log says so, when a try goes through."""
    gateway = Gateway()
    dispatcher = Dispatcher(log, Providers({"webhook": gateway}), "webhook", policy=POLICY,
                            retry=Retry(25, 60.0, 300.0), send_timeout=1, lease_seconds=8, concurrency=16,
                            poll_seconds=0.1, finished=asyncio.Event(),
                            counts=dict.fromkeys(("sent", "failed", "retried"), 0), rng=random.Random(7))
    await log.add([delivery(uuid.uuid4(), "unit", "webhook") for _ in range(12)])
    running = asyncio.create_task(dispatcher.run())
    try:
        await eventually(lambda: dispatcher.failed_in_a_row == 12, 10, "every first try failed")
        assert [r.getMessage() for r in caplog.records if "tries all failed" in r.getMessage()] == [
            "webhook: the last 10 tries all failed, the last with HTTP 503"]
        gateway.mended = True
        late = delivery(uuid.uuid4(), "unit", "webhook")
        await log.add([late])
        dispatcher.wake.set()
        await eventually(lambda: gateway.taken == [late.delivery_id], 10, "the new message sent")
        assert dispatcher.failed_in_a_row == 0
        assert any(r.getMessage() == "webhook: a try went through again, after 12 that failed"
                   for r in caplog.records)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_webhook_is_claimed_with_the_unit_whose_key_signs_it(log):
    """A retried webhook is signed as its first try was, with its unit's key; one an older notifier
    planned names no unit, and is signed with the notifier's key as it would have been."""
    to_unit = dataclasses.replace(delivery(uuid.uuid4(), "unit", "webhook"), unit_id="hcmc-2021/26734")
    older = delivery(uuid.uuid4(), "unit", "webhook")
    await log.add([to_unit, older])
    _, taken = await log.claim("webhook", 10, lease_seconds=30)
    assert {d.delivery_id: d.unit_id for d, _ in taken} == {to_unit.delivery_id: "hcmc-2021/26734",
                                                              older.delivery_id: None}


async def test_a_delivery_an_older_notifier_left_sending_is_tried_once_its_lease_ended(log):
    left = delivery(uuid.uuid4(), "unit", "webhook")
    await log.add([left])
    await log.pool.execute("UPDATE deliveries SET status = 'sending', attempts = 1, claim = $2,"
                           " lease_until = now() - interval '1 second' WHERE delivery_id = $1",
                           left.delivery_id, uuid.uuid4())
    claim, taken = await log.claim("webhook", 10, lease_seconds=30)
    assert [(d.delivery_id, attempts) for d, attempts in taken] == [(left.delivery_id, 2)]
    await log.sent(left.delivery_id, claim)
    assert await log.backlog() == {"unannounced": 1}


async def test_notifiers_starting_together_on_an_empty_database_all_start(pg_admin_dsn):
    name = await fresh_database(pg_admin_dsn, "it_queue_start")
    pools = [await create_pool(pg_admin_dsn.rsplit("/", 1)[0] + "/" + name, min_size=1, max_size=1) for _ in range(3)]
    try:
        # Three instances of a new deployment make their tables at the same moment.
        await asyncio.gather(*(DeliveryLog(pool).create() for pool in pools))
        await DeliveryLog(pools[0]).add([delivery(uuid.uuid4())])
        assert await DeliveryLog(pools[1]).backlog() == {"pending_sms": 1, "unannounced": 0}
    finally:
        for pool in pools:
            await pool.close()
        await drop_database(pg_admin_dsn, name)


async def test_a_notifier_starts_while_another_reads_the_deliveries_at_length(log):
    """Each start added its columns with ALTER TABLE ... IF NOT EXISTS, which takes the table's
    exclusive lock before it looks: behind a long reader (a backup, an announcer waiting on Kafka
    with its rows locked) the starting notifier waited, and every other one's claims and outcomes
    queued behind it."""
    await log.add([delivery(uuid.uuid4())])
    async with log.pool.acquire() as reader, reader.transaction():
        await reader.fetch("SELECT delivery_id FROM deliveries FOR UPDATE")  # held while a send is announced
        await asyncio.wait_for(DeliveryLog(log.pool).create(), timeout=10)
        assert await asyncio.wait_for(log.backlog(), timeout=10) == {"pending_sms": 1, "unannounced": 0}


async def test_a_status_the_queue_does_not_know_is_refused(log):
    kept = delivery(uuid.uuid4())
    await log.add([kept])
    # Neither claimed (pending) nor announced (sent, failed): such a delivery would be lost unseen.
    with pytest.raises(asyncpg.CheckViolationError):
        await log.pool.execute("UPDATE deliveries SET status = 'delivered' WHERE delivery_id = $1", kept.delivery_id)
    assert await log.backlog() == {"pending_sms": 1, "unannounced": 0}
