"""Jira Data Center takes descriptions and comments as wiki markup: Bastion's plain text is escaped to show as typed (issue 13, Low)."""

from __future__ import annotations

import re

from integrations.connectors.jira import idempotency_label
from integrations.connectors.jira_dc import description_text, wiki_escape
from tests.integrations.connectors.test_jira_dc import jira, with_label  # noqa: F401

HOSTILE = "Read [the status page|http://evil.example] !http://evil.example/p.png! [~admin] {html}<b>x</b>{html} C:\\temp *bold*"


def test_a_description_cannot_become_a_link_image_mention_or_macro(jira, sandbox):  # noqa: F811
    jira.perform("create_issue", {"project_key": "OPS", "summary": "Escaped", "description": HOSTILE}, idempotency_key="esc-1")
    [issue] = with_label(sandbox, idempotency_label("esc-1"))
    stored = issue["fields"]["description"]
    # Every character wiki markup acts on arrives escaped (a backslash before it), so nothing becomes markup.
    assert re.search(r"(?<!\\)[\[\]{}!|]", stored.replace("\\\\", "")) is None
    assert "\\[the status page\\|http://evil.example\\]" in stored and "\\{html\\}" in stored
    assert stored == wiki_escape(HOSTILE) and description_text(stored) == HOSTILE  # shown as typed; read back unchanged
    assert "*bold*" in stored  # emphasis is harmless and stays readable
