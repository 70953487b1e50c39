"""A generic SCIM 2.0 service provider (RFC 7643/7644): /Users, /Groups, ListResponse paging, filters, PATCH, SCIM errors.

Served at `<sandbox>/scim/v2/...` (and `<sandbox>/scim/...`), seeded with the shared 20 people and the enterprise extension.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, request

from sandbox.oauth import bearer_token, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "scim"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MEDIA_TYPE = "application/scim+json"
MAX_COUNT = 200
SEED_TIME = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
_clock = threading.Lock()
_last = [0.0]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _tick() -> str:
    with _clock:
        _last[0] = max(time.time(), _last[0] + 0.001)
        return _iso(datetime.fromtimestamp(_last[0], tz=UTC))


def _scim(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)


def scim_error(status: int, detail: str, scim_type: str | None = None) -> Response:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return _scim(body, status)


def _rate_limited(retry_after: int) -> Response:
    response = scim_error(429, "Too many requests")
    response.headers["Retry-After"] = str(int(retry_after))
    return response


def _users():
    return STORE.collection(VENDOR, "users")


def _groups():
    return STORE.collection(VENDOR, "groups")


def seed() -> None:
    rows = people()
    ids = {row["email"]: str(uuid.uuid5(uuid.NAMESPACE_URL, f"scim:{row['email']}")) for row in rows}
    for row in rows:
        stamp = _iso(SEED_TIME + timedelta(seconds=row["index"]))
        _users()[ids[row["email"]]] = {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "id": ids[row["email"]],
            "externalId": f"emp-{1000 + row['index']}",
            "userName": row["email"],
            "name": {"givenName": row["given_name"], "familyName": row["family_name"], "formatted": row["name"]},
            "displayName": row["name"],
            "title": row["title"],
            "active": True,
            "emails": [{"value": row["email"], "type": "work", "primary": True}],
            "phoneNumbers": [{"value": f"+1 555 04{row['index']:02d}", "type": "work"}],
            ENTERPRISE: {
                "employeeNumber": str(1000 + row["index"]),
                "department": row["department"],
                "manager": {"value": ids[row["manager_email"]]} if row["manager_email"] else None,
            },
            "meta": {"resourceType": "User", "created": stamp, "lastModified": stamp, "version": 'W/"1"'},
        }
    specs = [
        ("Security", ["marcus.okafor@acme.example", "emma.rossi@acme.example"], []),
        ("Legal", ["priya.raman@acme.example", "omar.haddad@acme.example", "zara.ahmed@acme.example"], []),
        ("Crisis Team", ["ava.chen@acme.example", "liam.novak@acme.example"], ["Security", "Legal"]),
    ]
    group_ids = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"scim-group:{name}")) for name, _, _ in specs}
    for name, members, subgroups in specs:
        _groups()[group_ids[name]] = {
            "schemas": [GROUP_SCHEMA],
            "id": group_ids[name],
            "displayName": name,
            "members": [{"value": ids[m], "type": "User"} for m in members] + [{"value": group_ids[g], "type": "Group"} for g in subgroups],
            "meta": {"resourceType": "Group", "created": _iso(SEED_TIME), "lastModified": _iso(SEED_TIME), "version": 'W/"1"'},
        }


# ---------------------------------------------------------------- filters (RFC 7644 3.4.2.2): attrPath op value, and/or/not, ()
_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+)')


class FilterError(ValueError):
    pass


def _tokens(text: str) -> list[str]:
    position, tokens = 0, []
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            if text[position:].strip() == "":
                break
            raise FilterError(text)
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _values(resource: dict[str, Any], path: str) -> list[Any]:
    """All values at a (case-insensitive) attribute path; multi-valued attributes fan out (emails.value)."""
    if path.lower().startswith(ENTERPRISE.lower() + ":"):
        current: list[Any] = [resource.get(ENTERPRISE) or {}]
        path = path[len(ENTERPRISE) + 1 :]
    else:
        current = [resource]
    for part in path.split("."):
        following: list[Any] = []
        for value in current:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):
                    key = next((k for k in item if k.lower() == part.lower()), None)
                    if key is not None:
                        following.append(item[key])
        current = following
    flat: list[Any] = []
    for value in current:
        flat.extend(value if isinstance(value, list) else [value])
    return [v["value"] if isinstance(v, dict) and "value" in v and path.count(".") == 0 else v for v in flat]


def _literal(token: str) -> Any:
    if token.startswith('"'):
        try:
            return json.loads(token)
        except ValueError as exc:
            raise FilterError(token) from exc
    lowered = token.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return float(token)
    except ValueError as exc:
        raise FilterError(token) from exc


def _match(actual: Any, op: str, expected: Any) -> bool:
    if op == "pr":
        return actual not in (None, "", [], {})
    if isinstance(actual, bool) or isinstance(expected, bool):
        return {"eq": actual == expected, "ne": actual != expected}.get(op, False)
    if actual is None:
        return op == "ne" and expected is not None
    a, e = (str(actual).lower(), str(expected).lower()) if isinstance(expected, str) else (actual, expected)
    try:
        return {
            "eq": a == e,
            "ne": a != e,
            "co": isinstance(a, str) and e in a,
            "sw": isinstance(a, str) and a.startswith(e),
            "ew": isinstance(a, str) and a.endswith(e),
            "gt": a > e,
            "ge": a >= e,
            "lt": a < e,
            "le": a <= e,
        }[op]
    except TypeError:
        return False


def compile_filter(text: str):
    """Parse a SCIM filter into a predicate over a resource dict; FilterError when malformed."""
    tokens = _tokens(text)
    position = [0]

    def peek() -> str | None:
        return tokens[position[0]] if position[0] < len(tokens) else None

    def take() -> str:
        token = peek()
        if token is None:
            raise FilterError(text)
        position[0] += 1
        return token

    def primary():
        token = take()
        if token.lower() == "not":
            inner = primary()
            return lambda r: not inner(r)
        if token == "(":
            inner = disjunction()
            if take() != ")":
                raise FilterError(text)
            return inner
        op = take().lower()
        if op not in ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"):
            raise FilterError(text)
        value = None if op == "pr" else _literal(take())
        path = token
        return lambda r: any(_match(v, op, value) for v in (_values(r, path) or [None]))

    def conjunction():
        left = primary()
        while (peek() or "").lower() == "and":
            take()
            right = primary()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def disjunction():
        left = conjunction()
        while (peek() or "").lower() == "or":
            take()
            right = conjunction()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    predicate = disjunction()
    if peek() is not None:
        raise FilterError(text)
    return predicate


# ---------------------------------------------------------------- resources
def _user_groups(user_id: str) -> list[dict[str, Any]]:
    """Direct and nested memberships (RFC 7643 4.1.2: `groups` includes groups reached through nesting)."""
    groups = list(_groups().values())
    direct = {g["id"]: "direct" for g in groups if any(m["value"] == user_id for m in g["members"])}
    pending = list(direct)
    while pending:
        gid = pending.pop()
        for group in groups:
            if group["id"] not in direct and any(m["value"] == gid for m in group["members"]):
                direct[group["id"]] = "indirect"
                pending.append(group["id"])
    by_id = {g["id"]: g for g in groups}
    return [{"value": gid, "display": by_id[gid]["displayName"], "type": kind, "$ref": f"{_base()}/Groups/{gid}"} for gid, kind in direct.items()]


def _base() -> str:
    prefix = "/scim/v2" if "/scim/v2/" in request.path else "/scim"
    return f"{request.host_url.rstrip('/')}{prefix}"


def _user_out(user: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(json.dumps(user))
    body["groups"] = _user_groups(user["id"])
    body["meta"]["location"] = f"{_base()}/Users/{user['id']}"
    return body


def _group_out(group: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(json.dumps(group))
    for member in body["members"]:
        kind = "Users" if member["type"] == "User" else "Groups"
        member["$ref"] = f"{_base()}/{kind}/{member['value']}"
        source = _users().get(member["value"]) or _groups().get(member["value"]) or {}
        member["display"] = source.get("displayName", "")
    body["meta"]["location"] = f"{_base()}/Groups/{group['id']}"
    return body


def _list(resources: list[dict[str, Any]], render) -> Response:
    try:
        start = max(1, int(request.args.get("startIndex", 1)))
        count = max(0, min(int(request.args.get("count", 100)), MAX_COUNT))
    except ValueError:
        return scim_error(400, "startIndex and count must be integers", "invalidValue")
    raw_filter = request.args.get("filter")
    if raw_filter:
        try:
            predicate = compile_filter(raw_filter)
        except FilterError:
            return scim_error(400, f"The filter {raw_filter!r} is not a valid SCIM filter.", "invalidFilter")
        resources = [r for r in resources if predicate(r)]
    page = resources[start - 1 : start - 1 + count]
    return _scim(
        {"schemas": [LIST_SCHEMA], "totalResults": len(resources), "startIndex": start, "itemsPerPage": len(page), "Resources": [render(r) for r in page]}
    )


def _apply_patch(user: dict[str, Any], operations: list[dict[str, Any]]) -> None:
    for operation in operations:
        op = str(operation.get("op", "")).lower()
        path = operation.get("path")
        value = operation.get("value")
        if op not in ("add", "replace", "remove"):
            raise FilterError(f"unsupported op {op!r}")
        if not path:
            if not isinstance(value, dict):
                raise FilterError("a PATCH without path needs an object value")
            for key, item in value.items():
                if key == ENTERPRISE and isinstance(item, dict):
                    user.setdefault(ENTERPRISE, {}).update(item)
                else:
                    user[key] = item
            continue
        target, key = user, path
        if path.startswith(ENTERPRISE + ":"):
            target, key = user.setdefault(ENTERPRISE, {}), path[len(ENTERPRISE) + 1 :]
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if op == "remove":
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = value


def blueprints() -> list[Blueprint]:
    bp = Blueprint("scim_api", __name__)
    install_faults(bp, VENDOR, rate_limited=_rate_limited, error=lambda status, message: scim_error(status, message))

    @bp.before_request
    def _auth():
        if token_info(VENDOR, bearer_token()) is None:
            response = scim_error(401, "Authorization failure. The authorization header is invalid or missing.")
            response.headers["WWW-Authenticate"] = 'Bearer realm="scim"'
            return response
        return None

    for prefix in ("", "/v2"):
        bp.add_url_rule(f"{prefix}/ServiceProviderConfig", f"spc{prefix}", service_provider_config, methods=["GET"])
        bp.add_url_rule(f"{prefix}/Schemas", f"schemas{prefix}", schemas, methods=["GET"])
        bp.add_url_rule(f"{prefix}/Users", f"users{prefix}", list_users, methods=["GET"])
        bp.add_url_rule(f"{prefix}/Users/<user_id>", f"user{prefix}", user_resource, methods=["GET", "PATCH", "DELETE"])
        bp.add_url_rule(f"{prefix}/Groups", f"groups{prefix}", list_groups, methods=["GET"])
        bp.add_url_rule(f"{prefix}/Groups/<group_id>", f"group{prefix}", get_group, methods=["GET"])
    return [bp]


def service_provider_config():
    return _scim(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_COUNT},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "description": "Authentication with a bearer token"}],
        }
    )


def _attr(name: str, kind: str = "string", required: bool = False, multi: bool = False, sub: list | None = None) -> dict[str, Any]:
    body = {"name": name, "type": kind, "multiValued": multi, "required": required, "mutability": "readWrite", "returned": "default"}
    if sub:
        body["subAttributes"] = sub
    return body


def schemas():
    user_attrs = [
        _attr("userName", required=True),
        _attr("name", "complex", sub=[_attr("givenName"), _attr("familyName"), _attr("formatted")]),
        _attr("displayName"),
        _attr("title"),
        _attr("active", "boolean"),
        _attr("emails", "complex", multi=True, sub=[_attr("value"), _attr("type"), _attr("primary", "boolean")]),
        _attr("phoneNumbers", "complex", multi=True, sub=[_attr("value"), _attr("type")]),
        _attr("groups", "complex", multi=True, sub=[_attr("value"), _attr("display")]),
    ]
    enterprise_attrs = [_attr("employeeNumber"), _attr("department"), _attr("costCenter"), _attr("manager", "complex", sub=[_attr("value")])]
    resources = [
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": USER_SCHEMA, "name": "User", "attributes": user_attrs},
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": ENTERPRISE, "name": "EnterpriseUser", "attributes": enterprise_attrs},
    ]
    return _scim({"schemas": [LIST_SCHEMA], "totalResults": len(resources), "startIndex": 1, "itemsPerPage": len(resources), "Resources": resources})


def list_users():
    with STORE.lock:
        users = list(_users().values())
    return _list(users, _user_out)


def user_resource(user_id: str):
    user = _users().get(user_id)
    if user is None:
        return scim_error(404, f"Resource {user_id} not found")
    if request.method == "GET":
        return _scim(_user_out(user))
    if request.method == "DELETE":
        with STORE.lock:
            _users().pop(user_id, None)
            for group in _groups().values():
                group["members"] = [m for m in group["members"] if m["value"] != user_id]
        return Response(status=204)
    body = request.get_json(force=True, silent=True) or {}
    if PATCH_SCHEMA not in (body.get("schemas") or []) or not isinstance(body.get("Operations"), list):
        return scim_error(400, "A PatchOp message with Operations is required.", "invalidSyntax")
    with STORE.lock:
        try:
            _apply_patch(user, body["Operations"])
        except FilterError as exc:
            return scim_error(400, str(exc), "invalidSyntax")
        user["meta"]["lastModified"] = _tick()
        user["meta"]["version"] = f'W/"{int(user["meta"]["version"].strip("W/").strip(chr(34))) + 1}"'
    return _scim(_user_out(user))


def list_groups():
    with STORE.lock:
        groups = list(_groups().values())
    return _list(groups, _group_out)


def get_group(group_id: str):
    group = _groups().get(group_id)
    if group is None:
        return scim_error(404, f"Resource {group_id} not found")
    return _scim(_group_out(group))
