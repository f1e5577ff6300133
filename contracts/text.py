"""Text and times from outside the mesh, as the mesh stores them.

Intake cleans what citizens send; the same rules hold for what district services and the 1022
centre send on ``unit.responses``. A NUL there was the worst case: the router stored it (as bytes),
and every reader that writes text to PostgreSQL (the notifier's deliveries, oversight's read
models) failed on it and read the same batch again, for good.
"""

import contextlib
import re
import unicodedata
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BeforeValidator, TypeAdapter, ValidationError

# Line breaks and tabs are text; every other control character (Unicode Cc) is noise, or an attack on a log,
# as are the marks that reverse the order text is shown in (a note read right to left in a log or a list).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]")
# Every other way to write a line break is written as one: an old Mac's CR, NEL, and Unicode's separators.
_BREAKS = re.compile("\r\n?|[\x85\u2028\u2029]")
VIETNAM = timezone(timedelta(hours=7))  # no daylight saving since 1975


def nfc(text: str) -> str:
    """Vietnamese arrives composed or decomposed depending on the keyboard; store it composed (NFC).

    Control characters other than line breaks and tabs are dropped, and text that is not text
    (lone UTF-16 surrogates, which JSON can carry) is refused with ValueError.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains characters that are not text") from None
    return unicodedata.normalize("NFC", _CONTROLS.sub("", _BREAKS.sub("\n", text))).strip()


def in_vietnam(moment: datetime) -> datetime:
    """A date or time given without a zone is Vietnam's: a unit that commits to "2026-12-05" means
    that day in Ho Chi Minh City, not in the server's zone or in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VIETNAM)


_AS_PYDANTIC_READS = TypeAdapter(datetime)


def iso_moment(value: Any) -> Any:
    """A time as text in any of ISO 8601's spellings Python reads: pydantic's own parser refuses
    an offset of hours alone ("2026-12-05 10:00:00+07", PostgreSQL's way of writing one) and the
    basic format ("20261205T100000+0700"). Only a time that pydantic reads back as written is
    taken: the events made of it are read by strict readers, and one they refused (an offset with
    seconds, "+07:00:30") held up the router's outbox for every case. Other values are left to pydantic."""
    if isinstance(value, str) and any(c in value for c in "Tt "):  # a time: a date alone is not one
        try:
            moment = datetime.fromisoformat(value)
            _AS_PYDANTIC_READS.validate_strings(moment.isoformat(), strict=True)
            return moment
        except (ValueError, ValidationError):
            pass
    return value


def day_ends(value: Any) -> Any:
    """A committed date given as a day alone ("2026-12-05", "20261205", "2026-W49-6") is the end of
    that day in Vietnam: a unit that promises a result on the 5th has the whole 5th, and the citizen
    is not told it is late on that morning. A time given with it, even midnight, is taken as given.

    A number is refused: pydantic would read 20261205 as seconds since 1970 (a day in August 1970)."""
    if isinstance(value, (int, float)):
        raise ValueError(NOT_A_NUMBER)
    if isinstance(value, str):
        text = value.strip()
        if _A_DAY.fullmatch(text):
            with contextlib.suppress(ValueError):
                value = date.fromisoformat(text)
        if isinstance(value, str):
            if _number(text):
                raise ValueError(NOT_A_NUMBER)
            value = text
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(23, 59, 59), VIETNAM)
    return iso_moment(value)


# A calendar day or a week's day, in ISO 8601's extended or basic format: a week alone ("2026-W49")
# is not a day, and its first would give a unit six days less than it meant.
_A_DAY = re.compile(r"\d{4}-?(\d{2}-?\d{2}|W\d{2}-?\d)")
NOT_A_NUMBER = "a date is ISO 8601 text (2026-12-05, or with its time and zone), not a number"


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


Text = Annotated[str, AfterValidator(nfc)]
VietnamDatetime = Annotated[datetime, AfterValidator(in_vietnam)]
# For what district services send only: a validator before pydantic's own parses the value as
# Python, so a strict reader (oversight's) would refuse every time given as text. The router
# writes ProgressReported's date whole, with its zone, so its readers need no such rule.
CommittedDate = Annotated[datetime, BeforeValidator(day_ends), AfterValidator(in_vietnam)]
# When a district service says it answered: any ISO 8601 spelling (see iso_moment); without a zone,
# Vietnam's, as every time a unit sends is (refused, the whole answer, a result with it, was lost).
UnitMoment = Annotated[datetime, BeforeValidator(iso_moment), AfterValidator(in_vietnam)]


def refuse_nul(raw: bytes) -> None:
    """ValueError if a string in this JSON holds a NUL, which PostgreSQL's text and jsonb cannot store.

    For what was published before the contracts cleaned units' text: its readers dead-letter it
    rather than fail on it for good. A NUL can only be written ``\\u0000``, so nearly every
    message is let through on one scan of its bytes."""
    if b"\\u0000" in raw and _holds_nul(orjson.loads(raw)):
        raise ValueError("a NUL character in a string: PostgreSQL cannot store it")


def _holds_nul(value: Any) -> bool:
    """Whether any string in ``value``, a key or a value at any depth, holds a NUL. A loop, not a
    recursion: JSON nested a thousand deep (orjson reads it) would otherwise raise RecursionError."""
    pending = [value]
    while pending:
        v = pending.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return True
        elif isinstance(v, dict):
            pending.extend(v.keys())
            pending.extend(v.values())
        elif isinstance(v, list):
            pending.extend(v)
    return False
