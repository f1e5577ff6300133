"""Fresh PostgreSQL databases for a test, on the suite's own cluster."""

import uuid

import asyncpg


async def fresh_database(admin_dsn: str, prefix: str) -> str:
    """Create an empty database and return its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" OWNER mesh')
    finally:
        await conn.close()
    return name


async def drop_database(admin_dsn: str, name: str) -> None:
    """Tests leave the suite's cluster as they found it."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
