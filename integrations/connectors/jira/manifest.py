"""What Jira Cloud is to Bastion: API roots and scopes, entities, actions with their field rules and tracked issue, webhook events."""

from __future__ import annotations

import re
from typing import Any

from integrations.connectors.base import (
    TASK_INPUT,
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
    Role,
    TrackedKind,
    WebhookSpec,
)

API = "rest/api/3"
WEBHOOKS = "rest/webhooks/1.0/webhook"
USER_EVENTS = ("user_created", "user_updated", "user_deleted")  # directory users: applied to the users entity
ISSUE_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")
WEBHOOK_EVENTS = (*ISSUE_EVENTS, *USER_EVENTS)
BULK_LIMIT = 50
REPLAY_WINDOW_MS = 5 * 60 * 1000
ISSUE_FIELDS = ["summary", "status", "assignee", "duedate", "updated", "created", "project", "issuetype", "labels", "priority", "description"]
PERMISSIONS = ("BROWSE_PROJECTS", "CREATE_ISSUES", "EDIT_ISSUES", "ASSIGN_ISSUES", "TRANSITION_ISSUES", "ADD_COMMENTS", "BROWSE_USERS")
OAUTH_SCOPES = {
    "read:jira-work": "Read projects, issues, fields and create metadata.",
    "write:jira-work": "Create issues, transition and comment on them.",
    "read:jira-user": "Find assignees and project leads by email.",
    "manage:jira-webhook": "Receive issue updates so task status flows back to Bastion.",
    "offline_access": "Keep the connection working without asking again (refresh tokens rotate).",
}
ATLASSIAN_API = "https://api.atlassian.com"  # OAuth 2.0 (3LO) tokens work only here, at /ex/jira/{cloudId}/rest/api/3/…
FULL_SCAN_RESTRICTION = 'updated >= "1970-01-01 00:00"'  # the search endpoint refuses unbounded JQL
FIELD_TYPES = {"string": "string", "number": "number", "date": "date", "datetime": "datetime", "user": "user", "array": "array", "option": "string"}
COMMENT_PROPERTY = "bastion.action"
UNDO_CREATE_ISSUE = "Close the issue (a Cancelled or Done status) with a comment saying why; issues are never deleted."
_WHITESPACE = re.compile(r"\s+")


def issue_labels(value: Any) -> Any:
    """Jira labels cannot hold spaces: each label's whitespace runs become '-', empty labels are dropped."""
    if not isinstance(value, list):
        return value
    return [_WHITESPACE.sub("-", str(label)) for label in value if str(label).strip()]


# Shared with Jira Data Center, whose actions take the same fields.
CREATE_ISSUE_FIELDS = {
    "summary": FieldShape(max_chars=255, single_line=True),
    "description": FieldShape(max_chars=30000),
    "labels": FieldShape(transform=issue_labels, optional=True),
    "assignee_email": FieldShape(optional=True),
    "due_date": FieldShape(optional=True),
}
ASSIGN_ISSUE_FIELDS = {"assignee_email": FieldShape(optional=True)}
ADD_COMMENT_FIELDS = {"body": FieldShape(max_chars=30000)}
TRACKS_ISSUE: dict[str, Any] = {"tracks": TrackedKind.TASK, "tracks_label": "Jira issue", "verb": "created", "undo": UNDO_CREATE_ISSUE}
# The tasks role (Role.TASKS): the same payload as Asana's create_task, made a Jira issue (project_key, issue_type, labels optional).
CREATE_TASK = ActionSpec(
    "create_task",
    "Create a task",
    "The tasks role: a Jira issue from a title, notes, an assignee's e-mail and a due date (bulk: ≤50 per call).",
    {**TASK_INPUT, "project_key": "string?", "issue_type": "string=Task", "labels": "array?"},
    Idempotency.SEARCH,
    fields={
        "title": CREATE_ISSUE_FIELDS["summary"],
        "notes": CREATE_ISSUE_FIELDS["description"],
        "labels": CREATE_ISSUE_FIELDS["labels"],
        "assignee": FieldShape(optional=True),
        "due_on": FieldShape(optional=True),
        "project_key": FieldShape(optional=True),
    },
    **TRACKS_ISSUE,
)

MANIFEST = ConnectorManifest(
    key="jira",
    roles=(Role.TASKS,),
    person_rank=70,  # by default, its person data outranks sources with a higher rank
    name="Jira",
    category=Category.TICKETING,
    description="Read projects, issues, users and custom fields; create issues (in bulk), assign, transition and comment; issue webhooks.",
    logo="connectors/jira.svg",
    auth_methods=(AuthMethod.OAUTH2, AuthMethod.BASIC),
    credential_fields=(
        CredentialField("email", "Account email", is_secret=False),
        CredentialField("api_token", "API token", help_text="id.atlassian.com → Security → API tokens."),
    ),
    config_fields=(
        CredentialField("project_keys", "Project keys to sync (comma separated)", is_secret=False, is_required=False),
        CredentialField("jql", "Extra JQL restriction for issue syncs", is_secret=False, is_required=False),
        CredentialField(
            "site_url",
            "Jira site (OAuth)",
            is_secret=False,
            is_required=False,
            help_text="e.g. https://acme.atlassian.net: the site Bastion uses when your Atlassian account reaches several; also used for issue links.",
        ),
    ),
    oauth=OAuthSpec(
        authorize_url="https://auth.atlassian.com/authorize",
        token_url="https://auth.atlassian.com/oauth/token",
        scopes=tuple(OAUTH_SCOPES),
        scope_purposes=OAUTH_SCOPES,
        use_pkce=False,
        rotates_refresh_token=True,
        extra_authorize_params={"audience": "api.atlassian.com", "prompt": "consent"},
    ),
    # OAuth: Atlassian's API gateway; calls go to {gateway}/ex/jira/{cloudId} once the site is known (post_authorize).
    # An API token (Basic) needs the site itself as base URL: https://<site>.atlassian.net.
    default_base_url=ATLASSIAN_API,
    entities=(
        EntitySpec("projects", "Projects", "Projects with lead and next release date.", bastion_type=BastionType.PROJECT),
        EntitySpec("issues", "Issues", "Issues found by JQL, incrementally by `updated`.", supports_incremental=True, bastion_type=BastionType.TASK),
        EntitySpec("users", "Users", "Atlassian accounts.", bastion_type=BastionType.PERSON),
        EntitySpec("fields", "Fields", "System and custom issue fields.", bastion_type=BastionType.OTHER),
        EntitySpec("create_metadata", "Create metadata", "Issue types and their fields per project.", bastion_type=BastionType.OTHER),
    ),
    actions=(
        ActionSpec(
            "create_issue",
            "Create issue",
            "Create an issue (bulk: ≤50 per call).",
            {
                "project_key": "string",
                "summary": "string",
                "description": "string",
                "issue_type": "string",
                "assignee_email": "string",
                "due_date": "date",
                "labels": "array",
                "fields": "object",
            },
            Idempotency.SEARCH,
            fields=CREATE_ISSUE_FIELDS,
            **TRACKS_ISSUE,
        ),
        CREATE_TASK,
        ActionSpec(
            "assign_issue",
            "Assign issue",
            "Assign to the account with this email.",
            {"issue_key": "string", "assignee_email": "string"},
            Idempotency.NATURAL,
            fields=ASSIGN_ISSUE_FIELDS,
        ),
        ActionSpec(
            "transition_issue", "Transition issue", "Move an issue to a status by name.", {"issue_key": "string", "status": "string"}, Idempotency.NATURAL
        ),
        ActionSpec(
            "add_comment", "Add comment", "Comment on an issue.", {"issue_key": "string", "body": "string"}, Idempotency.SEARCH, fields=ADD_COMMENT_FIELDS
        ),
    ),
    webhook=WebhookSpec(
        event_types=WEBHOOK_EVENTS,
        signature="Admin webhook with a secret: X-Hub-Signature = sha256=hex(HMAC-SHA256(secret, body)); payload timestamp within 5 minutes.",
        oauth_jwt=True,
    ),
    capabilities=(
        Capability.READ,
        Capability.INCREMENTAL,
        Capability.FIELD_DISCOVERY,
        Capability.ACTIONS,
        Capability.BULK_ACTIONS,
        Capability.WEBHOOKS,
        Capability.STATUS_WEBHOOKS,
        Capability.UNDO,
        Capability.FETCH_STATUS,
        Capability.WEBHOOK_REGISTRATION,
        Capability.CONFIG_CHOICES,
    ),
    docs_url="https://developer.atlassian.com/cloud/jira/platform/rest/v3/",
)
