"""Okta Management API stand-in: users/groups/app assignments with Link paging, search, X-Rate-Limit-* headers, event hooks."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox.oauth import OAuthProfile, oauth_blueprint, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "okta"
APP_ID = "0oabastion0demo0app1"
RATE_LIMIT = 600  # requests per minute window for /api/v1/users (Okta's org-wide default class)
SEED_TIME = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
_clock_lock = threading.Lock()
_last_stamp = [0.0]


def _okta_id(prefix: str, seed: str) -> str:
    return prefix + hashlib.sha1(seed.encode()).hexdigest()[:17]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _tick() -> str:
    """A strictly increasing lastUpdated (millisecond resolution), so `lastUpdated gt` never loses a change."""
    with _clock_lock:
        stamp = max(time.time(), _last_stamp[0] + 0.001)
        _last_stamp[0] = stamp
    return _iso(datetime.fromtimestamp(stamp, tz=UTC))


def error_body(code: str, summary: str, causes: list[str] | None = None) -> dict[str, Any]:
    return {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oae" + secrets.token_hex(10),
        "errorCauses": [{"errorSummary": c} for c in causes or []],
    }


def _error(status: int, code: str, summary: str, causes: list[str] | None = None) -> Response:
    response = jsonify(error_body(code, summary, causes))
    response.status_code = status
    return response


def _rate_state() -> dict[str, Any]:
    with STORE.lock:
        state = STORE.collection(VENDOR, "rate").setdefault("window", {"limit": RATE_LIMIT, "remaining": RATE_LIMIT, "reset": int(time.time()) + 60})
        if state["reset"] <= time.time():
            state.update(remaining=state["limit"], reset=int(time.time()) + 60)
        return state


def _rate_limited(retry_after: int) -> Response:
    response = _error(429, "E0000047", "API call exceeded rate limit due to too many requests.")
    response.headers["X-Rate-Limit-Limit"] = str(RATE_LIMIT)
    response.headers["X-Rate-Limit-Remaining"] = "0"
    response.headers["X-Rate-Limit-Reset"] = str(int(time.time()) + int(retry_after))
    return response


def _fault_error(status: int, message: str) -> Response:
    if status == 401:
        return _error(401, "E0000011", "Invalid token provided")
    return _error(status, "E0000009", f"Internal Server Error: {message}")


# ---------------------------------------------------------------- data
def _users():
    return STORE.collection(VENDOR, "users")


def _groups():
    return STORE.collection(VENDOR, "groups")


def seed() -> None:
    rows = people()
    ids = {row["email"]: _okta_id("00u", row["email"]) for row in rows}
    for row in rows:
        stamp = _iso(SEED_TIME + timedelta(seconds=row["index"]))
        _users()[ids[row["email"]]] = {
            "id": ids[row["email"]],
            "status": "ACTIVE",
            "created": stamp,
            "activated": stamp,
            "statusChanged": stamp,
            "lastLogin": None,
            "lastUpdated": stamp,
            "passwordChanged": stamp,
            "type": {"id": "oty1bastiondefault"},
            "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
            "profile": {
                "login": row["email"],
                "email": row["email"],
                "firstName": row["given_name"],
                "lastName": row["family_name"],
                "displayName": row["name"],
                "title": row["title"],
                "department": row["department"],
                "primaryPhone": f"+1 555 02{row['index']:02d}",
                "managerId": ids.get(row["manager_email"], "") if row["manager_email"] else None,
                "manager": next((r["name"] for r in rows if r["email"] == row["manager_email"]), None),
            },
        }
    by_department: dict[str, list[str]] = {}
    for row in rows:
        by_department.setdefault(row["department"], []).append(ids[row["email"]])
    group_specs = [("Everyone", "BUILT_IN", "All users in your organization", list(ids.values()))]
    group_specs += [(f"dept-{d.lower()}", "OKTA_GROUP", f"{d} department", members) for d, members in sorted(by_department.items())]
    group_specs.append(
        ("crisis-team", "OKTA_GROUP", "Crisis response", [ids[e] for e in ("ava.chen@acme.example", "marcus.okafor@acme.example", "liam.novak@acme.example")])
    )
    for name, kind, description, members in group_specs:
        gid = _okta_id("00g", name)
        stamp = _iso(SEED_TIME)
        _groups()[gid] = {
            "id": gid,
            "created": stamp,
            "lastUpdated": stamp,
            "lastMembershipUpdated": stamp,
            "objectClass": ["okta:user_group"],
            "type": kind,
            "profile": {"name": name, "description": description},
            "_members": members,
        }
    STORE.collection(VENDOR, "apps")[APP_ID] = {"id": APP_ID, "label": "Bastion", "name": "bastion", "status": "ACTIVE", "_assigned": list(ids.values())[:12]}
    with STORE.lock:
        STORE.webhook_subscriptions[VENDOR] = []


# ---------------------------------------------------------------- search expressions (lastUpdated gt "…", status eq "…", and/or)
_TERM = re.compile(r'\s*([\w.]+)\s+(eq|ne|gt|ge|lt|le|sw|co|pr)\s*(?:"((?:[^"\\]|\\.)*)")?\s*', re.IGNORECASE)


def _lookup(user: dict[str, Any], path: str) -> Any:
    value: Any = user
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _compare(actual: Any, op: str, expected: str | None) -> bool:
    op = op.lower()
    if op == "pr":
        return actual not in (None, "")
    if actual is None:
        return False
    actual_text, expected_text = str(actual), expected or ""
    if op in ("eq", "ne", "sw", "co"):
        a, e = actual_text.lower(), expected_text.lower()
        return {"eq": a == e, "ne": a != e, "sw": a.startswith(e), "co": e in a}[op]
    return {"gt": actual_text > expected_text, "ge": actual_text >= expected_text, "lt": actual_text < expected_text, "le": actual_text <= expected_text}[op]


def parse_search(expression: str):
    """Compile `a op "v" (and|or) …` (left to right, `and` binding tighter) into a predicate; ValueError if malformed."""
    clauses: list[list[tuple[str, str, str | None]]] = [[]]
    rest = expression.strip()
    while rest:
        match = _TERM.match(rest)
        if not match or (match.group(2).lower() != "pr" and match.group(3) is None):
            raise ValueError(expression)
        clauses[-1].append((match.group(1), match.group(2), match.group(3)))
        rest = rest[match.end() :]
        joiner = re.match(r"(and|or)\s+", rest, re.IGNORECASE)
        if joiner:
            if joiner.group(1).lower() == "or":
                clauses.append([])
            rest = rest[joiner.end() :]
        elif rest:
            raise ValueError(expression)
    if not clauses[0]:
        raise ValueError(expression)
    return lambda user: any(all(_compare(_lookup(user, a), op, v) for a, op, v in clause) for clause in clauses)


# ---------------------------------------------------------------- helpers
def _authorized() -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("ssws", "bearer"):
        return False
    return token_info(VENDOR, token.strip()) is not None


def _public(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    body = {k: v for k, v in obj.items() if not k.startswith("_")}
    body["_links"] = {"self": {"href": f"{request.host_url.rstrip('/')}/okta/api/v1/{kind}/{obj['id']}"}}
    return body


def _paged(items: list[dict[str, Any]], *, default_limit: int, max_limit: int, kind: str) -> Response:
    """Okta cursor paging: `after` is the last id of the previous page; Link headers carry self and next."""
    try:
        limit = max(1, min(int(request.args.get("limit", default_limit)), max_limit))
    except ValueError:
        return _error(400, "E0000001", "Api validation failed: limit", ["limit: must be a number"])
    after = request.args.get("after")
    start = 0
    if after:
        ids = [item["id"] for item in items]
        if after not in ids:
            return _error(400, "E0000031", "Invalid search criteria.", ["after: unknown cursor"])
        start = ids.index(after) + 1
    page = items[start : start + limit]
    response = jsonify([_public(item, kind) for item in page])
    base = f"{request.host_url.rstrip('/')}{request.path}"
    params = {k: v for k, v in request.args.items() if k != "after"}
    links = [f'<{base}?{urlencode(params)}>; rel="self"']
    if start + limit < len(items):
        links.append(f'<{base}?{urlencode({**params, "after": page[-1]["id"], "limit": limit})}>; rel="next"')
    response.headers["Link"] = ", ".join(links)
    return response


def blueprints() -> list[Blueprint]:
    api = Blueprint("okta_api", __name__)
    install_faults(api, VENDOR, rate_limited=_rate_limited, error=_fault_error)

    @api.before_request
    def _auth_and_rate():
        if not _authorized():
            return _error(401, "E0000011", "Invalid token provided")
        state = _rate_state()
        with STORE.lock:
            if state["remaining"] <= 0:
                return _rate_limited(max(1, int(state["reset"] - time.time())))
            state["remaining"] -= 1
        return None

    @api.after_request
    def _rate_headers(response: Response):
        state = _rate_state()
        response.headers.setdefault("X-Rate-Limit-Limit", str(state["limit"]))
        response.headers.setdefault("X-Rate-Limit-Remaining", str(max(0, state["remaining"])))
        response.headers.setdefault("X-Rate-Limit-Reset", str(state["reset"]))
        return response

    @api.get("/api/v1/users/me")
    def me():
        header = request.headers.get("Authorization", "")
        info = token_info(VENDOR, header.partition(" ")[2].strip()) or {}
        return jsonify(
            {"id": "00uadmin0sandbox", "status": "ACTIVE", "profile": {"login": info.get("subject", "sandbox-admin"), "email": "admin@acme.example"}}
        )

    @api.get("/api/v1/users")
    def list_users():
        with STORE.lock:
            users = list(_users().values())
        search = request.args.get("search")
        if search:
            try:
                predicate = parse_search(search)
            except ValueError:
                return _error(400, "E0000031", "Invalid search criteria.", [f"search: cannot parse {search!r}"])
            users = [u for u in users if predicate(u)]
        else:  # without `search`, Okta lists every user except DEPROVISIONED ones
            users = [u for u in users if u["status"] != "DEPROVISIONED"]
        if request.args.get("filter"):  # the older `filter` parameter: same expressions, narrower attribute set
            try:
                predicate = parse_search(request.args["filter"])
            except ValueError:
                return _error(400, "E0000031", "Invalid search criteria.", [f"filter: cannot parse {request.args['filter']!r}"])
            users = [u for u in users if predicate(u)]
        query = (request.args.get("q") or "").lower()
        if query:  # `q`: prefix match on firstName, lastName or email; default limit 10
            users = [u for u in users if any(str(u["profile"].get(k) or "").lower().startswith(query) for k in ("firstName", "lastName", "email"))]
            return _paged(users, default_limit=10, max_limit=200, kind="users")
        return _paged(users, default_limit=200, max_limit=200, kind="users")

    @api.get("/api/v1/users/<user_id>")
    def get_user(user_id: str):
        user = _find_user(user_id)
        if user is None:
            return _error(404, "E0000007", f"Not found: Resource not found: {user_id} (User)")
        return jsonify(_public(user, "users"))

    @api.post("/api/v1/users/<user_id>")
    def update_user(user_id: str):
        """Partial profile update (Okta's POST semantics): only the given profile properties change."""
        user = _find_user(user_id)
        if user is None:
            return _error(404, "E0000007", f"Not found: Resource not found: {user_id} (User)")
        body = request.get_json(silent=True) or {}
        profile = body.get("profile")
        if not isinstance(profile, dict):
            return _error(400, "E0000001", "Api validation failed: profile", ["profile: must be an object"])
        with STORE.lock:
            user["profile"].update(profile)
            user["lastUpdated"] = _tick()
        fire_event("user.account.update_profile", user)
        return jsonify(_public(user, "users"))

    @api.post("/api/v1/users/<user_id>/lifecycle/deactivate")
    def deactivate_user(user_id: str):
        user = _find_user(user_id)
        if user is None:
            return _error(404, "E0000007", f"Not found: Resource not found: {user_id} (User)")
        with STORE.lock:
            user["status"] = "DEPROVISIONED"
            user["statusChanged"] = user["lastUpdated"] = _tick()
        fire_event("user.lifecycle.deactivate", user)
        return jsonify({})

    @api.get("/api/v1/groups")
    def list_groups():
        with STORE.lock:
            groups = list(_groups().values())
        search = request.args.get("search")
        if search:
            try:
                predicate = parse_search(search)
            except ValueError:
                return _error(400, "E0000031", "Invalid search criteria.", [f"search: cannot parse {search!r}"])
            groups = [g for g in groups if predicate(g)]
        return _paged(groups, default_limit=10000, max_limit=10000, kind="groups")

    @api.get("/api/v1/groups/<group_id>/users")
    def group_users(group_id: str):
        group = _groups().get(group_id)
        if group is None:
            return _error(404, "E0000007", f"Not found: Resource not found: {group_id} (UserGroup)")
        with STORE.lock:
            members = [_users()[uid] for uid in group["_members"] if uid in _users() and _users()[uid]["status"] != "DEPROVISIONED"]
        return _paged(members, default_limit=1000, max_limit=1000, kind="users")

    @api.get("/api/v1/apps/<app_id>/users")
    def app_users(app_id: str):
        app = STORE.collection(VENDOR, "apps").get(app_id)
        if app is None:
            return _error(404, "E0000007", f"Not found: Resource not found: {app_id} (AppInstance)")
        assigned = []
        with STORE.lock:
            for uid in app["_assigned"]:
                user = _users().get(uid)
                if user is None or user["status"] == "DEPROVISIONED":
                    continue
                assigned.append(
                    {
                        "id": uid,
                        "created": user["created"],
                        "lastUpdated": user["lastUpdated"],
                        "scope": "USER",
                        "status": "ACTIVE",
                        "statusChanged": user["statusChanged"],
                        "syncState": "DISABLED",
                        "credentials": {"userName": user["profile"]["login"]},
                        "profile": {"email": user["profile"]["email"]},
                    }
                )
        return _paged(assigned, default_limit=50, max_limit=500, kind=f"apps/{app_id}/users")

    @api.post("/api/v1/eventHooks")
    def create_event_hook():
        body = request.get_json(silent=True) or {}
        channel = body.get("channel") or {}
        config = channel.get("config") or {}
        events = (body.get("events") or {}).get("items") or []
        if not body.get("name") or not config.get("uri") or not events:
            return _error(400, "E0000001", "Api validation failed: eventHook", ["name, channel.config.uri and events.items are required"])
        hook = {
            "id": _okta_id("who", secrets.token_hex(4)),
            "name": body["name"],
            "status": "ACTIVE",
            "verificationStatus": "UNVERIFIED",
            "events": {"type": "EVENT_TYPE", "items": events},
            "channel": {"type": "HTTP", "version": "1.0.0", "config": config},
            "created": _tick(),
        }
        with STORE.lock:
            STORE.webhook_subscriptions.setdefault(VENDOR, []).append(hook)
        STORE.record_created(VENDOR, "event_hook", hook["id"], f"{hook['name']} → {config['uri']}")
        return jsonify(_public_hook(hook))

    @api.post("/api/v1/eventHooks/<hook_id>/lifecycle/verify")
    def verify_event_hook(hook_id: str):
        hook = next((h for h in STORE.webhook_subscriptions.get(VENDOR, []) if h["id"] == hook_id), None)
        if hook is None:
            return _error(404, "E0000007", f"Not found: Resource not found: {hook_id} (EventHook)")
        challenge = secrets.token_urlsafe(24)
        headers = {"X-Okta-Verification-Challenge": challenge, **_hook_headers(hook)}
        try:
            answer = requests.get(hook["channel"]["config"]["uri"], headers=headers, timeout=(3, 10))
            verified = answer.status_code == 200 and answer.json().get("verification") == challenge
        except (requests.RequestException, ValueError):
            verified = False
        if not verified:
            return _error(400, "E0000001", "Api validation failed: Verification of event hook failed.")
        hook["verificationStatus"] = "VERIFIED"
        return jsonify(_public_hook(hook))

    control = Blueprint("okta_control", __name__)

    @control.post("/_control/rate-limit")
    def set_rate_limit():
        """Set the current window, e.g. {"remaining": 1, "reset_in": 2}, to exercise proactive throttling."""
        body = request.get_json(force=True) or {}
        state = _rate_state()
        with STORE.lock:
            state["limit"] = int(body.get("limit", state["limit"]))
            state["remaining"] = int(body.get("remaining", state["remaining"]))
            state["reset"] = int(time.time() + float(body.get("reset_in", 60)))
        return jsonify(state)

    @control.post("/_control/event-hooks/fire")
    def fire():
        """Deliver an event of `eventType` about `userId` to every verified hook subscribed to it."""
        body = request.get_json(force=True) or {}
        user = _find_user(str(body.get("userId", "")))
        if user is None:
            return _error(404, "E0000007", "Not found: user")
        return jsonify({"delivered": fire_event(str(body.get("eventType", "user.account.update_profile")), user)})

    return [api, control, oauth_blueprint(OAuthProfile(VENDOR, access_ttl=3600))]


def _find_user(user_id: str) -> dict[str, Any] | None:
    with STORE.lock:
        user = _users().get(user_id)
        if user is None:  # Okta accepts the login as well as the id
            user = next((u for u in _users().values() if u["profile"]["login"].lower() == user_id.lower()), None)
        return user


def _public_hook(hook: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in hook.items()}
    config = dict(body["channel"]["config"])
    if config.get("authScheme"):
        config["authScheme"] = {k: v for k, v in config["authScheme"].items() if k != "value"}  # Okta never echoes the secret
    body["channel"] = {**body["channel"], "config": config}
    return body


def _hook_headers(hook: dict[str, Any]) -> dict[str, str]:
    config = hook["channel"]["config"]
    headers = {h["key"]: h["value"] for h in config.get("headers") or [] if h.get("key")}
    scheme = config.get("authScheme") or {}
    if scheme.get("type") == "HEADER" and scheme.get("key"):
        headers[scheme["key"]] = scheme.get("value", "")
    return headers


def fire_event(event_type: str, user: dict[str, Any]) -> int:
    """POST an event hook delivery (Okta's envelope) to each verified, subscribed hook; return how many accepted it."""
    delivered = 0
    with STORE.lock:
        hooks = [h for h in STORE.webhook_subscriptions.get(VENDOR, []) if h["verificationStatus"] == "VERIFIED" and event_type in h["events"]["items"]]
    for hook in hooks:
        now = _iso(datetime.now(UTC))
        payload = {
            "eventType": "com.okta.event_hook",
            "eventTypeVersion": "1.0",
            "cloudEventsVersion": "0.1",
            "source": f"{request.host_url.rstrip('/')}/okta/api/v1/eventHooks/{hook['id']}",
            "eventId": secrets.token_hex(16),
            "data": {
                "events": [
                    {
                        "uuid": secrets.token_hex(16),
                        "published": now,
                        "eventType": event_type,
                        "version": "0",
                        "displayMessage": {"user.lifecycle.deactivate": "Deactivate Okta user"}.get(event_type, "Update user profile for Okta"),
                        "severity": "INFO",
                        "actor": {"id": "00uadmin0sandbox", "type": "User", "alternateId": "admin@acme.example", "displayName": "Sandbox Admin"},
                        "outcome": {"result": "SUCCESS"},
                        "target": [
                            {"id": user["id"], "type": "User", "alternateId": user["profile"]["login"], "displayName": user["profile"].get("displayName")}
                        ],
                    }
                ]
            },
            "eventTime": now,
            "contentType": "application/json",
        }
        try:
            answer = requests.post(hook["channel"]["config"]["uri"], json=payload, headers=_hook_headers(hook), timeout=(3, 10))
            delivered += int(200 <= answer.status_code < 300)
        except requests.RequestException:
            continue
    return delivered
