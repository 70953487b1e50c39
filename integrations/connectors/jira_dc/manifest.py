"""What Jira Data Center is to Bastion: the Cloud connector's entities and actions (same field rules) over a PAT and the customer's server."""

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
    Role,
    WebhookSpec,
)
from integrations.connectors.jira import ASSIGN_ISSUE_FIELDS, CREATE_ISSUE_FIELDS, TRACKS_ISSUE, WEBHOOK_EVENTS
from integrations.connectors.jira.manifest import MANIFEST as CLOUD

MANIFEST = ConnectorManifest(
    key="jira_dc",
    roles=(Role.TASKS,),
    person_rank=80,  # by default, its person data outranks sources with a higher rank
    name="Jira Data Center",
    category=Category.TICKETING,
    description="Self-hosted Jira (Data Center or Server 8.14+): projects, issues and users in; create issues (in bulk), assign, transition, comment; issue webhooks.",
    logo="connectors/jira_dc.svg",
    auth_methods=(AuthMethod.API_KEY,),
    credential_fields=(
        CredentialField(
            "personal_access_token",
            "Personal access token",
            help_text="In Jira: your avatar → Profile → Personal Access Tokens → Create token (Jira 8.14 or later).",
        ),
    ),
    config_fields=(
        CredentialField("project_keys", "Project keys to sync (comma separated)", is_secret=False, is_required=False),
        CredentialField("jql", "Extra JQL restriction for issue syncs", is_secret=False, is_required=False),
        CredentialField(
            "webhook_signing",
            "Webhook authentication",
            is_secret=False,
            is_required=False,
            help_text="'signed' accepts only X-Hub-Signature deliveries (Jira 10+); empty also accepts the URL token Jira 8–9 need.",
        ),
    ),
    # No default: the base URL is the customer's own server, e.g. https://jira.example.com (with its context path, if any).
    default_base_url="",
    entities=(
        CLOUD.entity("projects"),
        CLOUD.entity("issues"),
        EntitySpec("users", "Users", "Jira user accounts (active and inactive).", bastion_type=BastionType.PERSON),
        CLOUD.entity("fields"),
        CLOUD.entity("create_metadata"),
    ),
    actions=(
        ActionSpec(
            "create_issue",
            "Create issue",
            "Create an issue (bulk: ≤50 per call). The assignee is a username or an email.",
            {
                "project_key": "string",
                "summary": "string",
                "description": "string",
                "issue_type": "string",
                "assignee_email": "string",
                "assignee_name": "string",
                "due_date": "date",
                "labels": "array",
                "fields": "object",
            },
            Idempotency.SEARCH,
            fields=CREATE_ISSUE_FIELDS,
            **TRACKS_ISSUE,
        ),
        ActionSpec(
            "assign_issue",
            "Assign issue",
            "Assign to the user with this username or email.",
            {"issue_key": "string", "assignee_email": "string", "assignee_name": "string"},
            Idempotency.NATURAL,
            fields=ASSIGN_ISSUE_FIELDS,
        ),
        CLOUD.action("create_task"),
        CLOUD.action("transition_issue"),
        CLOUD.action("add_comment"),
    ),
    webhook=WebhookSpec(
        event_types=WEBHOOK_EVENTS,
        signature=(
            "Jira 10+: admin webhook with a secret, X-Hub-Signature = sha256=hex(HMAC-SHA256(secret, body)). "
            "Jira 8–9 cannot sign: the secret is a ?token= in the registered URL (anyone who sees that URL can forge deliveries). "
            "Either way the payload timestamp must be within 5 minutes."
        ),
    ),
    capabilities=(
        Capability.READ,
        Capability.INCREMENTAL,
        Capability.FIELD_DISCOVERY,
        Capability.ACTIONS,
        Capability.BULK_ACTIONS,
        Capability.WEBHOOKS,
        Capability.STATUS_WEBHOOKS,
        Capability.WEBHOOK_REGISTRATION,
        Capability.UNDO,
        Capability.FETCH_STATUS,
        Capability.CONFIG_CHOICES,
    ),
    docs_url="https://developer.atlassian.com/server/jira/platform/rest/v10002/",
)
