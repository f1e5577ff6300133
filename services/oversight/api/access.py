"""Who may see what: roles from bearer tokens, and citizens' contact details masked by role.

Roles: ``council`` (HĐND), ``front`` (MTTQ), ``centre`` (the 1022 centre), and the public (no token,
only ``/v1/public/…``). Names and phone numbers are shown in full to the centre only; the oversight
bodies see them masked, and the phone numbers written into the free text too (a description's
"gọi chị Lan 0903 123 456"); the public never sees them. E-mail and chat ids are the centre's alone.
"""

import functools
import hmac
import re
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Header, HTTPException, Request
from phonenumbers import Leniency, PhoneNumberMatcher, is_valid_number

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


# Seven digits or more, a few marks at most between two (spaces, dots, dashes of any kind, brackets,
# as phonenumbers reads them): only such text is looked through for phone numbers.
_DIGITS = re.compile(r"\d(?:[^\w]{0,4}\d){6,}")
# The directory's ids of units and handlers: edition/code[/handler] ("hcmc-2025/27424/h01").
_UNIT_IDS = re.compile(r"\b[a-z]+-\d{4}/[0-9a-z-]+(?:/[0-9a-z-]+)*")
# The text a citizen or a unit writes, in a case row and in the events (a unit's decline note is in
# the case's triage reason), and a gateway's error, which can name the number a message went to.
FREE_TEXT = ("description", "address", "corrected_address", "note", "answer", "reason", "triage_reason", "error")


@functools.lru_cache(maxsize=4096)
def mask_phones_in(text: str) -> str:
    """Free text with each phone number in it masked as :func:`mask_phone` masks the citizen's, its
    spacing kept: "gọi 0903 123 456" → "gọi 090* *** *56". A number as Vietnam writes it, or in
    international form; any of eight digits or more that could be one (not only numbers in use),
    since a miss shows a person's phone and an extra mask hides a house number."""
    if not _DIGITS.search(text):
        return text
    parts, last = [], 0
    ids = [m.span() for m in _UNIT_IDS.finditer(text)]
    for match in PhoneNumberMatcher(text, "VN", leniency=Leniency.POSSIBLE):
        # A unit's id ("declined by hcmc-2025/27424: …") is not a number, nor are seven digits that
        # could be one somewhere else ("2021/760").
        if any(start < match.end and match.start < end for start, end in ids) or (
                sum(c.isdigit() for c in match.raw_string) < 8 and not is_valid_number(match.number)):
            continue
        parts += [text[last:match.start], _masked_in_place(match.raw_string)]
        last = match.end
    return "".join([*parts, text[last:]])


def _masked_in_place(raw: str) -> str:
    places = [i for i, c in enumerate(raw) if c.isdigit()]
    chars = list(raw)
    for i, c in zip(places, mask_phone("".join(raw[i] for i in places)) or "", strict=True):
        chars[i] = c
    return "".join(chars)


def _free_text_masked(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: mask_phones_in(v) if k in FREE_TEXT and isinstance(v, str) else v for k, v in fields.items()}


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def present_row(row: Any, role: str) -> dict[str, Any]:
    """A row as JSON, the phone numbers in its free text masked but for the 1022 centre: a delivery
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
    phone numbers in its free text."""
    if role == "centre":
        return body
    body = _free_text_masked(body)
    if not body.get("citizen"):
        return body
    citizen = body["citizen"]
    return {**body, "citizen": {"full_name": mask_name(citizen.get("full_name")),
                                "phone": mask_phone(citizen.get("phone"))}}
