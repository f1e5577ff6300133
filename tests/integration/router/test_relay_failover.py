"""The outbox relay's lead moves on when its leader is cut off from PostgreSQL: the leader's
connection runs through a proxy that stops passing anything on, as a broken network would."""

import asyncio
import contextlib
from datetime import UTC, datetime

from services.router.application import Workload
from services.router.outbox import Relay
from tests.integration.router.test_event_store import requests, settings, stored_cases  # noqa: F401 - a fixture
from tests.support.mesh import eventually


class Cut:
    """A TCP proxy to PostgreSQL that can be cut: from then on it passes nothing either way, though
    both connections stay open. A side that closes is closed on the other side too."""

    def __init__(self, port: int):
        self.upstream_port, self.flowing = port, True
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> "Cut":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_) -> None:
        self.server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    if self.flowing:
                        writer.write(data)
                        await writer.drain()
            for w in (client_w, server_w):
                w.close()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))


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

