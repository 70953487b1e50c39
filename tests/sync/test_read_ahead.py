"""Reading the next page while the current one is written: a page is taken only by its own job, sequence and position,
a read's error surfaces where the step would have read, and nothing else uses the connector while a read runs."""

from __future__ import annotations

import threading

import pytest

from integrations.connectors.base import Page
from integrations.errors import ApiError
from sync.services import read_ahead


def page(name: str) -> Page:
    return Page(records=[{"id": name}], next_page=None)


def test_the_page_is_taken_by_its_job_sequence_and_position_once():
    read_ahead.start("job-a", 3, {"cookie": "x", "offset": 500}, lambda: page("p3"))
    assert read_ahead.take("job-a", 3, {"offset": 500, "cookie": "x"}).records == [{"id": "p3"}]  # key order does not matter
    assert read_ahead.take("job-a", 3, {"offset": 500, "cookie": "x"}) is None  # taken once


def test_another_position_reads_for_itself_after_the_running_read_finished():
    release = threading.Event()
    finished = threading.Event()

    def slow_read() -> Page:
        release.wait(5)
        finished.set()
        return page("p2")

    read_ahead.start("job-b", 2, {"offset": 1}, slow_read)
    threading.Timer(0.05, release.set).start()
    assert read_ahead.take("job-b", 2, {"offset": 999}) is None  # a replayed step asks for another position
    assert finished.is_set()  # it returned only once the background read no longer used the connector
    read_ahead.forget("job-b")


def test_a_read_error_is_raised_where_the_step_takes_the_page():
    def failing() -> Page:
        raise ApiError("directory unavailable")

    read_ahead.start("job-c", 1, None, failing)
    with pytest.raises(ApiError, match="directory unavailable"):
        read_ahead.take("job-c", 1, None)


def test_forget_drops_the_page_of_a_superseded_step():
    read_ahead.start("job-d", 4, {"offset": 2}, lambda: page("p4"))
    read_ahead.forget("job-d")
    assert read_ahead.take("job-d", 4, {"offset": 2}) is None
