"""A GeoReport v2 request read back: oversight's public status of a tracking code, in GeoReport terms.

Oversight learns of a request a moment after intake accepted it; in that moment a request intake
already holds is reported ``open`` (received) rather than unknown.
"""

from typing import Any

import httpx

from contracts import ids
from contracts.categories import Category
from services.intake.application import Unavailable
from services.intake.domain import Problem
from services.intake.settings import IntakeSettings
from services.intake.store import Receipts

FINISHED = {"resolved", "closed"}


def _not_found() -> Problem:
    return Problem("service_request_id", "Không có phản ánh với mã tra cứu này", "No request with this id", status=404)


async def request_status(http: httpx.AsyncClient, settings: IntakeSettings, categories: dict[str, Category],
                         receipts: Receipts, service_request_id: str) -> dict[str, Any]:
    code = ids.normalise_tracking_code(service_request_id)
    if code is None:
        raise _not_found()
    url = f"{settings.oversight_url.rstrip('/')}/v1/public/requests/{code}"
    try:
        response = await http.get(url, timeout=settings.oversight_timeout_seconds)
    except httpx.HTTPError as error:
        raise Unavailable(f"oversight: {type(error).__name__}") from error
    if response.status_code == 404:
        if await receipts.known(code):
            return {"service_request_id": code, "status": "open", "status_notes": "Đã tiếp nhận / Received"}
        raise _not_found()
    if response.status_code == 409:  # a code an older intake gave to more than one request
        raise Problem("service_request_id", "Mã này được cấp cho nhiều phản ánh, vui lòng gọi 1022",
                      "This id was given to more than one request: please call 1022", status=409)
    if response.status_code != 200:
        raise Unavailable(f"oversight answered {response.status_code}")
    try:
        public = response.json()
    except ValueError:
        public = None
    if not isinstance(public, dict):
        raise Unavailable("oversight answered something that is not a status")
    status = public.get("status", "")
    category = categories.get(public.get("category") or "")
    return {
        "service_request_id": code,
        "status": "closed" if status in FINISHED else "open",
        "status_notes": f"{public.get('status_vi', status)} / {public.get('status_en', status)}",
        "service_code": public.get("category"),
        "service_name": category.vi if category else None,
        "agency_responsible": public.get("unit"),
        "requested_datetime": public.get("received_at"),
        "updated_datetime": public.get("updated_at"),
        "expected_datetime": public.get("expected_by") or public.get("resolve_by"),  # an older oversight: the routing's
        "service_notice": public.get("answer"),
    }
