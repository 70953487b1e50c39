"""Acting in Salesforce: records created once (upsert by external id, else a marker field searched first) and updated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from integrations.connectors.base import ActionResult, TrackedObject
from integrations.connectors.kit.once import create_once
from integrations.connectors.salesforce.client import SalesforceInstance, soql_string
from integrations.errors import ApiBadRequest, ApiError

DEFAULT_MARKER_FIELD = "Bastion_Key__c"
SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
CREATE_ATTEMPTS = 3


class SalesforceActions(SalesforceInstance):
    """create_record and update_record."""

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """known_new is not used: the marker search stays, so every attempt sends the same requests."""
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
            return self._record(sobject, str(body["id"]), data=body, created=response.status_code == 201)
        return self._create_once(sobject, dict(fields), idempotency_key)

    def record_url(self, sobject: str, record_id: str) -> str:
        return f"{self.instance_url}/lightning/r/{sobject}/{record_id}/view"

    def _record(self, sobject: str, record_id: str, *, data: Mapping[str, Any] | None = None, created: bool) -> ActionResult:
        url = self.record_url(sobject, record_id)
        return ActionResult(external_id=record_id, url=url, data=dict(data or {}), created=created, tracked=TrackedObject(url=url))

    def _external_id_field(self, sobject: str) -> str:
        configured = self.config.get("external_id_field")
        if isinstance(configured, Mapping):
            return str(configured.get(sobject) or "")
        return str(configured or "")

    def _create_once(self, sobject: str, fields: dict[str, Any], key: str) -> ActionResult:
        """Search by the marker field, create only when absent; after an ambiguous failure, search again before re-posting."""
        marker = str(self.config.get("marker_field") or DEFAULT_MARKER_FIELD)
        fields = {**fields, marker: key}

        def find() -> ActionResult | None:
            existing = self._find_by_marker(sobject, marker, key)
            return self._record(sobject, existing, created=False) if existing else None

        def send() -> ActionResult:
            try:
                # retry=False: a blind retry of a POST whose answer was lost would create a second record.
                body = self.client.post(self._url(f"/sobjects/{sobject}/"), json=fields, retry=False).json()
            except ApiError as error:
                # A unique marker field refused a second copy: the first one landed.
                existing = find() if error.vendor_code == "DUPLICATE_VALUE" else None
                if existing is None:
                    raise
                return existing
            return self._record(sobject, str(body["id"]), data=body, created=True)

        return find() or create_once(self.client, send, find, attempts=CREATE_ATTEMPTS, what="salesforce.record")

    def _find_by_marker(self, sobject: str, marker: str, key: str) -> str | None:
        soql = f"SELECT Id FROM {sobject} WHERE {marker} = {soql_string(key)} LIMIT 1"
        records = self._get("/query", params={"q": soql}).json().get("records", [])
        return str(records[0]["Id"]) if records else None
