"""Fixtures for the notifier against real Kafka and PostgreSQL: local stand-ins for its providers,
and a notifier process per test with its own database and consumer group."""

import pytest

from contracts import topics
from tests.integration.notifier.harness import (NotifierProcess, Watch, fresh_notifier_database, new_group,
                                                notifier_env, ours, skip_history)
from tests.integration.notifier.standins import MailBox, StandIn


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.close()


@pytest.fixture
def mailbox():
    box = MailBox()
    yield box
    box.close()


@pytest.fixture
def group_id() -> str:
    return new_group()


@pytest.fixture
async def start_notifier(kafka_bootstrap, pg_port, pg_admin_dsn, stand_in, mailbox, group_id, tmp_path):
    """Start a notifier (one database and group per test) and return it running; call it again to
    start another on the same database and group, e.g. after a kill."""
    started: list[NotifierProcess] = []
    database, group = await fresh_notifier_database(pg_admin_dsn), group_id
    await skip_history(kafka_bootstrap, group)

    def start(**overrides: str) -> NotifierProcess:
        env = notifier_env(kafka_bootstrap, pg_port, database, group, stand_in, mailbox, **overrides)
        process = NotifierProcess(env, tmp_path / f"run{len(started)}").start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
async def outcomes(kafka_bootstrap, group_id):
    """``notify.deliveries`` from now on, as this test's notifier announces it for the cases in ``.cases``."""
    cases: set[str] = set()
    async with Watch(kafka_bootstrap, topics.NOTIFY_DELIVERIES, ours(group_id, cases)) as watch:
        watch.cases = cases
        yield watch
