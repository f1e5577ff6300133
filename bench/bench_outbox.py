"""The outbox relay's publishing path, before and after, in one run on one machine.

Publishes the same case events (as the relay builds them) to a dead-letter topic twice — through
faststream's broker (its telemetry middleware makes a span per message) and through the plain
aiokafka producer the relay now uses — and prints messages per second for each, acks included.

    .venv/bin/python bench/bench_outbox.py [--messages 20000]
"""

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(__file__))
from common import KAFKA  # noqa: E402

from contracts import topics  # noqa: E402
from contracts.events import AssignmentIssued, Citizen, HandlerRef, UnitRef  # noqa: E402
from contracts.messaging import bulk_producer, kafka_broker  # noqa: E402
from contracts.telemetry import setup_tracing  # noqa: E402


def events(n: int) -> list[bytes]:
    now = datetime.now(UTC)
    unit = UnitRef(id="hcmc-2021/768", name="UBND Quận Phú Nhuận", admin_code="768")
    return [AssignmentIssued(
        event_id=uuid.uuid4(), correlation_id=uuid.uuid4(), producer="router", case_id=uuid.uuid4(),
        tracking_code="ABCDE-FGHJK", version=3, assignment_id=uuid.uuid4(), unit=unit,
        handler=HandlerRef(id="hcmc-2021/768/h01", name="Nguyễn Kim Nhung"), category="essential_supplies",
        priority="urgent", description="Cần hỗ trợ gạo", address="45 Lê Văn Sỹ, P.13, Q. Phú Nhuận",
        citizen=Citizen(full_name="Lê Thị Mai", phone="+84903123456"), channel="web", respond_by=now,
        resolve_by=now + timedelta(days=1), traceparent="00-" + uuid.uuid4().hex + "-" + uuid.uuid4().hex[:16] + "-01",
    ).model_dump_json().encode() for _ in range(n)]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    payloads = events(args.messages)
    topic = topics.dlq(topics.UNIT_ASSIGNMENTS)
    provider = setup_tracing("bench-outbox")

    broker = kafka_broker(KAFKA, client_id="bench-faststream", tracer_provider=provider)
    await broker.connect()
    started = time.perf_counter()
    futures = [await broker.publish(p, topic=topic, key=str(i).encode(), no_confirm=True) for i, p in enumerate(payloads)]
    await asyncio.gather(*futures)
    before = time.perf_counter() - started
    await broker.stop()

    producer = bulk_producer(KAFKA, client_id="bench-aiokafka")
    await producer.start()
    started = time.perf_counter()
    futures = [await producer.send(topic, p, key=str(i).encode(), headers=[("traceparent", b"00-x")])
               for i, p in enumerate(payloads)]
    await asyncio.gather(*futures)
    after = time.perf_counter() - started
    await producer.stop()
    print(f"outbox publish path, {args.messages} messages of {len(payloads[0])} bytes, acks=all, idempotent:")
    print(f"  before (faststream broker.publish): {before:6.2f} s  {args.messages / before:>9,.0f} msg/s")
    print(f"  after  (aiokafka producer.send):    {after:6.2f} s  {args.messages / after:>9,.0f} msg/s")


if __name__ == "__main__":
    asyncio.run(main())
