"""Cases for HĐND, MTTQ and the 1022 centre: the filtered list and its CSV export, one case,
and its timeline (every event and every delivery: what, who, when)."""

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse

from services.oversight.api.access import mask_event, present, present_row, role_of
from services.oversight.api.listing import CaseFilter, Page, case_filter, fetch_page, page
from services.oversight.api.readonly import is_head

router = APIRouter(tags=["cases"])
Role = Annotated[str, Depends(role_of)]
Filter = Annotated[CaseFilter, Depends(case_filter)]

# What a list shows of each case; the full row is at /v1/cases/{case_id}.
LIST_COLUMNS = (
    "case_id", "tracking_code", "channel", "category", "priority", "status", "is_public", "citizen_name",
    "citizen_phone", "citizen_email", "address", "area_code", "area_name", "unit_id", "unit_name", "handler_name",
    "escalation_level", "duplicates", "received_at", "routed_at", "accepted_at", "resolved_at", "closed_at",
    "reach_by", "resolve_by", "updated_at")
CSV_COLUMNS = (*LIST_COLUMNS, "description", "answer")


@router.get("/v1/cases")
async def list_cases(request: Request, role: Role, where: Filter, at: Annotated[Page, Depends(page)]) -> dict[str, Any]:
    """Cases matching the filters, a page at a time; ``next_cursor`` fetches the next page."""
    return await fetch_page(request.app.state.reader, where, at, LIST_COLUMNS, lambda r: present(r, role))


@router.get("/v1/cases.csv")
async def export_cases(request: Request, role: Role, where: Filter) -> StreamingResponse:
    """Every case matching the filters as CSV (UTF-8 with BOM, so spreadsheets read Vietnamese), newest first;
    no cell starts a formula (:func:`cell`)."""
    condition, args = where.where()
    query = f"SELECT {', '.join(CSV_COLUMNS)} FROM cases WHERE {condition} ORDER BY received_at DESC, case_id DESC"

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        out = csv.writer(buffer, quoting=csv.QUOTE_ALL)
        out.writerow(CSV_COLUMNS)
        yield "\ufeff" + _take(buffer)
        async with request.app.state.reader.acquire() as conn, conn.transaction(readonly=True):
            # Read as the client takes it: one that stops reading held a connection of the readers'
            # few, idle in its transaction, for as long as it kept the socket open. PostgreSQL ends
            # such a session after a while; the answer is then cut short, never passed off as whole.
            # The while is between two fetches, of EXPORT_PREFETCH cases (a few hundred KB) each.
            await conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = {int(EXPORT_IDLE_SECONDS * 1000)}")
            async for row in conn.cursor(query, *args, prefetch=EXPORT_PREFETCH):
                case = present(row, role)
                out.writerow([cell(case[c]) for c in CSV_COLUMNS])
                if buffer.tell() > 64_000:
                    yield _take(buffer)
        yield _take(buffer)

    return StreamingResponse(iter(()) if is_head(request.scope) else lines(),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="cases.csv"'})


# How long an export may wait for its client to take the cases it read before its connection is let
# go, and how many cases it reads at a time: a client taking fewer than 100 cases a minute is cut off.
EXPORT_IDLE_SECONDS = 60.0
EXPORT_PREFETCH = 100

# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A value as a CSV cell a spreadsheet shows and never runs: text that would start a formula
    (a citizen's ``=HYPERLINK(…)``) gets a leading ``'``, as OWASP advises; ``None`` is empty.

    So does a formula after a separator inside the text: a spreadsheet whose list separator is
    ";" (the usual one where the decimal mark is a comma) reads this comma-separated file a line
    at a time, splitting it at each ";" whatever the quotes, and "hỗ trợ;=HYPERLINK(…)" ran."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value.startswith(FORMULA_STARTS):  # its start quoted, the rest looked through
            return "'" + value[:1] + _AFTER_A_SEPARATOR.sub(r"\1'\2", value[1:])
        return _AFTER_A_SEPARATOR.sub(r"\1'\2", value)
    return value


_AFTER_A_SEPARATOR = re.compile(r"([;,\t])([=+\-@])")


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


@router.get("/v1/cases/{case_id}")
async def get_case(request: Request, case_id: UUID, role: Role) -> dict[str, Any]:
    row = await request.app.state.reader.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
    if row is None:
        raise HTTPException(404, f"no case {case_id}")
    return present(row, role)


@router.get("/v1/cases/{case_id}/timeline")
async def timeline(request: Request, case_id: UUID, role: Role) -> dict[str, Any]:
    """Every event of a case and every delivery about it: what, who, when."""
    reader = request.app.state.reader
    events = await reader.fetch(
        "SELECT event_id, version, event_type, occurred_at, producer, body::text FROM case_events"
        " WHERE case_id = $1 ORDER BY version, occurred_at", case_id)
    if not events:
        raise HTTPException(404, f"no case {case_id}")
    deliveries = await reader.fetch(
        "SELECT delivery_id, cause_event_id, recipient, channel, template, outcome, attempts, error, occurred_at"
        " FROM deliveries WHERE case_id = $1 ORDER BY occurred_at", case_id)
    return {
        "case_id": str(case_id),
        "events": [{"event_id": str(e["event_id"]), "version": e["version"], "event_type": e["event_type"],
                    "occurred_at": e["occurred_at"].isoformat(), "producer": e["producer"],
                    "body": mask_event(orjson.loads(e["body"]), role)} for e in events],
        "deliveries": [present_row(d, role) for d in deliveries],
    }
