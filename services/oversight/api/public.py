"""What anyone may see, with no login: a request's status by its tracking code, the list of public
requests, and the units' on-time rates and ranking. Never a name, phone, e-mail or address.

A request the citizen marked not public (không công khai) is invisible to the public: it is in no
public list, and a lookup of its tracking code — which only the citizen holds — tells where it
stands (status and dates) and nothing about its content: no category, unit, area or answer.
"""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request

from contracts.categories import load as categories
from contracts.ids import normalise_tracking_code
from services.oversight.api.access import jsonable
from services.oversight.masking import mask_contacts_in
from services.oversight.api.listing import CaseFilter, Page, case_filter, fetch_page, page, public_filter
from services.oversight.api.stats import unit_figures
from services.oversight.api.turns import turn

router = APIRouter(tags=["public"])

STATUS_LABELS = {
    "received": ("Đã tiếp nhận", "Received"), "routed": ("Đã chuyển đơn vị xử lý", "Sent to the responsible unit"),
    "triage": ("Tổng đài đang phân loại", "Being sorted by the 1022 centre"), "declined": ("Đang chuyển lại", "Being rerouted"),
    "accepted": ("Đơn vị đã nhận xử lý", "Accepted by the unit"), "in_progress": ("Đang xử lý", "In progress"),
    "resolved": ("Đã có kết quả", "Resolved"), "closed": ("Đã đóng", "Closed"), "reopened": ("Đã mở lại", "Reopened"),
    "duplicate": ("Trùng với phản ánh đang xử lý", "Follows an earlier report of the same problem"),
}
PUBLIC_COLUMNS = ("case_id", "tracking_code", "category", "status", "area_code", "area_name", "unit_name",
                  "received_at", "resolved_at", "resolve_by", "reach_by", "updated_at")
# Figures a unit's public ranking shows: counts and rates, nothing about a single case.
PUBLIC_FIGURES = ("rank", "unit_id", "unit_name", "received", "open", "resolved", "overdue_now", "left_late", "due",
                  "on_time_rate", "median_route_seconds", "median_resolve_seconds")
# A ranking narrowed by area, category or days shows a unit only for at least this many requests:
# narrowed to a ward's "vulnerable person" requests of one day, a unit with one was that person's
# request, its unit, outcome and times (statistical offices withhold small cells the same way).
MIN_PUBLIC_REQUESTS = 5


def _status(status: str) -> dict[str, str]:
    vi, en = STATUS_LABELS.get(status, (status, status))
    return {"status": status, "status_vi": vi, "status_en": en}


def _category(code: str | None) -> dict[str, Any]:
    known = categories().get(code or "")
    return {"category": code, "category_vi": known.vi if known else code, "category_en": known.en if known else code}


def public_case(row: Any) -> dict[str, Any]:
    """A public request as the list shows it (the case id stays inside: the tracking code names it)."""
    case = {k: jsonable(row[k]) for k in PUBLIC_COLUMNS if k != "case_id"}
    return {**case, **_status(row["status"]), **_category(row["category"]), "unit": row["unit_name"]}


@router.get("/v1/public/requests/{tracking_code}")
async def public_status(request: Request, tracking_code: str) -> dict[str, Any]:
    """What a citizen holding a tracking code may see: status and unit, nothing personal."""
    code = normalise_tracking_code(tracking_code)
    if code is None:
        raise HTTPException(400, "not a valid tracking code (mã tra cứu không hợp lệ)")
    rows = await request.app.state.reader.fetch(
        "SELECT tracking_code, category, status, area_name, unit_name, received_at, updated_at, resolve_by,"
        " reach_by, resolved_at, committed_date, is_public, answer, citizen_name, address FROM cases"
        " WHERE tracking_code = $1 LIMIT 2",
        code)
    if not rows:
        raise HTTPException(404, "no request with this tracking code yet (chưa có phản ánh với mã này)")
    if len(rows) > 1:
        # A code an older intake gave twice: either answer could be another citizen's request.
        raise HTTPException(409, "this tracking code was given to more than one request: please call 1022"
                                 " (mã này được cấp cho nhiều phản ánh, vui lòng gọi 1022)")
    [row] = rows
    dates = {k: jsonable(row[k]) for k in ("received_at", "updated_at", "resolve_by", "reach_by", "resolved_at",
                                            "committed_date")}
    # What the citizen was last promised: the date the unit committed to, once it gave one (and
    # an apology told them so), else the routing's. Shown the routing's alone, a citizen told "by
    # 10/12" read that the result was expected by the 5th, already past.
    dates["expected_by"] = dates["committed_date"] or dates["resolve_by"]
    if not row["is_public"]:
        return {"tracking_code": row["tracking_code"], "is_public": False, **_status(row["status"]), **dates}
    return {"tracking_code": row["tracking_code"], "is_public": True, **_status(row["status"]),
            **_category(row["category"]), "unit": row["unit_name"], "area": row["area_name"], **dates,
            "answer": public_answer(row["answer"], row["citizen_name"], row["address"]) if row["answer"] else None}


def public_answer(answer: str, name: str | None, address: str | None) -> str:
    """A unit's answer as anyone may read it: the contacts written in it masked, and the citizen's
    name and address starred where it repeats them as the request gave them ("Kính gửi bà Nguyễn
    Thị Hoa"); a name of one word only where it stands as a word of its own."""
    for said in (name, address):
        if said and said.strip():
            answer = re.sub(rf"(?<!\w){re.escape(said.strip())}(?!\w)", "***", answer)
    return mask_contacts_in(answer)


@router.get("/v1/public/requests")
async def public_requests(request: Request, where: Annotated[CaseFilter, Depends(case_filter)],
                          at: Annotated[Page, Depends(page)]) -> dict[str, Any]:
    """Requests their citizens marked public, with the list filters and cursor; never a not-public one.
    A few pages are read at a time (turns.py), each for at most a few seconds (listing.py)."""
    async with turn(request.app.state.public_pages):
        return await fetch_page(request.app.state.reader, where, at, PUBLIC_COLUMNS, public_case, public_only=True)


@router.get("/v1/public/stats/units")
async def public_ranking(request: Request, where: Annotated[CaseFilter, Depends(public_filter)]) -> dict[str, Any]:
    """The units' on-time rates and ranking, as the city publishes them (counts over all requests),
    by area, category and days only: a tracking code once narrowed them to one private request."""
    # One computed at a time for the public: a stream of new filters cannot take the readers' pool.
    figures = await unit_figures(request, where, request.app.state.public_figures)
    units = figures["units"]
    narrowed = any(v is not None for v in (where.area, where.category, where.received_from, where.received_to))
    shown = [u for u in units if u["received"] >= MIN_PUBLIC_REQUESTS] if narrowed else units
    # Ranked among those shown: a gap in the ranks would say where a withheld unit stood.
    return {"as_of": figures["as_of"], "withheld_units": len(units) - len(shown),
            "units": [{**{k: u[k] for k in PUBLIC_FIGURES}, "rank": rank} for rank, u in enumerate(shown, 1)]}
