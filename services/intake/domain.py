"""What a valid request is: normalisation and validation shared by every channel (no I/O)."""

import hashlib
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts import ids
from contracts.categories import Category
from contracts.envelope import utcnow
from contracts.events import Attachment, Channel, Citizen, Location, RequestReceived
from contracts.text import Text, nfc

PRODUCER = "intake"


class CheckedLocation(Location):
    """A location as intake accepts it: on Earth, with codes of a sane length. The contract's
    :class:`~contracts.events.Location` stays as lenient as it was, so the router never refuses a
    request accepted before these checks."""

    latitude: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    longitude: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    ward_code: Annotated[Text, Field(max_length=32)] | None = None
    district_code: Annotated[Text, Field(max_length=32)] | None = None


class Problem(Exception):
    """A request we refuse, with the field at fault and the reason in Vietnamese and English."""

    def __init__(self, field: str, vi: str, en: str, status: int = 422, headers: dict[str, str] | None = None):
        super().__init__(f"{field}: {en}")
        self.field, self.vi, self.en, self.status = field, vi, en, status
        self.headers = headers or {}

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason_vi": self.vi, "reason_en": self.en}


def too_many(field: str, retry_after: int) -> Problem:
    """The refusal of a sender over its rate limit (429), telling it when to come back."""
    return Problem(field, f"Gửi quá nhiều yêu cầu, vui lòng thử lại sau {retry_after} giây",
                   f"Too many requests from this sender; retry in {retry_after} s", status=429,
                   headers={"Retry-After": str(retry_after)})


def e164(raw: str, field: str = "phone") -> str:
    """A Vietnamese or international phone number in E.164, or a Problem."""
    try:
        number = phonenumbers.parse(raw, "VN")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise Problem(field, "Số điện thoại không hợp lệ", "Not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def web_link(url: str) -> str:
    """An attachment link must be http(s) with a host: anything else is not something a unit can open."""
    url = nfc(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise ValueError("must be an http(s) link of at most 2000 characters")
    return url


class Submission(BaseModel):
    """What every channel hands over once it has authenticated the sender.

    Text is cleaned (:data:`~contracts.text.Text`: NFC, control characters dropped) before its
    length is checked, so a limit counts the characters a reader sees, however they were typed.
    The limits sit inside ``Annotated`` for that: pydantic checks those of a ``Field()`` default
    before the type's own validators, on the text as it came.
    """

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    full_name: Annotated[Text, Field(max_length=200)] | None = None
    phone: Annotated[Text, Field(max_length=32)] | None = None
    email: Annotated[Text, Field(max_length=254)] | None = None
    address: Annotated[Text, Field(min_length=3, max_length=500)]
    category: Annotated[Text, Field(min_length=1, max_length=64)]
    description: Annotated[Text, Field(min_length=3, max_length=5000)]
    is_public: bool = False
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)
    location: CheckedLocation | None = None
    language: Text = "vi"

    @field_validator("attachments")
    @classmethod
    def _links(cls, value: list[Attachment]) -> list[Attachment]:
        return [Attachment(url=web_link(a.url), media_type=a.media_type and nfc(a.media_type)[:100],
                           name=a.name and nfc(a.name)[:200]) for a in value]


def _addressable(email: str) -> bool:
    """One "@" between a name and a domain, nothing blank or unprintable: a line break kept in it
    became a header of its own in the mail the citizen was sent."""
    name, at, domain = email.partition("@")
    readable = all(c.isprintable() and not c.isspace() for c in email)
    return bool(name and at and domain) and "@" not in domain and readable


def build_request(channel: Channel, channel_key: str, submission: Submission, categories: dict[str, Category],
                  *, citizen_extra: dict[str, str] | None = None, received_at: datetime | None = None,
                  trace: dict[str, str] | None = None, received_by: str | None = None) -> RequestReceived:
    """The RequestReceived for a submission; ids come from ``channel_key`` so retries agree. Its
    tracking code is a stand-in, derived without intake's key: ``Intake.submit`` gives the request
    the code its receipt holds before anything is published or answered."""
    if submission.category not in categories:
        raise Problem("category", "Lĩnh vực không có trong danh sách: " + ", ".join(categories),
                      "Unknown category; valid ones: " + ", ".join(categories))
    phone = e164(submission.phone) if submission.phone else None
    if submission.email and not _addressable(submission.email):
        raise Problem("email", "Địa chỉ e-mail không hợp lệ", "Not an e-mail address")
    request = ids.request_id(channel, channel_key)
    return RequestReceived(
        event_id=ids.event_id("received", request),
        correlation_id=request,
        producer=PRODUCER,
        request_id=request,
        case_id=ids.case_id(request),
        tracking_code=ids.tracking_code(request),
        channel=channel,
        channel_key=channel_key,
        received_at=received_at or utcnow(),
        citizen=Citizen(full_name=submission.full_name, phone=phone, email=submission.email, **(citizen_extra or {})),
        address=submission.address,
        location=Location(**submission.location.model_dump()) if submission.location else None,
        category=submission.category,
        description=submission.description,
        is_public=submission.is_public,
        attachments=tuple(submission.attachments),
        language="en" if submission.language == "en" else "vi",
        received_by=received_by,
        **(trace or {}),
    )


def check_key(key: str | None, field: str = "Idempotency-Key") -> str:
    """A channel key must be present and sane: it is what makes retries safe."""
    if not key or not key.strip():
        raise Problem(field, "Thiếu khóa chống gửi trùng", "Missing idempotency key", status=400)
    key = key.strip()
    if len(key) > 200:
        raise Problem(field, "Khóa chống gửi trùng quá dài", "Idempotency key too long", status=400)
    if not key.isprintable() or not key.isascii():
        raise Problem(field, "Khóa chống gửi trùng chỉ gồm ký tự ASCII in được",
                      "Idempotency key must be printable ASCII", status=400)
    return key


_VOLATILE = {"received_at", "occurred_at", "traceparent", "tracestate"}


def fingerprint(request: RequestReceived) -> str:
    """What a retry must repeat: the request without its timing and trace, and without what is left
    at its default, hashed.

    A channel key sent again with different content is a client bug, not a retry, and is refused.
    What is left at its default is left out so that a field a later intake adds, optional, does
    not change it: a retry answered by the upgraded intake of what the older one took was refused
    (422, and the Zalo citizen told "sorry").
    """
    return hashlib.sha256(request.model_dump_json(exclude=_VOLATILE, exclude_defaults=True).encode()).hexdigest()


def fingerprint_of_old(request: RequestReceived) -> str:
    """The fingerprint as intakes before 2026-12-06 made it, every field included: their receipts
    are still answered for retries."""
    return hashlib.sha256(request.model_dump_json(exclude=_VOLATILE).encode()).hexdigest()


def sender_key(kind: str, value: str) -> str:
    """The rate-limit key of a sender; hashed, because a phone number is personal data."""
    return kind + ":" + hashlib.sha256(value.encode()).hexdigest()[:32]


def receipt(request: RequestReceived) -> dict[str, str]:
    return {"tracking_code": request.tracking_code, "request_id": str(request.request_id), "case_id": str(request.case_id)}
