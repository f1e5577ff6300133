"""Stand-ins for the city's message gateways (SMS, app push, the Zalo OA message API) and a mail
server, for demos: they accept what the notifier sends, recognise a repeat by its Idempotency-Key
(``X-Idempotency-Key`` by e-mail), and show it.

With ``GATEWAYS_ZALO_APP_SECRET`` set they also stand in for Zalo's OAuth server
(``POST /zalo/oauth``: a refresh token buys an access token and a new refresh token, once), and
the Zalo message API takes only the access tokens issued here, answering -216 to any other; intake
keeps its token fresh against them and the notifier borrows it from intake, as in a deployment.
A refresh token from before the stand-ins' start is taken too (they keep nothing across a
restart, intake does): after a restart intake's token is refused once and refreshed.

Run: ``python -m examples.gateways`` (HTTP on ``GATEWAYS_PORT``, default 8006; SMTP on
``GATEWAYS_SMTP_PORT``, default 8025); ``GET /messages`` lists what arrived.
"""

import os
import secrets
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.controller import Controller
from fastapi import FastAPI, Header, Request

MAX_KEPT = 1000


class Inbox:
    """What arrived, once per key."""

    def __init__(self) -> None:
        self.seen: dict[str, dict] = {}

    def keep(self, key: str | None, message: dict) -> bool:
        key = key or f"unkeyed-{len(self.seen)}"
        first = key not in self.seen
        if first and len(self.seen) < MAX_KEPT:
            self.seen[key] = message
        return first


class MailHandler:
    """aiosmtpd's handler: every mail becomes one message in the inbox."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        mail = message_from_bytes(envelope.content, policy=policy.default)
        self.inbox.keep(mail["X-Idempotency-Key"], {"channel": "email", "to": ", ".join(envelope.rcpt_tos),
                                                    "subject": str(mail["Subject"]),
                                                    "text": mail.get_content().strip()})
        return "250 OK"


class ZaloTokens:
    """Zalo's OAuth as far as an OA needs it: one use per refresh token, access tokens for 25 hours."""

    LIFETIME_SECONDS = 25 * 3600

    def __init__(self, app_secret: str) -> None:
        self.app_secret = app_secret
        self.spent: set[str] = set()
        self.issued: set[str] = set()

    def refresh(self, secret_key: str | None, form: dict[str, str]) -> dict:
        token = form.get("refresh_token", "")
        if secret_key != self.app_secret or form.get("grant_type") != "refresh_token":
            return {"error": -14002, "error_name": "Invalid app secret or grant"}
        if not token or token in self.spent:
            return {"error": -14014, "error_name": "Invalid refresh token"}
        self.spent.add(token)
        access = secrets.token_urlsafe(24)
        self.issued.add(access)
        return {"access_token": access, "refresh_token": secrets.token_urlsafe(24),
                "expires_in": str(self.LIFETIME_SECONDS)}


def create_app(inbox: Inbox | None = None, zalo: ZaloTokens | None = None) -> FastAPI:
    app = FastAPI(title="message gateway stand-ins")
    inbox = inbox or Inbox()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "messages": len(inbox.seen)}

    @app.post("/zalo/oauth")
    async def zalo_oauth(request: Request,
                         secret_key: str | None = Header(None, convert_underscores=False)) -> dict:
        if zalo is None:
            return {"error": -14002, "error_name": "No Zalo app here"}
        return zalo.refresh(secret_key, {k: str(v) for k, v in (await request.form()).items()})

    @app.post("/v3.0/oa/message/cs")  # the OA message API, at the address intake's client uses
    async def zalo_message(request: Request, idempotency_key: str | None = Header(None)) -> dict:
        return await accept("zalo", request, idempotency_key)

    @app.post("/{channel}")
    async def accept(channel: str, request: Request, idempotency_key: str | None = Header(None)) -> dict:
        if channel == "zalo" and zalo is not None and request.headers.get("access_token") not in zalo.issued:
            return {"error": -216, "message": "Access token is invalid"}
        body = await request.json()
        to = body.get("to") or (body.get("recipient") or {}).get("user_id")  # gateways / the Zalo API
        text = body.get("text") or (body.get("message") or {}).get("text")
        first = inbox.keep(idempotency_key, {"channel": channel, "to": to, "text": text, "case_id": body.get("case_id")})
        return {"ok": True, "first_time": first}

    @app.get("/messages")
    async def messages() -> list[dict]:
        return list(inbox.seen.values())

    return app


if __name__ == "__main__":
    import uvicorn

    shared = Inbox()
    mail = Controller(MailHandler(shared), hostname="127.0.0.1", port=int(os.environ.get("GATEWAYS_SMTP_PORT", "8025")))
    mail.start()
    try:
        app_secret = os.environ.get("GATEWAYS_ZALO_APP_SECRET", "")
        uvicorn.run(create_app(shared, ZaloTokens(app_secret) if app_secret else None), host="127.0.0.1",
                    port=int(os.environ.get("GATEWAYS_PORT", "8006")),
                    log_level="warning")
    finally:
        mail.stop()
