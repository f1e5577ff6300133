"""The router's use cases on the event store: get → command → save, nothing else.

``eventsourcing`` is synchronous (psycopg 3); the Kafka handlers call these methods in a worker
thread so the event loop never blocks. What a use case needs from the router's other tables
(handler load, open reports) is read beforehand and passed in as a snapshot.
"""

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError

from contracts import ids
from contracts.events import RequestReceived
from services.router.answers import Answers
from services.router.directory import Directory
from services.router.domain import ESCALATION_STEP, Case, DirectoryEdition
from services.router.meta import meta_of, unit_ref, where_it_failed
from services.router.recent import RecentCases, notifications, read_back
from services.router.routing import Decision, Rules, choose_handler, load_rules, route

log = logging.getLogger(__name__)


@dataclass
class Workload:
    """Open cases and last assignment per handler, as read before a batch and kept up to date in it."""

    open_cases: dict[str, int] = field(default_factory=dict)
    last_assigned: dict[str, datetime] = field(default_factory=dict)

    def took(self, handler_id: str, now: datetime) -> None:
        self.open_cases[handler_id] = self.open_cases.get(handler_id, 0) + 1
        self.last_assigned[handler_id] = now


class CaseDesk(Answers, Application):
    """Bàn điều phối: where cases are opened, routed, assigned, answered (:class:`Answers`) and escalated."""

    name = "cases"

    def __init__(self, directory: Directory, env: Mapping[str, str] | None = None, rules: Rules | None = None,
                 escalation_step: Mapping[str, timedelta] | None = None) -> None:
        super().__init__(env)
        self.directory = directory
        self.rules = rules or load_rules()
        self.escalation_step = dict(escalation_step or ESCALATION_STEP)
        # The cases this router opened that the ledger may not have yet.
        self.recent = RecentCases(lambda after: read_back(self.recorder, self.mapper, after))

    # --- the directory -----------------------------------------------------------------------

    def install_directory(self) -> DirectoryEdition:
        """Record the directory this router routes with, if it is not the one recorded last."""
        d = self.directory
        edition_id = ids.event_id("directory-edition", d.edition)
        handlers = sum(1 for _ in d.handlers)
        try:
            record: DirectoryEdition = self.repository.get(edition_id)
            changed = record.install(d.version, d.digest, len(d.units), handlers)
        except AggregateNotFoundError:
            record, changed = DirectoryEdition(edition_id=edition_id, edition=d.edition, version=d.version,
                                               digest=d.digest, units=len(d.units), handlers=handlers), True
        if changed:
            try:
                self.save(record)
            except IntegrityError:  # another router instance recorded it at the same moment
                record = self.repository.get(edition_id)
        return record

    # --- opening ---------------------------------------------------------------------------

    def receive(self, requests: Sequence[RequestReceived], now: datetime, workload: Workload,
                open_reports: Mapping[tuple[str, str], list[dict]] | None = None,
                refused: list[tuple[RequestReceived, str]] | None = None, recorded: int | None = None) -> list[Case]:
        """Open, route and assign a case for each new request; a request seen before changes nothing.

        A report with the same phone, area and category as an open case is opened as a duplicate
        of it, and the open case records the link: an open case from ``open_reports`` (the ledger,
        read with the notification it is ``recorded`` up to) or one this router opened that the
        ledger did not have then. All cases of a batch are saved in one
        transaction; when one already exists (a redelivery, or another router instance was first)
        the batch is saved case by case.

        A request whose routing raises goes to triage with why. With ``refused``, one that cannot be
        opened at all is put there with why, to be dead-lettered, and the others are opened: one
        such request once held up its whole batch, read again forever. The store's own errors
        still go up.
        """
        # What the ledger knew before the batch, this router's own cases the ledger may not have yet
        # (the relay records them a moment after they are published), and each case of the batch as
        # it is opened: a second report close behind the first is linked, not opened twice.
        reports = self.recent.with_ledger(requests, open_reports or {}, recorded)
        batch: dict[str, Case] = {}
        cases: list[Case] = []
        listed: set[uuid.UUID] = set()  # an original several reports repeat is saved once
        openable: list[RequestReceived] = []
        for request in requests:
            try:
                group = self._open(request, now, workload, reports, batch)
                cases += [c for c in group if c.id not in listed]
                listed.update(c.id for c in group)
            except PersistenceError:
                raise
            except Exception as error:
                if refused is None:
                    raise
                log.error("request %s cannot be opened (%s); it is dead-lettered", request.request_id,
                          where_it_failed(error))
                refused.append((request, f"{type(error).__name__}: {error}"))
                continue
            openable.append(request)
        if not cases:
            return []
        notified: dict[str, int] = {}  # the last notification of each case saved
        try:
            notified.update(notifications(self.save(*cases)))
            self.recent.keep(reports, notified)
            return cases
        except IntegrityError:
            pass
        # Some case was there already. The failed save drained the aggregates' pending events, so
        # each request is opened afresh and saved alone, skipping those already recorded.
        saved: list[Case] = []
        for request in openable:
            saved.extend(self._open_alone(request, now, workload, reports, notified))
        self.recent.keep(reports, notified)
        return saved

    def _open_alone(self, request: RequestReceived, now: datetime, workload: Workload,
                    open_reports: dict[tuple[str, str], list[dict]], notified: dict[str, int],
                    attempts: int = 3) -> list[Case]:
        """Open and save one request's case, unless it is recorded already.

        A duplicate is saved with the open case it links to, and that case may change between
        loading and saving (its unit answers, a deadline escalates it): the save then fails though
        this request's case is not recorded, so it is opened again on the case as it is now. When
        that keeps failing the error goes up, and the batch is read again: never skipped.
        """
        for _ in range(attempts):
            if request.case_id in self.repository:
                log.info("case %s already recorded: a redelivered request, or another router's", request.case_id)
                # Saved by another router, or by this one unawares (a save retried after its answer
                # was lost): not remembered here, so the store is read back at the next batch.
                self.recent.read_again()
                return []
            group = self._open(request, now, workload, open_reports, {})
            try:
                notified.update(notifications(self.save(*group)))
                return group
            except IntegrityError as error:
                failed = error
        raise failed

    def _open(self, request: RequestReceived, now: datetime, workload: Workload,
              open_reports: dict[tuple[str, str], list[dict]], batch: dict[str, Case]) -> list[Case]:
        """The case for ``request``, routed, or a duplicate linked to its open original (the cases
        to save); a case routed here is added to ``open_reports`` and ``batch`` for the requests after it."""
        if str(request.case_id) in batch:
            # The same request twice in one batch (intake published it again on a retry): a second
            # copy of its case replaced the first in ``batch``, and a repeat after it was linked
            # to that copy, which is never saved: the original never recorded the link.
            return []
        try:
            decision = route(request.address, request.category, self.directory, self.rules)
        except Exception as error:  # noqa: BLE001 - the citizen has their code: the case must exist
            decision = self._unroutable(request, error)
        meta = meta_of(request)
        case = Case(case_id=request.case_id, meta=meta, payload={
            "tracking_code": request.tracking_code, "request_id": str(request.request_id),
            "channel": request.channel, "received_at": request.received_at.isoformat(),
            "category": request.category, "priority": decision.priority, "description": request.description,
            "address": request.address, "citizen": request.citizen.model_dump(mode="json"),
            "is_public": request.is_public, "language": request.language,
        })
        original = self._open_original(request, decision, open_reports)
        if original is not None:
            first: Case | None = batch.get(str(original["case_id"]))
            if first is None:
                try:
                    first = self.repository.get(uuid.UUID(str(original["case_id"])))
                except AggregateNotFoundError:
                    first = None
                else:  # a second repeat in the batch links to this same copy, saved once
                    batch[str(first.id)] = first
            if first is not None and first.is_open and not first.has_seen(request.event_id):
                case.mark_duplicate_of(str(first.id), first.tracking_code, meta)
                first.link_duplicate(str(request.request_id), request.tracking_code, meta,
                                     description=request.description, address=request.address)
                return [case, first]
        # The citizen's days run from receipt, however long the request waited for a router (an
        # outage, a backlog): counted from its opening, a case received in a two-hour outage was
        # given two hours more, and its lateness hidden from escalation and the published rates.
        self._route(case, decision, now, meta, workload, received=min(request.received_at, now))
        if decision.outcome == "routed" and request.citizen.phone:
            open_reports.setdefault((request.citizen.phone, request.category), []).append(
                {"case_id": case.id, "area_code": decision.area_code, "this_batch": True})
            batch[str(case.id)] = case
        return [case]

    def _unroutable(self, request: RequestReceived, error: Exception) -> Decision:
        """Triage at the 1022 centre, with the category's priority and deadlines, for a request whose
        routing raised: it was answered 202 with a tracking code, so its case is opened, not
        dead-lettered where only an operator would find it. Logged by where it failed, without the
        error's text (it may quote the address)."""
        log.error("routing request %s raised %s; it goes to triage", request.request_id, where_it_failed(error))
        return self._triage_after(error, request.category)

    def _triage_after(self, error: Exception, category: str | None, before: str = "") -> Decision:
        """Triage at the 1022 centre, with the category's priority and deadlines, after the routing
        of an address raised."""
        rule = self.rules.categories.get(category or "") or self.rules.fallback
        return Decision.triage(self.directory.centre, self.directory.version,
                               f"{before}the address could not be read automatically ({type(error).__name__}): "
                               "the 1022 centre decides", rule="triage:routing-failed", priority=rule.priority,
                               reach_within=rule.reach_within, resolve_within=rule.resolve_within,
                               rules_version=self.rules.version)

    def _route_or_triage(self, address: str, category: str | None, case_id: uuid.UUID, before: str = "") -> Decision:
        """``route()``, or triage when it raises: a unit's answer is not refused for the address."""
        try:
            return route(address, category, self.directory, self.rules)
        except Exception as error:  # noqa: BLE001 - the answer stands; the centre decides where the case goes
            log.error("routing case %s raised %s; it goes to triage", case_id, where_it_failed(error))
            return self._triage_after(error, category, before)

    @staticmethod
    def _open_original(request: RequestReceived, decision: Decision,
                       open_reports: Mapping[tuple[str, str], list[dict]]) -> dict | None:
        if not request.citizen.phone or decision.outcome != "routed":
            return None
        for report in open_reports.get((request.citizen.phone, request.category), ()):
            if report["area_code"] == decision.area_code and str(report["case_id"]) != str(request.case_id):
                return report
        return None

    def _route(self, case: Case, decision: Decision, now: datetime, meta: dict[str, Any], workload: Workload,
               received: datetime | None = None) -> None:
        """Route or triage ``case``. The unit has its time to take the case from now; the result is
        due ``resolve_within`` after ``received`` (a new case's receipt; a case routed again: now)."""
        if decision.outcome == "triage":
            # The centre has the category's time to reach a unit, from now, to send it to one.
            case.send_to_triage(decision.reason, decision.directory_version, meta, sort_by=now + decision.reach_within)
            return
        case.route_to(unit_ref(decision.unit), area_code=decision.area_code, area_name=decision.area_name,
                      rule=decision.rule, reason=decision.reason, directory_version=decision.directory_version,
                      reach_by=now + decision.reach_within, resolve_by=(received or now) + decision.resolve_within,
                      meta=meta)
        handler = choose_handler(decision.unit, case.category, now, workload.open_cases, workload.last_assigned)
        if handler is None:
            return  # a unit with no handlers: the unit head sees it unassigned; escalation follows
        case.issue_assignment(ids.event_id("assignment", case.id, case.version), {"id": handler.id, "name": handler.name},
                              decision.unit.notify_for(handler), meta, also=[unit_ref(u) for u in decision.also])
        workload.took(handler.id, now)

    # --- deadlines -------------------------------------------------------------------------

    def escalate(self, case_id: uuid.UUID, deadline: str, level: str, now: datetime) -> bool | datetime:
        """Record that a deadline was missed and who now answers for it; False if it no longer matters.

        True also when the case was escalated to ``level`` already: by a timer that saved the event
        and then failed to move its deadline row on (a crash, a lost connection), so the row moves
        on now rather than stopping the chain.

        When, by the case's own deadlines, ``level`` is not due yet, the time it is due: the row was
        read before the relay recorded what moved the deadline (the case routed again, a date the
        unit committed to, possibly by another router), or was set by a router with another
        escalation step."""
        case: Case = self.repository.get(case_id)
        if not case.deadline_missed(deadline):
            return False
        due = case.due_for(deadline, level, self.escalation_step[deadline])
        if due is not None and now < due:
            return due
        if case.escalated_at(deadline, level):
            return True
        meta = {"correlation_id": case.request_id, "causation_id": str(ids.event_id("deadline", case_id, deadline, level)),
                "traceparent": None, "tracestate": None}
        sorting = case.status == "triage"
        reason = ("the 1022 centre did not send the case to a unit in time" if sorting else
                  {"reach": "the unit did not accept the case in time",
                   "resolve": "no result for the citizen by the deadline"}[deadline])
        # The centre is named, with its channels, where it is to be told: a case it is sorting, and
        # any case at the chain's last step (which only the unit's own channels heard of before).
        centre, told = self.directory.centre, sorting or level == "centre"
        case.escalate(deadline, level, f"{reason}; {level.replace('_', ' ')} informed", meta,
                      unit=unit_ref(centre) if told else None, notify=centre.own_channels() if told else ())
        self.save(case)
        return True
