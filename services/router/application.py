"""The router's use cases on the event store: get → command → save, nothing else.

``eventsourcing`` is synchronous (psycopg 3); the Kafka handlers call these methods in a worker
thread so the event loop never blocks.
"""

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from contracts import ids
from contracts.events import RequestReceived, UnitResponse
from services.router.directory import Directory
from services.router.domain import Case, CaseError
from services.router.routing import Decision, choose_handler, route

log = logging.getLogger(__name__)


def meta_of(message: RequestReceived | UnitResponse, causation: uuid.UUID | None = None) -> dict[str, Any]:
    return {"correlation_id": str(message.correlation_id), "causation_id": str(causation or message.event_id),
            "traceparent": message.traceparent, "tracestate": message.tracestate}


def unit_ref(unit: Any) -> dict[str, Any]:
    return {"id": unit.id, "name": unit.name, "admin_code": unit.admin_code}


class CaseDesk(Application):
    """Bàn điều phối: where cases are opened, routed, assigned and answered."""

    name = "cases"

    def __init__(self, directory: Directory, env: dict[str, str] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(env)
        self.directory = directory
        self.clock = clock
        # Handler workload as seen by this process; a balancing hint, never a correctness rule.
        self.open_by_handler: dict[str, int] = {}
        self.last_assigned: dict[str, datetime] = {}

    # --- opening ---------------------------------------------------------------------------

    def receive(self, requests: Sequence[RequestReceived], now: datetime) -> list[Case]:
        """Open, route and assign a case for each new request; a request seen before changes nothing.

        All cases of a batch are saved in one transaction; when one of them already exists (a
        redelivery, or another router instance was first) the batch is saved case by case.
        """
        cases = [self._open(r, now) for r in requests]
        if not cases:
            return []
        try:
            self.save(*cases)
            return cases
        except IntegrityError:
            saved = []
            for case in cases:
                try:
                    self.save(case)
                    saved.append(case)
                except IntegrityError:
                    log.info("case %s already open: redelivered request", case.id)
            return saved

    def _open(self, request: RequestReceived, now: datetime) -> Case:
        decision = route(request.address, request.category, self.directory)
        meta = meta_of(request)
        case = Case(case_id=request.case_id, meta=meta, payload={
            "tracking_code": request.tracking_code, "request_id": str(request.request_id),
            "channel": request.channel, "received_at": request.received_at.isoformat(),
            "category": request.category, "priority": decision.priority, "description": request.description,
            "address": request.address, "citizen": request.citizen.model_dump(mode="json"),
            "is_public": request.is_public,
        })
        self._route(case, decision, now, meta)
        return case

    def _route(self, case: Case, decision: Decision, now: datetime, meta: dict[str, Any]) -> None:
        if decision.outcome == "triage":
            case.send_to_triage(decision.reason, decision.directory_version, meta)
            return
        case.route_to(unit_ref(decision.unit), area_code=decision.area_code, area_name=decision.area_name,
                      rule=decision.rule, reason=decision.reason, directory_version=decision.directory_version,
                      reach_by=now + decision.reach_within, resolve_by=now + decision.resolve_within, meta=meta)
        handler = choose_handler(decision.unit, case.category, now, self.open_by_handler, self.last_assigned)
        if handler is None:
            return  # nobody on duty with the skill: the unit head sees it unassigned; escalation follows
        case.issue_assignment(ids.event_id("assignment", case.id, case.version), {"id": handler.id, "name": handler.name}, meta)
        self.open_by_handler[handler.id] = self.open_by_handler.get(handler.id, 0) + 1
        self.last_assigned[handler.id] = now

    # --- the unit's answers ----------------------------------------------------------------

    def answer(self, responses: Iterable[UnitResponse], now: datetime) -> list[tuple[UnitResponse, str]]:
        """Apply units' responses; returns those refused, with why (they are not retried)."""
        refused: list[tuple[UnitResponse, str]] = []
        for response in responses:
            try:
                case: Case = self.repository.get(response.case_id)
            except Exception as error:  # noqa: BLE001 - an unknown case id is the sender's mistake
                if type(error).__name__ == "AggregateNotFoundError":
                    refused.append((response, f"no case {response.case_id}"))
                    continue
                raise
            if case.has_seen(response.event_id):
                continue
            meta = meta_of(response)
            try:
                self._apply(case, response, now, meta)
            except CaseError as error:
                refused.append((response, str(error)))
                continue
            self.save(case)
        return refused

    def _apply(self, case: Case, response: UnitResponse, now: datetime, meta: dict[str, Any]) -> None:
        if response.kind == "accept":
            case.accept(response.unit_id, response.handler_id, meta)
        elif response.kind == "progress":
            committed = response.committed_date.isoformat() if response.committed_date else None
            case.report_progress(response.unit_id, response.note, committed, meta)
        elif response.kind == "resolve":
            case.resolve(response.unit_id, response.note, meta)
        elif response.kind == "decline":
            case.decline(response.unit_id, response.note, meta)
            self._route(case, self._reroute(case, response), now, meta)

    def _reroute(self, case: Case, response: UnitResponse) -> Decision:
        """After a decline: the corrected address if the unit gave one and it leads elsewhere,
        otherwise the 1022 centre decides (never back to a unit that already declined)."""
        if response.corrected_address:
            decision = route(response.corrected_address, case.category, self.directory)
            if decision.outcome == "routed" and decision.unit.id not in case.tried_units:
                return decision
        centre = self.directory.centre
        return Decision.triage(centre, self.directory.version,
                               f"declined by {response.unit_id}: {response.note}".strip())
