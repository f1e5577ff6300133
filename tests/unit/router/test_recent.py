"""What a router remembers of the cases past the ledger, beside what the ledger lists."""

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from services.router.recent import REMEMBERED_AT_MOST, RecentCases

KEY = ("+84903444444", "water")
REQUEST = SimpleNamespace(citizen=SimpleNamespace(phone=KEY[0]), category=KEY[1])


def test_a_case_read_back_at_an_area_the_ledger_does_not_have_yet_is_listed_there_too():
    """Rerouted while the relay lags: the ledger lists the case at the area it was in before, the
    store has the new one. Taken by case alone, the remembered area was dropped for the ledger's."""
    case_id = uuid.uuid4()
    recent = RecentCases(lambda recorded: [(case_id, KEY, "760", 7), (case_id, KEY, "768", 7)])
    reports = recent.with_ledger([REQUEST], {KEY: [{"case_id": case_id, "area_code": "760"}]}, datetime.now(UTC), 3)
    assert sorted((str(r["case_id"]), r["area_code"]) for r in reports[KEY]) == [(str(case_id), "760"),
                                                                                (str(case_id), "768")]
    # Once the ledger is past the case's last notification, it alone answers.
    assert recent.with_ledger([REQUEST], {}, datetime.now(UTC), 7) == {}


def test_a_case_the_ledger_still_lacks_after_an_hour_is_read_back_from_the_store_not_forgotten():
    """The relay stopped for more than an hour (Kafka down, a rolling upgrade): the case was dropped
    from memory by its age alone, and a second report of the same trouble became a second case."""
    case_id, reads = uuid.uuid4(), []

    def read_back(recorded):
        reads.append(recorded)
        return [(case_id, KEY, "760", 7)]

    recent, opened = RecentCases(read_back), datetime.now(UTC)
    assert [r["case_id"] for r in recent.with_ledger([REQUEST], {}, opened, 3)[KEY]] == [case_id]
    later = opened + REMEMBERED_AT_MOST + timedelta(minutes=1)
    assert [r["case_id"] for r in recent.with_ledger([REQUEST], {}, later, 3)[KEY]] == [case_id]
    assert reads == [3, 3]
    # Once the ledger has it, it is neither remembered nor read back again.
    assert recent.with_ledger([REQUEST], {}, later + REMEMBERED_AT_MOST * 2, 7) == {} and reads == [3, 3]
