"""Router configuration, from ``ROUTER_*`` environment variables."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RouterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8002
    kafka_bootstrap: str = Field("127.0.0.1:9092", validation_alias=AliasChoices("ROUTER_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP_SERVERS"))
    group_id: str = "router"
    edition: str = "hcmc-2021"
    # The event store (eventsourcing on PostgreSQL); the password comes from the environment only.
    pg_host: str = Field("127.0.0.1", validation_alias=AliasChoices("ROUTER_PG_HOST", "PGHOST"))
    pg_port: int = Field(55432, validation_alias=AliasChoices("ROUTER_PG_PORT", "PGPORT"))
    pg_user: str = Field("mesh", validation_alias=AliasChoices("ROUTER_PG_USER", "PGUSER"))
    pg_password: str = Field("", validation_alias=AliasChoices("ROUTER_PG_PASSWORD", "PGPASSWORD"))
    pg_database: str = "router"
    pg_pool_size: int = 5
    max_batch: int = 500
    # The outbox relay wakes at once after a local write; this is how often it looks for others'.
    relay_poll_seconds: float = 0.05
    timer_poll_seconds: float = 1.0
    # Category rules (which unit, priority, deadlines); the shipped file when empty.
    rules_file: str | None = None
    escalate_reach_step_seconds: float = 600
    escalate_resolve_step_seconds: float = 86_400

    def eventsourcing_env(self) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.pg_database,
            "POSTGRES_HOST": self.pg_host,
            "POSTGRES_PORT": str(self.pg_port),
            "POSTGRES_USER": self.pg_user,
            "POSTGRES_PASSWORD": self.pg_password,
            "POSTGRES_POOL_SIZE": str(self.pg_pool_size),
            "POSTGRES_LOCK_TIMEOUT": "5",
            # Check a pooled connection before use, so a restarted PostgreSQL costs a retry, not errors.
            "POSTGRES_PRE_PING": "y",
        }

    def dsn(self) -> str:
        auth = f"{self.pg_user}:{self.pg_password}@" if self.pg_password else f"{self.pg_user}@"
        return f"postgresql://{auth}{self.pg_host}:{self.pg_port}/{self.pg_database}"
