"""A consumer's read outlasts the broker's hold on a fetch: faststream sleeps after a read that
found nothing, so records the broker was still gathering when the read gave up waited again."""

import pytest

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
