"""Fixtures every layer shares: where the real Kafka and PostgreSQL are, checked loudly.

``make test`` starts the suite's own Kafka (KAFKA_PORT, 19092) and PostgreSQL (PGPORT, 55433);
a test that needs them fails — never skips — when they are not there.
"""

import os
import socket

import pytest


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    port = int(os.environ.get("KAFKA_PORT", "19092"))
    if not _reachable(port):
        pytest.fail(f"Kafka is not listening on 127.0.0.1:{port}: run the suite with `make test`", pytrace=False)
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def pg_port() -> int:
    port = int(os.environ.get("PGPORT", "55433"))
    if not _reachable(port):
        pytest.fail(f"PostgreSQL is not listening on 127.0.0.1:{port}: run the suite with `make test`", pytrace=False)
    return port


@pytest.fixture(scope="session")
def pg_admin_dsn(pg_port: int) -> str:
    return f"postgresql://mesh@127.0.0.1:{pg_port}/postgres"
