"""Local stand-ins for the notifier's providers: an HTTP server for district webhooks and the SMS,
push and Zalo gateways, and an SMTP server (aiosmtpd). Both record everything they are given.

The HTTP stand-in behaves like a receiver that honours ``Idempotency-Key``: it records a request
when it arrives — before any scripted delay, as a provider that has accepted a message would — so
a key that arrives twice is a message the receiver recognises and drops.
"""

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import uvicorn

from tests.support.mailbox import MailBox  # noqa: F401 - the SMTP stand-in, shared with the fault suite

# (status, JSON body, seconds to wait before answering) for a request and the n-th arrival of its key.
Answer = tuple[int, Any, float]
Rule = Callable[["Received", int], Answer]


@dataclass(frozen=True)
class Received:
    path: str
    key: str
    body: dict[str, Any]
    headers: dict[str, str]  # lower-case names
    at: float
    alongside: int = 0  # requests on the same path that had arrived and were not answered yet


class StandIn:
    """An ASGI app on uvicorn, in a thread of the test process, on a free loopback port."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.times_seen: Counter = Counter()
        self.unanswered: Counter = Counter()  # by path
        self.rules: list[tuple[str, Rule]] = []
        self.lock = threading.Lock()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, interface="asgi3", lifespan="off",
                                                     log_level="warning", backlog=1024))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the HTTP stand-in did not start")
            time.sleep(0.01)

    def answer(self, path_prefix: str, rule: Rule) -> None:
        """Script the answers for paths starting with ``path_prefix`` (the latest matching rule wins)."""
        self.rules.insert(0, (path_prefix, rule))

    async def app(self, scope: dict, receive: Callable, send: Callable) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, answer, delay = self._arrive(scope["path"], headers.get("idempotency-key", ""),
                                             json.loads(body or b"{}"), headers)
        try:
            if delay:
                await asyncio.sleep(delay)
            data = json.dumps(answer).encode()
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})
        finally:
            with self.lock:
                self.unanswered[scope["path"]] -= 1

    def _arrive(self, path: str, key: str, body: dict, headers: dict) -> Answer:
        with self.lock:
            self.times_seen[key] += 1
            nth = self.times_seen[key]
            request = Received(path, key, body, headers, time.monotonic(), self.unanswered[path])
            self.unanswered[path] += 1
            self.received.append(request)
        for prefix, rule in self.rules:
            if path.startswith(prefix):
                return rule(request, nth)
        return 200, ({"error": 0, "message": "Success"} if path.startswith("/zalo") else {"ok": True}), 0.0

    def about(self, prefix: str, cases: Collection[Any]) -> list[Received]:
        """What arrived on paths under ``prefix`` about these cases (other suites' cases reach the
        same notifier through the shared broker). Zalo's body names no case: its user id is the filter."""
        wanted = {str(c) for c in cases}
        with self.lock:
            return [r for r in self.received if r.path.startswith(prefix)
                    and (r.body.get("case_id") in wanted or r.body.get("recipient", {}).get("user_id") in wanted)]

    def arrivals(self, prefix: str, cases: Collection[Any]) -> Counter:
        """How many times each key arrived, on paths under ``prefix``, about these cases."""
        return Counter(r.key for r in self.about(prefix, cases))

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
