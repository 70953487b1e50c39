"""JSON log lines carry the event, its extra fields and, inside a traced request or task, the trace and span ids."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from common.log_format import JsonFormatter


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json_log")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_a_line_is_one_json_object_with_its_extra_fields_and_no_trace_outside_a_span():
    logger, stream = capture()
    logger.warning("sync.page.retry", extra={"integration": "i-1", "attempt": 2, "detail": {"status": 503}})
    line = json.loads(stream.getvalue().strip())
    assert line["event"] == "sync.page.retry" and line["level"] == "WARNING" and line["logger"] == "tests.json_log"
    assert line["integration"] == "i-1" and line["attempt"] == 2 and line["detail"] == {"status": 503}
    assert "trace_id" not in line and "span_id" not in line


def test_inside_a_span_the_line_carries_its_trace_and_span_ids():
    logger, stream = capture()
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("request") as span:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("api.unhandled_error", extra={"reference": "r-1"})
    line = json.loads(stream.getvalue().strip())
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}" and line["span_id"] == f"{context.span_id:016x}"
    assert "ValueError: boom" in line["exception"] and line["reference"] == "r-1"
