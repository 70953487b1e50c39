"""Fixtures for human steps and triggers: a real SMTP sink (aiosmtpd), templates with human steps, links from the mail."""

from __future__ import annotations

import re
import socket
import threading
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from playbooks.models import PlaybookStepTemplate, PlaybookTemplate

LINK = re.compile(r"https?://[^\s]+/approvals/([^\s/]+)/")


class Inbox:
    """Messages the SMTP sink received: (recipients, subject, body)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.port = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = message_from_bytes(envelope.content, policy=default_policy)
        with self.lock:
            self.messages.append({"to": list(envelope.rcpt_tos), "subject": str(message["Subject"]), "body": message.get_body(("plain",)).get_content()})
        return "250 Message accepted for delivery"

    def to(self, email: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if email in m["to"]]

    def link_for(self, email: str, index: int = -1) -> str:
        """The token of the approval / task link in the latest (or index-th) mail to `email`."""
        match = LINK.search(self.to(email)[index]["body"])
        assert match, self.to(email)[index]["body"]
        return match.group(1)


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server (aiosmtpd) on a free port; Django's e-mail goes to it."""
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        inbox.port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = inbox.port
    settings.EMAIL_USE_TLS = False
    yield inbox
    controller.stop()


def vendor_step(key: str, *, depends_on: list[str] | None = None, position: int = 0, task_kind: str = "") -> dict[str, Any]:
    """A vendor step on the sandbox's generic action target (creates one object whose title is the step key)."""
    return {
        "key": key,
        "name": key.replace("_", " ").capitalize(),
        "connector_key": "sandbox_actions",
        "action": "create_issue",
        "payload_template": {"summary": f"{key}: {{{{ scenario.title }}}}"},
        "depends_on": depends_on or [],
        "position": position,
        "task_kind": task_kind,
    }


def human_step(key: str, action: str, config: dict[str, Any], *, depends_on: list[str] | None = None, position: int = 0) -> dict[str, Any]:
    return {
        "key": key,
        "name": key.replace("_", " ").capitalize(),
        "connector_key": "bastion",
        "action": action,
        "payload_template": config,
        "depends_on": depends_on or [],
        "position": position,
    }


def make_template(name: str, steps: list[dict[str, Any]], scenario_type: str = "crisis_management") -> PlaybookTemplate:
    template = PlaybookTemplate.objects.create(scenario_type=scenario_type, name=name, is_active=False)
    for index, step in enumerate(steps):
        PlaybookStepTemplate.objects.create(template=template, **{"position": index, **step})
    return template
