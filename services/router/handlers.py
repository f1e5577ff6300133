"""The router's Kafka edges: requests in, units' responses in. Effects are durable before the
batch is acknowledged; a batch that fails is read again (at-least-once, idempotent by case id
and by message id)."""

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import ConsumerRebalanceListener
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from contracts import telemetry, topics
from contracts.events import RequestReceived, UnitResponse
from contracts.messaging import consumer_options, parse_or_dead_letter, pause_then_raise, records_of
from contracts.text import refuse_nul
from services.router import ledger
from services.router.application import Workload

log = logging.getLogger(__name__)
REQUEST = TypeAdapter(RequestReceived)
RESPONSE = TypeAdapter(UnitResponse)
# What the router can carry of one request. Intake sends far less (a phone of 32 characters, a
# category of 64, tens of KiB in all). Past these, from a producer that does not check as intake
# does, the case would be stored and then fail its publishing at every try, holding up every case
# after it: Kafka takes a record of at most 1 MiB (a compressed request can be larger on the topic
# than that), and the ledger's index of open reports a phone and category of about 2.7 KB at most.
REQUEST_BYTES = 256 * 1024
REPORT_KEY_CHARS = 64


def request_bytes_fit(raw: bytes) -> None:
    """ValueError for a request the router's stores cannot hold: a NUL in it, or too large."""
    refuse_nul(raw)
    if len(raw) > REQUEST_BYTES:
        raise ValueError(f"a request of {len(raw)} bytes: the router takes at most {REQUEST_BYTES}")


def request_fits(request: RequestReceived) -> None:
    """ValueError for a phone or category too long for the ledger's index of open reports."""
    for name, value in (("citizen.phone", request.citizen.phone), ("category", request.category)):
        if value is not None and len(value) > REPORT_KEY_CHARS:
            raise ValueError(f"{name} of {len(value)} characters: the router takes at most {REPORT_KEY_CHARS}")


async def refuse(broker: KafkaBroker, topic: str, refused: Sequence[tuple[RequestReceived | UnitResponse, str]],
                 kind: str) -> None:
    """Send each message the router will not take to ``topic``'s DLQ, with why; back once Kafka has them all."""
    waits = [await broker.publish(message.model_dump_json().encode(), topic=topics.dlq(topic),
                                  key=str(message.case_id).encode(), no_confirm=True,
                                  headers={"x-error": why[:2000], "x-error-type": kind, "x-source-topic": topic})
             for message, why in refused]
    await asyncio.gather(*waits)


class ReadBackOnAssignment(ConsumerRebalanceListener):
    """Partitions moved to this router (another stopped, joined or fell out of the group): the
    cases the other router opened there may not be in the ledger yet, and only the store has them
    then. The desk reads them back at its next batch, so a second report is linked, not opened again."""

    def __init__(self, desk) -> None:
        self.desk = desk

    async def on_partitions_revoked(self, revoked) -> None:
        pass

    async def on_partitions_assigned(self, assigned) -> None:
        if assigned:
            self.desk.recent.read_again()


def responses_group(group_id: str) -> str:
    """The consumer group that reads the units' answers (the deadline timers wait for it)."""
    return f"{group_id}-responses"


def register(broker: KafkaBroker, desk, pool, group_id: str, max_batch: int, stats: dict[str, int],
             gather_ms: int = 0) -> None:
    """Subscribe the router's handlers; called by ``create_app`` so nothing happens at import."""

    async def workload() -> Workload:
        return Workload(*await ledger.handler_load(pool))

    @broker.subscriber(topics.INTAKE_REQUESTS, listener=ReadBackOnAssignment(desk),
                       **consumer_options(group_id, max_records=max_batch, gather_ms=gather_ms))
    async def on_requests(_: list[bytes], message: KafkaMessage) -> None:
        # A NUL, a phone past the ledger's index or a request past what Kafka takes (a producer that
        # does not check as intake does) would be kept by the event store and then fail its
        # publishing at every try, holding up every case published after it: dead-lettered, with why.
        requests = await parse_or_dead_letter(broker, records_of(message), REQUEST, request_bytes_fit, request_fits)
        if not requests:
            return
        spans = [telemetry.start_span_from("router.open_case", r.traceparent, r.tracestate) for r in requests]
        try:
            # Both lookups at once: each is a round trip on the path of every new case.
            (reports, recorded), load = await asyncio.gather(
                ledger.open_duplicates(pool, [(r.citizen.phone, r.category) for r in requests if r.citizen.phone]),
                workload())
            refused: list[tuple[RequestReceived, str]] = []
            opened = await asyncio.to_thread(desk.receive, requests, datetime.now(UTC), load, reports, refused,
                                             recorded)
        except Exception as error:  # noqa: BLE001 - logged, then the batch is read again
            log.exception("could not open %d cases; the batch will be read again", len(requests))
            await pause_then_raise(error)
        finally:
            for span in spans:
                span.end()
        # A request that cannot be opened at all will fail again: dead-lettered with why, for the
        # centre to see and send again once mended, rather than holding up every request after it.
        # (One whose routing fails is opened, in triage: application.CaseDesk._unroutable.)
        await refuse(broker, topics.INTAKE_REQUESTS, refused, "Unroutable")
        stats["requests"] += len(requests)
        stats["opened"] += len(opened)

    @broker.subscriber(topics.UNIT_RESPONSES, **consumer_options(responses_group(group_id), max_records=max_batch))
    async def on_responses(_: list[bytes], message: KafkaMessage) -> None:
        responses = await parse_or_dead_letter(broker, records_of(message), RESPONSE)
        if not responses:
            return
        try:
            refused = await asyncio.to_thread(desk.answer, responses, datetime.now(UTC), await workload())
        except Exception as error:  # noqa: BLE001 - logged, then the batch is read again
            log.exception("could not apply %d unit responses; the batch will be read again", len(responses))
            await pause_then_raise(error)
        # A response the case cannot take is the sender's mistake: dead-lettered with why, not retried.
        for response, why in refused:
            log.warning("refused response %s for case %s: %s", response.event_id, response.case_id, why)
        await refuse(broker, topics.UNIT_RESPONSES, refused, "Refused")
        stats["responses"] += len(responses)
        stats["refused"] += len(refused)
