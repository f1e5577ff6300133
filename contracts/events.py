"""Events of the mesh, by topic.

Readers ignore fields they do not know (``extra="ignore"``) and writers only ever add optional
fields, so old readers keep working; ``tests/unit/test_contract_compat.py`` holds us to that.
"""

import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from contracts.envelope import Envelope, utcnow
from contracts.text import CommittedDate, Text, UnitMoment, VietnamDatetime

Channel = Literal["web", "zalo", "app", "phone", "open311"]


class Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Citizen(Part):
    """How to reach the citizen (người dân). Personal data: never logged, masked in oversight."""

    full_name: str | None = None
    phone: str | None = Field(None, description="E.164, e.g. +84901234567")
    email: str | None = None
    zalo_user_id: str | None = None
    app_user_id: str | None = None


# Read as it was written: intake checks what it accepts, and a reader that refused a RequestReceived
# already on the topic would leave a request answered 202 without a case.
class Location(Part):
    """Structured location when the channel has one (the app's GPS, a chosen ward)."""

    latitude: float | None = Field(None, description="Degrees, -90 to 90")
    longitude: float | None = Field(None, description="Degrees, -180 to 180")
    ward_code: Text | None = Field(None, description="GSO code of the ward (phường, xã); at most 32 characters")
    district_code: Text | None = Field(None, description="GSO code of the district (quận, huyện); at most 32 characters")


class Attachment(Part):
    url: str
    media_type: str | None = None
    name: str | None = None


class UnitRef(Part):
    """A receiving unit (đơn vị tiếp nhận): its directory id, name and official GSO code."""

    id: str
    name: str
    admin_code: str | None = None


class HandlerRef(Part):
    """A handling focal point (đầu mối xử lý) of a unit."""

    id: str
    name: str


class NotifyChannel(Part):
    """One way a unit wants to hear of its cases, from the directory: its district service's webhook,
    an e-mail address or a Zalo user of its handler. No address means the notifier's own configuration."""

    channel: Literal["webhook", "email", "zalo"]
    address: str | None = Field(None, description="The webhook URL, e-mail address or Zalo user id")


# --- intake.requests -------------------------------------------------------------------------


class RequestReceived(Envelope):
    """A citizen's request as a channel received it; keyed by ``case_id``."""

    event_type: Literal["RequestReceived"] = "RequestReceived"
    request_id: uuid.UUID
    case_id: uuid.UUID
    tracking_code: str
    channel: Channel
    channel_key: str = Field(description="The channel's own message key: msg_id, call_id, Idempotency-Key")
    received_at: AwareDatetime
    citizen: Citizen
    address: str
    location: Location | None = None
    category: str
    description: str
    is_public: bool = False
    attachments: tuple[Attachment, ...] = ()
    language: Literal["vi", "en"] = "vi"
    received_by: str | None = Field(None, description="Who typed it in for the citizen: operator:<id> or callbot:<id>")


# --- case.events -----------------------------------------------------------------------------


class CaseEventBase(Envelope):
    case_id: uuid.UUID
    tracking_code: str
    version: int = Field(description="The case aggregate's version after this event")


class CaseOpened(CaseEventBase):
    event_type: Literal["CaseOpened"] = "CaseOpened"
    request_id: uuid.UUID
    channel: Channel
    received_at: AwareDatetime
    category: str
    priority: str
    description: str
    address: str
    citizen: Citizen
    is_public: bool
    language: Literal["vi", "en"] = Field("vi", description="The citizen's language, from RequestReceived")


class CaseRouted(CaseEventBase):
    """The case went to a unit; ``rule`` and ``directory_version`` say why, for audit."""

    event_type: Literal["CaseRouted"] = "CaseRouted"
    unit: UnitRef
    area_code: str | None = Field(None, description="GSO code of the district or ward the address resolved to")
    area_name: str | None = None
    rule: str
    reason: str
    directory_version: str
    reach_by: AwareDatetime = Field(description="The unit must have it by then (5 minutes)")
    resolve_by: AwareDatetime = Field(description="The citizen must have a result by then")


class CaseTriaged(CaseEventBase):
    """No unit could be decided: the 1022 centre decides."""

    event_type: Literal["CaseTriaged"] = "CaseTriaged"
    reason: str
    directory_version: str
    sort_by: AwareDatetime | None = Field(
        None, description="The centre must have sent it to a unit by then (the category's time to reach a unit);"
                          " missed, it is escalated as a missed reach deadline")


class AssignmentIssued(CaseEventBase):
    """The case was given to a handler of a unit. Also on ``unit.assignments``, keyed by unit id."""

    event_type: Literal["AssignmentIssued"] = "AssignmentIssued"
    assignment_id: uuid.UUID
    unit: UnitRef
    handler: HandlerRef
    category: str
    priority: str
    description: str
    address: str
    citizen: Citizen
    channel: Channel
    respond_by: AwareDatetime
    resolve_by: AwareDatetime
    notify: tuple[NotifyChannel, ...] = Field((), description="How the unit's handlers hear of it; empty: by webhook")
    also: tuple[UnitRef, ...] = Field((), description="Units told of the case as well, to act with the unit that "
                                                      "holds it (a vulnerable person: the city's social department)")


class CaseAccepted(CaseEventBase):
    event_type: Literal["CaseAccepted"] = "CaseAccepted"
    unit: UnitRef
    handler_id: str | None = None


class CaseDeclined(CaseEventBase):
    event_type: Literal["CaseDeclined"] = "CaseDeclined"
    unit: UnitRef
    reason: str
    corrected_address: str | None = Field(
        None, description="Where the declining unit says the case is: the case's address from here on")


class ProgressReported(CaseEventBase):
    event_type: Literal["ProgressReported"] = "ProgressReported"
    unit: UnitRef
    note: str
    committed_date: VietnamDatetime | None = None


class CaseResolved(CaseEventBase):
    event_type: Literal["CaseResolved"] = "CaseResolved"
    unit: UnitRef
    answer: str


class CaseClosed(CaseEventBase):
    event_type: Literal["CaseClosed"] = "CaseClosed"
    reason: str


class CaseReopened(CaseEventBase):
    event_type: Literal["CaseReopened"] = "CaseReopened"
    reason: str


class CaseEscalated(CaseEventBase):
    event_type: Literal["CaseEscalated"] = "CaseEscalated"
    deadline: Literal["reach", "resolve"]
    level: Literal["unit_head", "centre"]
    reason: str
    unit: UnitRef | None = Field(
        None, description="The 1022 centre, when it is to be told: for a case it has not sorted in time (its unit"
                          " head: the centre's duty head), and at the chain's last step (level centre) for any case")
    notify: tuple[NotifyChannel, ...] = Field(
        (), description="How the unit named in ``unit`` hears of it, its channels in the directory; empty: by webhook")


class CaseMarkedDuplicate(CaseEventBase):
    """This report repeats an open case (same phone, area and category): it follows that case."""

    event_type: Literal["CaseMarkedDuplicate"] = "CaseMarkedDuplicate"
    original_case_id: uuid.UUID
    original_tracking_code: str


class DuplicateLinked(CaseEventBase):
    """A new report was linked to this open case instead of opening another. Its own words and
    address go to the unit that holds the case: a report linked and never read by anyone would
    be lost, however much it added ("now the child is sick too")."""

    event_type: Literal["DuplicateLinked"] = "DuplicateLinked"
    request_id: uuid.UUID
    duplicate_tracking_code: str
    description: str | None = Field(None, description="The linked report's description, as the citizen wrote it")
    address: str | None = Field(None, description="The linked report's address, as given")


CaseEvent = Annotated[
    CaseOpened
    | CaseRouted
    | CaseTriaged
    | AssignmentIssued
    | CaseAccepted
    | CaseDeclined
    | ProgressReported
    | CaseResolved
    | CaseClosed
    | CaseReopened
    | CaseEscalated
    | CaseMarkedDuplicate
    | DuplicateLinked,
    Field(discriminator="event_type"),
]
CASE_EVENT = TypeAdapter(CaseEvent)


# --- unit.responses --------------------------------------------------------------------------


class UnitResponse(Envelope):
    """A unit's answer about a case it holds; keyed by ``case_id``.

    The 1022 centre also answers here for what only it decides: routing a case in triage, or one
    a unit holds to another unit (``route`` with ``target_unit_id``), closing a resolved case, and
    reopening one when the citizen says the result is not enough.
    """

    event_type: Literal["UnitResponse"] = "UnitResponse"
    occurred_at: UnitMoment = Field(default_factory=utcnow)
    response_id: uuid.UUID
    case_id: uuid.UUID
    # Each text has a bound, as a citizen's request has: a note of megabytes was stored in the case's
    # event and then could not be published, which held up every event after it.
    unit_id: Annotated[Text, Field(max_length=200)]
    handler_id: Annotated[Text, Field(max_length=200)] | None = None
    kind: Literal["accept", "decline", "progress", "resolve", "route", "close", "reopen"]
    note: Annotated[Text, Field(max_length=5000)] = ""
    committed_date: CommittedDate | None = None
    corrected_address: Annotated[Text, Field(max_length=500)] | None = Field(
        None, description="With decline: where the case really belongs")
    target_unit_id: Annotated[Text, Field(max_length=200)] | None = Field(
        None, description="With route (the centre only): the unit to take the case")


# --- notify.deliveries -----------------------------------------------------------------------


class DeliveryBase(Envelope):
    delivery_id: uuid.UUID
    case_id: uuid.UUID
    cause_event_id: uuid.UUID
    recipient: Literal["handler", "unit", "citizen"]
    channel: Literal["webhook", "email", "zalo", "sms", "push"]
    attempts: int
    template: str | None = Field(None, description="What the message said: received, routed, resolved, apology, ...")
    note: str | None = Field(None, description="Why this channel, e.g. Zalo's reply window had closed")


class NotificationSent(DeliveryBase):
    event_type: Literal["NotificationSent"] = "NotificationSent"


class NotificationFailed(DeliveryBase):
    event_type: Literal["NotificationFailed"] = "NotificationFailed"
    error: str
    permanent: bool


Delivery = Annotated[NotificationSent | NotificationFailed, Field(discriminator="event_type")]
DELIVERY = TypeAdapter(Delivery)

# --- audit.checkpoints -----------------------------------------------------------------------


class AuditCheckpoint(Envelope):
    """The head of oversight's audit chain at a moment, published for HĐND and MTTQ to keep: a
    later chain that does not pass through it proves that history was rewritten. Keyed by ``audit``."""

    event_type: Literal["AuditCheckpoint"] = "AuditCheckpoint"
    seq: int = Field(description="The number of records in the chain: the sequence number of its head")
    head_hash: str = Field(description="SHA-256 (hex) of the chain up to and including record seq")
    made_at: AwareDatetime


# Every schema committed under contracts/schemas/, by file stem.
SCHEMAS: dict[str, TypeAdapter] = {
    "RequestReceived": TypeAdapter(RequestReceived),
    "CaseEvent": CASE_EVENT,
    "UnitResponse": TypeAdapter(UnitResponse),
    "Delivery": DELIVERY,
    "AuditCheckpoint": TypeAdapter(AuditCheckpoint),
}
