"""Intake's one use case: accept a request only once Kafka holds it."""

import asyncio
import logging

from faststream.kafka import KafkaBroker
from opentelemetry import trace

from contracts import telemetry, topics
from contracts.messaging import start_when_reachable
from contracts.events import RequestReceived

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """Kafka did not acknowledge in time: the caller must retry (503 with Retry-After)."""


class Intake:
    def __init__(self, broker: KafkaBroker, publish_timeout: float):
        self.broker = broker
        self.publish_timeout = publish_timeout
        self.connected = False

    async def connect_forever(self) -> None:
        """Connect to Kafka, retrying; intake answers 503 meanwhile instead of refusing to start."""
        await start_when_reachable(self.broker.connect)
        self.connected = True

    async def submit(self, request: RequestReceived) -> None:
        """Publish RequestReceived and wait for the broker's acknowledgement (acks=all)."""
        if not self.connected:
            raise Unavailable("Kafka not connected")
        with trace.get_tracer(__name__).start_as_current_span("intake.submit", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("mesh.case_id", str(request.case_id))
            span.set_attribute("mesh.channel", request.channel)
            request = request.model_copy(update=telemetry.current_trace_context())
            try:
                await asyncio.wait_for(
                    self.broker.publish(request.model_dump_json().encode(), topic=topics.INTAKE_REQUESTS,
                                        key=str(request.case_id).encode()),
                    self.publish_timeout,
                )
            except (TimeoutError, asyncio.TimeoutError) as error:
                raise Unavailable("Kafka did not acknowledge in time") from error
            except Exception as error:
                log.warning("publish failed: %s", type(error).__name__)
                raise Unavailable(type(error).__name__) from error
