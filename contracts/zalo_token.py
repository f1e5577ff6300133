"""Where intake and the notifier get the Zalo OA access token they send with.

Zalo's OA access tokens live 25 hours. Intake keeps the token fresh (:mod:`services.intake.oa_token`)
and lends it to the notifier over ``POST /internal/zalo/access-token``. A sender that Zalo refuses
for a bad token says which token it was, by :func:`digest`, so that only the token in use is
replaced and a second refusal of an old token changes nothing.

Which of Zalo's error codes mean a bad token is not settled by any table we could check: -216
("Access token is invalid") is the one Zalo's OA API table gives, and -124 the one its v3
answers are reported with. Refreshing ahead of expiry does not depend on them; they only make a
token Zalo stopped taking early (a changed authorization) be replaced at once.
"""

import asyncio
import hashlib
from typing import Protocol

# Zalo's answers when the access token is not (or no longer) valid.
TOKEN_REFUSED = frozenset({-216, -124})


class TokenSource(Protocol):
    async def current(self) -> str | None:
        """The token to send with now; None when there is none to hand."""

    async def refused(self, access_token: str) -> None:
        """Zalo refused ``access_token``: get another if it is still the one in use."""


class FixedToken:
    """A token set in the configuration and replaced by hand: what a refusal can do nothing about."""

    def __init__(self, access_token: str):
        self.access_token = access_token

    async def current(self) -> str | None:
        return self.access_token or None

    async def refused(self, access_token: str) -> None:
        return None


async def token_within(source: TokenSource, seconds: float) -> str | None:
    """The token to send with, or None when none comes within ``seconds`` (a part of a send's time):
    a send that waited too long for its token is one that did not go out."""
    try:
        return await asyncio.wait_for(source.current(), seconds)
    except TimeoutError:
        return None


def digest(access_token: str) -> str:
    """How a refused token is named on the wire: not the token itself."""
    return hashlib.sha256(access_token.encode()).hexdigest()
