"""CSV preview and import refuse hostile shapes with a clear 400, with bounded memory (issue 13, Low)."""

from __future__ import annotations

import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from sync.csv_import import MAX_COLUMNS, MAX_RECORD_CHARS, CsvFormatError, detect, iter_rows


def preview(api, content: bytes):
    return api.post("/api/imports/csv/preview", {"file": SimpleUploadedFile("people.csv", content, content_type="text/csv")}, format="multipart")


def test_three_million_columns_are_refused_without_parsing_them(api, tmp_path):
    content = b"email," + b"a," * 3_000_000 + b"\nx@y.example\n"
    tracemalloc.start()
    response = preview(api, content)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert response.status_code == 400, response.content[:300]
    body = response.json()["error"]
    assert body["code"] == "invalid_csv" and f"longer than {MAX_RECORD_CHARS:,} characters" in body["message"]
    # The upload itself is held by the test client (~6 MB); parsing it would have cost hundreds of megabytes.
    assert peak < 40_000_000, f"peak {peak} bytes"


def test_too_many_columns_on_a_short_line_are_refused(api):
    header = ",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)).encode()
    response = preview(api, b"email," + header + b"\nx@y.example\n")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_csv" and "columns" in response.json()["error"]["message"]


def test_an_unclosed_quote_cannot_make_one_record_of_the_whole_file(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_bytes(b'email,name\nx@y.example,"never closed\n' + b"more text,\n" * 40_000)
    with path.open("rb") as stream, pytest.raises(CsvFormatError, match="(longer|larger) than"):
        list(iter_rows(stream, detect(stream)))


def test_ordinary_files_are_untouched(api):
    response = preview(api, b"email,name,title\nava@acme.example,Ava,CEO\n")
    assert response.status_code == 200 and response.json()["headers"] == ["email", "name", "title"]
