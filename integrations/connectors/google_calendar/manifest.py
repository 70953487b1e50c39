"""What Google Calendar is to Bastion: scopes and why, entities, event actions with their field rules and tracked meeting, push states."""

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
    FieldInfo,
    FieldShape,
    Idempotency,
    OAuthSpec,
    Role,
    TrackedKind,
    WebhookSpec,
)

SCOPE_PURPOSES = {
    "https://www.googleapis.com/auth/calendar.events": "Book, update and cancel playbook meetings and read attendee responses",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly": "List the calendars you can book into",
    "https://www.googleapis.com/auth/calendar.freebusy": "Check when stakeholders and rooms are free before booking",
}
SCOPES = tuple(SCOPE_PURPOSES)
PUSH_STATES = ("sync", "exists", "not_exists")
EVENT_FIELDS = (
    FieldInfo("id", "Event id", path="$.id", is_required=True),
    FieldInfo("summary", "Title", path="$.summary"),
    FieldInfo("description", "Description", path="$.description"),
    FieldInfo("start", "Start", "datetime", "$.start.dateTime"),
    FieldInfo("end", "End", "datetime", "$.end.dateTime"),
    FieldInfo("attendees", "Attendees", "array", "$.attendees[*].email"),
    FieldInfo("attendee_responses", "Attendee responses", "array", "$.attendees[*].responseStatus"),
    FieldInfo("organizer", "Organizer", "email", "$.organizer.email"),
    FieldInfo("hangoutLink", "Meet link", path="$.hangoutLink"),
    FieldInfo("status", "Status", path="$.status"),
    FieldInfo("htmlLink", "Link", path="$.htmlLink"),
)
OPTIONAL = FieldShape(optional=True)

MANIFEST = ConnectorManifest(
    key="google_calendar",
    name="Google Calendar",
    category=Category.CALENDAR,
    roles=(Role.MEETING,),
    description="Read calendars, events and free/busy; book war-room meetings with Meet links and rooms; follow attendee responses by push channel.",
    logo="connectors/google_calendar.svg",
    auth_methods=(AuthMethod.OAUTH2, AuthMethod.SERVICE_ACCOUNT),
    credential_fields=(CredentialField("service_account_key", "Service-account JSON key", help_text="Only for service-account auth; OAuth needs no key."),),
    config_fields=(
        CredentialField("calendar_id", "Calendar", is_secret=False, is_required=False, help_text="Calendar to read and book into (default: primary)."),
        CredentialField(
            "subject", "Act as user", is_secret=False, is_required=False, help_text="Service accounts with domain-wide delegation: the user to impersonate."
        ),
        CredentialField("watch_channel_id", "Push channel id", is_secret=False, is_required=False),
    ),
    oauth=OAuthSpec(
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        scopes=SCOPES,
        scope_purposes=SCOPE_PURPOSES,
        use_pkce=True,
        rotates_refresh_token=False,
        extra_authorize_params={"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
    ),
    default_base_url="https://www.googleapis.com/calendar/v3/",
    entities=(
        EntitySpec("calendars", "Calendars", "Calendars on the connected user's calendar list"),
        EntitySpec(
            "events", "Events", "Events of the configured calendar, incremental by sync token", supports_incremental=True, bastion_type=BastionType.EVENT
        ),
    ),
    actions=(
        ActionSpec(
            "create_event",
            "Create event",
            "Book a meeting with attendees, a Google Meet link, a room and reminders (idempotent by a client-supplied event id).",
            dict(MEETING_INPUT),
            idempotency=Idempotency.VENDOR,
            fields={
                "summary": FieldShape(max_chars=1024, single_line=True),
                "description": FieldShape(max_chars=8000),
                "room_email": OPTIONAL,
            },
            tracks=TrackedKind.MEETING,
            tracks_label="Meeting",
            verb="booked",
            undo="Cancel the meeting; Google e-mails every attendee the cancellation.",
        ),
        ActionSpec(
            "update_event",
            "Update event",
            "",
            {"event_id": "string", "calendar_id": "string=primary"},
            idempotency=Idempotency.NATURAL,
            fields={"room_email": OPTIONAL},
        ),
        ActionSpec("cancel_event", "Cancel event", "", {"event_id": "string", "calendar_id": "string=primary"}, idempotency=Idempotency.NATURAL),
    ),
    webhook=WebhookSpec(
        event_types=tuple(f"events.{state}" for state in PUSH_STATES),
        signature="Push channel: X-Goog-Channel-Token must equal the channel token (constant time); X-Goog-Channel-ID must match; expired channels rejected",
    ),
    capabilities=(
        Capability.READ,
        Capability.INCREMENTAL,
        Capability.ACTIONS,
        Capability.WEBHOOKS,
        Capability.FREE_BUSY,
        Capability.UNDO,
        Capability.FETCH_STATUS,
    ),
    docs_url="https://developers.google.com/calendar/api/v3/reference",
)
