"""Every stored case folded again when the fold has changed (``FOLD_VERSION`` in projection.py).

The rows were made by the fold of their day. Once it changes, a row folded before says what the
old fold made of its events: HĐND and MTTQ would read the old figures for those cases, and
``verify`` would report the first of them as a mismatch. At start, before it projects anything,
oversight folds each case again from its stored events and writes the rows that differ, a batch
at a time: the next start finds nothing to do.

The new version is recorded first, marked incomplete, in a transaction that holds the audit head,
which every projector batch takes first: from then on a projector of another fold (fold 2 on)
writes nothing (``OtherFold``), so none of its rows lands among the refolded ones. The mark is
cleared at the end; a start that finds it still set (a refold cut short) folds again. A recorded
fold newer than this one is left alone, so an instance of the old version restarted during an
upgrade does not fold the rows back: ``python -m services.oversight refold --force`` does, for a
rollback. Instances starting together take turns (a session lock); the second finds the version
recorded and complete.
"""

import logging
import sys
import time
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from services.oversight.projection import CASE_COLUMNS, FOLD_VERSION, fold
from services.oversight.projector import UPSERT_CASES
from services.oversight.verify import CASES_WITH_EVENTS, UNREADABLE

log = logging.getLogger(__name__)
REFOLD_LOCK = 1022_0005
BATCH = 1000
_CASES = CASES_WITH_EVENTS + " WHERE c.case_id > $1 ORDER BY c.case_id LIMIT $2"
FIRST = UUID(int=0)  # before every case id
# The cases a refold changed are named in the log, this many of them: a row changed by hand, which
# verify named, is overwritten too, and the log keeps which.
NAMED = 100


async def refold(conn: asyncpg.Connection, force: bool = False) -> int | None:
    """Fold every case again unless the recorded fold is this one, complete; the rows changed (None:
    nothing done). A newer recorded fold is folded back only when ``force``d."""
    await conn.execute("SELECT pg_advisory_lock($1)", REFOLD_LOCK)
    try:
        state = await conn.fetchrow("SELECT fold_version, complete FROM projection_state WHERE id = 1")
        recorded = state["fold_version"] if state else None
        if recorded == FOLD_VERSION and state["complete"] and not force:
            return None
        if recorded is not None and recorded > FOLD_VERSION and not force:
            log.error("the read models are of fold %d, newer than this oversight's %d: it projects nothing"
                      " (python -m services.oversight refold --force folds them back, for a rollback)",
                      recorded, FOLD_VERSION)
            return None
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE")
            await record_fold(conn, complete=False)
        started, changed, seen, after = time.monotonic(), 0, 0, FIRST
        while True:
            async with conn.transaction():
                await conn.execute("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE")
                rows = await conn.fetch(_CASES, after, BATCH)
                if not rows:
                    break
                refolded = [(r, row) for r in rows if (row := _refolded(r)) is not None]
                if refolded:
                    await conn.execute(UPSERT_CASES, *(list(column) for column in zip(
                        *(tuple(row[c] for c in CASE_COLUMNS) for _, row in refolded))))
            for r, row in refolded[:max(0, NAMED - changed)]:
                log.info("case %s folded again: %s changed", r["case_id"],
                         ", ".join(c for c in CASE_COLUMNS if row[c] != r[c]))
            seen, changed, after = seen + len(rows), changed + len(refolded), rows[-1]["case_id"]
            if seen % (BATCH * 50) == 0:
                log.info("folding the cases again (fold %d): %d read, %d changed so far", FOLD_VERSION, seen, changed)
        await record_fold(conn, complete=True)
        if seen:
            log.info("folded %d cases again (fold %d, was %s): %d rows changed, in %.1f s",
                     seen, FOLD_VERSION, recorded, changed, time.monotonic() - started)
        return changed
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", REFOLD_LOCK)


async def record_fold(conn: asyncpg.Connection, complete: bool) -> None:
    """This oversight's fold as the rows' (``complete``: all of them are)."""
    await conn.execute("INSERT INTO projection_state (id, fold_version, complete) VALUES (1, $1, $2) ON CONFLICT (id)"
                       " DO UPDATE SET fold_version = EXCLUDED.fold_version, complete = EXCLUDED.complete",
                       FOLD_VERSION, complete)


def main(argv: list[str]) -> int:
    """``python -m services.oversight refold [--force]``: what a start does, or, with ``--force``,
    every case folded again whatever fold is recorded (a rollback to an older oversight)."""
    import argparse
    import asyncio

    from contracts.postgres import connect
    from services.oversight.settings import OversightSettings
    from services.oversight.store import PROJECTION_STATE

    parser = argparse.ArgumentParser(prog="python -m services.oversight refold", description=main.__doc__)
    parser.add_argument("--force", action="store_true", help="fold again even if a newer fold is recorded")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s oversight %(levelname)s %(name)s: %(message)s")

    async def run() -> tuple[int | None, int | None]:
        conn = await connect(OversightSettings().dsn())
        try:
            await conn.execute(PROJECTION_STATE)  # a database no oversight of fold versions has started on
            recorded = await conn.fetchval("SELECT fold_version FROM projection_state WHERE id = 1")
            return recorded, await refold(conn, force=args.force)
        finally:
            await conn.close()

    recorded, changed = asyncio.run(run())
    if recorded is not None and recorded > FOLD_VERSION and not args.force:
        print(f"the read models are of fold {recorded}, newer than this oversight's {FOLD_VERSION}: nothing done"
              " (--force folds them back)", file=sys.stderr)
        return 1
    print("nothing to fold again" if changed is None else f"{changed} rows folded again")
    return 0


def _refolded(r: asyncpg.Record) -> dict[str, Any] | None:
    """The row its events make now, where it differs from the stored one. A case whose events cannot
    be folded (none stored, or one rewritten) is left as it is, for ``verify`` to name."""
    row = {c: r[c] for c in CASE_COLUMNS}
    try:
        folded = fold(None, orjson.loads(r["events"]) if r["events"] else [])
    except UNREADABLE:
        return None
    if folded is None or folded == row:
        return None
    return folded
