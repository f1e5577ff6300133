"""The one way the services open a pool of PostgreSQL connections.

asyncpg's pool resets a connection every time it is given back (``pg_advisory_unlock_all(); CLOSE
ALL; UNLISTEN *; RESET ALL``): one more round trip and one more transaction per statement a service
runs through the pool — under load, half of intake's and the notifier's transactions. The
services keep no session state on pooled connections (session locks and LISTEN have connections
of their own; settings are ``SET LOCAL`` or the pool's ``server_settings``), so there is nothing to
reset. What still matters is kept: asyncpg itself rolls back a transaction left open.
"""

from typing import Any

import asyncpg

# A client that vanished without closing its socket (its host or its network gone) keeps its session
# and the session's locks until TCP gives up: two hours on an idle connection by Linux's defaults,
# about fifteen minutes with data in flight. A router leading the outbox, or holding the event store's
# or the audit chain's lock in a transaction, would hold up every other instance that long. Every
# session of ours asks the server to probe after 10 s idle, every 5 s, and to end it after 3
# unanswered probes or 30 s of unacknowledged data: gone within about half a minute.
LIVENESS = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3",
            "tcp_user_timeout": "30000"}


# What a lost or refused database connection raises; anything else from asyncpg is a bug to see.
# Operator intervention (57…) is what a statement in flight gets when PostgreSQL is restarted or shut
# down (57P01, 57P02), and what a new connection gets while it starts (57P03).
DATABASE_DOWN = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                 asyncpg.exceptions.OperatorInterventionError, asyncpg.InsufficientResourcesError)


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    return None


async def create_pool(dsn: str, *, min_size: int, max_size: int, server_settings: dict[str, str] | None = None,
                      **kwargs: Any) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_nothing_to_reset,
                                     server_settings={**LIVENESS, **(server_settings or {})}, **kwargs)


async def connect(dsn: str, *, server_settings: dict[str, str] | None = None, **kwargs: Any) -> asyncpg.Connection:
    """A connection of its own (a session lock, LISTEN), with the same liveness settings."""
    return await asyncpg.connect(dsn, server_settings={**LIVENESS, **(server_settings or {})}, **kwargs)


def fits_int(value: object) -> bool:
    """Whether PostgreSQL's int (int4) holds ``value``: a version or a count past it failed the whole
    transaction it was written in, at every reading of its batch."""
    return isinstance(value, int) and -(2**31) <= value < 2**31


def add_column(table: str, column: str, kind: str) -> str:
    """SQL adding a column where it is missing, looked up first: ALTER TABLE ... ADD COLUMN IF NOT
    EXISTS takes the table's lock against every read before it checks, and held it for the rest of a
    migration at every start, while another instance read the table."""
    return (f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = '{table}'::regclass"
            f" AND attname = '{column}' AND NOT attisdropped) THEN ALTER TABLE {table} ADD COLUMN {column} {kind};"
            " END IF; END $$;")
