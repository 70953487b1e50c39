"""What Bastion shows and checks of Twilio SMS: the messages entity, send_sms and its field rule, the signed callbacks."""

from __future__ import annotations

from integrations.connectors.base import (
    ActionSpec,
    AuthMethod,
    Capability,
    Category,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldShape,
    Idempotency,
    WebhookSpec,
)
from integrations.connectors.twilio.webhooks import MESSAGE_STATUSES

MANIFEST = ConnectorManifest(
    key="twilio",
    name="Twilio SMS",
    category=Category.MESSAGING,
    description="Send SMS notifications and follow their delivery status.",
    logo="connectors/twilio.svg",
    auth_methods=(AuthMethod.BASIC,),
    credential_fields=(
        CredentialField("account_sid", "Account SID", is_secret=False),
        CredentialField("auth_token", "Auth token", help_text="Also the key Twilio signs status callbacks with."),
    ),
    config_fields=(
        CredentialField("from_number", "From number", is_secret=False, is_required=False, help_text="E.164, e.g. +15005550006"),
        CredentialField("messaging_service_sid", "Messaging service SID", is_secret=False, is_required=False),
        CredentialField(
            "status_callback_url", "Status callback URL", is_secret=False, is_required=False, help_text="Bastion's webhook URL for this integration."
        ),
    ),
    default_base_url="https://api.twilio.com",
    entities=(EntitySpec("messages", "Messages", "Messages sent from the account, newest first", supports_incremental=True),),
    actions=(
        ActionSpec(
            "send_sms",
            "Send SMS",
            "Send a text message; a recent identical message to the same number is reused (Twilio has no idempotency key).",
            {"to": "E.164 phone", "body": "string (≤1600)"},
            idempotency=Idempotency.SEARCH,
            fields={"body": FieldShape(max_chars=1600, single_line=True)},
            verb="sent",
            kept_on_undo="Text messages cannot be unsent.",
        ),
    ),
    webhook=WebhookSpec(
        event_types=tuple(f"message.{status}" for status in MESSAGE_STATUSES),
        signature="X-Twilio-Signature: base64 HMAC-SHA1(auth token, URL + sorted POST params); no timestamp, so no replay window",
        key_field="auth_token",
    ),
    capabilities=(Capability.READ, Capability.INCREMENTAL, Capability.ACTIONS, Capability.WEBHOOKS),
    docs_url="https://www.twilio.com/docs/messaging/api/message-resource",
)
