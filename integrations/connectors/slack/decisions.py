"""Decisions in Slack: a DM with Block Kit buttons; a press is Slack's signed block_actions POST naming the member."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from integrations.connectors.base import BaseConnector, DecisionPress, DecisionRequest, WebhookRequest
from integrations.errors import WebhookRejected

ACTION_PREFIX = "bastion."  # action_id of each button: bastion.<decision>
SECTION_LIMIT = 2900  # Slack refuses a section text over 3,000 characters


def decision_blocks(request: DecisionRequest) -> list[dict[str, Any]]:
    text = f"*{request.title}*\n{request.text}".strip() + f"\n<{request.link}|Open in Bastion>"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}},
        {
            "type": "actions",
            "block_id": f"bastion-{request.reference}",
            "elements": [
                {
                    "type": "button",
                    "action_id": f"{ACTION_PREFIX}{choice.decision}",
                    "text": {"type": "plain_text", "text": choice.label},
                    **({"style": choice.style} if choice.style else {}),
                    "value": request.reference,
                }
                for choice in request.choices
            ],
        },
    ]


class SlackDecisions(BaseConnector):
    def request_decision(self, request: DecisionRequest, *, idempotency_key: str) -> str:
        payload = {"email": request.email, "text": f"{request.title}: your decision is needed", "blocks": decision_blocks(request)}
        result = self.perform("send_dm", payload, idempotency_key=idempotency_key)
        return str((result.data or {}).get("user") or "")

    @classmethod
    def parse_decision(cls, request: WebhookRequest) -> DecisionPress:
        try:
            payload = json.loads((parse_qs(request.body.decode("utf-8", errors="replace")).get("payload") or [""])[0])
            action = payload["actions"][0]
            action_id = str(action["action_id"])
            if not action_id.startswith(ACTION_PREFIX):
                raise ValueError(action_id)
            return DecisionPress(member_id=str(payload["user"]["id"]), decision=action_id.removeprefix(ACTION_PREFIX), reference=str(action["value"]))
        except (ValueError, KeyError, IndexError, TypeError):
            raise WebhookRejected(400, "invalid_payload", "Not a Bastion button press (block_actions payload).") from None

    @classmethod
    def decision_reply(cls, text: str, *, replaces_request: bool) -> dict[str, Any]:
        if replaces_request:
            return {"replace_original": True, "text": text}
        return {"response_type": "ephemeral", "replace_original": False, "text": text}
