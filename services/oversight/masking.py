"""Phone numbers hidden: the citizen's own, and those written into free text (a description's "gọi
chị Lan 0903 123 456"). Used by the API for HĐND and MTTQ, and by the audit trail's text."""

import functools
import re

from phonenumbers import Leniency, PhoneNumberMatcher, is_valid_number

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
