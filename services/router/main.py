"""The router's composition root: ``create_app()`` builds the event store, the relay and the
Kafka handlers, and runs them in the HTTP service's lifespan."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from contracts.messaging import kafka_broker, start_when_reachable
from contracts.telemetry import setup_tracing
from services.router.api import router
from services.router.application import CaseDesk
from services.router.directory import load_directory
from services.router.handlers import register
from services.router.outbox import Relay
from services.router.settings import RouterSettings

log = logging.getLogger(__name__)


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    settings = settings or RouterSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = setup_tracing("router")
        desk = await asyncio.to_thread(CaseDesk, load_directory(settings.edition), settings.eventsourcing_env())
        broker = kafka_broker(settings.kafka_bootstrap, client_id="router", tracer_provider=provider)
        relay = Relay(desk, broker, settings.dsn(), settings.relay_poll_seconds, settings.max_batch)
        stats = {"requests": 0, "opened": 0, "responses": 0}
        register(broker, desk, relay, settings.group_id, settings.max_batch, stats)
        app.state.desk, app.state.relay, app.state.stats = desk, relay, stats
        app.state.broker_running = False
        await start_when_reachable(broker.start)
        app.state.broker_running = True
        relaying = asyncio.create_task(relay.run())
        try:
            yield
        finally:
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
            await broker.stop()
            await asyncio.to_thread(desk.close)
            provider.shutdown()

    app = FastAPI(title="1022 router", version="1", lifespan=lifespan)
    app.include_router(router)
    return app



def serve() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s router %(levelname)s %(name)s: %(message)s")
    settings = RouterSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
