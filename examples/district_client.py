"""A reference district-unit client (dịch vụ của quận/phường): how a unit's own system joins the mesh.

It consumes ``unit.assignments`` for its units (``DISTRICT_UNITS``, comma-separated unit ids;
empty means every unit, as in the demo; ``none`` means no unit: only the webhook is taken and Kafka
is not read at all, as the tests and the benchmark want), answers each case on ``unit.responses``
— accept, a progress report, then the result — and takes the notifier's webhook at
``POST /units/{unit_id}/assignments``, recognising a repeated delivery by its ``Idempotency-Key``.
With a key it takes only a POST whose ``X-1022-Unit-Signature`` checks out under the key of the unit
in its path, and is less than five minutes old: anyone else is answered 401. A district's service is
given its unit's key (``DISTRICT_WEBHOOK_KEY``, from ``python -m services.notifier unit-key <unit
id>``); the demo's stand-in, which takes every unit's webhooks, derives each from the notifier's
``NOTIFIER_WEBHOOK_SIGNING_KEY`` as the notifier does.

Run: ``python -m examples.district_client`` (port ``DISTRICT_PORT``, default 8005).
"""

import asyncio
import json
import logging
import os
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Header, HTTPException, Request
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from contracts import ids, topics
from contracts.events import AssignmentIssued, UnitResponse
from contracts.messaging import consumer_options, kafka_broker, parse_or_dead_letter, records_of, start_when_reachable
from services.notifier.providers import UNIT_SIGNATURE_HEADER, signed_with, unit_key

log = logging.getLogger("district")
ASSIGNMENT = TypeAdapter(AssignmentIssued)


def response(assignment: AssignmentIssued, kind: str, note: str) -> UnitResponse:
    return UnitResponse(
        event_id=ids.event_id("unit-response", assignment.case_id, assignment.assignment_id, kind),
        correlation_id=assignment.correlation_id, causation_id=assignment.event_id, producer="district-client",
        traceparent=assignment.traceparent, response_id=uuid.uuid4(), case_id=assignment.case_id,
        unit_id=assignment.unit.id, handler_id=assignment.handler.id, kind=kind, note=note)


def create_app() -> FastAPI:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    units = {u for u in os.environ.get("DISTRICT_UNITS", "").split(",") if u}
    pace = float(os.environ.get("DISTRICT_PACE_SECONDS", "3"))
    broker = kafka_broker(bootstrap, client_id="district-client")
    received: dict[str, int] = {}
    tasks: set[asyncio.Task] = set()
    own_key = os.environ.get("DISTRICT_WEBHOOK_KEY", "").encode()
    signing_key = os.environ.get("NOTIFIER_WEBHOOK_SIGNING_KEY", "").encode()

    def key_of(unit_id: str) -> bytes:
        return own_key or (unit_key(signing_key, unit_id) if signing_key else b"")

    async def handle(assignment: AssignmentIssued) -> None:
        """Accept at once, report progress, then resolve: what a diligent ward does."""
        for kind, note in (("accept", ""), ("progress", "Cán bộ đang liên hệ người dân."),
                           ("resolve", "Đã đến tận nơi và hỗ trợ theo yêu cầu.")):
            await broker.publish(response(assignment, kind, note).model_dump_json().encode(),
                                 topic=topics.UNIT_RESPONSES, key=str(assignment.case_id).encode())
            await asyncio.sleep(pace)

    async def on_assignments(_: list[bytes], message: KafkaMessage) -> None:
        for assignment in await parse_or_dead_letter(broker, records_of(message), ASSIGNMENT):
            if units and assignment.unit.id not in units:
                continue
            task = asyncio.create_task(handle(assignment))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    reads_kafka = units != {"none"}
    if reads_kafka:
        broker.subscriber(topics.UNIT_ASSIGNMENTS, **consumer_options("district-client"))(on_assignments)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if not reads_kafka:
            yield
            return
        await start_when_reachable(broker.start, stop=broker.stop)
        yield
        await broker.stop()

    app = FastAPI(title="reference district client", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "webhooks": sum(received.values()), "distinct": len(received)}

    @app.post("/units/{unit_id:path}/assignments")  # unit ids contain "/" (edition/code)
    async def webhook(unit_id: str, request: Request, idempotency_key: str | None = Header(None)) -> dict:
        body = await request.body()
        unit_secret = key_of(unit_id)
        if unit_secret and not signed_with(unit_secret, request.headers.get(UNIT_SIGNATURE_HEADER, ""), body,
                                           time.time()):
            raise HTTPException(401, f"not signed by the 1022 notifier for unit {unit_id}")
        # A repeat is known by the delivery id in the signed body (the Idempotency-Key says the same,
        # but is not signed: a signed POST sent again under a new key is still the same delivery).
        try:
            delivered = json.loads(body).get("delivery_id")
        except (ValueError, AttributeError, RecursionError):  # not JSON, not an object, nested past reading
            raise HTTPException(400, "not a delivery: a JSON object with its delivery_id") from None
        key = str(delivered or idempotency_key or uuid.uuid4())
        received[key] = received.get(key, 0) + 1
        return {"ok": True, "first_time": received[key] == 1}

    return app


if __name__ == "__main__":
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("DISTRICT_PORT", "8005")), log_level="warning")
