"""Every service takes Kafka and PostgreSQL from the mesh's shared variables unless its own say otherwise."""

import pytest

from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.oversight.settings import OversightSettings
from services.router.settings import RouterSettings

SERVICES = [IntakeSettings, RouterSettings, NotifierSettings, OversightSettings]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("settings", SERVICES)
def test_the_shared_variables_reach_every_service(settings, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("PGPORT", "55433")
    monkeypatch.setenv("PGUSER", "hotline")
    loaded = settings()
    assert loaded.kafka_bootstrap == "127.0.0.1:19092"
    assert loaded.dsn().startswith("postgresql://hotline@127.0.0.1:55433/")


@pytest.mark.parametrize("settings", SERVICES)
def test_a_services_own_variable_wins_over_the_shared_one(settings, monkeypatch):
    prefix = settings.model_config["env_prefix"]
    monkeypatch.setenv("PGPORT", "55433")
    monkeypatch.setenv(f"{prefix}PG_PORT", "55500")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv(f"{prefix}KAFKA_BOOTSTRAP", "127.0.0.1:29092")
    loaded = settings()
    assert (loaded.pg_port, loaded.kafka_bootstrap) == (55500, "127.0.0.1:29092")
    assert settings(pg_port=55501).pg_port == 55501, "a value passed by name wins over both"


@pytest.mark.parametrize("password", ["ab/c+d", "p@ss:w0rd?#%"])
def test_a_password_of_any_characters_reaches_postgresql_as_it_is(password):
    """Put in the URL as it was, "ab/c+d" made it unreadable (and its text went into the error), and
    "p@ss" sent the connection to another host."""
    from urllib.parse import unquote, urlsplit

    url = urlsplit(RouterSettings(pg_host="127.0.0.1", pg_port=55433, pg_user="mesh", pg_password=password).dsn())
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", 55433, "/router")
    assert (unquote(url.username), unquote(url.password)) == ("mesh", password)


@pytest.mark.parametrize("settings", SERVICES)
def test_a_shared_variable_set_to_nothing_is_not_set(settings, monkeypatch):
    # An orchestrator's template that leaves PGPORT= blank stopped every service at start.
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "PGHOST", "PGPORT", "PGUSER"):
        monkeypatch.setenv(name, "")
    loaded = settings()
    assert loaded.kafka_bootstrap == "127.0.0.1:9092"
    assert loaded.dsn().startswith("postgresql://mesh@127.0.0.1:55432/")


def test_a_socket_directory_or_an_ipv6_host_reaches_the_database_it_names():
    import asyncpg.connect_utils

    def where(dsn: str):
        addresses, parameters = asyncpg.connect_utils._parse_connect_dsn_and_args(
            dsn=dsn, host=None, port=None, user=None, password=None, passfile=None, database=None, ssl=None,
            direct_tls=None, server_settings=None, target_session_attrs=None, krbsrvname=None, gsslib=None,
            service=None, servicefile=None)
        return addresses, parameters.database

    assert where(RouterSettings(pg_host="/var/run/postgresql", pg_port=55433).dsn()) == (
        ["/var/run/postgresql/.s.PGSQL.55433"], "router")
    assert where(NotifierSettings(pg_host="::1", pg_port=55433).dsn()) == ([("::1", 55433)], "notifier")


def test_a_setting_refused_at_start_up_does_not_print_the_secrets_given_with_it(monkeypatch):
    """An SMTP login without STARTTLS is refused, rightly; the error, written to the logs of every
    restart, printed every setting given, the password last."""
    monkeypatch.setenv("NOTIFIER_SMTP_HOST", "smtp.hcmc.example")
    monkeypatch.setenv("NOTIFIER_SMTP_USER", "tongdai1022")
    monkeypatch.setenv("NOTIFIER_SMTP_PASSWORD", "Smtp-P4ss-2026")
    with pytest.raises(ValueError) as refused:
        NotifierSettings()
    assert "STARTTLS" in str(refused.value) and "Smtp-P4ss-2026" not in str(refused.value)
