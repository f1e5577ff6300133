"""Who may see what: roles from bearer tokens, and citizens' contact details masked by role.

Roles: ``council`` (HĐND), ``front`` (MTTQ), ``centre`` (the 1022 centre), and the public (no token,
only ``/v1/public/…``). Names and phone numbers are shown in full to the centre only; the oversight
bodies see them masked; the public never sees them. E-mail and chat ids are the centre's alone.
"""

import hmac
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Header, HTTPException, Request

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


# At least this many digits of a phone are hidden, however short the number: 10^5 to guess.
HIDDEN_DIGITS = 5


def mask_phone(phone: str | None) -> str | None:
    """'+84903123456' → '+849*****456'; a short number shows fewer digits: '+6837012' → '+6*****2'.

    At most the first three and the last three digits are shown, and never so many that fewer
    than five are hidden (all of them, on a number shorter than that).
    """
    if not phone:
        return phone
    plus, digits = ("+", phone[1:]) if phone.startswith("+") else ("", phone)
    hidden = min(len(digits), max(HIDDEN_DIGITS, len(digits) - 6))
    shown = len(digits) - hidden
    last = min(3, shown // 2)
    first = shown - last
    return plus + digits[:first] + "*" * hidden + digits[len(digits) - last:]


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def present(row: Any, role: str) -> dict[str, Any]:
    """A case as a role may see it: citizens' contact in full only for the 1022 centre."""
    case = {k: jsonable(v) for k, v in dict(row).items()}
    if role != "centre":
        case["citizen_name"] = mask_name(case.get("citizen_name"))
        case["citizen_phone"] = mask_phone(case.get("citizen_phone"))
        case["citizen_email"] = None
    return case


def mask_event(body: dict[str, Any], role: str) -> dict[str, Any]:
    """An event's body as a role may see it: the embedded citizen masked like a case's."""
    if role == "centre" or not body.get("citizen"):
        return body
    citizen = body["citizen"]
    return {**body, "citizen": {"full_name": mask_name(citizen.get("full_name")),
                                "phone": mask_phone(citizen.get("phone"))}}
