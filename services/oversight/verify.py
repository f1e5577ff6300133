"""Checking that nothing was rewritten: the audit chain from its first record, every stored event
(its body and the columns the API shows of it) against its audit record, and every case row against
its events.

All of it is read in one repeatable-read snapshot, so a projector committing meanwhile cannot
make a sound history look broken. The answer names the first broken record (seq and event id).
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from services.oversight.chain import Break, ChainWalk, matches
from services.oversight.projection import (CASE_COLUMNS, CASE_EVENT_COLUMNS, DELIVERY_COLUMNS, DELIVERY_TYPES, fold,
                                           stored_columns, timestamp)

# The columns of an event's row beside its body (``stored_columns``), by the table's alias below:
# case_events (c) and deliveries (d). Each is read as <alias>_<column>.
_STORED = {"c": CASE_EVENT_COLUMNS, "d": DELIVERY_COLUMNS}
_AUDIT_WITH_EVENTS = (
    "SELECT a.seq, a.event_id::text, a.canonical, a.prev_hash, a.hash, coalesce(c.body, d.body)::text AS body, "
    "a.event_type AS a_event_type, a.case_id AS a_case_id, a.occurred_at AS a_occurred_at, "
    "c.event_id IS NOT NULL AS in_c, d.event_id IS NOT NULL AS in_d, "
    + ", ".join(f"{t}.{c} AS {t}_{c}" for t, columns in _STORED.items() for c in columns)
    + " FROM audit_log a LEFT JOIN case_events c ON c.event_id = a.event_id"
    " LEFT JOIN deliveries d ON d.event_id = a.event_id ORDER BY a.seq")
_UNAUDITED = (
    "SELECT event_id::text FROM case_events e WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.event_id = e.event_id)"
    " UNION ALL SELECT event_id::text FROM deliveries d WHERE NOT EXISTS"
    " (SELECT 1 FROM audit_log a WHERE a.event_id = d.event_id) LIMIT 1")
# What reading a text rewritten past its shape raises (a field gone, a number or a list in place of
# an object): verify names such a record as altered rather than failing.
UNREADABLE = (AttributeError, KeyError, TypeError, ValueError)
# Each case row with its events' bodies, in version order (as JSON text); refold.py pages through it.
CASES_WITH_EVENTS = (
    f"SELECT {', '.join('c.' + c for c in CASE_COLUMNS)}, (SELECT json_agg(e.body ORDER BY e.version)::text"
    " FROM case_events e WHERE e.case_id = c.case_id) AS events FROM cases c")
_OPENED_WITHOUT_ROW = (
    "SELECT case_id::text FROM case_events e WHERE event_type = 'CaseOpened'"
    " AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.case_id = e.case_id) LIMIT 1")


async def verify(pool: asyncpg.Pool, audit_key: bytes, checkpoint: tuple[int, str] | None = None) -> dict[str, Any]:
    """The whole check; ``checkpoint`` is a (seq, hash) someone kept, to compare with the chain."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        head = await conn.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1")
        kept = {r["seq"]: r["hash"] for r in await conn.fetch("SELECT seq, hash FROM audit_checkpoints")}
        walk = ChainWalk(set(kept) | ({checkpoint[0]} if checkpoint else set()))
        first_data_break = await _walk_chain(conn, walk, audit_key)
        if walk.broken is None and (walk.seq, walk.head) != (head["seq"], head["hash"]):
            walk.fail(walk.seq, None, f"the chain's head says {head['seq']} records, but {walk.seq} chain up to it")
        unaudited = await conn.fetchval(_UNAUDITED)
        case_mismatch = await _check_cases(conn)
    breaks = [b for b in (walk.broken, first_data_break) if b is not None]
    if unaudited:
        breaks.append(Break(walk.seq + 1, unaudited, "the event is in the read model but has no audit record"))
    first = min(breaks, key=lambda b: b.seq) if breaks else None
    # Past the chain's end a checkpoint is mismatched unless the chain broke before it: a chain cut
    # short (its head set back) does not pass through the checkpoints it passed through before.
    mismatched = [{"seq": s, "hash": h, "recomputed": walk.hashes.get(s)} for s, h in sorted(kept.items())
                  if (s <= walk.seq or walk.broken is None) and walk.hashes.get(s) != h]
    report: dict[str, Any] = {
        "ok": first is None and case_mismatch is None and not mismatched,
        "checked_at": datetime.now(UTC).isoformat(), "records": head["seq"], "chained": walk.seq,
        "head": {"seq": head["seq"], "hash": head["hash"]},
        "first_broken": first.as_dict() if first else None, "case_mismatch": case_mismatch,
        "checkpoints": {"stored": len(kept), "mismatched": mismatched[:10]},
    }
    if checkpoint:
        seq, expected = checkpoint
        recomputed = walk.hashes.get(seq)
        report["checkpoint"] = {"seq": seq, "hash": expected, "recomputed": recomputed,
                                "matches": recomputed == expected}
        report["ok"] = report["ok"] and recomputed == expected
    return report


async def _walk_chain(conn: asyncpg.Connection, walk: ChainWalk, audit_key: bytes) -> Break | None:
    """Recompute the chain; return the first record whose stored event differs from what was audited."""
    first: Break | None = None
    async for r in conn.cursor(_AUDIT_WITH_EVENTS, prefetch=2000):
        if not walk.step(r["seq"], r["event_id"], r["canonical"], r["prev_hash"], r["hash"]):
            break
        if first is not None:
            continue
        try:
            canonical = orjson.loads(r["canonical"])
        except UNREADABLE:  # a text the projector never wrote, chained again over it
            first = Break(r["seq"], r["event_id"], "the audit record's text cannot be read (altered)")
            continue
        if altered := _record_altered(canonical, r):
            # The trail serves these columns beside the hashed text; the hash covers only the text.
            first = Break(r["seq"], r["event_id"],
                          f"the audit record's {', '.join(altered)} differ from its hashed text (altered)")
            continue
        if r["body"] is None:
            first = Break(r["seq"], r["event_id"], "the audited event is missing from the read model")
            continue
        if r["in_c"] and r["in_d"]:
            # One event id in both tables: the walk reads the case event, and the API shows both.
            first = Break(r["seq"], r["event_id"], "the event is stored both as a case event and as a delivery"
                                                   " (a row was added)")
            continue
        try:
            body = orjson.loads(r["body"])
            same = isinstance(body, dict) and isinstance(canonical, dict) and matches(body, canonical, audit_key)
        except UNREADABLE:  # rewritten past what can be read: a number beyond a double, nesting too deep
            same = False
        if not same:
            first = Break(r["seq"], r["event_id"], "the stored event differs from its audit record (altered)")
        elif altered := _columns_altered(body, r):
            first = Break(r["seq"], r["event_id"],
                          f"the stored event differs from its audit record in {', '.join(altered)} (altered)")
    return first


def _record_altered(canonical: dict[str, Any], r: asyncpg.Record) -> list[str]:
    """The columns of an audit record that are not what its hashed text says."""
    try:
        expected = {"event_type": canonical["event_type"], "occurred_at": timestamp(canonical["occurred_at"]),
                    "case_id": UUID(str(canonical["case_id"])) if canonical.get("case_id") else None}
    except UNREADABLE:  # a text the projector would not have chained
        return ["event_type", "case_id", "occurred_at"]
    return [c for c in ("event_type", "case_id", "occurred_at") if r[f"a_{c}"] != expected[c]]


def _columns_altered(body: dict[str, Any], r: asyncpg.Record) -> list[str]:
    """The columns of an event's row that are not what its body says (the API shows them, not the body)."""
    table = "d" if body.get("event_type") in DELIVERY_TYPES else "c"
    try:
        expected = stored_columns(body)
    except UNREADABLE:  # a body rewritten with its audit record and chain
        return list(_STORED[table])
    return [c for c in _STORED[table] if r[f"{table}_{c}"] != expected[c]]


async def _check_cases(conn: asyncpg.Connection) -> dict[str, Any] | None:
    """The first case whose row is not what its events make of it."""
    async for r in conn.cursor(CASES_WITH_EVENTS + " ORDER BY c.case_id", prefetch=1000):
        row = {c: r[c] for c in CASE_COLUMNS}
        try:
            expected = fold(None, orjson.loads(r["events"]) if r["events"] else [])
        except UNREADABLE:  # an event rewritten past what the fold can read
            return {"case_id": str(r["case_id"]), "tracking_code": r["tracking_code"], "columns": [],
                    "reason": "the case's events cannot be folded (altered)"}
        if expected != row:
            columns = sorted(c for c in CASE_COLUMNS if expected is None or expected[c] != row[c])
            return {"case_id": str(r["case_id"]), "tracking_code": r["tracking_code"], "columns": columns,
                    "reason": "the case row differs from what its events say" if expected else "the case has no events"}
    missing = await conn.fetchval(_OPENED_WITHOUT_ROW)
    if missing:
        return {"case_id": missing, "tracking_code": None, "columns": [], "reason": "an opened case has no row"}
    return None
