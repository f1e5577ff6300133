"""Fixtures every layer shares: where the real Kafka and PostgreSQL are, checked loudly.

``make test`` starts the suite's own Kafka (KAFKA_PORT, 19092) and PostgreSQL (PGPORT, 55433);
a test that needs them fails — never skips — when they are not there.
"""

import os
import re
import socket

import pytest

SERVICE_PREFIXES = ("INTAKE_", "ROUTER_", "NOTIFIER_", "OVERSIGHT_")


def _the_suites_own_environment() -> None:
    """The suite's Kafka and PostgreSQL, whatever the caller's shell names: a developer's PGUSER,
    PGHOST, PGSSLMODE or KAFKA_BOOTSTRAP_SERVERS, or a service's own variable (INTAKE_HOST=0.0.0.0),
    would otherwise reach every service and subprocess a test starts from ``os.environ``. PGPORT is
    the suite's PostgreSQL (``make test`` sets it; 55433 when it is not set)."""
    for name in [n for n in os.environ if n.startswith(SERVICE_PREFIXES)
                 or (re.match("PG[A-Z]", n) and n != "PGPORT")]:  # PGSSLMODE, PGSERVICE, …; not PG_WAIT_SECS
        del os.environ[name]
    os.environ.update({"PGHOST": "127.0.0.1", "PGUSER": "mesh", "PGPASSWORD": "",
                       "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{os.environ.get('KAFKA_PORT', '19092')}"})


_the_suites_own_environment()


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
