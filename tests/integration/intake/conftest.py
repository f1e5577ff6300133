"""Fixtures for intake's integration tests: a fresh intake database per test, intake apps on
loopback sockets, this run's channel secrets, the OA stand-in and a tail of the real topic."""

import pytest

from tests.integration.intake.harness import KafkaTail, RunningIntake, Secrets, ZaloOA, settings_for
from tests.support.databases import fresh_database


@pytest.fixture(scope="session")
def keys() -> Secrets:
    return Secrets()


@pytest.fixture
async def intake_database(pg_admin_dsn) -> str:
    return await fresh_database(pg_admin_dsn, "intake_it")


@pytest.fixture
def oa():
    stand_in = ZaloOA()
    yield stand_in
    stand_in.close()


@pytest.fixture
def start_intake(kafka_bootstrap, pg_port, intake_database, keys, oa):
    """Start an intake app on this test's database; ``**overrides`` change its settings."""
    running: list[RunningIntake] = []

    def start(healthy: bool = True, **overrides) -> RunningIntake:
        settings = settings_for(kafka_bootstrap, overrides.pop("pg_port", pg_port), intake_database, keys,
                                **({"zalo_api_url": oa.url} | overrides))
        running.append(RunningIntake(settings).start(healthy=healthy))
        return running[-1]

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def intake(start_intake) -> RunningIntake:
    return start_intake()


@pytest.fixture
async def tail(kafka_bootstrap):
    reader = await KafkaTail(kafka_bootstrap).open()
    yield reader
    await reader.close()
