"""The place names the router can read in an address (địa danh), and the scanner that finds them.

Built lazily, once per process, from vietnamadminunits' own data (its SQLite dataset and its 2025
conversion table), so that names and GSO codes come from one source. It holds HCMC as it was before
1 July 2025 (districts and wards, Quận 2/Quận 9/old Thủ Đức folded into Thủ Đức City), the two
provinces merged into HCMC in 2025 (Bình Dương, Bà Rịa–Vũng Tàu), today's 168 wards and communes, and
every other province's name so that an address elsewhere is recognised as outside the city.

The scanner works on whole words: "P.12" is the words "p 12", and the key "p12" can only match
where those words stand, never inside "p125" or a street name, which is where substring matching
(the library's way) goes wrong.
"""

import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from unidecode import unidecode  # a dependency of vietnamadminunits: its keys are made with it

HCMC = "79"
MERGED_2025 = ("74", "77")  # Bình Dương, Bà Rịa–Vũng Tàu: part of HCMC since 1 July 2025
_MAX_WORDS = 7  # "tinh ba ria vung tau" and "thanh pho ho chi minh" are the longest names read
_BOUNDARY = ","
# Words that, standing just before a bare name, show it is part of a street, not a ward.
_STREET_WORDS = {"duong", "d", "dg", "hem", "ngo", "ngach", "kiet", "hxh", "so", "cau", "cho",
                 "vien", "truong", "quoc", "lo", "kdc", "cc", "toa", "nha"}
_ASIDES = {"cu", "moi", "nay", "la", "truoc", "day"}  # "(Gò Vấp cũ)", "nay là …": not part of a name
_DISTRICT_MARKERS = ("quan", "q", "district", "dist", "huyen", "h", "thanhpho", "tp", "thixa", "tx")
# Ward markers by type: "Xã Củ Chi" is today's commune, never the old Thị trấn Củ Chi.
_WARD_MARKERS = {"Phường": ("phuong", "p", "f", "ward"), "Xã": ("xa", "x"), "Thị trấn": ("thitran", "tt"),
                 "Đặc khu": ("dackhu",)}
# The English words written after a name, as maps and apps write addresses: "Ben Thanh Ward",
# "Binh Thanh District", "Thu Duc City", "Binh Chanh Commune", "Con Dao Special Zone". "Cu Chi
# Town" is the district's: a thị trấn is named after its district, and read as the thị trấn the
# district's place in "Xã Long Thới, Nha Be Town" took the commune's.
_DISTRICT_SUFFIXES = ("district", "dist", "city", "town")
_WARD_SUFFIXES = {"Phường": ("ward",), "Xã": ("commune",), "Thị trấn": (), "Đặc khu": ("specialzone", "zone")}
# Only a quận is numbered: "H. 12" is an alley (hẻm) before it is a Huyện 12, which there is not.
_NUMBERED_DISTRICT_MARKERS = ("quan", "q", "district", "dist")
# The words for a unit, for names_a_unit: not "h", "f" or "x", also an alley (hẻm), a lot (Lô F) or a
# house number's letter; and written with accents, only the unit's own ("quán" is a shop, not a quận).
_MARKER_WORDS = frozenset({*_DISTRICT_MARKERS, *(m for ms in _WARD_MARKERS.values() for m in ms),
                           *_DISTRICT_SUFFIXES, *(m for ms in _WARD_SUFFIXES.values() for m in ms),
                           "tinh", "province"}) - {"h", "f", "x"}
_ACCENTED_MARKERS = frozenset({"quận", "phường", "xã", "huyện", "tỉnh", "thành", "phố", "thị", "trấn", "đặc"})
SUFFIXES = tuple(sorted({*_DISTRICT_SUFFIXES, *(s for ss in _WARD_SUFFIXES.values() for s in ss)}, key=len,
                        reverse=True))
_CITY_KEYS = ("thanhphohochiminh", "tphochiminh", "thanhphohcm", "tphcm", "hochiminh", "hcm",
              "hcmc", "hochiminhcity", "hcmcity", "saigon", "tpsaigon")
_TYPE_WORDS = ("phuong", "xa", "thitran", "quan", "huyen", "thanhpho", "thixa", "dackhu", "ward",
               "district", "tinh")


@dataclass(frozen=True)
class Place:
    """One administrative unit: ``level`` is "province", "district", "ward" (before July 2025)
    or "ward2025"; ``province`` is the (pre-2025) province code it belongs to."""

    level: str
    code: str
    name: str
    province: str
    district: str | None = None
    key: str | None = None  # the library's key path, e.g. "thanhphohochiminh_quan1_phuongbennghe"


@dataclass(frozen=True)
class Mention:
    """A run of words in the address that names places; ``marked`` per place says whether a
    marker (Phường, P., Q., Huyện, TP…) stood with the name; a bare name is weaker evidence."""

    start: int
    end: int
    text: str
    places: tuple[tuple[Place, bool], ...]
    street_like: bool

    def of(self, level: str, marked: bool | None = None, provinces=None) -> tuple[Place, ...]:
        return tuple(p for p, m in self.places if p.level == level
                     and (marked is None or m == marked)
                     and (provinces is None or p.province in provinces))


def fold(text: str) -> str:
    """Lower case without diacritics, as the library's keys are."""
    return unidecode(text).lower()


def words(address: str) -> list[str]:
    """The address as lower-case words (diacritics kept) and commas."""
    text = unicodedata.normalize("NFC", address).lower()
    return re.findall(r"\w+|[,;|\n]", text)


def names_a_unit(address: str) -> bool:
    """Whether the address has a word for an administrative unit in it (Quận, P., Huyện, Ward, Tỉnh…),
    as a street alone ("88 Hai Bà Trưng") has not."""
    keys = [k if k == w or w in _ACCENTED_MARKERS else "" for w in words(address) for k in (fold(w),)]
    return any(k in _MARKER_WORDS for k in keys) or any(a + b in _MARKER_WORDS for a, b in zip(keys, keys[1:]))


def scan(address: str) -> tuple[Mention, ...]:
    """Every place name in the address, left to right, longest name first at each word."""
    index = _index()
    raw = [_BOUNDARY if w in ",;|\n" else w for w in words(address)]
    keys = [w if w == _BOUNDARY else fold(w) for w in raw]
    spans: list[tuple[int, int, tuple]] = []
    i = 0
    while i < len(keys):
        if keys[i] == _BOUNDARY:
            i += 1
            continue
        limit = next((j for j in range(i, min(len(keys), i + _MAX_WORDS)) if keys[j] == _BOUNDARY),
                     min(len(keys), i + _MAX_WORDS))
        for end in range(limit, i, -1):
            entries = index.get("".join(keys[i:end]))
            if entries:
                spans.append((i, end, entries))
                i = end
                break
        else:
            i += 1
    named = {k for start, end, _ in spans for k in range(start, end)}
    starts = {start for start, _, _ in spans}
    return tuple(Mention(start, end, " ".join(raw[start:end]),
                         _by_accents(entries, " ".join(raw[start:end])),
                         _street_like(keys, start, end, named, starts))
                 for start, end, entries in spans)


def _street_like(keys: list[str], start: int, end: int, named: set[int], starts: set[int]) -> bool:
    """A bare name after a house number or "đường", or running on into more plain words
    (Phú Mỹ Hưng is not Phường Phú Mỹ), is part of a street or a place, not a ward."""
    before = keys[start - 1] if start and start - 1 not in named else _BOUNDARY
    if before in _STREET_WORDS or any(c.isdigit() for c in before):
        return True
    while end < len(keys) and keys[end] in _ASIDES:
        end += 1
    return end < len(keys) and keys[end] != _BOUNDARY and end not in starts


def _by_accents(entries, text: str):
    """Tân Quy (Quận 7) and Tân Quý (Tân Phú) differ only in accents: when the text has accents
    and they match some of the names of one level exactly, keep only those of that level."""
    if len(entries) < 2 or fold(text) == text:
        return tuple(entries)
    bare = text.replace(" ", "")
    kept = []
    for level in dict.fromkeys(p.level for p, _ in entries):
        same = [(p, m) for p, m in entries if p.level == level]
        exact = [(p, m) for p, m in same if bare.endswith(short_name(p.name).lower().replace(" ", ""))]
        kept += exact if len(same) > 1 and exact else same
    return tuple(kept)


def short_name(name: str) -> str:
    for word in ("Thành phố", "Thị trấn", "Thị xã", "Đặc khu", "Phường", "Quận", "Huyện", "Xã", "Tỉnh"):
        if name.startswith(word + " "):
            return name[len(word) + 1:]
    return name


@cache
def _index() -> dict[str, tuple[tuple[Place, bool], ...]]:
    """key (folded, no spaces) -> the places it names, each with whether the key carries a marker."""
    from vietnamadminunits.database.main import query

    index: dict[str, dict[Place, bool]] = defaultdict(dict)

    def add(key: str, place: Place, marked: bool) -> None:
        # A place reachable both bare and marked by one key keeps the weaker (bare) reading.
        index[key][place] = index[key].get(place, marked) and marked

    for row in query("SELECT * FROM admin_units_legacy"):
        prov = row["provinceCode"]
        province = Place("province", prov, row["province"], prov)
        for k in json.loads(row["provinceKeywords"]):
            if len(k) > 3 or prov == HCMC:
                add(k, province, marked=k.startswith(("tinh", "thanhpho")))
        if prov not in (HCMC, *MERGED_2025):
            continue
        district = Place("district", row["districtCode"], row["district"], prov,
                         key=f"{row['provinceKey']}_{row['districtKey']}")
        _add_names(add, district, json.loads(row["districtKeywords"]), fold(row["districtShort"]),
                   _DISTRICT_MARKERS, _DISTRICT_SUFFIXES)
        if row["wardCode"]:
            ward = Place("ward", row["wardCode"], row["ward"], prov, row["districtCode"],
                         f"{row['provinceKey']}_{row['districtKey']}_{row['wardKey']}")
            _add_names(add, ward, json.loads(row["wardKeywords"]), fold(row["wardShort"]),
                       _WARD_MARKERS[row["wardType"]], _WARD_SUFFIXES[row["wardType"]])
    thu_duc = next(p for p, _ in index["thanhphothuduc"].items() if p.level == "district")
    for k in ("quanthuduc", "qthuduc", "tpthuduc"):  # the old Quận Thủ Đức, folded into the city
        add(k, thu_duc, marked=True)
    city = next(p for p in index["hcm"] if p.level == "province")
    for k in _CITY_KEYS:
        add(k, city, marked=k.startswith(("tp", "thanhpho")))
    brvt = next(p for p in index["tinhbariavungtau"] if p.level == "province")
    for k in ("brvt", "tinhbrvt"):
        add(k, brvt, marked=True)
    for row in query("SELECT * FROM admin_units"):
        if row["provinceCode"] != HCMC:
            for k in json.loads(row["provinceKeywords"]):
                if len(k) > 3 and not any(p.level == "province" for p in index.get(k, {})):
                    add(k, Place("province", "new-" + row["provinceCode"], row["province"],
                                 "new-" + row["provinceCode"]), marked=k.startswith("tinh"))
            continue
        ward = Place("ward2025", row["wardCode"], row["ward"], HCMC, key=row["wardKey"])
        _add_names(add, ward, [], fold(row["wardShort"]).replace(" ", ""), _WARD_MARKERS[row["wardType"]],
                   _WARD_SUFFIXES[row["wardType"]])
    return {k: tuple(sorted(v.items(), key=lambda e: (e[0].level, e[0].code))) for k, v in index.items()}


def _add_names(add, place: Place, keywords: list[str], short: str, markers: tuple[str, ...],
               suffixes: tuple[str, ...]) -> None:
    """The library's keywords plus the abbreviations people type (P. Tân Định, Q. Gò Vấp, H. Củ Chi),
    and the name with an English word after it (Tan Dinh Ward); a number takes its marker first."""
    short = re.sub(r"[^a-z0-9]", "", short)
    short = re.sub(r"^(phuong|quan)(?=\d+$)", "", short)  # "Phường 12" is numbered, not named
    bare = {short} | {k for k in keywords if not _has_type_word(k, keywords)}
    for k in bare:
        if k.isdigit():  # "12" alone is a house number, never a ward
            bare_number = k.lstrip("0") or "0"
            for m in markers if place.level != "district" else _NUMBERED_DISTRICT_MARKERS:
                add(m + bare_number, place, True)
                add(m + k, place, True)
            continue
        add(k, place, False)
        for m in markers:
            add(m + k, place, True)
        for m in suffixes:
            add(k + m, place, True)
    for k in keywords:
        if k not in bare:
            add(k, place, True)


def _has_type_word(key: str, keywords: list[str]) -> bool:
    """True for "phuong12" or "quanbinhthanh": a type word followed by another of the unit's names."""
    for t in _TYPE_WORDS:
        rest = key[len(t):]
        if key.startswith(t) and rest and (rest.isdigit() or rest in keywords):
            return True
    return bool(re.fullmatch(r"(p|f|q)\d+", key))


@cache
def conversion() -> tuple[dict[str, tuple[str, ...]], dict[str, frozenset[str]]]:
    """From the library's 2025 table: old ward key -> new ward keys it went to (one, or several
    when the old ward was divided), and new ward key -> the old district keys it was made from."""
    import vietnamadminunits

    path = Path(vietnamadminunits.__file__).parent / "data" / "converter_2025.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    to_new: dict[str, list[str]] = defaultdict(list)
    for new_key, olds in data["DICT_PROVINCE_WARD_NO_DIVIDED"]["thanhphohochiminh"].items():
        for old in olds:
            to_new[old].append(new_key)
    for old, news in data["DICT_PROVINCE_WARD_DIVIDED"].get("thanhphohochiminh", {}).items():
        to_new[old].extend(w["newWardKey"] for w in news)
    sources: dict[str, set[str]] = defaultdict(set)
    for old, news in to_new.items():
        for new_key in news:
            sources[new_key].add(old.rsplit("_", 1)[0])
    return ({k: tuple(sorted(set(v))) for k, v in to_new.items()},
            {k: frozenset(v) for k, v in sources.items()})


@cache
def places(level: str) -> dict[str, Place]:
    """Every place of one level by code, or (for "ward2025") also by the library's ward key."""
    out: dict[str, Place] = {}
    for entries in _index().values():
        for p, _ in entries:
            if p.level == level:
                out[p.code] = p
                if p.key:
                    out[p.key] = p
    return out
