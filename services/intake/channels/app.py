"""The "Tổng đài 1022" mobile app: a citizen signed in with a phone number verified by OTP.

The app's login service signs a JWT (``sub``, ``phone``, ``phone_verified: true``, ``exp``); intake
checks it with the configured key and algorithm. The phone number of the request is the verified
one from the token, and the app's ``Idempotency-Key`` is scoped to the user, so one user cannot
collide with another's key.
"""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from services.intake.auth import app_citizen
from services.intake.channels.common import accept, categories, settings
from services.intake.domain import Problem, Submission, build_request, check_key, sender_key

router = APIRouter()


def scoped(user_id: str) -> str:
    """The user's part of a channel key: a subject with a slash in it is escaped, so that no two
    users' keys meet ("a/b" with key "c" and "a" with key "b/c"). Other subjects are as they were,
    and with them every request id already given."""
    return user_id.replace("%", "%25").replace("/", "%2F")


@router.post("/v1/channels/app/requests", status_code=202)
async def app_request(request: Request, body: Submission,
                      authorization: Annotated[str | None, Header()] = None,
                      idempotency_key: Annotated[str | None, Header()] = None) -> Response:
    citizen = app_citizen(authorization, settings(request))
    if body.phone:
        raise Problem("phone", "Số điện thoại lấy từ tài khoản đã xác thực OTP, không gửi kèm nội dung",
                      "The phone number comes from the OTP-verified account; do not send one")
    key = check_key(idempotency_key)
    submission = body.model_copy(update={"phone": citizen.phone})
    event = build_request("app", f"{scoped(citizen.user_id)}/{key}", submission, categories(request),
                          citizen_extra={"app_user_id": citizen.user_id})
    return await accept(request, event, sender_key("app", citizen.user_id), "Authorization")
