"""What a router remembers of the cases it opened, for linking a second report of the same trouble
(same phone, category and area) to the first before the ledger has the first.

Every router finds open cases in the ledger (:func:`services.router.ledger.open_duplicates`), which
the relay fills a moment after publishing. Until then only the store and this memory hold a new
case. A case is forgotten once the ledger's recorded position passes its last notification, however
long the relay stops (a case dropped after an hour of it let a repeat report become a second case),
and past :data:`REMEMBERED_AT_MOST` cases the oldest, with a warning. A router starting, or given partitions
another router had, reads back from the store the cases past that position, by any router
(:func:`read_back`): what the router before it remembered went with it, or stays with the other.
"""

import collections
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eventsourcing.persistence import Recording
from eventsourcing.utils import get_topic

from contracts.events import RequestReceived
from services.router.domain import Case

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (phone, category)
# A few hundred bytes each: hours of a stopped relay at a hotline's busiest rate.
REMEMBERED_AT_MOST = 200_000
# The store past the ledger is read back to its end, in pages of its cases' openings and routings
# alone, up to as many as the memory keeps (two a case: the rest would be forgotten at once).
READ_BACK_PAGE = 5_000
READ_BACK_TOPICS = (get_topic(Case.Opened), get_topic(Case.Routed))


class RecentCases:
    def __init__(self, read_back: Callable[[int], list[tuple[uuid.UUID, Key, str, int]]]):
        self.read_back = read_back
        # By (phone, category), the cases not yet known to be in the ledger; and as which
        # notification each was remembered, oldest first.
        self.recent: dict[Key, list[dict]] = {}
        self.remembered: collections.deque[tuple[int, Key]] = collections.deque()
        self.read = False  # whether the store past the ledger was read back since the last assignment

    def read_again(self) -> None:
        """Read the store past the ledger back at the next batch: this router was given partitions,
        and the cases another router opened there the ledger may not have yet."""
        self.read = False

    def with_ledger(self, requests: Sequence[RequestReceived], open_reports: Mapping[Key, list[dict]],
                    recorded: int | None) -> dict[Key, list[dict]]:
        """The ledger's open reports (read with the notification it is ``recorded`` up to), with
        the remembered cases the batch's requests could repeat; the rest is not looked at.

        A case is kept while the relay lags, however long: a minute's memory once let a second
        report opened during a Kafka hiccup become a second case."""
        while self.remembered and ((recorded is not None and self.remembered[0][0] <= recorded)
                                   or len(self.remembered) > REMEMBERED_AT_MOST):
            notification, key = self.remembered.popleft()  # the oldest remembered case is its key's first
            if recorded is None or notification > recorded:
                log.warning("the ledger is %d cases behind: the oldest is forgotten, and a repeat report"
                            " of it may be opened as a case of its own", len(self.remembered) + 1)
            del self.recent[key][0]
            if not self.recent[key]:
                del self.recent[key]
        if not self.read and recorded is not None:
            # Marked first, so that partitions given meanwhile (read_again, from the loop) ask again;
            # unmarked should it fail (PostgreSQL restarting), so that the batch read again reads it.
            self.read = True
            try:
                found = self.read_back(recorded)
            except BaseException:
                self.read = False
                raise
            for case_id, key, area_code, notification in found:
                self._add(key, case_id, area_code, notification)
        reports = {k: list(v) for k, v in open_reports.items()}
        for key in {(r.citizen.phone, r.category) for r in requests if r.citizen.phone}:
            if mine := self.recent.get(key):
                # By case and area: the ledger may have a case at the area it was in before.
                known = {(str(r["case_id"]), r["area_code"]) for r in reports.get(key, ())}
                reports.setdefault(key, []).extend(r for r in mine if (str(r["case_id"]), r["area_code"]) not in known)
        return reports

    def keep(self, reports: Mapping[Key, list[dict]], notified: Mapping[str, int]) -> None:
        """Remember the cases of the batch just saved (``notified``: each one's last notification)."""
        unremembered = dict(notified)
        for key, entries in reports.items():
            for r in entries:
                # Once, though a batch saved case by case lists it again.
                if r.get("this_batch") and (notification := unremembered.pop(str(r["case_id"]), None)) is not None:
                    self._add(key, r["case_id"], r["area_code"], notification)

    def _add(self, key: Key, case_id: Any, area_code: str, notification: int) -> None:
        cases = self.recent.setdefault(key, [])
        if any(str(c["case_id"]) == str(case_id) and c["area_code"] == area_code for c in cases):
            return  # remembered already, and read back again after a rebalance
        cases.append({"case_id": case_id, "area_code": area_code})
        self.remembered.append((notification, key))


def read_back(recorder: Any, mapper: Any, recorded: int) -> list[tuple[uuid.UUID, Key, str, int]]:
    """The cases opened and routed in the store past notification ``recorded``, in the order they
    were opened, each with its (phone, category), an area it was routed to (a case rerouted: once
    for each) and last notification read.

    To the store's end: read back as far as 10,000 notifications, a relay stalled behind some 3,300
    new cases left the newest unread, and a router given their partitions opened a repeat report
    of one of them as a case of its own."""
    cases: dict[uuid.UUID, dict[str, Any]] = {}
    start, read = recorded + 1, 0
    while True:
        page = recorder.select_notifications(start=start, limit=READ_BACK_PAGE, topics=READ_BACK_TOPICS)
        for n in page:
            e = mapper.to_domain_event(n)
            case = cases.setdefault(e.originator_id, {})
            if n.topic == READ_BACK_TOPICS[0]:
                case["key"] = ((e.payload.get("citizen") or {}).get("phone"), e.payload.get("category"))
            elif (area := e.payload.get("area_code")) not in case.setdefault("areas", []):
                case["areas"].append(area)  # each area it was routed to, as the ledger keeps them
            case["notification"] = n.id
        read += len(page)
        if len(page) < READ_BACK_PAGE:
            break
        if read >= 2 * REMEMBERED_AT_MOST:
            log.warning("the ledger is more than %d cases behind: those opened after them are not read back,"
                        " and a repeat report of one may be opened as a case of its own", REMEMBERED_AT_MOST)
            break
        start = page[-1].id + 1
    found = [(case_id, c["key"], area, c["notification"]) for case_id, c in cases.items()
             if c.get("key", (None,))[0] for area in c.get("areas", ())]
    if found:
        log.info("%d cases past the ledger's position read back for linking repeats", len(found))
    return found


def notifications(recordings: Sequence[Recording] | None) -> dict[str, int]:
    """The last notification of each case among ``recordings``: the relay's position passes it once
    the case is in the ledger."""
    last: dict[str, int] = {}
    for recording in recordings or ():
        case_id = str(recording.domain_event.originator_id)
        last[case_id] = max(last.get(case_id, 0), recording.notification.id)
    return last
