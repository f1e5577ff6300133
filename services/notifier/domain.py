"""Who hears what about which event, on which channel, in which words (pure: no I/O).

Handlers (đầu mối xử lý) hear of a new assignment and of an escalation on their unit's channels
from the directory (``AssignmentIssued.notify``). Citizens hear, on the channel they came from,
that their request was received, routed, resolved, and an apology when a deadline slips.
An SMS is written as it is sent, within its budget of segments, and a Zalo message within 2,000
characters: a unit's long answer or a citizen's long description is cut short there
(:mod:`services.notifier.fitting`); every other channel carries the whole text.

The notifier remembers what it needs of a case in a :class:`CaseRecord` — the citizen's contact
above all, because only ``CaseOpened`` carries it. A record applies each case event once, in
order (by the case's version), and the deliveries an event yields are stored in the same
transaction as the record: a redelivered event yields nothing new.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from contracts import categories, ids, topics
from services.notifier import fitting, templates
from services.notifier.templates import render, when

CHANNEL_NAMES = {"webhook": "webhook", "email": "e-mail", "zalo": "Zalo", "sms": "SMS", "push": "app push"}


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient on one channel, for one event. Its id is its delivery key:
    the same event always yields the same id, which providers receive as ``Idempotency-Key``."""

    delivery_id: UUID
    case_id: UUID
    cause_event_id: UUID
    correlation_id: UUID
    recipient: str  # handler | unit | citizen
    channel: str  # webhook | email | zalo | sms | push
    target: str  # URL, e-mail address, phone or user id: personal data for citizens, never logged
    template: str
    subject: str
    text: str
    payload: dict[str, Any]  # the causing event as JSON: the webhook's body, the dead letter's value
    source_topic: str
    traceparent: str | None = None
    note: str | None = None  # why this channel, when it is not the obvious one
    undeliverable: str | None = None  # why it cannot be sent at all: recorded as failed, never tried
    unit_id: str | None = None  # the unit a webhook goes to: it is signed with that unit's key


@dataclass(frozen=True)
class Policy:
    """What the planning needs of the configuration."""

    channels: frozenset[str]
    unit_webhook_url: str
    zalo_reply_window: timedelta
    sms_max_segments: int = 3
    sms_ascii: bool = False
    public_lookup_url: str = ""  # with {code}: where a public request's answer can be read whole


@dataclass
class CaseRecord:
    """What the notifier knows of one case. Holds the citizen's contact: personal data."""

    version: int = 0
    tracking_code: str | None = None
    channel: str | None = None
    citizen: dict[str, Any] = field(default_factory=dict)
    is_public: bool = False  # the citizen let the request be public: only then does a public page show its answer
    language: str = "vi"
    last_heard_at: str | None = None  # the citizen's last message we know of, for Zalo's window
    unit: dict[str, Any] | None = None
    handler: dict[str, Any] | None = None
    notify: list[dict[str, Any]] = field(default_factory=list)
    resolve_by: str | None = None
    # When the routing gave the case's result to be due: a unit's committed date before it is no
    # lateness to apologise for, however often the unit moves it.
    due_by: str | None = None
    apologised: bool = False
    # Channel → until when it is passed over for this citizen (ISO time): it refused every try of
    # an earlier message, which went on by the next route (remember_refused).
    refused: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CaseRecord":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def plan(record: CaseRecord, event: Any, policy: Policy, now: datetime) -> list[Delivery]:
    """Apply one case event to its record and return the deliveries it calls for.

    An event the record has already applied (its version is not newer) calls for nothing.
    """
    if event.version <= record.version:
        return []
    record.version = event.version
    record.tracking_code = event.tracking_code
    kind = event.event_type
    if kind == "CaseOpened":
        record.channel, record.citizen = event.channel, event.citizen.model_dump(exclude_none=True)
        record.language, record.is_public = getattr(event, "language", "vi"), event.is_public
        record.last_heard_at = event.received_at.isoformat()
        return _to_citizen(record, event, policy, now, "received")
    if kind == "CaseRouted":
        # A unit the centre took the case from (it held it, and did not decline) is told, else its
        # handler works on and every answer it sends is refused as from a unit that does not hold it.
        withdrawn = _withdrawn(record, event, policy) if record.unit and record.unit["id"] != event.unit.id else []
        record.unit, record.handler, record.notify = event.unit.model_dump(), None, []
        record.resolve_by = record.due_by = event.resolve_by.isoformat()
        record.apologised = False
        return withdrawn + _to_citizen(record, event, policy, now, "routed")
    if kind in ("CaseDeclined", "CaseTriaged"):
        # The unit no longer holds the case: what happens to it next (an escalation, a linked
        # report with a citizen's words) is not its business, until it is routed to it again.
        record.unit, record.handler, record.notify = None, None, []
        return []
    if kind == "AssignmentIssued":
        record.unit, record.handler = event.unit.model_dump(), event.handler.model_dump()
        record.notify = [n.model_dump() for n in getattr(event, "notify", ())]
        record.resolve_by = record.due_by = event.resolve_by.isoformat()
        return []  # the handler hears of it from unit.assignments
    if kind == "CaseResolved":
        return _to_citizen(record, event, policy, now, "resolved")
    if kind == "ProgressReported" and event.committed_date is not None:
        committed = event.committed_date  # in Vietnam's time when the unit gave no zone (contracts/text.py)
        before = datetime.fromisoformat(record.resolve_by) if record.resolve_by else None
        if before == committed:
            return []  # the date it had committed to, said again: nothing new, and its miss apologised for once
        due = datetime.fromisoformat(record.due_by) if record.due_by else None
        # Later than the unit had said, and later than the case was due: moved within its time,
        # the citizen was told it had no result on time when nothing was late.
        slipped = (before is None or committed > before) and (due is None or committed > due)
        # The committed date is the deadline now (the router's too): its miss is apologised for afresh.
        record.resolve_by, record.apologised = committed.isoformat(), False
        if slipped:
            return _to_citizen(record, event, policy, now, "apology_dated")
        return []
    if kind == "CaseEscalated":
        out = _to_handlers(record, event, policy)
        if event.deadline == "resolve" and not record.apologised:
            record.apologised = True  # one apology per slipped deadline, however many levels it climbs
            out += _to_citizen(record, event, policy, now, "apology")
        return out
    if kind == "DuplicateLinked":
        return _linked_to_handlers(record, event, policy)
    if kind == "CaseMarkedDuplicate":
        # Not the original's code: its citizen's phone may have been typed by someone else (templates.py).
        return _to_citizen(record, event, policy, now, "duplicate")
    return []


def for_assignment(event: Any, policy: Policy) -> list[Delivery]:
    """A new assignment, from ``unit.assignments``: to the unit's district service and its handler,
    and a copy to each unit its rule tells as well (``also``), by that unit's webhook."""
    category = categories.load().get(event.category)
    values = {"code": event.tracking_code, "handler": event.handler.name, "unit": event.unit.name,
              "category": category.vi if category else event.category, "address": event.address,
              "description": event.description, "respond_by": when(event.respond_by),
              "resolve_by": when(event.resolve_by)}
    subject, text = render("assignment", "vi", **values)
    notify = [n.model_dump() for n in getattr(event, "notify", ())]
    payload = event.model_dump(mode="json")  # one event, a delivery to each of the unit's channels
    out = [_delivery(event, payload, topics.UNIT_ASSIGNMENTS, recipient, channel, target, "assignment", subject,
                     fitting.zalo("assignment", "vi", values) if channel == "zalo" else text, undeliverable=why,
                     unit_id=event.unit.id)
           for recipient, channel, target, why in handler_routes(event.unit.id, notify, policy)]
    for unit in getattr(event, "also", ()):
        subject, text = render("assignment_copy", "vi", to=unit.name, **values)
        out += [_delivery(event, payload, topics.UNIT_ASSIGNMENTS, recipient, channel, target, "assignment_copy",
                          subject, text, undeliverable=why, copy_to=unit.id, unit_id=unit.id)
                for recipient, channel, target, why in handler_routes(unit.id, [], policy)]
    return out


def taken_away(record: CaseRecord | None, assignment: Any) -> bool:
    """Whether the case left the assignment's unit after it (routed elsewhere, declined, sent back to
    the centre), as far as the case events applied so far tell; a record that has not reached the
    assignment yet tells nothing."""
    if record is None or record.version <= assignment.version:
        return False
    return record.unit is None or record.unit["id"] != assignment.unit.id


def handler_routes(unit_id: str, notify: list[dict[str, Any]], policy: Policy) -> list[tuple[str, str, str, str | None]]:
    """(recipient, channel, target, why not) for each of a unit's channels; by webhook when it names none."""
    out = []
    for wanted in notify or [{"channel": "webhook", "address": None}]:
        channel, address = wanted["channel"], wanted.get("address")
        why = None
        if channel == "webhook":
            recipient, target = "unit", address or policy.unit_webhook_url.format(unit_id=unit_id)
        else:
            recipient, target = "handler", address or ""
        if not target:
            why = f"the directory gives no {CHANNEL_NAMES[channel]} address for unit {unit_id}"
        elif channel not in policy.channels:
            why = f"no {CHANNEL_NAMES[channel]} provider is configured here"
        out.append((recipient, channel, target, why))
    return out


# How long a channel that refused every try of a citizen's message is passed over for their next ones.
REFUSED_FOR = timedelta(hours=1)
# The channel a citizen came in by, when the notifier can answer on it: (channel, contact field).
OWN_CHANNELS = {"zalo": ("zalo", "zalo_user_id"), "app": ("push", "app_user_id")}
FALLBACKS = (("sms", "phone"), ("email", "email"))


def citizen_route(record: CaseRecord, policy: Policy, now: datetime) -> tuple[str, str, str | None, str | None] | None:
    """(channel, target, note, why not) for the citizen: the channel they came from when it can
    carry the message, else SMS, else e-mail. A channel that lately refused every try of an earlier
    message is passed over while another is left. None when they left no way to reach them."""
    citizen = record.citizen
    own, field_name = OWN_CHANNELS.get(record.channel or "", (None, None))
    own_target = citizen.get(field_name) if field_name else None
    blocked = refused_own = None
    if own and own_target:
        blocked = _own_channel_blocked(record, own, policy, now)
        refused_own = None if blocked else _refused_lately(record, own, now)
        if blocked is None and refused_own is None:
            return own, own_target, None, None
    usable = [(channel, key) for channel, key in FALLBACKS if citizen.get(key) and channel in policy.channels]
    fresh = [(channel, key) for channel, key in usable if _refused_lately(record, channel, now) is None]
    if refused_own and not fresh:
        return own, own_target, None, None  # every other route refused lately too: still the best
    if usable:
        channel, key = (fresh or usable)[0]
        passed_over = usable[0][0] if (channel, key) != usable[0] else None
        reason = blocked or refused_own or (passed_over and _refused_lately(record, passed_over, now))
        note = f"{reason}; sent by {CHANNEL_NAMES[channel]} instead" if reason else None
        return channel, citizen[key], note, None
    if own and own_target:
        return own, own_target, blocked, f"{blocked}, and the citizen left no phone or e-mail we can use"
    if any(citizen.get(key) for _, key in FALLBACKS):
        return "sms", "", None, "no SMS or e-mail provider is configured here"
    return None


def remember_refused(record: CaseRecord, channel: str, now: datetime) -> None:
    """``channel`` refused every try of a message to this citizen, which went on by the next route:
    their messages planned in the next ``REFUSED_FOR`` go by that route at once, not to wait out
    another hour of tries on a channel that is likely still down."""
    record.refused = {**record.refused, channel: (now + REFUSED_FOR).isoformat()}


def _refused_lately(record: CaseRecord, channel: str, now: datetime) -> str | None:
    until = record.refused.get(channel)
    if until is None or now >= datetime.fromisoformat(until):
        return None
    return f"{CHANNEL_NAMES[channel]} refused every try of an earlier message; passed over until {when(until)}"


def follow_on(failed: Delivery, record: CaseRecord, policy: Policy, error: str,
              why: str | None = None) -> Delivery | None:
    """The same message to the citizen by the next route they left (in the order of
    :func:`citizen_route`), after ``failed`` was refused on its channel for good or on every try, in
    that route's words (an SMS's answer cut short, an e-mail's whole); None when no route is left. Its key is
    made from the failed one's: recorded twice, it is still one delivery. ``why`` replaces "<channel>
    refused it (``error``)" in its note, for a message moved without being tried."""
    own = OWN_CHANNELS.get(record.channel or "")
    routes = ([own] if own else []) + list(FALLBACKS)
    tried = [channel for channel, _ in routes]
    later = routes[tried.index(failed.channel) + 1:] if failed.channel in tried else routes
    for channel, key in later:
        if record.citizen.get(key) and channel in policy.channels:
            refused = why or f"{CHANNEL_NAMES[failed.channel]} refused it ({error})"
            note = f"{refused}; sent by {CHANNEL_NAMES[channel]} instead"
            # A message of a template this notifier does not know (a rolling change) goes on as written.
            subject, text = (citizen_message(record, failed.template, failed.payload, channel, policy)
                             if failed.template in CITIZEN_VALUES else (failed.subject, failed.text))
            return replace(failed, delivery_id=ids.event_id("delivery", failed.delivery_id, "follow-on"),
                           channel=channel, target=record.citizen[key], subject=subject, text=text, note=note,
                           undeliverable=None)
    return None


def _own_channel_blocked(record: CaseRecord, channel: str, policy: Policy, now: datetime) -> str | None:
    """Why the citizen cannot be answered on their own channel now, if they cannot."""
    if channel not in policy.channels:
        return f"no {CHANNEL_NAMES[channel]} provider is configured here"
    if channel == "zalo" and record.last_heard_at:
        # Zalo lets an OA write to a user freely only for a while after the user's last message.
        closes = datetime.fromisoformat(record.last_heard_at) + policy.zalo_reply_window
        if now >= closes:
            return f"Zalo's reply window closed at {when(closes)}"
    return None


# What each message to a citizen fills in, from its event as JSON (the delivery's payload): a
# message that goes on by another route is written again in that route's words.
CITIZEN_VALUES: dict[str, Callable[[dict[str, Any]], dict[str, str]]] = {
    "received": lambda event: {},
    "routed": lambda event: {"unit": event["unit"]["name"]},
    "resolved": lambda event: {"unit": event["unit"]["name"], "answer": event["answer"]},
    "apology": lambda event: {},
    "apology_dated": lambda event: {"unit": event["unit"]["name"], **templates.committed_by(event["committed_date"])},
    "duplicate": lambda event: {},
}


def citizen_message(record: CaseRecord, template: str, event: dict[str, Any], channel: str,
                    policy: Policy) -> tuple[str, str]:
    """(subject, text) of a message to the citizen on ``channel``. An SMS is written as the route
    takes it (without diacritics, with ``sms_ascii``) and within ``sms_max_segments``, a Zalo message
    within the OA's 2,000 characters: a unit's answer too long for that is cut short, and the reader
    told where to read it whole when a public page shows it. What is recorded is what is sent.
    Every other channel carries the whole text."""
    values = {"code": event["tracking_code"], **CITIZEN_VALUES[template](event)}
    subject, text = render(template, record.language, **values)
    # Oversight's public lookup shows the answer of a request its citizen made public, no other's.
    whole_at = policy.public_lookup_url.replace("{code}", values["code"]) if record.is_public else ""
    if channel == "sms":
        text = fitting.sms(template, record.language, values, budget=policy.sms_max_segments,
                           ascii_only=policy.sms_ascii, read_whole_at=whole_at)
    elif channel == "zalo":
        text = fitting.zalo(template, record.language, values, read_whole_at=whole_at)
    return subject, text


def _to_citizen(record: CaseRecord, event: Any, policy: Policy, now: datetime, template: str) -> list[Delivery]:
    route = citizen_route(record, policy, now)
    if route is None:
        return []
    channel, target, note, why = route
    payload = event.model_dump(mode="json")
    subject, text = citizen_message(record, template, payload, channel, policy)
    return [_delivery(event, payload, topics.CASE_EVENTS, "citizen", channel, target, template,
                      subject, text, note=note, undeliverable=why)]


def _to_handlers(record: CaseRecord, event: Any, policy: Policy) -> list[Delivery]:
    if record.unit is None:
        centre = getattr(event, "unit", None)
        if centre is None:
            return []  # an older router's escalation of a case no unit holds: nobody to tell
        # A case the centre has not sent to a unit in time: to the centre, on its channels in the
        # directory (an older router's event names none: by its webhook).
        return _to_unit(record, event, policy, "triage_escalated", {
            "code": event.tracking_code, "level": templates.TRIAGE_LEVELS[event.level]}, unit_id=centre.id,
            notify=[n.model_dump() for n in event.notify])
    to_unit = _to_unit(record, event, policy, "handler_escalated", {
        "code": event.tracking_code, "deadline": templates.DEADLINES[event.deadline],
        "level": templates.LEVELS[event.level]})
    centre = getattr(event, "unit", None)
    if centre is None or event.level != "centre":
        return to_unit
    # The chain's last step: the centre itself, on its channels (a copy of its own: its webhook may be
    # the unit's address, the notifier's one URL for every unit).
    return to_unit + _to_unit(record, event, policy, "centre_escalated", {
        "code": event.tracking_code, "deadline": templates.DEADLINES[event.deadline], "unit": record.unit["name"]},
        unit_id=centre.id, notify=[n.model_dump() for n in event.notify], copy_to=centre.id)


def _withdrawn(record: CaseRecord, event: Any, policy: Policy) -> list[Delivery]:
    """To the unit that held the case, on its channels: the centre gave it to another unit."""
    return _to_unit(record, event, policy, "withdrawn", {"code": event.tracking_code, "unit": event.unit.name})


def _linked_to_handlers(record: CaseRecord, event: Any, policy: Policy) -> list[Delivery]:
    """A report linked to a case goes to the unit that holds it, in the citizen's words: linked and
    read by no one, what it added would be lost. Older events carry no words, and call for nothing."""
    if record.unit is None or not getattr(event, "description", None):
        return []  # in triage: the centre reads it in oversight's timeline
    return _to_unit(record, event, policy, "duplicate_report", {
        "code": event.tracking_code, "duplicate": event.duplicate_tracking_code,
        "address": event.address or "", "description": event.description})


def _to_unit(record: CaseRecord, event: Any, policy: Policy, template: str, values: dict[str, str],
             unit_id: str | None = None, notify: list[dict[str, Any]] | None = None,
             copy_to: str | None = None) -> list[Delivery]:
    """``template`` on each channel of the unit the record names, or of ``unit_id`` by ``notify``
    (a Zalo message fitted to Zalo)."""
    if unit_id is None:
        assert record.unit is not None
        unit_id, notify = record.unit["id"], record.notify
    subject, text = render(template, "vi", **values)
    payload = event.model_dump(mode="json")
    return [_delivery(event, payload, topics.CASE_EVENTS, recipient, channel, target, template, subject,
                      fitting.zalo(template, "vi", values) if channel == "zalo" else text, undeliverable=why,
                      unit_id=unit_id, copy_to=copy_to)
            for recipient, channel, target, why in handler_routes(unit_id, notify or [], policy)]


def _delivery(event: Any, payload: dict[str, Any], source_topic: str, recipient: str, channel: str, target: str,
              template: str, subject: str, text: str, note: str | None = None,
              undeliverable: str | None = None, copy_to: str | None = None, unit_id: str | None = None) -> Delivery:
    # A citizen gets one message per event whatever the channel, so a redelivery that would now
    # choose another channel (Zalo's window closed meanwhile) still finds the first decision. A
    # copy to another unit is its own delivery, though every unit's webhook be the same address.
    key = ("citizen",) if recipient == "citizen" else (recipient, channel, target)
    if copy_to:
        key += ("copy", copy_to)
    return Delivery(ids.event_id("delivery", event.event_id, *key), event.case_id, event.event_id,
                    event.correlation_id, recipient, channel, target, template, subject, text,
                    payload, source_topic, event.traceparent, note, undeliverable, unit_id)
