"""Reading HubSpot (the spec's read hook): listing by id for full scans, search by modified date for increments, archived
objects as deletions; each deal page enriched with its contacts' and owner's emails."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import Page
from integrations.errors import ApiForbidden

logger = logging.getLogger(__name__)

SEARCH_RESULT_CEILING = 10_000  # HubSpot search refuses to page past this many results for one query
SEARCH_PAGE_MAX = 200
LIST_PAGE_MAX = 100
BATCH_MAX = 100
DEFAULT_MARKER_PROPERTY = "bastion_idempotency_key"
OBJECT_PROPERTIES: dict[str, list[str]] = {
    "deals": ["dealname", "amount", "closedate", "dealstage", "pipeline", "hubspot_owner_id", "deal_currency_code", "createdate", "hs_lastmodifieddate"],
    "contacts": ["email", "firstname", "lastname", "jobtitle", "phone", "company", "department", "hubspot_owner_id", "createdate", "lastmodifieddate"],
    "companies": ["name", "domain", "industry", "annualrevenue", "createdate", "hs_lastmodifieddate"],
}
MODIFIED_PROPERTY = {"deals": "hs_lastmodifieddate", "companies": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}
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


def ms(value: Any) -> int | None:
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


def iso(stamp: int) -> str:
    return datetime.fromtimestamp(stamp / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp % 1000:03d}Z"


def chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def after_of(body: dict[str, Any]) -> Any:
    return ((body.get("paging") or {}).get("next") or {}).get("after")


def page_size(connector: Any) -> int:
    return max(1, min(int(connector.config.get("page_size") or LIST_PAGE_MAX), LIST_PAGE_MAX))


def stage_map(connector: Any) -> dict[str, str]:
    configured = connector.config.get("stage_map") or {}
    if isinstance(configured, str):
        configured = json.loads(configured or "{}")
    return {**DEFAULT_STAGE_MAP, **{str(k).lower(): v for k, v in configured.items()}}


def marker_property(connector: Any) -> str:
    return str(connector.config.get("idempotency_property") or DEFAULT_MARKER_PROPERTY)


def properties(connector: Any, entity: str) -> list[str]:
    extra = (connector.config.get("extra_properties") or {}).get(entity, [])
    return list(dict.fromkeys(OBJECT_PROPERTIES[entity] + list(extra)))


def read(connector: Any, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
    """Full scans list objects by id; incremental runs search by modified date, then list archived objects for deletions.

    One page per call (the position is stored between the sync engine's tasks).
    """
    connector.manifest.entity(entity)
    if entity == "owners":
        return _read_owners(connector, page)
    position = dict(page) if page else ({"mode": "search", "since": ms(cursor), "from": ms(cursor)} if cursor else {"mode": "list"})
    if position["mode"] == "list":
        return _read_list(connector, entity, position)
    if position["mode"] == "search":
        return _read_search(connector, entity, position)
    return _read_archived(connector, entity, position)


def _read_owners(connector: Any, page: Any) -> Page:
    params: dict[str, Any] = {"limit": page_size(connector), "archived": "false"}
    if page:
        params["after"] = page
    body = connector.client.get("/crm/v3/owners", params=params).json()
    return Page(records=body.get("results", []), next_page=after_of(body), is_full_scan=True)


def _read_list(connector: Any, entity: str, position: dict[str, Any]) -> Page:
    params: dict[str, Any] = {"limit": page_size(connector), "properties": ",".join(properties(connector, entity)), "archived": "false"}
    if position.get("after"):
        params["after"] = position["after"]
    body = connector.client.get(f"/crm/v3/objects/{entity}", params=params).json()
    records = _enrich(connector, entity, body.get("results", []))
    max_seen = max([position.get("max_seen") or 0] + [ms(connector.updated_at(entity, r)) or 0 for r in records])
    after = after_of(body)
    if after:
        return Page(records=records, next_page={"mode": "list", "after": after, "max_seen": max_seen}, is_full_scan=True)
    # Listing is ordered by id, not date: the cursor moves only once the whole scan is stored.
    return Page(records=records, next_page=None, cursor=iso(max_seen) if max_seen else None, is_full_scan=True)


def _read_search(connector: Any, entity: str, position: dict[str, Any]) -> Page:
    modified = MODIFIED_PROPERTY[entity]
    since = position.get("since")
    body: dict[str, Any] = {
        "filterGroups": [{"filters": [{"propertyName": modified, "operator": "GTE", "value": str(since)}]}] if since is not None else [],
        "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
        "properties": properties(connector, entity),
        "limit": min(SEARCH_PAGE_MAX, max(page_size(connector), 1)),
    }
    if position.get("after"):
        body["after"] = position["after"]
    result = connector.client.post(f"/crm/v3/objects/{entity}/search", json=body).json()
    records = _enrich(connector, entity, result.get("results", []))
    # Results are in modified order and the filter is GTE, so each stored page may advance the cursor.
    last_ms = max([ms(connector.updated_at(entity, r)) or 0 for r in records], default=0)
    cursor = iso(last_ms) if last_ms else None
    after = after_of(result)
    ceiling = int(connector.config.get("search_result_ceiling") or SEARCH_RESULT_CEILING)
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


def _read_archived(connector: Any, entity: str, position: dict[str, Any]) -> Page:
    params: dict[str, Any] = {"limit": page_size(connector), "archived": "true", "properties": MODIFIED_PROPERTY[entity]}
    if position.get("after"):
        params["after"] = position["after"]
    body = connector.client.get(f"/crm/v3/objects/{entity}", params=params).json()
    since = position.get("from") or 0
    deleted = [str(r["id"]) for r in body.get("results", []) if (ms(r.get("archivedAt")) or 0) >= since]
    after = after_of(body)
    return Page(records=[], next_page={**position, "after": after} if after else None, is_full_scan=False, deleted_ids=deleted)


def _enrich(connector: Any, entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deals carry their associated contacts (as HubSpot's `associations` block) and, under `_bastion`, the emails Bastion needs."""
    if entity != "deals" or not records:
        return records
    contacts_by_deal: dict[str, list[str]] = {}
    for chunk in chunks([str(r["id"]) for r in records], BATCH_MAX):
        response = connector.client.post("/crm/v4/associations/deals/contacts/batch/read", json={"inputs": [{"id": i} for i in chunk]})
        for row in response.json().get("results", []):
            contacts_by_deal[str(row["from"]["id"])] = [str(t["toObjectId"]) for t in row.get("to", [])]
    emails = _contact_emails(connector, sorted({c for ids in contacts_by_deal.values() for c in ids}, key=lambda v: int(v) if v.isdigit() else 0))
    owners = _owners(connector)
    for record in records:
        contact_ids = contacts_by_deal.get(str(record["id"]), [])
        record["associations"] = {"contacts": {"results": [{"id": c, "type": "deal_to_contact"} for c in contact_ids]}}
        owner_id = str((record.get("properties") or {}).get("hubspot_owner_id") or "")
        record["_bastion"] = {"stakeholder_emails": [emails[c] for c in contact_ids if emails.get(c)], "owner_email": owners.get(owner_id, "")}
    return records


def _contact_emails(connector: Any, contact_ids: list[str]) -> dict[str, str]:
    emails: dict[str, str] = {}
    for chunk in chunks(contact_ids, BATCH_MAX):
        response = connector.client.post("/crm/v3/objects/contacts/batch/read", json={"properties": ["email"], "inputs": [{"id": i} for i in chunk]})
        for row in response.json().get("results", []):
            emails[str(row["id"])] = ((row.get("properties") or {}).get("email") or "").strip()
    return emails


def _owners(connector: Any) -> dict[str, str]:
    """Owner id → email, read once per connector instance."""
    cached = connector.__dict__.get("_owner_emails")
    if cached is not None:
        return cached
    owners: dict[str, str] = {}
    try:
        for items, _response in connector.client.paginate_cursor(
            "/crm/v3/owners", items_key="results", cursor_param="after", params={"limit": 100}, next_cursor=after_of
        ):
            owners.update({str(o["id"]): o.get("email") or "" for o in items})
    except ApiForbidden as error:
        # Without crm.objects.owners.read deals still import, just without owner emails.
        logger.warning("hubspot.owners.forbidden", extra={"error": str(error)})
    connector.__dict__["_owner_emails"] = owners
    return owners
