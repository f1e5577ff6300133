"""How long the chatbot goes on trying a reply the OA API did not take."""

from services.intake.chatbot import retry_in

DAY = 24 * 3600.0


def test_a_reply_is_tried_through_an_outage_of_hours_not_only_two_minutes():
    waits, age, attempts = [], 0.0, 0
    while (wait := retry_in(attempts, age, True, DAY)) is not None and age < 3 * 3600:
        waits.append(wait)
        age, attempts = age + wait, attempts + 1
    assert age >= 3 * 3600, "still tried three hours into an OA API or token outage"
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0] and max(waits) == 300.0


def test_it_is_given_up_once_as_old_as_a_conversation_may_be():
    assert retry_in(40, DAY - 301, True, DAY) == 300.0
    assert retry_in(40, DAY - 299, True, DAY) is None


def test_a_refusal_no_later_try_can_change_is_given_up_at_once():
    """The citizen blocked the OA, or Zalo will not take the message."""
    assert retry_in(0, 0.0, False, DAY) is None
