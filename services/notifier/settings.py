"""Notifier configuration, from ``NOTIFIER_*`` environment variables.

Provider endpoints are configuration: an empty one means that channel is not in use here.
"""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_")

    host: str = "127.0.0.1"
    port: int = 8004
    kafka_bootstrap: str = Field("127.0.0.1:9092", validation_alias=AliasChoices("NOTIFIER_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP_SERVERS"))
    group_id: str = "notifier"
    pg_host: str = Field("127.0.0.1", validation_alias=AliasChoices("NOTIFIER_PG_HOST", "PGHOST"))
    pg_port: int = Field(55432, validation_alias=AliasChoices("NOTIFIER_PG_PORT", "PGPORT"))
    pg_user: str = Field("mesh", validation_alias=AliasChoices("NOTIFIER_PG_USER", "PGUSER"))
    pg_password: str = Field("", validation_alias=AliasChoices("NOTIFIER_PG_PASSWORD", "PGPASSWORD"))
    pg_database: str = "notifier"
    # Where a unit's district service takes assignments; {unit_id} is filled in.
    unit_webhook_url: str = "http://127.0.0.1:8005/units/{unit_id}/assignments"
    sms_gateway_url: str = ""
    push_gateway_url: str = ""
    zalo_api_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 25
    mail_from: str = "tongdai1022@hcmc.invalid"
    max_attempts: int = 5
    backoff_base_seconds: float = 0.2
    backoff_max_seconds: float = 5.0
    send_timeout_seconds: float = 5.0
    concurrency: int = 64
    max_batch: int = 500

    def dsn(self) -> str:
        auth = f"{self.pg_user}:{self.pg_password}@" if self.pg_password else f"{self.pg_user}@"
        return f"postgresql://{auth}{self.pg_host}:{self.pg_port}/{self.pg_database}"
