"""What intake accepts and refuses, before anything touches Kafka."""

import unicodedata

import pytest

from contracts.categories import load
from services.intake.domain import Problem, Submission, build_request, e164

BASE = {"full_name": "Trần Văn Nam", "phone": "0912 345 678", "address": "45 Lê Văn Sỹ, P.13, Q.3",
        "category": "covid_support", "description": "Chưa nhận hỗ trợ."}


def test_phone_numbers_become_e164():
    assert e164("0912 345 678") == "+84912345678"
    assert e164("+84 28 3822 4567") == "+842838224567"
    with pytest.raises(Problem) as refused:
        e164("12345")
    assert refused.value.field == "phone"


def test_vietnamese_text_is_stored_composed():
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Hoa")
    request = build_request("web", "k", Submission(**{**BASE, "full_name": decomposed}), load())
    assert request.citizen.full_name == unicodedata.normalize("NFC", "Nguyễn Thị Hoa")
    assert request.citizen.full_name != decomposed


def test_unknown_category_is_refused_with_the_valid_ones():
    with pytest.raises(Problem) as refused:
        build_request("web", "k", Submission(**{**BASE, "category": "ufo"}), load())
    assert refused.value.field == "category" and "essential_supplies" in refused.value.en


def test_retries_build_the_same_request():
    one = build_request("web", "same-key", Submission(**BASE), load())
    two = build_request("web", "same-key", Submission(**BASE), load())
    assert (one.request_id, one.case_id, one.tracking_code, one.event_id) == (two.request_id, two.case_id, two.tracking_code, two.event_id)


@pytest.mark.parametrize("email", ["binh@example.vn\nBcc: everyone@example.vn", "binh", "a@b@c", "@example.vn",
                                   "bình @example.vn"])
def test_an_e_mail_address_nobody_could_write_to_is_refused(email):
    """A line break kept in it became a header of its own in the mail the citizen was sent."""
    with pytest.raises(Problem) as refused:
        build_request("web", "k", Submission(**{**BASE, "email": email}), load())
    assert refused.value.field == "email"
    assert build_request("web", "k", Submission(**{**BASE, "email": "bình@ví-dụ.vn"}), load()).citizen.email
