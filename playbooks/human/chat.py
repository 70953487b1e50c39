"""Slack message buttons for approvals and tasks: sent as a DM to the person asked; a press is Slack's signed POST naming the
Slack member, accepted only from the member the buttons were sent to, with their Bastion role re-checked."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs

from django.db import transaction
from django.utils import timezone

from common.errors import ApplicationError
from integrations.connectors.base import WebhookRequest
from integrations.errors import WebhookRejected
from integrations.models import CredentialType, Integration, IntegrationStatus
from integrations.registry import get_connector_class
from integrations.services import credential_secret
from playbooks.human.models import HumanStep, Participant, ParticipantRole

logger = logging.getLogger(__name__)
ACTIONS = {"bastion.approve": "approve", "bastion.reject": "reject", "bastion.done": "done"}


def _blocks(human: HumanStep, participant: Participant, link: str) -> list[dict[str, Any]]:
    if participant.role == ParticipantRole.ASSIGNEE:
        buttons = [("bastion.done", "Mark done", "primary")]
    else:
        buttons = [("bastion.approve", "Approve", "primary"), ("bastion.reject", "Reject", "danger")]
    text = f"*{human.title}*\n{human.description}".strip() + f"\n<{link}|Open in Bastion>"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
        {
            "type": "actions",
            "block_id": f"bastion-{human.pk}",
            "elements": [
                {"type": "button", "action_id": key, "text": {"type": "plain_text", "text": label}, "style": style, "value": str(participant.pk)}
                for key, label, style in buttons
            ],
        },
    ]


def chat_notify(human: HumanStep, participant: Participant, link: str) -> None:
    """DM the person on Slack with the buttons (when the step asks for it and a Slack integration is connected); once each."""
    from playbooks.services import connector_for, resolve_integration

    if human.config.get("chat") != "slack" or participant.chat_notified_at is not None or not participant.user.email:
        return
    integration = resolve_integration(human.playbook, "slack")
    if integration is None or integration.status != IntegrationStatus.CONNECTED:
        logger.warning("playbooks.human.chat_unavailable", extra={"human_step": str(human.pk)})
        return
    payload = {"email": participant.user.email, "text": f"{human.title}: your decision is needed", "blocks": _blocks(human, participant, link)}
    result = connector_for(integration).perform("send_dm", payload, idempotency_key=f"bastion-human-{participant.pk}")
    participant.chat_user_id = str((result.data or {}).get("user") or "")[:60]
    participant.chat_notified_at = timezone.now()
    participant.save(update_fields=["chat_user_id", "chat_notified_at", "updated_at"])


def _answer(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


def slack_interaction(*, integration_id: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """Verify Slack's signature, find the participant the pressed button was sent to, decide as them. Never raises for bad input."""
    try:
        integration = Integration.objects.select_related("organization").filter(pk=uuid.UUID(str(integration_id)), connector_key="slack").first()
    except ValueError:
        integration = None
    if integration is None:
        return 404, {"error": {"code": "unknown_integration", "message": "No Slack integration receives interactions here.", "fields": {}}}
    secret = (credential_secret(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, purpose="webhook_verify") or {}).get("secret")
    request = WebhookRequest(method="POST", url="", headers=headers, body=body, received_at=timezone.now())
    try:
        if not secret:
            raise WebhookRejected(401, "webhook_secret_missing", "No Slack signing secret is configured for this integration.")
        get_connector_class("slack").verify_webhook(request, secret=secret)
        payload = json.loads((parse_qs(body.decode("utf-8", errors="replace")).get("payload") or [""])[0])
        action = payload["actions"][0]
        slack_user = str(payload["user"]["id"])
        decision = ACTIONS[action["action_id"]]
        participant_id = uuid.UUID(str(action["value"]))
    except WebhookRejected as rejected:
        return rejected.status, {"error": {"code": rejected.code, "message": rejected.message, "fields": {}}}
    except (ValueError, KeyError, IndexError, TypeError):
        return 400, {"error": {"code": "invalid_payload", "message": "Not a Bastion button press (block_actions payload).", "fields": {}}}
    from playbooks.human.services import human_step_decide

    participant = (
        Participant.objects.select_related("user", "human_step")
        .filter(pk=participant_id, human_step__organization=integration.organization_id)
        .exclude(chat_user_id="")
        .first()
    )
    if participant is None or participant.chat_user_id != slack_user:
        logger.warning("playbooks.human.chat_foreign_press", extra={"integration": str(integration.pk)})
        return 200, _answer("These buttons were sent to someone else; nothing was decided.")
    try:
        with transaction.atomic():
            human = human_step_decide(human_step=participant.human_step, user=participant.user, decision=decision, via="chat")
    except ApplicationError as error:
        return 200, _answer(error.message)
    return 200, {"replace_original": True, "text": f"{human.title}: you chose {decision}. {('Now ' + human.outcome + '.') if human.outcome else ''}".strip()}
