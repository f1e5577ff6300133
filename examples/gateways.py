"""Stand-ins for the city's message gateways (SMS, app push, the Zalo OA message API) and a mail
server, for demos: they accept what the notifier sends, recognise a repeat by its Idempotency-Key
(``X-Idempotency-Key`` by e-mail), and show it.

Run: ``python -m examples.gateways`` (HTTP on ``GATEWAYS_PORT``, default 8006; SMTP on
``GATEWAYS_SMTP_PORT``, default 8025); ``GET /messages`` lists what arrived.
"""

import os
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


def create_app(inbox: Inbox | None = None) -> FastAPI:
    app = FastAPI(title="message gateway stand-ins")
    inbox = inbox or Inbox()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "messages": len(inbox.seen)}

    @app.post("/{channel}")
    async def accept(channel: str, request: Request, idempotency_key: str | None = Header(None)) -> dict:
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
        uvicorn.run(create_app(shared), host="127.0.0.1", port=int(os.environ.get("GATEWAYS_PORT", "8006")),
                    log_level="warning")
    finally:
        mail.stop()
