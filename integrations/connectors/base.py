"""The connector SDK: a connector is plain Python that knows one vendor's API and no database."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from integrations.connectors.results import (  # noqa: F401 - re-exported: connectors import the whole contract from base
    ActionResult,
    ConnectionTest,
    DecisionChoice,
    DecisionPress,
    DecisionRequest,
    DocumentItem,
    FieldInfo,
    Page,
    TrackedObject,
    WebhookEvent,
    WebhookRequest,
)
from integrations.errors import ApiError, WebhookRejected
from integrations.http import classify_generic

if TYPE_CHECKING:
    import requests

    from integrations.http import HttpClient
    from integrations.ssrf import OutboundTarget


class Category(StrEnum):
    COLLABORATION = "collaboration"
    TICKETING = "ticketing"
    CALENDAR = "calendar"
    INCIDENT = "incident"
    DIRECTORY = "directory"
    CRM = "crm"
    MESSAGING = "messaging"
    FILES = "files"
    ANALYTICS = "analytics"
    SIGNATURES = "signatures"
    OTHER = "other"


class AuthMethod(StrEnum):
    OAUTH2 = "oauth2"
    API_KEY = "api_key"
    BASIC = "basic"
    SERVICE_ACCOUNT = "service_account"
    LDAP_BIND = "ldap_bind"
    NONE = "none"


class BastionType(StrEnum):
    """What an entity's records are to Bastion: PERSON records go through the people merge, the rest are stored as records."""

    PERSON = "person"
    GROUP = "group"
    CHANNEL = "channel"
    TASK = "task"
    EVENT = "event"
    INCIDENT = "incident"
    DEAL = "deal"
    PROJECT = "project"
    DOCUMENT = "document"
    OTHER = "other"


class Idempotency(StrEnum):
    VENDOR = "vendor"  # the vendor deduplicates on an idempotency key Bastion sends
    SEARCH = "search"  # Bastion finds the object by its marker before creating
    NATURAL = "natural"  # repeating the call is harmless (set a topic, invite someone already invited)
    NONE = "none"  # the vendor cannot deduplicate (SMTP): Bastion never repeats an attempt whose outcome it did not see


class Capability(StrEnum):
    """What a connector can do; the apps ask `supports()` instead of probing the class."""

    READ = "read"
    INCREMENTAL = "incremental"
    DELETIONS = "deletions"
    FIELD_DISCOVERY = "field_discovery"
    ACTIONS = "actions"
    BULK_ACTIONS = "bulk_actions"  # perform_bulk is more than one call per payload
    UNDO = "undo"  # undo() reverses some actions (ActionSpec.undo says which and how)
    FETCH_STATUS = "fetch_status"  # fetch_objects() reads tracked objects' status back
    WEBHOOKS = "webhooks"  # verify_webhook/parse_webhook
    STATUS_WEBHOOKS = "status_webhooks"  # webhooks carry tracked objects' status changes
    WEBHOOK_REGISTRATION = "webhook_registration"  # register_webhook() subscribes Bastion's endpoint at the vendor
    FREE_BUSY = "free_busy"
    DAILY_QUOTA = "daily_quota"
    PAGED_RESULTS = "paged_results"
    NESTED_GROUPS = "nested_groups"
    ORG_CHART = "org_chart"
    DISABLED_RULES = "disabled_rules"  # the directory's "who is disabled" rules can be configured and previewed
    CONFIG_CHOICES = "config_choices"  # config_choices() lists the vendor's values for a setting (projects, channels)
    DECISIONS = "decisions"  # request_decision() asks a person with buttons in their chat tool; parse_decision() reads a press
    DOCUMENTS = "documents"  # browse_documents() lists folders and files for the forms' file picker
    DOCUMENT_VALUES = "document_values"  # read_document_values() reads named tables and ranges of a workbook into values


class Role(StrEnum):
    """A part a connected tool plays in a playbook: templates name the role ("@chat"), the organization's tools decide who plays it."""

    CHAT = "chat"  # the collaboration channel (Slack, Teams)
    MEETING = "meeting"  # the meeting (Google Calendar, Outlook)
    DOCUMENTS = "documents"  # the incident's documents (SharePoint/OneDrive, Google Drive)
    TASKS = "tasks"  # the work plan: follow-up tasks with an owner and a due date (Jira, Asana)
    SIGNATURES = "signatures"  # documents sent for signature (DocuSign)


# The actions a connector playing a role must offer, with the same payload fields whatever the vendor (docs/connectors.md).
ROLE_ACTIONS: Mapping[Role, tuple[str, ...]] = {
    Role.CHAT: ("create_channel", "invite_users", "post_message"),
    Role.MEETING: ("create_event",),
    Role.DOCUMENTS: ("copy_document",),
    Role.TASKS: ("create_task",),
    Role.SIGNATURES: ("send_envelope",),
}
# The meeting role's payload, the same for every calendar that plays it (a vendor may accept more fields).
MEETING_INPUT: Mapping[str, str] = {
    "calendar_id": "string=primary",
    "summary": "string",
    "description": "string",
    "start": "datetime",
    "end": "datetime",
    "timezone": "string=UTC",
    "attendees": "[email]",
    "conference": "boolean",
    "room_email": "email?",
    "reminders_minutes": "[int]?",
}
# The tasks role's payload (Jira issue, Asana task): assignee is an e-mail, due_on an ISO date; a vendor may accept more.
TASK_INPUT: Mapping[str, str] = {
    "title": "string",
    "notes": "string?",
    "assignee": "email?",
    "due_on": "date?",
}
# The signatures role's payload: a template sent to signers (name + e-mail) for one deal or incident.
SIGNATURE_INPUT: Mapping[str, str] = {
    "template_id": "string",
    "subject": "string",
    "message": "string?",
    "signers": "[object]",  # [{"name": ..., "email": ..., "role": "Signer"}] — role names the template's role
}


class TrackedKind(StrEnum):
    """What a created object is to the war room, whatever the vendor: the engine branches on these, never on vendor names."""

    TASK = "task"  # has an owner and a done status (a Jira issue, an Asana task)
    CHANNEL = "channel"  # where people talk (a Slack or Teams channel); done when archived
    MEETING = "meeting"  # has attendees whose responses flow back (details["attendees"])
    INCIDENT = "incident"  # an on-call or status-page incident; done when resolved
    MESSAGE = "message"
    RECORD = "record"  # anything else worth a link (a CRM record)


class TextFormat(StrEnum):
    """How a payload field's substituted values are escaped before delivery."""

    PLAIN = "plain"  # controls removed
    SLACK_MRKDWN = "slack_mrkdwn"  # &, < and > as entities
    HTML = "html"


@dataclass(frozen=True)
class FieldShape:
    """The vendor's rule for one payload field, applied after rendering whatever the template says."""

    max_chars: int | None = None
    single_line: bool = False
    format: TextFormat = TextFormat.PLAIN
    # A vendor rule applied to the rendered value first (Slack channel names; Jira labels without spaces).
    transform: Callable[[Any], Any] | None = None
    # Dropped from the payload when it renders empty (an empty assignee is an error at most vendors).
    optional: bool = False


@dataclass(frozen=True)
class WebhookSpec:
    """The deliveries a connector accepts: its event types and how they are signed."""

    event_types: tuple[str, ...] = ()
    signature: str = ""  # human description of the scheme, shown in the wizard
    # The vendor signs with this field of the connection's credential (Twilio: auth_token), not a secret Bastion generates.
    key_field: str = ""
    # Under an OAuth 2.0 connection the vendor signs deliveries as a JWT with the OAuth app's client secret (Jira).
    oauth_jwt: bool = False
    # The payload names the vendor account (Slack team_id, HubSpot portalId): deliveries route by it (parse_account_id).
    routes_by_account: bool = False


def _coerce(enum: type[StrEnum], value: Any, where: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValueError(f"{where}: '{value}' is not a {enum.__name__} (one of {allowed})") from None


@dataclass(frozen=True)
class OAuthSpec:
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    scope_purposes: Mapping[str, str] = field(default_factory=dict)  # scope → why Bastion needs it, shown before consent
    use_pkce: bool = True
    rotates_refresh_token: bool = False
    scope_separator: str = " "
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)
    client_auth: str = "client_secret_post"  # or client_secret_basic


@dataclass(frozen=True)
class RateLimitSpec:
    """The vendor's published budget for one account: a token bucket plus an optional daily quota."""

    per_second: float = 0.0  # sustained rate; 0 = no bucket
    burst: int = 1
    daily: int | None = None  # the quota's calls per day (Salesforce: 5,000 on the seed's example org)
    quota_window: str = "utc_day"  # "utc_day" (resets at 00:00 UTC) or "rolling_24h" (the last 24 hours, Salesforce)


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    is_secret: bool = True
    is_required: bool = True
    help_text: str = ""


@dataclass(frozen=True)
class EntitySpec:
    key: str
    name: str
    description: str = ""
    supports_incremental: bool = False
    bastion_type: BastionType = BastionType.OTHER

    def __post_init__(self) -> None:
        object.__setattr__(self, "bastion_type", _coerce(BastionType, self.bastion_type or "other", f"entity {self.key}"))


@dataclass(frozen=True)
class ActionSpec:
    key: str
    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=dict)
    idempotency: Idempotency = Idempotency.SEARCH
    # The vendor's limits and formats per payload field (applied by the playbook renderer after substitution).
    fields: Mapping[str, FieldShape] = field(default_factory=dict)
    # What the object this action creates is to the war room (None = nothing to track), and its name there ("Jira issue").
    tracks: TrackedKind | None = None
    tracks_label: str = ""
    # The war room's past tense for a finished item: "3 created", "Paged".
    verb: str = "done"
    # How undo() reverses this action, in words shown before an undo is confirmed ("" = cannot be undone).
    undo: str = ""
    # Why an undo leaves what this action did in place, in words ("E-mails cannot be unsent.").
    kept_on_undo: str = ""
    # The vendor permissions (scopes) this action needs, shown before consent and named when the vendor refuses one.
    permissions: tuple[str, ...] = ()
    # perform_bulk serves many payloads of this action in fewer round trips than one call each (a step marked bulk then
    # sends its items in chunks); Capability.BULK_ACTIONS says the same for every action of a connector.
    bulk: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "idempotency", _coerce(Idempotency, self.idempotency, f"action {self.key}"))
        if self.tracks is not None:
            object.__setattr__(self, "tracks", _coerce(TrackedKind, self.tracks, f"action {self.key}"))


@dataclass(frozen=True)
class ConnectorManifest:
    key: str
    name: str
    category: Category
    description: str
    logo: str = ""  # static path, e.g. "connectors/slack.svg"
    auth_methods: tuple[AuthMethod, ...] = (AuthMethod.API_KEY,)
    credential_fields: tuple[CredentialField, ...] = ()
    config_fields: tuple[CredentialField, ...] = ()
    oauth: OAuthSpec | None = None
    default_base_url: str = ""
    entities: tuple[EntitySpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    webhook: WebhookSpec | None = None  # None: the vendor sends no webhooks
    capabilities: tuple[Capability, ...] = ()
    docs_url: str = ""
    rate_limit: RateLimitSpec | None = None  # shared per integration in Redis (integrations/ratelimit.py)
    # Loaded only where the sandbox is configured (BASTION_SANDBOX_URL): stand-ins that are no vendor.
    sandbox_only: bool = False
    # Where this source's person data ranks in the default merge priority (lower wins); None: after every ranked source.
    person_rank: int | None = None
    # The playbook roles this connector can play (Role.CHAT: "the collaboration channel"); each needs ROLE_ACTIONS[role].
    roles: tuple[Role, ...] = ()

    def __post_init__(self) -> None:
        where = f"connector {self.key}"
        object.__setattr__(self, "category", _coerce(Category, self.category, where))
        object.__setattr__(self, "auth_methods", tuple(_coerce(AuthMethod, m, where) for m in self.auth_methods))
        object.__setattr__(self, "capabilities", tuple(_coerce(Capability, c, where) for c in self.capabilities))
        object.__setattr__(self, "roles", tuple(_coerce(Role, r, where) for r in self.roles))
        offered = {spec.key for spec in self.actions}
        for role in self.roles:
            missing = [action for action in ROLE_ACTIONS[role] if action not in offered]
            if missing:
                raise ValueError(f"{where}: plays the {role} role but has no {', '.join(missing)} action")

    @property
    def supports_webhooks(self) -> bool:
        return self.webhook is not None

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def undoable_actions(self) -> dict[str, str]:
        """Action key → how undo reverses it, for the actions this connector can undo."""
        if Capability.UNDO not in self.capabilities:
            return {}
        return {spec.key: spec.undo for spec in self.actions if spec.undo}

    def entity(self, key: str) -> EntitySpec:
        for spec in self.entities:
            if spec.key == key:
                return spec
        raise KeyError(f"{self.key} has no entity '{key}'")

    def action(self, key: str) -> ActionSpec:
        for spec in self.actions:
            if spec.key == key:
                return spec
        raise KeyError(f"{self.key} has no action '{key}'")


class BaseConnector:
    """Subclass per vendor. Instances get an HttpClient (auth, retries, limits) plus config and secrets."""

    manifest: ClassVar[ConnectorManifest]
    # Config fields holding a URL of another scheme than http(s) (LDAP's server_url); every other "*url" field is http(s) only.
    url_config_schemes: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # True when a run's next page can only continue on the connection that read the previous one (an LDAP paged-search
    # cookie): the sync engine then reads a run's pages in one worker process instead of one task per page.
    pages_bound_to_process: ClassVar[bool] = False

    # Hooks a connector overrides → the capability it must then declare (checked when the class is defined).
    _HOOK_CAPABILITIES: ClassVar[Mapping[str, Capability]] = {
        "undo": Capability.UNDO,
        "fetch_objects": Capability.FETCH_STATUS,
        "register_webhook": Capability.WEBHOOK_REGISTRATION,
        "config_choices": Capability.CONFIG_CHOICES,
        "disabled_rules_preview": Capability.DISABLED_RULES,
        "request_decision": Capability.DECISIONS,
        "browse_documents": Capability.DOCUMENTS,
        "read_document_values": Capability.DOCUMENT_VALUES,
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        manifest = cls.__dict__.get("manifest")
        if manifest is None:
            return
        for hook, capability in cls._HOOK_CAPABILITIES.items():
            overridden = getattr(cls, hook) is not getattr(BaseConnector, hook)
            if overridden != (capability in manifest.capabilities):
                state = "overrides" if overridden else "does not override"
                raise TypeError(f"{cls.__name__} {state} {hook}() but {'does not declare' if overridden else 'declares'} Capability.{capability.name}")

    def __init__(self, *, client: HttpClient | None = None, config: Mapping[str, Any] | None = None, credentials: Mapping[str, Any] | None = None):
        self.client = client
        self.config = dict(config or {})
        self.credentials = dict(credentials or {})
        if client is not None and client.classify_is_default:
            client.classify = type(self).classify_response
            client.classify_is_default = False

    @classmethod
    def supports(cls, capability: Capability) -> bool:
        return cls.manifest.supports(capability)

    # The vendor's HTTP answers
    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        """None for a success, else the shared error tree: read the vendor's error envelope and rate signals here."""
        return classify_generic(response, path)

    @classmethod
    def outbound_targets(cls, config: Mapping[str, Any]) -> list[OutboundTarget]:
        """Hosts this configuration connects to outside the HTTP client (SMTP, LDAP), checked when the config is saved.

        A connector that opens its own sockets declares them here and connects through integrations.ssrf.vet_outbound.
        """
        return []

    # Connection
    def test_connection(self) -> ConnectionTest:
        raise NotImplementedError

    def post_authorize(self, token: Mapping[str, Any]) -> dict[str, Any]:
        """After an OAuth code exchange, with the new token as auth: config updates the grant implies (e.g. Jira's cloudId).

        Raise an ApiError when the grant reaches nothing Bastion can use; the connection then fails with its message.
        """
        return {}

    def config_choices(self, name: str) -> list[tuple[str, str]]:
        """(value, label) pairs the vendor offers for config field `name` (Capability.CONFIG_CHOICES); [] when it lists none."""
        return []

    @classmethod
    def config_display(cls, name: str, value: Any) -> str:
        """A stored setting as the settings page shows it."""
        return str(value or "")

    @classmethod
    def rules_validate(cls, rules: Any) -> Any:
        """Check a directory's disabled-account rules when saved (Capability.DISABLED_RULES); raise ApiBadRequest naming the problem."""
        return rules

    def disabled_rules_preview(self, rules: Any) -> dict[str, Any]:
        """How many entries each disabled-account rule would exclude (Capability.DISABLED_RULES)."""
        raise NotImplementedError(f"{self.manifest.name} has no disabled-account rules")

    def request_decision(self, request: DecisionRequest, *, idempotency_key: str) -> str:
        """Send the buttons to the person (once per key); returns the vendor's id of the member they went to (Capability.DECISIONS)."""
        raise NotImplementedError(f"{self.manifest.name} cannot ask for decisions")

    @classmethod
    def parse_decision(cls, request: WebhookRequest) -> DecisionPress:
        """Read a verified button press; raise WebhookRejected(400) when the request is not one."""
        raise WebhookRejected(404, "decisions_unsupported", f"{cls.manifest.name} sends no button presses.")

    @classmethod
    def decision_reply(cls, text: str, *, replaces_request: bool) -> dict[str, Any]:
        """The body answering a press: shown to the presser, replacing the buttons when `replaces_request`."""
        return {"text": text}

    def browse_documents(self, folder: str = "", *, query: str = "") -> list[DocumentItem]:
        """The folders and files inside `folder` ("" = the top: sites, drives), or matching `query` (Capability.DOCUMENTS)."""
        raise NotImplementedError(f"{self.manifest.name} has no documents to browse")

    def read_document_values(self, document: str, names: list[str]) -> dict[str, Any]:
        """Named tables (→ list of row dicts) and ranges (→ list of rows) of a workbook, keyed by the name asked for."""
        raise NotImplementedError(f"{self.manifest.name} cannot read values from documents")

    def close(self) -> None:
        """Release what the connector holds outside the HTTP client (an LDAP connection); safe to call twice."""

    # Reading
    def discover_entities(self) -> list[EntitySpec]:
        return list(self.manifest.entities)

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        raise NotImplementedError

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """Return one page. `cursor` is the stored incremental position; `page` the in-run position."""
        raise NotImplementedError

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        return str(record["id"])

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        """The source's own modification time, used to drop stale webhook/poll races."""
        return None

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        return dict(record)

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return dict(data)

    # Acting
    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """Run one action. known_new: no earlier request ever used this idempotency key, so the marker search may be skipped."""
        raise NotImplementedError

    def perform_bulk(
        self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str], known_new: bool = False
    ) -> list[ActionResult | Exception]:
        """Default: one call per payload; vendors with bulk endpoints override (and declare BULK_ACTIONS)."""
        results: list[ActionResult | Exception] = []
        for payload, key in zip(payloads, idempotency_keys, strict=True):
            try:
                results.append(self.perform(action, payload, idempotency_key=key, known_new=known_new))
            except Exception as exc:  # noqa: BLE001 - returned per item, the caller records each
                results.append(exc)
        return results

    def undo(
        self, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
    ) -> ActionResult:
        """Reverse what `action` created (Capability.UNDO; ActionSpec.undo says how, in words)."""
        raise NotImplementedError(f"{self.manifest.name} cannot undo '{action}'")

    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
        """Tracked objects' current state, keyed by the id asked for (Capability.FETCH_STATUS). Gone ones: status "deleted"."""
        raise NotImplementedError(f"{self.manifest.name} cannot read '{kind}' objects back")

    @classmethod
    def tracked_state(cls, entity: str, record: Mapping[str, Any], *, config: Mapping[str, Any]) -> TrackedObject | None:
        """A tracked object's state from a webhook record of `entity` (STATUS_WEBHOOKS); None when the record says nothing."""
        return None

    def register_webhook(self, *, url: str, secret: str) -> dict[str, Any]:
        """Subscribe Bastion's endpoint at the vendor (Capability.WEBHOOK_REGISTRATION); returns config to store.

        A registration that expires returns "expires_at" (and "webhook_ids"); refresh_webhooks extends it.
        """
        raise NotImplementedError(f"{self.manifest.name} cannot register webhooks")

    def refresh_webhooks(self, webhook_ids: list[Any]) -> datetime:
        """Extend expiring registrations made by register_webhook; returns the new expiry."""
        raise NotImplementedError(f"{self.manifest.name} has no expiring webhook registrations")

    # Webhooks
    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """Raise WebhookRejected unless the request is authentic and fresh."""
        raise WebhookRejected(404, "webhooks_unsupported", f"{cls.manifest.name} does not send webhooks.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        raise WebhookRejected(404, "webhooks_unsupported", f"{cls.manifest.name} does not send webhooks.")

    @classmethod
    def webhook_account_id(cls, request: WebhookRequest) -> str:
        """The vendor account a delivery is for (WebhookSpec.routes_by_account), read before verification; "" if absent."""
        return ""
