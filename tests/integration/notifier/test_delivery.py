"""The notifier as a real process on real Kafka and PostgreSQL, its providers local stand-ins:
who hears what, retries, dead letters and permanent failures.

The broker is shared: this notifier also reads other suites' cases, and their notifiers read
ours. So every count below is about this test's own cases, as this test's notifier announced them.
"""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts import topics
from contracts.events import Citizen, NotifyChannel, UnitRef
from services.notifier.fitting import segments
from tests.integration.notifier.harness import Watch, as_router, ours, publish
from tests.support.mesh import eventually
from tests.unit.notifier.factories import LONG_ANSWER, Story

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_handlers_and_citizens_hear_on_their_own_channels(kafka_bootstrap, start_notifier, stand_in, mailbox,
                                                                outcomes):
    start_notifier()
    web = Story(citizen=Citizen(phone="+84281022001"))
    zalo = Story(channel="zalo", citizen=Citizen(zalo_user_id="zl-citizen-1", phone="+84281022002"))
    late_zalo = Story(channel="zalo", citizen=Citizen(zalo_user_id="zl-citizen-2", phone="+84281022003"),
                      received_at=datetime.now(UTC) - timedelta(days=8))
    app = Story(channel="app", citizen=Citizen(app_user_id="app-42"), language="en")
    mailer = Story(citizen=Citizen(email="binh@example.vn"))
    notify = (NotifyChannel(channel="webhook"), NotifyChannel(channel="email", address="tiepnhan@phunhuan.example.vn"),
              NotifyChannel(channel="zalo", address="zl-handler"))
    stories = (web, zalo, late_zalo, app, mailer)
    cases = {s.case_id for s in stories}
    events = []
    for story in stories:
        outcomes.cases.add(str(story.case_id))
        events += as_router(story.opened(), story.routed(), story.assigned(notify))
    events += as_router(web.escalated("resolve"), web.resolved())
    await publish(kafka_bootstrap, events)

    # each story: received and routed to the citizen, webhook, e-mail and Zalo to the handlers;
    # the web story also its escalation on the three handler channels, an apology and the result.
    await outcomes.until(lambda seen: len(seen) >= 5 * 5 + 5, 60, "every delivery's outcome")
    failures = [(v["channel"], v["template"], v["error"]) for v, _ in outcomes.seen if v["event_type"] != "NotificationSent"]
    assert failures == [], "\n".join(map(str, failures))

    web_texts = [r.body["text"] for r in stand_in.about("/sms", [web.case_id])]
    assert len(web_texts) == 4  # received, routed, apology, resolved — in that order
    assert web.tracking_code in web_texts[0] and "UBND Quận Phú Nhuận" in web_texts[1]
    assert "xin lỗi" in web_texts[2] and "Đã hỗ trợ 20kg gạo." in web_texts[3]

    zalo_to = stand_in.about("/zalo", ["zl-citizen-1", "zl-citizen-2", "zl-handler"])
    assert [r.body["recipient"]["user_id"] for r in zalo_to].count("zl-citizen-1") == 2
    assert all(r.headers["access_token"] == "test-token" for r in zalo_to)
    assert [r.body["to"] for r in stand_in.about("/sms", [late_zalo.case_id])] == ["+84281022003"] * 2, \
        "past Zalo's window the citizen gets SMS"
    late_notes = {v["note"] for v, _ in outcomes.seen if v["case_id"] == str(late_zalo.case_id) and v["recipient"] == "citizen"}
    assert len(late_notes) == 1 and "reply window closed" in late_notes.pop()

    [push, _] = stand_in.about("/push", [app.case_id])
    assert push.body["to"] == "app-42" and "Mã tra cứu" in push.body["text"] and "Tracking code" in push.body["text"]
    assert len(mailbox.to("binh@example.vn")) == 2

    handler_mail = mailbox.to("tiepnhan@phunhuan.example.vn")
    assert len(handler_mail) == 5 + 1  # five assignments and the web case's escalation
    assert len({m["Message-ID"] for m in handler_mail}) == 6
    assert [r.body["recipient"]["user_id"] for r in zalo_to].count("zl-handler") == 6
    webhooks = stand_in.about("/units/hcm-q-phu-nhuan", cases)
    assert sorted(r.body["event"]["event_type"] for r in webhooks) == ["AssignmentIssued"] * 5 + ["CaseEscalated"]


async def test_a_provider_that_fails_twice_then_succeeds_delivers_once(kafka_bootstrap, start_notifier, stand_in,
                                                                        outcomes):
    stand_in.answer("/sms", lambda request, nth: (503, {"error": "busy"}, 0) if nth <= 2 else (200, {"ok": True}, 0))
    notifier = start_notifier()
    story = Story()
    outcomes.cases.add(str(story.case_id))
    await publish(kafka_bootstrap, as_router(story.opened()))

    [(sent, _)] = await outcomes.until(lambda seen: seen, 30, "the delivery's outcome")
    assert sent["event_type"] == "NotificationSent" and sent["attempts"] == 3 and sent["template"] == "received"
    arrivals = stand_in.arrivals("/sms", [story.case_id])
    assert arrivals == {sent["delivery_id"]: 3}, "three tries of one message, under one Idempotency-Key"
    await outcomes.quiet_for(1.0)
    assert len(outcomes.seen) == 1
    metrics = dict(line.split() for line in httpx.get(f"http://127.0.0.1:{notifier.port}/metrics").text.splitlines())
    assert int(metrics["notifier_deliveries_retried_total"]) >= 2 and int(metrics["notifier_deliveries_sent_total"]) >= 1


async def test_a_provider_down_for_good_ends_in_the_dead_letter_topic_and_notification_failed(
        kafka_bootstrap, start_notifier, stand_in, outcomes, group_id):
    stand_in.answer("/units/", lambda request, nth: (503, {"error": "down"}, 0))
    start_notifier()
    story = Story()
    outcomes.cases.add(str(story.case_id))
    assignment = story.assigned()
    async with Watch(kafka_bootstrap, topics.dlq(topics.UNIT_ASSIGNMENTS), ours(group_id, outcomes.cases)) as dead:
        await publish(kafka_bootstrap, [(topics.UNIT_ASSIGNMENTS, assignment)])
        [(failed, _)] = await outcomes.until(lambda seen: seen, 30, "the failure")
        [(letter, headers)] = await dead.until(lambda seen: seen, 10, "the dead letter")

    assert failed["event_type"] == "NotificationFailed" and failed["permanent"] is False
    assert failed["attempts"] == 4 and "HTTP 503" in failed["error"]
    assert letter["event_id"] == str(assignment.event_id)
    assert headers["x-delivery-id"] == failed["delivery_id"] and "HTTP 503" in headers["x-error"]
    assert headers["x-source-topic"] == topics.UNIT_ASSIGNMENTS and headers["x-permanent"] == "false"
    assert stand_in.arrivals("/units/", [story.case_id]) == {failed["delivery_id"]: 4}


async def test_an_unknown_number_is_not_retried(kafka_bootstrap, start_notifier, stand_in, outcomes):
    stand_in.answer("/sms", lambda request, nth: (404, {"error": "unknown number +84281022009"}, 0))
    start_notifier()
    story = Story(citizen=Citizen(phone="+84281022009"))
    outcomes.cases.add(str(story.case_id))
    await publish(kafka_bootstrap, as_router(story.opened()))

    [(failed, _)] = await outcomes.until(lambda seen: seen, 30, "the failure")
    assert failed["event_type"] == "NotificationFailed" and failed["permanent"] is True and failed["attempts"] == 1
    assert "HTTP 404" in failed["error"] and "1022009" not in failed["error"], "no phone numbers in published errors"
    await outcomes.quiet_for(1.0)
    assert sum(stand_in.arrivals("/sms", [story.case_id]).values()) == 1


async def test_a_slow_provider_does_not_hold_up_the_other_channels(kafka_bootstrap, start_notifier, stand_in, outcomes):
    stand_in.answer("/sms", lambda request, nth: (200, {"ok": True}, 6.0))
    start_notifier(NOTIFIER_SEND_TIMEOUT_SECONDS="10", NOTIFIER_LEASE_SECONDS="15")  # slow, never cut short
    stories = [Story() for _ in range(5)]
    cases = {s.case_id for s in stories}
    events = []
    for story in stories:
        outcomes.cases.add(str(story.case_id))
        events += as_router(story.opened(), story.assigned())
    await publish(kafka_bootstrap, events)

    def sent(channel):
        return [v for v, _ in outcomes.seen if v["channel"] == channel and v["event_type"] == "NotificationSent"]
    await outcomes.until(lambda _: len(sent("webhook")) == 5, 20, "the webhooks")
    assert sent("sms") == [], "the webhooks waited for the slow SMS gateway"
    await outcomes.until(lambda _: len(sent("sms")) == 5, 30, "the SMS outcomes")
    arrived = stand_in.about("/sms", cases)
    assert len(arrived) == 5 and max(r.alongside for r in arrived) == 4, "the five slow SMS went out side by side"


async def test_a_district_whose_service_hangs_does_not_hold_up_the_other_districts(kafka_bootstrap, start_notifier,
                                                                                   stand_in, outcomes):
    # Four slots for webhooks: without a share per receiver, the slow district's eight took all four.
    hung = UnitRef(id="hcm-q-hung", name="UBND Quận Treo", admin_code="999")
    stand_in.answer(f"/units/{hung.id}", lambda request, nth: (200, {"ok": True}, 3.5))  # within the time-out
    start_notifier(NOTIFIER_CONCURRENCY="4", NOTIFIER_SEND_TIMEOUT_SECONDS="10", NOTIFIER_LEASE_SECONDS="15")
    stalled, others = [Story() for _ in range(8)], [Story() for _ in range(3)]
    for story in stalled + others:
        outcomes.cases.add(str(story.case_id))
    await publish(kafka_bootstrap, [e for s in stalled for e in as_router(s.opened(), s.assigned(unit=hung))])
    await eventually(lambda: stand_in.about(f"/units/{hung.id}", [s.case_id for s in stalled]), 20,
                     "the slow district's first assignment")
    await publish(kafka_bootstrap, [e for s in others for e in as_router(s.opened(), s.assigned())])

    def webhooks_sent(stories):
        cases = {str(s.case_id) for s in stories}
        return [v for v, _ in outcomes.seen if v["channel"] == "webhook" and v["case_id"] in cases
                and v["event_type"] == "NotificationSent"]
    await outcomes.until(lambda _: len(webhooks_sent(others)) == 3, 30, "the other district's assignments")
    # Behind the slow district they would wait for its sends in all four slots: four or more arrived by then.
    assert len(stand_in.about(f"/units/{hung.id}", [s.case_id for s in stalled])) <= 2, "its one slot, not four"
    await outcomes.until(lambda _: len(webhooks_sent(stalled)) == 8, 60, "the slow district's, one at a time")
    assert stand_in.arrivals(f"/units/{hung.id}", [s.case_id for s in stalled]).most_common(1)[0][1] == 1, \
        "each sent once"


async def test_zalo_and_smtp_refusals_are_told_apart_from_hiccups(kafka_bootstrap, start_notifier, stand_in, mailbox,
                                                                 outcomes):
    # Zalo says no in the body of a 200: -213 (the user does not follow the OA) is final, -32 (rate limit) is not.
    def zalo(request, nth):
        if request.body["recipient"]["user_id"] == "zl-throttled":
            return 200, {"error": -32 if nth <= 2 else 0, "message": "Rate limit"}, 0.0
        return 200, {"error": -213, "message": "User has not followed OA"}, 0.0
    stand_in.answer("/zalo", zalo)
    mailbox.unknown.add("nobody@example.vn")
    start_notifier()
    unfollowed = Story(channel="zalo", citizen=Citizen(zalo_user_id="zl-unfollowed"))
    throttled = Story(channel="zalo", citizen=Citizen(zalo_user_id="zl-throttled"))
    no_mailbox = Story(citizen=Citizen(email="nobody@example.vn"))
    stories = (unfollowed, throttled, no_mailbox)
    outcomes.cases.update(str(s.case_id) for s in stories)
    await publish(kafka_bootstrap, [pair for s in stories for pair in as_router(s.opened())])

    seen = await outcomes.until(lambda seen: len(seen) == 3, 30, "three outcomes")
    by_case = {v["case_id"]: v for v, _ in seen}
    refused = by_case[str(unfollowed.case_id)]
    assert refused["event_type"] == "NotificationFailed" and refused["permanent"] and refused["attempts"] == 1
    assert "Zalo error -213" in refused["error"]
    assert by_case[str(throttled.case_id)]["event_type"] == "NotificationSent"
    assert by_case[str(throttled.case_id)]["attempts"] == 3
    bounced = by_case[str(no_mailbox.case_id)]
    assert bounced["event_type"] == "NotificationFailed" and bounced["permanent"] and "550" in bounced["error"]
    assert "nobody@example.vn" not in bounced["error"]


async def test_a_nul_published_before_units_text_was_cleaned_is_dead_lettered_and_the_rest_told(
        kafka_bootstrap, start_notifier, outcomes):
    """The router once published a unit's note as it came, NUL and all: the notifier failed to record
    it in PostgreSQL and read the same batch again for good, and no one after it was told anything."""
    start_notifier()
    old, after = Story(citizen=Citizen(phone="+84281022010")), Story(citizen=Citizen(phone="+84281022011"))
    outcomes.cases.update({str(old.case_id), str(after.case_id)})
    nul = old.resolved("Đã trao\x00 20 kg gạo.")
    async with Watch(kafka_bootstrap, topics.dlq(topics.CASE_EVENTS),
                     lambda value, _: value.get("event_id") == str(nul.event_id)) as dead:
        await publish(kafka_bootstrap, as_router(old.opened(), nul, after.opened()))
        [(_, headers)] = await dead.until(lambda seen: seen, 30, "the dead letter")
        await outcomes.until(lambda seen: str(after.case_id) in {v["case_id"] for v, _ in seen}, 30,
                             "the next citizen told")
    assert "NUL" in headers["x-error"] and headers["x-source-topic"] == topics.CASE_EVENTS


async def test_a_citizen_refused_for_good_on_their_own_channel_hears_by_sms_instead(kafka_bootstrap, start_notifier,
                                                                                   stand_in, outcomes):
    """An app user whose device the push gateway does not know, a Zalo user who unfollowed the OA:
    both left a phone, so each message goes on by SMS, once and in order; the refusal is still told."""
    stand_in.answer("/push", lambda request, nth: (404, {"error": "unknown device"}, 0.0))
    stand_in.answer("/zalo", lambda request, nth: (200, {"error": -213, "message": "User has not followed OA"}, 0.0))
    start_notifier()
    app = Story(channel="app", citizen=Citizen(app_user_id="app-404", phone="+84281022021"))
    zalo = Story(channel="zalo", citizen=Citizen(zalo_user_id="zl-gone", phone="+84281022022"))
    outcomes.cases.update({str(app.case_id), str(zalo.case_id)})
    await publish(kafka_bootstrap, [pair for s in (app, zalo) for pair in as_router(s.opened(), s.routed())])

    seen = await outcomes.until(lambda seen: len(seen) >= 8, 60, "a refusal and an SMS for each message")
    for story, own in ((app, "push"), (zalo, "zalo")):
        told = [v for v, _ in seen if v["case_id"] == str(story.case_id)]
        assert sorted((v["event_type"], v["channel"], v["template"]) for v in told) == [
            ("NotificationFailed", own, "received"), ("NotificationFailed", own, "routed"),
            ("NotificationSent", "sms", "received"), ("NotificationSent", "sms", "routed")]
        assert all(v["permanent"] and v["error"].endswith("; sent by SMS instead")
                   for v in told if v["event_type"] == "NotificationFailed")
        assert all("refused it" in v["note"] for v in told if v["event_type"] == "NotificationSent")
        texts = [r.body["text"] for r in stand_in.about("/sms", [story.case_id])]
        assert len(texts) == 2, "each message once"
        assert story.tracking_code in texts[0] and "UBND Quận Phú Nhuận" in texts[1], "in order"
    await outcomes.quiet_for(1.0)
    assert len(outcomes.seen) == 8


async def test_a_citizen_whose_sms_gateway_refuses_every_try_hears_by_email_but_never_twice(
        kafka_bootstrap, start_notifier, stand_in, mailbox, outcomes):
    """The SMS gateway is down (503) for one citizen's every try: the message goes on by the e-mail
    they left. For another it takes the message and never answers; for a third it does that once,
    then is down. Those two may have arrived, so they fail without a second message by e-mail."""
    def sms(request, nth):
        if request.body["to"] == "+84281022041" or (request.body["to"] == "+84281022043" and nth > 1):
            return 503, {"error": "gateway down"}, 0.0
        if request.body["to"] in ("+84281022042", "+84281022043"):
            return 200, {"ok": True}, 20.0  # far past the send time-out below
        return 200, {"ok": True}, 0.0
    stand_in.answer("/sms", sms)
    start_notifier(NOTIFIER_SEND_TIMEOUT_SECONDS="3", NOTIFIER_LEASE_SECONDS="7")
    down = Story(citizen=Citizen(phone="+84281022041", email="down@example.vn"))
    silent = Story(citizen=Citizen(phone="+84281022042", email="silent@example.vn"))
    once = Story(citizen=Citizen(phone="+84281022043", email="once@example.vn"))
    stories = (down, silent, once)
    outcomes.cases.update(str(s.case_id) for s in stories)
    await publish(kafka_bootstrap, [pair for s in stories for pair in as_router(s.opened())])

    seen = await outcomes.until(lambda seen: len(seen) >= 4, 90, "three failures and the e-mail")
    told = sorted((v["case_id"], v["event_type"], v["channel"]) for v, _ in seen)
    assert told == sorted([(str(down.case_id), "NotificationFailed", "sms"),
                           (str(down.case_id), "NotificationSent", "email"),
                           (str(silent.case_id), "NotificationFailed", "sms"),
                           (str(once.case_id), "NotificationFailed", "sms")])
    by = {(v["case_id"], v["event_type"]): v for v, _ in seen}
    refused, unanswered, earlier = (by[str(s.case_id), "NotificationFailed"] for s in stories)
    assert refused["attempts"] == unanswered["attempts"] == earlier["attempts"] == 4
    assert not refused["permanent"] and not unanswered["permanent"] and not earlier["permanent"]
    assert "HTTP 503" in refused["error"] and refused["error"].endswith("; sent by e-mail instead")
    assert "the last unanswered" in unanswered["error"] and "instead" not in unanswered["error"]
    assert "HTTP 503" in earlier["error"] and earlier["error"].endswith("an earlier try went unanswered, so not sent"
                                                                       " by another route")
    [mail] = mailbox.to("down@example.vn")
    assert down.tracking_code in mail.get_payload(decode=True).decode()
    await outcomes.quiet_for(2.0)
    assert len(outcomes.seen) == 4 and mailbox.to("silent@example.vn") == mailbox.to("once@example.vn") == []


async def test_a_citizens_later_messages_do_not_each_wait_out_the_sms_gateways_refusals(
        kafka_bootstrap, start_notifier, stand_in, mailbox, outcomes):
    """The SMS gateway refuses (503) every try for one citizen while their case is opened, routed
    and resolved. Once the first message has had its tries, all three reach their e-mail, in order;
    the later two never go to the SMS gateway, each to be refused as many times again; nor does a
    message planned soon after."""
    stand_in.answer("/sms", lambda request, nth: (503, {"error": "gateway down"}, 0.0))
    notifier = start_notifier()
    story = Story(citizen=Citizen(phone="+84281022044", email="later@example.vn"))
    outcomes.cases.add(str(story.case_id))
    await publish(kafka_bootstrap, as_router(story.opened(), story.routed(), story.resolved("Đã hỗ trợ 20kg gạo.")))

    seen = await outcomes.until(lambda seen: len(seen) >= 6, 60, "three refusals and three e-mails")
    failed = sorted((v["template"], v["attempts"]) for v, _ in seen if v["event_type"] == "NotificationFailed")
    assert failed == [("received", 4), ("resolved", 0), ("routed", 0)]
    assert sorted(v["template"] for v, _ in seen if v["event_type"] == "NotificationSent"
                  and v["channel"] == "email") == ["received", "resolved", "routed"]
    assert len(stand_in.about("/sms", [story.case_id])) == 4, "only the first message was tried by SMS"
    mails = [m.get_payload(decode=True).decode() for m in mailbox.to("later@example.vn")]
    assert len(mails) == 3
    assert story.tracking_code in mails[0] and "UBND Quận Phú Nhuận" in mails[1] and "20kg gạo" in mails[2]
    await outcomes.quiet_for(1.0)
    assert len(outcomes.seen) == 6
    # The unit then puts off its date: the apology goes by e-mail at once, not after another hour.
    await publish(kafka_bootstrap, as_router(story.progress(datetime.now(UTC) + timedelta(days=10))))
    seen = await outcomes.until(lambda seen: len(seen) >= 7, 30, "the apology by e-mail")
    [(apology, _)] = [(v, h) for v, h in seen if v["template"] == "apology_dated"]
    assert (apology["event_type"], apology["channel"], apology["attempts"]) == ("NotificationSent", "email", 1)
    assert apology["note"].startswith("SMS refused every try of an earlier message; passed over until ")
    assert len(stand_in.about("/sms", [story.case_id])) == 4
    # What an operator's alert reads: the SMS gateway has failed every try of late, e-mail has not.
    metrics = dict(line.split() for line in httpx.get(f"http://127.0.0.1:{notifier.port}/metrics").text.splitlines())
    assert int(metrics['notifier_failed_tries_in_a_row{channel="sms"}']) >= 4
    assert metrics['notifier_failed_tries_in_a_row{channel="email"}'] == "0"


async def test_a_message_left_on_a_channel_no_longer_configured_goes_on_by_sms(kafka_bootstrap, start_notifier,
                                                                             stand_in, outcomes):
    """Zalo's setting is emptied while a Zalo citizen's message waits for its next try: it neither
    waits for good nor holds back the citizen's next message; both go by SMS, in order."""
    stand_in.answer("/zalo", lambda request, nth: (200, {"error": -32, "message": "Rate limit"}, 0.0))
    slowly = {"NOTIFIER_MAX_ATTEMPTS": "50", "NOTIFIER_BACKOFF_BASE_SECONDS": "6", "NOTIFIER_BACKOFF_MAX_SECONDS": "6"}
    first = start_notifier(**slowly)
    story = Story(channel="zalo", citizen=Citizen(zalo_user_id="zl-moved", phone="+84281022031"))
    outcomes.cases.add(str(story.case_id))
    await publish(kafka_bootstrap, as_router(story.opened(), story.routed()))
    await eventually(lambda: stand_in.about("/zalo", ["zl-moved"]), 30, "the first try on Zalo")
    first.stop()
    # While another notifier may still have the provider (a rolling change), a fresh one is left alone.
    rolling = start_notifier(**slowly, NOTIFIER_ZALO_API_URL="")
    await outcomes.quiet_for(8)
    assert [v for v, _ in outcomes.seen if v["event_type"] == "NotificationFailed"] == []
    rolling.stop()
    start_notifier(**slowly, NOTIFIER_ZALO_API_URL="", NOTIFIER_UNCONFIGURED_AFTER_SECONDS="1")

    def by_sms(seen):
        return [v for v, _ in seen if v["channel"] == "sms" and v["event_type"] == "NotificationSent"]
    await outcomes.until(lambda seen: len(by_sms(seen)) == 2, 60, "both messages by SMS")
    [refused, *_] = [v for v, _ in outcomes.seen if v["event_type"] == "NotificationFailed"]
    assert (refused["channel"], refused["template"]) == ("zalo", "received") and "not configured" in refused["error"]
    texts = [r.body["text"] for r in stand_in.about("/sms", [story.case_id])]
    assert len(texts) == 2 and story.tracking_code in texts[0] and "UBND Quận Phú Nhuận" in texts[1]


async def test_a_long_answer_reaches_the_sms_gateway_cut_to_its_segments_and_the_app_whole(
        kafka_bootstrap, start_notifier, stand_in, outcomes):
    """The result of a web request goes by SMS within three segments; an app user's, whose device
    the push gateway does not know, goes by push whole and then, refused, by SMS cut short."""
    stand_in.answer("/push", lambda request, nth: (404, {"error": "unknown device"}, 0.0))
    start_notifier()
    web = Story(citizen=Citizen(phone="+84281022041"))
    app = Story(channel="app", citizen=Citizen(app_user_id="app-404-long", phone="+84281022042"))
    outcomes.cases.update({str(web.case_id), str(app.case_id)})
    await publish(kafka_bootstrap, [pair for s in (web, app) for pair in as_router(s.opened(), s.routed(),
                                                                                   s.resolved(LONG_ANSWER))])

    await outcomes.until(lambda seen: len(seen) >= 3 + 6, 60, "three messages each, the app's refused and by SMS")
    for story in (web, app):
        *_, result = [r.body["text"] for r in stand_in.about("/sms", [story.case_id])]
        assert segments(result) <= 3 and result.endswith("...")
        assert result.startswith(f"Phản ánh {story.tracking_code} đã có kết quả từ UBND Quận Phú Nhuận: Ngày")
    *_, pushed = stand_in.about("/push", [app.case_id])
    assert pushed.body["text"].endswith(LONG_ANSWER)
