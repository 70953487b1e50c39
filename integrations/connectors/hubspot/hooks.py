"""What HubSpot's spec.yaml cannot say: its error envelope and rate budget, the portal and OAuth introspection, the read
state machine (reading.py), the stage map, notes and tasks created once, and v3 signatures over a partly decoded URI."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from integrations.connectors.base import ActionResult, ConnectionTest, WebhookEvent, WebhookRequest
from integrations.connectors.hubspot import reading
from integrations.connectors.hubspot.reading import BATCH_MAX, UNMAPPED_STAGE, after_of, chunks, iso, marker_property, ms, stage_map
from integrations.connectors.kit.once import create_once
from integrations.connectors.kit.signatures import check_window, epoch_seconds, hmac_digest, require_header, verify_hmac
from integrations.errors import ApiBadRequest, ApiError, WebhookRejected
from integrations.http import classify_status, generic_error_message, response_json

logger = logging.getLogger(__name__)

read = reading.read  # the spec's read hook: reading.py's state machine

RATE_HEADERS = (
    ("X-HubSpot-RateLimit-Daily", "daily_limit"),
    ("X-HubSpot-RateLimit-Daily-Remaining", "daily_remaining"),
    ("X-HubSpot-RateLimit-Max", "interval_max"),
    ("X-HubSpot-RateLimit-Remaining", "interval_remaining"),
)
# HubSpot-defined association type ids used when Bastion creates activities.
NOTE_TO = {"deals": 214, "contacts": 202}
TASK_TO = {"deals": 216, "contacts": 204}
CREATE_ATTEMPTS = 3
WEBHOOK_OBJECTS = {"deal": "deals", "contact": "contacts", "company": "companies", "0-3": "deals", "0-1": "contacts", "0-2": "companies"}
# HubSpot signs the URI with these characters decoded (request-validation docs, v3).
URI_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


# ---- the vendor's answers ---------------------------------------------------------------------------------------------


def classify_response(cls: Any, response: requests.Response, path: str) -> ApiError | None:
    """HubSpot's category (VALIDATION_ERROR, OBJECT_NOT_FOUND, RATE_LIMITS…) becomes the vendor_code; the status decides the class."""
    if 200 <= response.status_code < 400:
        return None
    body = response_json(response)
    if isinstance(body, dict) and "category" in body and "message" in body:
        message, code = str(body["message"]), str(body.get("category", ""))
    else:
        message, code = generic_error_message(body)
    return classify_status(response, path, message=message, code=code)


def observe_response(connector: Any, response: requests.Response) -> None:
    """Keep HubSpot's daily and burst budget from every response (errors included) in connector.last_rate_limit."""
    budget = connector.__dict__.setdefault("last_rate_limit", {})
    for header, key in RATE_HEADERS:
        value = response.headers.get(header)
        if value and value.isdigit():
            budget[key] = int(value)


def test_connection(connector: Any) -> ConnectionTest:
    details = connector.client.get("/account-info/v3/details").json()
    portal_id = str(details.get("portalId", ""))
    connector.__dict__["_portal_id"] = portal_id
    scopes: list[str] = []
    identity = f"HubSpot portal {portal_id}"
    token = connector.credentials.get("access_token")
    if token and connector.credentials.get("refresh_token"):
        # OAuth tokens can be introspected for their granted scopes; private-app tokens cannot.
        info = connector.client.get(f"/oauth/v1/access-tokens/{token}").json()
        scopes = list(info.get("scopes") or [])
        identity = f"{info.get('user', '')} @ {info.get('hub_domain', portal_id)}".strip()
    return ConnectionTest(
        ok=bool(portal_id),
        identity=identity,
        scopes=scopes,
        account_id=portal_id,
        detail={k: details.get(k) for k in ("timeZone", "companyCurrency", "dataHostingLocation", "uiDomain", "accountType")},
    )


# ---- transforms -------------------------------------------------------------------------------------------------------


def deal_to_bastion(connector: Any, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The deal keys the scenario data models read (dealName, value, closeDate, stakeholders), not BastionDeal's."""
    props = record.get("properties") or {}
    extra = record.get("_bastion") or {}
    amount = props.get("amount")
    return {
        "external_id": str(record["id"]),
        "dealName": props.get("dealname") or "",
        "value": float(amount) if amount not in (None, "") else None,
        "currency": props.get("deal_currency_code") or connector.config.get("default_currency") or "USD",
        "closeDate": (props.get("closedate") or "")[:10],
        "stage": stage_map(connector).get((props.get("dealstage") or "").lower(), UNMAPPED_STAGE),
        "owner_email": extra.get("owner_email", ""),
        "stakeholders": list(extra.get("stakeholder_emails", [])),
    }


CONTACT_PROPERTIES = {"email": "email", "given_name": "firstname", "family_name": "lastname", "title": "jobtitle", "phone": "phone", "department": "department"}


def from_bastion(connector: Any, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Bastion shape → HubSpot `properties` (only the keys given)."""
    if entity == "contacts":
        return {vendor: data[key] for key, vendor in CONTACT_PROPERTIES.items() if key in data}
    if entity != "deals":
        raise KeyError(f"hubspot cannot write entity '{entity}'")
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
        reverse = {bastion: vendor for vendor, bastion in reversed(list(stage_map(connector).items()))}
        if data["stage"] not in reverse:
            raise ApiBadRequest(f"No HubSpot deal stage is mapped to Bastion stage '{data['stage']}'.")
        properties["dealstage"] = reverse[data["stage"]]
    return properties


# ---- actions ----------------------------------------------------------------------------------------------------------


def _record_url(connector: Any, object_type_id: str, object_id: str) -> str:
    portal = connector.config.get("portal_id") or connector.__dict__.get("_portal_id", "")
    return f"https://app.hubspot.com/contacts/{portal}/record/{object_type_id}/{object_id}" if portal else ""


def perform(connector: Any, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
    """update_deal, create_note, create_task; known_new is not used: the marker search stays, so every attempt sends the same requests."""
    connector.manifest.action(action)
    if action == "update_deal":
        return _update_deal(connector, payload)
    if action == "create_note":
        return _create_note(connector, payload, idempotency_key)
    return _create_task(connector, payload, idempotency_key)


def _update_deal(connector: Any, payload: Mapping[str, Any]) -> ActionResult:
    deal_id = str(payload.get("deal_id") or "")
    properties = payload.get("properties")
    if not deal_id or not isinstance(properties, Mapping) or not properties:
        raise ApiBadRequest("update_deal needs deal_id and a non-empty properties object.")
    record = connector.client.patch(f"/crm/v3/objects/deals/{deal_id}", json={"properties": dict(properties)}).json()
    return ActionResult(external_id=deal_id, url=_record_url(connector, "0-3", deal_id), data=record, created=False)


def _create_note(connector: Any, payload: Mapping[str, Any], key: str) -> ActionResult:
    body = str(payload.get("body") or "")
    if not body:
        raise ApiBadRequest("create_note needs a body.")
    anchors = [(t, str(payload[f])) for t, f in (("deals", "deal_id"), ("contacts", "contact_id")) if payload.get(f)]
    properties = {"hs_note_body": body, "hs_timestamp": iso(int(time.time() * 1000))}
    associations = [{"to": {"id": i}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO[t]}]} for t, i in anchors]
    return _create_once(connector, "notes", "0-46", properties, associations, key, anchors[0] if anchors else None)


def _create_task(connector: Any, payload: Mapping[str, Any], key: str) -> ActionResult:
    subject = str(payload.get("subject") or "")
    if not subject:
        raise ApiBadRequest("create_task needs a subject.")
    due = payload.get("due")
    due_ms = ms(due) if due else int(time.time() * 1000)
    if due_ms is None:
        raise ApiBadRequest(f"create_task: due {due!r} is not an ISO 8601 date-time.")
    properties: dict[str, Any] = {
        "hs_task_subject": subject,
        "hs_task_body": str(payload.get("body") or ""),
        "hs_task_status": "NOT_STARTED",
        "hs_timestamp": iso(due_ms),
    }
    if payload.get("owner_id"):
        properties["hubspot_owner_id"] = str(payload["owner_id"])
    anchor = ("deals", str(payload["deal_id"])) if payload.get("deal_id") else None
    associations = [{"to": {"id": anchor[1]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TASK_TO["deals"]}]}] if anchor else []
    return _create_once(connector, "tasks", "0-27", properties, associations, key, anchor)


def _create_once(
    connector: Any, object_type: str, type_id: str, properties: dict[str, Any], associations: list[dict], key: str, anchor: tuple[str, str] | None
) -> ActionResult:
    """Search for the marker, create only when absent; after an ambiguous failure look again before re-posting."""
    if not key:
        raise ApiBadRequest("An idempotency key is required.")
    properties = {**properties, marker_property(connector): key}

    def find() -> ActionResult | None:
        existing = _find_by_marker(connector, object_type, key, anchor)
        return ActionResult(external_id=existing, url=_record_url(connector, type_id, existing), created=False) if existing else None

    def send() -> ActionResult:
        # retry=False: a blind client retry of a POST whose answer was lost would create a duplicate.
        body = {"properties": properties, "associations": associations}
        created = connector.client.post(f"/crm/v3/objects/{object_type}", json=body, retry=False).json()
        return ActionResult(external_id=str(created["id"]), url=_record_url(connector, type_id, str(created["id"])), data=created, created=True)

    return find() or create_once(connector.client, send, find, attempts=CREATE_ATTEMPTS, what=f"hubspot.{object_type}")


def _find_by_marker(connector: Any, object_type: str, key: str, anchor: tuple[str, str] | None) -> str | None:
    """Through the anchor's associations (read-after-write consistent) when there is one, else the search index."""
    marker = marker_property(connector)
    if anchor:
        from_type, from_id = anchor
        ids: list[str] = []
        for items, _response in connector.client.paginate_cursor(
            f"/crm/v4/objects/{from_type}/{from_id}/associations/{object_type}",
            items_key="results",
            cursor_param="after",
            params={"limit": 500},
            next_cursor=after_of,
        ):
            ids.extend(str(i["toObjectId"]) for i in items)
        for chunk in chunks(ids, BATCH_MAX):
            body = {"properties": [marker], "inputs": [{"id": i} for i in chunk]}
            for row in connector.client.post(f"/crm/v3/objects/{object_type}/batch/read", json=body).json().get("results", []):
                if (row.get("properties") or {}).get(marker) == key:
                    return str(row["id"])
        return None
    body = {"filterGroups": [{"filters": [{"propertyName": marker, "operator": "EQ", "value": key}]}], "properties": [marker], "limit": 1}
    results = connector.client.post(f"/crm/v3/objects/{object_type}/search", json=body).json().get("results", [])
    return str(results[0]["id"]) if results else None


# ---- webhooks ---------------------------------------------------------------------------------------------------------


def _signed_message(method: str, uri: str, body: bytes, timestamp: str) -> bytes:
    return method.upper().encode() + uri.encode() + body + timestamp.encode()


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client secret, method + URI + raw body + timestamp)), as HubSpot computes X-HubSpot-Signature-v3."""
    return hmac_digest(secret, _signed_message(method, uri, body, timestamp), encoding="base64")


def _decoded_uri(uri: str) -> str:
    for encoded, char in URI_DECODE.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def verify_webhook(cls: Any, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
    """v3 deliveries, verified with the app's client secret."""
    signature = require_header(request.header("X-HubSpot-Signature-v3"), "X-HubSpot-Signature-v3", "HubSpot")
    timestamp = require_header(request.header("X-HubSpot-Request-Timestamp"), "X-HubSpot-Request-Timestamp", "HubSpot")
    if not timestamp.isdigit():
        raise WebhookRejected(400, "bad_timestamp", "X-HubSpot-Request-Timestamp must be milliseconds since the epoch.")
    # Behind a proxy the URL HubSpot signed may differ from the one we see: config["webhook_url"] names it.
    uris = [_decoded_uri(u) for u in dict.fromkeys([request.url, (config or {}).get("webhook_url") or request.url])]
    rejected: WebhookRejected | None = None
    for uri in uris:
        try:
            verify_hmac(signature, secret=secret, message=_signed_message(request.method, uri, request.body, timestamp), encoding="base64", vendor="HubSpot")
            break
        except WebhookRejected as exc:
            rejected = exc
    else:
        assert rejected is not None
        raise rejected
    check_window(epoch_seconds(timestamp, unit="ms"), now=request.received_at.timestamp(), vendor="HubSpot")


def parse_webhook(cls: Any, request: WebhookRequest) -> list[WebhookEvent]:
    """A JSON array of events; merges also delete the records merged away; types Bastion does not store are skipped."""
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
        occurred = event.get("occurredAt")
        parsed.append(
            WebhookEvent(
                delivery_id=str(event["eventId"]),
                event_type=subscription,
                entity=entity,
                external_id=str(event["objectId"]),
                action="delete" if change == "deletion" else "sync",
                record=None,
                occurred_at=datetime.fromtimestamp(int(occurred) / 1000, tz=UTC) if occurred else None,
            )
        )
        for merged in event.get("mergedObjectIds") or []:
            if str(merged) != str(event.get("primaryObjectId", event["objectId"])):
                parsed.append(
                    WebhookEvent(delivery_id=f"{event['eventId']}:{merged}", event_type=subscription, entity=entity, external_id=str(merged), action="delete")
                )
    return parsed
