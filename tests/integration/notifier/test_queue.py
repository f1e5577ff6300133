"""The notifier's queue of deliveries on the real PostgreSQL: a claimed delivery is one notifier's
until its lease ends, only the claim that made a try may finish it, a citizen's later message
waits for the earlier one, deliveries a notifier of an older version left "sending" are tried, and
notifiers starting together on an empty database all start; a status it does not know is refused."""

import asyncio
import uuid

import asyncpg
import pytest

from contracts.postgres import create_pool
from services.notifier.domain import Delivery
from services.notifier.store import DeliveryLog
from tests.support.databases import drop_database, fresh_database

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


async def test_a_status_the_queue_does_not_know_is_refused(log):
    kept = delivery(uuid.uuid4())
    await log.add([kept])
    # Neither claimed (pending) nor announced (sent, failed): such a delivery would be lost unseen.
    with pytest.raises(asyncpg.CheckViolationError):
        await log.pool.execute("UPDATE deliveries SET status = 'delivered' WHERE delivery_id = $1", kept.delivery_id)
    assert await log.backlog() == {"pending_sms": 1, "unannounced": 0}
