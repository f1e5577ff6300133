"""Tracing costs nothing where nobody collects it, and a trace still passes through."""

import pytest

from contracts import telemetry

INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_without_an_exporter_no_span_is_recorded_but_the_trace_id_goes_on(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    tracer = telemetry.setup_tracing("test").get_tracer("test")
    with telemetry.span_from("work", INCOMING):
        assert not tracer.start_span("inner").is_recording()
        context = telemetry.current_trace_context()
    assert context["traceparent"].split("-")[1] == INCOMING.split("-")[1]


def test_with_an_exporter_spans_are_recorded(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = telemetry.setup_tracing("test")
    try:
        assert provider.get_tracer("test").start_span("work").is_recording()
    finally:
        provider.shutdown()


def test_without_an_exporter_a_consumer_span_costs_no_parsing(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    provider = telemetry.setup_tracing("test")
    assert not telemetry.records_spans(provider)
    # The process's provider is set once per process: this one stands in for it, whatever ran before.
    monkeypatch.setattr(telemetry.trace, "get_tracer_provider", lambda: provider)
    span = telemetry.start_span_from("work", "not a traceparent at all")
    # The invalid span itself: a span made the long way (the traceparent parsed, then sampled out)
    # records nothing either, and would cost the parsing this is for.
    assert span is telemetry.trace.INVALID_SPAN
    span.end()


def test_with_an_exporter_the_broker_gets_spans(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = telemetry.setup_tracing("test")
    try:
        assert telemetry.records_spans(provider)
    finally:
        provider.shutdown()


def test_the_standards_ways_of_naming_exporters_are_taken(monkeypatch):
    """OTEL_TRACES_EXPORTER=otlp,console (a list, as the standard allows) stopped every service at
    start; OTEL_EXPORTER_OTLP_PROTOCOL=GRPC quietly sent protobuf over HTTP to a gRPC collector."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp, console")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", " GRPC")
    kinds = [type(e).__module__ + "." + type(e).__name__ for e in telemetry._exporters()]
    assert kinds == ["opentelemetry.exporter.otlp.proto.grpc.trace_exporter.OTLPSpanExporter",
                     "opentelemetry.sdk.trace.export.ConsoleSpanExporter"]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="http/json"):  # no exporter speaks it: refused at start, not unseen
        telemetry._exporters()
