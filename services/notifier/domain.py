"""Who hears what about which event, and the words they get (pure; Vietnamese first, English second)."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from contracts import ids

TEMPLATES = {
    "assignment": ("[1022] Phản ánh mới {code} giao cho {handler}: {category} tại {address}. Hạn xử lý: {resolve_by}.",
                   "[1022] New case {code} for {handler}: {category} at {address}. Due: {resolve_by}."),
    "received": ("Tổng đài 1022 đã nhận phản ánh của bạn. Mã tra cứu: {code}.",
                 "The 1022 hotline received your request. Tracking code: {code}."),
    "routed": ("Phản ánh {code} đã được chuyển đến {unit}.", "Request {code} was sent to {unit}."),
    "resolved": ("Phản ánh {code} đã có kết quả từ {unit}: {answer}", "Request {code} was resolved by {unit}: {answer}"),
    "escalated": ("Phản ánh {code} chậm hạn; đơn vị đang khẩn trương xử lý. Xin lỗi bạn vì sự chậm trễ.",
                  "Request {code} is late; the unit is hurrying. We apologise for the delay."),
    "handler_escalated": ("[1022] Phản ánh {code} quá hạn ({deadline}), đã báo {level}.",
                          "[1022] Case {code} missed its {deadline} deadline; {level} was told."),
}


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient on one channel, for one event. Its id is its delivery key."""

    delivery_id: UUID
    case_id: UUID
    cause_event_id: UUID
    correlation_id: UUID
    recipient: str  # handler | unit | citizen
    channel: str  # webhook | email | zalo | sms | push
    target: str
    text: str
    payload: dict[str, Any]
    traceparent: str | None = None


def render(template: str, language: str, **values: Any) -> str:
    vi, en = TEMPLATES[template]
    return (en if language == "en" else vi).format(**values)


def _delivery(event: Any, recipient: str, channel: str, target: str, text: str, payload: dict[str, Any]) -> Delivery:
    return Delivery(ids.event_id("delivery", event.event_id, recipient, channel, target), event.case_id, event.event_id,
                    event.correlation_id, recipient, channel, target, text, payload, event.traceparent)


def for_assignment(event: Any, unit_webhook_url: str) -> list[Delivery]:
    """A new assignment goes to the unit's district service, which passes it to its handler."""
    text = render("assignment", "vi", code=event.tracking_code, handler=event.handler.name, category=event.category,
                  address=event.address, resolve_by=event.resolve_by.isoformat())
    out = []
    if unit_webhook_url:
        out.append(_delivery(event, "unit", "webhook", unit_webhook_url.format(unit_id=event.unit.id), text,
                             event.model_dump(mode="json")))
    return out


def citizen_channel(channel: str, citizen: dict[str, Any]) -> tuple[str, str] | None:
    """Answer citizens on the channel they came from; web-form citizens by SMS, else e-mail."""
    if channel == "zalo" and citizen.get("zalo_user_id"):
        return "zalo", citizen["zalo_user_id"]
    if channel == "app" and citizen.get("app_user_id"):
        return "push", citizen["app_user_id"]
    if citizen.get("phone"):
        return "sms", citizen["phone"]
    if citizen.get("email"):
        return "email", citizen["email"]
    return None
