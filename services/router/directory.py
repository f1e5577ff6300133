"""The directory (danh bạ đơn vị): the units that receive cases and their handlers (đầu mối xử lý).

Two editions ship as versioned data under ``data/`` (built by ``data/build_directories.py``):
``hcmc-2021`` — Thủ Đức City and the 21 districts, the Department of Labour, Invalids and Social
Affairs and the 1022 centre — and ``hcmc-2025`` — the 168 wards and communes of today's HCMC and
the city departments. Units carry their official GSO code; every routing decision records the
directory version it used.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

EDITIONS = ("hcmc-2021", "hcmc-2025")
KINDS = ("district", "ward", "department", "centre")
CHANNELS = ("webhook", "email", "zalo")
# Shift hours in Asia/Ho_Chi_Minh time, [start, end); the night shift runs past midnight.
SHIFTS = {"day": (6, 18), "night": (18, 6), "24h": (0, 24)}
_DATA = Path(__file__).parent / "data"


class DirectoryError(ValueError):
    """The directory asked for does not exist or its data is not valid."""


@dataclass(frozen=True)
class Handler:
    """A handling focal point (đầu mối xử lý): skills are category codes; shift is a key of SHIFTS."""

    id: str
    name: str
    skills: frozenset[str]
    shift: str
    # The handler's own address on each channel their unit uses, as (channel, address) pairs.
    contacts: tuple[tuple[str, str], ...] = ()

    def on_duty(self, hour: int) -> bool:
        """Whether the shift covers ``hour`` (0–23, HCMC local time)."""
        start, end = SHIFTS[self.shift]
        return start <= hour < end if start < end else hour >= start or hour < end


@dataclass(frozen=True)
class Unit:
    """A receiving unit (đơn vị): a People's Committee (district or ward), a department, or the centre."""

    id: str
    name: str
    kind: str
    admin_code: str
    parent_code: str | None
    handlers: tuple[Handler, ...]
    notify: tuple[str, ...]  # the channels its handlers hear of cases on
    # The unit's own mailbox, Zalo account or district-service URL, as (channel, address) pairs.
    contacts: tuple[tuple[str, str], ...] = ()

    def notify_for(self, handler: Handler) -> tuple[dict[str, str | None], ...]:
        """Where to tell of a case given to ``handler``: on each channel the unit uses, the handler's
        own address, else the unit's; a webhook without an address goes to the URL the notifier is
        configured with for the unit's district service."""
        mine, ours = dict(handler.contacts), dict(self.contacts)
        return tuple({"channel": c, "address": mine.get(c) or ours.get(c)} for c in self.notify)

    def own_channels(self) -> tuple[dict[str, str | None], ...]:
        """Where to tell the unit itself, no handler named: each of its channels it has an address for
        (a webhook without one goes to the notifier's configured URL); none such, its webhook."""
        ours = dict(self.contacts)
        usable = tuple({"channel": c, "address": ours.get(c)} for c in self.notify if c == "webhook" or ours.get(c))
        return usable or ({"channel": "webhook", "address": None},)


@dataclass(frozen=True)
class Directory:
    """One edition of the directory at one version, with the lookups routing needs."""

    edition: str
    version: str
    units: tuple[Unit, ...]
    centre_id: str = ""
    department_id: str = ""
    description: str = ""
    digest: str = ""  # SHA-256 of the data file: what the router records when it installs a version
    _by_id: dict[str, Unit] = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_area: dict[str, Unit] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The indexes are derived from ``units``; filled once here so that lookups are O(1).
        self._by_id.update((u.id, u) for u in self.units)
        self._by_area.update((u.admin_code, u) for u in self.units if u.kind in ("district", "ward"))
        if len(self._by_id) != len(self.units):
            raise DirectoryError(f"{self.edition}: two units share an id")

    def unit(self, unit_id: str) -> Unit:
        """The unit with this id; KeyError if the edition has none."""
        return self._by_id[unit_id]

    def for_area(self, admin_code: str) -> Unit | None:
        """The People's Committee of the area with this GSO code (district in 2021, ward in 2025)."""
        return self._by_area.get(admin_code)

    @property
    def centre(self) -> Unit:
        """The 1022 centre: it takes every case no unit can be decided for (triage)."""
        return self._by_id[self.centre_id]

    @property
    def department(self) -> Unit:
        """The city department for vulnerable people: Sở LĐTB-XH in 2021, Sở Y tế since 2025."""
        return self._by_id[self.department_id]

    @property
    def handlers(self) -> Iterable[Handler]:
        return (h for u in self.units for h in u.handlers)


def load_directory(edition: str = "hcmc-2021", path: str | None = None) -> Directory:
    """The directory of ``edition``, from ``path`` or the data shipped with the router (cached)."""
    if path is None and edition not in EDITIONS:
        raise DirectoryError(f"unknown directory edition {edition!r}; known: {', '.join(EDITIONS)}")
    return _load(edition, str(path or _DATA / f"{edition}.json"))


@cache
def _load(edition: str, path: str) -> Directory:
    try:
        raw = Path(path).read_bytes()
        data = json.loads(raw)
    except FileNotFoundError as error:
        raise DirectoryError(f"no directory data for {edition!r} at {path}") from error
    if data.get("edition") != edition:
        raise DirectoryError(f"{path} holds edition {data.get('edition')!r}, not {edition!r}")
    skill_sets = {k: frozenset(v) for k, v in data.get("skill_sets", {}).items()}
    units = tuple(_unit(u, skill_sets, path) for u in data["units"])
    directory = Directory(edition, data["version"], units, data["centre"], data["department"],
                          data.get("description", ""), hashlib.sha256(raw).hexdigest())
    for role in (directory.centre_id, directory.department_id):
        if role not in directory._by_id:
            raise DirectoryError(f"{path}: no unit {role!r}")
    return directory


def _unit(raw: dict, skill_sets: dict[str, frozenset[str]], path: str) -> Unit:
    if raw["kind"] not in KINDS or not set(raw["notify"]) <= set(CHANNELS):
        raise DirectoryError(f"{path}: unit {raw['id']} has kind {raw['kind']!r} or channels {raw['notify']}")
    handlers = []
    for h in raw["handlers"]:
        if h["shift"] not in SHIFTS:
            raise DirectoryError(f"{path}: handler {h['id']} has unknown shift {h['shift']!r}")
        skills = h["skills"]
        skills = skill_sets[skills] if isinstance(skills, str) else frozenset(skills)
        handlers.append(Handler(h["id"], h["name"], skills, h["shift"], _contacts(h)))
    return Unit(raw["id"], raw["name"], raw["kind"], raw["admin_code"], raw.get("parent_code"),
                tuple(handlers), tuple(raw["notify"]), _contacts(raw))


def _contacts(raw: dict) -> tuple[tuple[str, str], ...]:
    return tuple((c, str(raw[c])) for c in CHANNELS if raw.get(c))
