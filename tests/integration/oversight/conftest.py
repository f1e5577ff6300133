"""Fixtures of oversight's integration tests: a fresh database and the running app per module."""

import pytest

from tests.integration.oversight.support import DirectFeed, scratch_database, serve, settings_for


@pytest.fixture(scope="module")
def database(pg_admin_dsn):
    with scratch_database(pg_admin_dsn) as name:
        yield name


@pytest.fixture(scope="module")
def api(database, pg_port, kafka_bootstrap):
    """The API alone (no Kafka consumer), on a database the test fills through the projector."""
    with serve(settings_for(database, pg_port, kafka_bootstrap, consume=False)) as running:
        yield running


@pytest.fixture(scope="module")
def feed(api):
    return DirectFeed(api.settings)


@pytest.fixture(scope="module")
def live(database, pg_port, kafka_bootstrap):
    """The whole service: projecting case.events and notify.deliveries from the suite's Kafka."""
    with serve(settings_for(database, pg_port, kafka_bootstrap)) as running:
        yield running
