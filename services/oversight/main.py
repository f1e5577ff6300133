"""Oversight's composition root: ``create_app()`` migrates the schema, starts the projection, the
checkpoints and the audit feed, and serves the read-only API and the dashboard."""

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from contracts.messaging import kafka_broker, keep_consumers_reading, start_when_reachable
from contracts.postgres import DATABASE_DOWN, connect, create_pool
from contracts.runtime import report_tasks_on_signal, settle_heap, snapshot_heap_on_signal
from contracts.settings import MissingSecret
from contracts.telemetry import setup_tracing
from services.oversight.api import routes
from services.oversight.api.readonly import ReadOnly
from services.oversight.api.recent import Recent
from services.oversight.checkpoints import Checkpointer
from services.oversight.feed import AuditFeed
from services.oversight.handlers import register
from services.oversight.projector import Projector
from services.oversight.refold import refold
from services.oversight.settings import OversightSettings
from services.oversight.store import migrate, set_password

log = logging.getLogger(__name__)


def create_app(settings: OversightSettings | None = None) -> FastAPI:
    settings = settings or OversightSettings()
    audit_key = settings.required_audit_key()  # refused here, before anything starts
    reader_password = settings.required_reader_password()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provider = setup_tracing("oversight")
        owner = await connect(settings.dsn())
        try:
            await migrate(owner, settings.reader_user, reader_password)
            await refold(owner)  # before anything is projected, and before the API serves the rows
        finally:
            await owner.close()
        app.state.reader = await _reader_pool(settings, reader_password)
        app.state.feed = feed = AuditFeed(settings.dsn(reader=True))
        app.state.audit_key = audit_key
        app.state.verify_lock = asyncio.Lock()
        app.state.projector, app.state.broker = None, None
        writer, broker, background = None, None, []
        await feed.start()
        if settings.consume:
            writer = await create_pool(settings.dsn(), min_size=1, max_size=4,
                                               server_settings={"application_name": "oversight-projector"})
            app.state.projector = projector = Projector(writer, audit_key=audit_key,
                                                        checkpoint_every=settings.checkpoint_every)
            app.state.broker = broker = kafka_broker(settings.kafka_bootstrap, client_id="oversight",
                                                     tracer_provider=provider)
            register(broker, projector, settings.group_id, settings.max_batch, settings.gather_ms)

            async def consume() -> None:
                # The API serves from PostgreSQL alone: it is up while Kafka is not, and /healthz says so.
                await start_when_reachable(broker.start, stop=broker.stop)
                await asyncio.gather(
                    Checkpointer(writer, broker, settings.kafka_bootstrap, settings.checkpoint_topic,
                                 settings.checkpoint_seconds).run(),
                    keep_consumers_reading(broker))

            background = [asyncio.create_task(consume(), name="consume")]
        settle_heap()
        report_tasks_on_signal()
        snapshot_heap_on_signal("oversight")
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if broker:
                await broker.stop()  # also one still trying to reach Kafka
            await feed.stop()
            await app.state.reader.close()
            if writer:
                await writer.close()
            provider.shutdown()

    # No /docs: its page loads scripts from a CDN, and this machine may have no internet.
    app = FastAPI(title="1022 oversight (read only)", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.tokens = settings.tokens()
    app.state.recent = Recent(settings.stats_cache_seconds)
    # The public's share of the readers' pool of 8 (api/turns.py): one ranking, two pages of requests at a time.
    app.state.public_figures = asyncio.Semaphore(1)
    app.state.public_pages = asyncio.Semaphore(2)
    app.include_router(routes())
    app.add_middleware(ReadOnly)
    for kind in DATABASE_DOWN:
        app.add_exception_handler(kind, _database_down)
    return app


async def _database_down(_: Request, error: Exception) -> JSONResponse:
    """The database unreachable: 503 with when to try again, as the other services answer, not a
    bare 500 (the public's lookup and /healthz included)."""
    log.warning("PostgreSQL unavailable: %s", type(error).__name__)
    return JSONResponse({"detail": "the database is unavailable; try again shortly (cơ sở dữ liệu tạm thời"
                                   " không truy cập được, vui lòng thử lại sau)"},
                        status_code=503, headers={"Retry-After": "5"})


async def _reader_pool(settings: OversightSettings, password: str) -> asyncpg.Pool:
    """The API's pool: a role that may only SELECT, its sessions read only too. A role made before
    its password was set, or given another since, is given the configured one and tried again."""
    def pool() -> Any:
        return create_pool(settings.dsn(reader=True), min_size=1, max_size=8,
                           server_settings={"default_transaction_read_only": "on", "application_name": "oversight-api"},
                           command_timeout=settings.pg_command_timeout_seconds,
                           timeout=min(60.0, settings.pg_command_timeout_seconds))

    try:
        return await pool()
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
        if not password:
            raise
    log.warning("the read-only role %s could not log in; giving it the configured password", settings.reader_user)
    owner = await connect(settings.dsn())
    try:
        await set_password(owner, settings.reader_user, password)
    finally:
        await owner.close()
    return await pool()


def serve() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s oversight %(levelname)s %(name)s: %(message)s")
    settings = OversightSettings()
    try:
        app = create_app(settings)
    except MissingSecret as refused:
        sys.exit(f"oversight: {refused}")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
