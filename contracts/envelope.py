"""The envelope every message on the mesh carries: who made it, when, why, and its trace."""

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


# W3C trace context: version 00 exactly; a later version may add fields after a dash, which are
# kept. Version ff and all-zero ids are invalid: OpenTelemetry would start a new trace for them anyway.
_TRACEPARENT = re.compile(r"(?!ff)([0-9a-f]{2})-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(-[!-~]*)?")


def _traceparent(value: str | None) -> str | None:
    if value is None:
        return None
    valid = _TRACEPARENT.fullmatch(value)
    return value if valid and (valid.group(1) != "00" or valid.group(2) is None) and len(value) <= 512 else None


def _tracestate(value: str | None) -> str | None:
    return value if value is None or (len(value) <= 512 and value.isascii() and value.isprintable()) else None


# Trace context from outside (a district service's answer) that is not W3C's is dropped, not carried
# on: the events the router makes of it would hold it, control characters and all.
TraceParent = Annotated[str | None, AfterValidator(_traceparent)]
TraceState = Annotated[str | None, AfterValidator(_tracestate)]


class Envelope(BaseModel):
    """Fields common to every event and command.

    ``correlation_id`` is the request that started it all; ``causation_id`` the message that
    directly caused this one. ``traceparent``/``tracestate`` are W3C trace context, so one trace
    spans intake → router → notifier → oversight even across the router's outbox.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: uuid.UUID
    schema_version: int = 1
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    producer: str
    traceparent: TraceParent = None
    tracestate: TraceState = None
