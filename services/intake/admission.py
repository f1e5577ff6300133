"""Admission control: past a number of submissions in flight, intake answers 503 at once.

Without it an overloaded intake queues every request it is sent, and each waits longer than the
last until its sender gives up — a minute at five times its capacity, with nobody told to come back.
With it, the submissions it can serve are served at their usual speed and the rest are refused
once their bodies are in, before any is parsed, with Retry-After, which the channel adapters
honour (retrying with the same Idempotency-Key accepts the request once). A submission whose body
is still arriving holds no place: a few hundred connections that send headers and then nothing
once held every place, and every channel was refused until they closed.

Only the channel APIs are limited, where a program sends and retries. The web form (a person
waiting at a page) and the Zalo webhook (whose platform does not send an event twice) are not.

Each channel's body is also capped (:class:`BodyLimit`): it is read only up to its channel's
limit, and a larger one is refused with 413 as soon as it passes it, whether it declared its
length or not. Read and parsed whole, a 50 MB JSON body took intake 190 MB of memory. A body that
does not arrive in time is refused with 408.
"""

import asyncio
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
LIMITED = frozenset({"/v1/channels/web/requests", "/v1/channels/app/requests", "/v1/channels/phone/requests",
                     "/open311/v2/requests.json"})
REPORT_EVERY_SECONDS = 10.0


class AdmissionLimit:
    """ASGI middleware: at most ``limit`` limited submissions in this process; ``refuse`` answers the rest."""

    def __init__(self, app: ASGIApp, limit: int, refuse: ASGIApp):
        self.app, self.limit, self.refuse = app, limit, refuse
        self.in_flight = 0
        self.refused = 0
        self._reported_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in LIMITED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self._count_refusal()
            await self.refuse(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _count_refusal(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._reported_at >= REPORT_EVERY_SECONDS:
            self._reported_at = now
            log.warning("overloaded: %d submissions in flight, %d refused with 503 so far", self.in_flight, self.refused)


class BodyLimit:
    """ASGI middleware: a POST to one of ``limits``' paths is read here, up to that path's limit,
    and handed on whole; ``refuse`` answers one that declares or sends more, reading no further,
    and ``too_slow`` one whose body has not arrived in ``read_seconds``."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], refuse: ASGIApp, too_slow: ASGIApp,
                 read_seconds: float):
        self.app, self.limits, self.refuse, self.too_slow = app, limits, refuse, too_slow
        self.read_seconds = read_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self.refuse(scope, receive, send)
            return
        body, more = bytearray(), True
        try:
            async with asyncio.timeout(self.read_seconds):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # nobody is left to answer
                    body += message.get("body", b"")
                    if len(body) > limit:
                        break
                    more = message.get("more_body", False)
        except TimeoutError:
            await self.too_slow(scope, receive, send)
            return
        if len(body) > limit:
            await self.refuse(scope, receive, send)
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then whatever the server says next (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
