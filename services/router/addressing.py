"""Address understanding (đọc địa chỉ): which area of HCMC an address is in, or why it cannot be said.

``resolve(address, edition)`` reads the address twice, independently: once with the gazetteer's
whole-word reading (markers, abbreviations, "Ben Thanh Ward", no diacritics, no commas, old district
names), and once with vietnamadminunits' own parser (``parse_address``; ``convert_address`` for
pre-2025 addresses in the 2025 edition). It answers with a place only when the text names one place and the two readings
do not contradict each other. Never a guess: a ward name used in two districts with no district
given, a bare "Phường 1", a ward that is not in the district typed, an old ward that was divided in
2025 — each gives "ambiguous" with the reason, and the case goes to triage at the 1022 centre.

The area is the district (quận/huyện/TP Thủ Đức) in the hcmc-2021 edition and the ward or commune
(phường/xã/đặc khu) in the hcmc-2025 edition; both carry the official GSO code.
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from services.router import gazetteer as gz
from services.router.gazetteer import HCMC, MERGED_2025, Mention, Place

EDITIONS = ("hcmc-2021", "hcmc-2025")


@dataclass(frozen=True)
class Resolution:
    """What the address says: ``status`` is "resolved", "ambiguous", "outside" or "unknown"."""

    status: str
    reason: str
    area_code: str | None = None
    area_name: str | None = None
    ward_code: str | None = None
    ward_name: str | None = None


@dataclass(frozen=True)
class _Old:
    """The pre-July-2025 reading: a district and maybe a ward, or why there is none."""

    district: Place | None = None
    ward: Place | None = None
    ward_mention: Mention | None = None
    problem: str | None = None  # set when the text names more than one place
    used: tuple[Mention, ...] = ()  # every name this reading weighed
    districts: tuple[Mention, ...] = ()  # the names it took as the district


def resolve(address: str, edition: str) -> Resolution:
    """Where ``address`` is, in the units of ``edition`` ("hcmc-2021" or "hcmc-2025")."""
    if edition not in EDITIONS:
        raise ValueError(f"unknown directory edition {edition!r}; known: {', '.join(EDITIONS)}")
    text = " ".join(unicodedata.normalize("NFC", address or "").split())
    return _resolve(text, edition)


@lru_cache(maxsize=65536)
def _resolve(text: str, edition: str) -> Resolution:
    if not text:
        return Resolution("unknown", "the address is empty")
    mentions = gz.scan(text)
    context = _province(mentions, edition)
    if isinstance(context, Resolution):
        return context
    if edition == "hcmc-2021":
        return _resolve_2021(text, mentions, context)
    return _resolve_2025(text, mentions, context)


def _province(ms: tuple[Mention, ...], edition: str) -> frozenset[str] | Resolution:
    """The old provinces the address may be in; a province name with place names after it is a
    street (Xa lộ Hà Nội, Hậu Giang), so only the last name counts."""
    inside = {HCMC} if edition == "hcmc-2021" else {HCMC, *MERGED_2025}
    named = [m for m in ms if m.of("province")]
    if not named or any(n.start >= named[-1].end and not n.street_like and not n.of("province")
                        for n in ms):
        # No province written: the hotline is HCMC's, but "TP Vũng Tàu" still reads as outside in 2021.
        return frozenset({HCMC, *MERGED_2025})
    last = named[-1]
    codes = {p.code for p in last.of("province")}
    if codes & inside:
        return frozenset(inside) if HCMC in codes else frozenset(codes & inside)
    province = last.of("province")[0].name
    local = [p for p, marked in last.places if p.level != "province" and not marked
             and p.province in inside and (p.level != "ward2025" or edition == "hcmc-2025")]
    if local:
        return Resolution("ambiguous", f"'{last.text}' is {province} or {local[0].name} in HCMC")
    return Resolution("outside", f"the address is in {province}, outside Ho Chi Minh City")


def _resolve_2021(text: str, ms: tuple[Mention, ...], provinces: frozenset[str]) -> Resolution:
    old = _read_old(ms, provinces, home=provinces & {HCMC} or provinces)
    if old.problem:
        return Resolution("ambiguous", old.problem)
    if old.district is None:
        return _from_new_ward(ms) or _unknown(text, "LEGACY", ms)
    district, ward = old.district, old.ward
    if district.province != HCMC:
        return Resolution("outside", f"{district.name} was not part of Ho Chi Minh City before 2025")
    lib = _library(text, "LEGACY")
    if lib.province_code == HCMC and lib.district_code and lib.district_code != district.code:
        return Resolution("ambiguous", f"the address reads as {district.name} but vietnamadminunits "
                                       f"reads it as {lib.district}; not deciding between them")
    said = f"{district.name}"
    if ward is not None and not _named_itself(old.ward_mention, ward):
        said += f" ('{old.ward_mention.text}' is listed under {ward.name} since the 2025 mergers)"
        ward = None
    elif ward is not None and lib.ward_code and lib.ward_code != ward.code:
        said += f" (ward left open: '{old.ward_mention.text}' reads to vietnamadminunits as {lib.ward})"
        ward = None
    elif ward is not None:
        said = f"{ward.name}, {district.name}"
    return Resolution("resolved", f"read as {said}", district.code, district.name,
                      ward.code if ward else None, ward.name if ward else None)


def _resolve_2025(text: str, ms: tuple[Mention, ...], provinces: frozenset[str]) -> Resolution:
    home = frozenset({HCMC}) if HCMC in provinces else provinces
    old = _read_old(ms, provinces, home)
    new, named = _read_new(ms)
    became = set() if old.problem else _became(old)
    # Today's ward counts only where the old reading leaves room for it: not a bare "Tân Phú" the
    # old reading took as the district of a ward it found, nor a ward made from other districts
    # than the one typed ("Tân Phú, Quận 7" is the old Phường Tân Phú of Quận 7). Typed: a district
    # the old reading only inferred from a namesake ward elsewhere ("Phường Tân Bình, TP.HCM" read as
    # old Dĩ An's) does not set today's Phường Tân Bình aside for a ward 30 km away.
    if new is not None and (named in old.districts and old.ward is not None or old.districts
                            and old.district is not None
                            and old.district.key not in gz.conversion()[1].get(new.key, ())):
        new = None
    if new is not None:
        apart = named not in old.used and not old.problem
        if became == {new.key} or (apart and (not became or new.key in became)):
            lib = _library(_for_library(text, named), "FROM_2025")
            if lib.province_code == HCMC and lib.ward_code and lib.ward_code != new.code:
                return Resolution("ambiguous", f"'{named.text}' reads as {new.name} but "
                                               f"vietnamadminunits reads {lib.ward}")
            return _resolved_2025(new, f"read as {new.name}, a ward of today's HCMC")
        olds = old.problem or ", ".join(sorted(gz.places("ward2025")[k].name for k in became))
        return Resolution("ambiguous", f"'{named.text}' could be today's {new.name}, but read the "
                                       f"pre-2025 way the address points to {olds}")
    if old.problem:
        return Resolution("ambiguous", old.problem)
    if old.district is None:
        return _unknown(text, "FROM_2025", ms)
    was = f"{old.ward.name}, {old.district.name}" if old.ward else old.district.name
    if len(became) != 1:
        names = ", ".join(sorted(gz.places("ward2025")[k].name for k in became))
        return Resolution("ambiguous", f"{was} (before July 2025) is now split between {names}; "
                                       "the address does not say which")
    new = gz.places("ward2025")[next(iter(became))]
    if old.ward is not None:
        from vietnamadminunits import convert_address

        # Name, district and province only: with a street the library geocodes over the network.
        lib = convert_address(f"{old.ward.name}, {old.district.name}, {_province_name(old.ward)}")
        if lib.ward_code != new.code:
            return Resolution("ambiguous", f"{was} converts to {new.name} by the 2025 table but "
                                           f"vietnamadminunits converts it to {lib.ward}")
    return _resolved_2025(new, f"read as {was} (before July 2025), now {new.name}")


def _read_old(ms: tuple[Mention, ...], provinces: frozenset[str], home: frozenset[str]) -> _Old:
    """District and ward as written before July 2025; markers (Q., P., Huyện…) outrank bare names."""
    marked_d = [m for m in ms if m.of("district", True, provinces)]
    bare_d = [m for m in ms if not m.street_like and m.of("district", False, provinces)]
    # Thị trấn Nhà Bè lies in Huyện Nhà Bè: a name whose ward readings all sit in its own
    # district names that district either way; "Tân Phú" (a district, and wards of Quận 7 and
    # Thủ Đức) does not.
    sure_d = [m for m in bare_d if not _elsewhere(m, provinces)]
    dual = [m for m in bare_d if _elsewhere(m, provinces)]
    marked_w = [m for m in ms if m.of("ward", True, provinces)]
    bare_w = [m for m in ms if not m.street_like and m.of("ward", False, provinces)]
    used = tuple(dict.fromkeys(marked_d + bare_d + marked_w + bare_w))
    districts = gz.places("district")

    def problem(why: str, district: Place | None = None) -> _Old:
        return _Old(district, problem=why, used=used)

    codes = {p.code for m in marked_d for p in m.of("district", True, provinces)}
    bare_codes = {p.code for m in sure_d for p in m.of("district", False, provinces)}
    if not codes or bare_codes - codes:
        codes |= bare_codes
    if len(codes) > 1:
        return problem("the address names more than one district: "
                       + ", ".join(sorted(districts[c].name for c in codes)))
    district = districts[codes.pop()] if codes else None
    took = tuple(marked_d or sure_d) if district else ()
    bare_w = [m for m in bare_w if m not in took]
    if marked_w:
        mention, wards = marked_w[-1], marked_w[-1].of("ward", True, provinces)
    elif district is not None:
        pick = [m for m in bare_w if any(w.district == district.code for w in m.of("ward", False, provinces))]
        mention, wards = (pick[-1], pick[-1].of("ward", False, provinces)) if pick else (None, ())
    else:
        pick = [m for m in bare_w if m not in dual] or bare_w
        mention, wards = (pick[-1], pick[-1].of("ward", False, provinces)) if pick else (None, ())
        if mention is not None and mention in dual:
            return problem(f"'{mention.text}' is both a district and a ward name; "
                           "the address does not say which")
    if district is not None:
        inside = tuple(w for w in wards if w.district == district.code)
        if wards and not inside and mention in marked_w:
            if _merged_numbered_ward(mention, district):
                # The district is written out and had this numbered ward until the January 2025
                # mergers: the district is sure, only the ward is left open.
                return _Old(district, None, None, used=used, districts=took)
            return problem(f"'{mention.text}' is not a ward of {district.name}")
        wards = inside
    elif wards:
        wards = tuple(w for w in wards if w.province in home) or wards
        if dual:
            dual_codes = {p.code for m in dual for p in m.of("district", False, provinces)}
            wards = tuple(w for w in wards if w.district in dual_codes) or wards
            took = tuple(m for m in dual if dual_codes & {w.district for w in wards})
        places = sorted({districts[w.district].name for w in wards})
        if len(places) > 1:
            return problem(f"'{mention.text}' is a ward name in {len(places)} districts "
                           f"({', '.join(places)}) and no district is given")
        district = districts[wards[0].district]
    if len(wards) > 1:
        return problem(f"'{mention.text}' names more than one ward of {district.name}", district)
    return _Old(district, wards[0] if wards else None, mention if wards else None,
                used=used, districts=took)


def _merged_numbered_ward(mention: Mention, district: Place) -> bool:
    """Whether ``mention`` is "Phường N" for a district whose wards were numbered 1 to at least N:
    such a ward existed and was merged in January 2025, which the library's ward list no longer shows."""
    number = re.search(r"(\d+)\s*$", mention.text)
    if number is None:
        return False
    numbered = [int(m.group(1)) for w in gz.places("ward").values() if w.district == district.code
                if (m := re.fullmatch(r"Phường (\d+)", w.name))]
    return bool(numbered) and 1 <= int(number.group(1)) <= max(numbered)


def _elsewhere(m: Mention, provinces: frozenset[str]) -> bool:
    own = {p.code for p in m.of("district", False, provinces)}
    return any(w.district not in own for w in m.of("ward", None, provinces))


def _read_new(ms: tuple[Mention, ...]) -> tuple[Place | None, Mention | None]:
    """Today's ward as written since July 2025: marked (Phường Sài Gòn) first, then a bare name
    that is not also a city or province name (bare "Sài Gòn" is the city)."""
    marked = [m for m in ms if m.of("ward2025", True)]
    bare = [m for m in ms if not m.street_like and m.of("ward2025", False) and not m.of("province")]
    for group in (marked, bare):
        if group:
            return group[-1].of("ward2025")[0], group[-1]
    return None, None


def _became(old: _Old) -> set[str]:
    """Today's wards (library keys) that the old ward, or the whole old district, became."""
    to_new, _ = gz.conversion()
    if old.ward is not None:
        return set(to_new.get(old.ward.key, ()))
    if old.district is None:
        return set()
    prefix = old.district.key + "_"
    return {n for k, news in to_new.items() if k.startswith(prefix) for n in news}


def _from_new_ward(ms: tuple[Mention, ...]) -> Resolution | None:
    """hcmc-2021 given today's ward name: fine when everything it was made from lay in one district."""
    new, mention = _read_new(ms)
    if new is None or mention is None or not mention.of("ward2025", True):
        return None
    _, sources = gz.conversion()
    districts = {gz.places("district").get(k) for k in sources.get(new.key, ())}
    if len(districts) != 1 or None in districts:
        names = ", ".join(sorted(d.name for d in districts if d))
        return Resolution("ambiguous", f"today's {new.name} was made from parts of {names}")
    (district,) = districts
    if district.province != HCMC:
        return Resolution("outside", f"{new.name} was in {district.name}, outside HCMC before 2025")
    return Resolution("resolved", f"today's {new.name} lies wholly in {district.name}",
                      district.code, district.name)


def _unknown(text: str, mode: str, ms: tuple[Mention, ...]) -> Resolution:
    """Nothing read as an HCMC place: say "outside" only when the library is sure of another province,
    and the text names a unit there: "88 Hai Bà Trưng" is a street of HCMC before it is Hà Nội's
    Quận Hai Bà Trưng."""
    lib = _library(text, mode)
    inside = (HCMC,) if mode == "LEGACY" else (HCMC, *MERGED_2025)
    if lib.province_code and lib.province_code not in inside and not ms and gz.names_a_unit(text):
        return Resolution("outside", f"vietnamadminunits places it in {lib.province}, outside HCMC")
    return Resolution("unknown", "no ward, commune or district of Ho Chi Minh City could be read "
                                 "in the address")


def _for_library(text: str, ward: Mention) -> str:
    """The text as the library's 2025 parser should see it: street and ward, then the city. What
    follows the ward is old district or province names it does not know ("Cần Giờ" in "Xã Thạnh
    An, Cần Giờ" reads to it as Xã Cần Giờ; "Vũng Tàu" in the old province name as a ward)."""
    return " ".join(gz.words(text)[: ward.end]).replace(" ,", ",") + ", Thành phố Hồ Chí Minh"


def _resolved_2025(ward: Place, reason: str) -> Resolution:
    return Resolution("resolved", reason, ward.code, ward.name, ward.code, ward.name)


def _named_itself(mention: Mention | None, ward: Place) -> bool:
    """False when the text named a ward the library files under another (P.12 -> Phường 11)."""
    own = "".join(ch for ch in gz.fold(gz.short_name(ward.name)) if ch.isalnum())
    typed = "".join(ch for ch in gz.fold(mention.text) if ch.isalnum()) if mention else ""
    typed = next((typed.removesuffix(s) for s in gz.SUFFIXES if typed.endswith(s)), typed)  # "Tan Dinh Ward"
    if own.isdigit():
        number = re.search(r"\d+$", typed)
        return number is not None and int(number.group()) == int(own)
    return typed.endswith(own)


def _province_name(place: Place) -> str:
    return gz.places("province")[place.province].name


@lru_cache(maxsize=65536)
def _library(text: str, mode: str):
    from vietnamadminunits import parse_address

    return parse_address(text, mode=mode, keep_street=False, level=3 if mode == "LEGACY" else 2)
