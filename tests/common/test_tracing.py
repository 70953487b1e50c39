"""One trace from the web request through a real Celery worker to the vendor HTTP calls and SQL, collected over OTLP."""
# ruff: noqa: F811 - fixtures imported from the sync suite are parameters here

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from common.telemetry import tracing_configure, tracing_shutdown
from integrations.models import DataSource
from sync.models import DataSyncJob, JobStatus
from tests.conftest import wait_for
from tests.sync.conftest import _sync_settings, make_directory  # noqa: F401 - fixtures


class OtlpCollector:
    """An OTLP/HTTP (protobuf) traces receiver on a loopback port: what a real collector would be handed."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    service = next((a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), "")
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            collector.spans.append(
                                {
                                    "service": service,
                                    "name": span.name,
                                    "kind": span.kind,
                                    "trace_id": span.trace_id.hex(),
                                    "span_id": span.span_id.hex(),
                                    "parent_id": span.parent_span_id.hex(),
                                    "attributes": {a.key: a.value.string_value or a.value.int_value for a in span.attributes},
                                }
                            )
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def otlp_collector() -> Iterator[OtlpCollector]:
    collector = OtlpCollector()
    yield collector
    collector.stop()


@pytest.fixture
def web_spans() -> Iterator[InMemorySpanExporter]:
    """This (web) process traced into memory; instrumentations removed afterwards."""
    exporter = InMemorySpanExporter()
    assert tracing_configure(service_name="bastion-web", exporter=exporter, simple=True)
    yield exporter
    tracing_shutdown()


def test_tracing_is_off_without_an_endpoint(monkeypatch, settings):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "BASTION_OTEL_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    settings.BASTION_OTEL_ENDPOINT = ""
    assert tracing_configure(service_name="bastion-web") is False
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    assert not DjangoInstrumentor().is_instrumented_by_opentelemetry
    assert not any("opentelemetry" in m for m in settings.MIDDLEWARE)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_request_task_vendor_call_and_sql_share_one_trace(web_spans, otlp_collector, celery_worker_process, make_directory, organization, owner, api_for):
    integration = make_directory(organization, page_size=10)
    source = DataSource.objects.get(integration=integration, entity_type="people")
    celery_worker_process(concurrency=1, extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    web_spans.clear()

    response = api_for(owner).post(f"/api/data-sources/{source.pk}/sync", {}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["jobs"][0]["id"] if "jobs" in response.json() else response.json()["id"]
    wait_for(lambda: DataSyncJob.objects.get(pk=job_id).status == JobStatus.SUCCEEDED, timeout=90, message="the sync to succeed in the worker")
    job = DataSyncJob.objects.get(pk=job_id)

    local = web_spans.get_finished_spans()
    request_span = next(s for s in local if s.kind == SpanKind.SERVER and "sync" in s.name)
    publish = next(s for s in local if s.name == "apply_async/sync.tasks.sync_job_step")
    trace_id = f"{request_span.context.trace_id:032x}"
    assert publish.context.trace_id == request_span.context.trace_id
    # The publish span hangs under the request span (the job is enqueued when the request's transaction commits).
    by_id = {s.context.span_id: s for s in local}
    ancestor = publish
    while ancestor.parent is not None and ancestor.context.span_id != request_span.context.span_id:
        ancestor = by_id[ancestor.parent.span_id]
    assert ancestor is request_span

    parents = {f"{s.context.span_id:016x}": f"{s.parent.span_id:016x}" if s.parent else "" for s in local}
    root = f"{request_span.context.span_id:016x}"

    def reaches_request(span_id: str, known: dict[str, str]) -> bool:
        while span_id and span_id != root:
            span_id = known.get(span_id, "")
        return span_id == root

    def is_vendor_call(span: dict[str, Any]) -> bool:
        return span["kind"] == 3 and "sandbox_directory" in str(span["attributes"].get("url.full") or span["attributes"].get("http.url"))

    def worker_trace() -> list[dict[str, Any]]:
        """The worker's spans of this trace, once every page's call has arrived with its whole chain of parents."""
        spans = [s for s in otlp_collector.spans if s["trace_id"] == trace_id and s["service"] == "bastion-worker"]
        known = {**parents, **{s["span_id"]: s["parent_id"] for s in spans}}
        calls = [s for s in spans if is_vendor_call(s)]
        complete = len(calls) >= job.pages and all(reaches_request(s["span_id"], known) for s in spans)
        return spans if complete else []

    # Spans are exported as they end (a batch every 100 ms): wait until the last task's spans are in, then check the shape.
    spans = wait_for(worker_trace, timeout=30, message="the worker's spans at the OTLP collector, each descending from the request")
    known = {**parents, **{s["span_id"]: s["parent_id"] for s in spans}}
    task_runs = [s for s in spans if s["name"] == "run/sync.tasks.sync_job_step"]
    vendor_calls = [s for s in spans if is_vendor_call(s)]
    sql = [s for s in spans if "postgresql" in (str(s["attributes"].get("db.system")), str(s["attributes"].get("db.system.name")))]
    assert task_runs and vendor_calls and sql
    assert any(s["parent_id"] == f"{publish.context.span_id:016x}" for s in task_runs)  # context crossed the broker
    assert all(reaches_request(s["span_id"], known) for s in task_runs + vendor_calls + sql)
