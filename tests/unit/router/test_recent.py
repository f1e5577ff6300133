"""What a router remembers of the cases past the ledger, beside what the ledger lists."""

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from services.router.recent import RecentCases

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
