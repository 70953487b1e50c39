"""HubSpot CRM v3 stand-in: objects, search, properties, owners, v4 associations, OAuth and signed v3 webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Blueprint, Response, current_app, jsonify, request

from sandbox.oauth import OAuthProfile, bearer_token, oauth_blueprint
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "hubspot"
PORTAL_ID = 4242424
APP_ID = 777001
DAILY_LIMIT = 250000
OBJECT_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets", "0-46": "notes", "0-27": "tasks"}
OBJECT_TYPES = ("contacts", "companies", "deals", "notes", "tasks")
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "notes": "note", "tasks": "task"}
MODIFIED_PROPERTY = {"contacts": "lastmodifieddate"}  # every other object uses hs_lastmodifieddate
READ_SCOPES = {
    "deals": "crm.objects.deals.read",
    "contacts": "crm.objects.contacts.read",
    "companies": "crm.objects.companies.read",
}
WRITE_SCOPES = {"deals": "crm.objects.deals.write"}
# HubSpot-defined association type ids (from → to).
ASSOCIATION_TYPES = {
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("notes", "deals"): 214,
    ("deals", "notes"): 213,
    ("notes", "contacts"): 202,
    ("contacts", "notes"): 201,
    ("tasks", "deals"): 216,
    ("deals", "tasks"): 215,
    ("tasks", "contacts"): 204,
    ("contacts", "tasks"): 203,
}
DEFAULT_PROPERTIES = {
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "deals": ["amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id", "pipeline"],
    "notes": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
    "tasks": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
}


def _prop(name: str, label: str, type_: str = "string", field_type: str = "text", *, custom: bool = False, options: list[str] | None = None) -> dict:
    definition: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "groupName": "dealinformation",
        "description": "",
        "options": [{"label": o, "value": o, "displayOrder": i, "hidden": False} for i, o in enumerate(options or [])],
        "displayOrder": -1,
        "hidden": False,
        "hasUniqueValue": False,
        "formField": True,
        "calculated": False,
        "externalOptions": False,
        "modificationMetadata": {"archivable": custom, "readOnlyDefinition": not custom, "readOnlyValue": False},
        "createdAt": "2024-01-02T09:00:00Z",
        "updatedAt": "2024-01-02T09:00:00Z",
    }
    if not custom:
        definition["hubspotDefined"] = True  # custom properties omit the flag, as HubSpot does
    return definition


STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"]
PROPERTY_DEFINITIONS: dict[str, list[dict]] = {
    "deals": [
        _prop("dealname", "Deal Name"),
        _prop("amount", "Amount", "number", "number"),
        _prop("closedate", "Close Date", "datetime", "date"),
        _prop("dealstage", "Deal Stage", "enumeration", "radio", options=STAGES),
        _prop("pipeline", "Pipeline", "enumeration", "select", options=["default"]),
        _prop("hubspot_owner_id", "Deal owner", "enumeration", "select"),
        _prop("deal_currency_code", "Currency", "enumeration", "select", options=["USD", "EUR", "GBP"]),
        _prop("description", "Deal Description", "string", "textarea"),
        _prop("createdate", "Create Date", "datetime", "date"),
        _prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
        _prop("hs_object_id", "Record ID", "number", "number"),
        _prop("bastion_deal_type", "Deal type (M&A)", "enumeration", "select", custom=True, options=["new_business", "renewal", "acquisition"]),
        _prop("bastion_board_sponsor", "Board sponsor email", custom=True),
    ],
    "contacts": [
        _prop("email", "Email"),
        _prop("firstname", "First Name"),
        _prop("lastname", "Last Name"),
        _prop("jobtitle", "Job Title"),
        _prop("phone", "Phone Number"),
        _prop("company", "Company Name"),
        _prop("hubspot_owner_id", "Contact owner", "enumeration", "select"),
        _prop("createdate", "Create Date", "datetime", "date"),
        _prop("lastmodifieddate", "Last Modified Date", "datetime", "date"),
        _prop("hs_object_id", "Record ID", "number", "number"),
        _prop("department", "Department", custom=True),
    ],
    "companies": [
        _prop("name", "Name"),
        _prop("domain", "Company Domain Name"),
        _prop("industry", "Industry", "enumeration", "select"),
        _prop("annualrevenue", "Annual Revenue", "number", "number"),
        _prop("createdate", "Create Date", "datetime", "date"),
        _prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
        _prop("hs_object_id", "Record ID", "number", "number"),
    ],
    "notes": [
        _prop("hs_note_body", "Note body", "string", "html"),
        _prop("hs_timestamp", "Activity date", "datetime", "date"),
        _prop("hubspot_owner_id", "Activity assigned to", "enumeration", "select"),
        _prop("hs_createdate", "Create date", "datetime", "date"),
        _prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
        _prop("hs_object_id", "Record ID", "number", "number"),
        _prop("bastion_idempotency_key", "Bastion idempotency key", custom=True),
    ],
    "tasks": [
        _prop("hs_task_subject", "Task Title"),
        _prop("hs_task_body", "Notes", "string", "html"),
        _prop("hs_task_status", "Task Status", "enumeration", "select", options=["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]),
        _prop("hs_task_priority", "Priority", "enumeration", "select", options=["LOW", "MEDIUM", "HIGH"]),
        _prop("hs_timestamp", "Due date", "datetime", "date"),
        _prop("hubspot_owner_id", "Assigned to", "enumeration", "select"),
        _prop("hs_createdate", "Create date", "datetime", "date"),
        _prop("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
        _prop("hs_object_id", "Record ID", "number", "number"),
        _prop("bastion_idempotency_key", "Bastion idempotency key", custom=True),
    ],
}


# ---------------------------------------------------------------- helpers


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms % 1000):03d}Z"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _to_ms(value: Any) -> float | None:
    """Datetime property values and filter values come as ms epoch strings or ISO 8601."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return float(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp() * 1000


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}
    response = jsonify(body)
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    response = _error(
        429,
        "You have reached your ten_secondly_rolling limit.",
        "RATE_LIMITS",
        errorType="RATE_LIMIT",
        policyName="TEN_SECONDLY_ROLLING",
        groupName="publicapi:private-app-api-calls:" + str(PORTAL_ID),
    )
    response.headers["Retry-After"] = str(retry_after)
    response.headers["X-HubSpot-RateLimit-Remaining"] = "0"
    return response


def _settings() -> dict[str, Any]:
    return STORE.collection(VENDOR, "_settings")  # type: ignore[return-value]


def _objects(object_type: str):
    return STORE.collection(VENDOR, object_type)


def _object_type(raw: str) -> str | None:
    name = OBJECT_IDS.get(raw, raw)
    return name if name in OBJECT_TYPES else None


def _modified_property(object_type: str) -> str:
    return MODIFIED_PROPERTY.get(object_type, "hs_lastmodifieddate")


def _property_type(object_type: str, name: str) -> str:
    for definition in PROPERTY_DEFINITIONS.get(object_type, []):
        if definition["name"] == name:
            return definition["type"]
    return "string"


def _new_object(object_type: str, object_id: str, properties: dict[str, Any], created_ms: int) -> dict:
    created = _iso(created_ms)
    props = {k: (None if v is None else str(v)) for k, v in properties.items()}
    props["hs_object_id"] = object_id
    props["hs_createdate" if object_type in ("notes", "tasks") else "createdate"] = created
    props[_modified_property(object_type)] = created
    obj = {"id": object_id, "properties": props, "createdAt": created, "updatedAt": created, "archived": False}
    _objects(object_type)[object_id] = obj
    return obj


def _touch(object_type: str, obj: dict, ms: int | None = None) -> None:
    stamp = _iso(ms or _now_ms())
    obj["updatedAt"] = stamp
    obj["properties"][_modified_property(object_type)] = stamp


def _associate(from_type: str, from_id: str, to_type: str, to_id: str) -> None:
    pairs = STORE.collection(VENDOR, "_associations")
    pairs[f"{from_type}:{from_id}:{to_type}:{to_id}"] = True
    pairs[f"{to_type}:{to_id}:{from_type}:{from_id}"] = True


def _associated(from_type: str, from_id: str, to_type: str) -> list[str]:
    prefix = f"{from_type}:{from_id}:{to_type}:"
    live = _objects(to_type)
    ids = [key[len(prefix) :] for key in STORE.collection(VENDOR, "_associations") if key.startswith(prefix)]
    return sorted((i for i in ids if i in live and not live[i]["archived"]), key=int)


def _render(object_type: str, obj: dict, properties: list[str] | None, associations: list[str] | None = None) -> dict:
    wanted = properties if properties else DEFAULT_PROPERTIES[object_type]
    always = ["hs_object_id", _modified_property(object_type), "hs_createdate" if object_type in ("notes", "tasks") else "createdate"]
    rendered = {
        "id": obj["id"],
        # Requested properties come back (null when unset) plus the id and timestamps HubSpot always adds.
        "properties": {name: obj["properties"].get(name) for name in [*wanted, *always] if name in obj["properties"] or name in wanted},
        "createdAt": obj["createdAt"],
        "updatedAt": obj["updatedAt"],
        "archived": obj["archived"],
    }
    if obj["archived"]:
        rendered["archivedAt"] = obj.get("archivedAt")
    for to_type in associations or []:
        to_type = _object_type(to_type) or to_type
        ids = _associated(object_type, obj["id"], to_type)
        if ids:
            kind = f"{SINGULAR[object_type]}_to_{SINGULAR.get(to_type, to_type)}"
            rendered.setdefault("associations", {})[to_type] = {"results": [{"id": i, "type": kind} for i in ids]}
    return rendered


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _validate_properties(object_type: str, properties: dict[str, Any]) -> Response | None:
    known = {d["name"] for d in PROPERTY_DEFINITIONS[object_type]}
    bad = [name for name in properties if name not in known]
    if bad:
        details = [{"isValid": False, "message": f'Property "{name}" does not exist', "error": "PROPERTY_DOESNT_EXIST", "name": name} for name in bad]
        return _error(400, f"Property values were not valid: {json.dumps(details)}", "VALIDATION_ERROR")
    return None


def _matches(object_type: str, obj: dict, flt: dict) -> bool:
    name, operator = flt.get("propertyName"), flt.get("operator", "EQ")
    actual = obj["properties"].get(name)
    if operator == "HAS_PROPERTY":
        return actual not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return actual in (None, "")
    if actual in (None, ""):
        return operator in ("NEQ", "NOT_IN")
    kind = _property_type(object_type, name)

    def coerce(value: Any) -> Any:
        if kind in ("datetime", "date"):
            return _to_ms(value)
        if kind == "number":
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
        return str(value).lower()

    left = coerce(actual)
    if operator in ("IN", "NOT_IN"):
        values = [coerce(v) for v in flt.get("values") or []]
        return (left in values) == (operator == "IN")
    if operator == "CONTAINS_TOKEN":
        token = str(flt.get("value", "")).lower().strip("*")
        return token in str(actual).lower()
    if operator == "NOT_CONTAINS_TOKEN":
        return str(flt.get("value", "")).lower().strip("*") not in str(actual).lower()
    right = coerce(flt.get("value"))
    if operator == "BETWEEN":
        high = coerce(flt.get("highValue"))
        return left is not None and right is not None and high is not None and right <= left <= high
    if left is None or right is None:
        return False
    return {
        "EQ": left == right,
        "NEQ": left != right,
        "LT": left < right,
        "LTE": left <= right,
        "GT": left > right,
        "GTE": left >= right,
    }.get(operator, False)


# ---------------------------------------------------------------- seed


def seed() -> None:
    """Twenty shared people as contacts, five owners, five companies, a dozen deals (one over $10M)."""
    base = int(datetime(2025, 1, 6, 9, 0, tzinfo=UTC).timestamp() * 1000)
    hour = 3600 * 1000
    staff = people()
    by_email = {p["email"]: p for p in staff}
    owners = STORE.collection(VENDOR, "owners")
    owner_people = ["mateo.lopez@acme.example", "ava.chen@acme.example", "grace.obrien@acme.example", "isabel.costa@acme.example", "daniel.kim@acme.example"]
    for index, email in enumerate(owner_people):
        person = by_email[email]
        owner_id = str(70100 + index)
        owners[owner_id] = {
            "id": owner_id,
            "email": email,
            "type": "PERSON",
            "firstName": person["given_name"],
            "lastName": person["family_name"],
            "userId": 9100 + index,
            "userIdIncludingInactive": 9100 + index,
            "createdAt": _iso(base - 90 * 24 * hour),
            "updatedAt": _iso(base - 30 * 24 * hour),
            "archived": False,
            "teams": [{"id": "501", "name": "Corporate Development", "primary": True}],
        }
    contact_ids: dict[str, str] = {}
    for person in staff:
        contact_id = str(501 + person["index"])
        contact_ids[person["email"]] = contact_id
        _new_object(
            "contacts",
            contact_id,
            {
                "email": person["email"],
                "firstname": person["given_name"],
                "lastname": person["family_name"],
                "jobtitle": person["title"],
                "phone": f"+1 415 555 01{person['index']:02d}",
                "company": "Acme Corp",
                "department": person["department"],
            },
            base + person["index"] * hour,
        )
    companies = [
        ("301", "Northwind Analytics", "northwind.example", "COMPUTER_SOFTWARE"),
        ("302", "Globex Holdings", "globex.example", "FINANCIAL_SERVICES"),
        ("303", "Initech", "initech.example", "INFORMATION_TECHNOLOGY_AND_SERVICES"),
        ("304", "Umbrella Labs", "umbrella.example", "BIOTECHNOLOGY"),
        ("305", "Stark Logistics", "stark-logistics.example", "LOGISTICS_AND_SUPPLY_CHAIN"),
    ]
    for offset, (company_id, name, domain, industry) in enumerate(companies):
        _new_object("companies", company_id, {"name": name, "domain": domain, "industry": industry}, base + (20 + offset) * hour)
    deals = [
        # (name, amount, close, stage, owner, company, type, contacts)
        (
            "Project Falcon: acquisition of Northwind Analytics",
            "12500000",
            "2025-09-30",
            "contractsent",
            1,
            "301",
            "acquisition",
            ["ava.chen@acme.example", "grace.obrien@acme.example", "priya.raman@acme.example", "mateo.lopez@acme.example"],
        ),
        (
            "Globex platform expansion",
            "480000",
            "2025-06-30",
            "presentationscheduled",
            0,
            "302",
            "new_business",
            ["mateo.lopez@acme.example", "lucas.silva@acme.example"],
        ),
        ("Initech renewal FY25", "125000", "2025-04-15", "closedwon", 0, "303", "renewal", ["daniel.kim@acme.example"]),
        (
            "Umbrella Labs security suite",
            "260000",
            "2025-07-31",
            "qualifiedtobuy",
            4,
            "304",
            "new_business",
            ["marcus.okafor@acme.example", "mateo.lopez@acme.example"],
        ),
        ("Stark Logistics pilot", "45000", "2025-03-31", "closedlost", 4, "305", "new_business", ["daniel.kim@acme.example"]),
        ("Northwind data licensing", "90000", "2025-05-30", "appointmentscheduled", 0, "301", "new_business", ["isabel.costa@acme.example"]),
        (
            "Globex support renewal",
            "150000",
            "2025-08-31",
            "decisionmakerboughtin",
            0,
            "302",
            "renewal",
            ["daniel.kim@acme.example", "grace.obrien@acme.example"],
        ),
        ("Initech analytics add-on", "70000", "2025-06-15", "qualifiedtobuy", 3, "303", "new_business", ["isabel.costa@acme.example"]),
        (
            "Umbrella Labs EU rollout",
            "610000",
            "2025-10-31",
            "presentationscheduled",
            2,
            "304",
            "new_business",
            ["sofia.garcia@acme.example", "zara.ahmed@acme.example"],
        ),
        (
            "Stark Logistics fleet tracking",
            "330000",
            "2025-11-30",
            "contractsent",
            0,
            "305",
            "new_business",
            ["mateo.lopez@acme.example", "noah.fischer@acme.example"],
        ),
        (
            "Project Heron: minority stake in Initech",
            "4200000",
            "2025-12-15",
            "decisionmakerboughtin",
            2,
            "303",
            "acquisition",
            ["grace.obrien@acme.example", "priya.raman@acme.example", "ava.chen@acme.example"],
        ),
        ("Northwind training services", "38000", "2025-02-28", "closedwon", 3, "301", "renewal", ["hannah.muller@acme.example"]),
    ]
    for index, (name, amount, close, stage, owner, company, deal_type, stakeholders) in enumerate(deals):
        deal_id = str(9001 + index)
        _new_object(
            "deals",
            deal_id,
            {
                "dealname": name,
                "amount": amount,
                "closedate": f"{close}T00:00:00Z",
                "dealstage": stage,
                "pipeline": "default",
                "hubspot_owner_id": str(70100 + owner),
                "deal_currency_code": "USD",
                "bastion_deal_type": deal_type,
                "bastion_board_sponsor": "ava.chen@acme.example" if deal_type == "acquisition" else None,
            },
            base + (30 + index) * hour,
        )
        _associate("deals", deal_id, "companies", company)
        for email in stakeholders:
            _associate("deals", deal_id, "contacts", contact_ids[email])
    settings = _settings()
    settings["search_result_ceiling"] = 10000
    settings["fail_after_create_next"] = 0


# ---------------------------------------------------------------- API


def _check_auth(scope: str | None = None) -> Response | None:
    token = bearer_token()
    if not token:
        return _error(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication.", "INVALID_AUTHENTICATION")
    with STORE.lock:
        info = STORE.tokens.get(token)
        revoked = STORE.faults_for(VENDOR).revoked
    if not info or info["vendor"] != VENDOR or revoked:
        return _error(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication.", "INVALID_AUTHENTICATION")
    if info["expires_at"] is not None and info["expires_at"] < time.time():
        return _error(401, "The OAuth token used to make this call expired.", "EXPIRED_AUTHENTICATION")
    if scope and info["scopes"] and scope not in info["scopes"]:
        return _error(403, f"This app hasn't been granted all required scopes to make this call. Missing: {scope}", "MISSING_SCOPES")
    return None


def api_blueprint() -> Blueprint:
    bp = Blueprint("hubspot_api", __name__)

    @bp.after_request
    def _rate_headers(response: Response) -> Response:
        with STORE.lock:
            counter = STORE.collection(VENDOR, "_usage")
            counter["daily"] = counter.get("daily", 0) + 1
            used = counter["daily"]
        response.headers["X-HubSpot-RateLimit-Daily"] = str(DAILY_LIMIT)
        response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, DAILY_LIMIT - used))
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = "10000"
        response.headers.setdefault("X-HubSpot-RateLimit-Max", "190")
        response.headers.setdefault("X-HubSpot-RateLimit-Remaining", "189")
        return response

    @bp.post("/oauth/v1/token")
    def oauth_token_v1():
        # HubSpot's real token path; the generic OAuth server does the work.
        return current_app.view_functions[f"{VENDOR}_oauth.token"]()

    @bp.get("/oauth/v1/access-tokens/<token>")
    def access_token_info(token: str):
        with STORE.lock:
            info = STORE.tokens.get(token)
        if not info or info["vendor"] != VENDOR or (info["expires_at"] is not None and info["expires_at"] < time.time()):
            return _error(404, "Token not found or expired", "OBJECT_NOT_FOUND")
        return jsonify(
            {
                "token": token,
                "user": "ava.chen@acme.example",
                "hub_domain": "acme-sandbox.hubspot.com",
                "scopes": info["scopes"] or ["oauth"],
                "hub_id": PORTAL_ID,
                "app_id": APP_ID,
                "expires_in": int(info["expires_at"] - time.time()) if info["expires_at"] else 0,
                "user_id": 9101,
                "token_type": "access",
            }
        )

    @bp.get("/account-info/v3/details")
    def account_details():
        if failure := _check_auth():
            return failure
        return jsonify(
            {
                "portalId": PORTAL_ID,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
                "additionalCurrencies": ["EUR", "GBP"],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18000000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    @bp.get("/crm/v3/properties/<raw_type>")
    def properties(raw_type: str):
        object_type = _object_type(raw_type)
        if failure := _check_auth(READ_SCOPES.get(object_type or "")):
            return failure
        if not object_type:
            return _error(400, f"Unable to infer object type from: {raw_type}", "VALIDATION_ERROR")
        return jsonify({"results": PROPERTY_DEFINITIONS[object_type]})

    @bp.get("/crm/v3/owners")
    @bp.get("/crm/v3/owners/")
    def owners():
        if failure := _check_auth("crm.objects.owners.read"):
            return failure
        archived = request.args.get("archived", "false") == "true"
        limit = max(1, min(int(request.args.get("limit", 100)), 500))
        after = request.args.get("after")
        email = request.args.get("email")
        rows = sorted(STORE.collection(VENDOR, "owners").values(), key=lambda o: int(o["id"]))
        rows = [o for o in rows if o["archived"] == archived and (not email or o["email"] == email)]
        if after:
            rows = [o for o in rows if int(o["id"]) >= int(after)]
        body: dict[str, Any] = {"results": rows[:limit]}
        if len(rows) > limit:
            body["paging"] = {"next": {"after": rows[limit]["id"], "link": f"{request.base_url}?after={rows[limit]['id']}&limit={limit}"}}
        return jsonify(body)

    @bp.get("/crm/v3/objects/<raw_type>")
    def list_objects(raw_type: str):
        object_type = _object_type(raw_type)
        if failure := _check_auth(READ_SCOPES.get(object_type or "")):
            return failure
        if not object_type:
            return _error(400, f"Unable to infer object type from: {raw_type}", "VALIDATION_ERROR")
        try:
            limit = max(1, min(int(request.args.get("limit", 10)), 100))
        except ValueError:
            return _error(400, "limit must be an integer", "VALIDATION_ERROR")
        archived = request.args.get("archived", "false") == "true"
        after = request.args.get("after")
        with STORE.lock:
            rows = sorted((o for o in _objects(object_type).values() if o["archived"] == archived), key=lambda o: int(o["id"]))
            if after:
                if not after.isdigit():
                    return _error(400, "Invalid paging cursor", "VALIDATION_ERROR")
                rows = [o for o in rows if int(o["id"]) >= int(after)]
            page = [_render(object_type, o, _split(request.args.get("properties")), _split(request.args.get("associations"))) for o in rows[:limit]]
        body: dict[str, Any] = {"results": page}
        if len(rows) > limit:
            next_after = rows[limit]["id"]
            body["paging"] = {"next": {"after": next_after, "link": f"{request.base_url}?after={next_after}&limit={limit}"}}
        return jsonify(body)

    @bp.get("/crm/v3/objects/<raw_type>/<object_id>")
    def get_object(raw_type: str, object_id: str):
        object_type = _object_type(raw_type)
        if failure := _check_auth(READ_SCOPES.get(object_type or "")):
            return failure
        obj = _objects(object_type).get(object_id) if object_type else None
        if not obj or obj["archived"]:
            return _error(404, "resource not found", "OBJECT_NOT_FOUND")
        return jsonify(_render(object_type, obj, _split(request.args.get("properties")), _split(request.args.get("associations"))))

    @bp.post("/crm/v3/objects/<raw_type>/batch/read")
    def batch_read(raw_type: str):
        object_type = _object_type(raw_type)
        if failure := _check_auth(READ_SCOPES.get(object_type or "")):
            return failure
        body = request.get_json(silent=True) or {}
        if not object_type or not isinstance(body.get("inputs"), list):
            return _error(400, "inputs are required", "VALIDATION_ERROR")
        if len(body["inputs"]) > 100:
            return _error(400, "Batch size must be 100 or fewer", "VALIDATION_ERROR")
        found = []
        for item in body["inputs"]:
            obj = _objects(object_type).get(str(item.get("id")))
            if obj and not obj["archived"]:
                found.append(_render(object_type, obj, body.get("properties")))
        now = _iso(_now_ms())
        return jsonify({"status": "COMPLETE", "results": found, "startedAt": now, "completedAt": now})

    @bp.post("/crm/v3/objects/<raw_type>/search")
    def search(raw_type: str):
        object_type = _object_type(raw_type)
        if failure := _check_auth(READ_SCOPES.get(object_type or "")):
            return failure
        body = request.get_json(silent=True)
        if not object_type or not isinstance(body, dict):
            return _error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        limit = int(body.get("limit") or 10)
        if limit > 200:
            return _error(400, "limit must be less than or equal to 200", "VALIDATION_ERROR")
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups):
            return _error(400, "Too many filter groups or filters: at most 5 groups of 6 filters", "VALIDATION_ERROR")
        offset = int(body.get("after") or 0)
        ceiling = int(_settings().get("search_result_ceiling", 10000))
        if offset >= ceiling:
            return _error(400, f"The search API cannot page beyond {ceiling} results.", "VALIDATION_ERROR")
        with STORE.lock:
            rows = [o for o in _objects(object_type).values() if not o["archived"]]
            if groups:
                rows = [o for o in rows if any(all(_matches(object_type, o, f) for f in g.get("filters") or []) for g in groups)]
            query = (body.get("query") or "").lower()
            if query:
                rows = [o for o in rows if any(query in str(v).lower() for v in o["properties"].values() if v)]
            rows.sort(key=lambda o: int(o["id"]))
            for sort in reversed(body.get("sorts") or []):
                name = sort.get("propertyName")
                kind = _property_type(object_type, name)

                def key(o: dict, name: str = name, kind: str = kind) -> Any:
                    value = o["properties"].get(name)
                    if kind in ("datetime", "date"):
                        return _to_ms(value) or 0
                    if kind == "number":
                        return float(value or 0)
                    return str(value or "")

                rows.sort(key=key, reverse=sort.get("direction", "ASCENDING") == "DESCENDING")
            page = [_render(object_type, o, body.get("properties")) for o in rows[offset : offset + limit]]
        result: dict[str, Any] = {"total": len(rows), "results": page}
        if offset + limit < len(rows):
            result["paging"] = {"next": {"after": str(offset + limit)}}
        return jsonify(result)

    @bp.post("/crm/v3/objects/<raw_type>")
    def create(raw_type: str):
        object_type = _object_type(raw_type)
        if failure := _check_auth(WRITE_SCOPES.get(object_type or "")):
            return failure
        body = request.get_json(silent=True)
        if not object_type or not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            return _error(400, "Invalid input JSON: properties are required", "VALIDATION_ERROR")
        properties = body["properties"]
        if failure := _validate_properties(object_type, properties):
            return failure
        if object_type in ("notes", "tasks") and not properties.get("hs_timestamp"):
            return _error(
                400, 'Property values were not valid: [{"isValid":false,"message":"hs_timestamp is required","name":"hs_timestamp"}]', "VALIDATION_ERROR"
            )
        with STORE.lock:
            object_id = str(STORE.next_id())
            obj = _new_object(object_type, object_id, properties, _now_ms())
            for association in body.get("associations") or []:
                to_id = str((association.get("to") or {}).get("id", ""))
                type_ids = [t.get("associationTypeId") for t in association.get("types") or []]
                target_type = next((to for (frm, to), tid in ASSOCIATION_TYPES.items() if frm == object_type and tid in type_ids), None)
                if not target_type or to_id not in _objects(target_type):
                    del _objects(object_type)[object_id]
                    return _error(400, f"Invalid association to {to_id} with types {type_ids}", "VALIDATION_ERROR")
                _associate(object_type, object_id, target_type, to_id)
            summary = properties.get("dealname") or properties.get("hs_task_subject") or (properties.get("hs_note_body") or "")[:80]
        STORE.record_created(VENDOR, SINGULAR[object_type], object_id, summary)
        with STORE.lock:
            settings = _settings()
            if settings.get("fail_after_create_next", 0) > 0:
                # The object exists, but the caller never hears so: proves idempotent retries.
                settings["fail_after_create_next"] -= 1
                return _error(502, "Bad gateway (sandbox: created, then failed)", "INTERNAL_ERROR")
        response = jsonify(_render(object_type, obj, list(properties)))
        response.status_code = 201
        return response

    @bp.patch("/crm/v3/objects/<raw_type>/<object_id>")
    def update(raw_type: str, object_id: str):
        object_type = _object_type(raw_type)
        if failure := _check_auth(WRITE_SCOPES.get(object_type or "")):
            return failure
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            return _error(400, "Invalid input JSON: properties are required", "VALIDATION_ERROR")
        obj = _objects(object_type).get(object_id) if object_type else None
        if not obj or obj["archived"]:
            return _error(404, "resource not found", "OBJECT_NOT_FOUND")
        if failure := _validate_properties(object_type, body["properties"]):
            return failure
        with STORE.lock:
            obj["properties"].update({k: (None if v is None else str(v)) for k, v in body["properties"].items()})
            _touch(object_type, obj)
        return jsonify(_render(object_type, obj, list(body["properties"])))

    @bp.delete("/crm/v3/objects/<raw_type>/<object_id>")
    def archive(raw_type: str, object_id: str):
        object_type = _object_type(raw_type)
        if failure := _check_auth(WRITE_SCOPES.get(object_type or "")):
            return failure
        obj = _objects(object_type).get(object_id) if object_type else None
        if obj and not obj["archived"]:
            with STORE.lock:
                obj["archived"] = True
                obj["archivedAt"] = _iso(_now_ms())
                _touch(object_type, obj)
        return Response(status=204)

    @bp.get("/crm/v4/objects/<raw_from>/<object_id>/associations/<raw_to>")
    def associations(raw_from: str, object_id: str, raw_to: str):
        from_type, to_type = _object_type(raw_from), _object_type(raw_to)
        if failure := _check_auth(READ_SCOPES.get(from_type or "")):
            return failure
        if not from_type or not to_type or object_id not in _objects(from_type):
            return _error(404, "resource not found", "OBJECT_NOT_FOUND")
        limit = max(1, min(int(request.args.get("limit", 500)), 500))
        ids = _associated(from_type, object_id, to_type)
        after = request.args.get("after")
        if after:
            ids = [i for i in ids if int(i) >= int(after)]
        type_id = ASSOCIATION_TYPES.get((from_type, to_type))
        results = [{"toObjectId": int(i), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]} for i in ids[:limit]]
        body: dict[str, Any] = {"results": results}
        if len(ids) > limit:
            body["paging"] = {"next": {"after": ids[limit], "link": None}}
        return jsonify(body)

    @bp.post("/crm/v4/associations/<raw_from>/<raw_to>/batch/read")
    def associations_batch(raw_from: str, raw_to: str):
        from_type, to_type = _object_type(raw_from), _object_type(raw_to)
        if failure := _check_auth(READ_SCOPES.get(from_type or "")):
            return failure
        body = request.get_json(silent=True) or {}
        if not from_type or not to_type or not isinstance(body.get("inputs"), list):
            return _error(400, "inputs are required", "VALIDATION_ERROR")
        type_id = ASSOCIATION_TYPES.get((from_type, to_type))
        results, errors = [], []
        for item in body["inputs"]:
            from_id = str(item.get("id"))
            if from_id not in _objects(from_type):
                errors.append(
                    {"status": "error", "category": "OBJECT_NOT_FOUND", "message": f"No {from_type} with id {from_id}", "context": {"fromObjectId": [from_id]}}
                )
                continue
            ids = _associated(from_type, from_id, to_type)
            if ids:
                results.append(
                    {
                        "from": {"id": from_id},
                        "to": [{"toObjectId": int(i), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]} for i in ids],
                    }
                )
        now = _iso(_now_ms())
        payload: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
        if errors:
            payload["errors"] = errors
            payload["numErrors"] = len(errors)
        response = jsonify(payload)
        response.status_code = 207 if errors else 200
        return response

    return bp


# ---------------------------------------------------------------- sandbox controls (no fault knobs)


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """X-HubSpot-Signature-v3: base64(HMAC-SHA256(client secret, method + URI + body + timestamp))."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def control_blueprint() -> Blueprint:
    bp = Blueprint("hubspot_control", __name__)

    @bp.post("/_sandbox/settings")
    def settings():
        body = request.get_json(force=True) or {}
        unknown = set(body) - {"search_result_ceiling", "fail_after_create_next"}
        if unknown:
            return jsonify({"error": f"unknown settings: {sorted(unknown)}"}), 400
        with STORE.lock:
            _settings().update(body)
            return jsonify(dict(_settings()))

    @bp.post("/_sandbox/webhooks")
    def subscribe():
        body = request.get_json(force=True) or {}
        if not body.get("target_url") or not body.get("client_secret"):
            return jsonify({"error": "target_url and client_secret are required"}), 400
        with STORE.lock:
            STORE.webhook_subscriptions[VENDOR] = [{"target_url": body["target_url"], "client_secret": body["client_secret"]}]
        return jsonify({"ok": True})

    @bp.post("/_sandbox/deals/<deal_id>/modify")
    def modify_deal(deal_id: str):
        """Change a deal as a HubSpot user would, then deliver the signed deal.propertyChange webhook."""
        body = request.get_json(force=True) or {}
        changes = body.get("properties") or {}
        obj = _objects("deals").get(deal_id)
        if not obj:
            return jsonify({"error": "no such deal"}), 404
        if failure := _validate_properties("deals", changes):
            return failure
        now = _now_ms()
        with STORE.lock:
            obj["properties"].update({k: (None if v is None else str(v)) for k, v in changes.items()})
            _touch("deals", obj, now)
            subscriptions = list(STORE.webhook_subscriptions.get(VENDOR, []))
        events = [
            {
                "eventId": STORE.next_id(),
                "subscriptionId": 4400,
                "portalId": PORTAL_ID,
                "appId": APP_ID,
                "occurredAt": now,
                "subscriptionType": "deal.propertyChange",
                "attemptNumber": 0,
                "objectId": int(deal_id),
                "propertyName": name,
                "propertyValue": "" if value is None else str(value),
                "changeSource": "CRM_UI",
                "sourceId": "userId:9101",
            }
            for name, value in changes.items()
        ]
        return jsonify({"events": events, "deliveries": [_deliver(s, events, body.get("timestamp_offset_ms", 0)) for s in subscriptions]})

    @bp.post("/_sandbox/deals/<deal_id>/delete")
    def delete_deal(deal_id: str):
        """Archive a deal as a HubSpot user would and deliver deal.deletion."""
        obj = _objects("deals").get(deal_id)
        if not obj:
            return jsonify({"error": "no such deal"}), 404
        now = _now_ms()
        with STORE.lock:
            obj["archived"] = True
            obj["archivedAt"] = _iso(now)
            _touch("deals", obj, now)
            subscriptions = list(STORE.webhook_subscriptions.get(VENDOR, []))
        events = [
            {
                "eventId": STORE.next_id(),
                "subscriptionId": 4401,
                "portalId": PORTAL_ID,
                "appId": APP_ID,
                "occurredAt": now,
                "subscriptionType": "deal.deletion",
                "attemptNumber": 0,
                "objectId": int(deal_id),
                "changeFlag": "DELETED",
                "changeSource": "CRM_UI",
            }
        ]
        return jsonify({"events": events, "deliveries": [_deliver(s, events, 0) for s in subscriptions]})

    return bp


def _deliver(subscription: dict, events: list[dict], timestamp_offset_ms: int) -> dict:
    raw = json.dumps(events, separators=(",", ":")).encode()
    timestamp = str(_now_ms() + int(timestamp_offset_ms))
    uri = subscription["target_url"]
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": sign_v3(subscription["client_secret"], "POST", uri, raw, timestamp),
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Signature": hashlib.sha256(subscription["client_secret"].encode() + raw).hexdigest(),
    }
    try:
        response = requests.post(uri, data=raw, headers=headers, timeout=(2, 10))
    except requests.RequestException as exc:
        return {"target_url": uri, "status": None, "error": str(exc)}
    return {"target_url": uri, "status": response.status_code}


def blueprints() -> list[Blueprint]:
    from sandbox.server import install_faults

    oauth = oauth_blueprint(OAuthProfile(VENDOR, access_ttl=1800, rotates_refresh_token=False))
    api = api_blueprint()
    for bp in (oauth, api):
        install_faults(bp, VENDOR, rate_limited=_rate_limited, error=lambda status, message: _error(status, message, "INTERNAL_ERROR"))
    return [oauth, api, control_blueprint()]
