"""OpenTelemetry traces: web request → Celery task → vendor HTTP call and SQL, exported over OTLP; off unless configured.

On when OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the SDK's own variables) or
BASTION_OTEL_ENDPOINT is set. The official instrumentations do the work (Django, Celery, requests, psycopg); Celery's
carries the trace context in each message's headers, so a worker's spans join the request that enqueued the task.
Every process configures itself after it forks (gunicorn worker, Celery pool process): the exporter's thread does
not survive a fork.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

logger = logging.getLogger(__name__)

_configured: dict[str, Any] = {}
_lock = threading.Lock()


def otlp_traces_endpoint() -> str:
    """The OTLP/HTTP traces URL to export to, or '' when tracing is off."""
    explicit = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
    if explicit:
        return explicit
    base = os.environ.get("BASTION_OTEL_ENDPOINT", "") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    if not base:
        try:
            from django.conf import settings

            base = str(getattr(settings, "BASTION_OTEL_ENDPOINT", "") or "")
        except Exception:  # noqa: BLE001 - settings not importable yet (a bare script): tracing stays off
            base = ""
    return base.rstrip("/") + "/v1/traces" if base else ""


def tracing_configure(*, service_name: str, exporter: Any = None, simple: bool = False) -> bool:
    """Install a tracer provider and the instrumentations once per process; True when tracing is on.

    `exporter` replaces the OTLP exporter (tests pass an in-memory one); `simple` exports each span as it ends.
    """
    with _lock:
        if _configured:
            return True
        endpoint = otlp_traces_endpoint()
        if exporter is None and not endpoint:
            return False
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=endpoint)
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(exporter) if simple else BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _instrument(provider)
        _configured.update(provider=provider, service_name=service_name)
        logger.info("telemetry.tracing_on", extra={"service": service_name, "endpoint": endpoint or type(exporter).__name__})
        return True


def _instrument(provider: Any) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    DjangoInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    # Django opens its connections through psycopg.connect, which this wraps: one span per SQL statement.
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)


def tracing_shutdown() -> None:
    """Flush pending spans, remove the instrumentations and forget the provider (process exit, tests)."""
    with _lock:
        provider = _configured.pop("provider", None)
        _configured.clear()
        if provider is None:
            return
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        for instrumentor in (DjangoInstrumentor(), CeleryInstrumentor(), RequestsInstrumentor(), PsycopgInstrumentor()):
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        provider.shutdown()


def tracing_flush(timeout_millis: int = 5000) -> None:
    """Export what is buffered now (before a worker process exits)."""
    provider = _configured.get("provider")
    if provider is not None:
        provider.force_flush(timeout_millis)
