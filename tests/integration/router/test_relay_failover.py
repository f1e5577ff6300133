"""The outbox relay's lead moves on when its leader is cut off from PostgreSQL: the leader's
connection runs through a proxy that stops passing anything on, as a broken network would."""

import asyncio
from datetime import UTC, datetime

from services.router.application import Workload
from services.router.outbox import Relay
from tests.integration.router.test_event_store import requests, settings, stored_cases  # noqa: F401 - a fixture
from tests.support.mesh import eventually
from tests.support.network import Cut


async def test_a_leader_cut_off_from_postgresql_hands_the_outbox_on(settings, kafka_bootstrap, pg_port):  # noqa: F811
    """The relay leads by a lock its connection holds. A leader whose connection stopped answering
    waited forever for its last record, holding the lead: nothing more reached case.events and the
    ledger (deadlines, open reports) stood still, while intake went on accepting requests."""
    async with stored_cases(settings, kafka_bootstrap, 2) as s, Cut(pg_port) as cut:
        through_cut = settings.model_copy(update={"pg_port": cut.port}).dsn()
        leader = Relay(s.desk, s.producer, through_cut, 0.05, command_timeout=2)
        standby = Relay(s.desk, s.producer, settings.dsn(), 0.05, command_timeout=2)
        running = [asyncio.create_task(leader.run())]
        try:
            await eventually(lambda: leader.is_leader, 20, "the first relay to lead")
            running.append(asyncio.create_task(standby.run()))
            async def at(wanted: int) -> bool:
                return await s.conn.fetchval("SELECT position FROM outbox_position") == wanted

            await eventually(lambda: at(len(s.stored)), 20, "the first cases recorded")

            cut.flowing = False
            opened = await asyncio.to_thread(s.desk.receive, requests(3), datetime.now(UTC), Workload())
            assert len(opened) == 3
            last = (await asyncio.to_thread(s.desk.recorder.select_notifications, start=1, limit=1000))[-1].id
            await eventually(lambda: at(last), 45, "the new cases recorded by a relay that can")
            await eventually(lambda: standby.is_leader, 10, "the standby to keep the lead")
            assert await s.conn.fetchval("SELECT count(*) FROM deadlines WHERE case_id = ANY($1::uuid[])",
                                         [c.id for c in opened]) > 0, "the ledger moved on with them"
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

