"""Kafka topic names, versioned, and the dead-letter topic of each consumed topic."""

INTAKE_REQUESTS = "intake.requests.v1"
CASE_EVENTS = "case.events.v1"
UNIT_ASSIGNMENTS = "unit.assignments.v1"
UNIT_RESPONSES = "unit.responses.v1"
NOTIFY_DELIVERIES = "notify.deliveries.v1"

# Oversight's audit checkpoints (head hash and count), for HĐND and MTTQ to keep copies of.
AUDIT_CHECKPOINTS = "audit.checkpoints.v1"

ALL = (INTAKE_REQUESTS, CASE_EVENTS, UNIT_ASSIGNMENTS, UNIT_RESPONSES, NOTIFY_DELIVERIES)
PARTITIONS = 6


def dlq(topic: str) -> str:
    """The dead-letter topic for ``topic``: where a consumer puts what it cannot read."""
    return f"{topic}.dlq"


def all_with_dead_letters() -> tuple[str, ...]:
    """Every topic the mesh needs: the consumed ones with their dead-letter topics, and the
    checkpoints, which only people read."""
    return ALL + tuple(dlq(t) for t in ALL) + (AUDIT_CHECKPOINTS,)
