"""One running mesh for the end-to-end tests, started once per session."""

import pytest

from tests.support.mesh import build_mesh
from tests.support.otlp import TraceReceiver


@pytest.fixture(scope="session")
def traces():
    receiver = TraceReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def mesh(kafka_bootstrap, pg_port, pg_admin_dsn, traces, tmp_path_factory):
    running = build_mesh(kafka_bootstrap, pg_port, pg_admin_dsn, tmp_path_factory.mktemp("mesh-logs"), traces)
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()
