"""CSV import under realistic inputs, through the real upload → import → export path: addresses, ragged rows, quoting, long values, manager links."""

from __future__ import annotations

import csv
import io

import pytest

from people.models import Person
from sync.csv_import import email_problem, quoted_cells
from sync.models import JobStatus
from tests.sync.test_csv_import import run

pytestmark = pytest.mark.django_db


def log_of(api, job, event):
    return {line["data"]["line"]: line for line in api.get(f"/api/sync-jobs/{job.pk}/log/?page_size=500").json()["results"] if line["event"] == event}


@pytest.mark.parametrize(
    "address, reason",
    [
        ("name@acme..example", "has an invalid domain"),
        ("name@.acme.example", "has an invalid domain"),
        ("name@acme.example.", "has an invalid domain"),
        ("name@-acme.example", "has an invalid domain"),
        ("name@acme-.example", "has an invalid domain"),
        ("name@localhost", "is not an email address"),
        (".name@acme.example", "invalid part before the @"),
        ("na..me@acme.example", "invalid part before the @"),
        ("a@b@acme.example", "is not an email address"),
    ],
)
def test_malformed_addresses_are_rejected_with_the_reason(api, organization, address, reason, django_capture_on_commit_callbacks):
    content = f"email,name\nok@acme.example,Ok\n{address},Bad\n".encode()
    _, job = run(api, content, django_capture_on_commit_callbacks)
    assert job.status == JobStatus.PARTIAL and (job.created_count, job.error_count) == (1, 1)
    assert reason in log_of(api, job, "csv.row_rejected")[3]["data"]["reason"]
    assert list(Person.objects.filter(organization=organization).values_list("email", flat=True)) == ["ok@acme.example"]


def test_well_formed_addresses_pass():
    for address in ("a@acme.example", "first.last+tag@sub.acme-corp.example", "zoë@bücher.example", "x@a1.example"):
        assert email_problem(address) == "", address


def test_ragged_rows_missing_cells_are_empty_surplus_empty_ignored_surplus_values_warned(api, organization, django_capture_on_commit_callbacks):
    content = (
        b"email,name,title,department\n"  # 1
        b"short@acme.example,Short\n"  # 2 missing trailing cells: empty
        b"padded@acme.example,Padded,Eng,R&D,,,\n"  # 3 surplus empty cells: ignored
        b"extra@acme.example,Extra,Eng,R&D,,stray value,\n"  # 4 a surplus value: warned, imported
    )
    _, job = run(api, content, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.SUCCEEDED and (job.created_count, job.error_count) == (3, 0) and job.metadata["warnings"] == 1
    warnings = log_of(api, job, "csv.row_warning")
    assert list(warnings) == [4] and warnings[4]["level"] == "warning"
    assert warnings[4]["message"] == "Line 4: has 7 cells, the header has 4; the values in column 6 (beyond the header) are ignored"
    short = Person.objects.get(organization=organization, email="short@acme.example")
    assert (short.display_name, short.title, short.department) == ("Short", "", "")
    extra = Person.objects.get(organization=organization, email="extra@acme.example")
    assert (extra.title, extra.department) == ("Eng", "R&D")
    finished = log_of_events(api, job)["import.finished"]
    assert "1 warnings (each names its line)" in finished["message"] and finished["level"] == "warning"


def log_of_events(api, job):
    return {line["event"]: line for line in api.get(f"/api/sync-jobs/{job.pk}/log/?page_size=500").json()["results"]}


def test_manager_links_to_rejected_or_unknown_rows_are_reported_by_line(api, organization, django_capture_on_commit_callbacks, settings):
    settings.BASTION_CSV_IMPORT_BATCH_SIZE = 2  # the rejected manager and the reports sit in different batches
    content = (
        b"email,name,manager\n"  # 1
        b"boss@acme.example,,\n"  # 2 rejected: name is empty
        b"a@acme.example,A,boss@acme.example\n"  # 3 → rejected manager
        b"b@acme.example,B,ghost@acme.example\n"  # 4 → nobody known
        b"c@acme.example,C,a@acme.example\n"  # 5 → linked
        b"d@acme.example,D,BOSS@acme.example\n"  # 6 → rejected manager (case-insensitive)
        b"e@acme.example,E,not an address\n"  # 7 → the manager cell is not an address
    )
    _, job = run(api, content, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.PARTIAL and (job.created_count, job.error_count) == (5, 1)
    warnings = {line: entry["message"] for line, entry in log_of(api, job, "csv.row_warning").items()}
    assert warnings == {
        3: "Line 3: its manager's row (line 2) was rejected (name is empty); no manager link is set",
        4: "Line 4: no imported or known person has its manager's email; no manager link is set",
        6: "Line 6: its manager's row (line 2) was rejected (name is empty); no manager link is set",
        7: "Line 7: manager email 'not an address' is not an email address; no manager link is set",
    }
    assert job.metadata["warnings"] == 4
    assert Person.objects.get(organization=organization, email="c@acme.example").manager.email == "a@acme.example"
    # Reports name lines, never the addresses involved.
    assert all("boss@" not in message and "ghost@" not in message for message in warnings.values())


def test_quoted_cells_keep_their_content_unquoted_padding_is_stripped_export_stays_guarded(api, organization, django_capture_on_commit_callbacks):
    content = (
        b'email,name,title,department\nquoted@acme.example,"  Two Spaces  ","\t=1+1", Padded Dept \n  plain@acme.example  ,\tPlain Name\t,  Engineer,R&D\n'
    )
    _, job = run(api, content, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.SUCCEEDED and job.created_count == 2
    quoted = Person.objects.get(organization=organization, email="quoted@acme.example")
    assert (quoted.display_name, quoted.title, quoted.department) == ("  Two Spaces  ", "\t=1+1", "Padded Dept")
    plain = Person.objects.get(organization=organization, email="plain@acme.example")
    assert (plain.display_name, plain.title) == ("Plain Name", "Engineer")

    exported = list(csv.DictReader(io.StringIO(b"".join(api.get("/api/people/export.csv").streaming_content).decode())))
    row = next(r for r in exported if r["email"] == "quoted@acme.example")
    assert row["title"] == "'\t=1+1" and row["name"] == "  Two Spaces  "


def test_quoted_cells_reads_rfc4180_quoting():
    assert quoted_cells('a,"b",c\r\n', ",") == [False, True, False]
    assert quoted_cells('"a ""x"", y";b;"c\nd"\n', ";") == [True, False, True]
    assert quoted_cells('a, "b",', ",") == [False, False, False]
    assert quoted_cells('""', ",") == [True]


def test_values_longer_than_their_field_are_never_cut_silently(api, organization, django_capture_on_commit_callbacks):
    long_title = "T" * 102_400
    content = (
        f"email,name,title,phone\nlong@acme.example,Long,{long_title},\nphone@acme.example,Phone,Eng,{'1' * 65}\nok@acme.example,Ok,Eng,+1 555\n"
    ).encode()
    _, job = run(api, content, django_capture_on_commit_callbacks)

    assert job.status == JobStatus.PARTIAL and (job.created_count, job.error_count) == (2, 1) and job.metadata["warnings"] == 1
    warning = log_of(api, job, "csv.row_warning")[2]
    assert warning["data"] == {"line": 2, "field": "title", "warning": "title is 102400 characters; kept its first 300 (the limit)"}
    assert log_of(api, job, "csv.row_rejected")[3]["data"]["reason"] == "phone is 65 characters, the limit is 64"
    assert Person.objects.get(organization=organization, email="long@acme.example").title == "T" * 300
    assert not Person.objects.filter(organization=organization, email="phone@acme.example").exists()
