"""Intake's composition root: ``create_app()`` wires settings, telemetry, Kafka, PostgreSQL, the
Zalo chatbot and the routes. Nothing connects before the app starts, so tests configure first."""

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from contracts.categories import load as load_categories
from contracts.messaging import kafka_broker
from contracts.runtime import report_tasks_on_signal, settle_heap, snapshot_heap_on_signal
from contracts.settings import MissingSecret
from contracts.telemetry import setup_tracing
from contracts.zalo_token import FixedToken, TokenSource
from services.intake.api import install_admission_limit, install_body_limit, install_error_handlers, install_routes
from services.intake.application import Intake
from services.intake.channels.open311 import LIST_LOOKUPS
from services.intake.chatbot import Chatbot
from services.intake.oa_client import OAClient
from services.intake.oa_token import KeptToken
from services.intake.settings import IntakeSettings

TEMPLATES = Path(__file__).parent / "templates"


def _oa_token(settings: IntakeSettings, intake: Intake, http: httpx.AsyncClient) -> TokenSource | None:
    """The OA access token: kept fresh from a refresh token, or fixed; None when neither is configured."""
    if seed := settings.zalo_refresh_token.get_secret_value():
        return KeptToken(lambda: intake.pool, http, seed=seed, oauth_url=settings.zalo_oauth_url,
                         app_id=settings.zalo_app_id, app_secret=settings.required_zalo_app_secret(),
                         ahead=timedelta(seconds=settings.zalo_token_refresh_ahead_seconds))
    token = settings.zalo_access_token.get_secret_value()
    return FixedToken(token) if token else None


# At most this many status lookups at once in an instance; more wait up to oversight's time-out, then 503.
LOOKUP_CONNECTIONS = 16


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    settings.required_tracking_code_key()  # refused here, before anything starts
    if settings.zalo_refresh_token.get_secret_value():
        settings.required_zalo_app_secret()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = setup_tracing("intake")
        broker = kafka_broker(settings.kafka_bootstrap, client_id="intake", tracer_provider=provider)
        app.state.http = http = httpx.AsyncClient(timeout=settings.zalo_send_timeout_seconds)
        # Open311's status lookups ask oversight with connections of their own: anyone may send
        # them, and Zalo's replies and token refreshes must never wait behind them for a connection.
        app.state.list_lookups = asyncio.Semaphore(LIST_LOOKUPS)
        app.state.lookups = lookups = httpx.AsyncClient(timeout=settings.oversight_timeout_seconds,
                                                        limits=httpx.Limits(max_connections=LOOKUP_CONNECTIONS))
        app.state.intake = intake = Intake(broker, settings)
        app.state.oa_token = token = _oa_token(settings, intake, http)
        # Without a token, replies wait in the outbox.
        oa = OAClient(http, settings.zalo_api_url, token, settings.zalo_send_timeout_seconds / 2) if token else None
        app.state.chatbot = chatbot = Chatbot(intake, oa, settings, load_categories(settings.categories_file))
        work = [intake.connect_forever(), intake.open_database_forever(), intake.tidy_forever(),
                chatbot.sweep_forever()]
        if isinstance(token, KeptToken):
            work.append(token.keep_fresh_forever())
        background = [asyncio.create_task(job) for job in work]
        settle_heap()
        report_tasks_on_signal()
        snapshot_heap_on_signal("intake")
        try:
            yield
        finally:
            await chatbot.drain()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if isinstance(token, KeptToken):
                await token.settle()  # a refresh Zalo answered is written before the pool closes
            await broker.stop()
            await http.aclose()
            await lookups.aclose()
            if intake.pool is not None:
                await intake.pool.close()
            provider.shutdown()

    app = FastAPI(title="1022 intake", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.templates = Jinja2Templates(directory=TEMPLATES)
    install_routes(app)
    install_error_handlers(app)
    # Added last, the body limit is the outer one: a submission holds a place in flight only once
    # its body is in, so connections that send headers and then nothing cannot take every place.
    install_admission_limit(app, settings.max_in_flight, settings.retry_after_seconds)
    install_body_limit(app, settings)
    return app


def set_up_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s intake %(levelname)s %(name)s: %(message)s")
    # httpx logs each request's URL at INFO, and an Open311 status lookup's URL holds the tracking
    # code, which opens a private request's status: the logs would gather them.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def serve() -> None:
    import uvicorn

    set_up_logging()
    settings = IntakeSettings()
    try:
        app = create_app(settings)
    except MissingSecret as refused:
        sys.exit(f"intake: {refused}")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                timeout_keep_alive=settings.keep_alive_seconds)
