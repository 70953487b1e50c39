"""What Bastion shows and checks of HubSpot: CRM entities, deal and activity actions, OAuth scopes, v3 webhooks."""

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
    RateLimitSpec,
    WebhookSpec,
)
from integrations.connectors.hubspot.webhooks import EVENT_TYPES

MANIFEST = ConnectorManifest(
    key="hubspot",
    person_rank=40,  # by default, its person data outranks sources with a higher rank
    name="HubSpot",
    category=Category.CRM,
    description="Deals, contacts, companies and owners from HubSpot CRM; updates deals and logs notes and tasks from playbooks.",
    logo="connectors/hubspot.svg",
    auth_methods=(AuthMethod.OAUTH2, AuthMethod.API_KEY),
    credential_fields=(
        CredentialField("access_token", "Private app access token", help_text="Settings → Integrations → Private apps; grant the scopes listed below."),
    ),
    config_fields=(
        CredentialField("stage_map", "Deal stage map (JSON)", is_secret=False, is_required=False, help_text='e.g. {"contractsent": "negotiating"}'),
        CredentialField("page_size", "Page size (≤100)", is_secret=False, is_required=False),
        CredentialField("idempotency_property", "Marker property on notes and tasks", is_secret=False, is_required=False),
        CredentialField("default_currency", "Currency when a deal has none", is_secret=False, is_required=False),
    ),
    oauth=OAuthSpec(
        authorize_url="https://app.hubspot.com/oauth/authorize",
        token_url="https://api.hubapi.com/oauth/v1/token",
        scopes=("crm.objects.deals.read", "crm.objects.deals.write", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.owners.read"),
        scope_purposes={
            "crm.objects.deals.read": "Read deals to fill M&A and sales scenarios (name, value, close date, stage, stakeholders).",
            "crm.objects.deals.write": "Update a deal's stage or properties when a playbook step asks for it.",
            "crm.objects.contacts.read": "Read contacts so a deal's associated contacts become its stakeholders.",
            "crm.objects.companies.read": "Show which company a deal is with.",
            "crm.objects.owners.read": "Resolve each deal's owner to an email address.",
        },
        use_pkce=False,
        rotates_refresh_token=False,
    ),
    default_base_url="https://api.hubapi.com",
    entities=(
        EntitySpec("deals", "Deals", "Deals with their associated contacts as stakeholders.", supports_incremental=True, bastion_type=BastionType.DEAL),
        EntitySpec("contacts", "Contacts", "CRM contacts.", supports_incremental=True, bastion_type=BastionType.PERSON),
        EntitySpec("companies", "Companies", "CRM companies.", supports_incremental=True, bastion_type=BastionType.OTHER),
        EntitySpec("owners", "Owners", "HubSpot users who own records.", supports_incremental=False, bastion_type=BastionType.PERSON),
    ),
    actions=(
        ActionSpec(
            "update_deal",
            "Update a deal",
            "PATCH a deal's properties (idempotent by nature).",
            {"type": "object", "required": ["deal_id", "properties"], "properties": {"deal_id": {"type": "string"}, "properties": {"type": "object"}}},
            idempotency=Idempotency.NATURAL,
        ),
        ActionSpec(
            "create_note",
            "Log a note",
            "Create a note on a deal and/or contact.",
            {
                "type": "object",
                "required": ["body"],
                "properties": {"deal_id": {"type": "string"}, "contact_id": {"type": "string"}, "body": {"type": "string"}},
            },
            idempotency=Idempotency.SEARCH,
        ),
        ActionSpec(
            "create_task",
            "Create a task",
            "Create a CRM task, optionally assigned to an owner and linked to a deal.",
            {
                "type": "object",
                "required": ["subject"],
                "properties": {
                    "subject": {"type": "string"},
                    "body": {"type": "string"},
                    "owner_id": {"type": "string"},
                    "due": {"type": "string", "format": "date-time"},
                    "deal_id": {"type": "string"},
                },
            },
            idempotency=Idempotency.SEARCH,
            fields={"owner_id": FieldShape(optional=True), "due": FieldShape(optional=True)},
        ),
    ),
    webhook=WebhookSpec(
        event_types=EVENT_TYPES,
        routes_by_account=True,
        signature="X-HubSpot-Signature-v3 = base64(HMAC-SHA256(app client secret, method + URI + body + X-HubSpot-Request-Timestamp)); 5-minute window.",
    ),
    capabilities=(
        Capability.READ,
        Capability.INCREMENTAL,
        Capability.FIELD_DISCOVERY,
        Capability.DELETIONS,
        Capability.ACTIONS,
        Capability.WEBHOOKS,
    ),
    docs_url="https://developers.hubspot.com/docs/api/crm/understanding-the-crm",
    rate_limit=RateLimitSpec(per_second=10.0, burst=100, daily=250_000),  # 100/10 s burst; daily per tier
)
