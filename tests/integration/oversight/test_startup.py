"""Oversight as it starts, on the real PostgreSQL: its API up while Kafka cannot be reached, and
its read-only role given the password the deployment chose."""

import secrets
import socket

import asyncpg
import pytest

from tests.integration.oversight.support import drop_database, scratch_database, serve, settings_for
from tests.support.databases import fresh_database


def test_the_api_answers_while_kafka_cannot_be_reached(pg_admin_dsn, pg_port):
    """It waited for Kafka before serving: restarted during a Kafka outage, the public lookup, the
    dashboard and /healthz were all down, though everything they show is in PostgreSQL."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
    with scratch_database(pg_admin_dsn) as database, serve(settings_for(database, pg_port, nowhere)) as running:
        health = running.get("/healthz", role=None)
        assert health.status_code == 200 and health.json()["consuming"] is False
        assert running.get("/v1/public/requests/ABCDE-FGHJK", role=None).status_code in (400, 404)
        assert running.get("/v1/cases", role="council").json()["items"] == []
        assert running.get("/", role=None).status_code == 200  # the dashboard


# The one role the suite's PostgreSQL asks a password of (deploy/local/postgres.sh), over SCRAM-SHA-256.
CHECKED = "oversight_reader_checked"


@pytest.mark.parametrize("before", [None, "an earlier password"],
                         ids=["made by oversight", "made before, another password"])
async def test_the_reader_role_logs_in_with_the_password_it_is_given(pg_admin_dsn, pg_port, kafka_bootstrap, before):
    """The read-only role was made without a password: wherever PostgreSQL asks for one, the API
    could not log in and oversight never came up. (That only its verifier is sent:
    tests/unit/oversight/test_reader_password.py.)"""
    password = secrets.token_urlsafe(16) + "/+@"  # what a URL would have to quote
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute(f"DROP ROLE IF EXISTS {CHECKED}")
    if before:
        await admin.execute(f"CREATE ROLE {CHECKED} LOGIN PASSWORD '{before}'")
    database = await fresh_database(pg_admin_dsn, "oversight_test")
    try:
        settings = settings_for(database, pg_port, kafka_bootstrap, consume=False, pg_password="unused by trust",
                                reader_user=CHECKED, reader_password=password)
        with serve(settings) as running:
            assert running.get("/v1/cases", role="council").status_code == 200
            assert running.get("/healthz", role=None).status_code == 200
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(settings.dsn_as(CHECKED, "not the password"))
        stored = await admin.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", CHECKED)
        assert stored.startswith("SCRAM-SHA-256$") and password not in stored
    finally:
        await drop_database(pg_admin_dsn, database)
        await admin.execute(f"DROP ROLE IF EXISTS {CHECKED}")
        await admin.close()
