"""CSV import of people over the API: encodings, delimiters, quoted newlines, duplicates, bad rows by line, mapping errors, export guard."""

from __future__ import annotations

import codecs
import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from people.models import Person, PersonIdentity
from sync.csv_import import detect, guard_cell, iter_rows, suggest_mapping
from sync.models import DataSyncJob, JobStatus

pytestmark = pytest.mark.django_db

HEADER = "E-mail,Full name,Job title,Department,Manager\n"
ROWS = (
    "ava.chen@acme.example,Ava Chen,Chief Executive Officer,Executive,\n"
    "Marcus.Okafor@ACME.example,Marcus Okafor,CISO,Security,ava.chen@acme.example\n"
    'zoe.muller@acme.example,Zoë Müller,"Head of\nCommunications",Comms,ava.chen@acme.example\n'
)


def upload(api, content: bytes, mapping: dict | None = None, name: str = "people.csv"):
    """Preview, then import with the suggested mapping (or the given one); returns (preview, job response)."""
    with_file = {"file": SimpleUploadedFile(name, content, content_type="text/csv")}
    preview = api.post("/api/imports/csv/preview", with_file, format="multipart")
    assert preview.status_code == 200, preview.content
    body = preview.json()
    chosen = mapping if mapping is not None else body["suggested_mapping"]
    return body, api.post("/api/imports/csv", {"upload_id": body["upload_id"], "mapping": json.dumps(chosen)}, format="multipart")


def run(api, content: bytes, django_capture_on_commit_callbacks, mapping=None):
    with django_capture_on_commit_callbacks(execute=True):
        preview, response = upload(api, content, mapping)
    assert response.status_code == 202, response.content
    return preview, DataSyncJob.objects.get(pk=response.json()["id"])


@pytest.mark.parametrize(
    "encoded, encoding",
    [
        ((HEADER + ROWS).encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + (HEADER + ROWS).encode("utf-8"), "utf-8-sig"),
        ((HEADER + ROWS).encode("utf-16"), "utf-16"),
        ((HEADER + ROWS).encode("latin-1"), "latin-1"),
    ],
)
def test_encodings_import_identically(api, organization, encoded, encoding, django_capture_on_commit_callbacks):
    preview, job = run(api, encoded, django_capture_on_commit_callbacks)

    assert preview["encoding"] == encoding and preview["delimiter"] == ","
    assert preview["suggested_mapping"] == {
        "email": "E-mail",
        "name": "Full name",
        "title": "Job title",
        "department": "Department",
        "manager_email": "Manager",
    }
    assert preview["rows"][2]["values"][2] == "Head of\nCommunications" and preview["rows"][2]["line"] == 4
    assert job.status == JobStatus.SUCCEEDED and job.job_type == "import" and (job.created_count, job.error_count) == (3, 0)
    zoe = Person.objects.get(organization=organization, email="zoe.muller@acme.example")
    assert zoe.display_name == "Zoë Müller" and zoe.title == "Head of\nCommunications"
    assert zoe.manager.email == "ava.chen@acme.example" and zoe.provenance["title"]["source"] == "csv"
    assert Person.objects.get(email="marcus.okafor@acme.example").display_name == "Marcus Okafor"


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_delimiters(api, delimiter, django_capture_on_commit_callbacks):
    text = (HEADER + ROWS).replace(",", delimiter)
    preview, job = run(api, text.encode(), django_capture_on_commit_callbacks)
    assert preview["delimiter"] == delimiter and job.created_count == 3


def test_bad_rows_reported_with_line_and_reason_duplicates_imported_once(api, organization, django_capture_on_commit_callbacks):
    content = (
        b"email;name;title\n"  # line 1
        b"a@acme.example;Alpha;One\n"  # 2
        b";No Email;Two\n"  # 3
        b"not-an-email;Bad Email;Three\n"  # 4
        b"b@acme.example;;Four\n"  # 5
        b"A@ACME.example;Alpha Again;Five\n"  # 6 duplicate of line 2 (case-insensitive)
        b"c@acme.example;Gamma\n"  # 7 too few fields: the missing trailing cell is empty
        b"\n"  # 8 blank line: not a record
        b'd@acme.example;"Delta\nQuoted";Six\n'  # 9-10
        b"e@acme.example;Epsilon;Seven\n"  # 11
    )

    _, job = run(api, content, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.PARTIAL and job.created_count == 4 and job.error_count == 4
    rejected = {
        line["data"]["line"]: line["data"]["reason"]
        for line in api.get(f"/api/sync-jobs/{job.pk}/log/").json()["results"]
        if line["event"] == "csv.row_rejected"
    }
    assert rejected == {
        3: "email is empty",
        4: "email 'not-an-email' is not an email address",
        5: "name is empty",
        6: "duplicate of line 2 (a@acme.example); not imported twice",
    }
    assert sorted(Person.objects.filter(organization=organization).values_list("email", flat=True)) == [
        "a@acme.example",
        "c@acme.example",
        "d@acme.example",
        "e@acme.example",
    ]
    assert Person.objects.get(email="c@acme.example").title == ""
    assert Person.objects.get(email="a@acme.example").title == "One"


def test_duplicates_across_batches_are_reported(api, organization, django_capture_on_commit_callbacks, settings):
    settings.BASTION_CSV_IMPORT_BATCH_SIZE = 2
    content = b"email,name\nx@acme.example,X\ny@acme.example,Y\nz@acme.example,Z\nx@acme.example,X again\n"
    _, job = run(api, content, django_capture_on_commit_callbacks)
    assert (
        job.created_count == 3 and job.error_count == 1 and job.error_log == [{"line": 5, "reason": "duplicate of line 2 (x@acme.example); not imported twice"}]
    )
    # Each batch committed the position after it (rows after the header, line of its last row): where a resumed run continues.
    assert (job.pages, job.next_page, job.metadata["batch_size"]) == (2, {"rows": 4, "line": 5}, 2)


def test_missing_required_columns_fail_before_anything_is_written(api, organization):
    content = b"Full name,Title\nAva,CEO\n"
    preview, response = upload(api, content)
    assert preview["problems"]["email"]
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_mapping"
    assert "email" in response.json()["error"]["fields"]
    assert not DataSyncJob.objects.exists() and not Person.objects.exists() and not PersonIdentity.objects.exists()
    _, bad_column = upload(api, b"email,name\na@b.example,A\n", mapping={"email": "Nope", "name": "name"})
    assert bad_column.status_code == 400 and bad_column.json()["error"]["fields"]["email"] == ["The file has no column named 'Nope'."]


def test_empty_and_foreign_uploads(api, api_for, outsider):
    empty = api.post("/api/imports/csv/preview", {"file": SimpleUploadedFile("e.csv", b"")}, format="multipart")
    assert empty.status_code == 400
    preview, _ = upload(api, b"email,name\na@b.example,A\n", mapping={})
    other = api_for(outsider).post("/api/imports/csv/preview", {"upload_id": preview["upload_id"]}, format="multipart")
    assert other.status_code == 404


def test_viewer_cannot_import(api_for, users_by_role):
    response = api_for(users_by_role[Role.VIEWER]).post("/api/imports/csv/preview", {"file": SimpleUploadedFile("p.csv", b"email\n")}, format="multipart")
    assert response.status_code == 403


def test_export_guards_formula_injection(api, organization, django_capture_on_commit_callbacks):
    content = b'email,name,title,department\nevil@acme.example,=HYPERLINK("http://x"),+1 boss,@SUM(A1)\nok@acme.example,"-2+3",\tTabbed,Plain\n'
    run(api, content, django_capture_on_commit_callbacks)

    response = api.get("/api/people/export.csv")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    evil = next(r for r in rows if r["email"] == "evil@acme.example")
    assert evil["name"] == '\'=HYPERLINK("http://x")' and evil["title"] == "'+1 boss" and evil["department"] == "'@SUM(A1)"
    ok = next(r for r in rows if r["email"] == "ok@acme.example")
    assert ok["name"] == "'-2+3" and ok["department"] == "Plain" and ok["sources"] == "csv"
    assert guard_cell("\rcmd") == "'\rcmd" and guard_cell("plain") == "plain" and guard_cell(None) == ""


def test_streaming_reader_keeps_memory_flat(tmp_path):
    """100,000 rows are read with a bounded peak: the reader holds one row at a time, never the file."""
    import tracemalloc

    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,title\n")
        for i in range(100_000):
            out.write(f"person{i}@bulk.example,Person {i},Engineer\n")
    tracemalloc.start()
    with path.open("rb") as stream:
        dialect = detect(stream)
        count = sum(1 for _ in iter_rows(stream, dialect))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 100_001
    assert path.stat().st_size > 3_500_000 and peak < 1_000_000, f"peak {peak} bytes"


def test_suggest_mapping_from_various_headers():
    assert suggest_mapping(["First Name", "Last Name", "Work Email", "Position", "Dept.", "Mobile", "Reports To", "Employee ID"]) == {
        "email": "Work Email",
        "given_name": "First Name",
        "family_name": "Last Name",
        "title": "Position",
        "department": "Dept.",
        "phone": "Mobile",
        "manager_email": "Reports To",
        "external_id": "Employee ID",
    }
