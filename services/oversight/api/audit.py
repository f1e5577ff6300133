"""The audit trail for HĐND, MTTQ and the 1022 centre: the records of the hash chain, their live
follow, the checkpoints to keep, and the check that nothing was rewritten.

- ``GET /v1/audit/events?after=<seq>&limit=<n>``: NDJSON, one record a line, in chain order from the
  record after ``after`` (0: from the first) up to the head when asked (``X-Audit-Head``). Resume
  with ``after`` = the last ``seq`` received.
- The same path with ``Accept: text/event-stream`` (or ``?follow=true``): Server-Sent Events, each
  record an ``audit`` event whose ``id`` is its seq, then every new record as it is committed;
  reconnecting with ``Last-Event-ID`` resumes after it. A comment line keeps idle streams open.
- Each record: ``seq``, ``event_id``, ``event_type``, ``case_id``, ``occurred_at``, ``canonical`` (the
  exact audited text: the citizen's contact a keyed digest, phone numbers in free text masked),
  ``prev_hash``, ``hash`` = SHA-256(prev_hash + "\\n" + canonical).
  Anyone holding the records can recompute the chain; GENESIS (the first prev_hash) is 64 zeros.
"""

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from services.oversight.api.access import jsonable, role_of
from services.oversight.api.readonly import is_head
from services.oversight.verify import verify

router = APIRouter(tags=["audit"], dependencies=[Depends(role_of)])
RECORD = ("SELECT seq, event_id, event_type, case_id, occurred_at, canonical, prev_hash, hash FROM audit_log"
          " WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3")
CHUNK = 1000
SEQ_MAX = 2**63 - 1  # seq is a bigint: no record is past it


async def _records(reader: Any, after: int, upto: int, limit: int) -> list[dict[str, Any]]:
    return [{k: jsonable(v) for k, v in dict(r).items()} for r in await reader.fetch(RECORD, after, upto, limit)]


@router.get("/v1/audit/events")
async def audit_events(
    request: Request,
    after: Annotated[int, Query(ge=0, le=SEQ_MAX, description="Resume after this seq (0: from the first record)")] = 0,
    limit: Annotated[int | None, Query(ge=1, description="At most this many records (NDJSON only)")] = None,
    follow: Annotated[bool, Query(description="Stay open and send new records (Server-Sent Events)")] = False,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    reader = request.app.state.reader
    head = await reader.fetchval("SELECT seq FROM audit_head WHERE id = 1")
    if follow or "text/event-stream" in request.headers.get("accept", ""):
        start = max(after, _last_seq(last_event_id))
        return StreamingResponse(iter(()) if is_head(request.scope) else _follow(request, start),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Audit-Head": str(head)})
    upto = head if limit is None else min(head, after + limit)

    async def lines() -> AsyncIterator[bytes]:
        last = after
        while last < upto:
            chunk = await _records(reader, last, upto, CHUNK)
            if not chunk:
                return
            yield b"".join(orjson.dumps(r) + b"\n" for r in chunk)
            last = chunk[-1]["seq"]

    return StreamingResponse(iter(()) if is_head(request.scope) else lines(), media_type="application/x-ndjson",
                             headers={"X-Audit-Head": str(head)})


def _last_seq(last_event_id: str | None) -> int:
    """The seq of the last record a reconnecting client received (the ``id`` it was sent), 0 for none."""
    if not last_event_id:
        return 0
    # Not str.isdigit(): "²" is a digit to it, and not to int().
    if not re.fullmatch("[0-9]{1,19}", last_event_id) or int(last_event_id) > SEQ_MAX:
        raise HTTPException(422, f"Last-Event-ID {last_event_id!r} is not the seq of a record of this trail")
    return int(last_event_id)


async def _follow(request: Request, after: int) -> AsyncIterator[bytes]:
    """Records after ``after``, then each new one as the projector commits it, until the client goes."""
    reader, feed = request.app.state.reader, request.app.state.feed
    yield b"retry: 2000\n\n"
    last = after
    while True:
        notices = feed.notices
        chunk = await _records(reader, last, 2**62, CHUNK)
        for record in chunk:
            yield b"id: %d\nevent: audit\ndata: %s\n\n" % (record["seq"], orjson.dumps(record))
        if chunk:
            last = chunk[-1]["seq"]
        else:
            feed.nothing_past(last, notices)
        if len(chunk) < CHUNK:
            if await request.is_disconnected():
                return
            await feed.wait_past(last)
            yield b": keep-alive\n\n"


@router.get("/v1/audit/checkpoints")
async def checkpoints(
    request: Request,
    after: Annotated[int, Query(ge=0, le=SEQ_MAX, description="Only checkpoints past this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """The chain's head now and its checkpoints (head hash and record count at intervals), oldest first:
    copies to keep. ``GET /v1/audit/verify?seq=…&hash=…`` later says whether the chain still passes through one."""
    reader = request.app.state.reader
    head = await reader.fetchrow("SELECT seq, hash, now() AS at FROM audit_head WHERE id = 1")
    rows = await reader.fetch("SELECT seq, hash, made_at, published FROM audit_checkpoints WHERE seq > $1"
                              " ORDER BY seq LIMIT $2", after, limit)
    return {"head": {"seq": head["seq"], "records": head["seq"], "hash": head["hash"], "at": head["at"].isoformat()},
            "checkpoints": [{"seq": r["seq"], "records": r["seq"], "hash": r["hash"], "made_at": r["made_at"].isoformat(),
                             "published": r["published"]} for r in rows]}


@router.get("/v1/audit/verify")
async def verify_chain(
    request: Request,
    seq: Annotated[int | None, Query(ge=1, description="A checkpoint you kept: its seq …")] = None,
    hash: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$", description="… and its hash")] = None,  # noqa: A002
) -> dict[str, Any]:
    """Recompute the whole chain, check every stored event and case row against it, and name the
    first broken record. With ``seq`` and ``hash``, also say whether the chain passes through them."""
    if (seq is None) != (hash is None):
        raise HTTPException(422, "give both seq and hash of the checkpoint, or neither")
    # One check at a time per instance: it reads the whole history.
    async with request.app.state.verify_lock:
        return await verify(request.app.state.reader, request.app.state.audit_key,
                            (seq, hash) if seq is not None and hash is not None else None)
