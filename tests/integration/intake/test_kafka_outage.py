"""A sender retrying one request through a Kafka outage, as told by Retry-After, is not limited for it."""

import asyncio
import uuid

import httpx
import pytest

from tests.integration.intake.test_web import REQUEST, post

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_retrying_one_request_through_a_kafka_outage_does_not_use_up_the_senders_limit(
        start_intake, monkeypatch):
    intake = start_intake(sender_limit=2, publish_timeout_seconds=1.0)

    async def no_acknowledgement(*_, **__):  # what a publish gets while Kafka is down
        await asyncio.Event().wait()

    sender = {**REQUEST, "phone": "0912 000 444"}
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=15) as client:
        monkeypatch.setattr(intake.app.state.intake.broker, "publish", no_acknowledgement)
        during = [await post(client, intake, sender, key) for _ in range(4)]
        monkeypatch.undo()
        after = await post(client, intake, sender, key)
        others = [await post(client, intake, sender) for _ in range(2)]
    assert [a.status_code for a in during] == [503] * 4, [a.text for a in during]
    assert after.status_code == 202, after.text
    assert [o.status_code for o in others] == [202, 429], "the requests Kafka took still count"
