"""Filtering and paging case lists, shared by the oversight list, its CSV export, the statistics
and the public list.

Pages are cut by a cursor (keyset), not by offset: a page stays the same while new cases arrive,
and page 1000 costs what page 1 costs. Two orders are stable: newest first (``received_at``,
``case_id`` descending; the default) and earliest deadline first (``sort=deadline``, cases that
have a deadline: :data:`DUE_BY`). Dates without a time are days in Vietnam (UTC+7); ``to`` takes in the whole day.
"""

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
import orjson
from fastapi import HTTPException, Query

from contracts.ids import normalise_tracking_code
from contracts.text import VIETNAM, in_vietnam
from services.oversight.projection import DUE_BY, OPEN_STATUSES

STATUSES = (*OPEN_STATUSES, "resolved", "closed", "duplicate")
OPEN = f"status IN ({', '.join(repr(s) for s in OPEN_STATUSES)})"
OVERDUE = f"({OPEN} AND {DUE_BY} < now())"
SORTS = {"received": ("received_at", "DESC", "<"), "deadline": (DUE_BY, "ASC", ">")}


def due_by(row: Any) -> datetime | None:
    """:data:`DUE_BY` of a row read with ``resolve_by`` and ``reach_by``."""
    return row["resolve_by"] if row["resolve_by"] is not None else row["reach_by"]


@dataclass
class CaseFilter:
    area: str | None = None
    unit: str | None = None
    category: str | None = None
    statuses: list[str] = field(default_factory=list)
    overdue: bool | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    tracking_code: str | None = None

    def where(self, *, public_only: bool = False, open_only: bool = False,
              args: list[Any] | None = None) -> tuple[str, list[Any]]:
        """The SQL condition (``true`` when none) and its arguments, numbered after ``args``.
        ``open_only`` keeps the open cases, in the words of the open cases' deadline index."""
        args = list(args or [])
        parts = (["is_public"] if public_only else []) + ([OPEN] if open_only else [])

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        for column, value in (("area_code", self.area), ("unit_id", self.unit), ("category", self.category),
                              ("tracking_code", self.tracking_code)):
            if value is not None:
                parts.append(f"{column} = {arg(value)}")
        if self.statuses:
            parts.append(f"status = ANY({arg(self.statuses)}::text[])")
        if self.overdue is not None:
            parts.append(OVERDUE if self.overdue else f"NOT coalesce({OVERDUE}, false)")
        if self.received_from is not None:
            parts.append(f"received_at >= {arg(self.received_from)}")
        if self.received_to is not None:
            parts.append(f"received_at < {arg(self.received_to)}")
        return " AND ".join(parts) or "true", args


def _moment(text: str | None, *, end_of_day: bool) -> datetime | None:
    if not text:
        return None
    try:
        # A day in any of ISO 8601's spellings (20210701, 2021-W26-4 too) is the whole day.
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    try:
        if day is not None:
            day += timedelta(days=1 if end_of_day else 0)
            return _in_range(datetime.combine(day, time(), VIETNAM))
        return _in_range(in_vietnam(datetime.fromisoformat(text)))
    except ValueError:
        raise HTTPException(422, f"not a date or date-time: {text!r} (YYYY-MM-DD or ISO 8601)") from None
    except OverflowError:
        raise HTTPException(422, f"{text!r} is past the dates cases are filed under (years 1 to 9999)") from None


def _in_range(moment: datetime) -> datetime:
    """The moment, if it is one in UTC too (how PostgreSQL is given it); OverflowError if not."""
    moment.astimezone(UTC)
    return moment


def _text(name: str, value: str | None) -> str | None:
    """A text filter as given; PostgreSQL's text cannot hold a NUL, so no case has one."""
    if value is not None and "\x00" in value:
        raise HTTPException(422, f"{name}: a NUL character is not text")
    return value


def _tracking_code(text: str | None) -> str | None:
    """The code as the public lookup reads it (O, I, L and U read over the phone as 0, 1, 1 and V)."""
    if not text:
        return None
    code = normalise_tracking_code(text)
    if code is None:
        raise HTTPException(422, f"not a valid tracking code: {text!r} (mã tra cứu không hợp lệ)")
    return code


def case_filter(
    area: Annotated[str | None, Query(description="Area (địa bàn): GSO code of the district or ward")] = None,
    unit: Annotated[str | None, Query(description="Unit id from the directory")] = None,
    category: Annotated[str | None, Query(description="Category code, e.g. essential_supplies")] = None,
    status: Annotated[str | None, Query(description="One status or several, comma-separated")] = None,
    overdue: Annotated[bool | None, Query(description="Still open after its deadline (quá hạn)")] = None,
    received_from: Annotated[str | None, Query(alias="from", description="Received at or after (date or ISO time)")] = None,
    received_to: Annotated[str | None, Query(alias="to", description="Received before; a date includes that day")] = None,
    tracking_code: Annotated[str | None, Query(description="Mã tra cứu")] = None,
) -> CaseFilter:
    """The list filters from the query string (a FastAPI dependency)."""
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else []
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise HTTPException(422, f"unknown status {', '.join(unknown)}; known: {', '.join(STATUSES)}")
    return CaseFilter(_text("area", area), _text("unit", unit), _text("category", category), statuses, overdue,
                      _moment(received_from, end_of_day=False), _moment(received_to, end_of_day=True),
                      _tracking_code(tracking_code))


def public_filter(
    area: Annotated[str | None, Query(description="Area (địa bàn): GSO code of the district or ward")] = None,
    category: Annotated[str | None, Query(description="Category code, e.g. essential_supplies")] = None,
    received_from: Annotated[str | None, Query(alias="from", description="Received on or after this day (YYYY-MM-DD)")] = None,
    received_to: Annotated[str | None, Query(alias="to", description="Received on or before this day (YYYY-MM-DD)")] = None,
) -> CaseFilter:
    """The filters of figures the public may narrow: area, category and whole days. The figures
    count requests not marked public too, so the filters that name one (a tracking code) or cut
    finer (a status, a unit, a window of seconds) are not the public's; others in the query string
    are ignored. A small area on one day can still hold a single request: the public ranking shows a
    unit of a narrowed selection only for a few requests or more (public.MIN_PUBLIC_REQUESTS)."""
    for text in (received_from, received_to):
        if text and len(text) != 10:
            raise HTTPException(422, f"not a day: {text!r} (YYYY-MM-DD; the public figures count whole days)")
    # Each distinct filter is figures computed afresh over the whole history (one at a time, for the
    # public: api/public.py). A category is configuration, so any text may name one; an area is a code.
    if area is not None and not (area.isascii() and area.isdigit() and len(area) <= 6):
        raise HTTPException(422, "area: a GSO code of a district or ward (digits)")
    return CaseFilter(area=_text("area", area), category=_text("category", category),
                      received_from=_moment(received_from, end_of_day=False),
                      received_to=_moment(received_to, end_of_day=True))


@dataclass
class Page:
    """Where a page starts and how long it is."""

    sort: Literal["received", "deadline"] = "received"
    limit: int = 50
    cursor: str | None = None

    def clause(self, condition: str, args: list[Any]) -> tuple[str, list[Any]]:
        """``WHERE … ORDER BY … LIMIT`` for this page (one row more than asked, to know if more follow)."""
        column, direction, after = SORTS[self.sort]
        parts = [condition] + ([f"{column} IS NOT NULL"] if self.sort == "deadline" else [])
        if self.cursor:
            moment, case_id = _decode(self.cursor)
            args = [*args, moment, case_id]
            parts.append(f"({column}, case_id) {after} (${len(args) - 1}, ${len(args)}::uuid)")
        return (f"WHERE {' AND '.join(parts)} ORDER BY {column} {direction}, case_id {direction}"
                f" LIMIT {self.limit + 1}", args)

    def cut(self, rows: list[Any]) -> tuple[list[Any], str | None]:
        """The page's rows and the cursor of the next page (None on the last page)."""
        if len(rows) <= self.limit:
            return rows, None
        last = rows[self.limit - 1]
        return rows[: self.limit], _encode(last["received_at"] if self.sort == "received" else due_by(last),
                                           last["case_id"])


def page(
    sort: Annotated[Literal["received", "deadline"], Query(description="received: newest first; deadline: earliest first")] = "received",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Page:
    return Page(sort, limit, cursor)


def _encode(moment: datetime, case_id: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([moment.isoformat(), str(case_id)])).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        moment, case_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return _in_range(datetime.fromisoformat(moment)), str(UUID(str(case_id)))
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError):
        raise HTTPException(422, "not a cursor this API gave out") from None


async def fetch_page(reader: Any, where: CaseFilter, at: Page, columns: Sequence[str],
                     show: Callable[[Any], dict[str, Any]], *, public_only: bool = False) -> dict[str, Any]:
    """One page of cases: ``items`` (each through ``show``), ``next_cursor`` and ``limit``.

    The public list by deadline is of open requests: a deadline is what is still due, and so every
    page reads the open cases' deadline index rather than sorting every public case. The public's
    page is read for at most :data:`PUBLIC_PAGE_SECONDS`: a filter no index serves (a category no
    public request has) reads every public case, and is answered 503 past it."""
    condition, args = where.where(public_only=public_only, open_only=public_only and at.sort == "deadline")
    clause, args = at.clause(condition, args)
    query = f"SELECT {', '.join(columns)} FROM cases {clause}"
    if not public_only:
        rows = await reader.fetch(query, *args)
    else:
        try:
            rows = await fetch_with(reader, query, args, f"statement_timeout = {int(PUBLIC_PAGE_SECONDS * 1000)}")
        except asyncpg.QueryCanceledError:
            raise HTTPException(503, "this list took too long to read; narrow it by area or days, or try again later",
                                headers={"Retry-After": "30"}) from None
    rows, next_cursor = at.cut(rows)
    return {"items": [show(r) for r in rows], "next_cursor": next_cursor, "limit": at.limit}


async def fetch_with(reader: Any, query: str, args: Sequence[Any], setting: str) -> list[Any]:
    """``query``'s rows, read in a read-only transaction of its own under ``setting`` (a SET LOCAL:
    more memory for a sort, a time-out)."""
    async with reader.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(f"SET LOCAL {setting}")
        return await conn.fetch(query, *args)


# How long the public's page of requests may take to read.
PUBLIC_PAGE_SECONDS = 5.0
