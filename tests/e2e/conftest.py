"""One running mesh for the end-to-end tests, started once for this folder and stopped after it
(the topics are shared: a mesh left running would also consume the fault suite's traffic)."""

import pytest

from tests.support.mesh import build_mesh, warm_up
from tests.support.otlp import TraceReceiver


@pytest.fixture(scope="package")
def traces():
    receiver = TraceReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="package")
def mesh(kafka_bootstrap, pg_port, pg_admin_dsn, traces, tmp_path_factory):
    running = build_mesh(kafka_bootstrap, pg_port, pg_admin_dsn, tmp_path_factory.mktemp("mesh-logs"), traces)
    try:
        running.start_all()
        warm_up(running)
        yield running
    finally:
        running.stop_all()
