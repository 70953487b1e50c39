"""What Widgets Inc. is to Bastion: its entities, its one action with its field limits and tracked object, its webhooks."""

from __future__ import annotations

from integrations.connectors.base import (
    ActionSpec,
    AuthMethod,
    BastionType,
    Capability,
    Category,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldShape,
    Idempotency,
    TrackedKind,
    WebhookSpec,
)

TITLE_MAX = 40  # Widgets refuses longer ticket titles
DONE_STATES = frozenset({"closed", "withdrawn"})
TICKET_EVENTS = ("ticket.updated", "ticket.deleted")

MANIFEST = ConnectorManifest(
    key="partner_widgets",
    name="Widgets Inc.",
    category=Category.TICKETING,
    description="Widget orders and tickets from Widgets Inc. (installed as a pip package).",
    auth_methods=(AuthMethod.API_KEY,),
    credential_fields=(CredentialField("api_key", "API key"),),
    entities=(EntitySpec("widgets", "Widgets", bastion_type=BastionType.OTHER), EntitySpec("tickets", "Tickets", bastion_type=BastionType.TASK)),
    actions=(
        ActionSpec(
            key="file_ticket",
            name="File a ticket",
            description="Opens a ticket at Widgets Inc. for its owner.",
            input_schema={"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}, "owner": {"type": "string"}}},
            idempotency=Idempotency.VENDOR,
            fields={
                "title": FieldShape(max_chars=TITLE_MAX, single_line=True),
                "owner": FieldShape(optional=True),
            },
            tracks=TrackedKind.TASK,
            tracks_label="Widgets ticket",
            verb="filed",
            undo="Withdraws the ticket at Widgets Inc.",
        ),
    ),
    webhook=WebhookSpec(event_types=TICKET_EVENTS, signature="HMAC-SHA256 of '<timestamp>.<body>' in Widgets-Signature"),
    capabilities=(
        Capability.READ,
        Capability.ACTIONS,
        Capability.UNDO,
        Capability.FETCH_STATUS,
        Capability.WEBHOOKS,
        Capability.STATUS_WEBHOOKS,
    ),
)
