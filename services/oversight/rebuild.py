"""``python -m services.oversight rebuild [--swap] [--keep]``: the read models again, from the
history on Kafka (``case.events`` and ``notify.deliveries`` are kept forever), into fresh tables in
the schema ``oversight_rebuild``, then compared with the live ones.

The history is what the live projection has read: each partition from where it began there — the
first record, unless its consumer group was started elsewhere (``whole_history`` says which) — up
to where it stands. The live projector may keep going meanwhile, or be stopped: the rebuild reads
up to the live positions, then, in a repeatable-read snapshot of the live tables, up to exactly
the positions that snapshot holds, and compares every table row by row (through digests). The
audit chain is compared by content — the same events with the same audited text — since its
order follows the order the partitions happened to be read in.

``--swap`` then puts the rebuilt ``cases``, ``case_events`` and ``deliveries`` in place of the live
ones (the old ones go to ``oversight_retired``), holding the projector off meanwhile; the audit chain
is never replaced. Prints a JSON report; exits 0 when equal (or swapped), 1 when not.
"""

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import asyncpg

from contracts.postgres import connect, create_pool
from services.oversight.compare import compare
from services.oversight.history import History
from services.oversight.refold import record_fold
from services.oversight.projector import Offsets, Projector
from services.oversight.settings import OversightSettings
from services.oversight.store import PROJECTION_STATE, create_tables, grant_reader

SCHEMA = "oversight_rebuild"
RETIRED = "oversight_retired"
SWAPPED = ("cases", "case_events", "deliveries")


async def live_position(conn: asyncpg.Connection, history: History, projector: Projector) -> Offsets:
    """Where the live projection stands in each partition it has read; the rebuild starts the
    partitions it has not read yet where the live one began in them, recorded as the live one
    records them (a partition it began in but has had nothing from yet has its row too)."""
    rows = await conn.fetch("SELECT topic, partition, next_offset, first_offset FROM public.consumer_offsets")
    starts = {(r["topic"], r["partition"]): r["first_offset"] or 0 for r in rows}
    history.begin_at(starts)
    await projector.begin(starts)
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def fresh_schema(owner: asyncpg.Connection) -> None:
    await owner.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    await owner.execute(f"SET search_path = {SCHEMA}")
    try:
        await create_tables(owner)
    finally:
        await owner.execute("RESET search_path")


async def rebuild(settings: OversightSettings, *, swap: bool = False, keep: bool = False) -> dict[str, Any]:
    """Rebuild, compare, and swap when asked; the report."""
    started = time.monotonic()
    owner = await connect(settings.dsn())
    pool = await create_pool(settings.dsn(), min_size=1, max_size=2, server_settings={"search_path": SCHEMA})
    history = History(settings.kafka_bootstrap)
    try:
        await fresh_schema(owner)
        # The rebuilt trail masks from where the live one began to (chain.py), for the two to be equal;
        # not at all when no oversight that masks has started on the live one.
        await owner.execute(f"DELETE FROM {SCHEMA}.audit_form")
        if await owner.fetchval("SELECT to_regclass('public.audit_form') IS NOT NULL"):
            await owner.execute(f"INSERT INTO {SCHEMA}.audit_form SELECT * FROM public.audit_form")
        projector = Projector(pool, audit_key=settings.required_audit_key(),
                              checkpoint_every=settings.checkpoint_every, notify=False)
        await history.start()
        # Most of the history first, outside the snapshot, so the snapshot is held only briefly.
        await history.project_until(await live_position(owner, history, projector), projector, settings.max_batch)
        report = await _compare_at_live_position(owner, pool, history, projector, settings.max_batch)
        if swap:
            report["swapped"] = await _swap(owner, history, projector, settings)
        report["seconds"] = round(time.monotonic() - started, 1)
        report["events"] = projector.applied
        report["unreadable"] = history.unreadable  # dead-lettered by the live consumer too
        return report
    finally:
        await history.stop()
        await pool.close()
        if not keep:
            await owner.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await owner.close()


async def _compare_at_live_position(owner: asyncpg.Connection, pool: asyncpg.Pool, history: History,
                                    projector: Projector, batch: int) -> dict[str, Any]:
    async with owner.transaction(isolation="repeatable_read", readonly=True):
        live = await live_position(owner, history, projector)
        await history.project_until(live, projector, batch)
        async with pool.acquire() as rebuilt:
            tables = await compare(owner, rebuilt, "public", SCHEMA)
    return {"equal": all(t["equal"] for t in tables.values()), "tables": tables,
            "whole_history": all(history.started[k] == history.beginnings[k] for k in history.started),
            "position": {f"{t}/{p}": [history.started[(t, p)], n] for (t, p), n in sorted(live.items())}}


async def _swap(owner: asyncpg.Connection, history: History, projector: Projector,
                settings: OversightSettings) -> bool:
    """Put the rebuilt tables in place, exactly at the live position, while the projector waits."""
    # A database an older oversight made may lack the fold's table or a column of it: added before
    # the head is held, since a live projector waiting for the head holds a lock on that table.
    await owner.execute(PROJECTION_STATE)
    async with owner.transaction():
        await owner.execute("SET LOCAL lock_timeout = '30s'")
        # Every projector batch takes this row first: holding it stops the live projection here.
        await owner.execute("SELECT 1 FROM public.audit_head WHERE id = 1 FOR UPDATE")
        await history.project_until(await live_position(owner, history, projector), projector, settings.max_batch)
        await owner.execute(f"DROP SCHEMA IF EXISTS {RETIRED} CASCADE; CREATE SCHEMA {RETIRED}")
        for table in SWAPPED:
            await owner.execute(f"ALTER TABLE public.{table} SET SCHEMA {RETIRED}")
            await owner.execute(f"ALTER TABLE {SCHEMA}.{table} SET SCHEMA public")
        # The rows are this fold's now, whatever fold the live ones were of (refold.py).
        await record_fold(owner, complete=True)
        await grant_reader(owner, settings.reader_user)
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.oversight rebuild", description=__doc__.split("\n\n")[0])
    parser.add_argument("--swap", action="store_true", help="put the rebuilt read models in place of the live ones")
    parser.add_argument("--keep", action="store_true", help=f"keep the schema {SCHEMA} afterwards, to look into")
    args = parser.parse_args(argv)
    report = asyncio.run(rebuild(OversightSettings(), swap=args.swap, keep=args.keep))
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0 if report["equal"] or report.get("swapped") else 1
