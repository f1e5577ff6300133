"""How every service talks to Kafka: one producer configuration, one consumer configuration,
and the dead-letter rule.

Producers use ``acks=all`` and idempotence. Consumers belong to a group, read in batches, commit
only after the handler returned (at-least-once) and rewind the batch when it raised. A record that
cannot be parsed goes to ``<topic>.dlq`` with the error in its headers; the rest of the batch goes on.
"""

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.conn import AIOKafkaConnection, CloseReason
from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.subscriber.usecase import BatchSubscriber
from opentelemetry.sdk.trace import TracerProvider
from pydantic import TypeAdapter

from contracts import telemetry
from contracts.topics import dlq

T = TypeVar("T")
log = logging.getLogger(__name__)

# After a failed batch, wait before it is read again, so a database that is down is not hammered.
RETRY_PAUSE_SECONDS = 1.0


def _broken_connection_is_a_connection_error() -> None:
    """A request written to a connection the broker has just closed must fail as a connection
    error, which aiokafka retries on a new connection.

    Under uvloop (the services run on it, through uvicorn) that write raises RuntimeError, not the
    OSError aiokafka expects (aio-libs/aiokafka#1038, open). When the write is a consumer group's
    coordinator lookup, heartbeat or offset commit, the RuntimeError ends the group's coordination:
    the consumer stays up, answers health checks and never reads again. The fault suite's broker
    restart left the router's request consumer so. Only a write to a closing transport is converted.
    """
    send = AIOKafkaConnection.send
    if getattr(send, "converts_closed_transport", False):
        return

    def send_or_fail_as_broken(self: AIOKafkaConnection, request: Any, expect_response: bool = True) -> Any:
        try:
            return send(self, request, expect_response)
        except RuntimeError as error:
            writer = self._writer
            if writer is None or not writer.transport.is_closing():
                raise
            self.close(reason=CloseReason.CONNECTION_BROKEN, exc=error)
            raise KafkaConnectionError(f"Connection at {self.host}:{self.port} broken: {error}") from error

    send_or_fail_as_broken.converts_closed_transport = True  # type: ignore[attr-defined]
    AIOKafkaConnection.send = send_or_fail_as_broken  # type: ignore[method-assign]


_broken_connection_is_a_connection_error()


def _an_empty_read_is_not_followed_by_a_pause() -> None:
    """A batch consumer that found nothing reads again at once.

    faststream's batch subscriber (0.7) sleeps as long as its read may wait (``batch_timeout_ms``)
    after a read that found nothing, though the read itself already waited that long for records:
    aiokafka's ``getmany`` returns as soon as it has any, and empty only once its time-out has
    passed. A record that arrived during the sleep waited it out: a request to a router idle for
    as little as a read's time-out (90 ms) waited up to 90 ms more before it was routed, the first
    of every burst and, at night, nearly every one. Without the sleep an idle consumer still wakes
    only once a time-out.
    """
    if getattr(BatchSubscriber.get_msg, "reads_again_at_once", False):
        return

    async def read(self: BatchSubscriber, consumer: Any) -> tuple[ConsumerRecord, ...]:
        batches = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
        if not batches:  # a read with no time-out answers at once: let the loop run between two of them
            await asyncio.sleep(0)
        return tuple(chain.from_iterable(batches.values()))

    read.reads_again_at_once = True  # type: ignore[attr-defined]
    BatchSubscriber.get_msg = read  # type: ignore[method-assign]


_an_empty_read_is_not_followed_by_a_pause()


@lru_cache(maxsize=16_384)
def _key_hash(key: bytes) -> int:
    return murmur2(key)


def partition_for(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default partition for a key (the Java client's murmur2), the hash cached per key.

    aiokafka hashes in pure Python, 8 µs a key, and the mesh sends several records per case under
    the same key (the router its case events, the notifier an announcement per delivery): the
    notifier spent 5 % of its CPU there. The partition is the default one, so every producer, ours
    or not, still puts a case's records on the same partition.
    """
    if key is None:
        return DefaultPartitioner()(key, all_partitions, available)
    return all_partitions[(_key_hash(key) & 0x7FFFFFFF) % len(all_partitions)]


def kafka_broker(bootstrap_servers: str, *, client_id: str, tracer_provider: TracerProvider | None = None,
                 linger_ms: int = 2) -> KafkaBroker:
    """A broker whose producer waits for every in-sync replica and never duplicates on retry."""
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        request_timeout_ms=10_000,
        partitioner=partition_for,
        # Where no span is recorded, faststream's middleware would still read and write trace
        # context and make an unrecorded span for every message; the envelope carries it anyway.
        middlewares=([KafkaTelemetryMiddleware(tracer_provider=tracer_provider)]
                     if telemetry.records_spans(tracer_provider) else []),
        logger=log,
        # faststream logs "Received" and "Processed" for every batch, which was nearly every line of
        # the router's log; a handler's failure is still logged, as an error.
        log_level=logging.DEBUG,
    )


def bulk_producer(bootstrap_servers: str, *, client_id: str) -> AIOKafkaProducer:
    """A plain aiokafka producer with the same guarantees, for bulk relays (the router's outbox).

    faststream's publish costs about 260 µs a message here (its middleware makes a span for each);
    the outbox sends thousands a second and carries each message's trace in its envelope and
    headers itself, so it talks to aiokafka directly: 6.6k messages queue in 0.03 s, not 1.7 s.
    """
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, client_id=client_id, acks="all",
                            enable_idempotence=True, linger_ms=2, max_batch_size=512 * 1024,
                            request_timeout_ms=10_000, partitioner=partition_for)


async def readable_headers(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """faststream's parser, given records whose headers it can read. It decodes every header as
    UTF-8 before any code of the mesh runs: one header in another encoding (TCVN3, say) or with no
    value raised there, and the whole batch around it was skipped unread, never dead-lettered, its
    offsets committed with the next batch's. Such a header is read with replacement characters."""
    batch = message if isinstance(message, tuple) else (message,)
    if all(_readable(r.headers) for r in batch):
        return await original(message)
    mended = tuple(r if _readable(r.headers) else dataclasses.replace(r, headers=_mended(r.headers)) for r in batch)
    return await original(mended if isinstance(message, tuple) else mended[0])


def _readable(headers: Sequence[tuple[str, Any]]) -> bool:
    try:
        for _, value in headers:
            value.decode()
    except (AttributeError, UnicodeDecodeError):
        return False
    return True


def _mended(headers: Sequence[tuple[str, Any]]) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, (value or b"").decode(errors="replace").encode() if isinstance(value, bytes | None)
                  else str(value).encode()) for name, value in headers)


async def raw_body(message: Any) -> Any:
    """Decoder that leaves bytes alone: parsing is the handler's, so bad input can be dead-lettered."""
    return message.body


def consumer_options(group_id: str, *, max_records: int = 500, gather_ms: int = 0) -> dict[str, Any]:
    """Subscriber settings shared by every consumer of the mesh.

    ``gather_ms``: how long the broker may hold a fetch to gather a fuller batch (up to 1 MiB)
    instead of answering with the first message. A consumer off the path a citizen waits on (the
    notifier, oversight) takes far fewer, larger batches for that much delay; 0 answers at once.

    A gathering consumer's read waits for records up to 50 ms longer than the broker may hold them,
    so when idle it wakes about once a fetch; a read that found nothing is followed at once by the
    next (:func:`_an_empty_read_is_not_followed_by_a_pause`).
    """
    gather = {"fetch_max_wait_ms": gather_ms, "fetch_min_bytes": 1024 * 1024} if gather_ms else {}
    return {
        "group_id": group_id,
        "batch": True,
        "max_records": max_records,
        "batch_timeout_ms": gather_ms + 50,
        **gather,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        # No handler of the mesh answers: a record's reply_to header (a district's, say) made
        # faststream publish an empty record to the topic it named, and one that does not exist
        # failed the batch after its effect, at every reading.
        "no_reply": True,
        "parser": readable_headers,
        "decoder": raw_body,
    }


def records_of(message: Any) -> tuple[ConsumerRecord, ...]:
    raw = message.raw_message
    return raw if isinstance(raw, tuple) else (raw,)


async def parse_or_dead_letter(broker: KafkaBroker, records: Sequence[ConsumerRecord], adapter: TypeAdapter[T],
                               check: Callable[[bytes], None] | None = None,
                               accept: Callable[[T], None] | None = None) -> list[T]:
    """Parse each record; send the ones that fail to the topic's DLQ (acknowledged) and return the rest.

    ``check`` looks at each record's bytes first and raises ValueError for one the reader cannot
    take; ``accept`` does the same with the parsed event (a value the reader's database cannot hold).
    A RecursionError (JSON nested deep) is the record's too: it would fail its batch at every
    reading, for good. Any other error is a fault of the reader's, and the batch is read again.
    """
    good: list[T] = []
    waits = []
    for record in records:
        try:
            if check is not None:
                check(record.value or b"")
            parsed = adapter.validate_json(record.value or b"")
            if accept is not None:
                accept(parsed)
            good.append(parsed)
        except (ValueError, RecursionError) as error:  # ValidationError is a ValueError
            waits.append(await dead_letter(broker, record, error))
    if waits:
        await asyncio.gather(*waits)
    return good


# The records this process has put on a dead-letter topic, by their place in their source topic.
# A batch read again after a failure (PostgreSQL down: it is read again every few seconds until it
# is back) would otherwise put its bad records there once for each reading. Remembered only once the
# broker has acknowledged the dead letter, so a dead letter that was not taken is sent again. Another
# process that reads the batch again (after a rebalance) does not know of these: a dead letter's
# x-source-* headers name its record, for whoever reads the topic.
_DEAD_LETTERED: OrderedDict[tuple[str, int, int, int], None] = OrderedDict()
_DEAD_LETTERED_KEPT = 4096
# The most of a record a dead letter carries: well under what a producer sends (1 MiB).
DEAD_LETTER_BYTES = 512 * 1024
DEAD_LETTER_KEY_BYTES = 1024


async def dead_letter(broker: KafkaBroker, record: ConsumerRecord, error: BaseException) -> "asyncio.Future[Any]":
    """Queue ``record`` for its dead-letter topic with the error; returns the ack to await. A
    record this process has dead-lettered already is not sent again (its ack is at once)."""
    # Its place, and what it says: a topic made again (a test's) starts its offsets again.
    source = (record.topic, record.partition, record.offset, hash(record.value))
    if source in _DEAD_LETTERED:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done
    reason = str(error).replace("\n", " ")[:2000]
    log.warning("dead-lettering %s[%s]@%s: %s", record.topic, record.partition, record.offset, type(error).__name__)
    value = record.value or b""
    headers = {
        "x-error": reason,
        "x-error-type": type(error).__name__,
        "x-source-topic": record.topic,
        "x-source-partition": str(record.partition),
        "x-source-offset": str(record.offset),
    }
    if len(value) > DEAD_LETTER_BYTES:
        # A record its sender compressed may be far larger than a producer sends uncompressed
        # (1 MiB): sent whole, its dead letter failed every time, and its batch was read forever.
        # The whole record stays in its topic, at the offset the headers give.
        value, headers["x-truncated-from"] = value[:DEAD_LETTER_BYTES], str(len(value))
    key = record.key
    if key is not None and len(key) > DEAD_LETTER_KEY_BYTES:  # a key is an id: a huge one sank its dead letter
        key, headers["x-key-truncated-from"] = key[:DEAD_LETTER_KEY_BYTES], str(len(key))
    ack = await broker.publish(value, topic=dlq(record.topic), key=key, headers=headers, no_confirm=True)
    ack.add_done_callback(lambda sent: _remember_dead_letter(source, sent))
    return ack


def _remember_dead_letter(source: tuple[str, int, int, int], sent: "asyncio.Future[Any]") -> None:
    if sent.cancelled() or sent.exception() is not None:
        return
    _DEAD_LETTERED[source] = None
    if len(_DEAD_LETTERED) > _DEAD_LETTERED_KEPT:
        _DEAD_LETTERED.popitem(last=False)


async def publish_all(broker: KafkaBroker, items: Sequence[tuple[str, bytes, bytes | None]],
                      headers: Sequence[dict[str, str] | None] | None = None) -> None:
    """Send ``(topic, key, value)`` items together and wait until Kafka acknowledged every one.

    Sends are queued without waiting so the producer batches them; any failure raises.
    """
    futures = []
    for i, (topic, key, value) in enumerate(items):
        futures.append(await broker.publish(value, topic=topic, key=key, no_confirm=True,
                                            headers=(headers[i] if headers else None)))
    await asyncio.gather(*futures)


async def send_all(producer: AIOKafkaProducer, items: Sequence[tuple[str, bytes, bytes | None]],
                   headers: Sequence[dict[str, str]] | None = None) -> None:
    """:func:`publish_all` through a :func:`bulk_producer`, for relays that send thousands a second
    (a quarter of the CPU per message of the broker's publish)."""
    futures = []
    for i, (topic, key, value) in enumerate(items):
        extra = [(k, v.encode()) for k, v in headers[i].items()] if headers else None
        futures.append(await producer.send(topic, value, key=key, headers=extra))
    await asyncio.gather(*futures)


async def pause_then_raise(error: BaseException) -> None:
    """Let the batch be read again later: wait a little so a failing dependency can recover."""
    await asyncio.sleep(RETRY_PAUSE_SECONDS)
    raise error


async def start_when_reachable(start: Any, what: str = "Kafka", stop: Any = None) -> None:
    """Await ``start()`` until it succeeds: a service comes up before Kafka does and waits for it.
    ``stop()`` undoes a start that failed part way: a broker starts each of its subscribers again,
    and one started before the failure went on reading unwatched beside its replacement."""
    delay = 0.5
    while True:
        try:
            await start()
            return
        except Exception as error:  # noqa: BLE001 - logged; we try again
            log.warning("%s not reachable yet (%s); retrying in %.1fs", what, type(error).__name__, delay)
            if stop is not None:
                try:
                    await stop()
                except Exception as stopping:  # noqa: BLE001 - what did start is let go as far as it can be
                    log.warning("stopping a partial start failed: %s", type(stopping).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


def coordination_failure(subscriber: Any) -> BaseException | None:
    """The error that ended this subscriber's consumer-group coordination, if one did."""
    coordinator = getattr(getattr(subscriber, "consumer", None), "_coordinator", None)  # aiokafka's GroupCoordinator
    task = getattr(coordinator, "_coordination_task", None)
    if task is None or not task.done() or task.cancelled():
        return None
    return task.exception()


def consuming(broker: KafkaBroker | None) -> bool:
    """Whether every subscriber of ``broker`` reads now: its consumer is started, its group's
    coordination has not ended, and it knows the broker that coordinates its group (aiokafka
    forgets that broker when it cannot be reached, and looks for it again). For ``/healthz``:
    true once at start, it said nothing of a broker lost or a consumer stalled since."""
    if broker is None or not broker.subscribers:
        return False
    for subscriber in broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None or coordination_failure(subscriber) is not None:
            return False
        coordinator = getattr(consumer, "_coordinator", None)
        if coordinator is None or getattr(coordinator, "coordinator_id", 0) is None:
            return False
    return True


async def keep_consumers_reading(broker: KafkaBroker, every_seconds: float = 5.0) -> None:
    """Restart any subscriber whose consumer group stopped coordinating.

    aiokafka ends a group's coordination on an error it does not expect and never restarts it:
    the consumer then fails every read, faststream logs that every five seconds and reads nothing,
    and the service still answers its health check. A restarted subscriber is a new consumer that
    rejoins the group and reads on from the committed offsets; a batch that was in flight is read
    again, which every handler of the mesh takes as the same batch.
    """
    failed_restarts: set[int] = set()
    while True:
        await asyncio.sleep(every_seconds)
        for subscriber in broker.subscribers:
            error = coordination_failure(subscriber)
            if error is None and id(subscriber) not in failed_restarts:
                continue
            if error is not None:
                log.error("consumer group %s stopped coordinating (%r); restarting its consumer",
                          subscriber.group_id, error)
            try:
                await subscriber.stop()
                await subscriber.start()
                failed_restarts.discard(id(subscriber))
                log.info("the consumer of group %s is reading again", subscriber.group_id)
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                failed_restarts.add(id(subscriber))
                log.exception("could not restart the consumer of group %s; trying again shortly", subscriber.group_id)
