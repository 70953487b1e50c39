"""Atlassian Statuspage connector: read incidents and components; create and update public incidents exactly once."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
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
    Page,
)
from integrations.errors import ApiBadRequest, ApiError, ApiRateLimited

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_CREATE_ATTEMPTS = 4


class StatuspageKeyAuth:
    """`Authorization: OAuth <api key>` (the literal word OAuth, not Bearer)."""

    def __init__(self, api_key: str):
        self._value = f"OAuth {api_key}"

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self._value

    def refresh(self) -> bool:
        return False


def idempotency_marker(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


class StatuspageConnector(BaseConnector):
    manifest = ConnectorManifest(
        key="statuspage",
        name="Statuspage",
        category="incident",
        description="Publish and update public incidents on an Atlassian Statuspage page.",
        logo="connectors/statuspage.svg",
        auth_methods=("api_key",),
        credential_fields=(CredentialField("api_key", "API key", help_text="Statuspage → avatar menu → API info."),),
        config_fields=(CredentialField("page_id", "Page id", is_secret=False, help_text="The page's id from API info, e.g. gytm4qzbx9t6."),),
        default_base_url="https://api.statuspage.io/v1",
        entities=(
            EntitySpec("incidents", "Incidents", "Public incidents, newest first", bastion_type="incident"),
            EntitySpec("components", "Components", "Components an incident can affect"),
        ),
        actions=(
            ActionSpec(
                "create_incident",
                "Create incident",
                "Publish an incident; a metadata marker derived from the idempotency key is searched before creating.",
                {
                    "name": "string",
                    "status": "investigating|identified|monitoring|resolved",
                    "body": "string",
                    "impact_override": "string?",
                    "component_ids": "[string]?",
                },
            ),
            ActionSpec(
                "update_incident",
                "Update incident",
                "Post an incident update (skipped when the latest update already says the same).",
                {"incident_id": "string", "status": "string", "body": "string"},
            ),
        ),
        capabilities=("read", "actions"),
        docs_url="https://developer.statuspage.io/",
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.client is not None and self.client.auth is None and self.credentials.get("api_key"):
            self.client.auth = StatuspageKeyAuth(self.credentials["api_key"])

    @property
    def page_id(self) -> str:
        page_id = self.config.get("page_id")
        if not page_id:
            raise ApiBadRequest("Statuspage needs the page id (config page_id).")
        return str(page_id)

    def test_connection(self) -> ConnectionTest:
        page = self.client.get(f"pages/{self.page_id}").json()
        # Statuspage API keys carry no scopes: a key can manage every page of its organization.
        return ConnectionTest(
            ok=True,
            identity=page.get("name", ""),
            scopes=[],
            detail={"page_url": page.get("url", ""), "subdomain": page.get("subdomain", "")},
            account_id=page["id"],
        )

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        records = self.read(entity).records[:1]
        sample = records[0] if records else {"id": ""}
        return [
            FieldInfo(
                key,
                key.replace("_", " ").capitalize(),
                "array" if isinstance(v, list) else "object" if isinstance(v, dict) else "datetime" if key.endswith("_at") else "string",
                f"$.{key}",
            )
            for key, v in sample.items()
        ]

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """`page`/`limit` paging (limit ≤ 100); Statuspage has no change filter, so every read is a full scan."""
        if entity not in ("incidents", "components"):
            raise KeyError(f"statuspage has no entity '{entity}'")
        number = int((page or {}).get("page", 1))
        size = int(self.config.get("page_size", PAGE_SIZE))
        params = {"page": number, "limit" if entity == "incidents" else "per_page": size}
        records = self.client.get(f"pages/{self.page_id}/{entity}", params=params).json()
        return Page(records=records, next_page={"page": number + 1} if len(records) == size else None)

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return record.get("updated_at")

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "incidents":
            return {
                "external_id": str(record["id"]),
                "title": record.get("name", ""),
                "status": record.get("status", ""),
                "urgency": record.get("impact", ""),
                "service": ", ".join(c.get("name", "") for c in record.get("components") or []),
                "created_at": record.get("created_at", ""),
                "url": record.get("shortlink", ""),
            }
        return {"external_id": str(record["id"]), "name": record.get("name", ""), "status": record.get("status", "")}

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """create_incident payload → the `incident` object of POST /pages/{page_id}/incidents."""
        incident: dict[str, Any] = {"name": data["name"], "status": data.get("status") or "investigating"}
        for key in ("body", "impact_override", "component_ids", "components", "deliver_notifications"):
            if data.get(key) is not None:
                incident[key] = data[key]
        return incident

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
        if action == "create_incident":
            return self._create(payload, idempotency_key)
        if action == "update_incident":
            return self._update(payload)
        raise KeyError(f"statuspage has no action '{action}'")

    def _find(self, marker: str, name: str) -> dict[str, Any] | None:
        """Look for our marker among unresolved incidents, then among incidents matching the name (covers ones already resolved)."""
        searches = [
            (f"pages/{self.page_id}/incidents/unresolved", {"per_page": PAGE_SIZE}),
            (f"pages/{self.page_id}/incidents", {"q": name, "limit": PAGE_SIZE}),
        ]
        for path, params in searches:
            for incident in self.client.get(path, params=params).json():
                if ((incident.get("metadata") or {}).get("bastion") or {}).get("idempotency_key") == marker:
                    return incident
        return None

    def _create(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        marker = idempotency_marker(idempotency_key)
        body = {"incident": {**self.from_bastion("incidents", payload), "metadata": {"bastion": {"idempotency_key": marker}}}}
        last_error: ApiError | None = None
        for _attempt in range(MAX_CREATE_ATTEMPTS):
            existing = self._find(marker, payload["name"])
            if existing:
                return ActionResult(external_id=existing["id"], url=existing.get("shortlink", ""), data=existing, created=False)
            try:
                # No automatic retry of the POST: Statuspage has no server-side dedup, so after a lost response we search first.
                incident = self.client.post(f"pages/{self.page_id}/incidents", json=body, retry=False).json()
            except ApiError as error:
                if not error.retryable:
                    raise
                last_error = error
                self._pause(error)
                continue
            return ActionResult(external_id=incident["id"], url=incident.get("shortlink", ""), data=incident, created=True)
        assert last_error is not None
        raise last_error

    def _update(self, payload: Mapping[str, Any]) -> ActionResult:
        path = f"pages/{self.page_id}/incidents/{payload['incident_id']}"
        incident = {k: payload[k] for k in ("status", "body", "impact_override", "component_ids", "components", "name") if payload.get(k) is not None}
        last_error: ApiError | None = None
        for _attempt in range(MAX_CREATE_ATTEMPTS):
            current = self.client.get(path).json()
            latest = (current.get("incident_updates") or [{}])[0]
            if latest.get("status") == payload.get("status") and latest.get("body") == payload.get("body"):
                # The update already landed (a retry, or a lost response): PATCHing again would publish it twice.
                return ActionResult(external_id=current["id"], url=current.get("shortlink", ""), data=current, created=False)
            try:
                updated = self.client.patch(path, json={"incident": incident}, retry=False).json()
            except ApiError as error:
                if not error.retryable:
                    raise
                last_error = error
                self._pause(error)
                continue
            return ActionResult(external_id=updated["id"], url=updated.get("shortlink", ""), data=updated, created=False)
        assert last_error is not None
        raise last_error

    def _pause(self, error: ApiError) -> None:
        logger.warning("statuspage.write.retry", extra={"error": type(error).__name__, "status": error.status})
        if isinstance(error, ApiRateLimited):
            self.client.sleep(min(error.retry_after, self.client.max_inline_wait))


CONNECTOR = StatuspageConnector
