"""Router configuration, from ``ROUTER_*`` environment variables."""

from pydantic_settings import SettingsConfigDict

from contracts.settings import ServiceSettings


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_")

    port: int = 8002
    group_id: str = "router"
    edition: str = "hcmc-2021"
    # The event store (eventsourcing) and the router's own tables live in this database.
    pg_database: str = "router"
    pg_pool_size: int = 5
    max_batch: int = 500
    # Kafka may hold a fetch of new requests this long to gather a batch: a case's events are saved
    # and relayed once per batch, and at moderate rates a batch costs the router about 4.7 ms of CPU
    # and a case 0.7 ms (BENCHMARKS.md). 40 ms saved a quarter of its CPU against 20, for 9–12 ms
    # more at the median and a p99 within the noise (200 requests/s, three runs each).
    gather_ms: int = 40
    # The outbox relay is woken by the event store's NOTIFY on every insert, by any instance; this
    # is how often it looks without one (a safety net).
    relay_poll_seconds: float = 1.0
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
