"""The committed JSON Schemas are current, and no change breaks a reader of them."""

import json

import pytest

from contracts import compat


@pytest.mark.parametrize("name", sorted(compat.current()))
def test_committed_schema_is_current_and_compatible(name):
    committed = json.loads((compat.SCHEMA_DIR / f"{name}.json").read_text("utf-8"))
    now = compat.current()[name]
    assert compat.breaking_changes(committed, now) == [], "a reader of the committed schema would break"
    assert now == committed, "schemas changed compatibly: run `make schemas` and commit contracts/schemas/"


def test_the_check_catches_what_would_break_an_old_reader():
    old = compat.current()["RequestReceived"]
    new = json.loads(json.dumps(old))
    props = new["properties"]
    del props["tracking_code"]
    props["category"] = {"type": "integer"}
    new["required"] = [*new.get("required", []), "brand_new"]
    problems = compat.breaking_changes(old, new)
    assert any("tracking_code: removed" in p for p in problems)
    assert any("category: type changed" in p for p in problems)
    assert any("brand_new: newly required" in p for p in problems)


def test_adding_an_optional_field_is_fine():
    old = compat.current()["UnitResponse"]
    new = json.loads(json.dumps(old))
    new["properties"]["extra_note"] = {"type": "string", "default": ""}
    assert compat.breaking_changes(old, new) == []


def test_a_length_bound_may_be_added_or_tightened_but_not_loosened_or_dropped():
    """UnitResponse's texts were bounded after its schema was committed: that narrows only what the
    units may send. A bound a reader relied on, dropped or raised, would let it be sent more."""
    now = compat.current()["UnitResponse"]
    unbounded = json.loads(json.dumps(now))
    del unbounded["properties"]["note"]["maxLength"]
    looser = json.loads(json.dumps(now))
    looser["properties"]["note"]["maxLength"] = 50_000
    assert compat.breaking_changes(unbounded, now) == []
    assert compat.breaking_changes(now, unbounded) == ["UnitResponse.note: longer strings allowed than a reader takes"]
    assert compat.breaking_changes(now, looser) == ["UnitResponse.note: longer strings allowed than a reader takes"]


def test_a_new_kind_of_event_on_a_topic_is_caught():
    """An older notifier or oversight validates case.events.v1 against the kinds it knows and
    dead-letters any other: a new kind is published only once its readers know it."""
    old = compat.current()["CaseEvent"]
    new = json.loads(json.dumps(old))
    new["discriminator"]["mapping"]["CaseMerged"] = "#/$defs/CaseMerged"
    new["oneOf"].append({"$ref": "#/$defs/CaseMerged"})
    new["$defs"]["CaseMerged"] = {"title": "CaseMerged", "properties": {"event_type": {"const": "CaseMerged"}}}
    assert compat.breaking_changes(old, new) == [
        "event type CaseMerged added: an older reader dead-letters it; deploy its readers first"]
    assert compat.breaking_changes(new, old) != [], "a kind removed is a model removed"
