"""OpenTelemetry set-up shared by every service.

Spans are exported over OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
(the exporter reads its own standard variables); otherwise tracing still runs,
so trace ids reach logs and the interactions table, but nothing is sent.
Call `setup_telemetry` before creating any grpc.aio server or channel: the
instrumentors patch their constructors.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

_instrumented = False


def setup_telemetry(service_name: str, exporter: SpanExporter | None = None) -> Callable[[], None]:
    """Installs a tracer provider and the grpc/asyncpg instrumentation.

    `exporter` is for tests (an in-memory exporter, flushed synchronously).
    Returns a function that flushes and shuts the provider down.
    """
    global _instrumented
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over the default name.
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)

    if not _instrumented:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer

        GrpcAioInstrumentorServer().instrument()
        GrpcAioInstrumentorClient().instrument()
        # Parameters may hold customer text or secrets: never record them.
        AsyncPGInstrumentor(capture_parameters=False).instrument()
        _instrumented = True

    return provider.shutdown
