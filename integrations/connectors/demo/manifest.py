"""What the Demo Workspace is to Bastion: a sandbox-only stand-in with people, OAuth with rotating refresh tokens, webhooks."""

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
    WebhookSpec,
)

EVENT_TYPES = ("person.created", "person.updated", "person.deleted")

MANIFEST = ConnectorManifest(
    key="demo",
    name="Demo Workspace",
    category=Category.COLLABORATION,
    description="A sample workspace served by Bastion's vendor sandbox: people, projects, OAuth with rotating refresh tokens.",
    logo="connectors/demo.svg",
    auth_methods=(AuthMethod.OAUTH2, AuthMethod.API_KEY),
    credential_fields=(CredentialField("api_key", "API key", help_text="A token from the sandbox (POST /_control/tokens)."),),
    config_fields=(CredentialField("project", "Project", is_secret=False, help_text="The project Bastion files work under."),),
    oauth=OAuthSpec(
        # Relative: resolved against the integration's base URL (the sandbox serves <sandbox>/demo/oauth/…).
        authorize_url="oauth/authorize",
        token_url="oauth/token",
        scopes=("people:read", "projects:read", "people:write"),
        scope_purposes={
            "people:read": "Read people to pre-fill stakeholders in scenario forms.",
            "projects:read": "List projects so you can choose where Bastion files work.",
            "people:write": "Add people when a playbook step asks for it.",
        },
        rotates_refresh_token=True,
    ),
    default_base_url="http://127.0.0.1:8765/demo",
    entities=(EntitySpec("people", "People", "Everyone in the workspace.", bastion_type=BastionType.PERSON),),
    actions=(
        ActionSpec(
            "create_person",
            "Add a person",
            "Create a person in the workspace (vendor idempotency key).",
            input_schema={"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}, "first_name": {"type": "string"}}},
            idempotency=Idempotency.VENDOR,
        ),
    ),
    webhook=WebhookSpec(
        event_types=EVENT_TYPES,
        signature="HMAC-SHA256 of '<timestamp>.<body>' in X-Demo-Signature (sha256=…), timestamp in X-Demo-Timestamp, 5-minute window.",
    ),
    capabilities=(Capability.READ, Capability.ACTIONS, Capability.WEBHOOKS, Capability.FIELD_DISCOVERY, Capability.CONFIG_CHOICES),
    rate_limit=RateLimitSpec(per_second=20, burst=40),
    sandbox_only=True,  # it talks only to Bastion's vendor sandbox
)
