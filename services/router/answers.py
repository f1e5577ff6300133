"""The units' and the 1022 centre's answers to a case: a unit accepts, reports progress, resolves
or declines it; the centre routes a case in triage or takes one from its unit to another, closes
or reopens one. A mixin of
:class:`~services.router.application.CaseDesk`, whose event store, directory, rules and routing
(``_route``, ``_route_or_triage``) it uses; like every use case there, it runs in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError

from contracts.events import UnitResponse
from contracts.text import in_vietnam
from services.router.domain import Case, CaseError
from services.router.meta import meta_of, where_it_failed
from services.router.routing import Decision

if TYPE_CHECKING:
    from services.router.application import Workload

log = logging.getLogger(__name__)
# How far from now a unit's committed date may be: further is taken for a mistyped date.
COMMITMENT_HORIZON = timedelta(days=366)
# What the centre may route: a case in triage, and one a unit holds (a unit that never takes it up).
CENTRE_ROUTES = frozenset({"triage", "routed", "accepted", "in_progress", "reopened"})


class Answers:
    def answer(self, responses: Iterable[UnitResponse], now: datetime,
               workload: Workload) -> list[tuple[UnitResponse, str]]:
        """Apply responses; returns those refused, with why (they are not retried)."""
        refused: list[tuple[UnitResponse, str]] = []
        for response in responses:
            try:
                case: Case = self.repository.get(response.case_id)
            except AggregateNotFoundError:
                case = None
            if not isinstance(case, Case):  # nor the directory's record, whose id is public
                refused.append((response, f"no case {response.case_id}"))
                continue
            if case.has_seen(response.event_id):
                continue  # a redelivered response: already applied
            try:
                self._apply(case, response, now, meta_of(response), workload)
            except CaseError as error:
                refused.append((response, str(error)))
                continue
            except Exception as error:  # noqa: BLE001 - the case's own rules, no I/O: it would fail again
                # Read again, it would hold up every response behind it on its partition for good.
                log.error("response %s for case %s cannot be applied (%s); it is dead-lettered",
                          response.event_id, response.case_id, where_it_failed(error))
                refused.append((response, f"{where_it_failed(error)}: cannot be applied"))
                continue
            self.save(case)
        return refused

    def _apply(self, case: Case, r: UnitResponse, now: datetime, meta: dict[str, Any], workload: Workload) -> None:
        centre = self.directory.centre
        if r.kind in ("route", "close", "reopen") and r.unit_id != centre.id:
            raise CaseError(f"only the 1022 centre may {r.kind} a case")
        if r.kind == "accept":
            case.accept(r.unit_id, r.handler_id, meta)
        elif r.kind == "progress":
            if r.committed_date is not None and abs(r.committed_date - now) > COMMITMENT_HORIZON:
                # A slip of the keyboard (2062 for 2026; year 1, which no reader can even convert
                # to UTC): the case's resolve deadline and its escalations would take it as given.
                raise CaseError(f"committed date {r.committed_date.isoformat()} is more than "
                                f"{COMMITMENT_HORIZON.days} days from now")
            if r.committed_date is not None and r.committed_date < r.occurred_at and not (
                    case.resolve_by and in_vietnam(datetime.fromisoformat(case.resolve_by)) == r.committed_date):
                # A new date already past when the unit gave it: made the deadline, it cleared the
                # case's escalations and at once climbed the chain again, telling the unit head and
                # the centre a second time (and taking a case the centre held back down to the
                # unit). The date it had committed to, said again in a routine report, is no news.
                raise CaseError(f"committed date {r.committed_date.isoformat()} had passed when it was given")
            case.report_progress(r.unit_id, r.note, r.committed_date.isoformat() if r.committed_date else None, meta)
        elif r.kind == "resolve":
            case.resolve(r.unit_id, r.note, meta)
        elif r.kind == "decline":
            case.decline(r.unit_id, r.note, meta, r.corrected_address)
            self._route(case, self._reroute(case, r), now, meta, workload)
        elif r.kind == "route":
            # In triage, or held by a unit and escalated to the centre (a unit that never answers
            # kept it for good: only the holder could decline it). Not a resolved or closed one.
            if case.status not in CENTRE_ROUTES:
                raise CaseError(f"case is {case.status}; the centre routes only an open case")
            try:
                unit = self.directory.unit(r.target_unit_id or "")
            except KeyError:
                raise CaseError(f"no unit {r.target_unit_id} in directory {self.directory.version}") from None
            if case.status != "triage" and case.unit is not None and case.unit["id"] == unit.id:
                # Routed again to its holder (a route sent twice, or by mistake), the case got fresh
                # deadlines: its lateness gone from the figures, its escalations cleared.
                raise CaseError(f"case is already with {unit.id}")
            # A case the centre routes first has its days from receipt, as one routed at once would.
            first = case.received_at is not None and not case.tried_units
            received = min(datetime.fromisoformat(case.received_at), now) if first else None
            self._route(case, Decision.by_centre(unit, self.directory.version, case.category, r.note, self.rules,
                                                 also=self._also(case.category, unit)), now, meta, workload, received)
        elif r.kind == "close":
            case.close(r.note or "closed by the 1022 centre", meta)
        elif r.kind == "reopen":
            case.reopen(r.note, meta)
            self._route(case, self._back_to_unit(case), now, meta, workload)

    def _also(self, category: str, unit: Any) -> tuple[Any, ...]:
        """The units the category's rule tells as well, for a unit the centre chose: the department
        and the centre, as a routed case's are (an area's unit is the one the address gives)."""
        rule = self.rules.categories.get(category)
        kinds = {"department": self.directory.department, "centre": self.directory.centre}
        return tuple(dict.fromkeys(u for k in (rule.also if rule else ()) if (u := kinds.get(k)) is not None
                                   and u != unit))

    def _back_to_unit(self, case: Case) -> Decision:
        """A reopened case goes back to the unit that resolved it, with fresh deadlines."""
        try:
            unit = self.directory.unit(case.unit["id"]) if case.unit else None
        except KeyError:  # the directory changed since: route it afresh
            unit = None
        if unit is None:
            return self._route_or_triage(case.address, case.category, case.id, "reopened by the citizen; ")
        return Decision.by_centre(unit, self.directory.version, case.category,
                                  "reopened by the citizen: back to the unit that resolved it", self.rules,
                                  also=self._also(case.category, unit))

    def _reroute(self, case: Case, response: UnitResponse) -> Decision:
        """After a decline: the corrected address if the unit gave one and it leads elsewhere;
        otherwise the 1022 centre decides (never back to a unit that already declined)."""
        if response.corrected_address:
            decision = self._route_or_triage(response.corrected_address, case.category, case.id)
            if decision.outcome == "routed" and decision.unit.id not in case.tried_units:
                return decision
        # With the category's priority and deadlines: the centre's time to send it on is its time to reach a unit.
        rule = self.rules.categories.get(case.category) or self.rules.fallback
        return Decision.triage(self.directory.centre, self.directory.version,
                               f"declined by {response.unit_id}: {response.note}".strip(), priority=rule.priority,
                               reach_within=rule.reach_within, resolve_within=rule.resolve_within,
                               rules_version=self.rules.version)
