"""When the kept Zalo OA token is refreshed: ahead of its expiry, and never so late that a token
shorter-lived than the margin is refreshed on every use."""

from datetime import UTC, datetime, timedelta

from services.intake.oa_token import Token

ISSUED = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
AHEAD = timedelta(hours=3)


def token(lifetime: timedelta) -> Token:
    return Token("t", ISSUED + lifetime, ISSUED)


def test_a_25_hour_token_is_refreshed_three_hours_before_it_expires():
    kept = token(timedelta(hours=25))
    assert not kept.due(AHEAD, ISSUED + timedelta(hours=21, minutes=59))
    assert kept.due(AHEAD, ISSUED + timedelta(hours=22))


def test_a_token_shorter_lived_than_the_margin_is_refreshed_at_half_its_life():
    kept = token(timedelta(hours=1))
    assert not kept.due(AHEAD, ISSUED + timedelta(minutes=29))
    assert kept.due(AHEAD, ISSUED + timedelta(minutes=30))


def test_a_seed_not_yet_exchanged_is_due_at_once():
    assert Token("", ISSUED, ISSUED).due(AHEAD, ISSUED)
