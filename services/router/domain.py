"""The Case aggregate (hồ sơ phản ánh): its lifecycle and invariants, event-sourced, no I/O.

Every event carries the whole payload its contract event needs (``payload``) plus its ``meta``
(correlation, causation and W3C trace context), so the outbox relay can publish it without
loading the case again.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts.text import VIETNAM

OPEN_STATUSES = frozenset({"received", "routed", "triage", "accepted", "in_progress", "reopened"})
# The escalation chain: who answers for a missed deadline, in order.
LEVELS = ("handler", "unit_head", "centre")
# How long each level of the escalation chain has before the next is told (the router's defaults).
ESCALATION_STEP = {"reach": timedelta(minutes=10), "resolve": timedelta(days=1)}


def _same_moment(a: str, b: str) -> bool:
    """Whether two ISO times are one instant, in whatever zones they are written."""
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


class CaseError(Exception):
    """A command the case refuses in its present state."""


class NotYourCase(CaseError):
    """Only the unit that holds a case may answer for it."""


class Case(Aggregate):
    @staticmethod
    def create_id(case_id: UUID, **_: Any) -> UUID:
        """The id comes from the request's key, so a retried request finds the same case."""
        return case_id

    @event("Opened")
    def __init__(self, case_id: UUID, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.tracking_code: str = payload["tracking_code"]
        self.request_id = str(payload["request_id"])
        self.channel: str = payload["channel"]
        self.category: str = payload["category"]
        self.priority: str = payload["priority"]
        self.description: str = payload["description"]
        self.address: str = payload["address"]
        self.citizen: dict[str, Any] = payload["citizen"]
        self.is_public: bool = payload["is_public"]
        self.language: str = payload.get("language", "vi")
        self.received_at: str | None = payload.get("received_at")
        self.status = "received"
        self.unit: dict[str, Any] | None = None
        self.handler: dict[str, Any] | None = None
        self.tried_units: list[str] = []
        self.reach_by: str | None = None
        self.resolve_by: str | None = None
        self.escalations: dict[str, str] = {}  # deadline ("reach" | "resolve") → level reached
        self.duplicates: list[str] = []
        self.decisions: list[dict[str, Any]] = []
        # Ids of the messages that caused this case's events: a redelivered message is recognised.
        self.causes: list[str | None] = [meta.get("causation_id")]

    # --- routing ---------------------------------------------------------------------------

    def has_seen(self, message_id: object) -> bool:
        return str(message_id) in self.causes

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def deadline_missed(self, deadline: str) -> bool:
        """Whether a passed deadline still matters: reach until the unit accepts (in triage, until the
        centre sends the case to a unit), resolve until a result."""
        if deadline == "reach":
            return self.status in ("routed", "reopened") or (self.status == "triage" and self.reach_by is not None)
        return self.status in ("routed", "accepted", "in_progress", "reopened")

    def escalated_at(self, deadline: str, level: str) -> bool:
        return LEVELS.index(self.escalations.get(deadline, "handler")) >= LEVELS.index(level)

    def due_for(self, deadline: str, level: str, step: timedelta) -> datetime | None:
        """When ``level`` is to be told of a missed ``deadline``, by the case's own deadlines: the
        unit head when it passes, the centre a step later."""
        by = self.reach_by if deadline == "reach" else self.resolve_by
        if by is None:
            return None
        moment = datetime.fromisoformat(by)
        if moment.tzinfo is None:  # a date as a unit wrote it: Vietnam's, as the contract reads it
            moment = moment.replace(tzinfo=VIETNAM)
        return moment + step * (LEVELS.index(level) - 1)

    def route_to(self, unit: dict[str, Any], *, area_code: str | None, area_name: str | None, rule: str,
                 reason: str, directory_version: str, reach_by: datetime, resolve_by: datetime,
                 meta: dict[str, Any]) -> None:
        if not self.is_open:
            raise CaseError(f"case is {self.status}; it cannot be routed")
        self._routed(payload={"unit": unit, "area_code": area_code, "area_name": area_name, "rule": rule,
                              "reason": reason, "directory_version": directory_version,
                              "reach_by": reach_by.isoformat(), "resolve_by": resolve_by.isoformat(),
                              "tracking_code": self.tracking_code}, meta=meta)

    @event("Routed")
    def _routed(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.status = "routed"
        self.unit = payload["unit"]
        self.handler = None
        self.tried_units.append(payload["unit"]["id"])
        self.reach_by, self.resolve_by = payload["reach_by"], payload["resolve_by"]
        self.escalations = {}
        self.decisions.append({"rule": payload["rule"], "unit": payload["unit"]["id"],
                               "directory_version": payload["directory_version"]})

    def send_to_triage(self, reason: str, directory_version: str, meta: dict[str, Any],
                       sort_by: datetime | None = None) -> None:
        """To the 1022 centre, which is to send it to a unit by ``sort_by``; missed, that climbs
        the chain as a missed reach deadline (the case reached no unit in time)."""
        self._triaged(payload={"reason": reason, "directory_version": directory_version,
                               "tracking_code": self.tracking_code,
                               **({"sort_by": sort_by.isoformat()} if sort_by else {})}, meta=meta)

    @event("Triaged")
    def _triaged(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.status = "triage"
        # The centre's time to sort it is the reach deadline now, its chain started afresh. An
        # older router's triage has none: nothing to escalate, as before.
        self.reach_by = payload.get("sort_by")
        self.escalations.pop("reach", None)
        self.decisions.append({"rule": "triage", "unit": None, "directory_version": payload["directory_version"]})

    def issue_assignment(self, assignment_id: UUID, handler: dict[str, Any], notify: Sequence[dict[str, Any]],
                         meta: dict[str, Any], also: Sequence[dict[str, Any]] = ()) -> None:
        """The case to ``handler``; ``also``, the units told of it as well (its rule's)."""
        if self.unit is None or self.status not in ("routed", "reopened"):
            raise CaseError("only a routed case can be assigned")
        self._assignment_issued(payload={
            "assignment_id": str(assignment_id), "unit": self.unit, "handler": handler,
            "category": self.category, "priority": self.priority, "description": self.description,
            "address": self.address, "citizen": self.citizen, "channel": self.channel,
            "respond_by": self.reach_by, "resolve_by": self.resolve_by, "tracking_code": self.tracking_code,
            "notify": list(notify), "also": list(also),
        }, meta=meta)

    @event("AssignmentIssued")
    def _assignment_issued(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.handler = payload["handler"]

    # --- the unit's answers ----------------------------------------------------------------

    def _check_holder(self, unit_id: str) -> None:
        if self.unit is None or self.unit["id"] != unit_id:
            raise NotYourCase(f"unit {unit_id} does not hold case {self.id}")

    def accept(self, unit_id: str, handler_id: str | None, meta: dict[str, Any]) -> None:
        """The unit takes the case up. Said again, or after a first progress report (which took it
        up), it is already so: nothing is recorded, and the unit's answer is not refused."""
        self._check_holder(unit_id)
        if self.status in ("accepted", "in_progress"):
            return
        if self.status not in ("routed", "reopened"):
            raise CaseError(f"case is {self.status}; it cannot be accepted")
        self._accepted(payload={"unit": self.unit, "handler_id": handler_id, "tracking_code": self.tracking_code}, meta=meta)

    @event("Accepted")
    def _accepted(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.status = "accepted"

    def decline(self, unit_id: str, reason: str, meta: dict[str, Any], corrected_address: str | None = None) -> None:
        """The unit will not take the case; ``corrected_address``, where it says the case really is,
        becomes the case's address: its next unit's handler is sent there, not to the old one. Also
        once the unit has reported progress: a first "đang xem" without an accept, or work that showed
        the case is not the unit's, once left it no way to hand the case back."""
        self._check_holder(unit_id)
        if self.status not in ("routed", "accepted", "in_progress", "reopened"):
            raise CaseError(f"case is {self.status}; it cannot be declined")
        correction = {"corrected_address": corrected_address} if corrected_address else {}
        self._declined(payload={"unit": self.unit, "reason": reason, "tracking_code": self.tracking_code,
                                **correction}, meta=meta)

    @event("Declined")
    def _declined(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.status = "received"
        self.handler = None
        self.address = payload.get("corrected_address") or self.address

    def report_progress(self, unit_id: str, note: str, committed_date: str | None, meta: dict[str, Any]) -> None:
        self._check_holder(unit_id)
        if self.status not in ("accepted", "in_progress", "reopened", "routed"):
            raise CaseError(f"case is {self.status}; no progress can be reported")
        self._progress(payload={"unit": self.unit, "note": note, "committed_date": committed_date,
                                "tracking_code": self.tracking_code}, meta=meta)

    @event("ProgressReported")
    def _progress(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.status = "in_progress"
        committed = payload.get("committed_date")
        if committed and not (self.resolve_by and _same_moment(committed, self.resolve_by)):
            # The unit's own date is the deadline now, and a miss of it climbs the chain afresh. The
            # same date said again (a routine report) changes nothing: it restarted the chain, so a
            # missed date reached the unit head again and again, and the centre never.
            self.resolve_by = committed
            self.escalations.pop("resolve", None)

    def resolve(self, unit_id: str, answer: str, meta: dict[str, Any]) -> None:
        self._check_holder(unit_id)
        if self.status not in ("accepted", "in_progress", "reopened", "routed"):
            raise CaseError(f"case is {self.status}; it cannot be resolved")
        self._resolved(payload={"unit": self.unit, "answer": answer, "tracking_code": self.tracking_code}, meta=meta)

    @event("Resolved")
    def _resolved(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.status = "resolved"

    def close(self, reason: str, meta: dict[str, Any]) -> None:
        if self.status != "resolved":
            raise CaseError(f"case is {self.status}; only a resolved case is closed")
        self._closed(payload={"reason": reason, "tracking_code": self.tracking_code}, meta=meta)

    @event("Closed")
    def _closed(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.status = "closed"

    def reopen(self, reason: str, meta: dict[str, Any]) -> None:
        if self.status not in ("resolved", "closed"):
            raise CaseError(f"case is {self.status}; only a resolved or closed case is reopened")
        self._reopened(payload={"reason": reason, "tracking_code": self.tracking_code}, meta=meta)

    @event("Reopened")
    def _reopened(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.status = "reopened"

    def escalate(self, deadline: str, level: str, reason: str, meta: dict[str, Any],
                 unit: dict[str, Any] | None = None, notify: Sequence[dict[str, Any]] = ()) -> None:
        """``unit``: who answers for it when no unit holds the case (the centre, for its triage), told
        on ``notify``, its channels."""
        if not self.is_open:
            raise CaseError(f"case is {self.status}; nothing to escalate")
        named = {"unit": unit, **({"notify": list(notify)} if notify else {})} if unit else {}
        self._escalated(payload={"deadline": deadline, "level": level, "reason": reason,
                                 "tracking_code": self.tracking_code, **named}, meta=meta)

    @event("Escalated")
    def _escalated(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.escalations[payload["deadline"]] = payload["level"]

    def mark_duplicate_of(self, original_case_id: str, original_tracking_code: str, meta: dict[str, Any]) -> None:
        self._marked_duplicate(payload={"original_case_id": original_case_id,
                                        "original_tracking_code": original_tracking_code,
                                        "tracking_code": self.tracking_code}, meta=meta)

    @event("MarkedDuplicate")
    def _marked_duplicate(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.status = "duplicate"

    def link_duplicate(self, request_id: str, tracking_code: str, meta: dict[str, Any], description: str = "",
                       address: str = "") -> None:
        if request_id in self.duplicates:
            return
        self._duplicate(payload={"request_id": request_id, "duplicate_tracking_code": tracking_code,
                                 "tracking_code": self.tracking_code, "description": description,
                                 "address": address}, meta=meta)

    @event("DuplicateLinked")
    def _duplicate(self, payload: dict[str, Any], meta: dict[str, Any]) -> None:
        self.causes.append(meta.get("causation_id"))
        self.duplicates.append(payload["request_id"])


class DirectoryEdition(Aggregate):
    """The unit directory (danh bạ đơn vị) of one edition, as the router installed it over time.

    Each version a router starts with is recorded once, with a digest of its contents, so every
    routing decision's ``directory_version`` points at an installed, recorded directory.
    """

    @staticmethod
    def create_id(edition_id: UUID, **_: Any) -> UUID:
        return edition_id

    @event("Installed")
    def __init__(self, edition_id: UUID, edition: str, version: str, digest: str, units: int, handlers: int) -> None:
        self.edition = edition
        self.installs: list[dict[str, Any]] = []
        self._note(version, digest, units, handlers)

    def install(self, version: str, digest: str, units: int, handlers: int) -> bool:
        """Record a version unless it is the one installed now; True when it was recorded."""
        if self.installs and self.installs[-1]["digest"] == digest:
            return False
        self._version_installed(version=version, digest=digest, units=units, handlers=handlers)
        return True

    @event("VersionInstalled")
    def _version_installed(self, version: str, digest: str, units: int, handlers: int) -> None:
        self._note(version, digest, units, handlers)

    def _note(self, version: str, digest: str, units: int, handlers: int) -> None:
        self.installs.append({"version": version, "digest": digest, "units": units, "handlers": handlers,
                              "at": self.modified_on.isoformat()})


# Aggregate event name → contract event type on case.events.
CONTRACT_TYPES = {
    "Opened": "CaseOpened", "Routed": "CaseRouted", "Triaged": "CaseTriaged",
    "AssignmentIssued": "AssignmentIssued", "Accepted": "CaseAccepted", "Declined": "CaseDeclined",
    "ProgressReported": "ProgressReported", "Resolved": "CaseResolved", "Closed": "CaseClosed",
    "Reopened": "CaseReopened", "Escalated": "CaseEscalated", "DuplicateLinked": "DuplicateLinked",
    "MarkedDuplicate": "CaseMarkedDuplicate",
}
