"""What Bastion shows and checks of Salesforce: entities, record actions, OAuth, the rolling daily quota."""

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
    Idempotency,
    OAuthSpec,
    RateLimitSpec,
    TrackedKind,
)
from integrations.connectors.salesforce.client import DEFAULT_API_VERSION

MANIFEST = ConnectorManifest(
    key="salesforce",
    person_rank=50,  # by default, its person data outranks sources with a higher rank
    name="Salesforce",
    category=Category.CRM,
    description="Opportunities (with their deal team), contacts, users and accounts from Salesforce; creates and updates records from playbooks.",
    logo="connectors/salesforce.svg",
    auth_methods=(AuthMethod.OAUTH2,),
    credential_fields=(
        CredentialField("access_token", "Access token"),
        CredentialField("instance_url", "Instance URL", is_secret=False, help_text="e.g. https://acme.my.salesforce.com (from the token response)."),
    ),
    config_fields=(
        CredentialField("api_version", "API version", is_secret=False, is_required=False, help_text=f"Default {DEFAULT_API_VERSION}"),
        CredentialField("stage_map", "Stage map (JSON)", is_secret=False, is_required=False, help_text='e.g. {"Closed Won": "won"}'),
        CredentialField("team_field", "Deal team field", is_secret=False, is_required=False, help_text="Default Team__c; empty to skip."),
        CredentialField("external_id_field", "External id field for upserts", is_secret=False, is_required=False, help_text="e.g. Bastion_Key__c"),
        CredentialField("marker_field", "Marker field for search-before-create", is_secret=False, is_required=False),
        CredentialField("batch_size", "Query batch size (200–2000)", is_secret=False, is_required=False),
    ),
    oauth=OAuthSpec(
        authorize_url="https://login.salesforce.com/services/oauth2/authorize",
        token_url="https://login.salesforce.com/services/oauth2/token",
        scopes=("api", "refresh_token"),
        scope_purposes={
            "api": "Read opportunities, contacts, users and accounts, and create or update records that playbooks ask for.",
            "refresh_token": "Stay connected without asking you to sign in again (offline access).",
        },
        use_pkce=True,
        rotates_refresh_token=False,  # optional per connected app: a refresh that returns a new refresh token must be stored
    ),
    default_base_url="https://login.salesforce.com",
    entities=(
        EntitySpec(
            "opportunities", "Opportunities", "Deals with their team (Team__c) as stakeholders.", supports_incremental=True, bastion_type=BastionType.DEAL
        ),
        EntitySpec("contacts", "Contacts", "Customer and partner contacts.", supports_incremental=True, bastion_type=BastionType.PERSON),
        EntitySpec("users", "Users", "Salesforce users (your own staff).", supports_incremental=True, bastion_type=BastionType.PERSON),
        EntitySpec("accounts", "Accounts", "Companies.", supports_incremental=True, bastion_type=BastionType.OTHER),
    ),
    actions=(
        ActionSpec(
            "create_record",
            "Create a record",
            "Create any sObject record (upsert by external id when configured).",
            {"type": "object", "required": ["sobject", "fields"], "properties": {"sobject": {"type": "string"}, "fields": {"type": "object"}}},
            idempotency=Idempotency.VENDOR,  # an upsert by external id when configured, else the marker field is searched first
            tracks=TrackedKind.RECORD,
            tracks_label="Salesforce record",
        ),
        ActionSpec(
            "update_record",
            "Update a record",
            "Update fields of an existing record.",
            {
                "type": "object",
                "required": ["sobject", "id", "fields"],
                "properties": {"sobject": {"type": "string"}, "id": {"type": "string"}, "fields": {"type": "object"}},
            },
            idempotency=Idempotency.NATURAL,
        ),
    ),
    capabilities=(
        Capability.READ,
        Capability.INCREMENTAL,
        Capability.FIELD_DISCOVERY,
        Capability.DELETIONS,
        Capability.ACTIONS,
        Capability.DAILY_QUOTA,
    ),
    docs_url="https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/",
    # Salesforce counts API requests over a rolling 24 hours; the org's real limit and usage come from Sforce-Limit-Info.
    rate_limit=RateLimitSpec(per_second=20.0, burst=25, daily=15_000, quota_window="rolling_24h"),
)
