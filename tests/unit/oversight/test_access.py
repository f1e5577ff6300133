"""Masking by role: the 1022 centre sees citizens' contact in full, HĐND and MTTQ masked."""

from services.oversight.api.access import mask_event, mask_name, mask_phone, present


def test_masking_hides_who_but_keeps_cases_apart():
    assert mask_name("Nguyễn Thị Hoa") == "N. T. H***"
    assert mask_phone("+84903123456") == "+849*****456"
    assert mask_name(None) is None and mask_phone("") == ""


def test_a_short_number_still_has_five_digits_hidden():
    # Niue's numbers are seven digits with the country code: '+683*012' would leave two to guess.
    assert mask_phone("+6837012") == "+6*****2"
    assert mask_phone("+68370123") == "+68*****3"
    assert mask_phone("+8490312345") == "+849*****45"
    for phone in ("+1234", "+123456", "+6837012", "+68370123", "+684901234", "+84903123456", "+849031234567"):
        masked = mask_phone(phone)
        assert masked.count("*") >= min(5, len(phone) - 1) and len(masked) == len(phone), (phone, masked)
        assert masked.startswith("+") and masked.replace("*", "") != phone


def test_each_role_sees_what_it_may():
    row = {"citizen_name": "Nguyễn Thị Hoa", "citizen_phone": "+84903123456", "citizen_email": "hoa@example.vn"}
    assert present(row, "centre") == row
    for role in ("council", "front"):
        seen = present(row, role)
        assert seen == {"citizen_name": "N. T. H***", "citizen_phone": "+849*****456", "citizen_email": None}


def test_an_event_body_is_masked_like_a_case():
    body = {"event_type": "CaseOpened", "citizen": {"full_name": "Lê Mai", "phone": "+84987654321", "email": "m@x.vn"}}
    assert mask_event(body, "council")["citizen"] == {"full_name": "L. M***", "phone": "+849*****321"}
    assert mask_event(body, "centre") == body
