"""Case events as the router publishes them, for the notifier's tests (unit and integration)."""

import uuid
from datetime import UTC, datetime, timedelta

from contracts import ids
from contracts.events import (AssignmentIssued, CaseDeclined, CaseEscalated, CaseMarkedDuplicate, CaseOpened,
                              CaseResolved, CaseRouted, CaseTriaged, Citizen, DuplicateLinked, HandlerRef,
                              NotifyChannel, ProgressReported, UnitRef)

UNIT = UnitRef(id="hcm-q-phu-nhuan", name="UBND Quận Phú Nhuận", admin_code="768")
HANDLER = HandlerRef(id="pn-01", name="Nguyễn Văn An")
# A unit's answer as units write them: longer than any SMS budget holds.
LONG_ANSWER = (
    "Ngày 25/11/2026, UBND Phường 12 đã phối hợp với Hội Liên hiệp Phụ nữ và Ban điều hành khu phố 3 đến tận nhà "
    "bà Trần Thị Bích tại 12 Nguyễn Văn Trỗi để kiểm tra hoàn cảnh gia đình. Qua xác minh, hộ có 4 nhân khẩu, trong "
    "đó có 2 trẻ em và 1 người cao tuổi, thu nhập bị ảnh hưởng do dịch bệnh. Phường đã trao 20kg gạo, 30 quả trứng, "
    "5 thùng mì và 500.000 đồng tiền mặt từ Quỹ Vì người nghèo, đồng thời lập hồ sơ đề nghị Quận xét hỗ trợ theo "
    "Nghị quyết 68/NQ-CP. Kết quả xét duyệt sẽ được thông báo trong 10 ngày làm việc. Mọi thắc mắc xin liên hệ cán bộ "
    "Lao động - Thương binh và Xã hội phường, điện thoại 028 3844 1234, trong giờ hành chính.")


class Story:
    """One case's events in order, each with the next version and a stable id."""

    def __init__(self, channel: str = "web", citizen: Citizen | None = None, language: str = "vi",
                 received_at: datetime | None = None, is_public: bool = False):
        self.case_id = uuid.uuid4()
        self.tracking_code = ids.tracking_code(self.case_id)
        self.channel, self.language, self.is_public = channel, language, is_public
        self.citizen = citizen if citizen is not None else Citizen(full_name="Trần Thị Bích", phone="+84903123456")
        self.received_at = received_at or datetime.now(UTC)
        self.version = 0

    def _common(self) -> dict:
        self.version += 1
        return {"event_id": ids.event_id("case", self.case_id, self.version), "correlation_id": self.case_id,
                "producer": "router", "case_id": self.case_id, "tracking_code": self.tracking_code,
                "version": self.version}

    def opened(self) -> CaseOpened:
        return CaseOpened(**self._common(), request_id=uuid.uuid4(), channel=self.channel, received_at=self.received_at,
                          category="essential_supplies", priority="high", description="Hết gạo.",
                          address="12 Nguyễn Văn Trỗi, Phường 12, Quận Phú Nhuận", citizen=self.citizen,
                          is_public=self.is_public, language=self.language)

    def routed(self, unit: UnitRef = UNIT) -> CaseRouted:
        return CaseRouted(**self._common(), unit=unit, rule="district", reason="address", directory_version="t",
                          reach_by=self.received_at + timedelta(minutes=5), resolve_by=self.received_at + timedelta(days=5))

    def assigned(self, notify: tuple[NotifyChannel, ...] = (), unit: UnitRef = UNIT,
                 also: tuple[UnitRef, ...] = ()) -> AssignmentIssued:
        return AssignmentIssued(**self._common(), assignment_id=uuid.uuid4(), unit=unit, handler=HANDLER,
                                category="essential_supplies", priority="high", description="Hết gạo.",
                                address="12 Nguyễn Văn Trỗi", citizen=self.citizen, channel=self.channel,
                                respond_by=self.received_at + timedelta(minutes=5),
                                resolve_by=self.received_at + timedelta(days=5), notify=notify, also=also)

    def progress(self, committed_date: datetime | None) -> ProgressReported:
        return ProgressReported(**self._common(), unit=UNIT, note="Đang xử lý.", committed_date=committed_date)

    def escalated(self, deadline: str = "resolve", level: str = "unit_head",
                  unit: UnitRef | None = None, notify: tuple[NotifyChannel, ...] = ()) -> CaseEscalated:
        return CaseEscalated(**self._common(), deadline=deadline, level=level, reason="late", unit=unit, notify=notify)

    def resolved(self, answer: str = "Đã hỗ trợ 20kg gạo.") -> CaseResolved:
        return CaseResolved(**self._common(), unit=UNIT, answer=answer)

    def declined(self) -> CaseDeclined:
        return CaseDeclined(**self._common(), unit=UNIT, reason="không thuộc địa bàn")

    def triaged(self) -> CaseTriaged:
        return CaseTriaged(**self._common(), reason="the unit declined; no corrected address", directory_version="t")

    def linked(self, description: str | None = "Nay cháu bé bị sốt, cần thêm thuốc.",
               address: str | None = "12 Nguyễn Văn Trỗi, P.12") -> DuplicateLinked:
        """A repeat report linked to this case, with its own words (None: as older routers wrote it)."""
        request = uuid.uuid4()
        return DuplicateLinked(**self._common(), request_id=request, duplicate_tracking_code=ids.tracking_code(request),
                               description=description, address=address)

    def duplicate_of(self, original: "Story") -> CaseMarkedDuplicate:
        return CaseMarkedDuplicate(**self._common(), original_case_id=original.case_id,
                                   original_tracking_code=original.tracking_code)
