"""What every channel route needs from the running app: the use case, the categories, the sender."""

from fastapi import Request
from fastapi.responses import JSONResponse

from contracts.categories import Category
from contracts.categories import load as load_categories
from contracts.events import RequestReceived
from services.intake.application import Intake
from services.intake.domain import sender_key
from services.intake.settings import IntakeSettings


def intake(request: Request) -> Intake:
    return request.app.state.intake


def settings(request: Request) -> IntakeSettings:
    return request.app.state.settings


def categories(request: Request) -> dict[str, Category]:
    return load_categories(settings(request).categories_file)


def client_sender(request: Request) -> str:
    """The rate-limit key of an anonymous sender: its address (behind a proxy, the forwarded one)."""
    return sender_key("client", request.client.host if request.client else "unknown")


def typed_sender(request: Request, typed: str | None) -> str:
    """The rate-limit key of an anonymous sender who typed ``typed`` (a phone number, a device id):
    that value from that address, or the address alone. Nobody checks what the public types, so
    keyed by the number alone anyone could lock a citizen out of the hotline by sending 20 requests
    with it; keyed by the address alone, everyone behind one carrier's NAT would share 20."""
    if not typed:
        return client_sender(request)
    return sender_key("typed", f"{request.client.host if request.client else 'unknown'} {typed}")



async def accept(request: Request, event: RequestReceived, sender: str | None,
                 sender_field: str = "phone") -> JSONResponse:
    """Submit and answer 202 with the receipt, once Kafka holds the request."""
    receipt = await intake(request).submit(event, sender, sender_field)
    return JSONResponse(receipt, status_code=202)
