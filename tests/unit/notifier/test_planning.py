"""Who hears what, on which channel: the notifier's planning, event by event."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events import Citizen, NotifyChannel, UnitRef
from services.notifier.dispatch import Retry, redact
from services.notifier.domain import CaseRecord, Policy, follow_on, for_assignment, plan, remember_refused
from services.notifier.settings import NotifierSettings
from services.notifier.templates import when, without_diacritics
from tests.unit.notifier.factories import Story

ALL = Policy(frozenset({"webhook", "sms", "email", "zalo", "push"}), "http://district/units/{unit_id}", timedelta(days=7))
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def told(story: Story, *events, policy: Policy = ALL, now: datetime = NOW, record: CaseRecord | None = None):
    record = record if record is not None else CaseRecord()
    return [d for e in events for d in plan(record, e, policy, now)]


def test_a_web_citizen_hears_received_routed_and_resolved_by_sms():
    story = Story()
    received, routed, resolved = told(story, story.opened(), story.routed(), story.assigned(), story.resolved())
    assert [d.template for d in (received, routed, resolved)] == ["received", "routed", "resolved"]
    assert {(d.recipient, d.channel, d.target) for d in (received, routed, resolved)} == {("citizen", "sms", "+84903123456")}
    assert story.tracking_code in received.text and "Mã tra cứu" in received.text
    assert "UBND Quận Phú Nhuận" in routed.text
    assert "Đã hỗ trợ 20kg gạo." in resolved.text


def test_an_event_applied_once_is_not_planned_again():
    story, record = Story(), CaseRecord()
    opened = story.opened()
    assert len(told(story, opened, record=record)) == 1
    assert told(story, opened, record=record) == []
    assert record.version == 1


def test_the_same_event_always_yields_the_same_delivery_key_whatever_the_channel():
    story = Story(channel="zalo", citizen=Citizen(zalo_user_id="z-1", phone="+84903123456"))
    opened = story.opened()
    in_window = told(story, opened)[0]
    late = told(story, opened, now=NOW + timedelta(days=30))[0]
    assert (in_window.channel, late.channel) == ("zalo", "sms")
    assert in_window.delivery_id == late.delivery_id


def test_zalo_citizens_are_answered_on_zalo_within_the_reply_window():
    story = Story(channel="zalo", citizen=Citizen(zalo_user_id="z-1"), received_at=NOW - timedelta(days=6))
    [d] = told(story, story.opened())
    assert (d.channel, d.target, d.note, d.undeliverable) == ("zalo", "z-1", None, None)


def test_after_zalos_window_the_citizen_gets_an_sms_and_the_record_says_why():
    story = Story(channel="zalo", citizen=Citizen(zalo_user_id="z-1", phone="+84903123456"),
                  received_at=NOW - timedelta(days=8))
    [d] = told(story, story.opened())
    assert d.channel == "sms" and "reply window closed" in d.note and "SMS instead" in d.note


def test_after_zalos_window_with_no_other_contact_the_failure_is_recorded_with_its_reason():
    story = Story(channel="zalo", citizen=Citizen(zalo_user_id="z-1"), received_at=NOW - timedelta(days=8))
    [d] = told(story, story.opened())
    assert d.channel == "zalo" and "reply window closed" in d.undeliverable and "no phone or e-mail" in d.undeliverable


def test_app_citizens_get_a_push_and_web_citizens_without_phone_an_email():
    app = Story(channel="app", citizen=Citizen(app_user_id="app-9", phone="+84903123456"))
    web = Story(citizen=Citizen(email="binh@example.vn"))
    assert [(d.channel, d.target) for d in told(app, app.opened())] == [("push", "app-9")]
    assert [(d.channel, d.target) for d in told(web, web.opened())] == [("email", "binh@example.vn")]


def test_a_citizen_who_left_no_contact_gets_nothing():
    story = Story(citizen=Citizen(full_name="Ẩn danh"))
    assert told(story, story.opened(), story.routed()) == []


def test_a_channel_not_configured_falls_back_or_is_recorded_as_undeliverable():
    only_webhook = Policy(frozenset({"webhook"}), ALL.unit_webhook_url, ALL.zalo_reply_window)
    story = Story()
    [d] = told(story, story.opened(), policy=only_webhook)
    assert "no SMS or e-mail provider" in d.undeliverable


def test_a_message_refused_for_good_goes_on_by_the_citizens_next_route_until_none_is_left():
    story, record = Story(channel="app", citizen=Citizen(app_user_id="app-9", phone="+84903123456",
                                                        email="binh@example.vn")), CaseRecord()
    [push] = told(story, story.opened(), record=record)
    sms = follow_on(push, record, ALL, "HTTP 404: unknown device")
    assert (sms.channel, sms.target, sms.recipient, sms.subject, sms.text) == (
        "sms", "+84903123456", "citizen", push.subject, push.text)
    assert "app push refused it (HTTP 404: unknown device); sent by SMS instead" == sms.note
    assert follow_on(push, record, ALL, "HTTP 404").delivery_id == sms.delivery_id != push.delivery_id
    mail = follow_on(sms, record, ALL, "HTTP 400: unknown number")
    assert (mail.channel, mail.target) == ("email", "binh@example.vn")
    assert follow_on(mail, record, ALL, "550 no such mailbox") is None
    no_sms = Policy(ALL.channels - {"sms"}, ALL.unit_webhook_url, ALL.zalo_reply_window)
    assert follow_on(push, record, no_sms, "HTTP 404").channel == "email"


def test_a_channel_that_refused_every_try_lately_is_passed_over_while_another_route_is_left():
    """SMS refused every try of "received", which went on by e-mail; "resolved", planned soon after,
    went to SMS again and waited out its own hour of tries there. For an hour it goes by e-mail."""
    story = Story(citizen=Citizen(phone="+84903123456", email="binh@example.vn"))
    record = CaseRecord()
    told(story, story.opened(), story.routed(), record=record)
    remember_refused(record, "sms", NOW)
    [soon] = told(story, story.resolved(), record=record, now=NOW + timedelta(minutes=30))
    assert (soon.channel, soon.target) == ("email", "binh@example.vn")
    assert soon.note.startswith("SMS refused every try of an earlier message; passed over until ")
    assert soon.note.endswith("; sent by e-mail instead")
    later = Story(citizen=story.citizen)
    record_later = CaseRecord(refused=dict(record.refused))
    [after] = told(later, later.opened(), record=record_later, now=NOW + timedelta(minutes=61))
    assert (after.channel, after.note) == ("sms", None), "an hour on, the SMS gateway is tried again"


def test_a_channel_refused_lately_is_still_used_when_no_other_route_is_left():
    only_phone = Story(citizen=Citizen(phone="+84903123456"))
    record = CaseRecord()
    told(only_phone, only_phone.opened(), record=record)
    remember_refused(record, "sms", NOW)
    [d] = told(only_phone, only_phone.routed(), record=record, now=NOW + timedelta(minutes=5))
    assert (d.channel, d.undeliverable) == ("sms", None)
    app = Story(channel="app", citizen=Citizen(app_user_id="app-9", phone="+84903123456"))
    record = CaseRecord()
    told(app, app.opened(), record=record)
    remember_refused(record, "push", NOW)
    [by_sms] = told(app, app.routed(), record=record, now=NOW + timedelta(minutes=5))
    assert by_sms.channel == "sms" and by_sms.note.startswith("app push refused every try")
    remember_refused(record, "sms", NOW)
    [by_push] = told(app, app.resolved(), record=record, now=NOW + timedelta(minutes=5))
    assert (by_push.channel, by_push.note) == ("push", None), "every route refused lately: its own channel"


def test_a_zalo_citizen_who_left_no_other_contact_has_no_next_route():
    story, record = Story(channel="zalo", citizen=Citizen(zalo_user_id="z-1")), CaseRecord()
    [zalo] = told(story, story.opened(), record=record)
    assert follow_on(zalo, record, ALL, "Zalo error -213: User has not followed OA") is None


def test_english_speakers_read_vietnamese_first_then_english_but_by_sms_english_alone():
    story = Story(language="en", citizen=Citizen(email="la@example.vn"))
    [d] = told(story, story.opened())
    vietnamese, english = d.text.split("\n\n")
    assert "Mã tra cứu" in vietnamese and "Tracking code" in english
    story = Story(language="en")  # a phone only: an SMS has no room for two languages
    [d] = told(story, story.opened())
    assert d.channel == "sms" and d.text == f"The 1022 hotline received your request. Tracking code: {story.tracking_code}."


@pytest.mark.parametrize("language", ["vi", "en"])
def test_a_repeat_report_tells_nothing_of_the_case_it_repeats(language):
    # The phone is typed, never verified: whoever types a citizen's number is joined to her case,
    # and must not learn its tracking code (with which anyone can look it up), nor its unit.
    victim = Story()
    told(victim, victim.opened(), victim.routed())
    stranger = Story(citizen=Citizen(phone=victim.citizen.phone, email="la@example.vn"), language=language)
    out = told(stranger, stranger.opened(), stranger.duplicate_of(victim))
    assert [d.template for d in out] == ["received", "duplicate"]
    for d in out:
        for secret in (victim.tracking_code, victim.tracking_code.replace("-", ""), "Phú Nhuận"):
            assert secret not in d.subject and secret not in d.text, (d.template, secret)
    notice = out[1]
    assert notice.channel == "sms" and stranger.tracking_code in notice.text
    if language == "vi":
        assert "cùng số điện thoại" in notice.text and "mã tra cứu bạn nhận được lần đầu" in notice.text
    else:  # by SMS, in English alone
        assert "same phone number" in notice.text and "tracking code you were given first" in notice.text


def test_a_new_assignment_goes_by_webhook_when_the_directory_names_no_channel():
    story = Story()
    [d] = for_assignment(story.assigned(), ALL)
    assert (d.recipient, d.channel, d.target) == ("unit", "webhook", "http://district/units/hcm-q-phu-nhuan")
    assert "Nguyễn Văn An" in d.text and "Hộ gia đình thiếu nhu yếu phẩm" in d.text
    assert d.payload["event_type"] == "AssignmentIssued"


def test_a_new_assignment_goes_on_every_channel_the_unit_wants():
    story = Story()
    notify = (NotifyChannel(channel="webhook", address="https://pn.example.vn/1022"),
              NotifyChannel(channel="email", address="tiepnhan@phunhuan.example.vn"),
              NotifyChannel(channel="zalo", address="zl-handler"), NotifyChannel(channel="email"))
    out = for_assignment(story.assigned(notify), ALL)
    assert [(d.recipient, d.channel, d.target, d.undeliverable) for d in out[:3]] == [
        ("unit", "webhook", "https://pn.example.vn/1022", None),
        ("handler", "email", "tiepnhan@phunhuan.example.vn", None), ("handler", "zalo", "zl-handler", None)]
    assert "no e-mail address" in out[3].undeliverable
    assert len({d.delivery_id for d in out}) == 4


def test_a_unit_the_rule_tells_as_well_gets_a_copy_by_its_own_webhook():
    """A vulnerable person's case goes to the ward, and the city's social department is told: the
    routing's reason said so, and before, nobody told it."""
    department = UnitRef(id="hcmc-2021/so-ldtbxh", name="Sở LĐTB-XH", admin_code="79")
    story = Story()
    main, copy = for_assignment(story.assigned(also=(department,)), ALL)
    assert (main.template, main.target) == ("assignment", "http://district/units/hcm-q-phu-nhuan")
    assert (copy.recipient, copy.channel, copy.target, copy.template) == (
        "unit", "webhook", "http://district/units/hcmc-2021/so-ldtbxh", "assignment_copy")
    assert copy.text.startswith("Gửi Sở LĐTB-XH: phản ánh") and "giao cho UBND Quận Phú Nhuận" in copy.text
    assert copy.payload == main.payload, "the whole assignment, as its unit has it"
    # Each signed with its own unit's key: the department's copy with the department's.
    assert (main.unit_id, copy.unit_id) == ("hcm-q-phu-nhuan", "hcmc-2021/so-ldtbxh")
    # One address for every unit's service: still two deliveries, each recorded and sent once.
    shared = Policy(ALL.channels, "https://districts.example.vn/1022", ALL.zalo_reply_window)
    assert len({d.delivery_id for d in for_assignment(story.assigned(also=(department,)), shared)}) == 2


def test_a_report_linked_to_a_case_reaches_the_unit_in_the_citizens_words():
    """A repeat report (same phone, area and category) is linked, not assigned: before, nobody at
    the unit ever read it, whatever it added, or whoever sent it with the citizen's number."""
    story, record = Story(), CaseRecord()
    notify = (NotifyChannel(channel="email", address="tiepnhan@phunhuan.example.vn"),
              NotifyChannel(channel="zalo", address="zl-handler"))
    told(story, story.opened(), story.routed(), story.assigned(notify), record=record)
    linked = story.linked()
    out = told(story, linked, record=record)
    assert [(d.recipient, d.channel, d.template) for d in out] == [
        ("handler", "email", "duplicate_report"), ("handler", "zalo", "duplicate_report")]
    assert all("Nay cháu bé bị sốt, cần thêm thuốc." in d.text and linked.duplicate_tracking_code in d.text
               for d in out)
    assert out[0].payload["description"] == "Nay cháu bé bị sốt, cần thêm thuốc."
    # With no channel in the directory, the unit's district service hears of it by its webhook.
    plain = Story()
    told(plain, plain.opened(), plain.routed(), plain.assigned(), record=(record := CaseRecord()))
    [webhook] = told(plain, plain.linked(), record=record)
    assert (webhook.recipient, webhook.channel, webhook.template) == ("unit", "webhook", "duplicate_report")


def test_a_linked_report_without_words_or_before_any_unit_holds_the_case_is_told_nobody():
    older, record = Story(), CaseRecord()  # a link an older router wrote: its words are not in it
    told(older, older.opened(), older.routed(), older.assigned(), record=record)
    assert told(older, older.linked(description=None), record=record) == []
    triage = Story()
    record = CaseRecord()
    told(triage, triage.opened(), record=record)
    assert told(triage, triage.linked(), record=record) == [], "the centre reads it in oversight"


def test_a_unit_that_declined_a_case_hears_nothing_more_of_it():
    """A unit that declined (the case went to the centre's triage) was still sent the case's
    escalations and, with a repeat report, the citizen's new words and address."""
    story, record = Story(), CaseRecord()
    notify = (NotifyChannel(channel="email", address="tiepnhan@phunhuan.example.vn"),)
    told(story, story.opened(), story.routed(), story.assigned(notify), record=record)
    assert told(story, story.declined(), story.triaged(), record=record) == []
    assert told(story, story.linked(), record=record) == []
    assert [d.recipient for d in told(story, story.escalated("resolve", "centre"), record=record)] == ["citizen"]
    # Routed to it again, it hears of the case again.
    told(story, story.routed(), story.assigned(notify), record=record)
    assert [(d.template, d.unit_id) for d in told(story, story.linked(), record=record)] == [
        ("duplicate_report", "hcm-q-phu-nhuan")]


def test_a_unit_the_centre_takes_a_case_from_is_told():
    """The centre may route a case a unit holds to another unit. The first unit was never told: its
    handler worked on, and every answer it sent was refused as from a unit that does not hold it."""
    story, record = Story(), CaseRecord()
    notify = (NotifyChannel(channel="email", address="tiepnhan@phunhuan.example.vn"),)
    told(story, story.opened(), story.routed(), story.assigned(notify), record=record)
    other = UnitRef(id="hcm-q-go-vap", name="UBND Quận Gò Vấp", admin_code="764")
    out = told(story, story.routed(other), record=record)
    assert [(d.recipient, d.channel, d.target, d.template) for d in out] == [
        ("handler", "email", "tiepnhan@phunhuan.example.vn", "withdrawn"), ("citizen", "sms", "+84903123456", "routed")]
    assert "UBND Quận Gò Vấp" in out[0].text
    assert out[0].unit_id == "hcm-q-phu-nhuan", "signed for the unit it was taken from, not the one it went to"
    # A unit that declined, or a case sent back to the unit that resolved it, hears nothing of it.
    declined, record = Story(), CaseRecord()
    told(declined, declined.opened(), declined.routed(), declined.assigned(notify), declined.declined(), record=record)
    assert [d.template for d in told(declined, declined.routed(other), record=record)] == ["routed"]
    back = Story()
    assert "withdrawn" not in [d.template for d in told(back, back.opened(), back.routed(), back.routed())]


def test_an_escalation_reaches_the_handlers_and_the_citizen_hears_one_apology():
    story, record = Story(), CaseRecord()
    notify = (NotifyChannel(channel="email", address="tiepnhan@phunhuan.example.vn"),)
    told(story, story.opened(), story.routed(), story.assigned(notify), record=record)
    first = told(story, story.escalated("resolve", "unit_head"), record=record)
    second = told(story, story.escalated("resolve", "centre"), record=record)
    assert [(d.recipient, d.template) for d in first] == [("handler", "handler_escalated"), ("citizen", "apology")]
    assert [(d.recipient, d.template) for d in second] == [("handler", "handler_escalated")]
    assert "lãnh đạo đơn vị" in first[0].text


def test_a_missed_committed_date_is_apologised_for_too():
    """The router escalates a missed committed date afresh; the citizen, told once of the first miss,
    heard nothing of the second."""
    story, record = Story(), CaseRecord()
    told(story, story.opened(), story.routed(), story.assigned(), record=record)
    told(story, story.escalated("resolve", "unit_head"), record=record)
    told(story, story.progress(story.received_at + timedelta(days=9)), record=record)
    again = told(story, story.escalated("resolve", "unit_head"), record=record)
    assert [d.template for d in again if d.recipient == "citizen"] == ["apology"]


def test_a_committed_date_said_again_brings_no_second_apology_for_its_miss():
    """A unit restating the date it had missed (its routine report) reset the record, and the
    escalation on to the centre apologised to the citizen a second time for the same miss."""
    story, record = Story(), CaseRecord()
    told(story, story.opened(), story.routed(), story.assigned(), record=record)
    committed = story.received_at + timedelta(days=9)
    assert [d.template for d in told(story, story.progress(committed), record=record)] == ["apology_dated"]
    first = told(story, story.escalated("resolve", "unit_head"), record=record)
    assert told(story, story.progress(committed), record=record) == []
    second = told(story, story.escalated("resolve", "centre"), record=record)
    assert [d.template for d in first if d.recipient == "citizen"] == ["apology"]
    assert [d.template for d in second if d.recipient == "citizen"] == []


def test_a_missed_acknowledgement_is_not_the_citizens_business():
    story, record = Story(), CaseRecord()
    told(story, story.opened(), story.routed(), story.assigned(), record=record)
    assert [d.recipient for d in told(story, story.escalated("reach"), record=record)] == ["unit"]


def test_a_case_the_centre_has_not_sorted_in_time_is_told_to_the_centre_not_the_citizen():
    """A case in triage had no deadline: one the centre never sent to a unit waited, and nobody
    was told. Its missed time to reach a unit now goes to the centre, by the centre's webhook."""
    story, record = Story(), CaseRecord()
    told(story, story.opened(), story.triaged(), record=record)
    centre = UnitRef(id="hcmc-2021/centre", name="Tổng đài 1022")
    [to_centre] = told(story, story.escalated("reach", "unit_head", unit=centre), record=record)
    assert (to_centre.recipient, to_centre.channel, to_centre.template) == ("unit", "webhook", "triage_escalated")
    assert to_centre.target == "http://district/units/hcmc-2021/centre" and to_centre.unit_id == centre.id
    assert "trưởng ca Tổng đài 1022" in to_centre.text and story.tracking_code in to_centre.text
    # An older router's escalation names no unit: still nobody to tell.
    assert told(story, story.escalated("reach", "centre"), record=record) == []


def test_a_unit_case_late_past_its_unit_head_is_told_to_the_centre_itself():
    """The chain's last step said "1022 centre informed", but only the unit's own channels heard it."""
    story, record = Story(), CaseRecord()
    told(story, story.opened(), story.routed(), story.assigned(), record=record)
    centre = UnitRef(id="hcmc-2021/1022", name="Tổng đài 1022")
    deliveries = told(story, story.escalated("resolve", "centre", unit=centre,
                                             notify=(NotifyChannel(channel="webhook", address=None),)), record=record)
    to_centre = [d for d in deliveries if d.unit_id == centre.id]
    assert [(d.channel, d.target, d.template) for d in to_centre] == [
        ("webhook", "http://district/units/hcmc-2021/1022", "centre_escalated")]
    assert "UBND" in to_centre[0].text and story.tracking_code in to_centre[0].text
    assert {d.template for d in deliveries if d.unit_id != centre.id} >= {"handler_escalated"}
    assert len({d.delivery_id for d in deliveries}) == len(deliveries)
    # The step before names no centre: the unit head is the unit's business.
    assert all(d.unit_id != centre.id for d in told(story, story.escalated("reach", "unit_head"), record=record))


def test_the_centre_is_told_on_its_own_channels_when_the_directory_gives_it_some():
    """The centre was told at the generic unit webhook only, whatever channels the directory gave it."""
    story, record = Story(), CaseRecord()
    told(story, story.opened(), story.triaged(), record=record)
    centre = UnitRef(id="hcmc-2021/centre", name="Tổng đài 1022")
    channels = (NotifyChannel(channel="email", address="truongca@1022.hcmc.example"),
                NotifyChannel(channel="webhook", address=None))
    deliveries = told(story, story.escalated("reach", "unit_head", unit=centre, notify=channels), record=record)
    assert sorted((d.channel, d.target, d.template) for d in deliveries) == [
        ("email", "truongca@1022.hcmc.example", "triage_escalated"),
        ("webhook", "http://district/units/hcmc-2021/centre", "triage_escalated")]
    assert {d.unit_id for d in deliveries} == {centre.id}


def test_a_later_committed_date_brings_an_apology_with_the_new_date():
    story, record = Story(), CaseRecord()
    told(story, story.opened(), story.routed(), record=record)
    within = story.received_at + timedelta(days=3)
    later = story.received_at + timedelta(days=9)
    assert told(story, story.progress(within), record=record) == []
    [d] = told(story, story.progress(later), record=record)
    assert d.template == "apology_dated" and when(later) in d.text.replace(" ngày ", " ") and "xin lỗi" in d.text


def test_a_committed_date_moved_within_the_cases_time_is_no_lateness_to_apologise_for():
    """A unit that promised day 2 and then day 3 of a case due on day 5 had the citizen told, at
    once, that their request had no result on time."""
    story, record = Story(), CaseRecord()
    told(story, story.opened(), story.routed(), story.assigned(), record=record)
    due = datetime.fromisoformat(record.resolve_by)
    sooner, a_day_on, past_due = due - timedelta(days=2), due - timedelta(days=1), due + timedelta(days=4)
    assert told(story, story.progress(sooner), record=record) == []
    assert told(story, story.progress(a_day_on), record=record) == []
    [d] = told(story, story.progress(past_due), record=record)
    assert d.template == "apology_dated" and when(past_due) in d.text.replace(" ngày ", " ")


def test_errors_are_published_without_the_recipients_number_or_address():
    error = "HTTP 404: unknown number 0903123456 (+84903123456), mail binh@example.vn"
    assert redact(error, "+84903123456") == "HTTP 404: unknown number … (…), mail …"


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    retry, rng = Retry(max_attempts=6, base=1.0, cap=8.0), random.Random(7)
    for attempts, step in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 8)):
        delays = [retry.delay(attempts, rng) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays) and len(set(delays)) > 1


def test_by_default_a_message_outlasts_a_gateway_down_for_forty_minutes():
    # A citizen who left only a phone has no other route: their messages wait out the outage.
    settings = NotifierSettings()
    retry = Retry(settings.max_attempts, settings.backoff_base_seconds, settings.backoff_max_seconds)

    class Unlucky(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return a  # every wait the shortest the jitter allows
    shortest = sum(retry.delay(tries, Unlucky()) for tries in range(1, retry.max_attempts))
    assert shortest >= 40 * 60


def test_words_for_sms_without_diacritics_and_times_in_vietnam():
    assert without_diacritics("Phản ánh đã được chuyển đến UBND Đức") == "Phan anh da duoc chuyen den UBND Duc"
    assert when(datetime(2026, 12, 5, 10, 30, tzinfo=UTC)) == "17:30 05/12/2026"


def test_an_error_with_a_nul_can_be_stored():
    # A receiver's binary answer in an error failed every outcome write it was batched with.
    assert redact("HTTP 400: \x00\x01bad", "") == "HTTP 400: \x01bad"


def test_an_event_whose_version_the_notifiers_database_cannot_hold_is_refused_before_it_is_recorded():
    """Recorded, a version past PostgreSQL's int failed its batch's transaction at every reading:
    the partition stopped for good. It is refused with ValueError, which the handler's
    parse_or_dead_letter dead-letters."""
    from contracts.events import CASE_EVENT
    from services.notifier.handlers import storable

    story = Story()
    routed = story.routed()
    storable(routed)
    for version in (2**31, -(2**31) - 1):
        with pytest.raises(ValueError, match="past what PostgreSQL's int holds"):
            storable(CASE_EVENT.validate_json(routed.model_copy(update={"version": version}).model_dump_json()))
