"""Acting in HubSpot: deal updates, and notes and tasks created once (a marker property searched before creating)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import ActionResult
from integrations.connectors.hubspot.client import BATCH_MAX, HubSpotBase, _chunks, _iso, _ms
from integrations.connectors.kit.once import create_once
from integrations.errors import ApiBadRequest

# HubSpot-defined association type ids used when Bastion creates activities.
NOTE_TO = {"deals": 214, "contacts": 202}
TASK_TO = {"deals": 216, "contacts": 204}
CREATE_ATTEMPTS = 3


class HubSpotActions(HubSpotBase):
    """update_deal, create_note and create_task."""

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """known_new is not used: the marker search stays, so every attempt sends the same requests."""
        self.manifest.action(action)
        if action == "update_deal":
            return self._update_deal(payload)
        if action == "create_note":
            return self._create_note(payload, idempotency_key)
        return self._create_task(payload, idempotency_key)

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
        properties = {**properties, self.marker_property: key}

        def find() -> ActionResult | None:
            existing = self._find_by_marker(object_type, key, anchor)
            return ActionResult(external_id=existing, url=self._record_url(type_id, existing), created=False) if existing else None

        def send() -> ActionResult:
            # retry=False: a blind client retry of a POST whose answer was lost would create a duplicate.
            created = self.client.post(f"/crm/v3/objects/{object_type}", json={"properties": properties, "associations": associations}, retry=False).json()
            return ActionResult(external_id=str(created["id"]), url=self._record_url(type_id, str(created["id"])), data=created, created=True)

        return find() or create_once(self.client, send, find, attempts=CREATE_ATTEMPTS, what=f"hubspot.{object_type}")

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
