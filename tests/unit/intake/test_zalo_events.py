"""Zalo webhook events: the signature, the age window, and reading ids that arrive as strings."""

import hashlib
import json

import pytest

from services.intake.domain import Problem, Submission
from services.intake.zalo_events import signature, verified_event

APP, SECRET, NOW = "3608465249409039670", "oa-secret-for-tests", 1_795_000_000_000
EVENT = {"app_id": APP, "event_name": "user_send_text", "timestamp": str(NOW - 1000),
         "sender": {"id": "246845883529197922"}, "recipient": {"id": "388613280878808645"},
         "message": {"msg_id": "96d3cdf3af150460909", "text": "xin chào"}}


def verify(event=EVENT, body=None, header=None, now=NOW):
    body = body if body is not None else json.dumps(event).encode()
    header = header if header is not None else signature(APP, body, str(event["timestamp"]), SECRET)
    return verified_event(body, header, APP, SECRET, now_ms=now, max_age_ms=300_000)


def test_the_signature_is_sha256_of_app_id_body_timestamp_and_secret():
    body = b'{"a":1}'
    assert signature(APP, body, "123", SECRET) == "mac=" + hashlib.sha256(
        (APP + '{"a":1}' + "123" + SECRET).encode()).hexdigest()


def test_a_signed_recent_event_is_read_with_its_string_ids():
    event = verify()
    assert event.user_id == "246845883529197922" and event.key == "96d3cdf3af150460909"
    incoming = event.incoming()
    assert incoming.kind == "text" and incoming.text == "xin chào" and incoming.at == (NOW - 1000) / 1000


def test_numbers_where_strings_are_expected_are_taken_as_strings():
    event = verify({**EVENT, "timestamp": NOW, "sender": {"id": 246845883529197922}})
    assert event.user_id == "246845883529197922"


@pytest.mark.parametrize("what", ["forged", "missing", "other app", "not json", "nested too deep", "stale",
                                  "from the future"])
def test_forged_or_stale_events_are_refused_with_401(what):
    body, header, event, now = None, None, EVENT, NOW
    if what == "forged":
        header = signature(APP, json.dumps(EVENT).encode(), EVENT["timestamp"], "guessed")
    elif what == "missing":
        header = ""
    elif what == "other app":
        event = {**EVENT, "app_id": "1"}
    elif what == "not json":
        body = b"not json"
        header = signature(APP, body, "", SECRET)
    elif what == "nested too deep":  # json.loads raised RecursionError, and the webhook answered 500
        body, header = b"[" * 100_000, "mac=0"
    elif what == "stale":
        now = NOW + 10 * 60 * 1000
    elif what == "from the future":
        now = NOW - 10 * 60 * 1000
    with pytest.raises(Problem) as refused:
        verify(event, body, header, now)
    assert refused.value.status == 401 and refused.value.field == "X-ZEvent-Signature"


def test_an_authentic_event_without_a_readable_timestamp_is_a_bad_request():
    with pytest.raises(Problem) as refused:
        verify({**EVENT, "timestamp": "soon"})
    assert refused.value.status == 400


def test_events_that_do_not_concern_the_dialogue_are_only_acknowledged():
    seen = verify({**EVENT, "event_name": "user_seen_message", "message": {"msg_ids": ["a", "b"]}})
    assert seen.incoming() is None
    follow = verify({k: v for k, v in EVENT.items() if k not in ("message", "sender")}
                    | {"event_name": "follow", "follower": {"id": "42"}})
    assert follow.user_id == "42" and follow.key == f"follow:42:{EVENT['timestamp']}" and follow.incoming().kind == "follow"


def test_an_attachment_link_a_unit_could_not_open_is_dropped_when_it_arrives():
    """Kept, a link without a host failed the whole request when the citizen confirmed, and the
    conversation was lost with it; the one that can be opened is kept."""
    attachments = [{"type": "image", "payload": {"url": url, "name": "anh.jpg"}}
                   for url in ("https://", "https:///anh.jpg", "https://zalo.example.vn/anh.jpg")]
    image = verify({**EVENT, "event_name": "user_send_image",
                    "message": {"msg_id": "96d3cdf3af150460910", "attachments": attachments}})
    incoming = image.incoming()
    assert incoming.kind == "attachment"
    assert [a["url"] for a in incoming.attachments] == ["https://zalo.example.vn/anh.jpg"]
    Submission(full_name="Lê Văn Tám", phone="0934567891", address="88 Phan Văn Trị, Gò Vấp",
               category="lighting", description="Đèn đường hỏng cả dãy", attachments=incoming.attachments)
