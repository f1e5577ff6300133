"""What every channel shares: text as text, links as links, keys as keys, refusals in two languages."""

import unicodedata
import uuid

import pytest
from pydantic import ValidationError

from contracts.categories import load
from contracts.events import RequestReceived
from services.intake.channels.web import WebSubmission
from services.intake.domain import (Problem, Submission, build_request, check_key, fingerprint, fingerprint_of_old,
                                   nfc)
from services.intake.problems import problems_of

BASE = {"full_name": "Trần Văn Nam", "phone": "0912 345 678", "address": "45 Lê Văn Sỹ, P.13, Q.3",
        "category": "covid_support", "description": "Chưa nhận hỗ trợ."}


def test_control_characters_go_and_lone_surrogates_are_refused():
    assert nfc("  Hẻm\x00 12\r\nQ.3\x1b[31m ") == "Hẻm 12\nQ.3[31m"
    # Every spelling of a line break is one; the marks that show text right to left are dropped.
    assert nfc("Dòng 1\rDòng 2\u2028Dòng 3\x85Dòng 4") == "Dòng 1\nDòng 2\nDòng 3\nDòng 4"
    assert nfc("Phường \u202e21 ") == "Phường 21"
    with pytest.raises(ValueError):
        nfc("abc\ud800")
    with pytest.raises(ValidationError) as refused:
        Submission(**{**BASE, "description": "\x00\x01\x02"})
    assert problems_of(refused.value)[0]["field"] == "description"


def test_attachment_links_must_be_web_links():
    with pytest.raises(ValidationError) as refused:
        Submission(**{**BASE, "attachments": [{"url": "file:///etc/passwd"}]})
    assert problems_of(refused.value)[0]["field"].startswith("attachments")


def test_a_retry_is_the_same_request_whenever_it_comes():
    one = build_request("web", "k", Submission(**BASE), load())
    later = build_request("web", "k", Submission(**BASE), load(), trace={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    changed = build_request("web", "k", Submission(**{**BASE, "description": "Một chuyện khác."}), load())
    assert fingerprint(one) == fingerprint(later) != fingerprint(changed)


@pytest.mark.parametrize("key, status", [(None, 400), ("", 400), ("x" * 201, 400), ("khóa", 400), ("a\tb", 400)])
def test_idempotency_keys_must_be_short_printable_ascii(key, status):
    with pytest.raises(Problem) as refused:
        check_key(key)
    assert refused.value.status == status and refused.value.field == "Idempotency-Key"
    assert check_key(f" {uuid.UUID(int=1)} ") == str(uuid.UUID(int=1))


def test_validation_errors_read_in_vietnamese_and_english():
    with pytest.raises(ValidationError) as refused:
        Submission(**{**BASE, "address": "Q", "is_public": "maybe", "unknown": 1})
    by_field = {p["field"]: p for p in problems_of(refused.value)}
    assert by_field["address"]["reason_vi"] == "Quá ngắn (tối thiểu 3 ký tự)"
    assert by_field["address"]["reason_en"] == "Too short (at least 3 characters)"
    assert by_field["is_public"]["reason_vi"] == "Phải là true hoặc false"
    assert by_field["unknown"]["reason_en"] == "This field is not accepted"


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_lengths_count_the_characters_of_the_cleaned_text(form):
    story = unicodedata.normalize("NFC", "Cụ bà 82 tuổi sống một mình, cần người hỗ trợ thuốc men. " * 90)[:4500]
    submission = Submission(**{**BASE, "description": unicodedata.normalize(form, story), "address": "\x01Q.3\x02"})
    assert submission.description == story.strip() and submission.address == "Q.3"
    with pytest.raises(ValidationError) as refused:
        Submission(**{**BASE, "address": "Q\x01\x02"})
    assert problems_of(refused.value) == [{"field": "address", "reason_vi": "Quá ngắn (tối thiểu 3 ký tự)",
                                           "reason_en": "Too short (at least 3 characters)"}]


@pytest.mark.parametrize("field", ["full_name", "phone"])
def test_the_web_form_needs_a_name_and_phone_that_are_not_only_control_characters(field):
    with pytest.raises(ValidationError) as refused:
        WebSubmission(**{**BASE, field: "\x01\x1b "})
    assert [p["field"] for p in problems_of(refused.value)] == [field]


@pytest.mark.parametrize("location, field", [
    ({"ward_code": "\ud800"}, "location.ward_code"), ({"district_code": "7" * 33}, "location.district_code"),
    ({"latitude": -90.01}, "location.latitude"), ({"latitude": float("nan")}, "location.latitude"),
    ({"longitude": 180.01}, "location.longitude"), ({"longitude": float("-inf")}, "location.longitude"),
])
def test_a_location_must_be_on_earth_and_its_codes_text(location, field):
    with pytest.raises(ValidationError) as refused:
        Submission(**{**BASE, "location": location})
    assert [p["field"] for p in problems_of(refused.value)] == [field]


def test_a_location_at_the_edges_is_taken_and_its_codes_cleaned():
    edge = Submission(**{**BASE, "location": {"latitude": 90, "longitude": -180, "ward_code": " 26734\x00"}})
    assert (edge.location.latitude, edge.location.longitude, edge.location.ward_code) == (90, -180, "26734")


def test_a_retry_is_the_same_request_to_an_intake_that_added_an_optional_field():
    """A retry of what an older intake took, answered by an upgraded one whose request has a field
    more (optional, at its default), was refused as another request's: 422, and on Zalo, "sorry"."""

    class Newer(RequestReceived):
        ward_code: str | None = None

    one = build_request("web", "k", Submission(**BASE), load())
    assert fingerprint(Newer(**one.model_dump())) == fingerprint(one)
    assert fingerprint_of_old(Newer(**one.model_dump())) != fingerprint_of_old(one), "as it was before"
