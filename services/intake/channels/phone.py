"""The 1022 hotline: operators typing in a call, and the callbot's transcripts when they are busy.

Each operator (and each callbot) has its own bearer token; the ``operator_id`` in the body must be
the one the token belongs to, so the audit trail says who typed the request in. The call id is the
channel key: the same call entered twice is one request.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import Field

from contracts.text import Text
from services.intake.auth import operator
from services.intake.channels.common import accept, categories, settings
from services.intake.domain import Problem, Submission, build_request, check_key, e164, sender_key

router = APIRouter()


class PhoneCall(Submission):
    """A call as the operator (or callbot) recorded it; ``phone`` is a call-back number if not the caller's."""

    call_id: Annotated[Text, Field(min_length=1, max_length=200)]
    caller_number: Annotated[Text, Field(min_length=1, max_length=32)]
    operator_id: Annotated[Text, Field(min_length=1, max_length=100)]
    ivr_branch: int = Field(ge=0, le=99)
    source: Literal["operator", "callbot"] = "operator"


# What a switchboard puts in place of the caller's number when the caller withholds it.
WITHHELD = frozenset({"anonymous", "withheld", "private", "restricted", "unknown", "unavailable"})


@router.post("/v1/channels/phone/requests", status_code=202)
async def phone_request(request: Request, body: PhoneCall,
                        authorization: Annotated[str | None, Header()] = None) -> Response:
    config = settings(request)
    signed_in = operator(authorization, config)
    if body.operator_id != signed_in:
        raise Problem("operator_id", "Mã điện thoại viên không khớp với mã xác thực",
                      "operator_id is not the operator this token belongs to", status=403)
    if body.ivr_branch not in config.phone_ivr_branches:
        allowed = ", ".join(map(str, config.phone_ivr_branches))
        raise Problem("ivr_branch", f"Nhánh tổng đài này không tiếp nhận phản ánh (nhận: {allowed})",
                      f"This IVR branch does not take requests (accepted: {allowed})")
    # A withheld number is a call like any other: the operator takes the request, with the number
    # the caller gives to be called back on, if any, and the caller hears the tracking code.
    caller = None if body.caller_number.casefold() in WITHHELD else e164(body.caller_number, "caller_number")
    submission = Submission(**body.model_dump(include=set(Submission.model_fields)) | {"phone": body.phone or caller})
    event = build_request("phone", check_key(body.call_id, "call_id"), submission, categories(request),
                          received_by=f"{body.source}:{signed_in}")
    # Counted by the number that called. The number a withheld caller gives is nobody's to vouch for,
    # like the web's typed numbers: it is counted apart, with the desk or callbot that took it, so
    # that calls saying "call me back on" a citizen's number cannot lock that citizen's own calls out.
    # A withheld call with neither is counted by its operator's desk, which a person staffs; a
    # callbot's (by its token, not by what it says it is), which takes the overflow, is not limited.
    if caller:
        sender = sender_key("phone", caller)
    elif event.citizen.phone:
        sender = sender_key("phone-given", f"{signed_in} {event.citizen.phone}")
    else:
        sender = None if signed_in in config.phone_callbots else sender_key("operator", signed_in)
    return await accept(request, event, sender, "caller_number" if caller else "phone")
