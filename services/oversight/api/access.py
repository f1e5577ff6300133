"""Who may see what: roles from bearer tokens, and citizens' contact details masked by role.

Roles: ``council`` (HĐND), ``front`` (MTTQ), ``centre`` (the 1022 centre), and the public (no token,
only ``/v1/public/…``). Names and phone numbers are shown in full to the centre only; the oversight
bodies see them masked, and the phone numbers and e-mail addresses written into the free text too
(a description's "gọi chị Lan 0903 123 456"); the public never sees them. E-mail and chat ids are
the centre's alone.
"""

import hmac
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Header, HTTPException, Request

from contracts.text import VIETNAM
from services.oversight.masking import FREE_TEXT, mask_contacts_in, mask_phone

OVERSIGHT_ROLES = ("council", "front", "centre")
CONTACT_COLUMNS = ("citizen_name", "citizen_phone", "citizen_email")


def role_of(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The caller's role from its bearer token; oversight data is never served without one."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    role = None
    # Every token is compared in constant time, so timing does not tell how much of a guess was right.
    for known, known_role in request.app.state.tokens.items():
        if token and hmac.compare_digest(token.encode(), known.encode()):
            role = known_role
    if role is None:
        raise HTTPException(401, "a valid bearer token is required (HĐND, MTTQ or the 1022 centre)",
                            headers={"WWW-Authenticate": "Bearer"})
    return role


def mask_name(name: str | None) -> str | None:
    """'Nguyễn Văn An' → 'N. V. A***': enough to tell cases apart, not to identify the person."""
    if not name:
        return name
    parts = name.split()
    return " ".join([p[0] + "." for p in parts[:-1]] + [parts[-1][0] + "***"]) if parts else name


def _free_text_masked(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: mask_contacts_in(v) if k in FREE_TEXT and isinstance(v, str) else v for k, v in fields.items()}


def jsonable(value: Any) -> Any:
    """A value as the API writes it; a time in Vietnam's zone, the one its days are counted in (the
    filters', the statistics'): in UTC, a spreadsheet that counts by the CSV's date put every case
    received before 07:00 on the day before, and moved the months' edges."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(VIETNAM).isoformat()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def present_row(row: Any, role: str) -> dict[str, Any]:
    """A row as JSON, the contacts in its free text masked but for the 1022 centre: a delivery
    as a role may see it; a case's contact is masked too by :func:`present`."""
    shown = {k: jsonable(v) for k, v in dict(row).items()}
    return shown if role == "centre" else _free_text_masked(shown)


def present(row: Any, role: str) -> dict[str, Any]:
    """A case as a role may see it: citizens' contact in full only for the 1022 centre."""
    case = present_row(row, role)
    if role != "centre":
        case["citizen_name"] = mask_name(case.get("citizen_name"))
        case["citizen_phone"] = mask_phone(case.get("citizen_phone"))
        case["citizen_email"] = None
    return case


def mask_event(body: dict[str, Any], role: str) -> dict[str, Any]:
    """An event's body as a role may see it: the embedded citizen masked like a case's, and the
    contacts in its free text."""
    if role == "centre":
        return body
    body = _free_text_masked(body)
    if not body.get("citizen"):
        return body
    citizen = body["citizen"]
    return {**body, "citizen": {"full_name": mask_name(citizen.get("full_name")),
                                "phone": mask_phone(citizen.get("phone"))}}
