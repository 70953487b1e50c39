"""Okta connector: users, groups and app assignments over the Management API (Link paging, X-Rate-Limit-*), event hooks."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from integrations.connectors.base import (
    BaseConnector,
    ConnectionTest,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldInfo,
    OAuthSpec,
    Page,
    WebhookEvent,
    WebhookRequest,
    WebhookSpec,
)
from integrations.errors import ApiBadRequest, ApiNotFound, ApiRateLimited, WebhookRejected
from integrations.http import BearerAuth, HeaderAuth

logger = logging.getLogger(__name__)

USER_PAGE_LIMIT = 200  # Okta's maximum for /api/v1/users
MEMBER_PAGE_LIMIT = 1000
DELETE_EVENTS = {"user.lifecycle.deactivate", "user.lifecycle.delete.initiated", "user.lifecycle.delete.completed"}
CHANGE_EVENTS = {"user.account.update_profile", "user.lifecycle.create", "user.lifecycle.activate", "user.lifecycle.reactivate", "user.lifecycle.unsuspend"}
PROFILE_FIELDS = [
    ("login", "Username", "string", True),
    ("email", "Email", "email", True),
    ("firstName", "First name", "string", False),
    ("lastName", "Last name", "string", False),
    ("displayName", "Display name", "string", False),
    ("title", "Title", "string", False),
    ("department", "Department", "string", False),
    ("primaryPhone", "Primary phone", "string", False),
    ("mobilePhone", "Mobile phone", "string", False),
    ("managerId", "Manager id", "user", False),
    ("employeeNumber", "Employee number", "string", False),
    ("costCenter", "Cost center", "string", False),
    ("division", "Division", "string", False),
    ("organization", "Organization", "string", False),
]


class OktaConnector(BaseConnector):
    """Okta Management API (SSWS API token or OAuth 2.0 bearer)."""

    manifest = ConnectorManifest(
        key="okta",
        name="Okta",
        category="directory",
        description="People, groups and application assignments from Okta, kept current by event hooks.",
        auth_methods=("api_key", "oauth2"),
        credential_fields=(CredentialField("api_token", "API token (SSWS)", help_text="Admin console → Security → API → Tokens"),),
        config_fields=(
            CredentialField("app_ids", "Application ids for assignments", is_secret=False, is_required=False),
            CredentialField("webhook_auth_header", "Event hook authentication header", is_secret=False, is_required=False),
        ),
        oauth=OAuthSpec(
            authorize_url="https://{yourOktaDomain}/oauth2/v1/authorize",
            token_url="https://{yourOktaDomain}/oauth2/v1/token",
            scopes=("okta.users.read", "okta.groups.read", "okta.apps.read"),
            scope_purposes={"okta.users.read": "Import people", "okta.groups.read": "Import groups", "okta.apps.read": "Import app assignments"},
        ),
        entities=(
            EntitySpec("users", "Users", "People (deactivated users are reported as deletions)", supports_incremental=True, bastion_type="person"),
            EntitySpec("groups", "Groups", "Okta groups with their members", bastion_type="group"),
            EntitySpec("app_assignments", "App assignments", "Users assigned to the configured applications", bastion_type="other"),
        ),
        webhook=WebhookSpec(signature="Event hook: one-time GET verification (X-Okta-Verification-Challenge), then a static secret header on every delivery."),
        capabilities=("read", "incremental", "field_discovery", "deletions", "webhooks"),
        docs_url="https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/",
    )

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep, **kwargs: Any):
        super().__init__(**kwargs)
        self._sleep = sleep
        token = self.credentials.get("api_token")
        if self.client is not None and self.client.auth is None:
            if token:
                self.client.auth = HeaderAuth("Authorization", f"SSWS {token}")
            elif self.credentials.get("access_token"):
                self.client.auth = BearerAuth(self.credentials["access_token"])
        self.rate: dict[str, int] = {}
        self.throttle_waits: list[float] = []
        self._memberships: dict[str, list[str]] | None = None
        if self.client is not None:
            self.client.session.hooks.setdefault("response", []).append(self._observe_rate)

    @property
    def page_size(self) -> int:
        return max(1, min(int(self.config.get("page_size") or USER_PAGE_LIMIT), USER_PAGE_LIMIT))

    # ------------------------------------------------------------ rate limits
    def _observe_rate(self, response: Any, *args: Any, **kwargs: Any) -> None:
        for header, key in (("X-Rate-Limit-Limit", "limit"), ("X-Rate-Limit-Remaining", "remaining"), ("X-Rate-Limit-Reset", "reset")):
            value = response.headers.get(header)
            if value and value.strip().isdigit():
                self.rate[key] = int(value)

    def _throttle(self) -> None:
        """Pause before the budget runs out (Okta counts per minute window); a long wait is handed back as ApiRateLimited to re-queue."""
        remaining, reset, limit = self.rate.get("remaining"), self.rate.get("reset"), self.rate.get("limit") or 0
        low_water = int(self.config.get("rate_limit_reserve") or max(1, limit // 20))
        if remaining is None or reset is None or remaining > low_water:
            return
        wait = reset - time.time()
        if wait <= 0:
            return
        if wait > float(self.config.get("max_inline_wait") or 10):
            raise ApiRateLimited("Okta rate limit budget is nearly spent; retry after the window resets.", retry_after=wait, status=None)
        logger.info("okta.rate_limit.throttle", extra={"remaining": remaining, "wait": round(wait, 2)})
        self.throttle_waits.append(wait)
        self._sleep(wait)
        self.rate.pop("remaining", None)

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        self._throttle()
        return self.client.get(path, params=params)

    def _pages(self, path: str, params: Mapping[str, Any] | None = None):
        """Follow Link rel="next" verbatim (the `after` cursor is opaque)."""
        url: str | None = path
        query = params
        while url:
            response = self._get(url, query)
            yield response.json(), response
            url = response.links.get("next", {}).get("url")
            query = None

    # ------------------------------------------------------------ connection and discovery
    def test_connection(self) -> ConnectionTest:
        me = self._get("/api/v1/users/me").json()
        profile = me.get("profile") or {}
        return ConnectionTest(ok=True, identity=profile.get("login") or profile.get("email") or me.get("id", ""), detail={"rate_limit": dict(self.rate)})

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        if entity == "users":
            fields = [FieldInfo(name, label, type=kind, path=f"$.profile.{name}", is_required=req) for name, label, kind, req in PROFILE_FIELDS]
            fields += [
                FieldInfo("status", "Status", path="$.status"),
                FieldInfo("lastUpdated", "Last updated", type="datetime", path="$.lastUpdated"),
                FieldInfo("groups", "Groups", type="array", path="$.groups"),
            ]
            # Custom profile attributes (schema extensions) show up on the users themselves.
            sample = self._get("/api/v1/users", {"limit": 1}).json()
            known = {f.name for f in fields}
            for name in sorted((sample[0].get("profile") or {}) if sample else {}):
                if name not in known:
                    fields.append(FieldInfo(name, name, path=f"$.profile.{name}", is_custom=True))
            return fields
        if entity == "groups":
            return [FieldInfo("name", "Name", path="$.profile.name", is_required=True), FieldInfo("members", "Members", type="array", path="$.members")]
        if entity == "app_assignments":
            return [FieldInfo("appId", "Application", path="$.appId"), FieldInfo("userId", "User", type="user", path="$.userId")]
        raise ApiNotFound(f"Okta has no entity '{entity}'.")

    # ------------------------------------------------------------ reading
    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        if entity == "users":
            return self._read_users(cursor, dict(page or {}))
        if entity == "groups":
            return self._read_groups(dict(page or {}))
        if entity == "app_assignments":
            return self._read_app_assignments(dict(page or {}))
        raise ApiNotFound(f"Okta has no entity '{entity}'.")

    def _read_users(self, cursor: Any, state: dict[str, Any]) -> Page:
        if not state:
            self._memberships = None
        incremental = bool(cursor)
        if state.get("next"):
            response = self._get(state["next"])
        elif incremental:
            # `search` includes DEPROVISIONED users, so a deactivation arrives as a change we can report as a deletion.
            response = self._get(
                "/api/v1/users", {"search": f'lastUpdated gt "{cursor}"', "limit": self.page_size, "sortBy": "lastUpdated", "sortOrder": "asc"}
            )
        else:
            response = self._get("/api/v1/users", {"limit": self.page_size})
        users = response.json()
        if not isinstance(users, list):
            raise ApiBadRequest("Okta answered /api/v1/users with something other than a list.")
        memberships = self._group_memberships()
        records, deleted = [], []
        run_max = state.get("max") or cursor
        for user in users:
            if not isinstance(user, dict) or "id" not in user or not isinstance(user.get("profile"), dict):
                raise ApiBadRequest("Okta returned a user without id or profile.")
            updated = user.get("lastUpdated") or ""
            run_max = updated if not run_max or updated > run_max else run_max
            if user.get("status") == "DEPROVISIONED":
                deleted.append(str(user["id"]))
                continue
            records.append({**user, "groups": sorted(memberships.get(str(user["id"]), []))})
        next_url = response.links.get("next", {}).get("url")
        if next_url:
            return Page(records, next_page={"next": next_url, "max": run_max}, cursor=None, is_full_scan=not incremental, deleted_ids=deleted)
        new_cursor = run_max if run_max and run_max != cursor else None
        return Page(records, next_page=None, cursor=new_cursor, is_full_scan=not incremental, deleted_ids=deleted)

    def _group_memberships(self) -> dict[str, list[str]]:
        """user id → group names, built once per run from /groups and /groups/{id}/users."""
        if self._memberships is not None:
            return self._memberships
        memberships: dict[str, list[str]] = {}
        for groups, _ in self._pages("/api/v1/groups", {"limit": 10000}):
            for group in groups:
                name = (group.get("profile") or {}).get("name") or group["id"]
                for member in self._group_members(group["id"]):
                    memberships.setdefault(member, []).append(name)
        self._memberships = memberships
        return memberships

    def _group_members(self, group_id: str) -> list[str]:
        members: list[str] = []
        for users, _ in self._pages(f"/api/v1/groups/{group_id}/users", {"limit": MEMBER_PAGE_LIMIT}):
            members += [str(u["id"]) for u in users]
        return members

    def _read_groups(self, state: dict[str, Any]) -> Page:
        response = self._get(state["next"]) if state.get("next") else self._get("/api/v1/groups", {"limit": 200})
        records = [{**group, "members": self._group_members(group["id"])} for group in response.json()]
        next_url = response.links.get("next", {}).get("url")
        return Page(records, next_page={"next": next_url} if next_url else None, is_full_scan=True)

    def _read_app_assignments(self, state: dict[str, Any]) -> Page:
        app_ids = self.config.get("app_ids") or []
        if isinstance(app_ids, str):
            app_ids = [a.strip() for a in app_ids.split(",") if a.strip()]
        index = int(state.get("app", 0))
        if index >= len(app_ids):
            return Page([], next_page=None, is_full_scan=True)
        app_id = app_ids[index]
        response = self._get(state["next"]) if state.get("next") else self._get(f"/api/v1/apps/{app_id}/users", {"limit": 500})
        records = [{**assignment, "appId": app_id, "userId": assignment["id"], "id": f"{app_id}:{assignment['id']}"} for assignment in response.json()]
        next_url = response.links.get("next", {}).get("url")
        if next_url:
            return Page(records, next_page={"app": index, "next": next_url}, is_full_scan=True)
        if index + 1 < len(app_ids):
            return Page(records, next_page={"app": index + 1}, is_full_scan=True)
        return Page(records, next_page=None, is_full_scan=True)

    # ------------------------------------------------------------ transformers
    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return record.get("lastUpdated")

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "groups":
            return {"external_id": str(record["id"]), "name": (record.get("profile") or {}).get("name", ""), "members": list(record.get("members") or [])}
        if entity == "app_assignments":
            return {
                "external_id": str(record["id"]),
                "app_id": record.get("appId", ""),
                "user_id": record.get("userId", ""),
                "status": record.get("status", ""),
            }
        profile = record.get("profile") or {}
        given, family = profile.get("firstName") or "", profile.get("lastName") or ""
        return {
            "external_id": str(record["id"]),
            "email": (profile.get("email") or "").lower(),
            "name": profile.get("displayName") or f"{given} {family}".strip(),
            "given_name": given,
            "family_name": family,
            "title": profile.get("title") or "",
            "department": profile.get("department") or "",
            "phone": profile.get("primaryPhone") or profile.get("mobilePhone") or "",
            "manager_external_id": profile.get("managerId") or "",
            "groups": list(record.get("groups") or []),
            "is_active": record.get("status") not in ("DEPROVISIONED", "SUSPENDED"),
            "username": profile.get("login") or "",
        }

    # ------------------------------------------------------------ event hooks
    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """Okta sends no HMAC: the configured header must carry the shared secret (constant-time compare)."""
        header_name = str((config or {}).get("webhook_auth_header") or "Authorization")
        presented = request.header(header_name)
        if request.method.upper() == "GET":
            if not request.header("X-Okta-Verification-Challenge"):
                raise WebhookRejected(400, "missing_challenge", "Okta's verification request carries X-Okta-Verification-Challenge.")
            # The handshake echoes a value and changes nothing; a wrong secret is still refused when one is sent.
            if presented is not None and not hmac.compare_digest(presented.encode(), secret.encode()):
                raise WebhookRejected(401, "bad_secret", f"The {header_name} header does not match the event hook secret.")
            return
        if not presented:
            raise WebhookRejected(400, "missing_secret", f"The event hook delivery has no {header_name} header.")
        if not secret or not hmac.compare_digest(presented.encode(), secret.encode()):
            raise WebhookRejected(401, "bad_secret", f"The {header_name} header does not match the event hook secret.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        challenge = request.header("X-Okta-Verification-Challenge")
        if request.method.upper() == "GET":
            if not challenge:
                raise WebhookRejected(400, "missing_challenge", "Okta's verification request carries X-Okta-Verification-Challenge.")
            return [
                WebhookEvent(
                    delivery_id=f"okta-verification:{challenge[:64]}", event_type="verification", action="sync", challenge_response={"verification": challenge}
                )
            ]
        try:
            body = json.loads(request.body or b"null")
        except ValueError as exc:
            raise WebhookRejected(400, "invalid_json", "The Okta event hook body is not JSON.") from exc
        if not isinstance(body, dict) or not body.get("eventId") or not isinstance((body.get("data") or {}).get("events"), list):
            raise WebhookRejected(400, "invalid_payload", "An Okta event hook delivery has eventId and data.events.")
        events = body["data"]["events"]
        parsed: list[WebhookEvent] = []
        for index, event in enumerate(events if all(isinstance(e, dict) for e in events) else []):
            event_type = str(event.get("eventType", ""))
            delivery_id = str(body["eventId"]) if len(events) == 1 else f"{body['eventId']}:{event.get('uuid') or index}"
            occurred = _parse_time(event.get("published"))
            users = [t for t in event.get("target") or [] if isinstance(t, dict) and t.get("type") == "User"]
            applied = False
            for target in users:
                if target.get("id") and event_type in DELETE_EVENTS:
                    parsed.append(WebhookEvent(delivery_id, event_type, "users", str(target["id"]), "delete", None, occurred))
                    applied = True
                elif event_type in DELETE_EVENTS | CHANGE_EVENTS:
                    # The event names the user (by id, or only by login) without its profile: the sync engine re-reads the users.
                    parsed.append(WebhookEvent(delivery_id, event_type, "users", str(target.get("id") or ""), "sync", None, occurred))
                    applied = True
            if not applied:
                known = event_type in DELETE_EVENTS | CHANGE_EVENTS
                # A user event without a user target is not used; an event type Bastion does not read is unsupported.
                parsed.append(WebhookEvent(delivery_id, event_type or "unknown", action="ignore" if known else "unsupported", occurred_at=occurred))
        if not events:
            parsed.append(WebhookEvent(str(body["eventId"]), "empty", action="ignore"))
        return parsed

    def fetch_user(self, user_id: str) -> dict[str, Any]:
        """One user in the raw shape `read` returns (for event hooks that name a user without its profile)."""
        user = self._get(f"/api/v1/users/{user_id}").json()
        return {**user, "groups": sorted(self._group_memberships().get(str(user["id"]), []))}


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


CONNECTOR = OktaConnector
