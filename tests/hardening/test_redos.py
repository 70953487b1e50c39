"""ReDoS as a class: every check that reads attacker or vendor text finishes in linear time on pathological input.

Each case was seconds to minutes with the backtracking patterns these checks replaced (the e-mail pattern took 7 s on
"a@" + "." * 40000 + "@"); the bound below is one second, far above what a linear check needs, so the tests are not flaky.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from scenarios.models import ScenarioDataModel

BOUND_SECONDS = 1.0
DOTS = "a@" + "." * 40_000 + "@"  # the probe's input: quadratic for [^@]+\.[^@]+
LONG_RUN = "a" * 150_000 + "@"  # 150 KB before an "@": quadratic for a leading [\w.]* scanned from every position
SPACES = "{{" + " " * 150_000  # an opened placeholder followed by spaces: cubic for the lookahead placeholder pattern


def warmed(api: Any) -> Any:
    """One ordinary request first, so the bound measures the check and not the first request's imports and URL loading."""
    assert api.post("/api/scenarios/crisis_management/validate", {"values": {"title": "Warm-up"}}, format="json").status_code == 200
    return api


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


@pytest.mark.parametrize("value", [DOTS, LONG_RUN, "a" * 150_000, "@" * 150_000, "a@" + "b." * 75_000, "x" * 64 + "@" + "-." * 75_000])
def test_email_check_is_linear_and_refuses_pathological_addresses(value):
    from common.validators import is_email_address

    result, seconds = timed(lambda: is_email_address(value))
    assert result is False
    assert seconds < BOUND_SECONDS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ava.chen@acme.example", True),
        ("Ava+crisis@sub.acme.example", True),
        ("jö@exämple.de", True),
        ("a@b", False),
        ("a@.b", False),
        ("a@b..c", False),
        ("a b@c.de", False),
        ("a@b@c.de", False),
        ("<a@b.de>", False),
        ("x" * 65 + "@b.de", False),
        ("a@" + "b" * 64 + ".de", False),
    ],
)
def test_email_check_still_tells_addresses_apart(value, expected):
    from common.validators import is_email_address

    assert is_email_address(value) is expected


def test_validate_api_answers_a_viewer_quickly_on_a_pathological_email(users_by_role, api_for):
    """The probe's request: POST /api/scenarios/<type>/validate with the e-mail value, as a viewer."""
    api = warmed(api_for(users_by_role[Role.VIEWER]))
    values = {"incident_commander": {"email": DOTS}, "stakeholders": [{"email": DOTS, "role": "member"}]}
    response, seconds = timed(lambda: api.post("/api/scenarios/crisis_management/validate", {"values": values}, format="json"))
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert any("is not an email address" in message for message in body["errors"]["incident_commander"])
    assert seconds < BOUND_SECONDS


def test_csv_rows_are_checked_quickly(api_for, users_by_role):
    """The same e-mail check runs on every row of a stakeholder CSV (field import): 150 KB cells do not stall it."""
    api = warmed(api_for(users_by_role[Role.EDITOR]))
    cells = [DOTS, "a" * 120_000 + "@", "a@" + "b." * 60_000]  # under the csv module's 128 kB cell limit
    rows = "name,email,role\n" + "".join(f"Row {n},{value},member\n" for n, value in enumerate(cells))
    upload = SimpleUploadedFile("team.csv", rows.encode(), content_type="text/csv")
    response, seconds = timed(lambda: api.post("/api/scenarios/crisis_management/fields/stakeholders/import", {"file": upload}, format="multipart"))
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["value"] in ([], None) and len(body["errors"]) == 3
    assert all("is not an email address" in error["message"] for error in body["errors"])
    assert seconds < BOUND_SECONDS
    too_wide = SimpleUploadedFile("team.csv", ("name,email,role\nRow," + LONG_RUN + ",member\n").encode(), content_type="text/csv")
    response = api.post("/api/scenarios/crisis_management/fields/stakeholders/import", {"file": too_wide}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["code"] == "csv_invalid"


@pytest.fixture
def catastrophic_format(db):
    """The crisis definition with a format check written the way that backtracks exponentially in Python's re."""
    from scenarios.services import data_model_revise

    current = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    fields = copy.deepcopy(current.field_definitions)
    for field_def in fields:
        if field_def["key"] == "jira_project_key":
            field_def["validation"] = {"regex": "(a+)+", "regex_message": "Only a's."}
            field_def.pop("default", None)
    return data_model_revise(data_model=current, field_definitions=fields, validation_rules=current.validation_rules)


def test_ops_written_patterns_run_in_linear_time(users_by_role, api_for, catastrophic_format):
    """`(a+)+` on 27 a's and a "!" is seconds for a backtracking engine; RE2 answers at once, through the API as a viewer."""
    api = warmed(api_for(users_by_role[Role.VIEWER]))
    for value in ("a" * 27 + "!", "a" * 299 + "!"):
        response, seconds = timed(
            lambda value=value: api.post("/api/scenarios/crisis_management/validate", {"values": {"jira_project_key": value}}, format="json")
        )
        assert response.status_code == 200
        assert response.json()["errors"]["jira_project_key"] == ["Only a's."]
        assert seconds < BOUND_SECONDS
    ok = api.post("/api/scenarios/crisis_management/validate", {"values": {"jira_project_key": "a" * 30}}, format="json").json()
    assert "jira_project_key" not in ok["errors"]


def test_patterns_a_linear_engine_cannot_run_are_refused_when_the_definition_is_saved(db):
    from common.errors import ApplicationError
    from scenarios.services import data_model_revise

    current = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    fields = copy.deepcopy(current.field_definitions)
    for field_def in fields:
        if field_def["key"] == "jira_project_key":
            field_def["validation"] = {"regex": r"(a)\1"}  # a backreference: no linear-time engine runs it
    with pytest.raises(ApplicationError) as caught:
        data_model_revise(data_model=current, field_definitions=fields, validation_rules=current.validation_rules)
    assert any("backreferences" in message for message in caught.value.fields["field_definitions"])


def test_a_text_past_its_length_limit_is_never_matched():
    from common.regex import MAX_SUBJECT_LENGTH, pattern_fullmatch

    assert pattern_fullmatch("a*", "a" * 100)
    assert not pattern_fullmatch("a*", "a" * (MAX_SUBJECT_LENGTH + 1))


@pytest.mark.parametrize("text", [LONG_RUN, "a." * 75_000 + "@", "@" + "a" * 150_000, DOTS])
def test_mention_redaction_scans_vendor_text_in_linear_time(text):
    """Incoming records are searched for e-mail mentions of erased people: vendor text, so linear time on any input."""
    from sync.services.suppression import _emails_in, _redacted

    found, seconds = timed(lambda: _emails_in({"note": text, text[:50]: [text]}, set()))
    assert seconds < BOUND_SECONDS
    redacted, seconds = timed(lambda: _redacted({"note": text + " ava@acme.example"}, {"ava@acme.example"}, [0]))
    assert redacted["note"].endswith("[erased]")
    assert seconds < BOUND_SECONDS


@pytest.mark.parametrize("template", [SPACES, "{{ a" * 50_000, "{{" * 75_000 + "}}", "{{ scenario.title |" + " " * 150_000 + "x }}"])
def test_payload_templates_render_in_linear_time(template):
    """Placeholders are found by a scan: an editor's template cannot stall a worker."""
    from playbooks.rendering import RenderError, render_string

    def render() -> Any:
        try:
            return render_string(template, {"scenario": {"title": "Outage"}})
        except RenderError as error:
            return error

    _result, seconds = timed(render)
    assert seconds < BOUND_SECONDS


def test_placeholders_are_found_as_before():
    from playbooks.rendering import render_string

    context = {"scenario": {"title": "Outage", "tags": ["a", "b"]}}
    assert render_string("{{ scenario.title }}", context) == "Outage"
    assert render_string("  {{scenario.tags}} ", context) == ["a", "b"]
    assert render_string("[{{ scenario.title | upper }}] {{ {{ scenario.title }} }}}", context) == "[OUTAGE] {{ Outage }}}"
    assert render_string("{{ unclosed", context) == "{{ unclosed"
