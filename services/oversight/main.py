"""Oversight's composition root: ``create_app()`` migrates the schema, starts the projection
and serves the read-only API."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from fastapi import FastAPI

from contracts.messaging import kafka_broker, start_when_reachable
from contracts.telemetry import setup_tracing
from services.oversight.api import router
from services.oversight.handlers import register
from services.oversight.settings import OversightSettings
from services.oversight.store import Projector, migrate

log = logging.getLogger(__name__)


def tokens_from(settings: OversightSettings) -> dict[str, str]:
    """Bearer token → role, from OVERSIGHT_TOKEN_COUNCIL / _FRONT / _CENTRE (never from the repo)."""
    import os

    out = {}
    for role in ("council", "front", "centre"):
        token = os.environ.get(f"OVERSIGHT_TOKEN_{role.upper()}")
        if token:
            out[token] = role
    return out


def create_app(settings: OversightSettings | None = None) -> FastAPI:
    settings = settings or OversightSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = setup_tracing("oversight")
        owner = await asyncpg.connect(settings.dsn())
        try:
            await migrate(owner, settings.reader_user)
        finally:
            await owner.close()
        writer = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=4)
        app.state.reader = await asyncpg.create_pool(settings.dsn(reader=True), min_size=1, max_size=8)
        app.state.projector = projector = Projector(writer)
        broker = kafka_broker(settings.kafka_bootstrap, client_id="oversight", tracer_provider=provider)
        register(broker, projector, settings.group_id, settings.max_batch)
        await start_when_reachable(broker.start)
        try:
            yield
        finally:
            await broker.stop()
            await app.state.reader.close()
            await writer.close()
            provider.shutdown()

    app = FastAPI(title="1022 oversight (read only)", version="1", lifespan=lifespan)
    app.state.tokens = tokens_from(settings)
    app.include_router(router)
    return app



def serve() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s oversight %(levelname)s %(name)s: %(message)s")
    settings = OversightSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
