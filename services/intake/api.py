"""Intake's HTTP edge: health, the category list, every channel's routes, and how refusals read.

Every refusal names the field and the reason in Vietnamese and English; Open311 paths get them in
GeoReport's error list instead of ``{"errors": [...]}``.
"""

import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from services.intake.admission import LIMITED, AdmissionLimit, BodyLimit
from services.intake.application import Unavailable
from services.intake.channels import app, open311, phone, web, zalo
from services.intake.channels.common import categories as categories_of
from services.intake.channels.common import intake
from services.intake.domain import Problem
from services.intake.problems import Invalid, from_validation, open311_errors
from services.intake.settings import IntakeSettings

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """Ready (200) once intake has connected to Kafka and PostgreSQL; ``kafka`` and ``postgres``
    say whether each answers now: an instance that lost either after it started said "ok" while it
    answered every citizen 503. They are fields, not the status code: every instance shares the
    two, and a balancer that took them all out in an outage refused what they take through it
    (the Zalo webhook holds events, the dialogue records them) and, under load, all at once."""
    running = intake(request)
    connected = running.connected
    postgres = await running.database_answers_now()
    failing = running.publish_failing_since
    kafka = running.kafka_ready and (failing is None or await running.kafka_answers_now())
    body = {"status": "ok" if kafka and postgres else "degraded", "kafka": kafka, "postgres": postgres}
    if failing is not None:
        body["kafka_failing_seconds"] = round(time.time() - failing, 1)
    return JSONResponse(body, status_code=200 if connected else 503)


@router.get("/v1/categories")
async def categories(request: Request) -> list[dict[str, str]]:
    return [c.model_dump() for c in categories_of(request).values()]


def install_routes(application: FastAPI) -> None:
    application.include_router(router)
    for channel in (web, zalo, app, phone, open311):
        application.include_router(channel.router)


def _refusal(request: Request, status: int, problems: list[dict[str, str]],
             headers: dict[str, str] | None = None) -> JSONResponse:
    return _refusal_at(request.url.path, status, problems, headers)


def _refusal_at(path: str, status: int, problems: list[dict[str, str]],
                headers: dict[str, str] | None = None) -> JSONResponse:
    body: Any = {"errors": problems} if not path.startswith("/open311/") else open311_errors(status, problems)
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(application: FastAPI) -> None:
    @application.exception_handler(Problem)
    async def _problem(request: Request, error: Problem) -> JSONResponse:
        return _refusal(request, error.status, [error.as_dict()], error.headers)

    @application.exception_handler(Invalid)
    async def _invalid_all(request: Request, error: Invalid) -> JSONResponse:
        return _refusal(request, error.status, error.problems)

    @application.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        status = 400 if request.url.path.startswith("/open311/") else 422
        return _refusal(request, status, from_validation(list(error.errors())))

    @application.exception_handler(HTTPException)
    async def _unread(request: Request, error: HTTPException) -> Response:
        """A channel's body the framework could not read (not UTF-8, a file where none is taken, too
        many fields) is refused in the channel's own shape, so a client reads why as it reads the rest."""
        path = request.url.path
        if not path.startswith(("/v1/channels/", "/open311/")):
            return await http_exception_handler(request, error)
        problem = ({"field": "body", "reason_vi": "Không đọc được nội dung gửi", "reason_en": str(error.detail)}
                   if error.status_code == 400 else
                   {"field": "", "reason_vi": "Yêu cầu không hợp lệ", "reason_en": str(error.detail)})
        return _refusal(request, error.status_code, [problem], error.headers)

    @application.exception_handler(Unavailable)
    async def _unavailable(request: Request, _: Unavailable) -> JSONResponse:
        problem = {"field": "", "reason_vi": "Hệ thống tạm bận, vui lòng thử lại",
                   "reason_en": "Temporarily unavailable, retry later"}
        return _refusal(request, 503, [problem], {"Retry-After": str(request.app.state.settings.retry_after_seconds)})


def install_admission_limit(application: FastAPI, limit: int, retry_after_seconds: int) -> None:
    """Refuse channel submissions past ``limit`` in flight with 503, before parsing their bodies."""
    problem = {"field": "", "reason_vi": "Hệ thống đang quá tải, vui lòng thử lại sau ít giây",
               "reason_en": "Too many requests in progress; retry after the time given"}

    # The same answer every time for a path: made once, not per refusal.
    answers = {path: _refusal_at(path, 503, [problem], {"Retry-After": str(retry_after_seconds)}) for path in LIMITED}
    application.add_middleware(AdmissionLimit, limit=limit, refuse=_by_path(answers))


def _by_path(answers: dict[str, ASGIApp]) -> ASGIApp:
    """An ASGI app that gives each path its answer, made beforehand."""
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await answers[scope["path"]](scope, receive, send)

    return answer


def install_body_limit(application: FastAPI, settings: IntakeSettings) -> None:
    """Refuse a channel's body past its limit with 413, reading no further than the limit, and one
    that has not arrived in ``body_read_seconds`` with 408."""
    limits = {"/v1/channels/web/requests": settings.max_body_bytes,
              "/v1/channels/app/requests": settings.max_body_bytes,
              "/v1/channels/phone/requests": settings.max_body_bytes,
              "/open311/v2/requests.json": settings.open311_max_body_bytes,
              "/v1/channels/zalo/webhook": settings.zalo_max_body_bytes,
              "/internal/zalo/access-token": 1024}  # read before its key is checked
    answers = {path: _refusal_at(path, 413, [{"field": "body", "reason_vi": f"Nội dung gửi quá lớn (tối đa {limit} byte)",
                                              "reason_en": f"The body is too large (at most {limit} bytes)"}])
               for path, limit in limits.items()}
    seconds = settings.body_read_seconds
    late = {"field": "body", "reason_vi": f"Nội dung gửi không đến kịp trong {seconds:g} giây",
            "reason_en": f"The body did not arrive within {seconds:g} seconds"}
    slow = {path: _refusal_at(path, 408, [late], {"Connection": "close"}) for path in limits}
    application.add_middleware(BodyLimit, limits=limits, refuse=_by_path(answers), too_slow=_by_path(slow),
                               read_seconds=seconds)
