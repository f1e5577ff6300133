"""Open311 GeoReport v2 under ``/open311/v2/``, so existing 311 apps can file and follow requests.

Services are our categories; a posted request is RequestReceived on channel ``open311`` and its
``service_request_id`` is the tracking code; a request's status is oversight's public view of it.
Bodies may be form-encoded (as the specification says) or JSON; answers are JSON only. Errors are
GeoReport's list of ``{code, description}``, with the field and both languages added.
"""

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.events import Attachment
from contracts.text import VIETNAM, Text
from services.intake.auth import open311_client
from services.intake.application import Unavailable, database_answers
from services.intake.channels.common import categories, intake, settings, typed_sender
from services.intake.channels.open311_status import request_status
from services.intake.domain import CheckedLocation, Problem, Submission, build_request, check_key
from services.intake.problems import Invalid, problems_of

router = APIRouter(prefix="/open311/v2")
# Our names for what GeoReport calls otherwise, so a refusal names the field the client sent.
# Lists of codes looked up at once in an instance (each of up to 50 lookups, one after another),
# and how long one waits for its turn before 503: the other connections stay the single codes'.
LIST_LOOKUPS = 2
LIST_WAIT_SECONDS = 5.0
GEOREPORT_NAMES = {"category": "service_code", "address": "address_string", "attachments": "media_url",
                   "full_name": "first_name", "location": "lat", "channel_key": "Idempotency-Key"}


class GeoReportRequest(BaseModel):
    """The fields of a GeoReport v2 POST that intake uses; the rest (attribute[...], ...) is ignored.

    What the citizen wrote is cleaned before its length is checked, as in :class:`Submission`.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    api_key: str | None = Field(None, max_length=200)
    jurisdiction_id: str | None = Field(None, max_length=200)
    service_code: Annotated[Text, Field(min_length=1, max_length=64)]
    lat: float | None = Field(None, ge=-90, le=90)
    long: float | None = Field(None, ge=-180, le=180)
    address_string: Annotated[Text, Field(max_length=500)] | None = None
    email: Annotated[Text, Field(max_length=254)] | None = None
    device_id: Annotated[Text, Field(max_length=200)] | None = None
    account_id: Annotated[Text, Field(max_length=200)] | None = None
    first_name: Annotated[Text, Field(max_length=100)] | None = None
    last_name: Annotated[Text, Field(max_length=100)] | None = None
    phone: Annotated[Text, Field(max_length=32)] | None = None
    description: Annotated[Text, Field(min_length=1, max_length=4000)]
    media_url: str | None = Field(None, max_length=2000)

    def submission(self) -> Submission:
        if not self.address_string and (self.lat is None or self.long is None):
            raise Problem("address_string", "Cần địa chỉ hoặc tọa độ (lat, long)", "An address_string or lat and long is required", status=400)
        location = CheckedLocation(latitude=self.lat, longitude=self.long) if self.lat is not None and self.long is not None else None
        # Each name may be 100 characters; a submission's name 200, so the two with their space are cut to it.
        name = " ".join(p for p in (self.first_name, self.last_name) if p)[:200] or None
        return Submission(full_name=name, phone=self.phone, email=self.email, category=self.service_code,
                          address=self.address_string or f"{self.lat}, {self.long}", description=self.description,
                          location=location, attachments=[Attachment(url=self.media_url)] if self.media_url else [])

    def natural_key(self, day: date) -> str:
        """Without an Idempotency-Key, the very same report sent again on the same day (Vietnam's) is
        the same request: a client's retry. Any field changed, or another day, is a new report: the
        same trouble reported again weeks later once got back the first, long closed, request's code
        and opened nothing, and a retry with another name was refused for a key the client never sent."""
        fields = self.model_dump(mode="json", exclude={"api_key", "jurisdiction_id"})
        return "content-" + hashlib.sha256(json.dumps([day.isoformat(), fields], sort_keys=True).encode()).hexdigest()[:40]


async def _fields(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()  # named in any case
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            data = json.loads(await request.body())
        except (ValueError, RecursionError):  # RecursionError: nested past what json.loads reads
            raise Problem("body", "Nội dung không phải JSON hợp lệ", "The body is not valid JSON", status=400) from None
        if not isinstance(data, dict):
            raise Problem("body", "Phải là một đối tượng JSON", "Must be a JSON object", status=400)
        return data
    form = await request.form(max_files=0, max_fields=100)
    # A form sends every input, filled or not; an empty one is a field not given.
    return {k: v for k, v in form.items() if isinstance(v, str) and v.strip()}


def check_jurisdiction(request: Request, jurisdiction_id: str | None) -> None:
    """One city answers here; a client asking for another gets GeoReport's 404."""
    if jurisdiction_id and jurisdiction_id != settings(request).open311_jurisdiction_id:
        raise Problem("jurisdiction_id", "Không phục vụ đơn vị hành chính này",
                      f"Unknown jurisdiction; this is {settings(request).open311_jurisdiction_id}", status=404)


@router.get("/services.json")
async def services(request: Request, jurisdiction_id: str | None = None) -> list[dict[str, Any]]:
    check_jurisdiction(request, jurisdiction_id)
    return [{"service_code": c.code, "service_name": c.vi, "description": c.en, "metadata": False,
             "type": "realtime", "keywords": c.code.replace("_", ","), "group": "1022"}
            for c in categories(request).values()]


@router.get("/services/{service_code}.json")
async def service_definition(request: Request, service_code: str) -> dict[str, Any]:
    if service_code not in categories(request):
        raise Problem("service_code", "Không có dịch vụ này", "No such service_code", status=404)
    return {"service_code": service_code, "attributes": []}


@router.post("/requests.json", status_code=202)
async def post_request(request: Request,
                       idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
    try:
        report = GeoReportRequest.model_validate(await _fields(request))
        open311_client(report.api_key, settings(request))
        check_jurisdiction(request, report.jurisdiction_id)
        key = check_key(idempotency_key) if idempotency_key is not None else report.natural_key(datetime.now(VIETNAM).date())
        event = build_request("open311", key, report.submission(), categories(request))
    except (ValidationError, Problem) as error:
        # GeoReport answers 400 for a request it cannot take, 403 for a bad api_key.
        status = error.status if isinstance(error, Problem) and error.status != 422 else 400
        raise Invalid(problems_of(error, GEOREPORT_NAMES), status) from None
    sender = typed_sender(request, event.citizen.phone or report.device_id or report.email)
    try:
        receipt = await intake(request).submit(event, sender)
    except Problem as error:
        if error.status != 422:
            raise
        # An Idempotency-Key used before for another report: GeoReport's 400, naming the header.
        raise Invalid(problems_of(error, GEOREPORT_NAMES), 400) from None
    notice = "Đã tiếp nhận / Received by the 1022 centre"
    return JSONResponse([{"service_request_id": receipt["tracking_code"], "service_notice": notice,
                          "account_id": report.account_id}], status_code=202)


async def _status(request: Request, service_request_id: str) -> dict[str, Any]:
    with database_answers():
        return await request_status(request.app.state.lookups, settings(request), categories(request),
                                    intake(request).receipts, service_request_id)


@router.get("/requests/{service_request_id}.json")
async def get_request(request: Request, service_request_id: str) -> list[dict[str, Any]]:
    return [await _status(request, service_request_id)]


@router.get("/requests.json")
async def get_requests(request: Request,
                       service_request_id: Annotated[str | None, Query(max_length=1100)] = None) -> list[dict[str, Any]]:
    """Requests by id only: listing other citizens' requests is not offered."""
    if not service_request_id:
        raise Problem("service_request_id", "Cần mã tra cứu (service_request_id)", "service_request_id is required", status=400)
    codes = service_request_id.split(",")[:50]
    found = []
    async with _list_turn(request.app.state.list_lookups) if len(codes) > 1 else contextlib.nullcontext():
        for code in codes:
            try:
                found.append(await _status(request, code))
            except Problem as problem:
                if problem.status != 404:
                    raise
    return found


@contextlib.asynccontextmanager
async def _list_turn(gate: asyncio.Semaphore) -> AsyncIterator[None]:
    """A list is up to 50 lookups, and anyone may send one: lists take turns, so that a flood of
    them cannot take every connection to oversight from the citizens looking up their one code."""
    try:
        await asyncio.wait_for(gate.acquire(), LIST_WAIT_SECONDS)
    except TimeoutError:
        raise Unavailable("busy with other lists of codes") from None
    try:
        yield
    finally:
        gate.release()
