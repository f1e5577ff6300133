"""Masking by role: the 1022 centre sees citizens' contact in full, HĐND and MTTQ masked, the phone
numbers and e-mail addresses in the free text too."""

from services.oversight.api.access import mask_event, mask_name, mask_phone, present
from services.oversight.api.public import public_answer
from services.oversight.masking import PHONES_FIRST_AND_LAST, mask_contacts_in


def test_masking_hides_who_but_keeps_cases_apart():
    assert mask_name("Nguyễn Thị Hoa") == "N. T. H***"
    assert mask_phone("+84903123456") == "+********456"
    assert mask_name(None) is None and mask_phone("") == ""


def test_a_short_number_still_has_five_digits_hidden():
    # Niue's numbers are seven digits with the country code: '+683*012' would leave two to guess.
    assert mask_phone("+6837012") == "+*****12"
    assert mask_phone("+68370123") == "+*****123"
    for phone in ("+1234", "+123456", "+6837012", "+68370123", "+684901234", "+84903123456", "+849031234567"):
        masked = mask_phone(phone)
        assert masked.count("*") >= min(5, len(phone) - 1) and len(masked) == len(phone), (phone, masked)
        assert masked.startswith("+") and masked.replace("*", "") != phone


def test_a_phone_shows_the_same_digits_however_it_is_written():
    """The citizen's phone showed its first digits and its last three, and the same number typed in
    the description its first three and last two: side by side, only four digits were hidden."""
    written = ("+84903123456", "0903 123 456", "+84 903 123 456", "84903123456", "090.312.3456")
    seen = [mask_phone(written[0])] + [mask_contacts_in(f"gọi {w} nhé") for w in written[1:]]
    shown = {"".join(c for c in s if c.isdigit()) for s in seen}
    assert shown == {"456"}, seen


def test_each_role_sees_what_it_may():
    row = {"citizen_name": "Nguyễn Thị Hoa", "citizen_phone": "+84903123456", "citizen_email": "hoa@example.vn"}
    assert present(row, "centre") == row
    for role in ("council", "front"):
        seen = present(row, role)
        assert seen == {"citizen_name": "N. T. H***", "citizen_phone": "+********456", "citizen_email": None}


def test_an_event_body_is_masked_like_a_case():
    body = {"event_type": "CaseOpened", "citizen": {"full_name": "Lê Mai", "phone": "+84987654321", "email": "m@x.vn"}}
    assert mask_event(body, "council")["citizen"] == {"full_name": "L. M***", "phone": "+********321"}
    assert mask_event(body, "centre") == body


def test_contacts_written_into_free_text_are_masked_in_place():
    assert mask_contacts_in("Hết gạo, gọi chị Lan 0903 123 456 hoặc 028.3829.1234") == \
        "Hết gạo, gọi chị Lan **** *** 456 hoặc ***.****.*234"
    assert mask_contacts_in("liên hệ +84 903-123-456, nhà 12/3 hẻm 45, ngày 01/08/2021") == \
        "liên hệ +** ***-***-456, nhà 12/3 hẻm 45, ngày 01/08/2021"
    # Any that could be a number, in use or not: a miss would show a person's phone.
    assert mask_contacts_in("SĐT con trai: 0912345678") == "SĐT con trai: *******678"
    # However it is spaced: dashes of other kinds, a tilde, spaced dashes.
    for written, masked in (("0903–123–456", "****–***–456"), ("0903 – 123 – 456", "**** – *** – 456"),
                            ("0903\u2011123\u2011456", "****\u2011***\u2011456"), ("0903~123~456", "****~***~456")):
        assert mask_contacts_in(f"gọi {written} nhé") == f"gọi {masked} nhé"
    # A unit's id, in a decline's triage reason, is not a number; one written just after it is.
    assert mask_contacts_in("declined by hcmc-2025/27424: nhà bà ở Q.3, gọi 0903123456") == \
        "declined by hcmc-2025/27424: nhà bà ở Q.3, gọi *******456"
    # An e-mail address shows its first character and its domain.
    assert mask_contacts_in("Kính gửi bà Hoa (hoa.nguyen@gmail.com)") == "Kính gửi bà Hoa (h*********@gmail.com)"
    for text in ("12 Nguyễn Văn Trỗi, Phường 12", "gọi 1022 hoặc 115", "Gia đình 5 người, từ 01/08/2021", "",
                 "declined by hcmc-2025/26734/h01: sai địa bàn", "tiếp nhận @ phường"):
        assert mask_contacts_in(text) == text


def test_a_number_written_like_a_units_id_or_split_by_commas_is_masked_too():
    """Letters, a dash and four digits were taken for a directory edition ("sdt-0903/123456"), and
    commas or underscores between a number's groups are no marks phonenumbers reads."""
    for written, masked in (("sdt-0903/123456", "sdt-****/***456"), ("lh-0903/123-456", "lh-****/***-456"),
                            ("0903,123,456", "****,***,456"), ("0903_123_456", "****_***_456")):
        assert mask_contacts_in(f"gọi {written} nhé") == f"gọi {masked} nhé"
    for text in ("declined by hcmc-2025/27424/h01: sai địa bàn", "giá 1,234,567,890 đồng", "ngày 01,02,2021"):
        assert mask_contacts_in(text) == text


def test_the_first_masked_form_is_kept_for_the_records_made_in_it():
    """The audit trail's records of the first form are checked, and rebuilt, as they were made."""
    assert mask_contacts_in("gọi 0903 123 456, hoa@gmail.com", PHONES_FIRST_AND_LAST) == \
        "gọi 090* *** *56, hoa@gmail.com"
    assert mask_contacts_in("SĐT 0912345678", PHONES_FIRST_AND_LAST) == "SĐT 091*****78"
    assert mask_contacts_in("sdt-0903/123456, 0903,123,456", PHONES_FIRST_AND_LAST) == "sdt-0903/123456, 0903,123,456"


def test_the_oversight_bodies_see_no_phone_or_e_mail_in_a_case_or_its_events():
    row = {"citizen_phone": "+84903123456", "description": "Gọi 0903123456 hoặc bà con 0987 654 321",
           "address": "12 Lê Lợi (hỏi 0912345678)", "answer": "Đã giao gạo, cán bộ Tâm 0938111222, tam@ubnd.vn",
           "area_code": "760", "triage_reason": "declined by hcmc-2021/760: nhà bà ở Q.3, gọi 0903123456"}
    for role in ("council", "front"):
        seen = present(row, role)
        assert [seen[k] for k in ("description", "address", "answer", "area_code", "triage_reason")] == \
            ["Gọi *******456 hoặc bà con **** *** 321", "12 Lê Lợi (hỏi *******678)",
             "Đã giao gạo, cán bộ Tâm *******222, t**@ubnd.vn", "760",
             "declined by hcmc-2021/760: nhà bà ở Q.3, gọi *******456"]
        body = mask_event({"event_type": "CaseReopened", "reason": "Chưa nhận được, gọi lại 0903123456"}, role)
        assert body["reason"] == "Chưa nhận được, gọi lại *******456"
    assert present(row, "centre")["description"] == row["description"]


def test_a_units_answer_read_by_anyone_names_neither_the_citizen_nor_where_they_live():
    answer = "Kính gửi bà Nguyễn Thị Hoa (hoa.nguyen@gmail.com, 0903 123 456), 45 Lê Văn Sỹ: đã trao 20 kg gạo."
    assert public_answer(answer, "Nguyễn Thị Hoa", "45 Lê Văn Sỹ") == \
        "Kính gửi bà *** (h*********@gmail.com, **** *** 456), ***: đã trao 20 kg gạo."
    assert public_answer("Đã xử lý.", None, None) == "Đã xử lý."
    # A name of one word is the citizen's only where it stands alone: not within "Anh" or "Bàn".
    assert public_answer("Anh An nhận gạo tại Bàn tiếp dân.", "An", None) == "Anh *** nhận gạo tại Bàn tiếp dân."
