"""What Bastion shows and checks of PagerDuty: entities, incident actions with their field rules and undo, v3 webhooks."""

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
    OAuthSpec,
    TrackedKind,
    WebhookSpec,
)
from integrations.connectors.pagerduty.webhooks import EVENT_TYPES

MANIFEST = ConnectorManifest(
    key="pagerduty",
    name="PagerDuty",
    category=Category.INCIDENT,
    description="Read services, incident history and on-calls; trigger, acknowledge and resolve incidents and add notes.",
    logo="connectors/pagerduty.svg",
    auth_methods=(AuthMethod.API_KEY, AuthMethod.OAUTH2),
    credential_fields=(CredentialField("api_key", "REST API key", help_text="A user or account REST API key (Integrations → API Access Keys)."),),
    config_fields=(
        CredentialField("from_email", "Acting user email", is_secret=False, help_text="PagerDuty requires a valid user email in the From header for writes."),
    ),
    oauth=OAuthSpec(
        authorize_url="https://identity.pagerduty.com/oauth/authorize",
        token_url="https://identity.pagerduty.com/oauth/token",
        scopes=("services.read", "incidents.read", "incidents.write", "oncalls.read"),
        scope_purposes={
            "services.read": "List services to pick where incidents are raised",
            "incidents.read": "Import incident history and follow incident status",
            "incidents.write": "Trigger, acknowledge and resolve incidents and add notes from playbooks",
            "oncalls.read": "Show who is on call when a crisis starts",
        },
    ),
    default_base_url="https://api.pagerduty.com",
    entities=(
        EntitySpec("services", "Services", "Technical services incidents are raised on"),
        EntitySpec("incidents", "Incidents", "Incident history, newest changes by creation date", supports_incremental=True, bastion_type=BastionType.INCIDENT),
        EntitySpec("oncalls", "On-calls", "Who is on call for each escalation policy level"),
    ),
    actions=(
        ActionSpec(
            "trigger_incident",
            "Trigger incident",
            "Open an incident on a service (deduplicated by an incident_key derived from the idempotency key).",
            {"service_id": "string", "title": "string", "urgency": "high|low", "body": "string?"},
            idempotency=Idempotency.VENDOR,
            fields={"title": FieldShape(max_chars=255, single_line=True)},
            tracks=TrackedKind.INCIDENT,
            tracks_label="On-call incident",
            verb="paged",
            undo="Resolve the incident with a note saying why.",
        ),
        ActionSpec("acknowledge_incident", "Acknowledge incident", "", {"incident_id": "string"}, idempotency=Idempotency.NATURAL),
        ActionSpec("resolve_incident", "Resolve incident", "", {"incident_id": "string"}, idempotency=Idempotency.NATURAL),
        ActionSpec(
            "add_note",
            "Add note",
            "Add a note to an incident (a reference marker prevents duplicates).",
            {"incident_id": "string", "content": "string"},
            idempotency=Idempotency.SEARCH,
        ),
    ),
    webhook=WebhookSpec(
        event_types=EVENT_TYPES,
        signature="X-PagerDuty-Signature: v1=<hex HMAC-SHA256(secret, raw body)>, comma-separated during rotation; occurred_at within 5 minutes",
    ),
    capabilities=(
        Capability.READ,
        Capability.INCREMENTAL,
        Capability.ACTIONS,
        Capability.WEBHOOKS,
        Capability.STATUS_WEBHOOKS,
        Capability.UNDO,
        Capability.FETCH_STATUS,
        Capability.WEBHOOK_REGISTRATION,
    ),
    docs_url="https://developer.pagerduty.com/api-reference/",
)
