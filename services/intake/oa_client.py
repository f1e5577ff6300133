"""The Zalo OA message API, as far as the chatbot needs it: send a text to a user who wrote to us.

``POST {base}/v3.0/oa/message/cs`` with the OA access token in the ``access_token`` header and
``{"recipient": {"user_id": ...}, "message": {"text": ...}}``. Zalo answers HTTP 200 even when it
refuses; the refusal is a non-zero ``error`` in the body.
"""

import httpx

from contracts.zalo_token import TOKEN_REFUSED, TokenSource, token_within

# Zalo cuts consultation messages at 2,000 characters.
MAX_TEXT = 2000
# Zalo's rate limit: a later try may pass.
RATE_LIMITED = -32


class SendFailed(Exception):
    """The OA API did not take the message; ``retry`` says whether a later try may work."""

    def __init__(self, reason: str, retry: bool):
        super().__init__(reason)
        self.retry = retry


class OAClient:
    def __init__(self, client: httpx.AsyncClient, base_url: str, token: TokenSource, token_wait: float):
        self.client = client
        self.url = base_url.rstrip("/") + "/v3.0/oa/message/cs"
        # How long a send waits for a token (intake's first, at its start): a part of the send's time.
        self.token, self.token_wait = token, token_wait

    async def send_text(self, user_id: str, text: str) -> None:
        access_token = await token_within(self.token, self.token_wait)
        if access_token is None:
            raise SendFailed("no OA access token to hand", retry=True)
        body = {"recipient": {"user_id": user_id}, "message": {"text": text[:MAX_TEXT]}}
        try:
            response = await self.client.post(self.url, json=body, headers={"access_token": access_token})
        except httpx.HTTPError as error:
            raise SendFailed(f"{type(error).__name__} talking to the OA API", retry=True) from error
        if response.status_code >= 500 or response.status_code == 429:
            raise SendFailed(f"HTTP {response.status_code}", retry=True)
        if response.status_code >= 400:
            # The status alone: Zalo's words may quote the reply, with the citizen's name and code in it.
            raise SendFailed(f"HTTP {response.status_code}", retry=False)
        try:
            answer = response.json()
        except ValueError:
            raise SendFailed("the OA API answered something that is not JSON", retry=True) from None
        error = answer.get("error", 0) if isinstance(answer, dict) else 0
        if error in TOKEN_REFUSED:  # replaced or withdrawn: the next try goes with a fresh one
            await self.token.refused(access_token)
        if error != 0:
            # Anything else (the user blocked the OA, a message Zalo will not take) will not improve.
            raise SendFailed(f"OA API error {str(error)[:20]}",
                             retry=error == RATE_LIMITED or error in TOKEN_REFUSED)
