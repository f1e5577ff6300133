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


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    return None


async def create_pool(dsn: str, *, min_size: int, max_size: int, **kwargs: Any) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_nothing_to_reset, **kwargs)
