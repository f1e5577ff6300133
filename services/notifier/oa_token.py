"""The Zalo OA access token, borrowed from intake, which keeps it fresh (:mod:`services.intake.oa_token`).

The token is kept here until shortly before it expires, and at most :data:`KEEP_AT_MOST_SECONDS`,
so a notifier goes on sending through an intake outage of hours. When Zalo refuses it, intake is
told which one (by digest) and gives the one now in use, refreshed if that was the one refused.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime

import aiohttp
import orjson

from contracts.zalo_token import digest

log = logging.getLogger(__name__)

# Asked again this long before the token expires, and at least this often.
ASK_BEFORE_EXPIRY_SECONDS = 600.0
KEEP_AT_MOST_SECONDS = 3600.0
# After intake did not lend one, not asked again for this long: the sends wait meanwhile.
QUIET_AFTER_FAILURE_SECONDS = 5.0
# Intake answers a refusal once Zalo has given a new pair, which may take it up to 20 s.
REFUSAL_ANSWER_SECONDS = 30.0


class BorrowedToken:
    """The :class:`~contracts.zalo_token.TokenSource` over intake's ``POST /internal/zalo/access-token``."""

    def __init__(self, client: aiohttp.ClientSession, url: str, key: str):
        self.client, self.url, self.key = client, url, key
        self._token: str | None = None
        self._keep_until = 0.0  # time.monotonic()
        self._quiet_until = 0.0
        self._asking = asyncio.Lock()
        self._replacing: asyncio.Task | None = None

    async def current(self) -> str | None:
        if self._fresh():
            return self._token
        async with self._asking:
            if not self._fresh() and time.monotonic() >= self._quiet_until:
                await self._borrow(refused=None)
            return self._token

    def _fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._keep_until

    async def refused(self, access_token: str) -> None:
        """Ask intake for another in the background: the refused send goes on to its next try, which
        waits for the answer (as long as it waits for a token at all)."""
        if access_token == self._token and (self._replacing is None or self._replacing.done()):
            self._replacing = asyncio.create_task(self._replace(access_token), name="zalo-oa-token")

    async def _replace(self, access_token: str) -> None:
        async with self._asking:
            if access_token == self._token:  # else another send has replaced it already
                self._token = None
                await self._borrow(refused=digest(access_token))

    async def close(self) -> None:
        """At shutdown, before the HTTP session closes: a replacement under way is dropped."""
        if self._replacing is not None:
            self._replacing.cancel()
            await asyncio.gather(self._replacing, return_exceptions=True)

    async def _borrow(self, refused: str | None) -> None:
        body = {"refused": refused} if refused else {}
        # A refusal waits for intake's refresh; a plain borrow takes what intake holds (the session's time-out).
        longer = {"timeout": aiohttp.ClientTimeout(total=REFUSAL_ANSWER_SECONDS)} if refused else {}
        try:
            async with self.client.post(self.url, data=orjson.dumps(body), **longer, headers={
                    "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}) as response:
                answer = await response.json(content_type=None) if response.status == 200 else None
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            answer, status = None, type(error).__name__
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_SECONDS
            log.warning("no Zalo OA access token from intake (%s)", status)
            return
        self._token, self._keep_until = token, time.monotonic() + self._lifetime(answer.get("expires_at"))

    @staticmethod
    def _lifetime(expires_at: object) -> float:
        try:
            left = (datetime.fromisoformat(str(expires_at)) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            left = KEEP_AT_MOST_SECONDS
        # A token near its end (intake could not refresh it) is still asked about only now and then.
        return max(QUIET_AFTER_FAILURE_SECONDS, min(KEEP_AT_MOST_SECONDS, left - ASK_BEFORE_EXPIRY_SECONDS))
