"""What every service's settings share: its address, Kafka, and its PostgreSQL database.

Each service reads these under its own prefix (``INTAKE_PG_HOST``, ``ROUTER_KAFKA_BOOTSTRAP``, …)
and falls back to the variables the whole mesh shares: ``KAFKA_BOOTSTRAP_SERVERS`` and libpq's
``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``. A service's own variable, or a value passed by
name, wins over the shared one; a shared variable set to nothing is not set. ``PGHOST`` may be a
socket directory (``/var/run/postgresql``) or an IPv6 address, as libpq takes it.
"""

import os
from urllib.parse import quote
from typing import Any

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SHARED = {"kafka_bootstrap": "KAFKA_BOOTSTRAP_SERVERS", "pg_host": "PGHOST", "pg_port": "PGPORT",
          "pg_user": "PGUSER", "pg_password": "PGPASSWORD"}


class MissingSecret(RuntimeError):
    """A secret the service will not run without is not set."""


def required_secret(secret: SecretStr, variable: str, why: str) -> bytes:
    """``secret``'s value, or :class:`MissingSecret` naming ``variable`` when it is empty or blank."""
    value = secret.get_secret_value()
    if not value.strip():
        raise MissingSecret(f"{variable} is not set: {why}")
    return value.encode()


class ServiceSettings(BaseSettings):
    # A setting refused at start-up is named, not shown: the input pydantic would print is every
    # setting given, the SMTP password among them, in the logs of every restart of a crash loop.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int
    kafka_bootstrap: str = "127.0.0.1:9092"
    pg_host: str = "127.0.0.1"
    pg_port: int = 55432
    pg_user: str = "mesh"
    pg_password: str = ""
    pg_database: str

    @model_validator(mode="before")
    @classmethod
    def _shared_variables(cls, values: Any) -> Any:
        if isinstance(values, dict):
            shared = {field: os.environ[name] for field, name in SHARED.items()
                      if field not in values and os.environ.get(name, "").strip()}
            return {**values, **shared}
        return values

    def dsn(self) -> str:
        return self.dsn_as(self.pg_user, self.pg_password)

    def dsn_as(self, user: str, password: str) -> str:
        """The service's database, as another role (oversight's API reads as one that may only SELECT)."""
        # Quoted: a password with "/" in it made the URL unreadable (its text in the error), one with "@" another host.
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if password else f"{quote(user, safe='')}@"
        database = quote(self.pg_database, safe="")
        if self.pg_host.startswith("/"):  # a socket directory: in the URL's query, as libpq reads it
            return f"postgresql://{auth}/{database}?host={quote(self.pg_host, safe='')}&port={self.pg_port}"
        host = f"[{self.pg_host}]" if ":" in self.pg_host else self.pg_host
        return f"postgresql://{auth}{host}:{self.pg_port}/{database}"
