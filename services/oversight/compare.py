"""Comparing two sets of oversight tables (the live ones and a rebuild) row by row, cheaply.

Each table's rows are spread over 256 buckets by a hash of their key; a bucket's digest is the MD5
of its rows' MD5s in key order. Only buckets whose digests differ are read row by row, so two equal
tables of a million rows cost two grouped scans, and a difference is still named by its key.
Columns are listed, not ``*``: a table made before a column was added has its columns in another order.
"""

from typing import Any

import asyncpg

from services.oversight.projection import CASE_COLUMNS, CASE_EVENT_COLUMNS, DELIVERY_COLUMNS

# table → (key, compared columns). The audit log is compared by content: the same events with the
# same audited text; its order (seq, hashes) follows the order the partitions happened to be read in.
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "cases": ("case_id", tuple(CASE_COLUMNS)),
    "case_events": ("event_id", (*CASE_EVENT_COLUMNS, "body")),
    "deliveries": ("delivery_id", (*DELIVERY_COLUMNS, "body")),
    "audit_log": ("event_id", ("event_id", "event_type", "case_id", "occurred_at", "canonical")),
    "consumer_offsets": ("topic || '/' || partition", ("topic", "partition", "next_offset", "first_offset")),
}
SHOWN = 10


def _rows(schema: str, table: str) -> tuple[str, str]:
    key, columns = TABLES[table]
    row = f"md5(row({', '.join(columns)})::text)"
    source = f"{schema}.{table}"
    buckets = (f"SELECT left(md5(({key})::text), 2) AS bucket, count(*) AS n,"
               f" md5(string_agg({row}, '' ORDER BY ({key})::text)) AS digest FROM {source} GROUP BY 1")
    rows = (f"SELECT ({key})::text AS key, {row} AS digest FROM {source}"
            f" WHERE left(md5(({key})::text), 2) = ANY($1::text[])")
    return buckets, rows


async def compare_table(live: asyncpg.Connection, rebuilt: asyncpg.Connection, table: str,
                        live_schema: str, rebuilt_schema: str) -> dict[str, Any]:
    """Counts on both sides, whether they are equal, and the keys of the first differences."""
    live_buckets, live_rows = _rows(live_schema, table)
    rebuilt_buckets, rebuilt_rows = _rows(rebuilt_schema, table)
    a = {r["bucket"]: (r["n"], r["digest"]) for r in await live.fetch(live_buckets)}
    b = {r["bucket"]: (r["n"], r["digest"]) for r in await rebuilt.fetch(rebuilt_buckets)}
    differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    result: dict[str, Any] = {"live": sum(n for n, _ in a.values()), "rebuilt": sum(n for n, _ in b.values()),
                              "equal": not differing}
    if differing:
        left = {r["key"]: r["digest"] for r in await live.fetch(live_rows, differing)}
        right = {r["key"]: r["digest"] for r in await rebuilt.fetch(rebuilt_rows, differing)}
        keys = sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))
        result["differences"] = len(keys)
        result["first"] = [{"key": k, "in": "both, differing" if k in left and k in right else
                            "live only" if k in left else "rebuilt only"} for k in keys[:SHOWN]]
    return result


async def compare(live: asyncpg.Connection, rebuilt: asyncpg.Connection, live_schema: str,
                  rebuilt_schema: str) -> dict[str, dict[str, Any]]:
    return {t: await compare_table(live, rebuilt, t, live_schema, rebuilt_schema) for t in TABLES}
