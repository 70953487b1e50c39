"""What connectors return and receive: pages of records, action results, tracked objects, documents, decisions, webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.url_safety import safe_http_url


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
class TrackedObject:
    """What the war room shows of an object an action created or fetch_objects read back, in the vendor's own terms."""

    title: str = ""
    owner: str = ""  # e-mail of who owns it, when the vendor says
    status: str = "open"  # the vendor's status name, shown as is
    is_done: bool = False  # the connector decides what done means for its vendor
    url: str = ""
    key: str = ""  # the human key (PROJ-12), when the vendor has one
    details: dict[str, Any] = field(default_factory=dict)  # e.g. a meeting's attendees and their responses

    def __post_init__(self) -> None:
        self.url = safe_http_url(self.url)


@dataclass
class ActionResult:
    external_id: str
    url: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    created: bool = True  # False when an existing object was found and reused
    tracked: TrackedObject | None = None  # set by actions whose ActionSpec.tracks says what they create
    # In the war room's words: what the link to the object reads ("#inc-42", "PROJ-12", "Briefing posted") and, for
    # actions whose outcome is a count, the phrase ("5 invited, 1 not found"). Empty: the war room uses ActionSpec.verb.
    link_text: str = ""
    summary: str = ""

    def __post_init__(self) -> None:
        # The vendor's link to what it created is stored and rendered as an href: http(s) only, anything else dropped.
        self.url = safe_http_url(self.url)


@dataclass
class DocumentItem:
    """A folder or file as the forms' file picker shows it (Capability.DOCUMENTS)."""

    id: str  # opaque to Bastion: the connector's own reference (e.g. drive id and item id), passed back unchanged
    name: str
    is_folder: bool = False
    path: str = ""  # human breadcrumb of the parent, e.g. "Legal / Templates"
    url: str = ""
    modified_at: str = ""
    mime_type: str = ""

    def __post_init__(self) -> None:
        self.url = safe_http_url(self.url)


@dataclass(frozen=True)
class DecisionChoice:
    decision: str  # what Bastion records: approve | reject | done
    label: str
    style: str = ""  # primary | danger | "" (how the vendor emphasises the button)


@dataclass(frozen=True)
class DecisionRequest:
    """A decision asked of one person in their chat tool, with a button per choice (Capability.DECISIONS)."""

    email: str
    title: str
    text: str
    link: str  # the same decision in Bastion's pages
    choices: tuple[DecisionChoice, ...]
    reference: str  # opaque: comes back with the press (Bastion's participant id)


@dataclass(frozen=True)
class DecisionPress:
    """A verified button press: who pressed (the vendor's member id), which choice, for which request."""

    member_id: str
    decision: str
    reference: str


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
    action: str = "upsert"  # upsert | delete | sync | status | renew (refresh the webhook registration now)
    record: dict[str, Any] | None = None
    occurred_at: datetime | None = None
    challenge_response: dict[str, Any] | None = None  # for URL-verification handshakes answered in JSON
    challenge_text: str | None = None  # for handshakes answered as text/plain (Microsoft Graph's validationToken echo)
    challenge_headers: dict[str, str] | None = None  # X- headers a handshake answer carries (Asana echoes X-Hook-Secret)
