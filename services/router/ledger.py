"""Tables the outbox relay keeps in step with the event store, in the same transaction as its
position, so they are exactly as durable as what was published:

- ``deadlines``: the case's timers (reach the unit within minutes, a result within days), each
  with the escalation level reached (handler → unit head → 1022 centre);
- ``case_handler``: which handler holds which case, for balancing the handlers' load;
- ``reports``: cases by (phone, category, area) and whether they are open, for recognising duplicates.

Every change here is idempotent: applying the same events twice leaves the same rows.
"""

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

SCHEMA = """
CREATE TABLE IF NOT EXISTS deadlines (
    case_id uuid NOT NULL, kind text NOT NULL, due_at timestamptz NOT NULL, level text NOT NULL DEFAULT 'handler',
    active boolean NOT NULL DEFAULT true, PRIMARY KEY (case_id, kind));
CREATE INDEX IF NOT EXISTS deadlines_due ON deadlines (due_at) WHERE active;
CREATE TABLE IF NOT EXISTS case_handler (
    case_id uuid PRIMARY KEY, handler_id text NOT NULL, unit_id text NOT NULL,
    assigned_at timestamptz NOT NULL, open boolean NOT NULL);
CREATE INDEX IF NOT EXISTS case_handler_open ON case_handler (handler_id) WHERE open;
-- Open cases per handler, kept by a trigger as case_handler changes: every batch of new cases
-- reads the handlers' load, and counting open cases each time grew with the backlog.
CREATE TABLE IF NOT EXISTS handler_open (handler_id text PRIMARY KEY, n int NOT NULL);
CREATE OR REPLACE FUNCTION count_handler_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.open THEN
        UPDATE handler_open SET n = n - 1 WHERE handler_id = OLD.handler_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.open THEN
        INSERT INTO handler_open VALUES (NEW.handler_id, 1)
        ON CONFLICT (handler_id) DO UPDATE SET n = handler_open.n + 1;
    END IF;
    RETURN NULL;
END $$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'case_handler_counts'
                   AND tgrelid = 'case_handler'::regclass) THEN
        -- First start with the counter: count what is open already. The table lock (the one
        -- CREATE TRIGGER takes anyway) holds off a relay still writing without the counter, so no
        -- change falls between the count and the trigger.
        LOCK TABLE case_handler IN SHARE ROW EXCLUSIVE MODE;
        DELETE FROM handler_open;
        INSERT INTO handler_open SELECT handler_id, count(*) FROM case_handler WHERE open GROUP BY handler_id;
        CREATE TRIGGER case_handler_counts AFTER INSERT OR UPDATE OR DELETE ON case_handler
            FOR EACH ROW EXECUTE FUNCTION count_handler_open();
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS handler_seen (handler_id text PRIMARY KEY, last_assigned timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    case_id uuid PRIMARY KEY, tracking_code text NOT NULL, phone text, category text NOT NULL, area_code text,
    open boolean NOT NULL DEFAULT true);
CREATE INDEX IF NOT EXISTS reports_key ON reports (phone, category) WHERE open;
"""

LEVELS = ("handler", "unit_head", "centre")
CLOSING = ("CaseResolved", "CaseClosed", "CaseMarkedDuplicate")  # no longer open


async def apply(conn: asyncpg.Connection, events: Sequence[Any]) -> None:
    """Bring the tables up to date with ``events`` (contract case events, in store order).

    A case's events must be applied in their order; different cases touch different rows (or, for
    ``handler_seen``, commute). So the batch goes in rounds — every case's first event, then every
    case's second, … — and each round is one ``executemany`` per statement: a few round trips per
    batch instead of several per event.
    """
    by_case: dict[Any, list[Any]] = {}
    for e in events:
        by_case.setdefault(e.case_id, []).append(e)
    for round_ in itertools.zip_longest(*by_case.values()):
        statements: dict[str, list[tuple]] = {}
        for e in round_:
            for sql, args in _changes(e) if e is not None else ():
                statements.setdefault(sql, []).append(args)
        for sql, rows in statements.items():
            await conn.executemany(sql, rows)


_DEACTIVATE = "UPDATE deadlines SET active = false WHERE case_id = $1"
_CLOSE_HANDLER = "UPDATE case_handler SET open = false WHERE case_id = $1"


def _changes(e: Any) -> list[tuple[str, tuple]]:
    """The statements (SQL, arguments) that one event makes; each touches only its case's rows."""
    kind, case = e.event_type, e.case_id
    if kind == "CaseOpened":
        return [("INSERT INTO reports (case_id, tracking_code, phone, category) VALUES ($1, $2, $3, $4)"
                 " ON CONFLICT DO NOTHING", (case, e.tracking_code, e.citizen.phone, e.category))]
    if kind == "CaseRouted":
        upsert = ("INSERT INTO deadlines (case_id, kind, due_at, level, active) VALUES ($1, $2, $3, 'handler', true)"
                  " ON CONFLICT (case_id, kind) DO UPDATE SET due_at = EXCLUDED.due_at, level = 'handler', active = true")
        return [(upsert, (case, "reach", e.reach_by)), (upsert, (case, "resolve", e.resolve_by)),
                ("UPDATE reports SET area_code = $2 WHERE case_id = $1", (case, e.area_code))]
    if kind == "AssignmentIssued":
        return [("INSERT INTO case_handler (case_id, handler_id, unit_id, assigned_at, open) VALUES ($1, $2, $3, $4, true)"
                 " ON CONFLICT (case_id) DO UPDATE SET handler_id = EXCLUDED.handler_id, unit_id = EXCLUDED.unit_id,"
                 " assigned_at = EXCLUDED.assigned_at, open = true", (case, e.handler.id, e.unit.id, e.occurred_at)),
                ("INSERT INTO handler_seen (handler_id, last_assigned) VALUES ($1, $2) ON CONFLICT (handler_id)"
                 " DO UPDATE SET last_assigned = GREATEST(handler_seen.last_assigned, EXCLUDED.last_assigned)",
                 (e.handler.id, e.occurred_at))]
    if kind == "CaseAccepted":
        return [("UPDATE deadlines SET active = false WHERE case_id = $1 AND kind = 'reach'", (case,))]
    if kind == "ProgressReported" and e.committed_date:
        # The unit committed to a date: that is the deadline now, and its escalation starts again.
        return [("UPDATE deadlines SET due_at = $2, level = 'handler', active = true"
                 " WHERE case_id = $1 AND kind = 'resolve'", (case, e.committed_date))]
    if kind in ("CaseDeclined", "CaseTriaged"):
        return [(_CLOSE_HANDLER, (case,)), (_DEACTIVATE, (case,))]
    if kind == "CaseEscalated":
        return [("UPDATE deadlines SET level = $3 WHERE case_id = $1 AND kind = $2"
                 " AND array_position($4::text[], level) < array_position($4::text[], $3::text)",
                 (case, e.deadline, e.level, list(LEVELS)))]
    if kind in CLOSING:
        return [(_DEACTIVATE, (case,)), (_CLOSE_HANDLER, (case,)),
                ("UPDATE reports SET open = false WHERE case_id = $1", (case,))]
    if kind == "CaseReopened":
        return [("UPDATE reports SET open = true WHERE case_id = $1", (case,))]
    return []


async def handler_load(pool: asyncpg.Pool) -> tuple[dict[str, int], dict[str, datetime]]:
    """Open cases and last assignment time per handler (each a row per handler), in one round trip."""
    rows = await pool.fetch("SELECT handler_id, o.n, s.last_assigned FROM handler_open o"
                            " FULL JOIN handler_seen s USING (handler_id)")
    return ({r["handler_id"]: r["n"] for r in rows if r["n"]},
            {r["handler_id"]: r["last_assigned"] for r in rows if r["last_assigned"] is not None})


async def open_duplicates(pool: asyncpg.Pool, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[dict]]:
    """Open cases by (phone, category); the caller compares areas once it knows the new report's."""
    if not keys:
        return {}
    # By phone alone, the category checked here: joining the keys as a table cost ten times the
    # lookup in planning alone (0.55 ms for every batch of requests).
    wanted = set(keys)
    rows = await pool.fetch("SELECT case_id, tracking_code, phone, category, area_code FROM reports"
                            " WHERE open AND phone = ANY($1::text[])", list({phone for phone, _ in wanted}))
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if (r["phone"], r["category"]) in wanted:
            out.setdefault((r["phone"], r["category"]), []).append(dict(r))
    return out


async def due(conn: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    """Deadlines that have passed, locked so that another router instance skips them."""
    return await conn.fetch(
        "SELECT case_id, kind, level, due_at FROM deadlines WHERE active AND due_at <= now()"
        " ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED", limit)
