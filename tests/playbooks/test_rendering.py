"""Safe rendering: one-pass substitution, whitelisted roots, the connectors' field shapes."""

from __future__ import annotations

import pytest

from integrations.connectors.slack import rendered_channel_name
from playbooks.contract import action_fields
from playbooks.rendering import RenderError, render_payload, render_string, sanitize_payload, validate_template

CONTEXT = {
    "scenario": {"title": "{{ secrets }}", "severity": "sev1", "stakeholders": [{"email": "A@x.example"}, {"email": "b@x.example"}, {"email": "a@x.example"}]},
    "playbook": {"date": "2026-11-25", "next_slot": "2026-11-25T15:00:00+00:00"},
    "steps": {"create_channel": {"external_id": "C123"}},
    "item": {},
}


@pytest.mark.parametrize("title", ["{{ secrets }}", "{% debug %}", "{{ scenario.severity }}", "{{ settings.SECRET_KEY }}", "{# x #}{{"])
def test_scenario_data_renders_literally(title):
    context = {**CONTEXT, "scenario": {**CONTEXT["scenario"], "title": title}}
    assert render_string("Crisis: {{ scenario.title }}!", context) == f"Crisis: {title}!"
    assert render_payload({"text": ["{{ scenario.title }}"]}, context) == {"text": [title]}


def test_only_whitelisted_roots_and_known_filters():
    with pytest.raises(RenderError):
        render_string("{{ settings.SECRET_KEY }}", CONTEXT)
    with pytest.raises(RenderError):
        render_string("{{ scenario.title.__class__ }}", CONTEXT)
    with pytest.raises(RenderError):
        render_string("{{ scenario.title | system }}", CONTEXT)
    assert validate_template({"a": "{{ os.environ }}", "b": "{{ scenario.x | nope }}"}) == [
        "'os' is not something a playbook template can use (use one of count, integration, item, items, payload, playbook, run, scenario, steps, template).",
        "Unknown filter 'nope'.",
    ]


def test_typed_values_filters_and_missing_values():
    assert render_string("{{ scenario.stakeholders | emails }}", CONTEXT) == ["a@x.example", "b@x.example"]
    assert render_string("{{ steps.create_channel.external_id }}", CONTEXT) == "C123"
    assert render_string("{{ scenario.missing | default:'OPS' }}", CONTEXT) == "OPS"
    assert render_string("{{ scenario.missing | default:playbook.next_slot | add_minutes:60 }}", CONTEXT) == "2026-11-25T16:00:00+00:00"
    assert render_string("[{{ scenario.missing }}]", CONTEXT) == "[]"
    assert render_string("{{ scenario.stakeholders | count }} people", CONTEXT) == "3 people"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("crisis-2026-11-25-DB Outage", "crisis-2026-11-25-db-outage"),
        ("#Crisis: São Paulo data.center!!", "crisis-sao-paulo-data-center"),
        ("a" * 100, "a" * 80),
        ("---", "bastion-channel"),
        ("x_y-z", "x_y-z"),
    ],
)
def test_slack_channel_names(raw, expected):
    name = rendered_channel_name(raw)
    assert name == expected
    assert len(name) <= 80 and all(c.islower() or c.isdigit() or c in "-_" for c in name)


def test_field_rules_per_action():
    summary = sanitize_payload(action_fields("jira", "create_issue"), {"summary": "Line one\nLine two " + "x" * 400, "assignee_email": ""})
    assert "\n" not in summary["summary"] and len(summary["summary"]) == 255
    assert "assignee_email" not in summary  # an empty optional value is dropped, not sent
    email = sanitize_payload(action_fields("email", "send_email"), {"subject": "Hello\r\nBcc: victim@example.com", "to": ["a@x.example"]})
    assert email["subject"] == "Hello Bcc: victim@example.com"
    assert sanitize_payload(action_fields("slack", "create_channel"), {"name": "Crisis 2026.11.25 DB outage"})["name"] == "crisis-2026-11-25-db-outage"
    assert len(sanitize_payload(action_fields("slack", "post_message"), {"text": "y" * 5000})["text"]) == 4000


def test_people_filter_gives_signers_once_per_email_and_skips_what_is_not_a_person():
    signers = [{"name": "Ada", "email": "Ada@x.example", "role": "legal"}, {"email": "ada@x.example"}, {"name": "No mail"}, "text", {"email": "b@x.example"}]
    context = {**CONTEXT, "scenario": {**CONTEXT["scenario"], "signers": signers, "sponsor": {"name": "Sam", "email": "sam@x.example"}}}
    assert render_string("{{ scenario.signers | people }}", context) == [
        {"name": "Ada", "email": "ada@x.example", "role": "legal"},
        {"name": "b@x.example", "email": "b@x.example", "role": ""},
    ]
    assert render_string("{{ scenario.sponsor | people }}", context) == [{"name": "Sam", "email": "sam@x.example", "role": ""}]
    assert render_string("{{ scenario.missing | people }}", context) == []
