"""Intake's HTTP edge: one route per channel, all ending in :class:`Intake.submit`."""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from contracts.categories import load as load_categories
from services.intake.application import Intake, Unavailable
from services.intake.domain import Problem, Submission, build_request, check_key, receipt

router = APIRouter()


def _intake(request: Request) -> Intake:
    return request.app.state.intake


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    ok = _intake(request).connected
    return JSONResponse({"status": "ok" if ok else "degraded", "kafka": ok}, status_code=200 if ok else 503)


@router.get("/v1/categories")
async def categories(request: Request) -> list[dict[str, str]]:
    return [c.model_dump() for c in load_categories(request.app.state.settings.categories_file).values()]


@router.post("/v1/channels/web/requests", status_code=202)
async def web_request(request: Request, body: Submission,
                      idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
    settings = request.app.state.settings
    event = build_request("web", check_key(idempotency_key), body, load_categories(settings.categories_file))
    await _intake(request).submit(event)
    return JSONResponse(receipt(event), status_code=202)


def install_error_handlers(app) -> None:
    """Every refusal names the field and the reason, in Vietnamese and English."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, error: Problem) -> JSONResponse:
        return JSONResponse({"errors": [error.as_dict()]}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                   "reason_vi": "Dữ liệu không hợp lệ: " + e["msg"], "reason_en": e["msg"]} for e in error.errors()]
        return JSONResponse({"errors": errors}, status_code=422)

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, _: Unavailable) -> JSONResponse:
        retry = str(request.app.state.settings.retry_after_seconds)
        return JSONResponse({"errors": [{"field": "", "reason_vi": "Hệ thống tạm bận, vui lòng thử lại",
                                         "reason_en": "Temporarily unavailable, retry later"}]},
                            status_code=503, headers={"Retry-After": retry})
