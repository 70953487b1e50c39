"""Salesforce REST connector: SOQL reads with nextRecordsUrl paging, describe-based field discovery, SystemModstamp incremental sync with
queryAll deletions, idempotent sObject create/update, and the org's daily API usage from Sforce-Limit-Info.

API base: the OAuth token response's `instance_url` (stored in the credential as credentials["instance_url"]) always wins; without it the
HttpClient's base URL (integration.base_url, e.g. the sandbox's /salesforce prefix) is the instance. Every call is made with an absolute URL
built from that base, so `services.build_connector` needs no Salesforce-specific wiring. Whoever refreshes the token must store the
instance_url of every token response (it can change when an org is migrated).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

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
)
from integrations.errors import ApiBadRequest, ApiError, ApiRateLimited
from integrations.http import BearerAuth

logger = logging.getLogger(__name__)

DEFAULT_API_VERSION = "60.0"
DEFAULT_BATCH_SIZE = 2000
DEFAULT_MARKER_FIELD = "Bastion_Key__c"
SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")

SOBJECTS = {"opportunities": "Opportunity", "contacts": "Contact", "users": "User", "accounts": "Account"}
ENTITY_FIELDS: dict[str, list[str]] = {
    "opportunities": [
        "Id",
        "Name",
        "Amount",
        "CloseDate",
        "StageName",
        "OwnerId",
        "Owner.Email",
        "AccountId",
        "Account.Name",
        "Probability",
        "IsClosed",
        "IsWon",
        "SystemModstamp",
    ],
    "contacts": ["Id", "FirstName", "LastName", "Name", "Email", "Title", "Department", "Phone", "ReportsToId", "AccountId", "SystemModstamp"],
    "users": ["Id", "Username", "FirstName", "LastName", "Name", "Email", "Title", "Department", "Phone", "ManagerId", "IsActive", "SystemModstamp"],
    "accounts": ["Id", "Name", "Industry", "Website", "SystemModstamp"],
}
# Salesforce's standard opportunity stages → Bastion deal stages (config["stage_map"] overrides or extends).
DEFAULT_STAGE_MAP: dict[str, str] = {
    "prospecting": "qualifying",
    "qualification": "qualifying",
    "needs analysis": "qualifying",
    "value proposition": "proposal",
    "id. decision makers": "proposal",
    "perception analysis": "proposal",
    "proposal/price quote": "proposal",
    "negotiation/review": "negotiating",
    "closed won": "won",
    "closed lost": "lost",
}
# Bastion stage → the StageName written back (first standard stage of each Bastion stage).
DEFAULT_REVERSE_STAGE: dict[str, str] = {
    "qualifying": "Qualification",
    "proposal": "Proposal/Price Quote",
    "negotiating": "Negotiation/Review",
    "won": "Closed Won",
    "lost": "Closed Lost",
}
UNMAPPED_STAGE = "open"
FIELD_TYPES = {
    "currency": "number",
    "double": "number",
    "percent": "number",
    "int": "number",
    "date": "date",
    "datetime": "datetime",
    "boolean": "boolean",
    "email": "email",
    "reference": "string",
    "multipicklist": "array",
}


@dataclass(frozen=True)
class ApiUsage:
    """The org's daily API requests, as the last Sforce-Limit-Info header reported them."""

    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """Parse `Sforce-Limit-Info: api-usage=used/limit` (other parts such as api-bursts are ignored)."""
    match = LIMIT_INFO.search(header or "")
    return ApiUsage(int(match.group(1)), int(match.group(2))) if match else None


def soql_string(value: str) -> str:
    """A quoted SOQL string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def soql_datetime(value: str) -> str:
    """A SOQL datetime literal (unquoted, UTC, whole seconds) from any ISO 8601 / Salesforce timestamp."""
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", str(value).replace("Z", "+00:00"))
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_emails(value: str | None) -> list[str]:
    """Team__c holds emails separated by semicolons, commas or new lines."""
    seen: list[str] = []
    for part in re.split(r"[;,\n]", value or ""):
        email = part.strip()
        if email and email.lower() not in (s.lower() for s in seen):
            seen.append(email)
    return seen


class SalesforceConnector(BaseConnector):
    """Speaks the Salesforce REST API against the org's instance URL."""

    manifest = ConnectorManifest(
        key="salesforce",
        name="Salesforce",
        category="crm",
        description="Opportunities (with their deal team), contacts, users and accounts from Salesforce; creates and updates records from playbooks.",
        logo="connectors/salesforce.svg",
        auth_methods=("oauth2",),
        credential_fields=(
            CredentialField("access_token", "Access token"),
            CredentialField("instance_url", "Instance URL", is_secret=False, help_text="e.g. https://acme.my.salesforce.com (from the token response)."),
        ),
        config_fields=(
            CredentialField("api_version", "API version", is_secret=False, is_required=False, help_text=f"Default {DEFAULT_API_VERSION}"),
            CredentialField("stage_map", "Stage map (JSON)", is_secret=False, is_required=False, help_text='e.g. {"Closed Won": "won"}'),
            CredentialField("team_field", "Deal team field", is_secret=False, is_required=False, help_text="Default Team__c; empty to skip."),
            CredentialField("external_id_field", "External id field for upserts", is_secret=False, is_required=False, help_text="e.g. Bastion_Key__c"),
            CredentialField("marker_field", "Marker field for search-before-create", is_secret=False, is_required=False),
            CredentialField("batch_size", "Query batch size (200–2000)", is_secret=False, is_required=False),
        ),
        oauth=OAuthSpec(
            authorize_url="https://login.salesforce.com/services/oauth2/authorize",
            token_url="https://login.salesforce.com/services/oauth2/token",
            scopes=("api", "refresh_token"),
            scope_purposes={
                "api": "Read opportunities, contacts, users and accounts, and create or update records that playbooks ask for.",
                "refresh_token": "Stay connected without asking you to sign in again (offline access).",
            },
            use_pkce=True,
            rotates_refresh_token=False,  # optional per connected app: a refresh that returns a new refresh token must be stored
        ),
        default_base_url="https://login.salesforce.com",
        entities=(
            EntitySpec("opportunities", "Opportunities", "Deals with their team (Team__c) as stakeholders.", supports_incremental=True, bastion_type="deal"),
            EntitySpec("contacts", "Contacts", "Customer and partner contacts.", supports_incremental=True, bastion_type="person"),
            EntitySpec("users", "Users", "Salesforce users (your own staff).", supports_incremental=True, bastion_type="person"),
            EntitySpec("accounts", "Accounts", "Companies.", supports_incremental=True, bastion_type="other"),
        ),
        actions=(
            ActionSpec(
                "create_record",
                "Create a record",
                "Create any sObject record (upsert by external id when configured).",
                {"type": "object", "required": ["sobject", "fields"], "properties": {"sobject": {"type": "string"}, "fields": {"type": "object"}}},
                idempotency="vendor",
            ),
            ActionSpec(
                "update_record",
                "Update a record",
                "Update fields of an existing record.",
                {
                    "type": "object",
                    "required": ["sobject", "id", "fields"],
                    "properties": {"sobject": {"type": "string"}, "id": {"type": "string"}, "fields": {"type": "object"}},
                },
                idempotency="natural",
            ),
        ),
        capabilities=("read", "incremental", "field_discovery", "deletions", "actions", "daily_quota"),
        docs_url="https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/",
        # Salesforce counts API requests over a rolling 24 hours; the org's real limit and usage come from Sforce-Limit-Info.
        rate_limit=RateLimitSpec(per_second=20.0, burst=25, daily=15_000, quota_window="rolling_24h"),
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        token = self.credentials.get("access_token")
        if self.client is not None and self.client.auth is None and token:
            self.client.auth = BearerAuth(token)
        self.last_api_usage: ApiUsage | None = None
        if self.client is not None:
            # Every response, errors included, reports the org's daily usage: keep the latest for the rate limiter.
            self.client.session.hooks.setdefault("response", []).append(self._observe_limit_info)

    @classmethod
    def api_base_url(cls, credentials: Mapping[str, Any], config: Mapping[str, Any], fallback: str = "") -> str:
        """The instance root: credentials["instance_url"] wins over the integration's base URL."""
        return str(credentials.get("instance_url") or fallback or cls.manifest.default_base_url).rstrip("/")

    @property
    def instance_url(self) -> str:
        return self.api_base_url(self.credentials, self.config, self.client.base_url if self.client else "")

    @property
    def api_version(self) -> str:
        version = str(self.config.get("api_version") or DEFAULT_API_VERSION).lstrip("vV")
        if not re.fullmatch(r"\d{2}\.\d", version):
            raise ApiBadRequest(f"Salesforce API version {version!r} is not of the form 60.0.")
        return version

    @property
    def data_url(self) -> str:
        return f"{self.instance_url}/services/data/v{self.api_version}"

    def _observe_limit_info(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage:
            self.last_api_usage = usage

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if path.startswith("/services/"):
            return self.instance_url + path  # nextRecordsUrl and Location headers are relative to the instance root
        return self.data_url + path

    def _get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.client.get(self._url(path), **kwargs)

    # ------------------------------------------------------------ connection

    def test_connection(self) -> ConnectionTest:
        limits = self._get("/limits").json()
        daily = limits.get("DailyApiRequests") or {}
        info = self._get("/services/oauth2/userinfo").json()
        return ConnectionTest(
            ok=True,
            identity=str(info.get("preferred_username") or info.get("email") or ""),
            scopes=[s for s in str(self.credentials.get("scope", "")).split() if s],
            account_id=str(info.get("organization_id", "")),
            detail={
                "instance_url": self.instance_url,
                "api_version": self.api_version,
                "daily_api_requests": {"max": daily.get("Max"), "remaining": daily.get("Remaining")},
            },
        )

    # ------------------------------------------------------------ discovery

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        sobject = SOBJECTS[self.manifest.entity(entity).key]
        described = self._get(f"/sobjects/{sobject}/describe").json()
        return [
            FieldInfo(
                name=f["name"],
                label=f.get("label") or f["name"],
                type=FIELD_TYPES.get(f.get("type", "string"), "string"),
                path=f"$.{f['name']}",
                is_required=not f.get("nillable", True) and bool(f.get("createable")) and f.get("type") != "boolean",
                is_custom=bool(f.get("custom")) or f["name"].endswith("__c"),
            )
            for f in described.get("fields", [])
        ]

    # ------------------------------------------------------------ reading

    def _fields(self, entity: str) -> list[str]:
        fields = list(ENTITY_FIELDS[entity])
        if entity == "opportunities":
            team_field = self.config.get("team_field", "Team__c")
            if team_field:
                fields.append(team_field)
            if self.config.get("multi_currency"):
                fields.append("CurrencyIsoCode")
        fields.extend((self.config.get("extra_fields") or {}).get(entity, []))
        return list(dict.fromkeys(fields))

    def soql_for(self, entity: str, cursor: str | None) -> str:
        """Full scans and incremental runs both order by SystemModstamp, so each stored page can advance the cursor."""
        sobject = SOBJECTS[entity]
        fields = self._fields(entity)
        if cursor:
            # >= with a whole-second cursor: records sharing the boundary second are re-read (skipped by hash), never lost.
            return (
                f"SELECT {', '.join(fields + ['IsDeleted'])} FROM {sobject} WHERE SystemModstamp >= {soql_datetime(cursor)} ORDER BY SystemModstamp ASC, Id ASC"
            )
        return f"SELECT {', '.join(fields)} FROM {sobject} ORDER BY SystemModstamp ASC, Id ASC"

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        return str(record["Id"])

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return record.get("SystemModstamp")

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """Full scan: /query. Incremental: /queryAll from the cursor, so deleted rows (IsDeleted) arrive as explicit deletions."""
        self.manifest.entity(entity)
        batch = max(200, min(int(self.config.get("batch_size") or DEFAULT_BATCH_SIZE), 2000))
        headers = {"Sforce-Query-Options": f"batchSize={batch}"}
        incremental = bool(cursor) if page is None else page["incremental"]
        if page is None:
            endpoint = "/queryAll" if incremental else "/query"
            response = self._get(endpoint, params={"q": self.soql_for(entity, cursor)}, headers=headers)
        else:
            response = self._get(page["next"], headers=headers)
        body = response.json()
        rows = body.get("records", [])
        records = [r for r in rows if not r.get("IsDeleted")]
        deleted = [str(r["Id"]) for r in rows if r.get("IsDeleted")]
        stamps = [r["SystemModstamp"] for r in rows if r.get("SystemModstamp")]
        next_url = None if body.get("done", True) else body.get("nextRecordsUrl")
        return Page(
            records=records,
            next_page={"next": next_url, "incremental": incremental} if next_url else None,
            cursor=soql_datetime(max(stamps, key=soql_datetime)) if stamps else None,
            is_full_scan=not incremental,
            deleted_ids=deleted,
        )

    def deleted_between(self, entity: str, start: str, end: str) -> list[str]:
        """Ids deleted in a window via /sobjects/{type}/deleted (the recycle-bin log, at most 15 days back)."""
        params = {"start": soql_datetime(start).replace("Z", "+00:00"), "end": soql_datetime(end).replace("Z", "+00:00")}
        body = self._get(f"/sobjects/{SOBJECTS[entity]}/deleted/", params=params).json()
        return [str(r["id"]) for r in body.get("deletedRecords", [])]

    # ------------------------------------------------------------ transformers

    @property
    def stage_map(self) -> dict[str, str]:
        configured = self.config.get("stage_map") or {}
        if isinstance(configured, str):
            configured = json.loads(configured or "{}")
        return {**DEFAULT_STAGE_MAP, **{str(k).lower(): v for k, v in configured.items()}}

    def map_stage(self, stage: str | None) -> str:
        return self.stage_map.get((stage or "").strip().lower(), UNMAPPED_STAGE)

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "opportunities":
            amount = record.get("Amount")
            owner = record.get("Owner") or {}
            return {
                "external_id": str(record["Id"]),
                "dealName": record.get("Name") or "",
                "value": float(amount) if amount is not None else None,
                "currency": record.get("CurrencyIsoCode") or self.config.get("default_currency") or "USD",
                "closeDate": record.get("CloseDate") or "",
                "stage": self.map_stage(record.get("StageName")),
                "owner_email": (owner.get("Email") or "").strip(),
                "stakeholders": split_emails(record.get(self.config.get("team_field", "Team__c") or "Team__c")),
            }
        if entity in ("contacts", "users"):
            given, family = record.get("FirstName") or "", record.get("LastName") or ""
            return {
                "external_id": str(record["Id"]),
                "email": (record.get("Email") or "").strip(),
                "name": record.get("Name") or f"{given} {family}".strip(),
                "given_name": given,
                "family_name": family,
                "title": record.get("Title") or "",
                "department": record.get("Department") or "",
                "phone": record.get("Phone") or "",
                "manager_external_id": str(record.get("ManagerId" if entity == "users" else "ReportsToId") or ""),
                "groups": [],
                "is_active": bool(record.get("IsActive", True)),
                "username": record.get("Username") or "",
            }
        if entity == "accounts":
            return {
                "external_id": str(record["Id"]),
                "name": record.get("Name") or "",
                "industry": record.get("Industry") or "",
                "website": record.get("Website") or "",
            }
        raise KeyError(f"salesforce has no entity '{entity}'")

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Bastion shape → Salesforce fields (only the keys given)."""
        if entity == "opportunities":
            fields: dict[str, Any] = {}
            if "dealName" in data:
                fields["Name"] = data["dealName"]
            if "value" in data:
                fields["Amount"] = data["value"]
            if "closeDate" in data:
                fields["CloseDate"] = data["closeDate"]
            if "stage" in data:
                reverse = {**DEFAULT_REVERSE_STAGE, **(self.config.get("reverse_stage_map") or {})}
                if data["stage"] not in reverse:
                    raise ApiBadRequest(f"No Salesforce stage is mapped to Bastion stage '{data['stage']}'.")
                fields["StageName"] = reverse[data["stage"]]
            if "stakeholders" in data:
                fields[self.config.get("team_field", "Team__c") or "Team__c"] = ";".join(data["stakeholders"])
            if "currency" in data and self.config.get("multi_currency"):
                fields["CurrencyIsoCode"] = data["currency"]
            return fields
        if entity == "contacts":
            mapping = {"email": "Email", "given_name": "FirstName", "family_name": "LastName", "title": "Title", "department": "Department", "phone": "Phone"}
            return {vendor: data[key] for key, vendor in mapping.items() if key in data}
        raise KeyError(f"salesforce cannot write entity '{entity}'")

    # ------------------------------------------------------------ actions

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
        self.manifest.action(action)
        sobject = str(payload.get("sobject") or "")
        fields = payload.get("fields")
        if not SOBJECT_NAME.match(sobject) or not isinstance(fields, Mapping):
            raise ApiBadRequest(f"{action} needs an sobject name and a fields object.")
        if action == "update_record":
            record_id = str(payload.get("id") or "")
            if not RECORD_ID.match(record_id):
                raise ApiBadRequest("update_record needs a 15- or 18-character Salesforce record id.")
            self.client.patch(self._url(f"/sobjects/{sobject}/{record_id}"), json=dict(fields))
            return ActionResult(external_id=record_id, url=self.record_url(sobject, record_id), created=False)
        if not idempotency_key:
            raise ApiBadRequest("An idempotency key is required.")
        external_field = self._external_id_field(sobject)
        if external_field:
            # Upsert by external id: the vendor makes the retry idempotent, so the client may retry freely.
            response = self.client.patch(self._url(f"/sobjects/{sobject}/{external_field}/{quote(idempotency_key, safe='')}"), json=dict(fields))
            body = response.json() if response.content else {}
            return ActionResult(external_id=str(body["id"]), url=self.record_url(sobject, str(body["id"])), data=body, created=response.status_code == 201)
        return self._create_once(sobject, dict(fields), idempotency_key)

    def record_url(self, sobject: str, record_id: str) -> str:
        return f"{self.instance_url}/lightning/r/{sobject}/{record_id}/view"

    def _external_id_field(self, sobject: str) -> str:
        configured = self.config.get("external_id_field")
        if isinstance(configured, Mapping):
            return str(configured.get(sobject) or "")
        return str(configured or "")

    def _create_once(self, sobject: str, fields: dict[str, Any], key: str) -> ActionResult:
        """Search by the marker field, create only when absent; after an ambiguous failure, search again before re-posting."""
        marker = str(self.config.get("marker_field") or DEFAULT_MARKER_FIELD)
        existing = self._find_by_marker(sobject, marker, key)
        if existing:
            return ActionResult(external_id=existing, url=self.record_url(sobject, existing), created=False)
        fields = {**fields, marker: key}
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                # retry=False: a blind retry of a POST whose answer was lost would create a second record.
                body = self.client.post(self._url(f"/sobjects/{sobject}/"), json=fields, retry=False).json()
                return ActionResult(external_id=str(body["id"]), url=self.record_url(sobject, str(body["id"])), data=body, created=True)
            except ApiError as error:
                duplicate = error.vendor_code == "DUPLICATE_VALUE"  # a unique marker field refused a second copy
                if not (error.retryable or duplicate) or attempt == attempts:
                    raise
                if error.retryable:
                    wait = error.retry_after if isinstance(error, ApiRateLimited) else self.client.backoff(attempt)
                    if wait > self.client.max_inline_wait:
                        raise
                    self.client.sleep(wait)
                existing = self._find_by_marker(sobject, marker, key)
                if existing:
                    return ActionResult(external_id=existing, url=self.record_url(sobject, existing), created=False)
                if duplicate:
                    raise
        raise AssertionError("unreachable")

    def _find_by_marker(self, sobject: str, marker: str, key: str) -> str | None:
        soql = f"SELECT Id FROM {sobject} WHERE {marker} = {soql_string(key)} LIMIT 1"
        records = self._get("/query", params={"q": soql}).json().get("records", [])
        return str(records[0]["Id"]) if records else None


CONNECTOR = SalesforceConnector
