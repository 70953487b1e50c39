"""CSV import batches read and validated without the database, one batch ahead of the merge in a reader thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sync.csv_import import row_to_person, surplus_warning
from sync.services.import_reports import email_digest


@dataclass
class CheckedBatch:
    """One batch read as people: the valid ones by external id, rejected lines with reasons, warnings as (line, field, message)."""

    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str, str]] = field(default_factory=list)
    rejected_emails: dict[int, str] = field(default_factory=dict)  # line → digest of the rejected row's email (manager links to it are reported)


def check_batch(batch: list[tuple[int, list[str]]], index: dict[str, int], width: int, job_pk: str) -> CheckedBatch:
    """Validate one batch without the database: rows to people, bad rows and duplicates within the batch by line."""
    checked = CheckedBatch()
    first_line: dict[str, int] = {}
    for line, row in batch:
        if not any(cell.strip() for cell in row):
            continue  # a blank line is not a record
        # Ragged rows: missing trailing cells are empty (row_to_person reads past the end as ""), surplus empty cells are ignored.
        if len(row) > width and (surplus := surplus_warning(row, width)):
            checked.warnings.append((line, "", surplus))
        outcome = row_to_person(row, index)
        checked.warnings.extend((line, field_name, message) for field_name, message in outcome.warnings)
        person = outcome.person
        if person is None:
            checked.bad.append((line, outcome.reason))
            checked.rejected_emails[line] = email_digest(row[index["email"]] if index.get("email", width) < len(row) else "")
            continue
        key = person["external_id"]
        if key in first_line:
            checked.bad.append((line, f"duplicate of line {first_line[key]} ({key}); not imported twice"))
            continue
        first_line[key] = line
        person["_import_job"], person["_line"] = job_pk, line
        checked.people[key] = person
    return checked


class CheckedAhead:
    """Read and validate the next batch in a thread while the current one is merged and committed (the database works on
    its COPY and foreign-key checks meanwhile); one batch ahead, so memory stays two batches. Yields (rows, CheckedBatch)."""

    def __init__(self, rows: Iterator[tuple[int, list[str]]], size: int, index: dict[str, int], width: int, job_pk: str):
        self._rows, self._size, self._index, self._width, self._job_pk = rows, size, index, width, job_pk
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="csv-import-read-ahead", daemon=True)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            batch: list[tuple[int, list[str]]] = []
            for line, row in self._rows:
                batch.append((line, row))
                if len(batch) >= self._size:
                    if not self._put((batch, check_batch(batch, self._index, self._width, self._job_pk))):
                        return
                    batch = []
            if batch and not self._put((batch, check_batch(batch, self._index, self._width, self._job_pk))):
                return
            self._put(None)
        except BaseException as error:  # noqa: BLE001 - re-raised in the importing thread (CsvFormatError: a clear job failure)
            self._put(error)

    def __enter__(self) -> Iterator[tuple[list[tuple[int, list[str]]], CheckedBatch]]:
        self._thread.start()
        return self._batches()

    def _batches(self) -> Iterator[tuple[list[tuple[int, list[str]]], CheckedBatch]]:
        while (item := self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()  # the reader stops at its next batch; the file is closed only after it has
        self._thread.join()
