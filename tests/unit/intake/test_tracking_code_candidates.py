"""A request's tracking code and, should another request already hold it, the ones it tries next."""

import uuid

from contracts import ids
from services.intake.store import _apart, _Claiming


def test_without_a_key_a_requests_first_code_is_the_one_it_always_had():
    assert ids.tracking_code(ids.request_id("phone", "call-42")) == "9W5FN-8H40Z"
    assert ids.tracking_code(ids.request_id("web", "1022"), 0) == "04PTK-FSV0H"


def test_with_a_key_the_codes_are_the_keys_own_and_look_like_any_other():
    request = ids.request_id("phone", "call-42")
    keyed = [ids.tracking_code(request, attempt, b"one key") for attempt in range(40)]
    assert keyed == [ids.tracking_code(request, attempt, b"one key") for attempt in range(40)], "a retry agrees"
    assert len(set(keyed)) == 40 and all(ids.normalise_tracking_code(code) == code for code in keyed)
    assert set(keyed).isdisjoint(ids.tracking_code(request, attempt) for attempt in range(40))
    assert set(keyed).isdisjoint(ids.tracking_code(request, attempt, b"another key") for attempt in range(40))


def test_the_codes_a_request_tries_next_are_its_own_always_the_same_and_look_like_any_other():
    request = ids.request_id("web", "1022")
    tried = [ids.tracking_code(request, attempt) for attempt in range(40)]
    assert tried == [ids.tracking_code(request, attempt) for attempt in range(40)]
    assert len(set(tried)) == 40
    assert all(ids.normalise_tracking_code(code) == code and len(code) == 11 and code[5] == "-" for code in tried)
    assert set(tried).isdisjoint(ids.tracking_code(ids.request_id("web", "1023"), a) for a in range(40))


def test_two_requests_trying_one_code_are_not_claimed_in_one_statement():
    # One statement inserting both would fail on the unique index however often it was repeated.
    one, other, third = (_Claiming(uuid.uuid4(), "web", code, "f", None) for code in ("A", "A", "B"))
    assert _apart([one, other, third]) == ([one, third], [other])
