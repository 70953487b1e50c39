"""What Microsoft 365 is to Bastion: delegated scopes and why, application permissions per feature, Teams and calendar actions."""

from __future__ import annotations

from integrations.connectors.base import (
    MEETING_INPUT,
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
)
from integrations.connectors.microsoft365.delta import DELTA_ENTITIES
from integrations.connectors.microsoft365.excel import EXCEL_ACTIONS
from integrations.connectors.microsoft365.files import FILES_ACTIONS, FILES_CAPABILITIES, FILES_ENTITIES, FILES_SCOPES
from integrations.connectors.microsoft365.notifications import NOTIFICATION_CAPABILITIES, NOTIFICATION_SCOPES, WEBHOOK
from integrations.connectors.microsoft365.teams import rendered_channel_name

# Delegated scopes requested at sign-in (least privilege for each feature); an administrator grants application ones in Entra ID.
SCOPE_PURPOSES = {
    "offline_access": "Stay connected: renew the sign-in without asking you again.",
    "User.Read": "Know who signed in, shown on the connection.",
    "User.ReadBasic.All": "Find stakeholders in your directory by e-mail to add them to channels and meetings.",
    "Team.ReadBasic.All": "List your teams so you can pick the one incident channels are created in.",
    "Channel.ReadBasic.All": "List a team's channels and find a war-room channel that already exists.",
    "Channel.Create": "Create the incident's war-room channel (administrator consent).",
    "ChannelSettings.ReadWrite.All": "Archive the war-room channel when a run is undone (administrator consent).",
    "TeamMember.Read.All": "Read the team's members for the people pickers (administrator consent).",
    "TeamMember.ReadWriteNonOwnerRole.All": "Add stakeholders to the team as members, never as owners (administrator consent).",
    "ChannelMember.ReadWrite.All": "Add stakeholders to a private war-room channel (administrator consent).",
    "ChannelMessage.Send": "Post the briefing and notifications to the channel as you.",
    "OnlineMeetings.ReadWrite": "Create Teams meetings for the war room.",
    "Calendars.ReadWrite": "Book the war-room meeting in your calendar, read attendees' responses back and cancel it on undo.",
    "Calendars.Read.Shared": "Suggest a time when the attendees are free (findMeetingTimes).",
    "Place.Read.All": "List the organization's meeting rooms to book a free one (administrator consent).",
}
# Optional: with it Bastion finds a message it already posted, so a retried step never posts twice.
OPTIONAL_SCOPE_PURPOSES = {
    "ChannelMessage.Read.All": "Check the channel's recent messages for one Bastion already posted, so a retry never posts it twice (administrator consent).",
}
# What each feature needs per permission model (msgraph permissions map, least privileged); () = the model cannot do it.
FEATURE_PERMISSIONS = {
    "Teams channels": {
        "delegated": ("Team.ReadBasic.All", "Channel.ReadBasic.All", "Channel.Create", "ChannelSettings.ReadWrite.All"),
        "application": ("Team.ReadBasic.All", "Channel.ReadBasic.All", "Channel.Create", "ChannelSettings.ReadWrite.All"),
    },
    "Add people to channels": {
        "delegated": ("User.ReadBasic.All", "TeamMember.ReadWriteNonOwnerRole.All", "ChannelMember.ReadWrite.All"),
        "application": ("User.ReadBasic.All", "TeamMember.ReadWriteNonOwnerRole.All", "ChannelMember.ReadWrite.All"),
    },
    "Team members for people pickers": {"delegated": ("TeamMember.Read.All",), "application": ("TeamMember.Read.All",)},
    "Post to channels": {"delegated": ("ChannelMessage.Send",), "application": ()},
    "Teams meetings": {"delegated": ("OnlineMeetings.ReadWrite",), "application": ("OnlineMeetings.ReadWrite.All",)},
    "Outlook calendar": {"delegated": ("Calendars.ReadWrite",), "application": ("Calendars.ReadWrite",)},
    "Meeting rooms": {"delegated": ("Place.Read.All",), "application": ("Place.Read.All",)},
    "Find a time (findMeetingTimes)": {"delegated": ("Calendars.Read.Shared",), "application": ()},
}
DELEGATED = "delegated (a signed-in user, OAuth)"
APPLICATION = "application (client credentials)"
OPTIONAL = FieldShape(optional=True)

TEAMS_ACTIONS = (
    ActionSpec(
        "create_channel",
        "Create channel",
        f"Create (or reuse, by name) a standard or private channel in the configured team; a name held by an archived or deleted "
        f"channel moves on to name-2, name-3…. Works {DELEGATED} and {APPLICATION}; a private channel created with application "
        "permissions gets the configured organizer as its owner.",
        {"name": "string", "is_private": "boolean", "topic": "string"},
        Idempotency.NATURAL,
        fields={"name": FieldShape(transform=rendered_channel_name), "topic": FieldShape(max_chars=1024, single_line=True, optional=True)},
        tracks=TrackedKind.CHANNEL,
        tracks_label="Teams channel",
        verb="created",
        undo="Archive the channel (members keep its history and a team owner can unarchive it; Graph archives it asynchronously).",
        permissions=("Channel.Create", "Channel.ReadBasic.All", "ChannelSettings.ReadWrite.All"),
    ),
    ActionSpec(
        "invite_users",
        "Add people",
        f"Add people, found in the directory by e-mail, to the channel (private) or its team (standard), never as owners. Works {DELEGATED} and {APPLICATION}.",
        {"channel": "string", "emails": "array"},
        Idempotency.NATURAL,
        verb="invited",
        kept_on_undo="Nothing to undo on its own: the people stay team members; the archived channel ends the conversation.",
        permissions=("User.ReadBasic.All", "TeamMember.ReadWriteNonOwnerRole.All", "ChannelMember.ReadWrite.All"),
        bulk=True,  # a step's per-person items: one directory $batch and one membership $batch per 20 people
    ),
    ActionSpec(
        "post_message",
        "Post message",
        f"Post the text as an Adaptive Card. Needs {DELEGATED}: Graph lets application permissions only import messages. With "
        "application permissions Bastion posts through the incoming webhook set on the connection (into that webhook's channel), "
        "else the step fails saying a signed-in delegate is needed.",
        {"channel": "string", "text": "string", "title": "string?"},
        Idempotency.SEARCH,
        fields={"text": FieldShape(max_chars=20000), "title": FieldShape(max_chars=200, single_line=True, optional=True)},
        verb="posted",
        kept_on_undo="Messages stay in the channel's history.",
        permissions=("ChannelMessage.Send", "ChannelMessage.Read.All"),
    ),
    ActionSpec(
        "send_notification",
        "Send notification",
        f"Post a short notification marked important (Teams highlights it) as an Adaptive Card. Same permission model as posting: {DELEGATED}, "
        "or the incoming webhook with application permissions.",
        {"channel": "string", "text": "string", "title": "string?"},
        Idempotency.SEARCH,
        fields={"text": FieldShape(max_chars=4000), "title": FieldShape(max_chars=200, single_line=True, optional=True)},
        verb="sent",
        kept_on_undo="Notifications stay in the channel's history.",
        permissions=("ChannelMessage.Send", "ChannelMessage.Read.All"),
    ),
    ActionSpec(
        "create_online_meeting",
        "Create Teams meeting",
        f"Create (or get again, by Bastion's key) a Teams meeting and return its join link. {DELEGATED} needs OnlineMeetings.ReadWrite; "
        f"{APPLICATION} needs OnlineMeetings.ReadWrite.All and an application access policy an administrator grants to the organizer.",
        {"subject": "string", "start": "datetime", "end": "datetime", "attendees": "[email]?"},
        Idempotency.VENDOR,
        fields={"subject": FieldShape(max_chars=255, single_line=True), "attendees": OPTIONAL},
        verb="created",
        kept_on_undo="The meeting link stays valid; cancel the calendar event to tell attendees.",
        permissions=("OnlineMeetings.ReadWrite", "OnlineMeetings.ReadWrite.All"),
    ),
)

CALENDAR_ACTIONS = (
    ActionSpec(
        "create_event",
        "Create event",
        f"Book an Outlook meeting with a Teams link, attendees and a free room from the organization's rooms, checking the time with "
        f"getSchedule first (and findMeetingTimes, {DELEGATED} only, when people are busy). Works {DELEGATED} (your calendar) and "
        f"{APPLICATION} (the configured organizer's calendar).",
        {
            **MEETING_INPUT,
            "find_time": "boolean?",
        },
        Idempotency.SEARCH,
        fields={
            "summary": FieldShape(max_chars=255, single_line=True),
            "description": FieldShape(max_chars=8000),
            "room_email": OPTIONAL,
            "find_time": OPTIONAL,
        },
        tracks=TrackedKind.MEETING,
        tracks_label="Outlook meeting",
        verb="booked",
        undo="Cancel the meeting; Outlook sends every attendee the cancellation.",
        permissions=("Calendars.ReadWrite", "Place.Read.All", "Calendars.Read.Shared"),
    ),
)

MANIFEST = ConnectorManifest(
    key="microsoft365",
    person_rank=65,  # team members: after the directories and Slack, as a chat tool's people are
    name="Microsoft 365",
    category=Category.COLLABORATION,
    roles=(Role.CHAT, Role.MEETING, Role.DOCUMENTS),
    description="Teams channels, members, Adaptive Card briefings and meetings; Outlook war-room meetings with rooms and responses; "
    "SharePoint and OneDrive documents and Excel workbook values.",
    logo="connectors/microsoft365.svg",
    auth_methods=(AuthMethod.OAUTH2, AuthMethod.SERVICE_ACCOUNT),
    credential_fields=(
        CredentialField("tenant_id", "Directory (tenant) id", is_secret=False, help_text="Application access: Entra ID → Overview → Tenant ID."),
        CredentialField("client_id", "Application (client) id", is_secret=False, help_text="The app registration an administrator granted permissions to."),
        CredentialField("client_secret", "Client secret"),
        CredentialField(
            "incoming_webhook_url",
            "Incoming webhook URL",
            is_required=False,
            help_text="Optional, application access only: a Teams channel's incoming webhook, used to post because Graph lets apps only import messages.",
        ),
    ),
    config_fields=(
        CredentialField("team_id", "Team", is_secret=False, is_required=False, help_text="The team incident channels are created in."),
        CredentialField(
            "organizer", "Organizer (user or mailbox)", is_secret=False, is_required=False, help_text="Application access: whose calendar books meetings."
        ),
        CredentialField("tenant_id", "Directory (tenant) id", is_secret=False, is_required=False),
        CredentialField(
            "documents_drive_id",
            "Documents drive",
            is_secret=False,
            is_required=False,
            help_text="The drive whose changes Bastion follows (incident documents).",
        ),
        CredentialField("login_base_url", "Login base URL", is_secret=False, is_required=False, help_text="https://login.microsoftonline.com"),
    ),
    oauth=OAuthSpec(
        # Bastion's app is multi-tenant: "organizations" signs in any work account; post_authorize stores the tenant it belongs to.
        authorize_url="https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
        scopes=tuple({**SCOPE_PURPOSES, **FILES_SCOPES}),
        scope_purposes={**SCOPE_PURPOSES, **FILES_SCOPES, **NOTIFICATION_SCOPES, **OPTIONAL_SCOPE_PURPOSES},
        use_pkce=True,
        rotates_refresh_token=True,
    ),
    default_base_url="https://graph.microsoft.com/v1.0",
    entities=(
        EntitySpec("teams", "Teams", "Teams the connection can see (for the team setting)."),
        EntitySpec("channels", "Channels", "Channels of the configured team.", bastion_type=BastionType.CHANNEL),
        EntitySpec("members", "Team members", "Members of the configured team, merged with directory people by e-mail.", bastion_type=BastionType.PERSON),
        *FILES_ENTITIES,
        *DELTA_ENTITIES,
    ),
    actions=TEAMS_ACTIONS + CALENDAR_ACTIONS + FILES_ACTIONS + EXCEL_ACTIONS,
    capabilities=(
        Capability.READ,
        Capability.ACTIONS,
        Capability.UNDO,
        Capability.FETCH_STATUS,
        Capability.CONFIG_CHOICES,
        Capability.FREE_BUSY,
        *FILES_CAPABILITIES,
        *NOTIFICATION_CAPABILITIES,
    ),
    webhook=WEBHOOK,
    docs_url="https://learn.microsoft.com/graph/overview",
)
