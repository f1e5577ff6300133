"""What the router's events carry from the message that caused them, how a unit is named in them,
and how an error is logged: shared by opening a case (:mod:`services.router.application`) and
answering one (:mod:`services.router.answers`)."""

import traceback
from pathlib import Path
from typing import Any


def where_it_failed(error: BaseException) -> str:
    """An error as the log may keep it: its kind and the line that raised it, not its text, which
    may quote what a citizen wrote (an address, a name)."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{type(error).__name__} at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames \
        else type(error).__name__


def meta_of(message: Any) -> dict[str, Any]:
    return {"correlation_id": str(message.correlation_id), "causation_id": str(message.event_id),
            "traceparent": message.traceparent, "tracestate": message.tracestate}


def unit_ref(unit: Any) -> dict[str, Any]:
    return {"id": unit.id, "name": unit.name, "admin_code": unit.admin_code}
