"""What intake's integration tests run against: a real intake app served by uvicorn on a loopback
socket, local HTTP stand-ins for the Zalo OA API and for oversight, and a reader of the real
``intake.requests.v1`` topic. Secrets (Zalo app id and OA key, token keys) are made per test run."""

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts import topics
from contracts.events import RequestReceived
from services.intake.main import create_app
from services.intake.settings import IntakeSettings
from services.intake.zalo_events import signature

ROOT = Path(__file__).resolve().parents[3]
TRACKING_CODE_KEY = secrets.token_urlsafe(32)  # made for this run: intake refuses to start without one


@dataclass
class Secrets:
    """This run's credentials for every channel, made here and never written anywhere."""

    zalo_app_id: str = field(default_factory=lambda: str(secrets.randbelow(10**18)))
    zalo_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    zalo_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    operators: dict[str, str] = field(default_factory=lambda: {
        "op-017": secrets.token_urlsafe(24), "op-042": secrets.token_urlsafe(24), "callbot-1": secrets.token_urlsafe(24)})
    open311_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    app_private_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def app_public_pem(self) -> str:
        return self.app_private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def app_token(self, sub: str = "user-1", phone: str = "0903123456", verified: bool = True,
                  expires_in: int = 600, key: Any = None, **extra: Any) -> str:
        claims = {"sub": sub, "phone": phone, "phone_verified": verified, "iat": int(time.time()),
                  "exp": int(time.time()) + expires_in, "iss": "tongdai1022-app", **extra}
        return jwt.encode(claims, key or self.app_private_key, algorithm="RS256")

    def zalo_headers(self, body: bytes, timestamp: str, secret: str | None = None) -> dict[str, str]:
        mac = signature(self.zalo_app_id, body, timestamp, secret or self.zalo_secret)
        return {"X-ZEvent-Signature": mac, "Content-Type": "application/json"}


def channel_env(keys: "Secrets") -> dict[str, str]:
    """This run's channel secrets and tracking-code key as the INTAKE_* variables intake reads."""
    return {"INTAKE_ZALO_APP_ID": keys.zalo_app_id, "INTAKE_ZALO_OA_SECRET_KEY": keys.zalo_secret,
            "INTAKE_ZALO_ACCESS_TOKEN": keys.zalo_token, "INTAKE_APP_JWT_ALGORITHM": "RS256",
            "INTAKE_APP_JWT_KEY": keys.app_public_pem(), "INTAKE_APP_JWT_ISSUER": "tongdai1022-app",
            "INTAKE_PHONE_OPERATOR_TOKENS": json.dumps(keys.operators), "INTAKE_PHONE_CALLBOTS": '["callbot-1"]',
            "INTAKE_OPEN311_API_KEYS": json.dumps([keys.open311_key]),
            "INTAKE_TRACKING_CODE_KEY": TRACKING_CODE_KEY}


class IntakeProcess:
    """``python -m services.intake`` as its own process, configured only through its environment."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "INTAKE_HOST": "127.0.0.1", "INTAKE_PORT": str(self.port),
                    "PYTHONPATH": str(ROOT)}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "IntakeProcess":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "services.intake"], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"intake did not become healthy; see {self.log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def unused_port() -> int:
    """A loopback port where nothing listens (for an unreachable Kafka)."""
    with free_socket() as sock:
        return sock.getsockname()[1]


def settings_for(kafka: str, pg_port: int, database: str, keys: Secrets, **overrides: Any) -> IntakeSettings:
    values: dict[str, Any] = dict(
        kafka_bootstrap=kafka, pg_host="127.0.0.1", pg_port=pg_port, pg_database=database, pg_user="mesh",
        pg_password="", publish_timeout_seconds=5.0, retry_after_seconds=3,
        zalo_app_id=keys.zalo_app_id, zalo_oa_secret_key=keys.zalo_secret, zalo_access_token=keys.zalo_token,
        zalo_sweep_seconds=0.5, app_jwt_algorithm="RS256", app_jwt_key=keys.app_public_pem(),
        app_jwt_issuer="tongdai1022-app", phone_operator_tokens=keys.operators, phone_callbots=["callbot-1"],
        open311_api_keys=[keys.open311_key],
        tracking_code_key=TRACKING_CODE_KEY)
    return IntakeSettings(**(values | overrides))


class RunningIntake:
    """The intake app served by uvicorn in a thread, on its own loopback socket."""

    def __init__(self, settings: IntakeSettings):
        self.sock = free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.settings = settings.model_copy(update={"public_url": self.url})
        self.app = create_app(self.settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, healthy: bool = True, timeout: float = 30) -> "RunningIntake":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("intake did not start")
            time.sleep(0.05)
        while healthy and httpx.get(self.url + "/healthz", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("intake did not become healthy (Kafka and PostgreSQL)")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


class StandIn:
    """A local HTTP server that records what it is sent and answers from ``respond(method, path, body)``
    (a JSON body, or a form's fields as a dict)."""

    def __init__(self, respond):
        self.received: list[tuple[str, str, dict[str, str], Any]] = []
        self.lock = threading.Lock()
        self.respond = respond
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                form = (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded")
                body = (dict(parse_qsl(raw.decode())) if form else json.loads(raw)) if raw else None
                with stand_in.lock:
                    stand_in.received.append((self.command, self.path, dict(self.headers), body))
                status, answer = stand_in.answer(self.command, self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - the stdlib's names

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        return self.respond(method, path, body)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [body for *_, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ZaloOA(StandIn):
    """The OA message API: takes every message (after ``delay`` seconds, or ``delay_for(text)`` when
    that is set) and keeps the texts per user.

    Once :meth:`authorize` gave the app's secret it is also Zalo's OAuth server (``POST
    /v4/oa/access_token``): each refresh token buys one pair, access tokens live ``lifetime``
    seconds (Zalo's answer comes after ``oauth_delay``), and the message API answers -216 to a token
    it did not issue, that expired or that was revoked. A refresh token tried again after its use
    is counted in ``reused``."""

    GATE_SECONDS = 60.0

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.delay_for: Callable[[str], float] | None = None
        # Cleared, the message API answers nothing until it is set again (at most GATE_SECONDS).
        self.gate = threading.Event()
        self.gate.set()
        self.app_secret: str | None = None
        self.lifetime = 90000
        self.oauth_delay = 0.0
        self.expiry: dict[str, float] = {}  # access token -> time.monotonic() it expires
        self.unspent: set[str] = set()
        self.spent: set[str] = set()
        self.reused: list[str] = []
        self.refreshes = 0
        self.took: list[tuple[str, str, str]] = []
        super().__init__(None)

    def authorize(self, app_secret: str, lifetime: int) -> str:
        """The refresh token an operator gets by authorizing the OA for the app."""
        self.app_secret, self.lifetime = app_secret, lifetime
        seed = secrets.token_urlsafe(24)
        self.unspent.add(seed)
        return seed

    def revoke(self) -> None:
        """Every access token issued so far stops working (as when the OA's authorization changes)."""
        with self.lock:
            self.expiry.clear()

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if path == "/v4/oa/access_token":
            answer = self._refresh(headers.get("secret_key"), body or {})
            time.sleep(self.oauth_delay)  # the token is spent, the answer still on its way
            return 200, answer
        delay_for = self.delay_for
        self.gate.wait(self.GATE_SECONDS)
        time.sleep(delay_for(body["message"]["text"]) if delay_for and body else self.delay)
        if method != "POST" or path != "/v3.0/oa/message/cs":
            return 404, {"error": -1, "message": "no such API"}
        token = headers.get("access_token", "")
        with self.lock:
            if self.app_secret is not None and self.expiry.get(token, 0) < time.monotonic():
                return 200, {"error": -216, "message": "Access token is invalid"}
            self.took.append((body["recipient"]["user_id"], body["message"]["text"], token))
        return 200, {"error": 0, "message": "Success", "data": {"message_id": secrets.token_hex(8)}}

    def _refresh(self, secret_key: str | None, form: dict[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        with self.lock:
            if secret_key != self.app_secret or form.get("grant_type") != "refresh_token":
                return {"error": -14002, "error_name": "Invalid app secret"}
            if token in self.spent:
                self.reused.append(token)
            if token not in self.unspent:
                return {"error": -14014, "error_name": "Invalid refresh token"}
            self.unspent.discard(token)
            self.spent.add(token)
            self.refreshes += 1
            access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            self.expiry[access] = time.monotonic() + self.lifetime
            self.unspent.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": str(self.lifetime)}

    def taken(self, user_id: str) -> list[tuple[str, str]]:
        """The texts to ``user_id`` that the API took, in order, each with the access token it came with."""
        with self.lock:
            return [(text, token) for to, text, token in self.took if to == user_id]

    def texts_to(self, user_id: str) -> list[str]:
        return [b["message"]["text"] for b in self.bodies()
                if b and "recipient" in b and b["recipient"]["user_id"] == user_id]


class KafkaTail:
    """Reads ``intake.requests.v1`` from where it ended when the tail was opened."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.consumer: AIOKafkaConsumer | None = None
        self.seen: list[RequestReceived] = []

    async def open(self) -> "KafkaTail":
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self.consumer.start()
        partitions = [TopicPartition(topics.INTAKE_REQUESTS, p)
                      for p in sorted(self.consumer.partitions_for_topic(topics.INTAKE_REQUESTS)
                                      or await self._partitions())]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end now, before anything is sent
            await self.consumer.position(tp)
        return self

    async def _partitions(self) -> set[int]:
        await self.consumer._client.force_metadata_update()  # noqa: SLF001 - no public way to wait for it
        return self.consumer.partitions_for_topic(topics.INTAKE_REQUESTS) or set()

    async def read(self, until, timeout: float = 20.0) -> list[RequestReceived]:
        """Read until ``until(seen)`` holds or ``timeout`` passes; everything read so far."""
        deadline = time.monotonic() + timeout
        while not until(self.seen) and time.monotonic() < deadline:
            await self._fetch()
        return self.seen

    async def _fetch(self) -> None:
        for records in (await self.consumer.getmany(timeout_ms=200)).values():
            for record in records:
                try:
                    self.seen.append(RequestReceived.model_validate_json(record.value or b""))
                except ValueError:  # other suites put garbage here on purpose (dead-letter tests)
                    continue

    async def settle(self, quiet: float = 1.5) -> list[RequestReceived]:
        """Everything on the topic now (what intake answered 202 for is there, however slowly it is
        fetched), then whatever arrives until nothing more has for ``quiet`` seconds."""
        partitions = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(partitions)
        deadline = time.monotonic() + 30
        while [tp for tp in partitions if await self.consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "intake.requests not read to its end in 30 s"
            await self._fetch()
        while True:
            before = len(self.seen)
            await self.read(lambda _: False, timeout=quiet)
            if len(self.seen) == before:
                return self.seen

    def with_ids(self, request_ids: set[str]) -> list[RequestReceived]:
        return [r for r in self.seen if str(r.request_id) in request_ids]

    async def close(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


def run(coro):
    """Run a coroutine from synchronous test code (hypothesis drives sync functions)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
