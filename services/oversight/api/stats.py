"""Statistics (thống kê) for HĐND, MTTQ and the 1022 centre: figures per unit and their ranking,
counts by area and status, and the overdue list (a case in triage is overdue to the centre past
its time to send the case on: ``projection.DUE_BY``).

Per unit, over the cases routed to it (its present holder) that match the filters:
- ``received``: cases; ``open``: still waiting for a result; ``resolved``: with a result (closed included);
- ``overdue_now``: open and past the 5-day deadline (``resolve_by``);
- ``left_late``: cases it let go unresolved past their deadline (declined them, or the centre
  took them from it), or resolved late and had reopened, which other units hold now or the
  centre sorts (a case back with it counts as it stands, once);
- ``on_time_rate``: resolved by the deadline ÷ cases that are due (resolved, open past the
  deadline, or left late) — a unit cannot raise it by sitting on late cases, nor by handing them
  on; null while nothing is due;
- ``median_route_seconds``: received → reached this unit; ``median_resolve_seconds``: received → resolved.
Ranking: on-time rate (highest first), then fewer overdue now, then faster median resolution.
Figures per unit and by area are computed at most every ``OVERSIGHT_STATS_CACHE_SECONDS`` (``as_of``).
"""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from services.oversight.api.access import present, role_of
from services.oversight.api.cases import LIST_COLUMNS
from services.oversight.api.listing import OVERDUE, CaseFilter, Page, case_filter, fetch_page, fetch_with
from services.oversight.api.turns import turn
from services.oversight.projection import OPEN_STATUSES

router = APIRouter(tags=["statistics"])
Filter = Annotated[CaseFilter, Depends(case_filter)]
_OPEN = f"status IN ({', '.join(repr(s) for s in OPEN_STATUSES)})"

UNIT_FIGURES = f"""
WITH held AS (
  SELECT unit_id, max(unit_name) AS unit_name, max(unit_admin_code) AS admin_code,
         count(*) AS received,
         count(*) FILTER (WHERE {_OPEN}) AS open,
         count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved,
         count(*) FILTER (WHERE resolved_at <= resolve_by) AS resolved_on_time,
         count(*) FILTER (WHERE {OVERDUE}) AS overdue_now,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', routed_at - received_at)) AS median_route,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', resolved_at - received_at)) AS median_resolve
  FROM cases WHERE unit_id IS NOT NULL AND {{condition}} GROUP BY unit_id),
gone AS (
  SELECT u->>'id' AS unit_id, max(u->>'name') AS unit_name, max(u->>'admin_code') AS admin_code, count(*) AS left_late
  FROM cases CROSS JOIN LATERAL jsonb_array_elements(left_late::jsonb) AS l(u)
  WHERE left_late IS NOT NULL AND unit_id IS DISTINCT FROM u->>'id' AND {{left_condition}} GROUP BY 1)
SELECT coalesce(h.unit_id, g.unit_id) AS unit_id, coalesce(h.unit_name, g.unit_name) AS unit_name,
       coalesce(h.admin_code, g.admin_code) AS admin_code, coalesce(h.received, 0) AS received,
       coalesce(h.open, 0) AS open, coalesce(h.resolved, 0) AS resolved,
       coalesce(h.resolved_on_time, 0) AS resolved_on_time, coalesce(h.overdue_now, 0) AS overdue_now,
       coalesce(g.left_late, 0) AS left_late, h.median_route AS median_route_seconds,
       h.median_resolve AS median_resolve_seconds
FROM held h FULL JOIN gone g ON g.unit_id = h.unit_id"""


async def _aggregate(reader: Any, query: str, args: list[Any]) -> list[Any]:
    # The medians sort every case; in memory that is several times faster than on disk.
    return await fetch_with(reader, query, args, "work_mem = '64MB'")


async def unit_figures(request: Request, where: CaseFilter, gate: asyncio.Semaphore | None = None) -> dict[str, Any]:
    """Every unit's figures, ranked (1 = best); what the oversight and the public rankings share.

    ``gate`` (the public's, which anyone may ask of with new filters) computes them one at a time
    under a cache key of their own, so a signed-in caller never waits behind the public's (turns.py)."""
    if gate is None:
        return await request.app.state.recent.get(f"units {where!r}",
                                                  lambda: _unit_figures(request.app.state.reader, where))

    async def gated() -> dict[str, Any]:
        async with turn(gate):
            return await _unit_figures(request.app.state.reader, where)

    return await request.app.state.recent.get(f"public units {where!r}", gated)


async def _unit_figures(reader: Any, where: CaseFilter) -> dict[str, Any]:
    condition, args = where.where()
    # A case a unit let go late is counted to it under the same filters, its unit aside: it is
    # another unit's now (or none's).
    left_condition, args = replace(where, unit=None).where(args=args)
    if where.unit is not None:
        args.append(where.unit)
        left_condition += f" AND u->>'id' = ${len(args)}"
    rows = await _aggregate(reader, UNIT_FIGURES.format(condition=condition, left_condition=left_condition), args)
    units = []
    for r in rows:
        due = r["resolved"] + r["overdue_now"] + r["left_late"]
        units.append({**dict(r), "due": due,
                      "on_time_rate": round(r["resolved_on_time"] / due, 4) if due else None,
                      "median_route_seconds": _seconds(r["median_route_seconds"]),
                      "median_resolve_seconds": _seconds(r["median_resolve_seconds"])})
    units.sort(key=lambda u: (u["on_time_rate"] is None, -(u["on_time_rate"] or 0), u["overdue_now"],
                              u["median_resolve_seconds"] is None, u["median_resolve_seconds"] or 0, u["unit_id"]))
    for rank, unit in enumerate(units, 1):
        unit["rank"] = rank
    return {"as_of": datetime.now(UTC).isoformat(), "units": units}


def _seconds(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


@router.get("/v1/stats/units", dependencies=[Depends(role_of)])
async def units(request: Request, where: Filter) -> dict[str, Any]:
    """Figures per unit (received, open, resolved, on-time rate, medians, overdue now, left late), in rank order."""
    return await unit_figures(request, where)


@router.get("/v1/stats/overview", dependencies=[Depends(role_of)])
async def overview(request: Request, where: Filter) -> dict[str, Any]:
    """Counts by status, and by area (địa bàn) and status; cases without an area yet under ``null``."""
    return await request.app.state.recent.get(f"overview {where!r}", lambda: _overview(request.app.state.reader, where))


async def _overview(reader: Any, where: CaseFilter) -> dict[str, Any]:
    condition, args = where.where()
    rows = await _aggregate(reader, f"SELECT area_code, max(area_name) AS area_name, status, count(*) AS n,"
                            f" count(*) FILTER (WHERE {OVERDUE}) AS overdue FROM cases WHERE {condition}"
                            " GROUP BY area_code, status", args)
    by_status: dict[str, int] = {}
    areas: dict[str | None, dict[str, Any]] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + r["n"]
        area = areas.setdefault(r["area_code"], {"area_code": r["area_code"], "area_name": r["area_name"],
                                                 "total": 0, "overdue_now": 0, "by_status": {}})
        area["area_name"] = area["area_name"] or r["area_name"]
        area["total"] += r["n"]
        area["overdue_now"] += r["overdue"]
        area["by_status"][r["status"]] = r["n"]
    by_area = sorted(areas.values(), key=lambda a: (-a["total"], a["area_code"] or ""))
    return {"as_of": datetime.now(UTC).isoformat(), "total": sum(by_status.values()),
            "overdue_now": sum(a["overdue_now"] for a in by_area), "by_status": by_status, "by_area": by_area}


@router.get("/v1/stats/overdue")
async def overdue(request: Request, role: Annotated[str, Depends(role_of)], where: Filter,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100, cursor: str | None = None) -> dict[str, Any]:
    """Open cases past their deadline, the longest overdue first (the list of /v1/cases?overdue=true&sort=deadline)."""
    where.overdue = True
    listed = await fetch_page(request.app.state.reader, where, Page("deadline", limit, cursor), LIST_COLUMNS,
                              lambda r: present(r, role))
    return {"as_of": datetime.now(UTC).isoformat(), **listed}
