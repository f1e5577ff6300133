"""A consumer's read outlasts the broker's hold on a fetch, and one that found nothing is followed
at once by the next: faststream slept after an empty read, so a record that came to an idle
consumer waited out the sleep before its handler saw it."""

import asyncio
import types

import anyio
import pytest
from aiokafka import TopicPartition
from faststream.kafka.subscriber.usecase import BatchSubscriber

from contracts.messaging import consumer_options
from services.notifier.settings import NotifierSettings
from services.oversight.settings import OversightSettings
from services.router.settings import RouterSettings


@pytest.mark.parametrize("gather_ms", [0, 20, 40, 100, 250])
def test_a_read_waits_longer_than_the_broker_may_hold_the_fetch(gather_ms):
    options = consumer_options("g", gather_ms=gather_ms)
    assert options["batch_timeout_ms"] > options.get("fetch_max_wait_ms", 0)


def test_the_services_gathering_consumers_read_past_their_gather():
    for settings in (RouterSettings(), NotifierSettings(), OversightSettings()):
        options = consumer_options("g", gather_ms=settings.gather_ms)
        assert options["fetch_max_wait_ms"] == settings.gather_ms > 0
        assert options["batch_timeout_ms"] > settings.gather_ms


class Consumer:
    """What a batch subscriber reads from: ``getmany`` answers each read in turn."""

    def __init__(self, *answers):
        self.answers, self.reads = list(answers), []

    async def getmany(self, timeout_ms, max_records):
        self.reads.append((timeout_ms, max_records))
        return self.answers.pop(0)


async def test_an_empty_read_is_not_followed_by_a_sleep(monkeypatch):
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(anyio, "sleep", sleep)
    subscriber = types.SimpleNamespace(batch_timeout_ms=90, max_records=500)
    consumer = Consumer({}, {TopicPartition("t", 1): ["b1", "b2"], TopicPartition("t", 0): ["a1"]})
    assert await BatchSubscriber.get_msg(subscriber, consumer) == ()
    assert slept == []
    assert await BatchSubscriber.get_msg(subscriber, consumer) == ("b1", "b2", "a1")
    assert consumer.reads == [(90, 500), (90, 500)]


async def test_a_read_without_a_time_out_still_lets_the_service_run():
    """aiokafka answers a read with no time-out at once, without awaiting anything: without a
    yield, a consumer so configured would hold its event loop and the whole service with it."""
    ran = []

    async def health_check():
        ran.append(True)

    task = asyncio.create_task(health_check())
    subscriber = types.SimpleNamespace(batch_timeout_ms=0, max_records=500)
    assert await BatchSubscriber.get_msg(subscriber, Consumer({})) == ()
    assert ran == [True]
    await task
