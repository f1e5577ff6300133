"""Where intake and the notifier get the Zalo OA access token they send with.

Zalo's OA access tokens live 25 hours. Intake keeps the token fresh (:mod:`services.intake.oa_token`)
and lends it to the notifier over ``POST /internal/zalo/access-token``. A sender that Zalo refuses
for a bad token (error -201) says which token it was, by :func:`digest`, so that only the token
in use is replaced and a second refusal of an old token changes nothing.
"""

import hashlib
from typing import Protocol

# Zalo's answer when the access token is not (or no longer) valid.
INVALID_TOKEN = -201


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


def digest(access_token: str) -> str:
    """How a refused token is named on the wire: not the token itself."""
    return hashlib.sha256(access_token.encode()).hexdigest()
