"""Reading HubSpot: listing by id for full scans, search by modified date for increments, archived objects as deletions."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import FieldInfo, Page
from integrations.connectors.entities import BastionPerson
from integrations.connectors.hubspot.client import (
    BATCH_MAX,
    MODIFIED_PROPERTY,
    SEARCH_PAGE_MAX,
    SEARCH_RESULT_CEILING,
    UNMAPPED_STAGE,
    HubSpotBase,
    _chunks,
    _iso,
    _ms,
)
from integrations.errors import ApiBadRequest, ApiForbidden

logger = logging.getLogger(__name__)

FIELD_TYPES = {
    "number": "number",
    "datetime": "datetime",
    "date": "date",
    "bool": "boolean",
    "enumeration": "string",
    "string": "string",
    "phone_number": "string",
}


class HubSpotReader(HubSpotBase):
    """Entities read one page per call (the position is stored between the sync engine's tasks)."""

    _owner_emails: dict[str, str] | None

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

    def map_stage(self, stage: str | None) -> str:
        return self.stage_map.get((stage or "").lower(), UNMAPPED_STAGE)

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "owners":
            given, family = record.get("firstName") or "", record.get("lastName") or ""
            return dict(
                BastionPerson(
                    external_id=str(record["id"]),
                    email=(record.get("email") or "").strip(),
                    name=f"{given} {family}".strip(),
                    given_name=given,
                    family_name=family,
                    title="",
                    department="",
                    phone="",
                    manager_external_id="",
                    groups=[t.get("name", "") for t in record.get("teams") or [] if t.get("name")],
                    is_active=not record.get("archived", False),
                    username=(record.get("email") or "").strip(),
                )
            )
        props = record.get("properties") or {}
        if entity == "contacts":
            given, family = props.get("firstname") or "", props.get("lastname") or ""
            return dict(
                BastionPerson(
                    external_id=str(record["id"]),
                    email=(props.get("email") or "").strip(),
                    name=f"{given} {family}".strip(),
                    given_name=given,
                    family_name=family,
                    title=props.get("jobtitle") or "",
                    department=props.get("department") or "",
                    phone=props.get("phone") or "",
                    manager_external_id="",
                    groups=[],
                    is_active=not record.get("archived", False),
                    username="",
                )
            )
        if entity == "deals":
            # The deal keys the scenario data models read (dealName, value, closeDate, stakeholders), not BastionDeal's.
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
