"""Shared pieces of the Microsoft Graph stand-in: Graph's error envelope, tokens and identities, paging, versions for delta."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, g, jsonify, request

from sandbox.oauth import bearer_token, token_info
from sandbox.state import STORE

VENDOR = "microsoft365"
DIRECTORY = "entra"  # users live in the Entra stand-in's store: one directory, same ids and emails
TENANT_ID = "a1b2c3d4-0000-4000-8000-000000000001"
TENANT_DOMAIN = "acme.example"
GRAPH = "https://graph.microsoft.com/v1.0"
DEFAULT_TOP = 100
MAX_TOP = 999
_version_lock = threading.Lock()

# Windows time zone names Outlook uses, mapped to IANA (the few a sandbox client is likely to send).
WINDOWS_ZONES = {
    "UTC": "UTC",
    "Pacific Standard Time": "America/Los_Angeles",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Tokyo Standard Time": "Asia/Tokyo",
}


def graph_error(status: int, code: str, message: str) -> Response:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    response = jsonify(
        {"error": {"code": code, "message": message, "innerError": {"date": now, "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}}
    )
    response.status_code = status
    return response


def rate_limited(retry_after: int) -> Response:
    response = graph_error(429, "TooManyRequests", "Too many requests. Please retry after the time specified in the Retry-After header.")
    response.headers["Retry-After"] = str(int(retry_after))
    return response


def fault_error(status: int, message: str) -> Response:
    codes = {
        400: "BadRequest",
        401: "InvalidAuthenticationToken",
        403: "Forbidden",
        404: "itemNotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        500: "InternalServerError",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
    }
    return graph_error(status, codes.get(status, "generalException"), message)


def not_found(what: str) -> Response:
    return graph_error(404, "NotFound", f"{what} was not found.")


def bad_request(message: str, code: str = "BadRequest") -> Response:
    return graph_error(400, code, message)


def col(name: str):
    return STORE.collection(VENDOR, name)


def knobs() -> dict[str, Any]:
    return col("meta").setdefault("knobs", {})


def failure_after_create() -> Response | None:
    """The `fail_after_create` knob ({"count": n, "status": 504}): the object was made but the answer is lost, as on a timeout."""
    knob = knobs().get("fail_after_create")
    if not knob or int(knob.get("count", 0)) <= 0:
        return None
    knob["count"] = int(knob["count"]) - 1
    status = int(knob.get("status", 504))
    return graph_error(status, "GatewayTimeout" if status == 504 else "ServiceUnavailable", "The operation timed out (sandbox knob: the object was created).")


def new_id() -> str:
    return str(uuid.uuid4())


def bump(obj: dict[str, Any]) -> dict[str, Any]:
    """Every change takes the next tenant-wide version: delta tokens are positions in that sequence."""
    with _version_lock:
        meta = col("meta")
        meta["version"] = meta.get("version", 0) + 1
        obj["_version"] = meta["version"]
        obj["lastModifiedDateTime"] = iso(now())
    return obj


def current_version() -> int:
    return int(col("meta").get("version", 0))


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def zone(name: str | None) -> ZoneInfo | None:
    if name is not None and not isinstance(name, str):
        return None
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name or "UTC", name or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_moment(value: Any, default_zone: str = "UTC") -> datetime | None:
    """A Graph dateTimeTimeZone {dateTime, timeZone} or an ISO string, as an aware UTC datetime (None if unreadable)."""
    if isinstance(value, dict):
        text, tz_name = str(value.get("dateTime") or ""), value.get("timeZone") or default_zone
    else:
        text, tz_name = str(value or ""), default_zone
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        tz = zone(tz_name)
        if tz is None:
            return None
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def graph_moment(moment: datetime, tz_name: str = "UTC") -> dict[str, str]:
    """Graph answers dateTimeTimeZone in UTC unless `Prefer: outlook.timezone` names another zone."""
    tz = zone(tz_name) or UTC
    return {"dateTime": moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tz_name if zone(tz_name) else "UTC"}


def preferred_zone() -> str:
    prefer = request.headers.get("Prefer", "")
    for part in prefer.split(","):
        part = part.strip()
        if part.lower().startswith("outlook.timezone="):
            return part.split("=", 1)[1].strip().strip('"')
    return "UTC"


# ---- directory (shared with the Entra stand-in)
def users() -> dict[str, dict[str, Any]]:
    return STORE.collection(DIRECTORY, "users")


def find_user(key: str | None) -> dict[str, Any] | None:
    """A directory user by id, userPrincipalName or mail (case-insensitive), never a deleted one."""
    if not key:
        return None
    with STORE.lock:
        user = users().get(key)
        if user is None:
            lowered = key.lower()
            user = next((u for u in users().values() if lowered in (str(u.get("userPrincipalName", "")).lower(), str(u.get("mail") or "").lower())), None)
        return user if user is not None and not user.get("_deleted") else None


def public_user(user: dict[str, Any], select: list[str] | None = None) -> dict[str, Any]:
    body = {k: v for k, v in user.items() if not k.startswith("_")}
    if select:
        body = {k: v for k, v in body.items() if k in select or k == "id"}
    return body


def identity(user: dict[str, Any]) -> dict[str, Any]:
    return {"user": {"id": user["id"], "displayName": user["displayName"], "userIdentityType": "aadUser", "tenantId": TENANT_ID}}


# ---- the caller
def authenticate() -> Response | None:
    """Before every Graph call: a valid token of this vendor, its user (delegated) or app (application) kept in flask.g."""
    info = token_info(VENDOR, bearer_token())
    if info is None:
        if not bearer_token():
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        return graph_error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
    user = find_user(info.get("subject"))
    g.caller = {"user": user, "delegated": user is not None, "scopes": {s.rsplit("/", 1)[-1] for s in info.get("scopes") or ()}}
    return None


def refuse_off_spec() -> Response | None:
    """Before a Graph call: a JSON body the published description refuses (wrong type, unknown enum value) is a 400, as Graph
    refuses a payload it cannot bind to its model; parameters are left to each handler's own Graph-worded answer."""
    from sandbox.spec_check import spec_for

    spec = spec_for(VENDOR)
    spec_path = spec.spec_path(request.path) if spec else None
    if spec is None or spec_path is None or request.method not in ("POST", "PATCH", "PUT"):
        return None
    operation, _exists = spec.find(request.method, spec_path)
    if operation is None:
        return None
    body = request.get_json(silent=True) if request.mimetype == "application/json" else None
    problems = spec._check_openapi3_body(operation, form={}, body=body)  # noqa: SLF001 - the checker's own body rule, reused
    if problems:
        return bad_request(f"Invalid request body: {problems[0]}.")
    return None


def caller_user() -> dict[str, Any] | None:
    return g.caller["user"] if getattr(g, "caller", None) else None


def delegated() -> bool:
    return bool(getattr(g, "caller", None) and g.caller["delegated"])


def require_scope(*accepted: str) -> Response | None:
    """403 when the token carries scopes and none of `accepted`; a token minted without scopes (a test key) may do anything."""
    scopes = g.caller["scopes"] if getattr(g, "caller", None) else set()
    if not scopes or scopes & set(accepted):
        return None
    return graph_error(403, "Forbidden", f"Insufficient privileges to complete the operation. One of these permissions is required: {', '.join(accepted)}.")


def resolve_user(user_key: str) -> tuple[dict[str, Any] | None, Response | None]:
    """The user a `/users/{id}` or `/me` path names; /me is refused for an application token like Graph does."""
    if user_key == "me":
        user = caller_user()
        if user is None:
            return None, bad_request("/me request is only valid with delegated authentication flow.")
        return user, None
    user = find_user(user_key)
    if user is None:
        return None, graph_error(404, "ErrorInvalidUser", f"The requested user '{user_key}' is invalid.")
    return user, None


def json_body() -> tuple[dict[str, Any] | None, Response | None]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return None, bad_request("Invalid request: a JSON object body is required.")
    return body, None


# ---- paging and delta
def encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(value: str) -> dict[str, Any] | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, TypeError):
        return None
    return decoded if isinstance(decoded, dict) else None


def link(params: dict[str, Any]) -> str:
    """An absolute link to this same path on this same host (nextLink, deltaLink)."""
    return f"{request.host_url.rstrip('/')}{request.path}?{urlencode(params, safe='$,()')}"


def top() -> int:
    raw = request.args.get("$top")
    if raw is None:
        prefer = request.headers.get("Prefer", "")
        if "odata.maxpagesize=" in prefer:
            raw = prefer.split("odata.maxpagesize=", 1)[1].split(",")[0].strip()
    try:
        return max(1, min(int(raw), MAX_TOP)) if raw is not None else DEFAULT_TOP
    except ValueError:
        return DEFAULT_TOP


def select() -> list[str] | None:
    raw = request.args.get("$select")
    return [s.strip() for s in raw.split(",") if s.strip()] if raw else None


def paged(values: list[dict[str, Any]], context: str, extra: dict[str, Any] | None = None) -> Response:
    """A collection answer with `$top` pages and an absolute `@odata.nextLink` carrying the same query plus `$skiptoken`."""
    skip = 0
    if request.args.get("$skiptoken"):
        state = decode_token(request.args["$skiptoken"])
        if not state or not isinstance(state.get("skip"), int):
            return bad_request("Invalid $skiptoken.")
        skip = state["skip"]
    size = top()
    fields = select()
    page = [{k: v for k, v in item.items() if fields is None or k in fields or k in ("id", "@odata.type")} for item in values[skip : skip + size]]
    body: dict[str, Any] = {"@odata.context": f"{GRAPH}/$metadata#{context}", **(extra or {}), "value": page}
    if request.args.get("$count") == "true":
        body["@odata.count"] = len(values)
    if skip + size < len(values):
        params = {k: v for k, v in request.args.items() if k != "$skiptoken"}
        body["@odata.nextLink"] = link({**params, "$skiptoken": encode_token({"skip": skip + size})})
    return jsonify(body)


def delta_answer(
    objects: Iterable[dict[str, Any]],
    render: Callable[[dict[str, Any]], dict[str, Any]],
    removed: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    token_param: str = "$deltatoken",
    keep: tuple[str, ...] = (),
) -> Response:
    """One delta round: the first walks every live object, later rounds (delta token) only what changed since, removed ones marked."""
    if request.args.get("$skiptoken"):
        state = decode_token(request.args["$skiptoken"])
    elif request.args.get(token_param):
        raw = request.args[token_param]
        mark = current_version() if raw == "latest" else (decode_token(raw) or {}).get("v")
        if not isinstance(mark, int):
            return graph_error(410, "SyncStateNotFound", "The sync state generation is not found. Start a new round of delta queries.")
        state = {"since": mark, "skip": 0, "upto": current_version(), "latest": raw == "latest"}
    else:
        state = {"since": 0, "skip": 0, "upto": current_version()}
    if not state or not all(isinstance(state.get(k), int) for k in ("since", "skip", "upto")):
        return bad_request("Invalid delta state token.")
    with STORE.lock:
        changed = [o for o in objects if state["since"] < o.get("_version", 0) <= state["upto"]]
    if state["since"] == 0:
        changed = [o for o in changed if not o.get("_deleted")]
    if state.get("latest"):
        changed = []  # "sync from now": nothing to replay, just a token
    size = top()
    page = changed[state["skip"] : state["skip"] + size]
    body: dict[str, Any] = {"value": [removed(o) if o.get("_deleted") else render(o) for o in page]}
    kept = {k: request.args[k] for k in keep if k in request.args}
    if state["skip"] + size < len(changed):
        body["@odata.nextLink"] = link({**kept, "$skiptoken": encode_token({**state, "skip": state["skip"] + size})})
    else:
        body["@odata.deltaLink"] = link({**kept, token_param: encode_token({"v": state["upto"]})})
    return jsonify(body)


def expires_in(minutes: int) -> str:
    return iso(now() + timedelta(minutes=minutes))
