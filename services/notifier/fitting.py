"""A message's text within what its channel carries: an SMS within a budget of segments, a Zalo
message within the OA API's 2,000 characters. Someone else's free text in it (a unit's answer, a
citizen's description) is cut short to fit, never the fixed words, so what is recorded is what is sent.

An SMS costs what the network counts (GSM 03.38). A text all in the GSM 7-bit default alphabet
travels in septets: 160 in one segment, 153 in each segment of a longer one (the rest carries the
header that joins them); a character of the extension table (``€ [ ] { } | ^ ~ \\`` and form feed)
takes two. One character outside it — most of Vietnamese (ả, ộ, ư, đ…), "…", an emoji — sends the
whole text as UCS-2: 70 UTF-16 code units in one segment, 67 in each of a longer one. Gateways bill
by segment, and brandname routes refuse a message of more than a few.
"""

import re
from collections.abc import Callable

from services.notifier.templates import FREE_TEXT, READ_IN_FULL, render, without_diacritics

GSM_BASIC = (  # the default alphabet, but for its escape to the extension table
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = "\f^{}\\[~]|€"
_NOT_GSM = re.compile(f"[^{re.escape(GSM_BASIC + GSM_EXTENSION)}]")
_EXTENDED = re.compile(f"[{re.escape(GSM_EXTENSION)}]")

# Three dots, not "…": they are GSM 7-bit, so a cut never turns a GSM text into UCS-2 (the route
# may take only ASCII, too); in a UCS-2 text they cost two code units more than "…".
CUT_MARK = "..."
# Longer than any word of Vietnamese or English: a "word" this long is a link or text without spaces.
LONGEST_WORD = 30
# What is left off the end of a cut start before the mark: a dangling comma or space reads badly.
_LOOSE_ENDS = " \t\r\n.,;:-–—"


def segments(text: str) -> int:
    """How many segments ``text`` takes as one SMS. A character of two units (an extension-table
    character in GSM, an emoji in UCS-2) is never split between two segments."""
    if _NOT_GSM.search(text) is None:
        wide, single, each = len(_EXTENDED.findall(text)), 160, 153
        is_wide: Callable[[str], bool] = GSM_EXTENSION.__contains__
    else:
        wide, single, each = len(text.encode("utf-16-le")) // 2 - len(text), 70, 67
        is_wide = _beyond_the_bmp
    size = len(text) + wide
    if size <= single:
        return 1
    if not wide:
        return -(-size // each)
    parts, room = 1, each
    for character in text:
        units = 2 if is_wide(character) else 1
        if units > room:
            parts, room = parts + 1, each
        room -= units
    return parts


def _beyond_the_bmp(character: str) -> bool:
    return ord(character) > 0xFFFF  # two UTF-16 code units


# What the Zalo OA message API takes in one text message.
ZALO_CHARACTERS = 2000


def sms(template: str, language: str, values: dict[str, str], *, budget: int, ascii_only: bool = False,
        read_whole_at: str = "") -> str:
    """The text of an SMS as it is sent: without diacritics for a route that takes only ASCII, and
    within ``budget`` segments (:func:`fitted`)."""
    return fitted(template, language, values, fits=lambda text: segments(text) <= budget, longest=160 * budget,
                  as_sent=without_diacritics if ascii_only else str, read_whole_at=read_whole_at, alone=True)


def zalo(template: str, language: str, values: dict[str, str], *, read_whole_at: str = "") -> str:
    """The text of a Zalo message as it is sent: at most :data:`ZALO_CHARACTERS` (:func:`fitted`)."""
    return fitted(template, language, values, fits=lambda text: len(text) <= ZALO_CHARACTERS,
                  longest=ZALO_CHARACTERS, read_whole_at=read_whole_at)


def fitted(template: str, language: str, values: dict[str, str], *, fits: Callable[[str], bool], longest: int,
           as_sent: Callable[[str], str] = str, read_whole_at: str = "", alone: bool = False) -> str:
    """The text of ``template`` as ``as_sent`` makes it, such that it ``fits``; in the reader's
    language ``alone`` or, for an English reader, in both. A message's free text
    (``templates.FREE_TEXT``) too long for that is cut short (:func:`shorten`), and followed by where
    to read it whole when ``read_whole_at`` names a place; the fixed words are never cut. No start of
    the free text longer than ``longest`` characters fits."""
    free = FREE_TEXT.get(template)
    if free is None:
        return as_sent(render(template, language, alone=alone, **values)[1])

    def text_with(start: str, after: str = "") -> str:
        return as_sent(render(template, language, alone=alone, **{**values, free: start})[1] + after)

    # No longer start can fit: the rest of a free text of any length is never looked at. Stripped
    # once here (character by character, as in the whole text), it is quick to strip again in each try.
    head = as_sent(values[free][:longest + 1])
    if len(values[free]) <= longest and fits(whole := text_with(head)):
        return whole
    words = READ_IN_FULL[language if alone or language == "vi" else "vi+en"]
    after = "\n" + words.format(url=read_whole_at) if read_whole_at else ""
    return shorten(lambda start: text_with(start, after), head, fits, longest)


def shorten(text_with: Callable[[str], str], free_text: str, fits: Callable[[str], bool], longest: int) -> str:
    """For a text too long as it is: ``text_with`` the longest start of ``free_text`` (at most
    ``longest`` characters) with which the whole text ``fits``, cut at a word boundary and ending in
    :data:`CUT_MARK`. The rest of the text is never cut: if even the mark alone does not fit, the
    text with the mark alone is sent.

    ``text_with`` must grow with its argument (it does: it fills it into a template), so the
    longest start that fits is found by halving: a dozen renderings at most.
    """
    def start_fits(n: int) -> bool:
        return fits(text_with(free_text[:n].rstrip(_LOOSE_ENDS) + CUT_MARK))

    fitting, too_long = 0, min(len(free_text), longest) + 1
    while too_long - fitting > 1:
        middle = (fitting + too_long) // 2
        fitting, too_long = (middle, too_long) if start_fits(middle) else (fitting, middle)
    return text_with(_word_start(free_text, fitting).rstrip(_LOOSE_ENDS) + CUT_MARK)


def _word_start(text: str, n: int) -> str:
    """The first ``n`` characters of ``text``, back to the end of the last whole word in them. When
    not even the first word fits, nothing of it: unless it is longer than any word (a link, text
    without spaces), which is cut where the room ends."""
    start = text[:n]
    if n >= len(text) or text[n].isspace() or text[n] in _LOOSE_ENDS:
        return start
    boundary = next((i for i in range(n - 1, 0, -1) if start[i].isspace()), 0)
    if boundary:
        return start[:boundary]
    first_word = text.split(None, 1)[0] if text.strip() else ""
    return start if len(first_word) > LONGEST_WORD else ""
