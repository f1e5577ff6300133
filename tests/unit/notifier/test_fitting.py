"""Someone's long free text by SMS or Zalo: within what the channel carries, cut short where it
must be, whole elsewhere."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.events import Citizen, NotifyChannel, UnitRef
from services.notifier.domain import CaseRecord, Delivery, Policy, follow_on, for_assignment, plan
from services.notifier.settings import NotifierSettings
from services.notifier.fitting import segments
from tests.unit.notifier.factories import LONG_ANSWER, Story

POLICY = Policy(frozenset({"webhook", "sms", "email", "push", "zalo"}), "http://district/units/{unit_id}", timedelta(days=7))
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LOOKUP = "https://1022.tphcm.gov.vn/tra-cuu/{code}"


def _names(node) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "name" and isinstance(v, str)] + _names(list(node.values()))
    return [name for item in node for name in _names(item)] if isinstance(node, list) else []


# The longest name in any edition of the directory: a unit's name is in most messages to citizens.
LONGEST_UNIT_NAME = max((name for path in (Path(__file__).parents[3] / "services/router/data").glob("*.json")
                         for name in _names(json.loads(path.read_text()))), key=len)


def the_result(story: Story, answer: str = LONG_ANSWER, policy: Policy = POLICY,
               record: CaseRecord | None = None) -> Delivery:
    """The message that tells the citizen the unit's answer."""
    record = record if record is not None else CaseRecord()
    events = (story.opened(), story.routed(), story.resolved(answer))
    *_, told = [d for e in events for d in plan(record, e, policy, NOW)]
    assert told.template == "resolved"
    return told


def answer_kept(text: str, before: str) -> str:
    """What of the answer a cut SMS still carries, between the fixed words and the cut mark."""
    assert text.startswith(before) and text.endswith("..."), text
    return text.removeprefix(before).removesuffix("...")


def test_a_long_answer_by_sms_is_cut_to_three_segments_and_keeps_the_code_and_unit():
    story = Story()
    sms = the_result(story)
    assert sms.channel == "sms"
    assert segments(sms.text) == 3, "the budget, and all of it used"
    kept = answer_kept(sms.text, f"Phản ánh {story.tracking_code} đã có kết quả từ UBND Quận Phú Nhuận: ")
    assert kept.startswith("Ngày 25/11/2026, UBND Phường 12 đã phối hợp") and LONG_ANSWER.startswith(kept)
    assert not LONG_ANSWER[len(kept)].isalnum(), "cut between words"


def test_a_short_answer_by_sms_is_sent_as_it_is():
    story = Story()
    sms = the_result(story, "Đã hỗ trợ 20kg gạo.")
    assert sms.text == f"Phản ánh {story.tracking_code} đã có kết quả từ UBND Quận Phú Nhuận: Đã hỗ trợ 20kg gạo."


def test_an_email_of_the_same_result_carries_the_whole_answer():
    sms = the_result(Story())
    mail = the_result(Story(citizen=Citizen(email="binh@example.vn")))
    assert mail.channel == "email" and mail.text.endswith(LONG_ANSWER)
    assert len(mail.text) > 3 * len(sms.text)


def test_without_diacritics_the_sms_is_counted_in_gsm_segments_and_carries_more_of_the_answer():
    story = Story()
    ascii_sms = the_result(story, policy=Policy(POLICY.channels, POLICY.unit_webhook_url, POLICY.zalo_reply_window,
                                                sms_ascii=True))
    assert ascii_sms.text.isascii() and segments(ascii_sms.text) == 3
    assert 3 * 67 < len(ascii_sms.text) <= 3 * 153, "three GSM segments hold more than three UCS-2 ones"
    kept = answer_kept(ascii_sms.text, f"Phan anh {story.tracking_code} da co ket qua tu UBND Quan Phu Nhuan: ")
    assert kept.startswith("Ngay 25/11/2026, UBND Phuong 12 da phoi hop voi Hoi Lien hiep Phu nu")


def test_the_budget_is_a_setting():
    story = Story()
    one = the_result(story, policy=Policy(POLICY.channels, POLICY.unit_webhook_url, POLICY.zalo_reply_window,
                                          sms_max_segments=1))
    assert segments(one.text) == 1 and story.tracking_code in one.text and "UBND Quận Phú Nhuận" in one.text
    assert NotifierSettings().sms_max_segments == 3
    with pytest.raises(ValidationError):
        NotifierSettings(sms_max_segments=0)


def test_a_public_request_cut_short_says_where_to_read_the_answer_whole():
    policy = Policy(POLICY.channels, POLICY.unit_webhook_url, POLICY.zalo_reply_window, public_lookup_url=LOOKUP)
    public, private = Story(is_public=True), Story(is_public=False)
    told = the_result(public, policy=policy)
    kept, where = told.text.rsplit("\n", 1)
    assert where == f"Xem đầy đủ: https://1022.tphcm.gov.vn/tra-cuu/{public.tracking_code}"
    assert kept.endswith("...") and segments(told.text) <= 3
    # The public lookup shows no answer of a request its citizen did not make public.
    assert "Xem đầy đủ" not in the_result(private, policy=policy).text
    assert "Xem đầy đủ" not in the_result(Story(is_public=True), "Đã hỗ trợ 20kg gạo.", policy=policy).text


def test_an_english_reader_gets_the_answer_by_sms_in_english_alone_within_the_budget():
    story = Story(language="en")
    sms = the_result(story)
    assert segments(sms.text) <= 3 and "Phản ánh" not in sms.text
    kept = answer_kept(sms.text, f"Request {story.tracking_code} has a result from UBND Quận Phú Nhuận: ")
    assert len(kept) > 60 and LONG_ANSWER.startswith(kept)
    mail = the_result(Story(language="en", citizen=Citizen(email="la@example.vn")))
    vietnamese, english = mail.text.split("\n\n")
    assert vietnamese.endswith(LONG_ANSWER) and english.endswith("UBND Quận Phú Nhuận: see above, in Vietnamese.")


def test_an_english_reader_on_zalo_gets_the_answer_once_within_2000_characters():
    story = Story(channel="zalo", citizen=Citizen(zalo_user_id="z-1"), language="en", received_at=NOW)
    answer = " ".join([LONG_ANSWER] * 5)
    told = the_result(story, answer)
    vietnamese, english = told.text.split("\n\n")
    assert told.channel == "zalo" and len(told.text) <= 2000
    kept = answer_kept(vietnamese, f"Phản ánh {story.tracking_code} đã có kết quả từ UBND Quận Phú Nhuận: ")
    assert len(kept) > 1700 and answer.startswith(kept)
    assert english == f"Request {story.tracking_code} has a result from UBND Quận Phú Nhuận: see above, in Vietnamese."


@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_message_to_a_citizen_fits_three_segments_with_the_longest_unit_name(language):
    # The directory's longest unit name, the public link and a long answer: what there is of the
    # fixed words must still go in three segments, or a route that caps there refuses it for good.
    unit = UnitRef(id="longest", name=LONGEST_UNIT_NAME, admin_code="79")
    policy = Policy(POLICY.channels, POLICY.unit_webhook_url, POLICY.zalo_reply_window, public_lookup_url=LOOKUP)
    story, record = Story(language=language, is_public=True, received_at=NOW), CaseRecord()
    events = (story.opened(), story.routed(unit),
              story.progress(NOW + timedelta(days=9)).model_copy(update={"unit": unit}), story.escalated(),
              story.resolved(LONG_ANSWER).model_copy(update={"unit": unit}), story.duplicate_of(Story()))
    sent = [d for e in events for d in plan(record, e, policy, NOW) if d.recipient == "citizen"]
    assert {d.template for d in sent} == {"received", "routed", "apology_dated", "apology", "resolved", "duplicate"}
    for d in sent:
        assert d.channel == "sms" and segments(d.text) <= 3, (d.template, segments(d.text), d.text)


def test_a_result_that_goes_on_by_another_route_is_written_for_that_route():
    story, record = Story(channel="app", citizen=Citizen(app_user_id="app-9", phone="+84903123456",
                                                        email="binh@example.vn")), CaseRecord()
    push = the_result(story, record=record)
    assert push.channel == "push" and push.text.endswith(LONG_ANSWER)
    by_sms = follow_on(push, record, POLICY, "HTTP 404: unknown device")
    assert by_sms.channel == "sms" and segments(by_sms.text) == 3 and by_sms.text.endswith("...")
    by_mail = follow_on(by_sms, record, POLICY, "HTTP 400: unknown number")
    assert by_mail.channel == "email" and by_mail.text == push.text


@pytest.mark.parametrize(("text", "count"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("€" * 80, 1), ("€" * 81, 2), ("[x]" * 32, 1), ("{x}" * 33, 2),  # the extension table: two septets each
    ("é" * 160, 1),  # in the GSM alphabet
    ("ả" * 70, 1), ("ả" * 71, 2), ("ả" * 134, 2), ("ả" * 135, 3),  # UCS-2
    ("a" * 69 + "…", 1), ("a" * 70 + "…", 2),  # one character outside the alphabet makes it all UCS-2
    ("🙂" * 35, 1), ("🙂" * 36, 2),  # two UTF-16 code units each
    # A two-unit character is not split between segments: it starts the next one.
    ("a" * 152 + "[" + "b" * 305, 4), ("a" * 151 + "[" + "b" * 306, 3),
    ("ả" * 66 + "🙂" + "ả" * 133, 4), ("ả" * 65 + "🙂" + "ả" * 134, 3),
])
def test_segments_are_counted_as_gsm_03_38_does(text, count):
    assert segments(text) == count


def test_a_cut_never_leaves_a_piece_of_a_word_but_text_without_spaces_is_cut_where_the_room_ends():
    policy = Policy(POLICY.channels, POLICY.unit_webhook_url, POLICY.zalo_reply_window, sms_max_segments=1)
    story = Story()
    before = f"Phản ánh {story.tracking_code} đã có kết quả từ UBND Quận Phú Nhuận: "
    assert answer_kept(the_result(story, "Ngàyyyyyyyy " * 20, policy=policy).text, before) == ""
    link = "https://phunhuan.hochiminhcity.gov.vn/ket-qua/" + "x" * 200
    kept = answer_kept(the_result(story, link, policy=policy).text, before)
    assert kept and link.startswith(kept)


def test_a_zalo_citizen_gets_a_long_answer_within_the_oas_2000_characters_cut_between_words():
    story = Story(channel="zalo", citizen=Citizen(zalo_user_id="z-1", phone="+84903123456"), received_at=NOW)
    answer = " ".join([LONG_ANSWER] * 5)  # about 3,200 characters
    told = the_result(story, answer)
    assert told.channel == "zalo" and 1900 < len(told.text) <= 2000
    kept = answer_kept(told.text, f"Phản ánh {story.tracking_code} đã có kết quả từ UBND Quận Phú Nhuận: ")
    assert answer.startswith(kept) and not answer[len(kept)].isalnum()
    assert the_result(Story(channel="zalo", citizen=Citizen(zalo_user_id="z-2"), received_at=NOW)).text.endswith(LONG_ANSWER)


def test_a_handler_on_zalo_gets_a_long_description_cut_short_and_the_deadlines_whole():
    story = Story()
    description = " ".join([LONG_ANSWER] * 5)
    assignment = story.assigned(notify=(NotifyChannel(channel="webhook"), NotifyChannel(channel="zalo", address="z-9")))
    by_webhook, by_zalo = for_assignment(assignment.model_copy(update={"description": description}), POLICY)
    assert (by_webhook.channel, by_zalo.channel) == ("webhook", "zalo")
    assert description in by_webhook.text
    assert len(by_zalo.text) <= 2000 and "Hạn tiếp nhận:" in by_zalo.text and "Hạn có kết quả:" in by_zalo.text
    kept = by_zalo.text.split("Nội dung: ", 1)[1].split("... Hạn tiếp nhận", 1)[0]
    assert len(kept) > 1500 and description.startswith(kept)
