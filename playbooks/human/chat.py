"""Decision buttons in the person's chat tool for approvals and tasks: sent once to the person asked; a press is the
vendor's signed POST naming its member, accepted only from the member the buttons were sent to, role re-checked.

Which tool is the step's `chat` setting (a connector key); the connector does the vendor's part (Capability.DECISIONS).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.errors import ApplicationError, error_body
from integrations.connectors.base import Capability, DecisionChoice, DecisionRequest, WebhookRequest
from integrations.errors import WebhookRejected
from integrations.models import CredentialType, Integration, IntegrationStatus
from integrations.registry import UnknownConnector, get_connector_class
from integrations.services import credential_secret
from playbooks.human.models import HumanStep, Participant, ParticipantRole

logger = logging.getLogger(__name__)
DECISIONS = ("approve", "reject", "done")


def _choices(participant: Participant) -> tuple[DecisionChoice, ...]:
    if participant.role == ParticipantRole.ASSIGNEE:
        return (DecisionChoice("done", "Mark done", "primary"),)
    return (DecisionChoice("approve", "Approve", "primary"), DecisionChoice("reject", "Reject", "danger"))


def _chat_connector_key(human: HumanStep) -> str:
    """The connector the step asks through, when it is installed and can ask for decisions."""
    key = str(human.config.get("chat") or "")
    try:
        return key if key and get_connector_class(key).supports(Capability.DECISIONS) else ""
    except UnknownConnector:
        return ""


def chat_notify(human: HumanStep, participant: Participant, link: str) -> None:
    """Send the person the buttons (when the step asks for it and that tool is connected); once each."""
    from playbooks.services import connector_for, resolve_integration

    connector_key = _chat_connector_key(human)
    if not connector_key or participant.chat_notified_at is not None or not participant.user.email:
        return
    integration = resolve_integration(human.playbook, connector_key)
    if integration is None or integration.status != IntegrationStatus.CONNECTED:
        logger.warning("playbooks.human.chat_unavailable", extra={"human_step": str(human.pk)})
        return
    request = DecisionRequest(
        email=participant.user.email, title=human.title, text=human.description, link=link, choices=_choices(participant), reference=str(participant.pk)
    )
    member_id = connector_for(integration).request_decision(request, idempotency_key=f"bastion-human-{participant.pk}")
    participant.chat_user_id = member_id[:60]
    participant.chat_notified_at = timezone.now()
    participant.save(update_fields=["chat_user_id", "chat_notified_at", "updated_at"])


def chat_interaction(*, integration_id: str, vendor: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """Verify the vendor's signature, find the participant the pressed button was sent to, decide as them. Never raises for bad input."""
    try:
        integration = Integration.objects.select_related("organization").filter(pk=uuid.UUID(str(integration_id)), connector_key=vendor).first()
    except ValueError:
        integration = None
    connector_class = None
    if integration is not None:
        try:
            connector_class = get_connector_class(integration.connector_key)
        except UnknownConnector:
            connector_class = None
    if integration is None or connector_class is None or not connector_class.supports(Capability.DECISIONS):
        return 404, error_body("unknown_integration", "No integration that asks for decisions receives button presses here.")
    secret = (credential_secret(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, purpose="webhook_verify") or {}).get("secret")
    request = WebhookRequest(method="POST", url="", headers=headers, body=body, received_at=timezone.now())
    try:
        if not secret:
            raise WebhookRejected(401, "webhook_secret_missing", f"No {connector_class.manifest.name} signing secret is configured for this integration.")
        connector_class.verify_webhook(request, secret=secret)
        press = connector_class.parse_decision(request)
        participant_id = uuid.UUID(press.reference)
        if press.decision not in DECISIONS:
            raise ValueError(press.decision)
    except WebhookRejected as rejected:
        return rejected.status, error_body(rejected.code, rejected.message)
    except ValueError:
        return 400, error_body("invalid_payload", "Not a Bastion button press.")
    from playbooks.human.services import human_step_decide

    participant = (
        Participant.objects.select_related("user", "human_step")
        .filter(pk=participant_id, human_step__organization=integration.organization_id)
        .exclude(chat_user_id="")
        .first()
    )
    if participant is None or participant.chat_user_id != press.member_id:
        logger.warning("playbooks.human.chat_foreign_press", extra={"integration": str(integration.pk)})
        return 200, connector_class.decision_reply("These buttons were sent to someone else; nothing was decided.", replaces_request=False)
    try:
        with transaction.atomic():
            human = human_step_decide(human_step=participant.human_step, user=participant.user, decision=press.decision, via="chat")
    except ApplicationError as error:
        return 200, connector_class.decision_reply(error.message, replaces_request=False)
    outcome = f"Now {human.outcome}." if human.outcome else ""
    return 200, connector_class.decision_reply(f"{human.title}: you chose {press.decision}. {outcome}".strip(), replaces_request=True)
