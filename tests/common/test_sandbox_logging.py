"""The in-process sandbox logs its requests through `logging`, never through a stream a test run may have closed."""

import logging

import requests

from tests.conftest import wait_for


def test_in_process_sandbox_logs_requests_through_the_sandbox_logger(sandbox, caplog):
    caplog.set_level(logging.INFO, logger="sandbox.requests")
    requests.get(f"{sandbox}/_control/faults/sandbox_directory", timeout=5).raise_for_status()

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "sandbox.requests" and "/_control/faults/sandbox_directory" in r.getMessage()]

    (line,) = wait_for(logged, timeout=10, message="the request line to be logged")
    assert '"GET /_control/faults/sandbox_directory HTTP/1.1" 200' in line
    # werkzeug's own logger would add a handler bound to the stderr of the moment, which pytest closes at the end of the run.
    assert logging.getLogger("werkzeug").handlers == []
