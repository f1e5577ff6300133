"""The router's composition root: ``create_app()`` builds the event store, the relay and the
Kafka handlers, and runs them in the HTTP service's lifespan."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
from fastapi import FastAPI

from contracts.messaging import bulk_producer, kafka_broker, keep_consumers_reading, start_when_reachable
from contracts.postgres import connect, create_pool
from contracts.runtime import report_tasks_on_signal, settle_heap, snapshot_heap_on_signal
from contracts.telemetry import setup_tracing
from services.router.api import router
from services.router.application import CaseDesk
from services.router.directory import load_directory
from services.router.handlers import register, responses_group
from services.router.outbox import SCHEMA_LOCK, Relay, create_schema, tune_event_store
from services.router.routing import load_rules, warm_up
from services.router.settings import RouterSettings
from services.router.timers import AnswersApplied, Timers

log = logging.getLogger(__name__)


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    settings = settings or RouterSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = setup_tracing("router")
        desk, pool = await _open_stores(settings)
        broker = kafka_broker(settings.kafka_bootstrap, client_id="router", tracer_provider=provider)
        app.state.directory_record = await asyncio.to_thread(desk.install_directory)
        await asyncio.to_thread(warm_up, desk.directory, desk.rules)
        producer = bulk_producer(settings.kafka_bootstrap, client_id="router-outbox")
        relay = Relay(desk, producer, settings.dsn(), settings.relay_poll_seconds, settings.max_batch)
        answers = AnswersApplied(settings.kafka_bootstrap, responses_group(settings.group_id))
        timers = Timers(desk, pool, settings.timer_poll_seconds, answers)
        stats = {"requests": 0, "opened": 0, "responses": 0, "refused": 0}
        register(broker, desk, pool, settings.group_id, settings.max_batch, stats, settings.gather_ms)
        app.state.desk, app.state.relay, app.state.timers, app.state.stats = desk, relay, timers, stats
        app.state.broker = broker
        app.state.broker_running = False
        await start_when_reachable(broker.start, stop=broker.stop)
        await start_when_reachable(producer.start)
        app.state.broker_running = True
        background = [asyncio.create_task(relay.run()), asyncio.create_task(timers.run()),
                      asyncio.create_task(keep_consumers_reading(broker), name="keep-consumers-reading")]
        settle_heap()
        report_tasks_on_signal()
        snapshot_heap_on_signal("router")
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await broker.stop()
            await producer.stop()
            await answers.close()
            await pool.close()
            await asyncio.to_thread(desk.close)
            provider.shutdown()

    app = FastAPI(title="1022 router", version="1", lifespan=lifespan)
    app.include_router(router)
    return app


async def _open_stores(settings: RouterSettings) -> tuple[CaseDesk, asyncpg.Pool]:
    """The event store and the router's own tables, created if missing. Two routers starting
    together on an empty database would race to create them: a lock lets one at a time."""
    gate = await connect(settings.dsn())
    try:
        await gate.execute("SELECT pg_advisory_lock($1)", SCHEMA_LOCK)
        desk = await asyncio.to_thread(
            CaseDesk, load_directory(settings.edition), settings.eventsourcing_env(), load_rules(settings.rules_file),
            {"reach": timedelta(seconds=settings.escalate_reach_step_seconds),
             "resolve": timedelta(seconds=settings.escalate_resolve_step_seconds)})
        await create_schema(gate)
        await tune_event_store(gate, desk.recorder.events_table_name)
    finally:
        await gate.close()  # ends the session, and the lock with it
    return desk, await create_pool(settings.dsn(), min_size=1, max_size=4)


def serve() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s router %(levelname)s %(name)s: %(message)s")
    settings = RouterSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
