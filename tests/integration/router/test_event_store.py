"""The router's event store and outbox on the real PostgreSQL and Kafka: a case rebuilt from its
events is the same case with the same decisions, and a relay that dies between publishing and
recording its position publishes again rather than losing anything."""

import asyncio
import contextlib
import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from contracts import ids, topics
from contracts.categories import load as categories
from contracts.messaging import bulk_producer, kafka_broker
from contracts.postgres import create_pool
from services.intake.domain import Submission, build_request
from services.router import application
from services.router.application import CaseDesk, Workload
from services.router.directory import load_directory
from services.router.handlers import register
from services.router.main import _open_stores
from services.router import ledger
from services.router.outbox import SCHEMA, Relay, to_contract
from services.router.routing import load_rules, route
from services.router.settings import RouterSettings
from services.router.timers import Timers
from tests.support.databases import fresh_database
from tests.support.kafka import read_to_end, response

ADDRESSES = ["45 Lê Văn Sỹ, Phường 13, Quận Phú Nhuận, TP.HCM", "88 Phan Văn Trị, Phường 10, Gò Vấp",
             "P. Thảo Điền, Q.2, Hồ Chí Minh", "Phường 1", "12 Lý Tự Trọng, P. Bến Nghé, Q.1, TPHCM"]


@pytest.fixture
async def settings(pg_admin_dsn, pg_port):
    return RouterSettings(pg_port=pg_port, pg_database=await fresh_database(pg_admin_dsn, "it_router"))


PHONES = itertools.count()


def requests(n: int):
    """``n`` new requests, each from a phone of its own: none is a second report of another."""
    out = []
    for i in range(n):
        submission = Submission(full_name="Ngô Văn Bình", phone=f"0903{next(PHONES):06d}", address=ADDRESSES[i % len(ADDRESSES)],
                                category=("essential_supplies", "vulnerable_person", "lighting")[i % 3],
                                description="Cần hỗ trợ")
        out.append(build_request("web", f"it-{uuid.uuid4()}", submission, categories()))
    return out


async def test_a_case_rebuilt_from_its_events_is_the_same_with_the_same_decisions(settings):
    directory = load_directory("hcmc-2021")
    desk = CaseDesk(directory, settings.eventsourcing_env())
    batch = requests(10)
    opened = await asyncio.to_thread(desk.receive, batch, datetime.now(UTC), Workload())
    assert len(opened) == 10
    again = await asyncio.to_thread(desk.receive, batch, datetime.now(UTC), Workload())
    assert again == []  # the same requests again open nothing

    fresh = CaseDesk(directory, settings.eventsourcing_env())  # a new process: nothing cached
    for case, request in zip(opened, batch, strict=True):
        rebuilt = await asyncio.to_thread(fresh.repository.get, case.id)
        assert rebuilt.__dict__ == case.__dict__
        decision = route(request.address, request.category, directory)
        recorded = rebuilt.decisions[-1]
        assert recorded["rule"] == (decision.rule if decision.outcome == "routed" else "triage")
        assert recorded["unit"] == (decision.unit.id if decision.outcome == "routed" else None)
        assert recorded["directory_version"] == directory.version
    desk.close()
    fresh.close()


async def _published(bootstrap: str, case_ids: set[str]) -> list:
    return [r for r in await read_to_end(bootstrap, topics.CASE_EVENTS) if r.key.decode() in case_ids]


@contextlib.asynccontextmanager
async def stored_cases(settings, kafka_bootstrap: str, n: int, at: datetime | None = None):
    """``n`` cases in the event store, opened ``at`` (now), none published yet; a producer, and a
    connection on the relay's tables."""
    desk = CaseDesk(load_directory("hcmc-2021"), settings.eventsourcing_env())
    opened = await asyncio.to_thread(desk.receive, requests(n), at or datetime.now(UTC), Workload())
    stored = await asyncio.to_thread(desk.recorder.select_notifications, start=1, limit=1000)
    producer = bulk_producer(kafka_bootstrap, client_id="it-relay")
    await producer.start()
    conn = await asyncpg.connect(settings.dsn())
    await conn.execute(SCHEMA)
    try:
        yield SimpleNamespace(desk=desk, ids={str(c.id) for c in opened}, stored=stored, producer=producer, conn=conn)
    finally:
        await conn.close()
        await producer.stop()
        desk.close()


async def test_a_relay_that_dies_before_recording_its_position_publishes_again(settings, kafka_bootstrap):
    async with stored_cases(settings, kafka_bootstrap, 6) as s:
        dying = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        await dying._publish([to_contract(s.desk.mapper.to_domain_event(n)) for n in s.stored])
        # ... and it dies here: the position was never recorded.
        assert await s.conn.fetchval("SELECT position FROM outbox_position") == 0

        successor = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        while await successor._relay_once(s.conn):
            pass
        assert await s.conn.fetchval("SELECT position FROM outbox_position") == len(s.stored)
        assert await s.conn.fetchval("SELECT count(*) FROM deadlines") > 0  # the ledger moved with it

    records = await _published(kafka_bootstrap, s.ids)
    assert len(records) == 2 * len(s.stored)  # every event twice: published again, never lost
    assert len({r.value for r in records}) == len(s.stored)  # ... and each repeat is the very same event


async def test_a_batch_whose_position_could_not_be_recorded_is_published_again(settings, kafka_bootstrap, monkeypatch):
    async def disk_full(_conn, _events, _steps):
        raise RuntimeError("could not extend file: No space left on device")

    async with stored_cases(settings, kafka_bootstrap, 4) as s:
        monkeypatch.setattr(ledger, "apply", disk_full)
        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        assert await relay._relay_once(s.conn) == len(s.stored)  # published; its record fails meanwhile
        with pytest.raises(RuntimeError):
            await relay._relay_once(s.conn)  # the relay hears of it and stops (it restarts from the stored position)
        assert await s.conn.fetchval("SELECT position FROM outbox_position") == 0
        monkeypatch.undo()

        successor = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        while await successor._relay_once(s.conn):
            pass
        assert await s.conn.fetchval("SELECT position FROM outbox_position") == len(s.stored)
    records = await _published(kafka_bootstrap, s.ids)
    assert len(records) == 2 * len(s.stored) and len({r.value for r in records}) == len(s.stored)


async def test_a_batch_mixing_new_and_redelivered_requests_opens_every_new_one(settings):
    desk = CaseDesk(load_directory("hcmc-2021"), settings.eventsourcing_env())
    old, new = requests(3), requests(4)
    await asyncio.to_thread(desk.receive, old, datetime.now(UTC), Workload())
    mixed = [old[0], new[0], old[1], new[1], new[2], old[2], new[3]]
    opened = await asyncio.to_thread(desk.receive, mixed, datetime.now(UTC), Workload())
    assert sorted(str(c.id) for c in opened) == sorted(str(r.case_id) for r in new)
    for request in new:
        case = await asyncio.to_thread(desk.repository.get, request.case_id)
        assert case.version >= 2  # opened and routed (or sent to triage), not an empty shell
    desk.close()


def same_trouble_again(first):
    """Another report from the same phone, of the same kind, at the same address: a new request."""
    return build_request("web", f"it-{uuid.uuid4()}", Submission(
        full_name="Ngô Văn Bình", phone=first.citizen.phone, address=first.address, category=first.category,
        description="Vẫn cần hỗ trợ"), categories())


@pytest.mark.parametrize("together", [True, False, "twice"],
                         ids=["one batch", "before the ledger has the first", "one batch, the first in it twice"])
async def test_a_second_report_close_behind_the_first_is_linked_not_opened_again(together, settings):
    """The router finds an open case to link a report to in the ledger, which the relay fills a
    moment after publishing. A second report in the same batch, or in the next before the relay
    had recorded the first, became a second case: two handlers on the same trouble."""
    desk = CaseDesk(load_directory("hcmc-2021"), settings.eventsourcing_env())
    first = requests(1)[0]
    again = same_trouble_again(first)
    if together == "twice":  # intake published the first again on a retry
        opened = await asyncio.to_thread(desk.receive, [first, first, again], datetime.now(UTC), Workload(), {})
    elif together:
        opened = await asyncio.to_thread(desk.receive, [first, again], datetime.now(UTC), Workload(), {})
    else:
        opened = await asyncio.to_thread(desk.receive, [first], datetime.now(UTC), Workload(), {})
        opened += await asyncio.to_thread(desk.receive, [again], datetime.now(UTC), Workload(), {})
    assert {str(c.id) for c in opened} == {str(first.case_id), str(again.case_id)}
    duplicate = await asyncio.to_thread(desk.repository.get, again.case_id)
    original = await asyncio.to_thread(desk.repository.get, first.case_id)
    assert duplicate.status == "duplicate" and original.status == "routed"
    assert original.duplicates == [str(again.request_id)]
    desk.close()


async def test_a_second_report_while_the_relay_lags_for_minutes_is_linked_until_the_ledger_has_the_first(settings):
    """The router remembered its own cases for one minute of wall clock, for the ledger to catch up:
    with the relay held up longer (Kafka refusing its sends, a slow leader), a second report from the
    same phone became a second case. It now forgets a case once the ledger has recorded it."""
    desk = CaseDesk(load_directory("hcmc-2021"), settings.eventsourcing_env())
    first, at = requests(1)[0], datetime.now(UTC)
    await asyncio.to_thread(desk.receive, [first], at, Workload(), {}, None, 0)
    again = same_trouble_again(first)
    # Ten minutes on, the relay has recorded nothing: the ledger lists no open case of this phone.
    await asyncio.to_thread(desk.receive, [again], at + timedelta(minutes=10), Workload(), {}, None, 0)
    assert (await asyncio.to_thread(desk.repository.get, again.case_id)).status == "duplicate"

    # The ledger has both now, and says the first is no longer open (resolved by its unit, say).
    recorded = await asyncio.to_thread(desk.recorder.max_notification_id)
    later = same_trouble_again(first)
    await asyncio.to_thread(desk.receive, [later], at + timedelta(minutes=11), Workload(), {}, None, recorded)
    assert (await asyncio.to_thread(desk.repository.get, later.case_id)).status == "routed"
    desk.close()


async def test_a_case_another_router_saved_first_is_remembered_for_the_reports_after_it(settings):
    """A request both routers read (a batch still in hand across a rebalance) is saved by the other
    first: this one finds it recorded and skips it, and, having read the store back before, knew
    nothing of it. A second report, before the ledger had the first, became a second case."""
    directory = load_directory("hcmc-2021")
    here, there = (CaseDesk(directory, settings.eventsourcing_env()) for _ in range(2))
    await asyncio.to_thread(here.receive, requests(1), datetime.now(UTC), Workload(), {}, None, 0)  # read back
    first = requests(1)[0]
    await asyncio.to_thread(there.receive, [first], datetime.now(UTC), Workload(), {}, None, 0)
    assert await asyncio.to_thread(here.receive, [first], datetime.now(UTC), Workload(), {}, None, 0) == []
    again = same_trouble_again(first)
    await asyncio.to_thread(here.receive, [again], datetime.now(UTC), Workload(), {}, None, 0)
    assert (await asyncio.to_thread(here.repository.get, again.case_id)).status == "duplicate"
    here.close()
    there.close()


async def test_a_read_back_that_failed_is_tried_again_at_the_next_batch(settings, monkeypatch):
    """A router marked the store as read back before reading it: when the read failed (PostgreSQL
    restarting), the batch came again but the read did not, and a second report of a case another
    router had just opened became a second case."""
    directory = load_directory("hcmc-2021")
    before = CaseDesk(directory, settings.eventsourcing_env())
    first = requests(1)[0]
    await asyncio.to_thread(before.receive, [first], datetime.now(UTC), Workload(), {}, None, 0)
    after = CaseDesk(directory, settings.eventsourcing_env())
    reading = after.recent.read_back
    monkeypatch.setattr(after.recent, "read_back", lambda _: (_ for _ in ()).throw(ConnectionError("restarting")))
    again = same_trouble_again(first)
    with pytest.raises(ConnectionError):
        await asyncio.to_thread(after.receive, [again], datetime.now(UTC), Workload(), {}, None, 0)
    monkeypatch.setattr(after.recent, "read_back", reading)
    await asyncio.to_thread(after.receive, [again], datetime.now(UTC), Workload(), {}, None, 0)  # read again
    assert (await asyncio.to_thread(after.repository.get, again.case_id)).status == "duplicate"
    before.close()
    after.close()


async def test_partitions_given_while_the_store_is_read_back_have_it_read_again(settings):
    """The rebalance listener asks for a read-back from the event loop while a batch, in its worker
    thread, may be reading: a case the other router opened after that read was never read back."""
    directory = load_directory("hcmc-2021")
    here, there = (CaseDesk(directory, settings.eventsourcing_env()) for _ in range(2))
    first = requests(1)[0]
    reading = here.recent.read_back

    def read_while_partitions_move(recorded):
        found = reading(recorded)
        there.receive([first], datetime.now(UTC), Workload(), {}, None, 0)  # opened there, after the read
        here.recent.read_again()  # ... and its partition given here
        return found

    here.recent.read_back = read_while_partitions_move
    await asyncio.to_thread(here.receive, requests(1), datetime.now(UTC), Workload(), {}, None, 0)
    here.recent.read_back = reading
    again = same_trouble_again(first)
    await asyncio.to_thread(here.receive, [again], datetime.now(UTC), Workload(), {}, None, 0)
    assert (await asyncio.to_thread(here.repository.get, again.case_id)).status == "duplicate"
    here.close()
    there.close()


async def test_a_requests_days_run_from_its_receipt_however_long_it_waited_for_a_router(settings):
    """Counted from the case's opening, a request received during a two-hour outage was given two
    hours more: its lateness hidden from escalation and from the published on-time rates."""
    directory = load_directory("hcmc-2021")
    desk = CaseDesk(directory, settings.eventsourcing_env())
    [request] = requests(1)
    request = request.model_copy(update={"received_at": request.received_at - timedelta(hours=2)})
    now = datetime.now(UTC)
    [case] = await asyncio.to_thread(desk.receive, [request], now, Workload())
    decision = route(request.address, request.category, directory)
    assert decision.outcome == "routed"
    assert datetime.fromisoformat(case.resolve_by) == request.received_at + decision.resolve_within
    assert datetime.fromisoformat(case.reach_by) == now + decision.reach_within, "the unit's time to take it is its own"

    # One the centre routes out of triage an hour on: its days too, from receipt.
    unclear = requests(1)[0].model_copy(update={"address": "Phường 1"})
    unclear = unclear.model_copy(update={"received_at": unclear.received_at - timedelta(hours=2)})
    [triaged] = await asyncio.to_thread(desk.receive, [unclear], now, Workload())
    assert triaged.status == "triage"
    routing = response(str(triaged.id), desk.directory.centre.id, "route", target_unit_id=case.unit["id"])
    await asyncio.to_thread(desk.answer, [routing], now + timedelta(hours=1), Workload())
    routed = await asyncio.to_thread(desk.repository.get, triaged.id)
    assert datetime.fromisoformat(routed.resolve_by) == unclear.received_at + decision.resolve_within
    desk.close()


async def test_a_router_started_while_the_relay_lags_links_a_second_report_to_a_case_opened_before(settings):
    """What a router remembers goes with it: the router started after it knew nothing of the cases
    the ledger did not have yet, and a second report of one became a second case."""
    directory = load_directory("hcmc-2021")
    before = CaseDesk(directory, settings.eventsourcing_env())
    first = requests(1)[0]
    await asyncio.to_thread(before.receive, [first], datetime.now(UTC), Workload(), {}, None, 0)
    before.close()
    after = CaseDesk(directory, settings.eventsourcing_env())  # the relay has recorded nothing yet
    again = same_trouble_again(first)
    await asyncio.to_thread(after.receive, [again], datetime.now(UTC), Workload(), {}, None, 0)
    assert (await asyncio.to_thread(after.repository.get, again.case_id)).status == "duplicate"
    after.close()


async def test_a_repeat_of_a_report_whose_case_was_rerouted_is_linked_to_it(settings):
    """A unit declined the case with the right address and it went to another district. The citizen
    reported again as before, which routes to the first district: matched against the case's
    present area only, it became a second case, for the unit that had declined it."""
    directory = load_directory("hcmc-2021")
    desk = CaseDesk(directory, settings.eventsourcing_env())
    first = requests(1)[0]  # at 45 Lê Văn Sỹ, Phú Nhuận
    [case] = await asyncio.to_thread(desk.receive, [first], datetime.now(UTC), Workload(), {}, None, 0)
    declined = response(str(case.id), case.unit["id"], "decline", "Không thuộc địa bàn",
                        corrected_address="88 Phan Văn Trị, Phường 10, Gò Vấp")
    assert await asyncio.to_thread(desk.answer, [declined], datetime.now(UTC), Workload()) == []
    rerouted = await asyncio.to_thread(desk.repository.get, case.id)
    assert rerouted.status == "routed" and rerouted.unit["id"] != case.unit["id"]
    desk.close()
    # A router that starts now reads the case back from the store (the relay has recorded nothing).
    after = CaseDesk(directory, settings.eventsourcing_env())
    again = same_trouble_again(first)
    await asyncio.to_thread(after.receive, [again], datetime.now(UTC), Workload(), {}, None, 0)
    assert (await asyncio.to_thread(after.repository.get, again.case_id)).status == "duplicate"
    assert (await asyncio.to_thread(after.repository.get, case.id)).duplicates == [str(again.request_id)]
    after.close()


async def test_a_router_given_another_routers_partitions_links_a_second_report_to_a_case_opened_there(
        settings, kafka_bootstrap):
    """Two routers share the requests' partitions, and the relay lags. One router read the store
    back only when it started: when a partition moved to it from the other (a rebalance, on a
    restart or when a router joins the group), a second report there of a case the other had just
    opened became a second case. A real rebalance on Kafka now makes it read the store back."""
    directory = load_directory("hcmc-2021")
    here, there = (CaseDesk(directory, settings.eventsourcing_env()) for _ in range(2))
    group = f"it-rebalance-{uuid.uuid4()}"
    # Both of the router's groups start at their topics' ends: it reads no other test's messages.
    await _start_at_the_end(kafka_bootstrap, topics.INTAKE_REQUESTS, group)
    await _start_at_the_end(kafka_bootstrap, topics.UNIT_RESPONSES, f"{group}-responses")
    broker = kafka_broker(kafka_bootstrap, client_id="it-rebalance")
    pool = await create_pool(settings.dsn(), min_size=1, max_size=2)
    register(broker, here, pool, group, 100, {"requests": 0, "opened": 0, "responses": 0, "refused": 0})
    await broker.start()
    try:
        consumer = next(s.consumer for s in broker.subscribers if s.group_id == group)
        everything = await _until(lambda: consumer.assignment(), "the router was given no partitions")
        # This router has been running: it read the store back at its first batch.
        await asyncio.to_thread(here.receive, requests(1), datetime.now(UTC), Workload(), {}, None, 0)
        first = requests(1)[0]
        await asyncio.to_thread(there.receive, [first], datetime.now(UTC), Workload(), {}, None, 0)
        # The other router's partitions move: a member joins, and every partition is assigned anew.
        other = AIOKafkaConsumer(topics.INTAKE_REQUESTS, bootstrap_servers=kafka_bootstrap, group_id=group,
                                 enable_auto_commit=False)
        await other.start()
        try:
            await _assigned(other)
            await _until(lambda: consumer.assignment() and consumer.assignment() != everything,
                         "the router's partitions were not assigned anew")
            await _until(lambda: not here.recent.read, "the router was not told of its new partitions", 10)
            again = same_trouble_again(first)
            await asyncio.to_thread(here.receive, [again], datetime.now(UTC), Workload(), {}, None, 0)
        finally:
            await other.stop()
        assert (await asyncio.to_thread(here.repository.get, again.case_id)).status == "duplicate"
    finally:
        await broker.stop()
        await pool.close()
        here.close()
        there.close()


async def _assigned(consumer: AIOKafkaConsumer, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not consumer.assignment():
        assert asyncio.get_running_loop().time() < deadline, "the consumer was given no partitions"
        await consumer.getmany(timeout_ms=200)


async def _until(condition, failure: str, timeout: float = 60):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (held := condition()):
        assert asyncio.get_running_loop().time() < deadline, failure
        await asyncio.sleep(0.1)
    return held


async def _start_at_the_end(bootstrap: str, topic: str, group: str) -> None:
    """Commit ``group``'s offsets at ``topic``'s end."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        await _assigned(consumer)
        partitions = consumer.assignment()
        await consumer.commit(await consumer.end_offsets(list(partitions)))
    finally:
        await consumer.stop()


async def test_a_duplicate_whose_original_changes_as_it_is_saved_is_still_recorded(settings):
    """The second report of the same trouble is saved with the open case it links to. When that case
    changes between loading and saving (here its unit accepts it, from another router), the save
    fails though the duplicate is not recorded: it was once skipped as recorded, and lost."""
    directory = load_directory("hcmc-2021")
    desk, other = (CaseDesk(directory, settings.eventsourcing_env()) for _ in range(2))
    first = requests(1)[0]
    [original] = await asyncio.to_thread(desk.receive, [first], datetime.now(UTC), Workload())
    again = same_trouble_again(first)
    reports = {(first.citizen.phone, first.category): [
        {"case_id": original.id, "area_code": route(first.address, first.category, directory).area_code}]}
    save, raced = desk.save, []

    def save_while_the_unit_accepts(*aggregates):
        if len(aggregates) == 2 and not raced:  # the duplicate and its original, saved alone
            raced.append(other.answer([response(str(original.id), original.unit["id"], "accept")],
                                      datetime.now(UTC), Workload()))
        return save(*aggregates)

    desk.save = save_while_the_unit_accepts
    # The first request again, redelivered, makes the batch's save fail and each be saved alone.
    await asyncio.to_thread(desk.receive, [first, again], datetime.now(UTC), Workload(), reports)
    assert raced == [[]], "the unit's answer was taken"
    duplicate = await asyncio.to_thread(other.repository.get, again.case_id)
    assert duplicate.status == "duplicate"
    linked = await asyncio.to_thread(other.repository.get, original.id)
    assert linked.status == "accepted" and linked.duplicates == [str(again.request_id)]
    desk.close()
    other.close()


# Cases opened this long ago have missed every deadline their rules give.
LONG_AGO = datetime.now(UTC) - timedelta(days=30)


async def relay_all(relay: Relay, conn: asyncpg.Connection) -> None:
    while await relay._relay_once(conn):  # the last round waits for the batch before it to be recorded
        pass


@pytest.mark.parametrize("first", ["timer", "relay"])
async def test_an_escalation_whose_timer_failed_after_saving_it_climbs_on_a_step_later(first, settings, kafka_bootstrap):
    """A timer saves CaseEscalated, then moves the deadline's row on in a transaction of its own. When
    it failed in between (a crash, a lost connection), the next timer turned the deadline off, so the
    centre was never told; or the relay raised the row's level and left it due, and the centre was
    told at once, a step early."""
    # The first request's case, opened so that it missed its reach deadline a minute ago.
    first_within = route(ADDRESSES[0], "essential_supplies", load_directory("hcmc-2021")).reach_within
    async with stored_cases(settings, kafka_bootstrap, 1, at=datetime.now(UTC) - first_within - timedelta(minutes=1)) as s:
        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        await relay_all(relay, s.conn)
        case_id = uuid.UUID(next(iter(s.ids)))
        missed = await s.conn.fetchval("SELECT due_at FROM deadlines WHERE case_id = $1 AND kind = 'reach'", case_id)
        # The timer that failed: the unit head was told (the event is saved); the row never moved on.
        assert await asyncio.to_thread(s.desk.escalate, case_id, "reach", "unit_head", datetime.now(UTC))
        pool = await create_pool(settings.dsn(), min_size=1, max_size=2)
        try:
            if first == "relay":
                await relay_all(relay, s.conn)
            await Timers(s.desk, pool, 60).tick()
            await relay_all(relay, s.conn)
        finally:
            await pool.close()
        row = await s.conn.fetchrow("SELECT level, due_at, active FROM deadlines WHERE case_id = $1 AND kind = 'reach'",
                                    case_id)
        case = await asyncio.to_thread(s.desk.repository.get, case_id)
    assert case.escalations == {"reach": "unit_head"}, "the unit head told once, the centre not yet"
    assert dict(row) == {"level": "unit_head", "due_at": missed + s.desk.escalation_step["reach"], "active": True}


async def escalations_of(desk: CaseDesk, case_id: uuid.UUID) -> list[tuple[str, str]]:
    """The case's events from its last routing or dated progress on, by name (and deadline, level)."""
    events = await asyncio.to_thread(lambda: list(desk.repository.event_store.get(case_id)))
    names = [(type(e).__name__, getattr(e, "payload", {})) for e in events]
    return [(n, f"{p.get('deadline')}/{p.get('level')}" if n == "Escalated" else "") for n, p in names]


async def test_a_missed_committed_date_climbs_the_chain_again(settings, kafka_bootstrap):
    """A unit that missed its deadline reports progress and commits to a date; when that date passes
    too, the unit head is told again. The case remembered the first escalation, so the new miss
    was taken for one already told: nobody was, and the citizen had no apology."""
    async with stored_cases(settings, kafka_bootstrap, 1, at=LONG_AGO) as s:
        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        case_id = uuid.UUID(next(iter(s.ids)))
        case = await asyncio.to_thread(s.desk.repository.get, case_id)
        now = datetime.now(UTC)
        await asyncio.to_thread(s.desk.answer, [response(str(case_id), case.unit["id"], "accept")], now, Workload())
        assert await asyncio.to_thread(s.desk.escalate, case_id, "resolve", "unit_head", now)
        yesterday = now - timedelta(days=1)  # committed to two days ago
        await asyncio.to_thread(s.desk.answer, [response(str(case_id), case.unit["id"], "progress", "Đang làm",
                                                         committed_date=yesterday,
                                                         occurred_at=now - timedelta(days=2))], now, Workload())
        await relay_all(relay, s.conn)
        pool = await create_pool(settings.dsn(), min_size=1, max_size=2)
        try:
            await Timers(s.desk, pool, 60).tick()
        finally:
            await pool.close()
        history = await escalations_of(s.desk, case_id)
    after_the_date = history[[n for n, _ in history].index("ProgressReported") + 1:]
    assert ("Escalated", "resolve/unit_head") in after_the_date, history


async def test_a_committed_date_said_again_does_not_climb_the_chain_again(settings, kafka_bootstrap):
    """A unit misses the date it committed to and the unit head is told; its next routine report
    says the same date. That restarted the chain at the handler: the unit head was told again at
    once, and the centre's step a day on was put off for as long as the unit kept reporting."""
    async with stored_cases(settings, kafka_bootstrap, 1, at=LONG_AGO) as s:
        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        case_id = uuid.UUID(next(iter(s.ids)))
        case = await asyncio.to_thread(s.desk.repository.get, case_id)
        now = datetime.now(UTC)
        unit = case.unit["id"]
        missed = now - timedelta(hours=1)
        await asyncio.to_thread(s.desk.answer, [response(str(case_id), unit, "accept")], now, Workload())
        await asyncio.to_thread(s.desk.answer, [response(str(case_id), unit, "progress", "Đang làm",
                                                         committed_date=missed,
                                                         occurred_at=now - timedelta(days=1))], now, Workload())
        pool = await create_pool(settings.dsn(), min_size=1, max_size=2)
        try:
            await relay_all(relay, s.conn)
            await Timers(s.desk, pool, 60).tick()  # the date was missed: the unit head is told
            await asyncio.to_thread(s.desk.answer, [response(str(case_id), unit, "progress", "Vẫn đang làm",
                                                             committed_date=missed)], now, Workload())
            await relay_all(relay, s.conn)
            await Timers(s.desk, pool, 60).tick()
            level = await pool.fetchval("SELECT level FROM deadlines WHERE case_id = $1 AND kind = 'resolve'", case_id)
        finally:
            await pool.close()
        history = await escalations_of(s.desk, case_id)
    after_the_date = history[[n for n, _ in history].index("ProgressReported") + 1:]
    assert after_the_date.count(("Escalated", "resolve/unit_head")) == 1, history
    assert level == "unit_head", "the centre's step is a day on from the first miss, not put off"


async def test_a_new_date_already_past_when_given_is_refused_and_climbs_nothing_again(settings, kafka_bootstrap):
    """A case escalated to the centre; its unit then 'commits' to three days ago. Taken, the date
    cleared the escalations and the timer told the unit head and the centre a second time."""
    async with stored_cases(settings, kafka_bootstrap, 1, at=LONG_AGO) as s:
        case_id = uuid.UUID(next(iter(s.ids)))
        unit = (await asyncio.to_thread(s.desk.repository.get, case_id)).unit["id"]
        now = datetime.now(UTC)
        await asyncio.to_thread(s.desk.answer, [response(str(case_id), unit, "accept")], now, Workload())
        for level in ("unit_head", "centre"):
            assert await asyncio.to_thread(s.desk.escalate, case_id, "resolve", level, now)
        past = response(str(case_id), unit, "progress", "Đang làm", committed_date=now - timedelta(days=3))
        [(refused, why)] = await asyncio.to_thread(s.desk.answer, [past], now, Workload())
        assert refused.response_id == past.response_id and "had passed when it was given" in why
        case = await asyncio.to_thread(s.desk.repository.get, case_id)
        assert case.escalations == {"resolve": "centre"} and case.status == "accepted"


async def test_the_centre_routes_a_case_a_unit_holds_and_never_took_up(settings, kafka_bootstrap):
    """A unit that never answers: the reach deadline climbs to the centre, which could only route a
    case in triage, and only the holder may decline. The case stayed with the silent unit."""
    async with stored_cases(settings, kafka_bootstrap, 1) as s:
        case_id = uuid.UUID(next(iter(s.ids)))
        silent = (await asyncio.to_thread(s.desk.repository.get, case_id)).unit["id"]
        other = next(u for u in s.desk.directory.units if u.kind == "district" and u.id != silent)
        now = datetime.now(UTC)
        routing = response(str(case_id), s.desk.directory.centre.id, "route", "Chuyển đơn vị khác",
                           target_unit_id=other.id)
        assert await asyncio.to_thread(s.desk.answer, [routing], now, Workload()) == []
        case = await asyncio.to_thread(s.desk.repository.get, case_id)
        assert (case.status, case.unit["id"], case.tried_units) == ("routed", other.id, [silent, other.id])
        # The same route sent again (a new event id) gives the holder no fresh deadlines.
        again = routing.model_copy(update={"event_id": uuid.uuid4(), "response_id": uuid.uuid4()})
        [(_, why)] = await asyncio.to_thread(s.desk.answer, [again], now, Workload())
        assert why == f"case is already with {other.id}"
        assert (await asyncio.to_thread(s.desk.repository.get, case_id)).version == case.version
        [(_, why)] = await asyncio.to_thread(s.desk.answer, [response(str(case_id), silent, "accept")], now,
                                             Workload())
        assert "does not hold" in why, "the silent unit no longer answers for it"
        # The new unit reports progress first, then accepts: no error, nothing recorded twice.
        report = response(str(case_id), other.id, "progress", "Đang xem")
        assert await asyncio.to_thread(s.desk.answer, [report, response(str(case_id), other.id, "accept")], now,
                                       Workload()) == []
        assert (await asyncio.to_thread(s.desk.repository.get, case_id)).status == "in_progress"


async def test_responses_that_would_stop_the_router_are_refused_with_why_and_the_rest_applied(
        settings, kafka_bootstrap, monkeypatch):
    """A committed date in year 1 was recorded, then failed the relay's bookkeeping on every try:
    nothing more was published, by any router. A response naming the directory's record, or one
    whose corrected address made the routing raise, failed its batch, read again forever: every
    response behind it on the partition waited. The first three are refused with why; the decline
    stands and its case goes to triage; the good one is applied."""
    async with stored_cases(settings, kafka_bootstrap, 2) as s:
        await asyncio.to_thread(s.desk.install_directory)
        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        first, second = [await asyncio.to_thread(s.desk.repository.get, uuid.UUID(c)) for c in sorted(s.ids)]
        real_route = application.route

        def route_or_fail(address, *args, **kwargs):
            if address == "an address that breaks the gazetteer":
                raise IndexError("list index out of range")
            return real_route(address, *args, **kwargs)

        monkeypatch.setattr(application, "route", route_or_fail)
        edition = ids.event_id("directory-edition", "hcmc-2021")
        now = datetime.now(UTC)
        responses = [
            response(str(first.id), first.unit["id"], "progress", "Đang xử lý",
                     committed_date="0001-01-01T00:00:00+07:00"),
            response(str(first.id), first.unit["id"], "progress", "Đang xử lý", committed_date="2062-12-05"),
            response(str(edition), first.unit["id"], "accept"),
            response(str(second.id), second.unit["id"], "decline", "Sai địa bàn",
                     corrected_address="an address that breaks the gazetteer"),
            response(str(first.id), first.unit["id"], "resolve", "Đã hỗ trợ"),
            response(str(first.id), first.unit["id"], "progress", "Đang xử lý", committed_date=now + timedelta(days=3)),
        ]

        def a_bug(*args, **kwargs):
            raise ZeroDivisionError("a bug in the case's own rules")

        monkeypatch.setattr(application.Case, "resolve", a_bug)
        refused = await asyncio.to_thread(s.desk.answer, responses, now, Workload())
        assert [(r.response_id, why.split(" ")[0]) for r, why in refused] == [
            (responses[0].response_id, "committed"), (responses[1].response_id, "committed"),
            (responses[2].response_id, "no"), (responses[4].response_id, "ZeroDivisionError")]
        assert refused[3][1].startswith("ZeroDivisionError at test_event_store.py:")
        declined = await asyncio.to_thread(s.desk.repository.get, second.id)
        assert declined.status == "triage" and declined.tried_units == [second.unit["id"]]
        assert refused[1][1] == "committed date 2062-12-05T23:59:59+07:00 is more than 366 days from now"
        await relay_all(relay, s.conn)  # the relay gets through, and records what it published
        assert await s.conn.fetchval("SELECT position FROM outbox_position") == \
            await asyncio.to_thread(s.desk.recorder.max_notification_id)
        case = await asyncio.to_thread(s.desk.repository.get, first.id)
        assert datetime.fromisoformat(case.resolve_by) == responses[-1].committed_date


async def test_a_deadline_row_read_before_its_case_was_routed_again_escalates_nothing(settings, kafka_bootstrap):
    """The timers read the deadline rows the relay keeps. A case routed again (its unit declined and
    gave the right address) has new deadlines before the relay records them, perhaps on another
    router: the old row once escalated the case at the new unit, minutes into its time."""
    async with stored_cases(settings, kafka_bootstrap, 1, at=LONG_AGO) as s:
        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        await relay_all(relay, s.conn)
        case_id = uuid.UUID(next(iter(s.ids)))
        case = await asyncio.to_thread(s.desk.repository.get, case_id)
        elsewhere = next(a for a in ADDRESSES if route(a, case.category, s.desk.directory).outcome == "routed"
                         and route(a, case.category, s.desk.directory).unit.id != case.unit["id"])
        refused = await asyncio.to_thread(s.desk.answer, [response(
            str(case_id), case.unit["id"], "decline", "Không thuộc địa bàn", corrected_address=elsewhere)],
            datetime.now(UTC), Workload())
        assert refused == []
        pool = await create_pool(settings.dsn(), min_size=1, max_size=2)
        try:
            timers = Timers(s.desk, pool, 60)
            handled = await timers.tick()
            # Moved to when the case says they are due: not read again at every poll, where a hundred
            # such rows once filled every read and held up every other case's deadline.
            moved = await s.conn.fetch("SELECT kind, level, due_at > now() AS ahead FROM deadlines"
                                       " WHERE case_id = $1 ORDER BY kind", case_id)
            again = await timers.tick()
            await relay_all(relay, s.conn)
            rows = await s.conn.fetch("SELECT kind, level, due_at > now() AS ahead, active FROM deadlines"
                                      " WHERE case_id = $1 ORDER BY kind", case_id)
        finally:
            await pool.close()
        history = await escalations_of(s.desk, case_id)
    assert [n for n, _ in history if n == "Escalated"] == [], history
    assert handled == 2 and again == 0
    assert [tuple(r) for r in moved] == [("reach", "handler", True), ("resolve", "handler", True)]
    assert [tuple(r) for r in rows] == [("reach", "handler", True, True), ("resolve", "handler", True, True)]


async def test_a_case_the_centre_does_not_sort_in_time_climbs_the_chain_to_the_centre(settings, kafka_bootstrap):
    """A case in triage had no deadline: one the 1022 centre never sent to a unit waited for good,
    and nobody was told. It now has the category's time to reach a unit, from its triage, and its
    miss is escalated naming the centre, which the notifier tells (tests/unit/notifier)."""
    async with stored_cases(settings, kafka_bootstrap, 1, at=LONG_AGO) as s:
        unclear = requests(1)[0].model_copy(update={"address": "Phường 1"})
        [triaged] = await asyncio.to_thread(s.desk.receive, [unclear], LONG_AGO, Workload())
        assert triaged.status == "triage"
        within = route(unclear.address, unclear.category, s.desk.directory).reach_within
        assert datetime.fromisoformat(triaged.reach_by) == LONG_AGO + within
        relay = Relay(s.desk, s.producer, settings.dsn(), 0.05)
        await relay_all(relay, s.conn)
        pool = await create_pool(settings.dsn(), min_size=1, max_size=2)
        try:
            await Timers(s.desk, pool, 60).tick()
            await relay_all(relay, s.conn)
            row = await s.conn.fetchrow("SELECT level, active FROM deadlines WHERE case_id = $1 AND kind = 'reach'",
                                        triaged.id)
            escalated = [e for e in await asyncio.to_thread(lambda: list(s.desk.repository.event_store.get(triaged.id)))
                         if type(e).__name__ == "Escalated"]
            # The centre sends it to a unit: the unit's own time to take it, its chain afresh.
            unit = next(u for u in s.desk.directory.units if u.kind == "district")
            await asyncio.to_thread(s.desk.answer, [response(str(triaged.id), s.desk.directory.centre.id, "route",
                                                             target_unit_id=unit.id)], datetime.now(UTC), Workload())
            await relay_all(relay, s.conn)
            after = await s.conn.fetchrow("SELECT level, active, due_at > now() AS ahead FROM deadlines"
                                          " WHERE case_id = $1 AND kind = 'reach'", triaged.id)
        finally:
            await pool.close()
    assert [(e.payload["deadline"], e.payload["level"]) for e in escalated] == [("reach", "unit_head")]
    assert escalated[0].payload["unit"]["id"] == s.desk.directory.centre.id
    assert escalated[0].payload["notify"] == [{"channel": "webhook", "address": None}]  # the centre's, in the directory
    assert "1022 centre did not send the case to a unit" in escalated[0].payload["reason"]
    assert dict(row) == {"level": "unit_head", "active": True}  # the centre's leadership a step later
    assert dict(after) == {"level": "handler", "active": True, "ahead": True}


async def test_a_case_declined_to_the_centre_has_its_categorys_time_to_reach_a_unit(settings):
    """A decline without a corrected address went to triage with a fixed 5 minutes and a normal
    priority, whatever its category's rule said."""
    rules = load_rules()
    slow = dataclasses.replace(rules.categories["essential_supplies"], reach_within=timedelta(minutes=17))
    desk = CaseDesk(load_directory("hcmc-2021"), settings.eventsourcing_env(),
                    rules=dataclasses.replace(rules, categories={**rules.categories, "essential_supplies": slow}))
    try:
        [request] = [r for r in requests(3) if r.category == "essential_supplies"]
        now = datetime.now(UTC)
        [case] = await asyncio.to_thread(desk.receive, [request], now, Workload())
        later = now + timedelta(hours=1)
        await asyncio.to_thread(desk.answer, [response(str(case.id), case.unit["id"], "decline", "Không thuộc thẩm quyền")],
                                later, Workload())
        triaged = await asyncio.to_thread(desk.repository.get, case.id)
    finally:
        desk.close()
    assert triaged.status == "triage" and datetime.fromisoformat(triaged.reach_by) == later + timedelta(minutes=17)


async def test_a_request_whose_routing_fails_goes_to_triage_with_why_and_the_rest_are_routed(settings, monkeypatch):
    """One request the routing cannot take (here it raises on its address) once failed its whole
    batch, read again forever; then it was dead-lettered, and its citizen, who had a tracking code,
    had no case. It is opened in triage at the 1022 centre, with its category's priority."""
    desk = CaseDesk(load_directory("hcmc-2021"), settings.eventsourcing_env())
    batch = requests(4)
    poison = batch[1]  # vulnerable_person: urgent
    real_route = application.route

    def route_or_fail(address, category, *args, **kwargs):
        if address == poison.address and category == poison.category:
            raise KeyError("an address the gazetteer has never seen the like of")
        return real_route(address, category, *args, **kwargs)

    monkeypatch.setattr(application, "route", route_or_fail)
    refused = []
    opened = await asyncio.to_thread(desk.receive, batch, datetime.now(UTC), Workload(), None, refused)
    assert sorted(str(c.id) for c in opened) == sorted(str(r.case_id) for r in batch) and refused == []
    case = await asyncio.to_thread(desk.repository.get, poison.case_id)
    assert (case.status, case.priority) == ("triage", "urgent")
    events = await asyncio.to_thread(lambda: list(desk.repository.event_store.get(poison.case_id)))
    assert [type(e).__name__ for e in events] == ["Opened", "Triaged"]
    assert events[-1].payload["reason"] == ("the address could not be read automatically (KeyError): "
                                            "the 1022 centre decides")
    for request in (r for r in batch if r is not poison):
        other = await asyncio.to_thread(desk.repository.get, request.case_id)
        assert other.status == real_route(request.address, request.category, desk.directory).outcome
    desk.close()


async def test_a_vulnerable_persons_assignment_names_the_department_told_as_well(settings):
    """The rule for a vulnerable person: the area's People's Committee takes the case, and the
    city's social department is told. The assignment carries it, for the notifier to send the copy."""
    desk = CaseDesk(load_directory("hcmc-2021"), settings.eventsourcing_env())
    vulnerable, supplies = requests(2)[1], requests(1)[0]
    assert (vulnerable.category, supplies.category) == ("vulnerable_person", "essential_supplies")
    await asyncio.to_thread(desk.receive, [vulnerable, supplies], datetime.now(UTC), Workload())
    issued = {}
    for request in (vulnerable, supplies):
        events = await asyncio.to_thread(lambda: list(desk.repository.event_store.get(request.case_id)))
        [issued[request.category]] = [to_contract(e) for e in events if type(e).__name__ == "AssignmentIssued"]
    department = desk.directory.department
    assert [u.id for u in issued["vulnerable_person"].also] == [department.id]
    assert issued["vulnerable_person"].unit.id != department.id
    assert issued["essential_supplies"].also == ()

    # One the centre routes out of triage (its address named no single ward) tells it as well.
    unclear = requests(2)[1].model_copy(update={"address": "Phường 1"})
    assert unclear.category == "vulnerable_person"
    [case] = await asyncio.to_thread(desk.receive, [unclear], datetime.now(UTC), Workload())
    assert case.status == "triage"
    ward = issued["vulnerable_person"].unit.id
    assert await asyncio.to_thread(desk.answer, [response(str(case.id), desk.directory.centre.id, "route",
                                                          target_unit_id=ward)], datetime.now(UTC), Workload()) == []
    events = await asyncio.to_thread(lambda: list(desk.repository.event_store.get(case.id)))
    [routed] = [to_contract(e) for e in events if type(e).__name__ == "AssignmentIssued"]
    assert routed.unit.id == ward and [u.id for u in routed.also] == [department.id]
    desk.close()


async def test_installing_a_directory_is_an_event_recorded_once_per_version(settings):
    directory = load_directory("hcmc-2021")
    desk = CaseDesk(directory, settings.eventsourcing_env())
    first = await asyncio.to_thread(desk.install_directory)
    again = await asyncio.to_thread(CaseDesk(directory, settings.eventsourcing_env()).install_directory)
    assert [i["version"] for i in again.installs] == [directory.version] and again.version == first.version

    changed = dataclasses.replace(directory, version="hcmc-2021.2", digest="0" * 64)
    record = await asyncio.to_thread(CaseDesk(changed, settings.eventsourcing_env()).install_directory)
    assert [i["version"] for i in record.installs] == [directory.version, "hcmc-2021.2"]
    assert record.installs[0]["units"] == 86
    # The router's outbox publishes the cases' events only: nothing of this reaches case.events.
    notifications = await asyncio.to_thread(desk.recorder.select_notifications, start=1, limit=10)
    assert len(notifications) == 2
    desk.close()


async def test_the_event_store_is_vacuumed_in_small_unthrottled_freezing_passes(settings):
    # Its inserts lock the table against VACUUM: a long vacuum stops cases being opened
    # (bench/bench_store_vacuum.py measures how long); the router's start sets short ones.
    desk, pool = await _open_stores(settings)
    try:
        options = await pool.fetchval("SELECT reloptions FROM pg_class WHERE relname = $1",
                                      desk.recorder.events_table_name)
    finally:
        await pool.close()
        await asyncio.to_thread(desk.close)
    assert {"autovacuum_vacuum_insert_threshold=10000", "autovacuum_vacuum_insert_scale_factor=0",
            "autovacuum_vacuum_cost_delay=0", "autovacuum_freeze_min_age=0"} <= set(options)


async def test_cases_another_router_saves_wake_the_relay_without_its_poll(settings, kafka_bootstrap):
    """The leading relay hears of every insert by the store's NOTIFY; its poll (a minute here) never comes."""
    desk = CaseDesk(load_directory("hcmc-2021"), settings.eventsourcing_env())
    other = CaseDesk(load_directory("hcmc-2021"), settings.eventsourcing_env())  # another instance's desk
    producer = bulk_producer(kafka_bootstrap, client_id="it-relay")
    await producer.start()
    relay = Relay(desk, producer, settings.dsn(), poll_seconds=60)
    running = asyncio.create_task(relay.run())

    async def stored() -> int:
        return await asyncio.to_thread(desk.recorder.max_notification_id) or 0

    try:
        async with asyncio.timeout(30):
            while not relay.is_leader:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # its first round (an empty store) is over; now it waits on its poll
        opened = await asyncio.to_thread(other.receive, requests(3), datetime.now(UTC), Workload())
        last = await stored()
        async with asyncio.timeout(15):
            while relay.position < last:
                await asyncio.sleep(0.05)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await producer.stop()
        desk.close()
        other.close()
    records = await _published(kafka_bootstrap, {str(c.id) for c in opened})
    assert {r.key.decode() for r in records} == {str(c.id) for c in opened}
