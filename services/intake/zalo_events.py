"""Zalo OA webhook events: checking that Zalo sent them, and reading what the citizen did (no I/O).

Zalo signs each event: ``X-ZEvent-Signature: mac=<hex>`` where the hex is the SHA-256 of
app id + the raw body + the event's ``timestamp`` + the OA secret key. Ids and timestamps arrive
as strings (the timestamp in milliseconds). An event whose signature does not match, whose app id
is not ours, or whose timestamp is outside the allowed age is refused before anything reads it.
"""

import hashlib
import hmac
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from services.intake.dialogue import Incoming
from services.intake.domain import Problem, nfc, web_link

# Events that carry something the citizen did; the rest (delivery and seen receipts, the OA's own
# messages echoed back) change nothing in a dialogue and are only acknowledged.
DIALOGUE_EVENTS = {
    "user_send_text": "text", "user_send_link": "text", "user_send_image": "attachment",
    "user_send_file": "attachment", "user_send_audio": "attachment", "user_send_video": "attachment",
    "user_send_location": "location", "user_send_sticker": "sticker", "user_send_gif": "sticker",
    "user_send_business_card": "sticker", "follow": "follow", "unfollow": "unfollow",
    "user_submit_info": "info",
}


def signature(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    """The header value Zalo sends for ``body``: ``mac=`` + sha256(app_id + body + timestamp + secret)."""
    digest = hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret_key.encode()).hexdigest()
    return "mac=" + digest


def refused(reason_vi: str, reason_en: str) -> Problem:
    return Problem("X-ZEvent-Signature", reason_vi, reason_en, status=401)


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Party(_Loose):
    id: str = ""


class Message(_Loose):
    msg_id: str | None = None
    text: str | None = None
    attachments: list[dict[str, Any]] = []


class ZaloEvent(_Loose):
    app_id: str = ""
    event_name: str
    timestamp: str
    sender: Party | None = None
    recipient: Party | None = None
    follower: Party | None = None
    message: Message | None = None
    info: dict[str, Any] | None = None

    @property
    def user_id(self) -> str:
        """The citizen's id for this OA: the follower, else whoever is not the OA."""
        if self.follower and self.follower.id:
            return self.follower.id
        if self.event_name.startswith("oa_send"):
            return self.recipient.id if self.recipient else ""
        return self.sender.id if self.sender else ""

    @property
    def key(self) -> str:
        """The event's natural key: Zalo's ``msg_id``, or what identifies events that have none."""
        if self.message and self.message.msg_id:
            return self.message.msg_id
        return f"{self.event_name}:{self.user_id}:{self.timestamp}"

    @property
    def sent_at_ms(self) -> int:
        return int(self.timestamp)

    def incoming(self) -> Incoming | None:
        """What the dialogue sees of this event, or None for events that do not concern it."""
        kind = DIALOGUE_EVENTS.get(self.event_name)
        if kind is None:
            return None
        message = self.message or Message()
        return Incoming(kind=kind, msg_id=self.key, at=self.sent_at_ms / 1000, text=_text(message.text or ""),
                        attachments=_attachments(message.attachments), location=_location(message.attachments),
                        info={str(k): _text(str(v)) for k, v in (self.info or {}).items() if v is not None})


def _text(text: str) -> str:
    """What a citizen typed, as text: JSON may carry lone surrogates, which are not characters."""
    return nfc("".join(c for c in text if not "\ud800" <= c <= "\udfff"))


def _attachments(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for item in items:
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        url = payload.get("url") or payload.get("href")
        # A link a unit could not open is dropped here: kept, it failed the request at its
        # confirmation, and the whole conversation with it.
        if isinstance(url, str) and _openable(_text(url)):
            out.append({"url": _text(url), "media_type": _text(str(item.get("type") or "file"))[:50],
                        "name": _text(str(payload.get("name") or ""))[:200]})
    return out


def _openable(url: str) -> bool:
    try:
        web_link(url)
    except ValueError:
        return False
    return True


def _location(items: list[dict[str, Any]]) -> dict[str, float] | None:
    for item in items:
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        coordinates = payload.get("coordinates")
        if item.get("type") == "location" and isinstance(coordinates, dict):
            try:
                lat, lon = float(coordinates["latitude"]), float(coordinates["longitude"])
            except (KeyError, TypeError, ValueError):
                return None
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                return {"latitude": lat, "longitude": lon}
    return None


def verified_event(body: bytes, header: str | None, app_id: str, secret_key: str,
                   now_ms: int, max_age_ms: int) -> ZaloEvent:
    """The event in ``body`` if Zalo signed it for our app recently; otherwise a 401 Problem.

    Nothing about an unverified body is disclosed: every failure before the signature check reads
    the same.
    """
    forged = refused("Chữ ký sự kiện Zalo không hợp lệ", "The Zalo event signature does not verify")
    if not header:
        raise forged
    try:
        raw = json.loads(body)
        timestamp = str(raw["timestamp"]) if isinstance(raw, dict) else ""
    except (ValueError, KeyError, RecursionError):  # JSON nested past what json.loads reads
        raise forged from None
    expected = signature(app_id, body, timestamp, secret_key)
    if not hmac.compare_digest(header.strip().encode(), expected.encode()):
        raise forged
    try:
        event = ZaloEvent.model_validate(raw)
        sent_at = event.sent_at_ms
    except (ValidationError, ValueError):
        raise Problem("body", "Sự kiện Zalo không đúng định dạng", "Malformed Zalo event", status=400) from None
    if event.app_id and event.app_id != app_id:
        raise forged
    if event.event_name in DIALOGUE_EVENTS and not all(_sane(v) for v in (event.key, event.user_id)):
        raise Problem("body", "Mã sự kiện hoặc người gửi không hợp lệ", "Malformed event, sender or message id",
                      status=400)
    if abs(now_ms - sent_at) > max_age_ms:
        raise refused("Sự kiện Zalo đã quá hạn (có thể bị gửi lại)", "Stale Zalo event (possibly a replay)")
    return event


def _sane(value: str) -> bool:
    """An id we key tables by: printable, short (Zalo's ids are digits and hex)."""
    return 0 < len(value) <= 300 and value.isprintable()
