"""What Okta is to Bastion: credentials, entities, event hooks and capabilities."""

from integrations.connectors.base import (
    AuthMethod,
    BastionType,
    Capability,
    Category,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    OAuthSpec,
    WebhookSpec,
)
from integrations.connectors.okta.webhooks import CHANGE_EVENTS, DELETE_EVENTS

MANIFEST = ConnectorManifest(
    key="okta",
    person_rank=20,  # by default, its person data outranks sources with a higher rank
    name="Okta",
    category=Category.DIRECTORY,
    description="People, groups and application assignments from Okta, kept current by event hooks.",
    auth_methods=(AuthMethod.API_KEY, AuthMethod.OAUTH2),
    credential_fields=(CredentialField("api_token", "API token (SSWS)", help_text="Admin console → Security → API → Tokens"),),
    config_fields=(
        CredentialField("app_ids", "Application ids for assignments", is_secret=False, is_required=False),
        CredentialField("webhook_auth_header", "Event hook authentication header", is_secret=False, is_required=False),
    ),
    oauth=OAuthSpec(
        authorize_url="https://{yourOktaDomain}/oauth2/v1/authorize",
        token_url="https://{yourOktaDomain}/oauth2/v1/token",
        scopes=("okta.users.read", "okta.groups.read", "okta.apps.read"),
        scope_purposes={"okta.users.read": "Import people", "okta.groups.read": "Import groups", "okta.apps.read": "Import app assignments"},
    ),
    entities=(
        EntitySpec("users", "Users", "People (deactivated users are reported as deletions)", supports_incremental=True, bastion_type=BastionType.PERSON),
        EntitySpec("groups", "Groups", "Okta groups with their members", bastion_type=BastionType.GROUP),
        EntitySpec("app_assignments", "App assignments", "Users assigned to the configured applications", bastion_type=BastionType.OTHER),
    ),
    webhook=WebhookSpec(
        event_types=tuple(sorted(DELETE_EVENTS | CHANGE_EVENTS)),
        signature="Event hook: one-time GET verification (X-Okta-Verification-Challenge), then a static secret header on every delivery.",
    ),
    capabilities=(Capability.READ, Capability.INCREMENTAL, Capability.FIELD_DISCOVERY, Capability.DELETIONS, Capability.WEBHOOKS),
    docs_url="https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/",
)
