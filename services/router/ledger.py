"""Tables the outbox relay keeps in step with the event store, in the same transaction as its
position, so they are exactly as durable as what was published:

- ``deadlines``: the case's timers (reach the unit within minutes, a result within days), each
  with the escalation level reached (handler → unit head → 1022 centre); a case in triage has
  its reach timer for the centre to send it to a unit;
- ``case_handler``: which handler holds which case, for balancing the handlers' load;
- ``reports``: cases by (phone, category, the areas they were routed to) and whether they are open,
  for recognising duplicates.

Every change here is idempotent: applying the same events twice leaves the same rows.
"""

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from contracts.postgres import add_column
from services.router.domain import ESCALATION_STEP, LEVELS

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS deadlines (
    case_id uuid NOT NULL, kind text NOT NULL, due_at timestamptz NOT NULL, level text NOT NULL DEFAULT 'handler',
    active boolean NOT NULL DEFAULT true, PRIMARY KEY (case_id, kind));
-- The date the unit committed to, once it has: said again, it does not restart the chain.
{add_column("deadlines", "committed", "timestamptz")}
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
-- Every area the case was routed to (area_code is the latest): a repeat of the first report, its
-- address as before, still goes to the first area after a unit declined the case and it was rerouted.
{add_column("reports", "areas", "text[]")}
"""

CLOSING = ("CaseResolved", "CaseClosed", "CaseMarkedDuplicate")  # no longer open


async def apply(conn: asyncpg.Connection, events: Sequence[Any],
                steps: Mapping[str, timedelta] = ESCALATION_STEP) -> None:
    """Bring the tables up to date with ``events`` (contract case events, in store order);
    ``steps`` are the escalation chain's, as the timers use them.

    A case's events must be applied in their order; different cases touch different rows (or, for
    ``handler_seen``, commute). So the batch goes in rounds — every case's first event, then every
    case's second, … — and each round is one set-based statement per kind of change, whatever the
    number of cases: a handful of statements per batch instead of several per event.
    """
    by_case: dict[Any, list[Any]] = {}
    for e in events:
        by_case.setdefault(e.case_id, []).append(e)
    for round_ in itertools.zip_longest(*by_case.values()):
        changes: dict[str, list[tuple]] = {}
        for e in round_:
            for name, args in _changes(e, steps) if e is not None else ():
                changes.setdefault(name, []).append(args)
        for name, rows in changes.items():
            # One array per column; a round holds a case once, so no row is changed twice by one statement.
            await conn.execute(_SET[name], *(list(column) for column in zip(*rows)))


_CASES = "unnest($1::uuid[]) AS u(case_id)"
# Each kind of change as one statement over arrays of its arguments (the columns of _changes' tuples).
_SET = {
    "report": "INSERT INTO reports (case_id, tracking_code, phone, category)"
              " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
    # The areas so far, the latest (which an older router's relay moves alone, and a row from before
    # ``areas`` has only) and the new one, each once, in the order the case went to them.
    "report_area": "UPDATE reports r SET area_code = u.area_code, areas = ARRAY("
                   "SELECT a FROM unnest(coalesce(r.areas, '{}') || r.area_code || u.area_code) WITH ORDINALITY"
                   " AS t(a, n) WHERE a IS NOT NULL GROUP BY a ORDER BY min(n))"
                   " FROM unnest($1::uuid[], $2::text[]) AS u(case_id, area_code) WHERE r.case_id = u.case_id",
    "deadline": "INSERT INTO deadlines (case_id, kind, due_at, level, active)"
                " SELECT case_id, kind, due_at, 'handler', true FROM unnest($1::uuid[], $2::text[], $3::timestamptz[])"
                " AS u(case_id, kind, due_at)"
                " ON CONFLICT (case_id, kind) DO UPDATE SET due_at = EXCLUDED.due_at, level = 'handler', active = true,"
                " committed = NULL",
    "assignment": "INSERT INTO case_handler (case_id, handler_id, unit_id, assigned_at, open)"
                  " SELECT *, true FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])"
                  " ON CONFLICT (case_id) DO UPDATE SET handler_id = EXCLUDED.handler_id, unit_id = EXCLUDED.unit_id,"
                  " assigned_at = EXCLUDED.assigned_at, open = true",
    # Several of a round's cases may go to one handler: one row per handler, its latest time.
    "handler_seen": "INSERT INTO handler_seen (handler_id, last_assigned)"
                    " SELECT handler_id, max(at) FROM unnest($1::text[], $2::timestamptz[]) AS u(handler_id, at)"
                    " GROUP BY handler_id ON CONFLICT (handler_id)"
                    " DO UPDATE SET last_assigned = GREATEST(handler_seen.last_assigned, EXCLUDED.last_assigned)",
    "reached": f"UPDATE deadlines d SET active = false FROM {_CASES} WHERE d.case_id = u.case_id AND d.kind = 'reach'",
    # The unit committed to a date: that is the deadline now, and its escalation starts again,
    # unless the date is the one it had committed to (Case._progress decides the same).
    "committed": "UPDATE deadlines d SET due_at = u.due_at, level = 'handler', active = true, committed = u.due_at"
                 " FROM unnest($1::uuid[], $2::timestamptz[]) AS u(case_id, due_at)"
                 " WHERE d.case_id = u.case_id AND d.kind = 'resolve' AND d.committed IS DISTINCT FROM u.due_at",
    "deactivate": f"UPDATE deadlines d SET active = false FROM {_CASES} WHERE d.case_id = u.case_id",
    "deactivate_resolve": f"UPDATE deadlines d SET active = false FROM {_CASES}"
                          " WHERE d.case_id = u.case_id AND d.kind = 'resolve'",
    "close_handler": f"UPDATE case_handler c SET open = false FROM {_CASES} WHERE c.case_id = u.case_id",
    # Only ever up the chain: a late or repeated escalation never lowers the level reached. Where it
    # raises it (the timer that escalated did not move the row on: it failed after saving the
    # event), the next level is due a step later, as the timer would have set it.
    "escalated": "UPDATE deadlines d SET level = u.level, due_at = d.due_at + u.step"
                 " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::interval[]) AS u(case_id, kind, level, step)"
                 " WHERE d.case_id = u.case_id AND d.kind = u.kind"
                 f" AND array_position(ARRAY{list(LEVELS)}, d.level) < array_position(ARRAY{list(LEVELS)}, u.level)",
    "report_closed": f"UPDATE reports r SET open = false FROM {_CASES} WHERE r.case_id = u.case_id",
    "report_reopened": f"UPDATE reports r SET open = true FROM {_CASES} WHERE r.case_id = u.case_id",
}


def _changes(e: Any, steps: Mapping[str, timedelta]) -> list[tuple[str, tuple]]:
    """The changes (a kind of :data:`_SET`, its arguments) that one event makes; each touches only its case's rows."""
    kind, case = e.event_type, e.case_id
    if kind == "CaseOpened":
        return [("report", (case, e.tracking_code, e.citizen.phone, e.category))]
    if kind == "CaseRouted":
        return [("deadline", (case, "reach", e.reach_by)), ("deadline", (case, "resolve", e.resolve_by)),
                ("report_area", (case, e.area_code))]
    if kind == "AssignmentIssued":
        return [("assignment", (case, e.handler.id, e.unit.id, e.occurred_at)),
                ("handler_seen", (e.handler.id, e.occurred_at))]
    if kind == "CaseAccepted":
        return [("reached", (case,))]
    if kind == "ProgressReported" and e.committed_date:
        return [("committed", (case, e.committed_date))]
    if kind == "CaseTriaged" and getattr(e, "sort_by", None):
        # The centre's time to sort it is the reach deadline; the result's waits for a unit. Each
        # statement touches a row of its own, so their order within a round does not matter.
        return [("close_handler", (case,)), ("deactivate_resolve", (case,)), ("deadline", (case, "reach", e.sort_by))]
    if kind in ("CaseDeclined", "CaseTriaged"):
        return [("close_handler", (case,)), ("deactivate", (case,))]
    if kind == "CaseEscalated":
        return [("escalated", (case, e.deadline, e.level, steps[e.deadline]))]
    if kind in CLOSING:
        return [("deactivate", (case,)), ("close_handler", (case,)), ("report_closed", (case,))]
    if kind == "CaseReopened":
        return [("report_reopened", (case,))]
    return []


async def handler_load(pool: asyncpg.Pool) -> tuple[dict[str, int], dict[str, datetime]]:
    """Open cases and last assignment time per handler (each a row per handler), in one round trip."""
    rows = await pool.fetch("SELECT handler_id, o.n, s.last_assigned FROM handler_open o"
                            " FULL JOIN handler_seen s USING (handler_id)")
    return ({r["handler_id"]: r["n"] for r in rows if r["n"]},
            {r["handler_id"]: r["last_assigned"] for r in rows if r["last_assigned"] is not None})


async def open_duplicates(pool: asyncpg.Pool,
                          keys: Sequence[tuple[str, str]]) -> tuple[dict[tuple[str, str], list[dict]], int | None]:
    """Open cases by (phone, category), and the notification the ledger is recorded up to, read
    together (one snapshot): what the relay had recorded is surely in the list. A case is listed
    once for each area it was routed to (``area_code``; once, with none, before it was routed): the
    caller compares them with the new report's once it knows it."""
    if not keys:
        return {}, None
    # By phone alone, the category checked here: joining the keys as a table cost ten times the
    # lookup in planning alone (0.55 ms for every batch of requests).
    wanted = set(keys)
    # One row at least, whether or not a report matches or the position is there.
    rows = await pool.fetch("SELECT (SELECT position FROM outbox_position WHERE name = 'case.events') AS position,"
                            " r.case_id, r.tracking_code, r.phone, r.category, r.area_code, r.areas"
                            " FROM (VALUES (1)) AS one (x)"
                            " LEFT JOIN reports r ON r.open AND r.phone = ANY($1::text[])",
                            list({phone for phone, _ in wanted}))
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["case_id"] is not None and (r["phone"], r["category"]) in wanted:
            # The latest area too (none, before it was routed): an older router's relay moves area_code alone.
            areas = dict.fromkeys([*(r["areas"] or ()), r["area_code"]])
            out.setdefault((r["phone"], r["category"]), []).extend(
                {**{k: r[k] for k in ("case_id", "tracking_code", "phone", "category")}, "area_code": area}
                for area in areas)
    return out, rows[0]["position"] if rows else None


async def due(conn: asyncpg.Connection, limit: int = 100, before: datetime | None = None) -> list[asyncpg.Record]:
    """Deadlines that have passed (by ``before`` too, when given), locked so that another router
    instance skips them."""
    return await conn.fetch(
        "SELECT case_id, kind, level, due_at FROM deadlines WHERE active AND due_at <= now()"
        " AND ($2::timestamptz IS NULL OR due_at <= $2) ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit, before)
