"""Confirmations on Zalo while Kafka does not take them: the first waits out the publish time-out,
the next ones are put off at once, so the few dialogue steps stay free for every other citizen."""

import asyncio

import pytest

from contracts.categories import load
from services.intake.application import Unavailable
from services.intake.chatbot import PUBLISH_QUIET_SECONDS, Chatbot
from services.intake.dialogue import Conversation, Turn
from services.intake.domain import Submission
from services.intake.settings import IntakeSettings

CONFIRMED = Turn(Conversation(), [], Submission(full_name="Lê Văn Tám", phone="0934567892", category="lighting",
                                                 address="88 Phan Văn Trị, Phường 10, Gò Vấp", description="Đèn hỏng"),
                 "zalo-msg-1")


class KafkaDown:
    """Intake whose publish waits out its time-out, then gives up."""

    def __init__(self) -> None:
        self.asked = 0

    async def submit(self, request, sender):
        self.asked += 1
        await asyncio.sleep(0.2)
        raise Unavailable("Kafka did not acknowledge in time")


async def test_a_confirmation_after_one_kafka_did_not_take_is_put_off_without_waiting():
    intake = KafkaDown()
    bot = Chatbot(intake, None, IntakeSettings(tracking_code_key="k" * 32), load())
    for _ in range(3):
        with pytest.raises(Unavailable):
            await bot._submit("user-1", CONFIRMED, 1_700_000_000.0)
    assert intake.asked == 1, "the second and third confirmations waited on Kafka too"
    # Once the quiet time is over, Kafka is asked again.
    bot.publish_quiet_until = asyncio.get_running_loop().time() - 1
    with pytest.raises(Unavailable):
        await bot._submit("user-2", CONFIRMED, 1_700_000_000.0)
    assert intake.asked == 2 and PUBLISH_QUIET_SECONDS >= 5
