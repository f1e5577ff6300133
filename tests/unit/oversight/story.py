"""Cases told as the router would publish them: contract events for one citizen's request, step
by step, so a test reads like what happened to it. Pure: publishing and projecting are the caller's."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import ids
from contracts.events import (AssignmentIssued, CaseAccepted, CaseClosed, CaseDeclined, CaseEscalated, CaseOpened,
                              CaseReopened, CaseResolved, CaseRouted, CaseTriaged, Citizen, DuplicateLinked,
                              HandlerRef, NotificationFailed, NotificationSent, ProgressReported, UnitRef)

QUAN_1 = UnitRef(id="hcmc-2021/760", name="UBND Quận 1", admin_code="760")
PHU_NHUAN = UnitRef(id="hcmc-2021/768", name="UBND Quận Phú Nhuận", admin_code="768")


class CaseStory:
    """One request's life. Each step adds the event the router would publish, a few minutes on."""

    def __init__(self, *, name: str = "Nguyễn Thị Hoa", phone: str = "+84903123456", is_public: bool = True,
                 category: str = "essential_supplies", received_at: datetime | None = None, key: str | None = None,
                 description: str = "Gia đình 5 người đang cách ly, hết gạo.",
                 address: str = "12 Nguyễn Văn Trỗi, Phường 12"):
        request = ids.request_id("web", key or str(uuid.uuid4()))
        self.request_id, self.case_id, self.tracking_code = request, ids.case_id(request), ids.tracking_code(request)
        self.citizen = Citizen(full_name=name, phone=phone, email="hoa@example.vn")
        self.category, self.is_public = category, is_public
        self.description, self.address = description, address
        self.received_at = received_at or datetime.now(UTC) - timedelta(hours=1)
        self.at = self.received_at
        self.unit: UnitRef | None = None
        self.events: list[Any] = []
        self.deliveries: list[Any] = []

    def _add(self, model: type, minutes: float, **fields: Any) -> "CaseStory":
        version = len(self.events) + 1
        self.at += timedelta(minutes=minutes)
        self.events.append(model(event_id=ids.event_id("case", self.case_id, version), correlation_id=self.request_id,
                                 producer="router", case_id=self.case_id, tracking_code=self.tracking_code,
                                 version=version, occurred_at=self.at, **fields))
        return self

    def wait(self, **delta: float) -> "CaseStory":
        """Time passes before the next step (``days=6``: past the 5-day deadline)."""
        self.at += timedelta(**delta)
        return self

    def opened(self) -> "CaseStory":
        return self._add(CaseOpened, 0.05, request_id=self.request_id, channel="web", received_at=self.received_at,
                         category=self.category, priority="normal", description=self.description,
                         address=self.address, citizen=self.citizen, is_public=self.is_public)

    def routed(self, unit: UnitRef = QUAN_1, minutes: float = 2, *, fresh: bool = False) -> "CaseStory":
        """To ``unit``, its deadlines counted from receipt, or from now when ``fresh`` (a reroute's)."""
        self.unit = unit
        start = self.at + timedelta(minutes=minutes) if fresh else self.received_at
        return self._add(CaseRouted, minutes, unit=unit, area_code=unit.admin_code, area_name=unit.name.removeprefix("UBND "),
                         rule="address", reason="địa chỉ thuộc địa bàn", directory_version="hcmc-2021.1",
                         reach_by=start + timedelta(minutes=5), resolve_by=start + timedelta(days=5))

    def assigned(self) -> "CaseStory":
        assert self.unit is not None
        self._add(AssignmentIssued, 0.1, assignment_id=uuid.uuid4(), unit=self.unit,
                  handler=HandlerRef(id=f"{self.unit.id}/h01", name="Trần Thị Thảo"), category=self.category,
                  priority="normal", description="Gia đình 5 người đang cách ly, hết gạo.", address="12 Nguyễn Văn Trỗi",
                  citizen=self.citizen, channel="web", respond_by=self.received_at + timedelta(minutes=5),
                  resolve_by=self.received_at + timedelta(days=5))
        return self.delivered("handler", "webhook")

    def accepted(self, minutes: float = 30) -> "CaseStory":
        return self._add(CaseAccepted, minutes, unit=self.unit, handler_id=f"{self.unit.id}/h01")

    def progress(self, minutes: float = 60, committed_date: datetime | None = None) -> "CaseStory":
        return self._add(ProgressReported, minutes, unit=self.unit, note="Đang xác minh hộ gia đình",
                         committed_date=committed_date)

    def resolved(self, after_days: float = 1, answer: str = "Đã trao 20 kg gạo và thực phẩm.") -> "CaseStory":
        self.at = max(self.at, self.received_at + timedelta(days=after_days) - timedelta(minutes=1))
        self._add(CaseResolved, 1, unit=self.unit, answer=answer)
        return self.delivered("citizen", "sms")

    def closed(self) -> "CaseStory":
        return self._add(CaseClosed, 60, reason="người dân xác nhận")

    def reopened(self) -> "CaseStory":
        return self._add(CaseReopened, 60, reason="chưa nhận đủ")

    def triaged(self, sort_within: timedelta | None = None) -> "CaseStory":
        """To the centre's triage; ``sort_within``: its time to send the case to a unit (none: an older router's)."""
        sort_by = self.at + timedelta(minutes=1) + sort_within if sort_within else None
        return self._add(CaseTriaged, 1, reason="địa chỉ không rõ", directory_version="hcmc-2021.1", sort_by=sort_by)

    def declined(self, corrected_address: str | None = None) -> "CaseStory":
        return self._add(CaseDeclined, 10, unit=self.unit, reason="không thuộc địa bàn",
                         corrected_address=corrected_address)

    def escalated(self, deadline: str = "resolve", level: str = "unit_head") -> "CaseStory":
        return self._add(CaseEscalated, 10, deadline=deadline, level=level, reason="quá hạn")

    def linked_duplicate(self) -> "CaseStory":
        return self._add(DuplicateLinked, 5, request_id=uuid.uuid4(), duplicate_tracking_code="ABCDE-FGHJK")

    def delivered(self, recipient: str, channel: str, ok: bool = True) -> "CaseStory":
        cause = self.events[-1]
        n = len(self.deliveries) + 1
        fields = dict(event_id=ids.event_id("delivery-event", self.case_id, n), correlation_id=self.request_id,
                      producer="notifier", delivery_id=ids.event_id("delivery", self.case_id, n), case_id=self.case_id,
                      cause_event_id=cause.event_id, recipient=recipient, channel=channel, attempts=1,
                      occurred_at=self.at + timedelta(seconds=2), template=f"after-{cause.event_type}")
        self.deliveries.append(NotificationSent(**fields) if ok else
                               NotificationFailed(**fields, error="gateway timeout", permanent=False))
        return self

    def bodies(self) -> list[dict[str, Any]]:
        """Case events then deliveries, in their JSON form (what Kafka carries)."""
        return [e.model_dump(mode="json") for e in self.events + self.deliveries]
