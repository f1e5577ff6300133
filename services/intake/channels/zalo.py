"""The Zalo Official Account webhook: Zalo posts every event of the OA "1022 TPHCM" here.

The answer comes as soon as the event is verified and recorded (well under Zalo's 2-second
budget); the chatbot's dialogue and its replies run afterwards (:mod:`services.intake.chatbot`).
The notifier borrows the OA access token intake keeps fresh at ``POST /internal/zalo/access-token``.
"""

import time
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.intake.auth import token_borrower
from services.intake.channels.common import settings
from services.intake.domain import Problem
from services.intake.oa_token import KeptToken
from services.intake.zalo_events import verified_event

router = APIRouter()


@router.post("/v1/channels/zalo/webhook")
async def zalo_webhook(request: Request,
                       x_zevent_signature: Annotated[str | None, Header()] = None) -> JSONResponse:
    config = settings(request)
    secret = config.zalo_oa_secret_key.get_secret_value()
    if not config.zalo_app_id or not secret:
        raise Problem("X-ZEvent-Signature", "Kênh Zalo chưa được cấu hình", "The Zalo channel is not configured here",
                      status=503)
    body = await request.body()
    event = verified_event(body, x_zevent_signature, config.zalo_app_id, secret, now_ms=int(time.time() * 1000),
                           max_age_ms=config.zalo_max_event_age_seconds * 1000)
    if event.incoming() is not None:
        await request.app.state.chatbot.receive(event, body)
    return JSONResponse({"error": 0, "message": "ok"})


class Borrowing(BaseModel):
    # The digest (contracts.zalo_token.digest) of a token Zalo refused: replaced if still in use.
    refused: str | None = Field(None, max_length=64)


@router.post("/internal/zalo/access-token")
async def lend_access_token(request: Request, borrowing: Borrowing | None = None,
                            authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
    """The token intake sends with: the kept one, refreshed first if ``refused`` names it, with when
    it expires; or the fixed one, which has no known end."""
    token_borrower(authorization, settings(request))
    source = request.app.state.oa_token
    if isinstance(source, KeptToken):
        kept = await source.token(refused=borrowing.refused if borrowing else None)
        access_token, expires_at = (kept.access_token, kept.expires_at.isoformat()) if kept else (None, None)
    else:
        access_token, expires_at = (await source.current() if source else None), None
    if not access_token:
        raise Problem("", "Chưa có mã truy cập Zalo OA", "No OA access token is kept here", status=503,
                      headers={"Retry-After": "30"})
    return JSONResponse({"access_token": access_token, "expires_at": expires_at}, headers={"Cache-Control": "no-store"})
