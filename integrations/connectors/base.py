"""The connector SDK: a connector is plain Python that knows one vendor's API and no database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from common.url_safety import safe_http_url
from integrations.errors import WebhookRejected

if TYPE_CHECKING:
    from integrations.http import HttpClient
    from integrations.ssrf import OutboundTarget


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
    bastion_type: str = ""  # person | channel | deal | incident | project | task | event | group | other


@dataclass(frozen=True)
class ActionSpec:
    key: str
    name: str
    description: str = ""
    input_schema: Mapping[str, Any] = field(default_factory=dict)
    # vendor (an idempotency key) | search (find by marker before creating) | natural (repeating is harmless) |
    # none (the vendor cannot deduplicate, e.g. SMTP: Bastion never repeats an attempt whose outcome it did not see)
    idempotency: str = "search"


@dataclass(frozen=True)
class ConnectorManifest:
    key: str
    name: str
    category: str  # collaboration | ticketing | calendar | incident | directory | crm | messaging | files
    description: str
    logo: str = ""  # static path, e.g. "connectors/slack.svg"
    auth_methods: tuple[str, ...] = ("api_key",)  # oauth2 | api_key | basic | service_account | ldap_bind | none
    credential_fields: tuple[CredentialField, ...] = ()
    config_fields: tuple[CredentialField, ...] = ()
    oauth: OAuthSpec | None = None
    default_base_url: str = ""
    entities: tuple[EntitySpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    supports_webhooks: bool = False
    webhook_signature: str = ""  # human description of the scheme
    # The vendor signs webhooks with this field of the connection's credential (Twilio: auth_token), not a secret Bastion generates.
    webhook_key_field: str = ""
    # Under an OAuth 2.0 connection the vendor signs deliveries as a JWT with the OAuth app's client secret (Jira dynamic webhooks).
    webhook_oauth_jwt: bool = False
    capabilities: tuple[str, ...] = ()
    docs_url: str = ""
    rate_limit: RateLimitSpec | None = None  # shared per integration in Redis (integrations/ratelimit.py)

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


@dataclass
class FieldInfo:
    name: str
    label: str
    type: str = "string"  # string | number | boolean | date | datetime | email | user | array | object
    path: str = ""  # JSONPath in the raw record, e.g. "$.profile.email"
    is_required: bool = False
    is_custom: bool = False


@dataclass
class ConnectionTest:
    ok: bool
    identity: str = ""
    scopes: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    account_id: str = ""  # vendor account id for webhook routing (team_id, cloudId, portalId…)


@dataclass
class Page:
    """One page of an entity read."""

    records: list[dict[str, Any]]
    next_page: Any = None  # opaque position of the next page within this run; None means last page
    cursor: Any = None  # incremental cursor to persist once this page is stored (None: unchanged)
    is_full_scan: bool = True  # a complete scan of the entity (deletion detection allowed when finished)
    deleted_ids: list[str] = field(default_factory=list)  # explicit deletions reported by the vendor
    # Ids of every record in scope now (a cheap id-only scan at the end of an incremental run): stored ones outside it are deleted.
    present_ids: list[str] | None = None


@dataclass
class ActionResult:
    external_id: str
    url: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    created: bool = True  # False when an existing object was found and reused

    def __post_init__(self) -> None:
        # The vendor's link to what it created is stored and rendered as an href: http(s) only, anything else dropped.
        self.url = safe_http_url(self.url)


@dataclass
class WebhookRequest:
    method: str
    url: str
    headers: Mapping[str, str]  # case-insensitive mapping expected
    body: bytes
    received_at: datetime

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class WebhookEvent:
    delivery_id: str
    event_type: str
    entity: str = ""
    external_id: str = ""
    action: str = "upsert"  # upsert | delete | sync | status
    record: dict[str, Any] | None = None
    occurred_at: datetime | None = None
    challenge_response: dict[str, Any] | None = None  # for URL-verification handshakes


class BaseConnector:
    """Subclass per vendor. Instances get an HttpClient (auth, retries, limits) plus config and secrets."""

    manifest: ClassVar[ConnectorManifest]
    # Config fields holding a URL of another scheme than http(s) (LDAP's server_url); every other "*url" field is http(s) only.
    url_config_schemes: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    # True when a run's next page can only continue on the connection that read the previous one (an LDAP paged-search
    # cookie): the sync engine then reads a run's pages in one worker process instead of one task per page.
    pages_bound_to_process: ClassVar[bool] = False

    def __init__(self, *, client: HttpClient | None = None, config: Mapping[str, Any] | None = None, credentials: Mapping[str, Any] | None = None):
        self.client = client
        self.config = dict(config or {})
        self.credentials = dict(credentials or {})

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
    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
        raise NotImplementedError

    def perform_bulk(self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str]) -> list[ActionResult | Exception]:
        """Default: one call per payload; vendors with bulk endpoints override."""
        results: list[ActionResult | Exception] = []
        for payload, key in zip(payloads, idempotency_keys, strict=True):
            try:
                results.append(self.perform(action, payload, idempotency_key=key))
            except Exception as exc:  # noqa: BLE001 - returned per item, the caller records each
                results.append(exc)
        return results

    # Webhooks
    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """Raise WebhookRejected unless the request is authentic and fresh."""
        raise WebhookRejected(404, "webhooks_unsupported", f"{cls.manifest.name} does not send webhooks.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        raise WebhookRejected(404, "webhooks_unsupported", f"{cls.manifest.name} does not send webhooks.")
