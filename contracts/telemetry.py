"""One OpenTelemetry set-up for every service, and W3C trace context carried inside messages.

The exporter is chosen by the standard variables: ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``
or ``none``, the default), ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf`` or ``grpc``),
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME`` and the ``OTEL_BSP_*`` batching knobs.

Context also travels in each message's envelope (``traceparent``), not only in Kafka headers,
because the router publishes from its outbox long after the consuming span has ended.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF


def _exporters() -> list[SpanExporter]:
    """The exporters OTEL_TRACES_EXPORTER names: a comma-separated list, as the standard has it."""
    kinds = [k.strip().lower() for k in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",")]
    return [_exporter(kind) for kind in kinds if kind not in ("", "none")]


def _exporter(kind: str) -> SpanExporter:
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip().lower()
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        elif protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        else:  # http/json: no exporter of the SDK speaks it; sending protobuf instead would be refused unseen
            raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (grpc, http/protobuf)")
        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r} is not supported (otlp, console, none)")


def setup_tracing(service_name: str) -> TracerProvider:
    """Build this process's tracer provider and make it the global one."""
    # OTEL_SERVICE_NAME, when set, wins as the standard says; nothing is written back to the
    # environment, so an in-process test app does not name every process started after it.
    exporters = _exporters()
    # With nowhere to send spans, none is recorded: a span per request and per message is real
    # work on every hot path, for nothing. Trace context still flows through (unsampled). With an
    # exporter, the standard OTEL_TRACES_SAMPLER / _ARG choose (default: every trace).
    provider = TracerProvider(resource=Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name}),
        **({} if exporters else {"sampler": ALWAYS_OFF}))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def current_trace_context() -> dict[str, str]:
    """The current span's W3C context, as envelope fields (``traceparent``, ``tracestate``)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {k: v for k, v in carrier.items() if k in ("traceparent", "tracestate")}


@cache
def _tracer() -> trace.Tracer:
    """Looked up once: a span per message is on the hot path of every consumer."""
    return trace.get_tracer("mesh1022")


def _parent(traceparent: str | None, tracestate: str | None) -> context.Context:
    carrier = {"traceparent": traceparent or "", "tracestate": tracestate or ""}
    return propagate.extract({k: v for k, v in carrier.items() if v})


def records_spans(provider: trace.TracerProvider | None = None) -> bool:
    """Whether spans made through ``provider`` (the process's own, by default) are recorded: not
    when ``setup_tracing`` found no exporter and chose to sample nothing."""
    return getattr(provider or trace.get_tracer_provider(), "sampler", None) is not ALWAYS_OFF


def start_span_from(name: str, traceparent: str | None, tracestate: str | None = None) -> trace.Span:
    """A consumer span continuing a message's trace, not made current: for work done in batches,
    where the caller ends each message's span when the batch is done.

    Where nothing is recorded this is the invalid span, made without parsing the message's context:
    parsing and sampling it for nothing took 12 % of oversight's CPU, a span per event.
    """
    if not records_spans():
        return trace.INVALID_SPAN
    return _tracer().start_span(name, context=_parent(traceparent, tracestate), kind=trace.SpanKind.CONSUMER)


@contextmanager
def span_from(name: str, traceparent: str | None, tracestate: str | None = None, **attributes: str) -> Iterator[trace.Span]:
    """A span that continues the trace a message carries in its envelope."""
    token = context.attach(_parent(traceparent, tracestate))
    try:
        with _tracer().start_as_current_span(name, kind=trace.SpanKind.CONSUMER) as span:
            for key, value in attributes.items():
                span.set_attribute(key, value)
            yield span
    finally:
        context.detach(token)
