"""Reading Salesforce: SOQL with nextRecordsUrl paging, SystemModstamp increments with queryAll deletions, describe, transformers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import FieldInfo, Page
from integrations.connectors.entities import BastionPerson
from integrations.connectors.salesforce.client import SalesforceInstance, soql_datetime
from integrations.errors import ApiBadRequest

DEFAULT_BATCH_SIZE = 2000
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


def split_emails(value: str | None) -> list[str]:
    """Team__c holds emails separated by semicolons, commas or new lines."""
    seen: list[str] = []
    for part in re.split(r"[;,\n]", value or ""):
        email = part.strip()
        if email and email.lower() not in (s.lower() for s in seen):
            seen.append(email)
    return seen


class SalesforceReader(SalesforceInstance):
    """Entities read page by page (one page per call: the position is stored between the sync engine's tasks)."""

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
        """Full scan: /query. Incremental: /queryAll from the cursor, so deleted rows (IsDeleted) arrive as explicit deletions.

        One page per call, its nextRecordsUrl stored between the sync engine's tasks: not HttpClient.paginate_next_url.
        """
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
            # The deal keys the scenario data models read (dealName, value, closeDate, stakeholders), not BastionDeal's.
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
            return dict(
                BastionPerson(
                    external_id=str(record["Id"]),
                    email=(record.get("Email") or "").strip(),
                    name=record.get("Name") or f"{given} {family}".strip(),
                    given_name=given,
                    family_name=family,
                    title=record.get("Title") or "",
                    department=record.get("Department") or "",
                    phone=record.get("Phone") or "",
                    manager_external_id=str(record.get("ManagerId" if entity == "users" else "ReportsToId") or ""),
                    groups=[],
                    is_active=bool(record.get("IsActive", True)),
                    username=record.get("Username") or "",
                )
            )
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
