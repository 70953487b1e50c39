"""What Slack is to Bastion: scopes and why, entities, actions with their field rules and tracked objects, webhook events."""

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
    Role,
    TextFormat,
    TrackedKind,
    WebhookSpec,
)
from integrations.connectors.slack.naming import rendered_channel_name

SCOPE_PURPOSES = {
    "users:read": "List workspace members so stakeholders can be picked from Slack.",
    "users:read.email": "Read members' email addresses to match them to Bastion people and invite them by email.",
    "channels:read": "List public channels for the channel pickers and to find a war-room channel that already exists.",
    "groups:read": "List the private channels Bastion belongs to, for the same reasons.",
    "channels:manage": "Create, set the topic of, invite people to and archive public war-room channels.",
    "groups:write": "Do the same for private war-room channels.",
    "chat:write": "Post playbook updates (Block Kit) to channels.",
    "im:write": "Open direct messages to send a person their playbook tasks.",
}
# Optional: with these Bastion finds a message it already posted (by its metadata) so a retried step never posts twice.
OPTIONAL_SCOPE_PURPOSES = {
    "channels:history": "Check recent messages for one Bastion already posted, so a retry never posts it twice.",
    "groups:history": "The same check in private channels.",
    "im:history": "The same check in direct messages.",
}
ARCHIVE_EVENTS = ("channel_archive", "group_archive")
UNARCHIVE_EVENTS = ("channel_unarchive", "group_unarchive")
DELETE_EVENTS = ("channel_deleted", "group_deleted")
CHANNEL_EVENTS = ("channel_created", "channel_rename", "group_rename")
MEMBER_EVENTS = ("member_joined_channel", "member_left_channel")
USER_EVENTS = ("user_change", "team_join")
EVENT_TYPES = ("url_verification", *ARCHIVE_EVENTS, *UNARCHIVE_EVENTS, *DELETE_EVENTS, *CHANNEL_EVENTS, *MEMBER_EVENTS, *USER_EVENTS)

MESSAGE_FIELDS = {
    "text": FieldShape(max_chars=4000, format=TextFormat.SLACK_MRKDWN),
    "blocks": FieldShape(format=TextFormat.SLACK_MRKDWN),
}

MANIFEST = ConnectorManifest(
    key="slack",
    person_rank=60,  # by default, its person data outranks sources with a higher rank
    name="Slack",
    category=Category.COLLABORATION,
    roles=(Role.CHAT,),
    description="Read members and channels; create war-room channels, invite stakeholders, post updates and DMs.",
    logo="connectors/slack.svg",
    auth_methods=(AuthMethod.OAUTH2, AuthMethod.API_KEY),
    credential_fields=(CredentialField("access_token", "Bot token (xoxb-…)", help_text="From your Slack app's OAuth & Permissions page."),),
    oauth=OAuthSpec(
        authorize_url="https://slack.com/oauth/v2/authorize",
        token_url="https://slack.com/api/oauth.v2.access",
        scopes=tuple(SCOPE_PURPOSES),
        scope_purposes={**SCOPE_PURPOSES, **OPTIONAL_SCOPE_PURPOSES},
        use_pkce=False,
        rotates_refresh_token=True,  # only when the app opts into token rotation; otherwise no refresh token is issued
        scope_separator=",",
    ),
    default_base_url="https://slack.com/api",
    entities=(
        EntitySpec("users", "Members", "Workspace members with email and title.", bastion_type=BastionType.PERSON),
        EntitySpec("channels", "Channels", "Public channels and the private channels Bastion is in.", bastion_type=BastionType.CHANNEL),
    ),
    actions=(
        ActionSpec(
            "create_channel",
            "Create channel",
            "Create (or reuse) a channel by its sanitized name.",
            {"name": "string", "is_private": "boolean", "topic": "string"},
            Idempotency.NATURAL,
            fields={
                "name": FieldShape(transform=rendered_channel_name),
                "topic": FieldShape(max_chars=250, single_line=True, format=TextFormat.SLACK_MRKDWN),
                "purpose": FieldShape(format=TextFormat.SLACK_MRKDWN),
            },
            tracks=TrackedKind.CHANNEL,
            tracks_label="Slack channel",
            verb="created",
            undo="Archive the channel (members keep its history; it can be unarchived in Slack).",
        ),
        ActionSpec(
            "invite_users",
            "Invite people",
            "Invite people, looked up by email, to a channel.",
            {"channel": "string", "emails": "array"},
            Idempotency.NATURAL,
            verb="invited",
            kept_on_undo="Nothing to undo on its own: the invitations end with the archived channel.",
            bulk=True,  # a step's per-person items: one lookup round and one conversations.invite
        ),
        ActionSpec(
            "post_message",
            "Post message",
            "Post a Block Kit message.",
            {"channel": "string", "text": "string", "blocks": "array"},
            Idempotency.SEARCH,
            fields=MESSAGE_FIELDS,
            verb="posted",
            kept_on_undo="Messages stay in the channel's history.",
        ),
        ActionSpec(
            "send_dm",
            "Send direct message",
            "DM a person found by email.",
            {"email": "string", "text": "string", "blocks": "array"},
            Idempotency.SEARCH,
            fields=MESSAGE_FIELDS,
            verb="sent",
            kept_on_undo="Direct messages are not deleted.",
        ),
        ActionSpec("archive_channel", "Archive channel", "Archive a channel.", {"channel": "string"}, Idempotency.NATURAL),
    ),
    webhook=WebhookSpec(
        event_types=EVENT_TYPES,
        signature="Events API v0: X-Slack-Signature = v0=hex(HMAC-SHA256(signing secret, 'v0:{X-Slack-Request-Timestamp}:{body}')), 5-minute window.",
        routes_by_account=True,
    ),
    capabilities=(
        Capability.READ,
        Capability.FIELD_DISCOVERY,
        Capability.ACTIONS,
        Capability.WEBHOOKS,
        Capability.STATUS_WEBHOOKS,
        Capability.UNDO,
        Capability.FETCH_STATUS,
        Capability.DECISIONS,
    ),
    docs_url="https://api.slack.com/web",
)
