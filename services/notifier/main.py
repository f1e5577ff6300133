"""The notifier's composition root: ``create_app()`` wires the delivery log, the providers and
the Kafka handlers."""

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import httpx
from fastapi import FastAPI

from contracts.messaging import kafka_broker, start_when_reachable
from contracts.telemetry import setup_tracing
from services.notifier.api import router
from services.notifier.application import Notifier
from services.notifier.handlers import register
from services.notifier.providers import HttpProvider, Providers
from services.notifier.settings import NotifierSettings
from services.notifier.store import SCHEMA, DeliveryLog


def build_providers(settings: NotifierSettings, client: httpx.AsyncClient) -> Providers:
    by_channel = {"webhook": HttpProvider(client)}
    for channel, url in (("sms", settings.sms_gateway_url), ("push", settings.push_gateway_url),
                         ("zalo", settings.zalo_api_url)):
        if url:
            by_channel[channel] = HttpProvider(client, url)
    return Providers(by_channel)


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = setup_tracing("notifier")
        pool = await asyncpg.create_pool(settings.dsn(), min_size=1, max_size=8)
        await pool.execute(SCHEMA)
        client = httpx.AsyncClient(timeout=settings.send_timeout_seconds,
                                   limits=httpx.Limits(max_connections=settings.concurrency))
        broker = kafka_broker(settings.kafka_bootstrap, client_id="notifier", tracer_provider=provider)
        app.state.notifier = notifier = Notifier(
            DeliveryLog(pool), build_providers(settings, client), broker, max_attempts=settings.max_attempts,
            backoff_base=settings.backoff_base_seconds, backoff_max=settings.backoff_max_seconds,
            send_timeout=settings.send_timeout_seconds, concurrency=settings.concurrency)
        register(broker, notifier, settings)
        await start_when_reachable(broker.start)
        try:
            yield
        finally:
            await broker.stop()
            await client.aclose()
            await pool.close()
            provider.shutdown()

    app = FastAPI(title="1022 notifier", version="1", lifespan=lifespan)
    app.include_router(router)
    return app


def serve() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s notifier %(levelname)s %(name)s: %(message)s")
    settings = NotifierSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
