"""The routing decision (điều phối): which unit takes a request, by which rule, and who handles it.

``route()`` is pure and deterministic: the same address, category, directory and rules give the
same Decision, so replaying a case's events gives the same decisions. The category rules are
configuration (``data/rules.json``), not code: which kind of unit takes each category, its
priority, and its deadlines (reach the unit within 5 minutes, a result within 5 days by default —
QĐ 1478/QĐ-UBND). Whatever cannot be decided — an unknown category, an address that is ambiguous,
outside the city or not understood, an area with no unit — goes to triage at the 1022 centre with
the reason.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from services.router.addressing import resolve
from services.router.directory import Directory, Handler, Unit

_RULES = Path(__file__).parent / "data" / "rules.json"
_TARGETS = ("area", "department", "centre")


@dataclass(frozen=True)
class CategoryRule:
    """How one category is routed: the unit kind that takes it, who is told as well, and how fast."""

    category: str
    unit: str
    also: tuple[str, ...]
    priority: str
    reach_within: timedelta
    resolve_within: timedelta

    @property
    def id(self) -> str:
        return f"category:{self.category}->" + "+".join((self.unit, *self.also))


@dataclass(frozen=True)
class Rules:
    """The category rules at one version; ``fallback`` applies to triage and unknown categories."""

    version: str
    categories: Mapping[str, CategoryRule]
    fallback: CategoryRule
    when_category_missing: str | None


@dataclass(frozen=True)
class Decision:
    """Where a request goes and why. ``unit`` is the 1022 centre when ``outcome`` is "triage"."""

    outcome: str
    unit: Unit
    also: tuple[Unit, ...]
    rule: str
    reason: str
    area_code: str | None
    area_name: str | None
    directory_version: str
    priority: str
    reach_within: timedelta
    resolve_within: timedelta
    rules_version: str = ""

    @classmethod
    def triage(cls, centre: Unit, directory_version: str, reason: str, *, rule: str = "triage",
               area_code: str | None = None, area_name: str | None = None, priority: str = "normal",
               reach_within: timedelta = timedelta(minutes=5), resolve_within: timedelta = timedelta(days=5),
               rules_version: str = "") -> "Decision":
        """The 1022 centre decides (triage)."""
        return cls("triage", centre, (), rule, reason, area_code, area_name, directory_version,
                   priority, reach_within, resolve_within, rules_version)

    @classmethod
    def by_centre(cls, unit: Unit, directory_version: str, category: str, note: str,
                  rules: "Rules | None" = None, also: tuple[Unit, ...] = ()) -> "Decision":
        """The 1022 centre's own decision (a case out of triage, a reopened case back to its unit),
        with the category's priority and deadlines; ``also``, the units told as well."""
        rules = rules or load_rules()
        rule = rules.categories.get(category) or rules.fallback
        return cls("routed", unit, also, "centre:decision", note or f"the 1022 centre sent it to {unit.name}",
                   unit.admin_code, unit.name, directory_version, rule.priority, rule.reach_within,
                   rule.resolve_within, rules.version)


def load_rules(path: str | None = None) -> Rules:
    """The category rules from ``path`` or the file shipped with the router (cached)."""
    return _load_rules(str(path or _RULES))


@cache
def _load_rules(path: str) -> Rules:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    default = data.get("default", {})

    def rule(code: str, raw: Mapping) -> CategoryRule:
        merged = {**default, **raw}
        target, also = merged.get("unit", "area"), tuple(merged.get("also", ()))
        if target not in _TARGETS or not set(also) <= set(_TARGETS) or merged["priority"] not in ("urgent", "normal"):
            raise ValueError(f"{path}: rule for {code!r} is not valid: {raw}")
        return CategoryRule(code, target, also, merged["priority"],
                            timedelta(minutes=merged["reach_within_minutes"]),
                            timedelta(hours=merged["resolve_within_hours"]))

    categories = {code: rule(code, raw) for code, raw in data["categories"].items()}
    missing = data.get("when_category_missing")
    if missing is not None and missing not in categories:
        raise ValueError(f"{path}: when_category_missing names no rule: {missing!r}")
    return Rules(data["version"], categories, rule("triage", {"unit": "centre"}), missing)


def route(address: str, category: str | None, directory: Directory, rules: Rules | None = None) -> Decision:
    """The unit that takes a request for ``category`` at ``address``, or triage at the 1022 centre."""
    rules = rules or load_rules()
    note = ""
    if category is None and rules.when_category_missing:
        category, note = rules.when_category_missing, f"no category given, taken as '{rules.when_category_missing}'; "
    rule = rules.categories.get(category or "")
    if rule is None:
        return _triage(directory, rules, rules.fallback, "category:unknown",
                       f"unknown category {category!r}: the 1022 centre classifies it", None)
    place = resolve(address, directory.edition)
    if place.status != "resolved":
        return _triage(directory, rules, rule, f"address:{place.status}",
                       f"{note}address {place.status}: {place.reason}", place)
    units = {"area": directory.for_area(place.area_code), "department": directory.department,
             "centre": directory.centre}
    unit = units[rule.unit]
    if unit is None:
        return _triage(directory, rules, rule, "address:no-unit",
                       f"{note}{place.area_name} ({place.area_code}) has no unit in directory "
                       f"{directory.version}", place)
    also = tuple(dict.fromkeys(u for k in rule.also if (u := units[k]) is not None and u != unit))
    told = f", and {', '.join(u.name for u in also)} is told" if also else ""
    return Decision("routed", unit, also, rule.id,
                    f"{note}{place.reason}; {_label(category)} goes to {unit.name}{told}",
                    place.area_code, place.area_name, directory.version, rule.priority,
                    rule.reach_within, rule.resolve_within, rules.version)


def warm_up(directory: Directory, rules: Rules | None = None) -> None:
    """Make one decision now. The first in a process builds the gazetteer from the address
    library's tables (about 0.65 s); without this, that is the wait of the first citizens after
    every router start."""
    rules = rules or load_rules()
    route("12 Lý Tự Trọng, Phường Bến Nghé, Quận 1, TP.HCM", next(iter(rules.categories)), directory, rules)


def _label(category: str) -> str:
    """The category as people say it ("Household short of essential supplies"), else its code."""
    from contracts import categories

    known = categories.load().get(category)
    return f"'{known.en}'" if known else category


def _triage(directory: Directory, rules: Rules, rule: CategoryRule, rule_id: str, reason: str, place) -> Decision:
    return Decision.triage(directory.centre, directory.version, reason, rule=rule_id,
                           area_code=place.area_code if place else None,
                           area_name=place.area_name if place else None, priority=rule.priority,
                           reach_within=rule.reach_within, resolve_within=rule.resolve_within,
                           rules_version=rules.version)


def choose_handler(unit: Unit, category: str | None, now: datetime, open_cases: Mapping[str, int],
                   last_assigned: Mapping[str, datetime]) -> Handler | None:
    """Among the unit's handlers on duty at ``now`` with the skill for ``category``: the fewest open
    cases, then the longest idle (never assigned is idlest), then by id. When nobody on duty has the
    skill (the centre sent a case to a department outside its line), someone on duty, to pass it on;
    when nobody is on duty, a handler with the skill, who finds it at the start of their shift, else
    any. A case always has a handler, so its unit's service hears of it (``unit.assignments``) at
    once, not at its first escalation. None only for a unit with no handlers at all.

    At the 1022 centre everyone on duty triages, whatever the category."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware: shifts are in Asia/Ho_Chi_Minh time")
    hour = now.astimezone(_hcmc()).hour
    everyone = unit.kind == "centre" or category is None
    skilled = [h for h in unit.handlers if everyone or category in h.skills]
    on_duty = ([h for h in skilled if h.on_duty(hour)] or [h for h in unit.handlers if h.on_duty(hour)]
               or skilled or list(unit.handlers))

    def idle(h: Handler) -> tuple[int, float]:
        last = last_assigned.get(h.id)
        return (0, 0.0) if last is None else (1, last.timestamp())

    return min(on_duty, key=lambda h: (open_cases.get(h.id, 0), *idle(h), h.id), default=None)


@cache
def _hcmc() -> ZoneInfo:
    return ZoneInfo("Asia/Ho_Chi_Minh")
