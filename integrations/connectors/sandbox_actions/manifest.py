"""What the sandbox's action target is to Bastion: generic objects, plus stand-ins for the vendors' actions with their rules.

A playbook template written for Slack, Jira, Calendar… can be bound to this target, so each stand-in action carries the
real vendor action's field shapes and war-room words (read from that vendor's manifest, never copied).
"""

from __future__ import annotations

from integrations.connectors import email, google_calendar, jira, pagerduty, slack, statuspage, twilio
from integrations.connectors.base import (
    ActionSpec,
    AuthMethod,
    BaseConnector,
    Capability,
    Category,
    ConnectorManifest,
    CredentialField,
    FieldShape,
    Idempotency,
    Role,
    WebhookSpec,
)

# Contract action → (object kind, payload field holding the title).
ALIASES: dict[str, tuple[str, str]] = {
    "create_channel": ("channel", "name"),
    "post_message": ("message", "text"),
    "send_dm": ("message", "text"),
    "create_issue": ("issue", "summary"),
    "create_event": ("event", "summary"),
    "trigger_incident": ("incident", "title"),
    "create_incident": ("status_incident", "name"),
    "send_email": ("email", "subject"),
    "send_sms": ("sms", "body"),
    "create_note": ("note", "body"),
    "create_task": ("task", "subject"),
}
# The vendor whose action each stand-in replays (HubSpot's notes and tasks had no field rules to carry over).
STAND_IN_FOR: dict[str, type[BaseConnector]] = {
    "create_channel": slack.CONNECTOR,
    "invite_users": slack.CONNECTOR,
    "post_message": slack.CONNECTOR,
    "send_dm": slack.CONNECTOR,
    "create_issue": jira.CONNECTOR,
    "create_event": google_calendar.CONNECTOR,
    "trigger_incident": pagerduty.CONNECTOR,
    "create_incident": statuspage.CONNECTOR,
    "send_email": email.CONNECTOR,
    "send_sms": twilio.CONNECTOR,
}
# Keys dropped when they render empty, whatever the action (the target stores any payload key as an attribute).
OPTIONAL_KEYS = ("assignee_email", "due_date", "room_email", "owner", "owner_id", "due", "impact_override", "component_ids", "labels", "body_html", "html")
EVENT_TYPES = ("object.status_changed",)


def _optional_fields() -> dict[str, FieldShape]:
    fields = {key: FieldShape(optional=True) for key in OPTIONAL_KEYS}
    fields["labels"] = jira.CONNECTOR.manifest.action("create_issue").fields["labels"]  # labels without spaces, as Jira wants them
    return fields


def stand_in(key: str, name: str, description: str, input_schema: dict[str, str] | None = None, **options: object) -> ActionSpec:
    """An action of the target; a stand-in takes the real vendor action's field shapes, tracking and verb."""
    fields = _optional_fields()
    vendor = STAND_IN_FOR.get(key)
    real = next((spec for spec in vendor.manifest.actions if spec.key == key), None) if vendor is not None else None
    if real is not None:
        fields.update(real.fields)
        options = {"tracks": real.tracks, "tracks_label": real.tracks_label, "verb": real.verb, "kept_on_undo": real.kept_on_undo, **options}
    fields.update(options.pop("fields", {}))  # type: ignore[arg-type]
    return ActionSpec(key, name, description, input_schema or {}, fields=fields, **options)  # type: ignore[arg-type]


MANIFEST = ConnectorManifest(
    key="sandbox_actions",
    name="Sandbox actions",
    category=Category.COLLABORATION,
    description="A generic action target in the vendor sandbox for testing playbooks (idempotent creates, bulk, status webhooks).",
    auth_methods=(AuthMethod.API_KEY,),
    credential_fields=(CredentialField("api_key", "API token"),),
    actions=(
        stand_in(
            "create_object",
            "Create an object",
            "Create an object of any kind.",
            {"kind": "string", "title": "string"},
            fields={"title": FieldShape(max_chars=255, single_line=True)},
        ),
        stand_in("update_object", "Update an object", "Change an object's status, title or attributes.", {"id": "string"}, idempotency=Idempotency.NATURAL),
        stand_in("invite_users", "Invite people to a channel object", "Adds e-mails to the channel's members.", idempotency=Idempotency.NATURAL),
        *(stand_in(alias, f"Stand-in for {alias}", f"Creates a '{kind}' object.") for alias, (kind, _) in ALIASES.items()),
    ),
    webhook=WebhookSpec(
        event_types=EVENT_TYPES, signature="HMAC-SHA256 of '<timestamp>.<body>' in X-Sandbox-Signature (v1=…), timestamp in X-Sandbox-Timestamp."
    ),
    capabilities=(Capability.ACTIONS, Capability.BULK_ACTIONS, Capability.STATUS_WEBHOOKS, Capability.FETCH_STATUS),
    sandbox_only=True,  # it talks only to Bastion's vendor sandbox
    roles=(Role.CHAT, Role.MEETING),  # a template's "@chat" and "@meeting" steps can be bound to it like any vendor's
)
