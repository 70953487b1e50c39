"""HubSpot CRM v3 connector: deals, contacts, companies, owners; search-based incremental sync; notes, tasks and deal updates; v3 webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import (
    ActionResult,
    ActionSpec,
    BaseConnector,
    ConnectionTest,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldInfo,
    OAuthSpec,
    Page,
    RateLimitSpec,
    WebhookEvent,
    WebhookRequest,
    WebhookSpec,
)
from integrations.errors import ApiBadRequest, ApiError, ApiForbidden, ApiRateLimited, WebhookRejected
from integrations.http import BearerAuth

logger = logging.getLogger(__name__)

SEARCH_RESULT_CEILING = 10_000  # HubSpot search refuses to page past this many results for one query
SEARCH_PAGE_MAX = 200
LIST_PAGE_MAX = 100
BATCH_MAX = 100
SIGNATURE_MAX_AGE_MS = 5 * 60 * 1000
DEFAULT_MARKER_PROPERTY = "bastion_idempotency_key"

# HubSpot's default sales pipeline stage ids → Bastion deal stages (override per integration with config["stage_map"]).
DEFAULT_STAGE_MAP: dict[str, str] = {
    "appointmentscheduled": "qualifying",
    "qualifiedtobuy": "qualifying",
    "presentationscheduled": "proposal",
    "decisionmakerboughtin": "proposal",
    "contractsent": "negotiating",
    "closedwon": "won",
    "closedlost": "lost",
}
UNMAPPED_STAGE = "open"

OBJECT_PROPERTIES: dict[str, list[str]] = {
    "deals": ["dealname", "amount", "closedate", "dealstage", "pipeline", "hubspot_owner_id", "deal_currency_code", "createdate", "hs_lastmodifieddate"],
    "contacts": ["email", "firstname", "lastname", "jobtitle", "phone", "company", "department", "hubspot_owner_id", "createdate", "lastmodifieddate"],
    "companies": ["name", "domain", "industry", "annualrevenue", "createdate", "hs_lastmodifieddate"],
}
MODIFIED_PROPERTY = {"deals": "hs_lastmodifieddate", "companies": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}
# HubSpot-defined association type ids used when Bastion creates activities.
NOTE_TO = {"deals": 214, "contacts": 202}
TASK_TO = {"deals": 216, "contacts": 204}
WEBHOOK_OBJECTS = {"deal": "deals", "contact": "contacts", "company": "companies", "0-3": "deals", "0-1": "contacts", "0-2": "companies"}
# HubSpot signs the URI with these characters decoded (request-validation docs, v3).
URI_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
FIELD_TYPES = {
    "number": "number",
    "datetime": "datetime",
    "date": "date",
    "bool": "boolean",
    "enumeration": "string",
    "string": "string",
    "phone_number": "string",
}


def _ms(value: Any) -> int | None:
    """HubSpot datetimes arrive as ISO 8601 or ms epoch strings."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client secret, method + URI + raw body + timestamp)), as HubSpot computes X-HubSpot-Signature-v3."""
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _decoded_uri(uri: str) -> str:
    for encoded, char in URI_DECODE.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


class HubSpotConnector(BaseConnector):
    """Speaks HubSpot CRM v3 (v4 for associations) through the shared HttpClient."""

    manifest = ConnectorManifest(
        key="hubspot",
        name="HubSpot",
        category="crm",
        description="Deals, contacts, companies and owners from HubSpot CRM; updates deals and logs notes and tasks from playbooks.",
        logo="connectors/hubspot.svg",
        auth_methods=("oauth2", "api_key"),
        credential_fields=(
            CredentialField("access_token", "Private app access token", help_text="Settings → Integrations → Private apps; grant the scopes listed below."),
        ),
        config_fields=(
            CredentialField("stage_map", "Deal stage map (JSON)", is_secret=False, is_required=False, help_text='e.g. {"contractsent": "negotiating"}'),
            CredentialField("page_size", "Page size (≤100)", is_secret=False, is_required=False),
            CredentialField("idempotency_property", "Marker property on notes and tasks", is_secret=False, is_required=False),
            CredentialField("default_currency", "Currency when a deal has none", is_secret=False, is_required=False),
        ),
        oauth=OAuthSpec(
            authorize_url="https://app.hubspot.com/oauth/authorize",
            token_url="https://api.hubapi.com/oauth/v1/token",
            scopes=("crm.objects.deals.read", "crm.objects.deals.write", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.owners.read"),
            scope_purposes={
                "crm.objects.deals.read": "Read deals to fill M&A and sales scenarios (name, value, close date, stage, stakeholders).",
                "crm.objects.deals.write": "Update a deal's stage or properties when a playbook step asks for it.",
                "crm.objects.contacts.read": "Read contacts so a deal's associated contacts become its stakeholders.",
                "crm.objects.companies.read": "Show which company a deal is with.",
                "crm.objects.owners.read": "Resolve each deal's owner to an email address.",
            },
            use_pkce=False,
            rotates_refresh_token=False,
        ),
        default_base_url="https://api.hubapi.com",
        entities=(
            EntitySpec("deals", "Deals", "Deals with their associated contacts as stakeholders.", supports_incremental=True, bastion_type="deal"),
            EntitySpec("contacts", "Contacts", "CRM contacts.", supports_incremental=True, bastion_type="person"),
            EntitySpec("companies", "Companies", "CRM companies.", supports_incremental=True, bastion_type="other"),
            EntitySpec("owners", "Owners", "HubSpot users who own records.", supports_incremental=False, bastion_type="person"),
        ),
        actions=(
            ActionSpec(
                "update_deal",
                "Update a deal",
                "PATCH a deal's properties (idempotent by nature).",
                {"type": "object", "required": ["deal_id", "properties"], "properties": {"deal_id": {"type": "string"}, "properties": {"type": "object"}}},
                idempotency="natural",
            ),
            ActionSpec(
                "create_note",
                "Log a note",
                "Create a note on a deal and/or contact.",
                {
                    "type": "object",
                    "required": ["body"],
                    "properties": {"deal_id": {"type": "string"}, "contact_id": {"type": "string"}, "body": {"type": "string"}},
                },
            ),
            ActionSpec(
                "create_task",
                "Create a task",
                "Create a CRM task, optionally assigned to an owner and linked to a deal.",
                {
                    "type": "object",
                    "required": ["subject"],
                    "properties": {
                        "subject": {"type": "string"},
                        "body": {"type": "string"},
                        "owner_id": {"type": "string"},
                        "due": {"type": "string", "format": "date-time"},
                        "deal_id": {"type": "string"},
                    },
                },
            ),
        ),
        webhook=WebhookSpec(
            signature="X-HubSpot-Signature-v3 = base64(HMAC-SHA256(app client secret, method + URI + body + X-HubSpot-Request-Timestamp)); 5-minute window."
        ),
        capabilities=("read", "incremental", "field_discovery", "deletions", "actions", "webhooks"),
        docs_url="https://developers.hubspot.com/docs/api/crm/understanding-the-crm",
        rate_limit=RateLimitSpec(per_second=10.0, burst=100, daily=250_000),  # 100/10 s burst; daily per tier
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        token = self.credentials.get("access_token") or self.credentials.get("token")
        if self.client is not None and self.client.auth is None and token:
            # A private-app token is stored as an API key; OAuth tokens already arrive as the client's BearerAuth.
            self.client.auth = BearerAuth(token)
        self._owner_emails: dict[str, str] | None = None
        self._portal_id = ""
        self.last_rate_limit: dict[str, int] = {}
        if self.client is not None and not getattr(self.client.session, "_bastion_hubspot_hook", False):
            self.client.session.hooks.setdefault("response", []).append(self._observe_headers)
            self.client.session._bastion_hubspot_hook = True  # type: ignore[attr-defined]

    # ------------------------------------------------------------ plumbing

    def _observe_headers(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """Keep HubSpot's daily and burst budget from every response (errors included) for the rate limiter."""
        for header, key in (
            ("X-HubSpot-RateLimit-Daily", "daily_limit"),
            ("X-HubSpot-RateLimit-Daily-Remaining", "daily_remaining"),
            ("X-HubSpot-RateLimit-Max", "interval_max"),
            ("X-HubSpot-RateLimit-Remaining", "interval_remaining"),
        ):
            value = response.headers.get(header)
            if value and value.isdigit():
                self.last_rate_limit[key] = int(value)

    @property
    def page_size(self) -> int:
        return max(1, min(int(self.config.get("page_size") or LIST_PAGE_MAX), LIST_PAGE_MAX))

    @property
    def stage_map(self) -> dict[str, str]:
        configured = self.config.get("stage_map") or {}
        if isinstance(configured, str):
            configured = json.loads(configured or "{}")
        return {**DEFAULT_STAGE_MAP, **{str(k).lower(): v for k, v in configured.items()}}

    @property
    def marker_property(self) -> str:
        return str(self.config.get("idempotency_property") or DEFAULT_MARKER_PROPERTY)

    def _properties(self, entity: str) -> list[str]:
        extra = (self.config.get("extra_properties") or {}).get(entity, [])
        return list(dict.fromkeys(OBJECT_PROPERTIES[entity] + list(extra)))

    # ------------------------------------------------------------ connection

    def test_connection(self) -> ConnectionTest:
        details = self.client.get("/account-info/v3/details").json()
        portal_id = str(details.get("portalId", ""))
        self._portal_id = portal_id
        scopes: list[str] = []
        identity = f"HubSpot portal {portal_id}"
        token = self.credentials.get("access_token")
        if token and self.credentials.get("refresh_token"):
            # OAuth tokens can be introspected for their granted scopes; private-app tokens cannot.
            info = self.client.get(f"/oauth/v1/access-tokens/{token}").json()
            scopes = list(info.get("scopes") or [])
            identity = f"{info.get('user', '')} @ {info.get('hub_domain', portal_id)}".strip()
        return ConnectionTest(
            ok=bool(portal_id),
            identity=identity,
            scopes=scopes,
            account_id=portal_id,
            detail={k: details.get(k) for k in ("timeZone", "companyCurrency", "dataHostingLocation", "uiDomain", "accountType")},
        )

    # ------------------------------------------------------------ discovery

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        if entity == "owners":
            return [
                FieldInfo("id", "Owner id", path="$.id", is_required=True),
                FieldInfo("email", "Email", "email", "$.email"),
                FieldInfo("firstName", "First name", path="$.firstName"),
                FieldInfo("lastName", "Last name", path="$.lastName"),
                FieldInfo("teams", "Teams", "array", "$.teams[*].name"),
            ]
        self.manifest.entity(entity)
        definitions = self.client.get(f"/crm/v3/properties/{entity}").json().get("results", [])
        return [
            FieldInfo(
                name=d["name"],
                label=d.get("label") or d["name"],
                type=FIELD_TYPES.get(d.get("type", "string"), "string"),
                path=f"$.properties.{d['name']}",
                is_custom=not d.get("hubspotDefined", False),
            )
            for d in definitions
            if not d.get("hidden")
        ]

    # ------------------------------------------------------------ reading

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        return str(record["id"])

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        if entity == "owners":
            return record.get("updatedAt")
        return (record.get("properties") or {}).get(MODIFIED_PROPERTY[entity]) or record.get("updatedAt")

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """Full scans list objects by id; incremental runs search by modified date, then list archived objects for deletions."""
        self.manifest.entity(entity)
        if entity == "owners":
            return self._read_owners(page)
        position = dict(page) if page else ({"mode": "search", "since": _ms(cursor), "from": _ms(cursor)} if cursor else {"mode": "list"})
        if position["mode"] == "list":
            return self._read_list(entity, position)
        if position["mode"] == "search":
            return self._read_search(entity, position)
        return self._read_archived(entity, position)

    def _read_owners(self, page: Any) -> Page:
        params: dict[str, Any] = {"limit": self.page_size, "archived": "false"}
        if page:
            params["after"] = page
        body = self.client.get("/crm/v3/owners", params=params).json()
        return Page(records=body.get("results", []), next_page=((body.get("paging") or {}).get("next") or {}).get("after"), is_full_scan=True)

    def _read_list(self, entity: str, position: dict[str, Any]) -> Page:
        params: dict[str, Any] = {"limit": self.page_size, "properties": ",".join(self._properties(entity)), "archived": "false"}
        if position.get("after"):
            params["after"] = position["after"]
        body = self.client.get(f"/crm/v3/objects/{entity}", params=params).json()
        records = self._enrich(entity, body.get("results", []))
        max_seen = max([position.get("max_seen") or 0] + [_ms(self.updated_at(entity, r)) or 0 for r in records])
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if after:
            return Page(records=records, next_page={"mode": "list", "after": after, "max_seen": max_seen}, is_full_scan=True)
        # Listing is ordered by id, not date: the cursor moves only once the whole scan is stored.
        return Page(records=records, next_page=None, cursor=_iso(max_seen) if max_seen else None, is_full_scan=True)

    def _read_search(self, entity: str, position: dict[str, Any]) -> Page:
        modified = MODIFIED_PROPERTY[entity]
        since = position.get("since")
        body: dict[str, Any] = {
            "filterGroups": [{"filters": [{"propertyName": modified, "operator": "GTE", "value": str(since)}]}] if since is not None else [],
            "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
            "properties": self._properties(entity),
            "limit": min(SEARCH_PAGE_MAX, max(self.page_size, 1)),
        }
        if position.get("after"):
            body["after"] = position["after"]
        result = self.client.post(f"/crm/v3/objects/{entity}/search", json=body).json()
        records = self._enrich(entity, result.get("results", []))
        # Results are in modified order and the filter is GTE, so each stored page may advance the cursor.
        last_ms = max([_ms(self.updated_at(entity, r)) or 0 for r in records], default=0)
        cursor = _iso(last_ms) if last_ms else None
        after = ((result.get("paging") or {}).get("next") or {}).get("after")
        ceiling = int(self.config.get("search_result_ceiling") or SEARCH_RESULT_CEILING)
        if after and int(after) >= ceiling:
            # HubSpot will not page past the ceiling: restart the search from the last modified date seen.
            restart = last_ms if last_ms and last_ms != since else (since or 0) + 1
            if restart == (since or 0) + 1:
                logger.warning("hubspot.search.ceiling_same_timestamp", extra={"entity": entity, "since": since})
            next_page: dict[str, Any] = {**position, "since": restart, "after": None}
        elif after:
            next_page = {**position, "after": after}
        else:
            next_page = {"mode": "archived", "from": position.get("from"), "after": None}
        return Page(records=records, next_page=next_page, cursor=cursor, is_full_scan=False)

    def _read_archived(self, entity: str, position: dict[str, Any]) -> Page:
        params: dict[str, Any] = {"limit": self.page_size, "archived": "true", "properties": MODIFIED_PROPERTY[entity]}
        if position.get("after"):
            params["after"] = position["after"]
        body = self.client.get(f"/crm/v3/objects/{entity}", params=params).json()
        since = position.get("from") or 0
        deleted = [str(r["id"]) for r in body.get("results", []) if (_ms(r.get("archivedAt")) or 0) >= since]
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        return Page(records=[], next_page={**position, "after": after} if after else None, is_full_scan=False, deleted_ids=deleted)

    def _enrich(self, entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Deals carry their associated contacts (as HubSpot's `associations` block) and, under `_bastion`, the emails Bastion needs."""
        if entity != "deals" or not records:
            return records
        deal_ids = [str(r["id"]) for r in records]
        contacts_by_deal: dict[str, list[str]] = {}
        for chunk in _chunks(deal_ids, BATCH_MAX):
            response = self.client.post("/crm/v4/associations/deals/contacts/batch/read", json={"inputs": [{"id": i} for i in chunk]})
            for row in response.json().get("results", []):
                contacts_by_deal[str(row["from"]["id"])] = [str(t["toObjectId"]) for t in row.get("to", [])]
        emails = self._contact_emails(sorted({c for ids in contacts_by_deal.values() for c in ids}, key=lambda v: int(v) if v.isdigit() else 0))
        owners = self._owners()
        for record in records:
            contact_ids = contacts_by_deal.get(str(record["id"]), [])
            record["associations"] = {"contacts": {"results": [{"id": c, "type": "deal_to_contact"} for c in contact_ids]}}
            owner_id = str((record.get("properties") or {}).get("hubspot_owner_id") or "")
            record["_bastion"] = {
                "stakeholder_emails": [emails[c] for c in contact_ids if emails.get(c)],
                "owner_email": owners.get(owner_id, ""),
            }
        return records

    def _contact_emails(self, contact_ids: list[str]) -> dict[str, str]:
        emails: dict[str, str] = {}
        for chunk in _chunks(contact_ids, BATCH_MAX):
            response = self.client.post("/crm/v3/objects/contacts/batch/read", json={"properties": ["email"], "inputs": [{"id": i} for i in chunk]})
            for row in response.json().get("results", []):
                emails[str(row["id"])] = ((row.get("properties") or {}).get("email") or "").strip()
        return emails

    def _owners(self) -> dict[str, str]:
        if self._owner_emails is None:
            owners: dict[str, str] = {}
            try:
                for items, _response in self.client.paginate_cursor(
                    "/crm/v3/owners",
                    items_key="results",
                    cursor_param="after",
                    params={"limit": 100},
                    next_cursor=lambda b: ((b.get("paging") or {}).get("next") or {}).get("after"),
                ):
                    owners.update({str(o["id"]): o.get("email") or "" for o in items})
            except ApiForbidden as error:
                # Without crm.objects.owners.read deals still import, just without owner emails.
                logger.warning("hubspot.owners.forbidden", extra={"error": str(error)})
            self._owner_emails = owners
        return self._owner_emails

    # ------------------------------------------------------------ transformers

    def map_stage(self, stage: str | None) -> str:
        return self.stage_map.get((stage or "").lower(), UNMAPPED_STAGE)

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "owners":
            given, family = record.get("firstName") or "", record.get("lastName") or ""
            return {
                "external_id": str(record["id"]),
                "email": (record.get("email") or "").strip(),
                "name": f"{given} {family}".strip(),
                "given_name": given,
                "family_name": family,
                "title": "",
                "department": "",
                "phone": "",
                "manager_external_id": "",
                "groups": [t.get("name", "") for t in record.get("teams") or [] if t.get("name")],
                "is_active": not record.get("archived", False),
                "username": (record.get("email") or "").strip(),
            }
        props = record.get("properties") or {}
        if entity == "contacts":
            given, family = props.get("firstname") or "", props.get("lastname") or ""
            return {
                "external_id": str(record["id"]),
                "email": (props.get("email") or "").strip(),
                "name": f"{given} {family}".strip(),
                "given_name": given,
                "family_name": family,
                "title": props.get("jobtitle") or "",
                "department": props.get("department") or "",
                "phone": props.get("phone") or "",
                "manager_external_id": "",
                "groups": [],
                "is_active": not record.get("archived", False),
                "username": "",
            }
        if entity == "deals":
            extra = record.get("_bastion") or {}
            amount = props.get("amount")
            return {
                "external_id": str(record["id"]),
                "dealName": props.get("dealname") or "",
                "value": float(amount) if amount not in (None, "") else None,
                "currency": props.get("deal_currency_code") or self.config.get("default_currency") or "USD",
                "closeDate": (props.get("closedate") or "")[:10],
                "stage": self.map_stage(props.get("dealstage")),
                "owner_email": extra.get("owner_email", ""),
                "stakeholders": list(extra.get("stakeholder_emails", [])),
            }
        if entity == "companies":
            return {
                "external_id": str(record["id"]),
                "name": props.get("name") or "",
                "domain": props.get("domain") or "",
                "industry": props.get("industry") or "",
            }
        raise KeyError(f"hubspot has no entity '{entity}'")

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Bastion shape → HubSpot `properties` (only the keys given)."""
        if entity == "deals":
            properties: dict[str, Any] = {}
            if "dealName" in data:
                properties["dealname"] = data["dealName"]
            if "value" in data:
                properties["amount"] = "" if data["value"] is None else str(data["value"])
            if "closeDate" in data:
                properties["closedate"] = data["closeDate"]  # HubSpot accepts YYYY-MM-DD for date-valued datetime properties
            if "currency" in data:
                properties["deal_currency_code"] = data["currency"]
            if "stage" in data:
                reverse = {bastion: vendor for vendor, bastion in reversed(list(self.stage_map.items()))}
                if data["stage"] not in reverse:
                    raise ApiBadRequest(f"No HubSpot deal stage is mapped to Bastion stage '{data['stage']}'.")
                properties["dealstage"] = reverse[data["stage"]]
            return properties
        if entity == "contacts":
            mapping = {
                "email": "email",
                "given_name": "firstname",
                "family_name": "lastname",
                "title": "jobtitle",
                "phone": "phone",
                "department": "department",
            }
            return {vendor: data[key] for key, vendor in mapping.items() if key in data}
        raise KeyError(f"hubspot cannot write entity '{entity}'")

    # ------------------------------------------------------------ actions

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
        self.manifest.action(action)
        if action == "update_deal":
            return self._update_deal(payload)
        if action == "create_note":
            return self._create_note(payload, idempotency_key)
        return self._create_task(payload, idempotency_key)

    def _record_url(self, object_type_id: str, object_id: str) -> str:
        portal = self.config.get("portal_id") or self._portal_id
        return f"https://app.hubspot.com/contacts/{portal}/record/{object_type_id}/{object_id}" if portal else ""

    def _update_deal(self, payload: Mapping[str, Any]) -> ActionResult:
        deal_id = str(payload.get("deal_id") or "")
        properties = payload.get("properties")
        if not deal_id or not isinstance(properties, Mapping) or not properties:
            raise ApiBadRequest("update_deal needs deal_id and a non-empty properties object.")
        record = self.client.patch(f"/crm/v3/objects/deals/{deal_id}", json={"properties": dict(properties)}).json()
        return ActionResult(external_id=deal_id, url=self._record_url("0-3", deal_id), data=record, created=False)

    def _create_note(self, payload: Mapping[str, Any], key: str) -> ActionResult:
        body = str(payload.get("body") or "")
        if not body:
            raise ApiBadRequest("create_note needs a body.")
        anchors = [(t, str(payload[f])) for t, f in (("deals", "deal_id"), ("contacts", "contact_id")) if payload.get(f)]
        properties = {"hs_note_body": body, "hs_timestamp": _iso(int(time.time() * 1000))}
        associations = [{"to": {"id": i}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO[t]}]} for t, i in anchors]
        return self._create_once("notes", "0-46", properties, associations, key, anchors[0] if anchors else None)

    def _create_task(self, payload: Mapping[str, Any], key: str) -> ActionResult:
        subject = str(payload.get("subject") or "")
        if not subject:
            raise ApiBadRequest("create_task needs a subject.")
        due = payload.get("due")
        due_ms = _ms(due) if due else int(time.time() * 1000)
        if due_ms is None:
            raise ApiBadRequest(f"create_task: due {due!r} is not an ISO 8601 date-time.")
        properties: dict[str, Any] = {
            "hs_task_subject": subject,
            "hs_task_body": str(payload.get("body") or ""),
            "hs_task_status": "NOT_STARTED",
            "hs_timestamp": _iso(due_ms),
        }
        if payload.get("owner_id"):
            properties["hubspot_owner_id"] = str(payload["owner_id"])
        anchor = ("deals", str(payload["deal_id"])) if payload.get("deal_id") else None
        associations = (
            [{"to": {"id": anchor[1]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TASK_TO["deals"]}]}] if anchor else []
        )
        return self._create_once("tasks", "0-27", properties, associations, key, anchor)

    def _create_once(
        self, object_type: str, type_id: str, properties: dict[str, Any], associations: list[dict], key: str, anchor: tuple[str, str] | None
    ) -> ActionResult:
        """Search for the marker, create only when absent; after an ambiguous failure look again before re-posting."""
        if not key:
            raise ApiBadRequest("An idempotency key is required.")
        existing = self._find_by_marker(object_type, key, anchor)
        if existing:
            return ActionResult(external_id=existing, url=self._record_url(type_id, existing), created=False)
        properties = {**properties, self.marker_property: key}
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                # retry=False: a blind client retry of a POST whose answer was lost would create a duplicate.
                created = self.client.post(f"/crm/v3/objects/{object_type}", json={"properties": properties, "associations": associations}, retry=False).json()
                return ActionResult(external_id=str(created["id"]), url=self._record_url(type_id, str(created["id"])), data=created, created=True)
            except ApiError as error:
                if not error.retryable or attempt == attempts:
                    raise
                logger.info("hubspot.create.retry", extra={"object_type": object_type, "attempt": attempt, "error": type(error).__name__})
                wait = error.retry_after if isinstance(error, ApiRateLimited) else self.client.backoff(attempt)
                if wait > self.client.max_inline_wait:
                    raise
                self.client.sleep(wait)
                existing = self._find_by_marker(object_type, key, anchor)
                if existing:
                    return ActionResult(external_id=existing, url=self._record_url(type_id, existing), created=False)
        raise AssertionError("unreachable")

    def _find_by_marker(self, object_type: str, key: str, anchor: tuple[str, str] | None) -> str | None:
        """Through the anchor's associations (read-after-write consistent) when there is one, else the search index."""
        marker = self.marker_property
        if anchor:
            from_type, from_id = anchor
            ids: list[str] = []
            for items, _response in self.client.paginate_cursor(
                f"/crm/v4/objects/{from_type}/{from_id}/associations/{object_type}",
                items_key="results",
                cursor_param="after",
                params={"limit": 500},
                next_cursor=lambda b: ((b.get("paging") or {}).get("next") or {}).get("after"),
            ):
                ids.extend(str(i["toObjectId"]) for i in items)
            for chunk in _chunks(ids, BATCH_MAX):
                rows = self.client.post(f"/crm/v3/objects/{object_type}/batch/read", json={"properties": [marker], "inputs": [{"id": i} for i in chunk]}).json()
                for row in rows.get("results", []):
                    if (row.get("properties") or {}).get(marker) == key:
                        return str(row["id"])
            return None
        body = {"filterGroups": [{"filters": [{"propertyName": marker, "operator": "EQ", "value": key}]}], "properties": [marker], "limit": 1}
        results = self.client.post(f"/crm/v3/objects/{object_type}/search", json=body).json().get("results", [])
        return str(results[0]["id"]) if results else None

    # ------------------------------------------------------------ webhooks

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        signature = request.header("X-HubSpot-Signature-v3")
        timestamp = request.header("X-HubSpot-Request-Timestamp")
        if not signature or not timestamp:
            raise WebhookRejected(400, "missing_signature", "X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required.")
        if not timestamp.isdigit():
            raise WebhookRejected(400, "bad_timestamp", "X-HubSpot-Request-Timestamp must be milliseconds since the epoch.")
        # Behind a proxy the URL HubSpot signed may differ from the one we see: config["webhook_url"] names it.
        uris = [_decoded_uri(u) for u in dict.fromkeys([request.url, (config or {}).get("webhook_url") or request.url])]
        candidates = [sign_v3(secret, request.method, uri, request.body, timestamp) for uri in uris]
        if not any(hmac.compare_digest(c.encode(), signature.strip().encode()) for c in candidates):
            raise WebhookRejected(401, "bad_signature", "The HubSpot v3 signature does not match.")
        age = request.received_at.timestamp() * 1000 - int(timestamp)
        if abs(age) > SIGNATURE_MAX_AGE_MS:
            raise WebhookRejected(409, "stale_timestamp", "The HubSpot request timestamp is more than 5 minutes away from now.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            events = json.loads(request.body or b"null")
        except ValueError as exc:
            raise WebhookRejected(400, "invalid_json", "The HubSpot webhook body is not JSON.") from exc
        if not isinstance(events, list):
            raise WebhookRejected(400, "invalid_payload", "HubSpot webhook bodies are JSON arrays of events.")
        parsed: list[WebhookEvent] = []
        for event in events:
            if not isinstance(event, dict) or "subscriptionType" not in event or "objectId" not in event or "eventId" not in event:
                raise WebhookRejected(400, "invalid_event", "Each HubSpot event needs eventId, subscriptionType and objectId.")
            subscription = str(event["subscriptionType"])
            object_name, _, change = subscription.partition(".")
            if object_name == "object":
                object_name = str(event.get("objectTypeId", ""))
            entity = WEBHOOK_OBJECTS.get(object_name)
            if entity is None:
                logger.info("hubspot.webhook.ignored", extra={"subscription_type": subscription})
                continue
            action = "delete" if change == "deletion" else "sync"
            occurred = event.get("occurredAt")
            parsed.append(
                WebhookEvent(
                    delivery_id=str(event["eventId"]),
                    event_type=subscription,
                    entity=entity,
                    external_id=str(event["objectId"]),
                    action=action,
                    record=None,
                    occurred_at=datetime.fromtimestamp(int(occurred) / 1000, tz=UTC) if occurred else None,
                )
            )
            for merged in event.get("mergedObjectIds") or []:
                if str(merged) != str(event.get("primaryObjectId", event["objectId"])):
                    parsed.append(
                        WebhookEvent(
                            delivery_id=f"{event['eventId']}:{merged}", event_type=subscription, entity=entity, external_id=str(merged), action="delete"
                        )
                    )
        return parsed


CONNECTOR = HubSpotConnector
