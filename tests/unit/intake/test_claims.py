"""How a batch of claims is answered from what the database said of each request."""

import uuid

from services.intake.store import Claim, Limit, _answers, _Claiming


def claiming(sender: str | None, fingerprint: str = "f", limit: int = 3) -> _Claiming:
    return _Claiming(uuid.uuid4(), "web", "HCM-1", fingerprint, Limit(sender, limit, 600) if sender else None)


def row(ours: bool, hits: int | None = None, state: str | None = None, fingerprint: str | None = None) -> dict:
    return {"ours": ours, "hits": hits, "wait_seconds": 42 if hits else None, "state": state, "fingerprint": fingerprint}


def test_a_senders_requests_take_their_places_in_its_window_in_arrival_order():
    # Two came earlier in this window; these three make five against a limit of four.
    batch = [claiming("phone:1", limit=4) for _ in range(3)]
    answers = _answers(batch, {c.request_id: row(True, hits=5) for c in batch})
    assert [answers[c.request_id] for c in batch] == [Claim("ours"), Claim("ours"), Claim("ours", wait=42)]


def test_senders_are_counted_apart_and_a_request_without_a_sender_is_not_counted():
    mine, theirs, anonymous = claiming("phone:1", limit=1), claiming("phone:2", limit=1), claiming(None)
    answers = _answers([mine, theirs, anonymous], {mine.request_id: row(True, hits=1), theirs.request_id: row(True, hits=2),
                                                   anonymous.request_id: row(True)})
    assert answers[mine.request_id] == Claim("ours")
    assert answers[theirs.request_id] == Claim("ours", wait=42)
    assert answers[anonymous.request_id] == Claim("ours")


def test_a_request_that_is_not_ours_is_answered_from_its_receipt():
    accepted, sending, other, gone = (claiming("phone:1") for _ in range(4))
    answers = _answers([accepted, sending, other, gone], {
        accepted.request_id: row(False, state="accepted", fingerprint="f"),
        sending.request_id: row(False, state="pending", fingerprint="f"),
        other.request_id: row(False, state="accepted", fingerprint="another request"),
        gone.request_id: row(False)})
    assert answers[accepted.request_id] == Claim("accepted")
    assert answers[sending.request_id] == Claim("in_progress")
    assert answers[other.request_id] == Claim("conflict")
    assert answers[gone.request_id] == Claim("in_progress"), "released meanwhile: the sender retries"


def test_a_receipt_an_older_intake_made_answers_the_same_content_as_accepted():
    """Older intakes hashed every field of a request; a retry of what they took is hashed both ways."""
    retry = _Claiming(uuid.uuid4(), "web", "HCM-1", "new way", None, old_fingerprint="old way")
    answers = _answers([retry], {retry.request_id: row(False, state="accepted", fingerprint="old way")})
    assert answers[retry.request_id] == Claim("accepted")
