"""Masking by role: the 1022 centre sees citizens' contact in full, HĐND and MTTQ masked, phone numbers in
the free text too."""

from services.oversight.api.access import mask_event, mask_name, mask_phone, mask_phones_in, present


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


def test_phone_numbers_written_into_free_text_are_masked_in_place():
    assert mask_phones_in("Hết gạo, gọi chị Lan 0903 123 456 hoặc 028.3829.1234") == \
        "Hết gạo, gọi chị Lan 090* *** *56 hoặc 028.****.*234"
    assert mask_phones_in("liên hệ +84 903-123-456, nhà 12/3 hẻm 45, ngày 01/08/2021") == \
        "liên hệ +84 9**-***-456, nhà 12/3 hẻm 45, ngày 01/08/2021"
    # Any that could be a number, in use or not: a miss would show a person's phone.
    assert mask_phones_in("SĐT con trai: 0912345678") == "SĐT con trai: 091*****78"
    # However it is spaced: dashes of other kinds, a tilde, spaced dashes.
    for written, masked in (("0903–123–456", "090*–***–*56"), ("0903 – 123 – 456", "090* – *** – *56"),
                            ("0903\u2011123\u2011456", "090*\u2011***\u2011*56"), ("0903~123~456", "090*~***~*56")):
        assert mask_phones_in(f"gọi {written} nhé") == f"gọi {masked} nhé"
    # A unit's id, in a decline's triage reason, is not a number; one written just after it is.
    assert mask_phones_in("declined by hcmc-2025/27424: nhà bà ở Q.3, gọi 0903123456") == \
        "declined by hcmc-2025/27424: nhà bà ở Q.3, gọi 090*****56"
    for text in ("12 Nguyễn Văn Trỗi, Phường 12", "gọi 1022 hoặc 115", "Gia đình 5 người, từ 01/08/2021", "",
                 "declined by hcmc-2025/26734/h01: sai địa bàn"):
        assert mask_phones_in(text) == text


def test_the_oversight_bodies_see_no_phone_in_a_case_or_its_events():
    row = {"citizen_phone": "+84903123456", "description": "Gọi 0903123456 hoặc bà con 0987 654 321",
           "address": "12 Lê Lợi (hỏi 0912345678)", "answer": "Đã giao gạo, cán bộ Tâm 0938111222", "area_code": "760",
           "triage_reason": "declined by hcmc-2021/760: nhà bà ở Q.3, gọi 0903123456"}
    for role in ("council", "front"):
        seen = present(row, role)
        assert [seen[k] for k in ("description", "address", "answer", "area_code", "triage_reason")] == \
            ["Gọi 090*****56 hoặc bà con 098* *** *21", "12 Lê Lợi (hỏi 091*****78)",
             "Đã giao gạo, cán bộ Tâm 093*****22", "760", "declined by hcmc-2021/760: nhà bà ở Q.3, gọi 090*****56"]
        body = mask_event({"event_type": "CaseReopened", "reason": "Chưa nhận được, gọi lại 0903123456"}, role)
        assert body["reason"] == "Chưa nhận được, gọi lại 090*****56"
    assert present(row, "centre")["description"] == row["description"]
