"""The Statuspage connector: incidents and components read page by page; incidents created and updated exactly once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import ActionResult, BaseConnector, ConnectionTest, FieldInfo, Page, TrackedObject
from integrations.connectors.entities import BastionIncident
from integrations.connectors.kit.markers import MARKER_PREFIX, idempotency_marker
from integrations.connectors.kit.once import create_once
from integrations.connectors.statuspage.client import StatuspageKeyAuth, classify_statuspage_response
from integrations.connectors.statuspage.manifest import MANIFEST
from integrations.errors import ApiBadRequest, ApiError

PAGE_SIZE = 100
MAX_CREATE_ATTEMPTS = 4
MARKER_LENGTH = 40
DONE_STATUSES = frozenset({"resolved", "completed"})


def incident_marker(idempotency_key: str) -> str:
    """The metadata marker stored on an incident Bastion creates: 40 hex digits, without the kit's prefix (as ever)."""
    return idempotency_marker(idempotency_key, length=MARKER_LENGTH).removeprefix(MARKER_PREFIX)


class StatuspageConnector(BaseConnector):
    manifest = MANIFEST

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.client is not None and self.client.auth is None and self.credentials.get("api_key"):
            self.client.auth = StatuspageKeyAuth(self.credentials["api_key"])

    @classmethod
    def classify_response(cls, response: Any, path: str) -> ApiError | None:
        return classify_statuspage_response(response, path)

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
        """`page`/`limit` paging (limit ≤ 100); Statuspage has no change filter, so every read is a full scan.

        One page per call (the position is stored between the sync engine's tasks), so no HttpClient.paginate_* generator.
        """
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
            return dict(
                BastionIncident(
                    external_id=str(record["id"]),
                    title=record.get("name", ""),
                    status=record.get("status", ""),
                    urgency=record.get("impact", ""),
                    service=", ".join(c.get("name", "") for c in record.get("components") or []),
                    created_at=record.get("created_at", ""),
                    url=record.get("shortlink", ""),
                )
            )
        return {"external_id": str(record["id"]), "name": record.get("name", ""), "status": record.get("status", "")}

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """create_incident payload → the `incident` object of POST /pages/{page_id}/incidents."""
        incident: dict[str, Any] = {"name": data["name"], "status": data.get("status") or "investigating"}
        for key in ("body", "impact_override", "component_ids", "components", "deliver_notifications"):
            if data.get(key) is not None:
                incident[key] = data[key]
        return incident

    # Acting
    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """known_new is not used: the marker search stays, so the requests are those of every other attempt."""
        if action == "create_incident":
            return self._create(payload, idempotency_key)
        if action == "update_incident":
            return self._update(payload)
        raise KeyError(f"statuspage has no action '{action}'")

    @staticmethod
    def _created(incident: Mapping[str, Any], *, created: bool) -> ActionResult:
        status = str(incident.get("status") or "open")
        tracked = TrackedObject(
            title=str(incident.get("name") or ""), status=status, is_done=status.lower() in DONE_STATUSES, url=incident.get("shortlink") or ""
        )
        return ActionResult(
            external_id=incident["id"],
            url=incident.get("shortlink", ""),
            data=dict(incident),
            created=created,
            tracked=tracked,
            link_text=tracked.title,
        )

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
        marker = incident_marker(idempotency_key)
        body = {"incident": {**self.from_bastion("incidents", payload), "metadata": {"bastion": {"idempotency_key": marker}}}}

        def find() -> ActionResult | None:
            existing = self._find(marker, payload["name"])
            return self._created(existing, created=False) if existing else None

        def send() -> ActionResult:
            # No client retry of the POST: Statuspage has no server-side dedup, so after a lost response create_once searches first.
            return self._created(self.client.post(f"pages/{self.page_id}/incidents", json=body, retry=False).json(), created=True)

        return find() or create_once(self.client, send, find, attempts=MAX_CREATE_ATTEMPTS, what="statuspage.incident")

    def _update(self, payload: Mapping[str, Any]) -> ActionResult:
        path = f"pages/{self.page_id}/incidents/{payload['incident_id']}"
        incident = {k: payload[k] for k in ("status", "body", "impact_override", "component_ids", "components", "name") if payload.get(k) is not None}

        def landed() -> ActionResult | None:
            current = self.client.get(path).json()
            latest = (current.get("incident_updates") or [{}])[0]
            if latest.get("status") == payload.get("status") and latest.get("body") == payload.get("body"):
                # The update already landed (a retry, or a lost response): PATCHing again would publish it twice.
                return ActionResult(external_id=current["id"], url=current.get("shortlink", ""), data=current, created=False)
            return None

        def send() -> ActionResult:
            updated = self.client.patch(path, json={"incident": incident}, retry=False).json()
            return ActionResult(external_id=updated["id"], url=updated.get("shortlink", ""), data=updated, created=False)

        return landed() or create_once(self.client, send, landed, attempts=MAX_CREATE_ATTEMPTS, what="statuspage.incident_update")
