"""The envelope every message on the mesh carries: who made it, when, why, and its trace."""

import uuid
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    traceparent: str | None = None
    tracestate: str | None = None
