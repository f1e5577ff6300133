"""Oversight configuration, from ``OVERSIGHT_*`` environment variables."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OversightSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERSIGHT_")

    host: str = "127.0.0.1"
    port: int = 8003
    kafka_bootstrap: str = Field("127.0.0.1:9092", validation_alias=AliasChoices("OVERSIGHT_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP_SERVERS"))
    group_id: str = "oversight"
    pg_host: str = Field("127.0.0.1", validation_alias=AliasChoices("OVERSIGHT_PG_HOST", "PGHOST"))
    pg_port: int = Field(55432, validation_alias=AliasChoices("OVERSIGHT_PG_PORT", "PGPORT"))
    pg_user: str = Field("mesh", validation_alias=AliasChoices("OVERSIGHT_PG_USER", "PGUSER"))
    pg_password: str = Field("", validation_alias=AliasChoices("OVERSIGHT_PG_PASSWORD", "PGPASSWORD"))
    pg_database: str = "oversight"
    # The API reads through a role that may only SELECT; the projection writes as the owner.
    reader_user: str = "oversight_reader"
    reader_password: str = ""
    max_batch: int = 1000

    def dsn(self, reader: bool = False) -> str:
        user, password = (self.reader_user, self.reader_password) if reader else (self.pg_user, self.pg_password)
        auth = f"{user}:{password}@" if password else f"{user}@"
        return f"postgresql://{auth}{self.pg_host}:{self.pg_port}/{self.pg_database}"
