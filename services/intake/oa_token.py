"""The Zalo OA access token, kept fresh for every intake instance and lent to the notifier.

An OA access token lives 25 hours. A refresh token buys a new pair once and is spent by it (Zalo
OAuth v4: ``POST https://oauth.zaloapp.com/v4/oa/access_token``, header ``secret_key`` (the app's
secret), form ``app_id``, ``grant_type=refresh_token``, ``refresh_token``; the answer carries
``access_token``, ``refresh_token`` and ``expires_in`` seconds). Since a use spends it, the pair
has one holder: the ``zalo_oa_token`` row in intake's database. Whoever refreshes holds the row's
lock until Zalo answers and the new pair is written, in one transaction, so no two instances
spend one refresh token. Only a crash between Zalo's answer and that commit loses the pair; then
an operator authorizes the OA again and sets a new ``INTAKE_ZALO_REFRESH_TOKEN``.

That variable seeds the row. A seed is taken once: an instance started later with the same one,
or with an older one (a restart during a rolling change), leaves the kept pair alone.

Each instance refreshes ahead of expiry (``INTAKE_ZALO_TOKEN_REFRESH_AHEAD_SECONDS``, at most half
a token's life), also while nothing is sent, since the notifier borrows the token; and at once
when Zalo refuses the token in use.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from contracts.zalo_token import digest

log = logging.getLogger(__name__)

# After a refresh that Zalo refused or did not answer, or a database that did not answer, the next
# try waits this long: a failing server is not asked again for every reply.
QUIET_AFTER_FAILURE_SECONDS = 30.0
# Zalo's answer may come slowly, and one that comes too late has spent the refresh token all the
# same: the refresh waits far longer than a send, in a task of its own that no sender's time-out
# cancels.
REFRESH_TIMEOUT_SECONDS = 20.0
# A lifetime for a token whose answer gave none that can be read: refreshed again at half of it.
UNREAD_LIFETIME = timedelta(hours=1)
DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
REFUSALS_KEPT = 64


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_at: datetime
    issued_at: datetime

    def due(self, ahead: timedelta, now: datetime) -> bool:
        """Time to refresh: within ``ahead`` of expiry, or past half its life if that comes first."""
        return now >= self.expires_at - min(ahead, (self.expires_at - self.issued_at) / 2)


class RefreshFailed(Exception):
    """Zalo gave no new pair; the kept one stays."""


class KeptToken:
    """The :class:`~contracts.zalo_token.TokenSource` over the ``zalo_oa_token`` row.

    Looking at the row and refreshing run in one task at a time (``_work``), owned here: a sender
    waits for it with its own time-out, shielded, so a sender given up on never cuts a refresh
    short between Zalo's answer and the write. A token still good is handed out while it is
    refreshed."""

    def __init__(self, pool: Callable[[], asyncpg.Pool | None], http: httpx.AsyncClient, *, seed: str,
                 oauth_url: str, app_id: str, app_secret: str, ahead: timedelta):
        self.pool, self.http, self.oauth_url = pool, http, oauth_url
        self.seed, self.app_id, self.app_secret, self.ahead = seed, app_id, app_secret, ahead
        self._seeded = False
        self._kept: Token | None = None
        # A pair Zalo gave that could not be written yet, with the refresh token it spent.
        self._unstored: tuple[Token, str, str] | None = None
        # Digests of tokens Zalo refused: never handed out again, replaced at the next look.
        self._refused: set[str] = set()
        self._work: asyncio.Task | None = None
        self._quiet_until = 0.0  # time.monotonic(): no new look before this, after a failure

    async def current(self) -> str | None:
        token = await self.token()
        return token.access_token or None if token else None

    async def refused(self, access_token: str) -> None:
        """Start replacing ``access_token`` if it is the one in use; a sender's next try has the new one."""
        self._refuse(digest(access_token))
        self._start()

    def _refuse(self, refused: str) -> None:
        # A borrower names any digest it likes: a few are kept, cleared at each refresh.
        if len(self._refused) < REFUSALS_KEPT:
            self._refused.add(refused)

    async def token(self, refused: str | None = None) -> Token | None:
        """The token to send with: the kept one while it is good (refreshed in the background when
        due), else the one the row holds or a refresh gives, waited for; None rather than one Zalo
        refused (``refused`` names one, by its digest)."""
        if refused is not None:
            self._refuse(refused)
        kept, now = self._kept, datetime.now(UTC)
        if self._good(kept, now):
            if kept.due(self.ahead, now) or self._unstored is not None:
                self._start()
            return kept
        for _ in range(2):  # a look already under way may have read the row before the refusal came
            work = self._start()
            if work is None:
                break
            await asyncio.shield(work)
            if self._good(self._kept, datetime.now(UTC)):
                break
        return self._kept if self._kept is None or digest(self._kept.access_token) not in self._refused else None

    def _good(self, kept: Token | None, now: datetime) -> bool:
        return kept is not None and bool(kept.access_token) and now < kept.expires_at \
            and digest(kept.access_token) not in self._refused

    def _start(self) -> asyncio.Task | None:
        """The look under way, or a new one unless a failure asked for quiet."""
        if self._work is None or self._work.done():
            if time.monotonic() < self._quiet_until:
                return None
            self._work = asyncio.create_task(self._look_and_keep(), name="zalo-oa-token")
        return self._work

    async def settle(self, timeout: float = REFRESH_TIMEOUT_SECONDS + 2) -> None:
        """At shutdown: let a look under way finish, so a refresh Zalo answered is written, and
        write a pair held only here; say so loudly if it cannot be."""
        if self._work is not None and not self._work.done():
            await asyncio.wait([self._work], timeout=timeout)
        if self._unstored is not None and (pool := self.pool()) is not None:
            try:
                await self._store(pool, *self._unstored)
            except Exception as error:  # noqa: BLE001 - said below, loudly: nothing else can be done
                log.critical("the refreshed Zalo OA token is lost (%s): authorize the OA again and set a new"
                             " INTAKE_ZALO_REFRESH_TOKEN", type(error).__name__)

    async def _look_and_keep(self) -> None:
        pool = self.pool()
        if pool is None:
            return
        try:
            if self._unstored is not None:
                await self._store(pool, *self._unstored)
            if not self._seeded:
                await self._take_seed(pool)
            self._kept = await self._look(pool)
        except Exception as error:  # noqa: BLE001 - the next look, after a quiet while, tries again
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_SECONDS
            log.warning("Zalo OA token not read (%s); the one at hand is used", type(error).__name__)

    async def _look(self, pool: asyncpg.Pool) -> Token | None:
        fresh: Token | None = None
        try:
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow("SELECT access_token, refresh_token, expires_at, refreshed_at"
                                          " FROM zalo_oa_token FOR UPDATE")
                if row is None:
                    return None
                kept = Token(row["access_token"], row["expires_at"], row["refreshed_at"])
                if not (kept.due(self.ahead, datetime.now(UTC)) or digest(kept.access_token) in self._refused):
                    return kept
                try:
                    fresh, refresh_token = await self._refresh(row["refresh_token"])
                except RefreshFailed as failure:
                    self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_SECONDS
                    log.error("Zalo OA token not refreshed (%s); the kept one, good until %s, stays", failure,
                              kept.expires_at.isoformat())
                    return kept
                await conn.execute("UPDATE zalo_oa_token SET access_token = $1, refresh_token = $2,"
                                   " expires_at = $3, refreshed_at = $4", fresh.access_token, refresh_token,
                                   fresh.expires_at, fresh.issued_at)
        except DATABASE_ERRORS as error:
            if fresh is None:
                raise
            # Zalo spent the old refresh token: the new pair is all there is. Used from here, and
            # written as soon as PostgreSQL takes it (every look tries first).
            self._unstored = (fresh, refresh_token, row["refresh_token"])
            log.error("Zalo OA token refreshed but not stored (%s); it is used and stored later", type(error).__name__)
        self._refused.clear()  # digests of tokens that will not come back
        log.info("Zalo OA token refreshed; good until %s", fresh.expires_at.isoformat())
        return fresh

    async def _store(self, pool: asyncpg.Pool, fresh: Token, refresh_token: str, spent: str) -> None:
        """Write a pair a look could not, over the row it replaces (not over a seed set since)."""
        status = await pool.execute("UPDATE zalo_oa_token SET access_token = $1, refresh_token = $2,"
                                    " expires_at = $3, refreshed_at = $4 WHERE refresh_token = $5", fresh.access_token,
                                    refresh_token, fresh.expires_at, fresh.issued_at, spent)
        self._unstored = None
        if status == "UPDATE 1":
            log.info("the refreshed Zalo OA token is stored")
        else:  # a new seed was set meanwhile: it is the one kept
            log.warning("the refreshed Zalo OA token is not stored: a new seed replaced the pair it came from")

    async def _refresh(self, refresh_token: str) -> tuple[Token, str]:
        """A new pair from Zalo for ``refresh_token``, which this spends."""
        issued = datetime.now(UTC)
        form = {"app_id": self.app_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
        try:
            response = await self.http.post(self.oauth_url, data=form, headers={"secret_key": self.app_secret},
                                            timeout=REFRESH_TIMEOUT_SECONDS)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise RefreshFailed(type(error).__name__) from error
        answer = answer if isinstance(answer, dict) else {}
        access, refresh = answer.get("access_token"), answer.get("refresh_token")
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            # Zalo's error name and code say why (a spent or expired refresh token, a wrong secret);
            # the answer holds no token then.
            name = str(answer.get("error_name") or answer.get("message") or "")[:100]
            raise RefreshFailed(f"HTTP {response.status_code}, Zalo error {answer.get('error')} {name}".rstrip())
        try:
            lifetime = timedelta(seconds=int(float(answer.get("expires_in"))))  # Zalo sends "90000"
        except (TypeError, ValueError, OverflowError):
            lifetime = timedelta(0)
        if lifetime <= timedelta(0):  # the pair is good and the old refresh token spent: kept all the same
            log.warning("Zalo gave no lifetime that can be read with its token; taken as %s", UNREAD_LIFETIME)
            lifetime = UNREAD_LIFETIME
        return Token(access, issued + lifetime, issued), refresh

    async def _take_seed(self, pool: asyncpg.Pool) -> None:
        """Keep the pair the configured refresh token buys, unless that seed was taken before."""
        async with pool.acquire() as conn, conn.transaction():
            new = await conn.fetchval("INSERT INTO zalo_oa_seeds (seed_sha256) VALUES ($1)"
                                      " ON CONFLICT DO NOTHING RETURNING true", digest(self.seed))
            if new:  # due at once: its first use buys the pair, and learns when it expires
                await conn.execute(
                    "INSERT INTO zalo_oa_token (access_token, refresh_token, expires_at, refreshed_at)"
                    " VALUES ('', $1, now(), now()) ON CONFLICT (one) DO UPDATE SET access_token = '',"
                    " refresh_token = $1, expires_at = now(), refreshed_at = now()", self.seed)
                log.info("Zalo OA token seeded from the configuration")
        self._seeded = True

    async def keep_fresh_forever(self, every_seconds: float = QUIET_AFTER_FAILURE_SECONDS) -> None:
        """Look every ``every_seconds`` whether a refresh is due, so the token the notifier borrows
        stays good while intake itself sends nothing."""
        while True:
            try:
                await self.token()
            except Exception as error:  # noqa: BLE001 - the next look tries again
                log.warning("Zalo OA token not looked at (%s)", type(error).__name__)
            await asyncio.sleep(every_seconds)
