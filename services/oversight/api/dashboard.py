"""The dashboard at ``/`` (Vietnamese first, English on a button): counts by status and by area,
the units' on-time rates and ranking as charts, the overdue list and any case's timeline.

The page is a shell with no data in it: its script asks the user for a token (kept for the browser
tab only) and reads the same read-only API everyone else reads, so what it shows is what the API
says, masked for the role of that token. Everything it loads comes from this service: no CDN.
"""

from functools import cache
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from services.oversight.api.access import role_of
from services.oversight.api.public import STATUS_LABELS
from services.oversight.projection import OPEN_STATUSES

router = APIRouter(tags=["dashboard"])
# Only this origin's script and style; inline style attributes are the SVG's.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
          " base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


@cache
def _asset(name: str) -> bytes:
    text = resources.files("services.oversight").joinpath("static", name).read_text("utf-8")
    if name == "dashboard.html":
        labels = {"statuses": STATUS_LABELS, "open_statuses": OPEN_STATUSES}
        text = text.replace("__LABELS__", orjson.dumps(labels).decode().replace("<", "\\u003c"))
    return text.encode("utf-8")


def _serve(name: str) -> Response:
    return Response(_asset(name), media_type=TYPES[name.rsplit(".", 1)[1]],
                    headers={"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "no-cache"})


@router.get("/", include_in_schema=False)
async def dashboard() -> Response:
    return _serve("dashboard.html")


@router.get("/dashboard.js", include_in_schema=False)
async def script() -> Response:
    return _serve("dashboard.js")


@router.get("/dashboard.css", include_in_schema=False)
async def style() -> Response:
    return _serve("dashboard.css")


@router.get("/v1/whoami")
async def whoami(role: Annotated[str, Depends(role_of)]) -> dict[str, Any]:
    """The role a token gives (council, front or centre): the dashboard says whose view it shows."""
    return {"role": role}
