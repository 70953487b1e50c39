"""Scenario text and directory names are escaped per destination format: Slack mrkdwn, Jira ADF, e-mail HTML, SMS (issue 13, Low)."""

from __future__ import annotations

import pytest

from integrations.connectors.jira import adf
from playbooks.models import PlaybookStepTemplate
from playbooks.rendering import escape_mrkdwn
from playbooks.services import render_step_payload

HOSTILE_TITLE = "<!everyone> read <http://evil.example|the status page> & <@U0001>"
HOSTILE_NAME = "Bob <!channel>"


def shipped_step(action: str) -> PlaybookStepTemplate:
    return PlaybookStepTemplate.objects.filter(template__scenario_type="crisis_management", action=action).order_by("position").first()


def context(**scenario) -> dict:
    values = {
        "title": HOSTILE_TITLE,
        "severity": "sev1",
        "summary": "Line one\u202eevil\u0007",
        "incident_commander": {"name": HOSTILE_NAME, "email": "bob@acme.example"},
        **scenario,
    }
    return {
        "scenario": values,
        "playbook": {"url": "https://bastion.example/p/1?a=1&b=2", "date": "2026-11-25", "next_slot": "2026-11-25T15:00:00+00:00"},
        "steps": {"create_channel": {"payload": {"name": "crisis"}}},
        "item": {"name": HOSTILE_NAME, "email": "bob@acme.example", "title": "Legal review", "description": "Check <b>contracts</b>"},
        "integration": {},
    }


@pytest.mark.django_db
def test_slack_messages_keep_the_templates_markup_but_never_ping_or_disguise_links():
    step = shipped_step("post_message")
    text = render_step_payload(step.payload_template, "slack", "post_message", context())["text"]
    assert "<!" not in text and "<http" not in text and "<@" not in text
    assert "&lt;!everyone&gt; read &lt;http://evil.example|the status page&gt; &amp; &lt;@U0001&gt;" in text
    assert "Bob &lt;!channel&gt;" in text  # a directory name is data too
    assert text.startswith("*SEV1: ") and "*\n" in text  # the template's own bold stays
    assert "\u202e" not in text and "\u0007" not in text


@pytest.mark.django_db
def test_slack_channel_topics_are_escaped_too():
    step = shipped_step("create_channel")
    payload = render_step_payload(step.payload_template, "slack", "create_channel", context())
    assert "<" not in payload["topic"] and "&lt;!everyone&gt;" in payload["topic"]


def test_escaping_happens_once_per_value():
    assert escape_mrkdwn("a & b <c>") == "a &amp; b &lt;c&gt;"
    payload = render_step_payload({"text": "{{ scenario.title }} {{ scenario.title }}"}, "slack", "post_message", {"scenario": {"title": "&amp;"}})
    assert payload["text"] == "&amp;amp; &amp;amp;"


def test_email_html_is_escaped_and_the_text_body_is_left_as_text():
    template = {
        "to": ["{{ item.email }}"],
        "subject": "{{ scenario.title }}",
        "body": "Hi {{ item.name }}",
        "html": "<p>Hi {{ item.name }}: {{ item.description }}</p>",
    }
    payload = render_step_payload(template, "email", "send_email", context())
    assert payload["html"] == "<p>Hi Bob &lt;!channel&gt;: Check &lt;b&gt;contracts&lt;/b&gt;</p>"
    assert payload["body"] == "Hi Bob <!channel>"  # text/plain: nothing interprets it
    assert "\n" not in payload["subject"]


def test_sms_is_plain_text_without_controls_or_direction_overrides():
    payload = render_step_payload({"to": "+15550100", "body": "{{ scenario.summary }}"}, "twilio", "send_sms", context())
    assert payload["body"] == "Line oneevil"


@pytest.mark.django_db
def test_jira_descriptions_become_literal_adf_text_nodes():
    step = shipped_step("create_issue")
    payload = render_step_payload(step.payload_template, "jira", "create_issue", context())
    document = adf(payload["description"])
    nodes = [node for paragraph in document["content"] for node in paragraph["content"]]
    assert {node["type"] for node in nodes} <= {"text", "hardBreak"}
    assert not any("marks" in node for node in nodes)  # no link mark: the disguised link is shown as the text it is
    assert any(HOSTILE_TITLE in node.get("text", "") for node in nodes)
