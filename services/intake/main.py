"""Intake's composition root: ``create_app()`` wires settings, telemetry, Kafka and the routes."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from contracts.messaging import kafka_broker
from contracts.telemetry import setup_tracing
from services.intake.api import install_error_handlers, router
from services.intake.application import Intake
from services.intake.settings import IntakeSettings


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = setup_tracing("intake")
        broker = kafka_broker(settings.kafka_bootstrap, client_id="intake", tracer_provider=provider)
        app.state.intake = intake = Intake(broker, settings.publish_timeout_seconds)
        connecting = asyncio.create_task(intake.connect_forever())
        try:
            yield
        finally:
            connecting.cancel()
            await broker.stop()
            provider.shutdown()

    app = FastAPI(title="1022 intake", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.include_router(router)
    install_error_handlers(app)
    return app


def serve() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s intake %(levelname)s %(name)s: %(message)s")
    settings = IntakeSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
