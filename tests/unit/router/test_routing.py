"""The routing decision, the directory and handler choice; and the routing test set's accuracy."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import categories
from services.router import addressing
from services.router.directory import DirectoryError, Handler, Unit, load_directory
from services.router.routing import Decision, choose_handler, load_rules, route

TEST_SET = Path(__file__).parents[2] / "data" / "addresses.jsonl"


@pytest.fixture(scope="module")
def d2021():
    return load_directory("hcmc-2021")


@pytest.fixture(scope="module")
def d2025():
    return load_directory("hcmc-2025")


# --- the routing test set ---------------------------------------------------------------------

def test_no_address_of_the_test_set_goes_to_a_wrong_unit(capsys):
    cases = [json.loads(line) for line in TEST_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(cases) >= 150 and {c["edition"] for c in cases} == {"hcmc-2021", "hcmc-2025"}
    right, total, wrong = Counter(), Counter(), []
    for case in cases:
        directory = load_directory(case["edition"])
        decision = route(case["address"], case["category"], directory)
        total[case["edition"]] += 1
        if case["expect"] == "routed":
            expected = directory.for_area(case["area_code"])
            if decision.outcome == "routed" and decision.unit == expected:
                right[case["edition"]] += 1
            elif decision.outcome == "routed":
                wrong.append((case["address"], expected.name, decision.unit.name, decision.reason))
        elif decision.outcome == "triage":
            right[case["edition"]] += 1
        else:
            wrong.append((case["address"], "triage", decision.unit.name, decision.reason))
    with capsys.disabled():  # shown without -s: the accuracy is the point of this test
        for edition in sorted(total):
            print(f"\nrouting test set {edition}: {right[edition]}/{total[edition]} routed as expected "
                  f"({right[edition] / total[edition]:.1%})", end="")
        print()
    assert wrong == []
    assert all(right[e] / total[e] >= 0.9 for e in total)


# --- route() ----------------------------------------------------------------------------------

def test_essential_supplies_go_to_the_areas_peoples_committee_urgently(d2021):
    decision = route("Phường 25, Quận Bình Thạnh, TP HCM", "essential_supplies", d2021)
    assert (decision.outcome, decision.unit.id, decision.rule) == (
        "routed", "hcmc-2021/765", "category:essential_supplies->area")
    assert decision.priority == "urgent" and decision.resolve_within < timedelta(days=5)
    assert decision.reach_within == timedelta(minutes=5)
    assert (decision.area_code, decision.directory_version) == ("765", "hcmc-2021.2")
    assert "Quận Bình Thạnh" in decision.reason


def test_a_vulnerable_person_goes_to_the_area_and_the_department_is_told(d2021, d2025):
    decision = route("P. Thảo Điền, Q.2", "vulnerable_person", d2021)
    assert decision.unit.admin_code == "769" and decision.also == (d2021.department,)
    assert d2021.department.name.startswith("Sở Lao động")
    assert route("P. Thảo Điền, Q.2", "vulnerable_person", d2025).also == (d2025.department,)


def test_pre_covid_categories_go_to_the_area_within_five_days(d2025):
    decision = route("Phường Bến Nghé, Quận 1", "trees", d2025)
    assert decision.unit.name == "UBND Phường Sài Gòn" and decision.resolve_within == timedelta(days=5)
    assert decision.priority == "normal"


def test_every_category_has_a_rule():
    assert set(categories.load()) <= set(load_rules().categories)


def test_an_unknown_category_goes_to_triage_with_the_reason(d2021):
    decision = route("Phường 25, Quận Bình Thạnh", "fireworks", d2021)
    assert (decision.outcome, decision.unit, decision.rule) == ("triage", d2021.centre, "category:unknown")
    assert "fireworks" in decision.reason


def test_no_category_is_taken_as_other(d2021):
    decision = route("Phường 25, Quận Bình Thạnh", None, d2021)
    assert decision.outcome == "routed" and decision.rule == "category:other->area"


@pytest.mark.parametrize("address, rule", [("Phường 1", "address:ambiguous"), ("45 Lê Lợi, Hà Nội", "address:outside"),
                                           ("gần chợ", "address:unknown")])
def test_an_address_that_names_no_single_place_goes_to_the_1022_centre(d2021, address, rule):
    decision = route(address, "water", d2021)
    assert (decision.outcome, decision.unit.kind, decision.rule) == ("triage", "centre", rule)
    assert decision.reason and decision.also == ()


def test_an_area_without_a_unit_goes_to_triage(d2021):
    only_centre = type(d2021)("hcmc-2021", "test.1", (d2021.centre, d2021.department),
                              d2021.centre_id, d2021.department_id)
    assert route("Quận 3", "traffic", only_centre).rule == "address:no-unit"


def test_the_same_request_is_decided_the_same_way(d2025):
    """Decided afresh, not read back from the address caches: another router process, or this one
    after a restart, decides a redelivered request with nothing cached."""
    first = route("F12 Go Vap", "water", d2025)
    addressing._resolve.cache_clear()
    addressing._library.cache_clear()
    assert route("F12 Go Vap", "water", d2025) == first


def test_decline_triage_is_a_decision_too(d2021):
    decision = Decision.triage(d2021.centre, d2021.version, "declined by the unit")
    assert decision.outcome == "triage" and decision.resolve_within == timedelta(days=5)


# --- the directory ----------------------------------------------------------------------------

def test_the_2021_edition_has_86_units_and_625_handlers(d2021):
    assert len(d2021.units) == 86 and len(list(d2021.handlers)) == 625
    assert len([u for u in d2021.units if u.kind == "district"]) == 22
    assert d2021.for_area("760").name == "UBND Quận 1" and d2021.unit("hcmc-2021/760").admin_code == "760"
    assert d2021.unit("hcmc-2021/760").handlers[2].id == "hcmc-2021/760/h03"


def test_the_2025_edition_has_the_168_wards_and_communes(d2025):
    wards = [u for u in d2025.units if u.kind == "ward"]
    assert len(wards) == 168 and len({u.admin_code for u in wards}) == 168
    assert d2025.centre.kind == "centre" and d2025.department.kind == "department"


def test_every_unit_covers_every_skill_it_has_at_every_hour(d2021, d2025):
    for unit in (*d2021.units, *d2025.units):
        skills = frozenset().union(*(h.skills for h in unit.handlers))
        for hour in range(24):
            covered = frozenset().union(*(h.skills for h in unit.handlers if h.on_duty(hour)))
            assert covered == skills, (unit.id, hour)


def test_every_unit_names_an_address_for_each_channel_it_is_told_on(d2021, d2025):
    for directory in (d2021, d2025):
        for unit in directory.units:
            for handler in unit.handlers:
                told = unit.notify_for(handler)
                assert [n["channel"] for n in told] == list(unit.notify)
                assert all(n["address"] for n in told if n["channel"] != "webhook"), unit.id


def test_a_handler_is_told_at_their_own_address_and_else_at_the_units():
    own = Handler("t/1/h01", "A", SOCIAL, "24h", (("email", "a@t1.example"), ("zalo", "1234567890123456789")))
    bare = Handler("t/1/h02", "B", SOCIAL, "24h")
    unit = Unit("t/1", "UBND Test", "ward", "00001", "79", (own, bare), ("webhook", "zalo", "email"),
                (("email", "tiepnhan@t1.example"), ("zalo", "9876543210987654321")))
    assert unit.notify_for(own) == ({"channel": "webhook", "address": None},
                                    {"channel": "zalo", "address": "1234567890123456789"},
                                    {"channel": "email", "address": "a@t1.example"})
    assert unit.notify_for(bare)[1:] == ({"channel": "zalo", "address": "9876543210987654321"},
                                         {"channel": "email", "address": "tiepnhan@t1.example"})


def test_an_unknown_edition_is_a_clear_error():
    with pytest.raises(DirectoryError, match="hcmc-2019"):
        load_directory("hcmc-2019")


def test_the_shipped_directories_are_what_their_builder_makes():
    from vietnamadminunits.database.main import query

    from services.router.data import build_directories as build

    data = Path(build.__file__).parent
    legacy = query("SELECT * FROM admin_units_legacy WHERE provinceCode = '79' ORDER BY districtCode, wardCode")
    today = query("SELECT * FROM admin_units WHERE provinceCode = '79' ORDER BY wardCode")
    for name, built in (("hcmc-2021.json", build.edition_2021(legacy)), ("hcmc-2025.json", build.edition_2025(today))):
        assert json.loads((data / name).read_text("utf-8")) == json.loads(json.dumps(built)), name


# --- choose_handler() ------------------------------------------------------------------------

def _unit(*handlers: Handler) -> Unit:
    return Unit("t/1", "UBND Test", "ward", "00001", "79", handlers, ("email",))


SOCIAL = frozenset({"essential_supplies", "vulnerable_person"})
NOON = datetime(2021, 8, 20, 5, 0, tzinfo=UTC)  # 12:00 in HCMC
MIDNIGHT = datetime(2021, 8, 20, 17, 0, tzinfo=UTC)  # 00:00 in HCMC


def test_the_handler_with_the_fewest_open_cases_is_chosen():
    a, b = Handler("t/1/h01", "A", SOCIAL, "day"), Handler("t/1/h02", "B", SOCIAL, "day")
    assert choose_handler(_unit(a, b), "vulnerable_person", NOON, {"t/1/h01": 3, "t/1/h02": 1}, {}) == b


def test_then_the_longest_idle_and_never_assigned_is_idlest():
    a, b, c = (Handler(f"t/1/h0{i}", n, SOCIAL, "24h") for i, n in ((1, "A"), (2, "B"), (3, "C")))
    last = {"t/1/h01": NOON - timedelta(hours=1), "t/1/h02": NOON - timedelta(hours=2)}
    assert choose_handler(_unit(a, b, c), "essential_supplies", NOON, {}, last) == c
    assert choose_handler(_unit(a, b), "essential_supplies", NOON, {}, last) == b
    assert choose_handler(_unit(b, a), "essential_supplies", NOON, {}, {}) == a  # then by id


def test_handlers_on_shift_in_hcmc_time_and_with_the_skill_are_chosen_first():
    day, night = Handler("t/1/h01", "Day", SOCIAL, "day"), Handler("t/1/h02", "Night", SOCIAL, "night")
    works = Handler("t/1/h03", "Works", frozenset({"water"}), "24h")
    unit = _unit(day, night, works)
    assert choose_handler(unit, "vulnerable_person", NOON, {}, {}) == day
    assert choose_handler(unit, "vulnerable_person", MIDNIGHT, {}, {}) == night
    assert choose_handler(unit, "water", NOON, {"t/1/h03": 40}, {}) == works


def test_a_case_outside_the_units_line_still_gets_a_handler_so_the_unit_hears_of_it():
    """The centre sends a case to a department none of whose handlers has its skill: it went
    unassigned, and the department's service (reading unit.assignments) never heard of it."""
    day, night = Handler("t/1/h01", "Day", SOCIAL, "day"), Handler("t/1/h02", "Night", SOCIAL, "night")
    assert choose_handler(_unit(day, night), "water", NOON, {}, {}) == day  # on duty, to pass it on
    assert choose_handler(_unit(day, night), "water", MIDNIGHT, {}, {}) == night
    # Nobody on duty: the one with the skill, who finds it when their shift starts.
    works = Handler("t/1/h03", "Works", frozenset({"water"}), "day")
    assert choose_handler(_unit(day, works), "water", MIDNIGHT, {}, {}) == works
    assert choose_handler(_unit(day), "water", MIDNIGHT, {}, {}) == day
    assert choose_handler(_unit(), "water", NOON, {}, {}) is None


def test_every_centre_handler_on_duty_triages_any_category(d2021):
    assert choose_handler(d2021.centre, "fireworks", MIDNIGHT, {}, {}) is not None


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        choose_handler(_unit(Handler("t/1/h01", "A", SOCIAL, "24h")), None, datetime(2021, 8, 20), {}, {})
