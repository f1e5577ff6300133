"""A RequestReceived already on the topic is read as it was written, whatever intake now refuses."""

import uuid
from datetime import UTC, datetime

from contracts.events import RequestReceived
from contracts.ids import tracking_code


def test_a_request_accepted_before_intake_checked_its_location_is_still_read():
    """Intake now refuses a latitude of 999 and a ward code of 40 characters. The router refusing
    such a request, answered 202 before that, would dead-letter it and leave its citizen no case."""
    request = uuid.uuid4()
    stored = {"event_id": str(uuid.uuid4()), "occurred_at": datetime.now(UTC).isoformat(), "correlation_id": str(request),
              "producer": "intake", "request_id": str(request), "case_id": str(uuid.uuid4()),
              "tracking_code": tracking_code(request), "channel": "app", "channel_key": "k",
              "received_at": datetime.now(UTC).isoformat(), "citizen": {"full_name": "An", "phone": "+84903000001"},
              "address": "12 Lý Tự Trọng, Quận 1", "category": "other", "description": "Cần hỗ trợ",
              "location": {"latitude": 999, "longitude": -999, "ward_code": "W" * 40}}
    event = RequestReceived.model_validate(stored)
    assert event.location.latitude == 999 and event.location.ward_code == "W" * 40
