"""What a router remembers of the cases past the ledger, beside what the ledger lists."""

import uuid
from types import SimpleNamespace

from services.router import recent as recent_module
from services.router.recent import RecentCases

KEY = ("+84903444444", "water")
REQUEST = SimpleNamespace(citizen=SimpleNamespace(phone=KEY[0]), category=KEY[1])


def test_a_case_read_back_at_an_area_the_ledger_does_not_have_yet_is_listed_there_too():
    """Rerouted while the relay lags: the ledger lists the case at the area it was in before, the
    store has the new one. Taken by case alone, the remembered area was dropped for the ledger's."""
    case_id = uuid.uuid4()
    recent = RecentCases(lambda recorded: [(case_id, KEY, "760", 7), (case_id, KEY, "768", 7)])
    reports = recent.with_ledger([REQUEST], {KEY: [{"case_id": case_id, "area_code": "760"}]}, 3)
    assert sorted((str(r["case_id"]), r["area_code"]) for r in reports[KEY]) == [(str(case_id), "760"),
                                                                                (str(case_id), "768")]
    # Once the ledger is past the case's last notification, it alone answers.
    assert recent.with_ledger([REQUEST], {}, 7) == {}


def test_a_case_the_ledger_still_lacks_is_remembered_however_long_the_relay_stops(monkeypatch):
    """The relay stopped for more than an hour (Kafka down, a rolling upgrade): the case was dropped
    from memory by its age alone, and a second report of the same trouble became a second case.
    Read back from the store instead, it could lie past the read-back's pages, and was lost as well."""
    case_id, other = uuid.uuid4(), ("+84903555555", "water")
    recent = RecentCases(lambda recorded: [])
    recent.with_ledger([REQUEST], {}, 3)
    recent.keep({KEY: [{"case_id": case_id, "area_code": "760", "this_batch": True}]}, {str(case_id): 40_000})
    assert [r["case_id"] for r in recent.with_ledger([REQUEST], {}, 3)[KEY]] == [case_id]
    # Once the ledger has it, it is no longer remembered.
    assert recent.with_ledger([REQUEST], {}, 40_000) == {}
    # Memory is bounded by a count: past it, the oldest goes.
    monkeypatch.setattr(recent_module, "REMEMBERED_AT_MOST", 1)
    for n, key in enumerate((KEY, other)):
        recent.keep({key: [{"case_id": (c := uuid.uuid4()), "area_code": "760", "this_batch": True}]},
                    {str(c): 50_000 + n})
    assert KEY not in recent.with_ledger([REQUEST], {}, 3)


class Store:
    """The event store's notifications as the recorder pages them: by position, of the topics asked."""

    def __init__(self, notifications: list[SimpleNamespace]):
        self.notifications = notifications

    def select_notifications(self, start: int, limit: int, stop=None, topics=()):
        return [n for n in self.notifications if n.id >= start and (not topics or n.topic in topics)][:limit]


def test_every_case_past_the_ledger_is_read_back_however_far_the_relay_is_behind():
    """A relay stalled behind 4,000 new cases (12,000 notifications: opened, routed, assigned): the
    read-back stopped at 10,000, and a router given the partitions of the newest did not know them:
    a repeat report of one was opened as a case of its own."""
    domain = "services.router.domain:Case."
    notifications, n = [], 0
    cases = [uuid.uuid4() for _ in range(4_000)]
    for i, case_id in enumerate(cases):
        for kind, payload in (("Opened", {"citizen": {"phone": f"+8490{i:07d}"}, "category": "water"}),
                              ("Routed", {"area_code": "760"}), ("AssignmentIssued", {})):
            n += 1
            notifications.append(SimpleNamespace(id=n, topic=domain + kind, case_id=case_id, payload=payload))
    mapper = SimpleNamespace(to_domain_event=lambda n: SimpleNamespace(originator_id=n.case_id, payload=n.payload))
    found = recent_module.read_back(Store(notifications), mapper, 0)
    assert len(found) == 4_000
    assert found[-1] == (cases[-1], (f"+8490{3_999:07d}", "water"), "760", n - 1)
