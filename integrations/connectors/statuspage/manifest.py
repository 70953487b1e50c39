"""What Bastion shows and checks of Statuspage: entities, actions with their field rules, capabilities."""

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
)

MANIFEST = ConnectorManifest(
    key="statuspage",
    name="Statuspage",
    category=Category.INCIDENT,
    description="Publish and update public incidents on an Atlassian Statuspage page.",
    logo="connectors/statuspage.svg",
    auth_methods=(AuthMethod.API_KEY,),
    credential_fields=(CredentialField("api_key", "API key", help_text="Statuspage → avatar menu → API info."),),
    config_fields=(CredentialField("page_id", "Page id", is_secret=False, help_text="The page's id from API info, e.g. gytm4qzbx9t6."),),
    default_base_url="https://api.statuspage.io/v1",
    entities=(
        EntitySpec("incidents", "Incidents", "Public incidents, newest first", bastion_type=BastionType.INCIDENT),
        EntitySpec("components", "Components", "Components an incident can affect"),
    ),
    actions=(
        ActionSpec(
            "create_incident",
            "Create incident",
            "Publish an incident; a metadata marker derived from the idempotency key is searched before creating.",
            {
                "name": "string",
                "status": "investigating|identified|monitoring|resolved",
                "body": "string",
                "impact_override": "string?",
                "component_ids": "[string]?",
            },
            idempotency=Idempotency.SEARCH,
            fields={
                "name": FieldShape(max_chars=255, single_line=True),
                "body": FieldShape(max_chars=5000),
                "impact_override": FieldShape(optional=True),
                "component_ids": FieldShape(optional=True),
            },
            tracks=TrackedKind.INCIDENT,
            tracks_label="Status page incident",
            verb="opened",
        ),
        ActionSpec(
            "update_incident",
            "Update incident",
            "Post an incident update (skipped when the latest update already says the same).",
            {"incident_id": "string", "status": "string", "body": "string"},
            idempotency=Idempotency.SEARCH,
            fields={"impact_override": FieldShape(optional=True), "component_ids": FieldShape(optional=True)},
        ),
    ),
    capabilities=(Capability.READ, Capability.ACTIONS),
    docs_url="https://developer.statuspage.io/",
)
