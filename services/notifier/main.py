"""The notifier's composition root: ``create_app()`` wires the tables, the providers, one
dispatcher per channel, the announcer and the Kafka handlers."""

import asyncio
import contextlib
import logging
import ssl
import sys
from collections.abc import AsyncIterator

import aiohttp
from fastapi import FastAPI

from contracts.messaging import bulk_producer, kafka_broker, keep_consumers_reading, start_when_reachable
from contracts.postgres import create_pool
from contracts.runtime import report_tasks_on_signal, settle_heap, snapshot_heap_on_signal
from contracts.settings import MissingSecret
from contracts.telemetry import setup_tracing
from contracts.zalo_token import FixedToken, TokenSource
from services.notifier.api import router
from services.notifier.application import Announcer, Notifier
from services.notifier.dispatch import Dispatcher, Retry
from services.notifier.domain import CHANNEL_NAMES, Policy
from services.notifier.handlers import register
from services.notifier.mail import MailProvider
from services.notifier.oa_token import BorrowedToken
from services.notifier.providers import GatewayProvider, Provider, Providers, WebhookProvider, ZaloProvider
from services.notifier.settings import NotifierSettings
from services.notifier.store import DeliveryLog

# A channel with no provider here still has a dispatcher, looking now and then: what was planned on
# it under an earlier configuration goes on by the citizen's next route or fails with the reason,
# instead of waiting for good and holding back the citizen's later messages. Nothing new is planned on
# it, and it takes only what has waited ``NOTIFIER_UNCONFIGURED_AFTER_SECONDS`` past its time.
NO_PROVIDER_POLL_SECONDS = 5.0


def build_providers(settings: NotifierSettings, clients: contextlib.AsyncExitStack) -> Providers:
    """A provider for each configured channel; the webhook needs no configuration of its own.

    Each HTTP channel has its own connection pool, no larger than its concurrency: the pool's
    bookkeeping grows with its connections, and one channel's connections are no use to another.
    """
    def client() -> aiohttp.ClientSession:
        # aiohttp rather than httpx: a POST costs a fraction of the CPU, and the notifier makes one
        # per delivery (httpx was a quarter of the notifier's CPU under load).
        made = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=settings.concurrency),
                                     # A connection not made in half the time is told apart from
                                     # a send with no answer: nothing went, so another route may be taken.
                                     timeout=aiohttp.ClientTimeout(total=settings.send_timeout_seconds,
                                                                   connect=settings.send_timeout_seconds / 2))
        clients.push_async_callback(made.close)
        return made

    by_channel: dict[str, Provider] = {
        "webhook": WebhookProvider(client(), settings.webhook_signing_key.get_secret_value().encode(),
                                   settings.webhook_shared_key.get_secret_value().encode())}
    if settings.sms_gateway_url:
        by_channel["sms"] = GatewayProvider(client(), settings.sms_gateway_url, ascii_only=settings.sms_ascii)
    if settings.push_gateway_url:
        by_channel["push"] = GatewayProvider(client(), settings.push_gateway_url)
    if "zalo" in settings.channels():
        http = client()
        token: TokenSource = FixedToken(settings.zalo_access_token.get_secret_value())
        if settings.zalo_token_url:
            token = BorrowedToken(http, settings.zalo_token_url, settings.required_zalo_token_key())
            clients.push_async_callback(token.close)  # runs before the session it uses closes
        by_channel["zalo"] = ZaloProvider(http, settings.zalo_api_url, token, settings.send_timeout_seconds / 3)
    if settings.smtp_host:
        mail = MailProvider(settings.smtp_host, settings.smtp_port, settings.mail_from,
                            timeout=settings.send_timeout_seconds, user=settings.smtp_user,
                            password=settings.smtp_password.get_secret_value(),
                            tls=mail_tls(settings) if settings.smtp_starttls else None,
                            threads=min(settings.concurrency, 8))
        clients.push_async_callback(asyncio.to_thread, mail.close)
        by_channel["email"] = mail
    return Providers(by_channel)


def mail_tls(settings: NotifierSettings) -> ssl.SSLContext:
    """STARTTLS that checks the relay's certificate and name: smtplib's own, without a context,
    checks neither, and anyone on the way could read the mail and the relay's password."""
    return ssl.create_default_context(cafile=settings.smtp_ca_file or None)


def concurrency_for(channel: str, providers: Providers, settings: NotifierSettings) -> int:
    """How many of a channel's sends go at once: no more than its provider takes at once. Mail is
    sent by a few threads, and a send waiting for one ran out its time-out before it started: cut,
    counted as a try that went unanswered (no other route then), and the mail maybe sent twice."""
    provider = providers.by_channel.get(channel)
    return min(settings.concurrency, getattr(provider, "at_once", settings.concurrency))


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings()
    if "zalo" in settings.channels() and settings.zalo_token_url:
        settings.required_zalo_token_key()  # refused here, before anything starts

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracing = setup_tracing("notifier")
        pool = await create_pool(settings.dsn(), min_size=1, max_size=settings.pg_pool_size)
        deliveries = DeliveryLog(pool)
        await deliveries.create()
        clients = contextlib.AsyncExitStack()
        broker = kafka_broker(settings.kafka_bootstrap, client_id="notifier", tracer_provider=tracing)
        providers = build_providers(settings, clients)
        producer = bulk_producer(settings.kafka_bootstrap, client_id="notifier-announcer")
        announcer = Announcer(deliveries, producer, group_id=settings.group_id, batch=settings.max_batch,
                              poll_seconds=settings.poll_seconds)
        dispatchers: list[Dispatcher] = []

        def wake_dispatchers() -> None:
            for dispatcher in dispatchers:
                if dispatcher.channel in providers.by_channel:
                    dispatcher.wake.set()

        policy = Policy(settings.channels(), settings.unit_webhook_url, settings.zalo_reply_window,
                        sms_max_segments=settings.sms_max_segments, sms_ascii=settings.sms_ascii,
                        public_lookup_url=settings.public_lookup_url)
        app.state.notifier = notifier = Notifier(deliveries, policy, on_new_work=wake_dispatchers)
        app.state.deliveries, app.state.dispatchers, app.state.broker = deliveries, dispatchers, broker
        retry = Retry(settings.max_attempts, settings.backoff_base_seconds, settings.backoff_max_seconds)
        dispatchers += [
            Dispatcher(deliveries, providers, channel, policy=policy, retry=retry,
                       send_timeout=settings.send_timeout_seconds, lease_seconds=settings.lease_seconds,
                       concurrency=concurrency_for(channel, providers, settings), finished=announcer.wake,
                       counts=notifier.counts,
                       poll_seconds=settings.poll_seconds if channel in providers.by_channel else NO_PROVIDER_POLL_SECONDS,
                       overdue_seconds=0.0 if channel in providers.by_channel else settings.unconfigured_after_seconds)
            for channel in sorted(CHANNEL_NAMES)]
        register(broker, notifier, settings)
        await start_when_reachable(broker.start, stop=broker.stop)
        await start_when_reachable(producer.start)
        tasks = [asyncio.create_task(d.run(), name=f"dispatch-{d.channel}") for d in dispatchers]
        tasks.append(asyncio.create_task(announcer.run(), name="announce"))
        watchdog = asyncio.create_task(keep_consumers_reading(broker), name="keep-consumers-reading")
        settle_heap()
        report_tasks_on_signal()
        snapshot_heap_on_signal("notifier")
        try:
            yield
        finally:
            watchdog.cancel()  # before the broker stops: it must not start a consumer again
            await asyncio.gather(watchdog, return_exceptions=True)
            await broker.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*(d.stop() for d in dispatchers), *tasks, return_exceptions=True)
            await producer.stop()
            await clients.aclose()
            await pool.close()
            tracing.shutdown()

    app = FastAPI(title="1022 notifier", version="1", lifespan=lifespan)
    app.include_router(router)
    return app


def serve() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s notifier %(levelname)s %(name)s: %(message)s")
    settings = NotifierSettings()
    try:
        app = create_app(settings)
    except MissingSecret as refused:
        sys.exit(f"notifier: {refused}")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
