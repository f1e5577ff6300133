"""Intake configuration, from ``INTAKE_*`` environment variables."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntakeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_")

    host: str = "127.0.0.1"
    port: int = 8001
    kafka_bootstrap: str = Field("127.0.0.1:9092", validation_alias=AliasChoices("INTAKE_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP_SERVERS"))
    # How long a request may wait for Kafka's acknowledgement before the caller gets 503.
    publish_timeout_seconds: float = 5.0
    retry_after_seconds: int = 5
    categories_file: str | None = None
