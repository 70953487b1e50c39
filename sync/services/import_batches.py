"""CSV import batches read and validated without the database, before the merge writes them."""

from __future__ import annotations

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


def checked_batches(
    rows: Iterator[tuple[int, list[str]]], size: int, index: dict[str, int], width: int, job_pk: str
) -> Iterator[tuple[list[tuple[int, list[str]]], CheckedBatch]]:
    """The file's remaining rows in batches of `size`, each with its validation (one batch in memory at a time).

    Not read ahead in a thread: measured on 2026-12-07, a validating thread beside the merge made the import slower, because
    every database round trip of the merge then waits for the interpreter lock the CPU-bound validation holds."""
    batch: list[tuple[int, list[str]]] = []
    for line, row in rows:
        batch.append((line, row))
        if len(batch) >= size:
            yield batch, check_batch(batch, index, width, job_pk)
            batch = []
    if batch:
        yield batch, check_batch(batch, index, width, job_pk)


class BatchesAhead:
    """Batches taken one by one, the next one read early on request (while the database checks the current one's writes).

    A read error is kept and raised when that batch is taken, so it never undoes the batch being committed."""

    def __init__(self, batches: Iterator[tuple[list[tuple[int, list[str]]], CheckedBatch]]) -> None:
        self._batches = batches
        self._read = False
        self._next: tuple[list[tuple[int, list[str]]], CheckedBatch] | None = None
        self._error: Exception | None = None

    def read_next(self) -> None:
        """Read the next batch now (once) unless it was already read."""
        if self._read:
            return
        self._read = True
        try:
            self._next = next(self._batches, None)
        except Exception as error:  # noqa: BLE001 - raised again by take(), after the current batch committed
            self._error = error

    def take(self) -> tuple[list[tuple[int, list[str]]], CheckedBatch] | None:
        """The next batch (None at the end of the file); raises the error its reading met."""
        self.read_next()
        self._read = False
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        batch, self._next = self._next, None
        return batch
