"""What the consumer takes from a record: every event of a case's life, and not what the contract
reads but the projection cannot fold or store (such a record is dead-lettered, not read forever)."""

from types import SimpleNamespace

import orjson
import pytest

from contracts import topics
from services.oversight.handlers import body_of
from tests.unit.oversight.story import CaseStory

STORY = CaseStory().opened().routed().assigned().accepted().progress().resolved()
OPENED, ROUTED = STORY.bodies()[:2]
SENT = STORY.deliveries[0].model_dump(mode="json")


def record(body):
    topic = topics.NOTIFY_DELIVERIES if body["event_type"].startswith("Notification") else topics.CASE_EVENTS
    return SimpleNamespace(topic=topic, value=orjson.dumps(body))


def test_every_event_of_a_story_is_read_as_written():
    for body in STORY.bodies():
        assert body_of(record(body)) == body
    shouted = OPENED | {"event_id": OPENED["event_id"].upper()}
    assert body_of(record(shouted)) == shouted


@pytest.mark.parametrize("body", [
    OPENED | {"occurred_at": "2026-12-05T10:00:00z"},  # Python 3.11's fromisoformat refuses the small z
    ROUTED | {"reach_by": "2026-12-05T10:05:00z"},
    ROUTED | {"resolve_by": "1764900000"},  # a time to pydantic (seconds), not to the fold
    OPENED | {"event_id": "{" + OPENED["event_id"] + "}"},  # asyncpg refuses these ids
    OPENED | {"case_id": "urn:uuid:" + OPENED["case_id"]},
    SENT | {"cause_event_id": SENT["cause_event_id"].replace("-", "")},
    ROUTED | {"version": 2**31},  # past int4
    SENT | {"attempts": 2**40},
    SENT | {"occurred_at": "9999-12-31T23:59:59-14:00"},  # past year 9999 in UTC
], ids=["small z", "small z in reach_by", "resolve_by in seconds", "id in braces", "id as a URN", "bare hex id",
        "version past int4", "attempts past int4", "past 9999 in UTC"])
def test_what_the_contract_reads_but_the_projection_cannot_take_is_refused(body):
    with pytest.raises(ValueError):
        body_of(record(body))


@pytest.mark.parametrize("body", [
    ROUTED | {"delivery_id": None, "cause_event_id": 7},  # another kind's field names, as a newer writer may add
    SENT | {"version": "v2"},
], ids=["a case event with a delivery's field names", "a delivery with a version of its own"])
def test_fields_an_event_of_its_kind_does_not_have_are_read_past(body):
    """The contract's readers ignore fields they do not know: a case event carrying "delivery_id":
    null raised TypeError here, which stopped the partition for good, re-read with no pause."""
    assert body_of(record(body)) == body
