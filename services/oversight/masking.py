"""Contact details hidden: the citizen's own phone, and the phone numbers and e-mail addresses
written into free text (a description's "gọi chị Lan 0903 123 456", a unit's answer to
"hoa.nguyen@gmail.com"). Used by the API for HĐND, MTTQ and the public, and by the audit trail's text.

A phone shows at most its last three digits, however it is written: the citizen's "+84903123456" and
the same number typed "0903 123 456" in a description show the same digits, and together no more
(:data:`CONTACTS`). The audit trail keeps each record in the form it was made in (chain.py): records
of the first masked form (:data:`PHONES_FIRST_AND_LAST`) showed a number's first digits too, which
beside the citizen's own phone, masked as the API masked it, left four digits to guess.
"""

import functools
import re
from collections.abc import Callable

from phonenumbers import Leniency, NumberParseException, PhoneNumberMatcher, is_valid_number, parse

# At least this many digits of a phone are hidden, however short the number: 10^5 to guess.
HIDDEN_DIGITS = 5
# The most digits of a phone shown: its last ones, enough to tell two apart.
SHOWN_DIGITS = 3
# The audit trail's masked forms (audit_form, chain.py): which contacts in free text are hidden, and how.
PHONES_FIRST_AND_LAST = 1  # phone numbers, their first and last three digits shown (until 2026-12-06)
CONTACTS = 2  # phone numbers, their last three digits shown; e-mail addresses, their first character and domain


def mask_phone(phone: str | None) -> str | None:
    """'+84903123456' → '+********456'; a short number shows fewer digits: '+6837012' → '+*****12'."""
    return _last_digits_shown(phone) if phone else phone


def _digits_starred(raw: str, span: Callable[[int], tuple[int, int]]) -> str:
    """``raw`` with the digits ``span(number of digits)`` names (first, past the last) starred, the
    rest of it as written."""
    places = [i for i, c in enumerate(raw) if c.isdigit()]
    start, end = span(len(places))
    chars = list(raw)
    for i in places[start:end]:
        chars[i] = "*"
    return "".join(chars)


def _last_digits_shown(raw: str) -> str:
    """Every digit starred but the last three, and never so many shown that fewer than five are
    hidden (all of them, on a number shorter than that)."""
    return _digits_starred(raw, lambda n: (0, n - max(0, min(SHOWN_DIGITS, n - HIDDEN_DIGITS))))


def _first_and_last_shown(raw: str) -> str:
    """The first masked form's: at most the first three and the last three digits shown, never so
    many that fewer than five are hidden."""
    def span(n: int) -> tuple[int, int]:
        hidden = min(n, max(HIDDEN_DIGITS, n - 6))
        first = n - hidden - min(3, (n - hidden) // 2)
        return first, first + hidden
    return _digits_starred(raw, span)


# Seven digits or more, a few marks at most between two (spaces, dots, dashes of any kind, brackets,
# as phonenumbers reads them): only such text is looked through for phone numbers.
_DIGITS = re.compile(r"\d(?:[^\w]{0,4}\d){6,}")
# The directory's ids of units and handlers: edition/code[/handler] ("hcmc-2025/27424/h01"). The
# first form took any letters, a dash and four digits for an edition: "sdt-0903/123456" too.
_UNIT_IDS = re.compile(r"\b[a-z]+-\d{4}/[0-9a-z-]+(?:/[0-9a-z-]+)*")
_EDITION_IDS = re.compile(r"\b[a-z]+-(?:19|20)\d{2}/\d{3,5}(?!\d)(?:/[0-9a-z-]+)*")  # a GSO code: 3 or 5 digits
# Groups of digits split by commas or underscores, which phonenumbers does not read as a number's
# marks ("0903,123,456"): masked when, run together, they are a valid number.
_SPLIT_DIGITS = re.compile(r"(?<![\d*])\d{2,4}(?:[,_]\d{2,5}){2,4}(?![\d*])")
# An e-mail address as people write one: its local part is starred but for the first character. The
# local part is taken whole (not from within a longer run) and at most 64 long, as RFC 5321 allows:
# unbounded, 5,000 characters before an "@" took the pattern a quarter of a second to try.
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])([\w.+-]{0,63})(@[\w-]+(?:\.[\w-]+)+)")
# The text a citizen or a unit writes, in a case row and in the events (a unit's decline note is in
# the case's triage reason), and a gateway's error, which can name the number a message went to.
FREE_TEXT = ("description", "address", "corrected_address", "note", "answer", "reason", "triage_reason", "error")


def maskable(text: str) -> set[int]:
    """Where in ``text`` a mask may put a star: its digits, and the local parts of its e-mail addresses."""
    places = {i for i, c in enumerate(text) if c.isdigit()}
    for m in _EMAIL.finditer(text):
        places.update(range(m.start(2), m.end(2)))
    return places


@functools.lru_cache(maxsize=4096)
def mask_contacts_in(text: str, form: int = CONTACTS) -> str:
    """Free text with the contacts in it masked, its spacing kept: "gọi 0903 123 456" → "gọi **** ***
    456", "hoa.nguyen@gmail.com" → "h*********@gmail.com" (the audit trail's older ``form`` as it was).
    A number as Vietnam writes it, or in international form; any of eight digits or more that could
    be one (not only numbers in use), since a miss shows a person's phone and an extra mask hides a
    house number."""
    if form == CONTACTS and "@" in text:
        text = _EMAIL.sub(lambda m: m[1] + "*" * len(m[2]) + m[3], text)
    if form == CONTACTS and ("," in text or "_" in text):
        text = _SPLIT_DIGITS.sub(_masked_if_a_number, text)
    if not _DIGITS.search(text):
        return text
    masked = _last_digits_shown if form == CONTACTS else _first_and_last_shown
    parts, last = [], 0
    ids = [m.span() for m in (_EDITION_IDS if form == CONTACTS else _UNIT_IDS).finditer(text)]
    for match in PhoneNumberMatcher(text, "VN", leniency=Leniency.POSSIBLE):
        # A unit's id ("declined by hcmc-2025/27424: …") is not a number, nor are seven digits that
        # could be one somewhere else ("2021/760").
        if any(start < match.end and match.start < end for start, end in ids) or (
                sum(c.isdigit() for c in match.raw_string) < 8 and not is_valid_number(match.number)):
            continue
        parts += [text[last:match.start], masked(match.raw_string)]
        last = match.end
    return "".join([*parts, text[last:]])


def _masked_if_a_number(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match[0])
    try:
        number = parse(digits, "VN")
    except NumberParseException:
        return match[0]
    return _last_digits_shown(match[0]) if is_valid_number(number) else match[0]
