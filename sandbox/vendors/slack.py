"""Slack Web API stand-in: /slack/api/<method> with Slack's envelope (HTTP 200 + ok:false), cursor paging and Events API delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from typing import Any

import requests
from flask import Blueprint, Response, current_app, jsonify, render_template_string, request

from sandbox.oauth import OAuthProfile, bearer_token, oauth_blueprint, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "slack"
TEAM_ID = "T0ACME0001"
TEAM_NAME = "Acme"
BOT_USER_ID = "U0BASTION1"
BOT_ID = "B0BASTION1"
APP_ID = "A0BASTION1"
CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")
MAX_INVITE = 1000  # Slack's current documented maximum per conversations.invite call

# Which scope each method needs (Slack's granular bot scopes); any one of a tuple is enough.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "users.list": ("users:read",),
    "users.info": ("users:read",),
    "users.lookupByEmail": ("users:read.email",),
    "conversations.list": ("channels:read", "groups:read"),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.members": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "conversations.create": ("channels:manage", "groups:write"),
    "conversations.setTopic": ("channels:manage", "groups:write"),
    "conversations.invite": ("channels:manage", "groups:write"),
    "conversations.archive": ("channels:manage", "groups:write"),
    "conversations.open": ("im:write",),
    "conversations.history": ("channels:history", "groups:history", "im:history"),
    "chat.postMessage": ("chat:write",),
}


def _users() -> Any:
    return STORE.collection(VENDOR, "users")


def _channels() -> Any:
    return STORE.collection(VENDOR, "channels")


def _knobs() -> Any:
    return STORE.collection(VENDOR, "_knobs")


def _user_id(index: int) -> str:
    return f"U{1000 + index:04d}ACME"


def seed() -> None:
    """The shared 20 people as Slack members plus the Bastion bot and a few channels."""
    now = int(time.time())
    with STORE.lock:
        users = _users()
        for person in people():
            uid = _user_id(person["index"])
            users[uid] = {
                "id": uid,
                "team_id": TEAM_ID,
                "name": person["email"].split("@")[0],
                "deleted": False,
                "color": "9f69e7",
                "real_name": person["name"],
                "tz": "Europe/London",
                "tz_label": "Greenwich Mean Time",
                "tz_offset": 0,
                "profile": {
                    "title": person["title"],
                    "phone": f"+44 20 7946 {person['index']:04d}",
                    "skype": "",
                    "real_name": person["name"],
                    "real_name_normalized": person["name"],
                    "display_name": person["given_name"],
                    "display_name_normalized": person["given_name"],
                    "fields": {},
                    "status_text": "",
                    "status_emoji": "",
                    "avatar_hash": hashlib.md5(person["email"].encode()).hexdigest()[:12],
                    "email": person["email"],
                    "first_name": person["given_name"],
                    "last_name": person["family_name"],
                    "team": TEAM_ID,
                },
                "is_admin": person["index"] == 0,
                "is_owner": person["index"] == 0,
                "is_primary_owner": person["index"] == 0,
                "is_restricted": False,
                "is_ultra_restricted": False,
                "is_bot": False,
                "is_app_user": False,
                "updated": now - 86400 + person["index"],
            }
        users[BOT_USER_ID] = {
            "id": BOT_USER_ID,
            "team_id": TEAM_ID,
            "name": "bastion",
            "deleted": False,
            "real_name": "Bastion",
            "profile": {
                "title": "",
                "phone": "",
                "skype": "",
                "real_name": "Bastion",
                "real_name_normalized": "Bastion",
                "display_name": "",
                "display_name_normalized": "",
                "fields": {},
                "status_text": "",
                "status_emoji": "",
                "avatar_hash": "bastionbot01",
                "bot_id": BOT_ID,
                "api_app_id": APP_ID,
                "team": TEAM_ID,
            },
            "is_admin": False,
            "is_owner": False,
            "is_bot": True,
            "is_app_user": False,
            "updated": now - 86400,
        }
        all_ids = [_user_id(p["index"]) for p in people()]
        for name, private, members, topic in (
            ("general", False, all_ids, "Company-wide announcements"),
            ("random", False, all_ids[:12], "Non-work banter"),
            ("security", False, all_ids[1:2] + all_ids[6:7] + all_ids[15:16], "Security team"),
            ("exec-team", True, all_ids[:5] + all_ids[13:14] + [BOT_USER_ID], "Leadership only"),
            ("incident-response", False, [all_ids[i] for i in (1, 4, 5, 6, 7, 19)] + [BOT_USER_ID], "Active incidents"),
        ):
            _new_channel(name, private, members, creator=all_ids[0], topic=topic, created=now - 30 * 86400)
    install_default_knobs()


def install_default_knobs() -> None:
    with STORE.lock:
        _knobs().update({"fail_after_write": 0, "fail_status": 500})


def _channel_id() -> str:
    return "C" + base64.b32encode(STORE.next_id().to_bytes(5, "big")).decode().rstrip("=")[:9]


def _new_channel(name: str, private: bool, members: list[str], *, creator: str, topic: str = "", created: int | None = None) -> dict[str, Any]:
    created = created or int(time.time())
    channel = {
        "id": _channel_id(),
        "name": name,
        "name_normalized": name,
        "created": created,
        "creator": creator,
        "is_archived": False,
        "is_channel": not private,
        "is_group": False,  # only private channels created before March 2021 are groups; new ones are C… with is_private
        "is_general": name == "general",
        "is_im": False,
        "is_mpim": False,
        "is_private": private,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "is_pending_ext_shared": False,
        "unlinked": 0,
        "topic": {"value": topic, "creator": creator if topic else "", "last_set": created if topic else 0},
        "purpose": {"value": "", "creator": "", "last_set": 0},
        "previous_names": [],
        "_members": list(dict.fromkeys(members)),
        "_messages": [],
    }
    _channels()[channel["id"]] = channel
    return channel


def _public(channel: dict[str, Any], *, for_user: str = BOT_USER_ID) -> dict[str, Any]:
    body = {k: v for k, v in channel.items() if not k.startswith("_")}
    if not channel.get("is_im"):
        body["num_members"] = len(channel["_members"])
        body["is_member"] = for_user in channel["_members"]
    return body


# ---- envelope helpers -------------------------------------------------------------------------


def _ok(scopes: list[str] | None = None, **body: Any) -> Response:
    response = jsonify({"ok": True, **body})
    if scopes is not None:
        response.headers["x-oauth-scopes"] = ",".join(scopes)
    return response


def _fail(error: str, status: int = 200, **extra: Any) -> Response:
    response = jsonify({"ok": False, "error": error, **extra})
    response.status_code = status  # method errors are HTTP 200, like the real API
    return response


def _rate_limited(retry_after: int) -> Response:
    response = _fail("ratelimited", status=429)
    response.headers["Retry-After"] = str(retry_after)
    return response


def unknown_route(status: int, method: str, path: str) -> Response:
    """Slack answers a method it does not have with unknown_method (HTTP 404), whatever the HTTP verb."""
    return _fail("unknown_method", status=404, req_method=path.rsplit("/", 1)[-1])


def _error(status: int, message: str) -> Response:
    code = "service_unavailable" if status == 503 else "internal_error" if status >= 500 else "invalid_request"
    return _fail(code, status=status, detail=message)


def _params() -> dict[str, Any]:
    """Slack takes arguments as query string, form fields or a JSON body."""
    params: dict[str, Any] = dict(request.args.items())
    params.update(request.form.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
    return params


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes")


def _json_arg(value: Any) -> Any:
    """Slack accepts `blocks` / `metadata` as JSON strings (form posts) or objects (JSON posts)."""
    if isinstance(value, str) and value.strip():
        return json.loads(value)
    return value


def _fail_after_write() -> Response | None:
    """Fault for idempotency tests: the write happened, but the caller gets a 5xx."""
    with STORE.lock:
        knobs = _knobs()
        if knobs.get("fail_after_write", 0) > 0:
            knobs["fail_after_write"] -= 1
            return _error(int(knobs.get("fail_status", 500)), "injected failure after the write (sandbox knob)")
    return None


def _paged(items: list[dict[str, Any]], params: dict[str, Any], key: str, extra: dict[str, Any], scopes: list[str]) -> Response:
    try:
        limit = int(params.get("limit") or 0) or 100
    except ValueError:
        return _fail("invalid_arguments")
    limit = min(limit, 1000)
    offset = 0
    cursor = params.get("cursor")
    if cursor:
        try:
            kind, raw = base64.b64decode(cursor).decode().split(":", 1)
            offset = int(raw)
            assert kind == key
        except Exception:  # noqa: BLE001 - any malformed cursor is Slack's invalid_cursor
            return _fail("invalid_cursor")
    page = items[offset : offset + limit]
    next_offset = offset + len(page)
    next_cursor = base64.b64encode(f"{key}:{next_offset}".encode()).decode() if next_offset < len(items) else ""
    return _ok(scopes, **{key: page}, **extra, response_metadata={"next_cursor": next_cursor})


# ---- the blueprint ------------------------------------------------------------------------------


def _api_blueprint() -> Blueprint:
    bp = Blueprint("slack_api", __name__)
    install_faults(bp, VENDOR, rate_limited=_rate_limited, error=_error)

    @bp.route("/api/<method>", methods=["GET", "POST"])
    def api(method: str):
        params = _params()
        token = bearer_token() or params.get("token")
        if method in ("oauth.v2.access",):
            return current_app.view_functions["slack_oauth.token"]()
        if not token:
            return _fail("not_authed")
        grant = token_info(VENDOR, token)
        if grant is None:
            return _fail("invalid_auth")
        scopes = list(grant.get("scopes") or [])
        needed = METHOD_SCOPES.get(method)
        if needed and scopes and not any(s in scopes for s in needed):
            return _fail("missing_scope", needed=",".join(needed), provided=",".join(scopes))
        handler = METHODS.get(method)
        if handler is None:
            return _fail("unknown_method", status=404)
        return handler(params, scopes)

    @bp.get("/archives/<channel_id>")
    def archive_view(channel_id: str):
        with STORE.lock:
            channel = _channels().get(channel_id)
            if channel is None:
                return Response("channel_not_found", status=404)
            data = _public(channel)
            messages = list(channel["_messages"])
        return render_template_string(
            "<h1>#{{ c.name }}</h1><p>{{ c.topic.value }}</p><p>{{ c.num_members }} members{% if c.is_archived %} · archived{% endif %}</p>"
            "<ul>{% for m in messages %}<li><code>{{ m.ts }}</code> {{ m.text }}</li>{% endfor %}</ul>",
            c=data,
            messages=messages,
        )

    return bp


def auth_test(params: dict[str, Any], scopes: list[str]) -> Response:
    return _ok(
        scopes,
        url=f"{request.host_url}{VENDOR}/",
        team=TEAM_NAME,
        user="bastion",
        team_id=TEAM_ID,
        user_id=BOT_USER_ID,
        bot_id=BOT_ID,
        is_enterprise_install=False,
    )


def users_list(params: dict[str, Any], scopes: list[str]) -> Response:
    with STORE.lock:
        members = [json.loads(json.dumps(u)) for u in _users().values()]
    return _paged(members, params, "members", {"cache_ts": int(time.time())}, scopes)


def users_info(params: dict[str, Any], scopes: list[str]) -> Response:
    with STORE.lock:
        user = _users().get(params.get("user", ""))
    return _ok(scopes, user=user) if user else _fail("user_not_found")


def users_lookup_by_email(params: dict[str, Any], scopes: list[str]) -> Response:
    email = str(params.get("email", "")).strip().lower()
    with STORE.lock:
        for user in _users().values():
            if (user["profile"].get("email") or "").lower() == email and email:
                return _ok(scopes, user=user)
    return _fail("users_not_found")


def _visible_channels(types: set[str], exclude_archived: bool) -> list[dict[str, Any]]:
    with STORE.lock:
        found = []
        for channel in _channels().values():
            if channel.get("is_im"):
                if "im" in types:
                    found.append(_public(channel))
                continue
            kind = "private_channel" if channel["is_private"] else "public_channel"
            if kind not in types or (exclude_archived and channel["is_archived"]):
                continue
            if channel["is_private"] and BOT_USER_ID not in channel["_members"]:
                continue  # private channels are listed only to members
            found.append(_public(channel))
    return found


def conversations_list(params: dict[str, Any], scopes: list[str]) -> Response:
    types = {t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()}
    unknown = types - {"public_channel", "private_channel", "mpim", "im"}
    if unknown:
        return _fail("invalid_types")
    return _paged(_visible_channels(types, _truthy(params.get("exclude_archived"))), params, "channels", {}, scopes)


def conversations_info(params: dict[str, Any], scopes: list[str]) -> Response:
    with STORE.lock:
        channel = _channels().get(params.get("channel", ""))
        if channel is None or (channel["is_private"] and BOT_USER_ID not in channel["_members"]):
            return _fail("channel_not_found")
        return _ok(scopes, channel=_public(channel))


def conversations_members(params: dict[str, Any], scopes: list[str]) -> Response:
    with STORE.lock:
        channel = _channels().get(params.get("channel", ""))
        if channel is None or (channel.get("is_private") and BOT_USER_ID not in channel["_members"]):
            return _fail("channel_not_found")
        members = list(channel["_members"])
    return _paged(members, params, "members", {}, scopes)


def conversations_create(params: dict[str, Any], scopes: list[str]) -> Response:
    name = str(params.get("name") or "")
    if not name:
        return _fail("invalid_name_required")
    if len(name) > 80:
        return _fail("invalid_name_maxlength")
    if not CHANNEL_NAME.match(name):
        return _fail("invalid_name_specials")
    private = _truthy(params.get("is_private"))
    with STORE.lock:
        if any(c.get("name") == name for c in _channels().values()):  # DMs have no name
            return _fail("name_taken")
        channel = _new_channel(name, private, [BOT_USER_ID], creator=BOT_USER_ID)
        body = _public(channel)
    url = f"{request.host_url}{VENDOR}/archives/{channel['id']}"
    STORE.record_created(VENDOR, "channel", channel["id"], f"#{name}{' (private)' if private else ''}", url)
    return _fail_after_write() or _ok(scopes, channel=body)


def _writable_channel(channel_id: str) -> tuple[dict[str, Any] | None, Response | None]:
    channel = _channels().get(channel_id)
    if channel is None or (channel.get("is_private") and BOT_USER_ID not in channel["_members"]):
        return None, _fail("channel_not_found")
    if channel.get("is_archived"):
        return None, _fail("is_archived")
    return channel, None


def conversations_set_topic(params: dict[str, Any], scopes: list[str]) -> Response:
    topic = str(params.get("topic") or "")
    if len(topic) > 250:
        return _fail("too_long")
    with STORE.lock:
        channel, failure = _writable_channel(str(params.get("channel", "")))
        if failure:
            return failure
        channel["topic"] = {"value": topic, "creator": BOT_USER_ID, "last_set": int(time.time())}
        return _ok(scopes, channel=_public(channel))


def conversations_invite(params: dict[str, Any], scopes: list[str]) -> Response:
    user_ids = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
    if not user_ids:
        return _fail("no_user")
    if len(user_ids) > MAX_INVITE:
        return _fail("too_many_users")
    force = _truthy(params.get("force"))
    with STORE.lock:
        channel, failure = _writable_channel(str(params.get("channel", "")))
        if failure:
            return failure
        errors = []
        for uid in user_ids:
            if uid not in _users():
                errors.append({"user": uid, "ok": False, "error": "user_not_found"})
            elif uid == BOT_USER_ID:
                errors.append({"user": uid, "ok": False, "error": "cant_invite_self"})
            elif uid in channel["_members"]:
                errors.append({"user": uid, "ok": False, "error": "already_in_channel"})
        failed = {e["user"] for e in errors}
        valid = [uid for uid in user_ids if uid not in failed]
        if errors and (not force or not valid):
            # Without force one bad id fails the whole call and nobody is invited.
            return _fail(errors[0]["error"], errors=errors)
        channel["_members"].extend(uid for uid in valid if uid not in channel["_members"])
        body = _public(channel)
    for uid in valid:
        STORE.record_created(VENDOR, "invite", f"{channel['id']}:{uid}", f"{uid} → #{channel['name']}")
    failure = _fail_after_write()
    if failure:
        return failure
    return _ok(scopes, channel=body, **({"errors": errors} if errors else {}))


def conversations_archive(params: dict[str, Any], scopes: list[str]) -> Response:
    with STORE.lock:
        channel = _channels().get(str(params.get("channel", "")))
        if channel is None:
            return _fail("channel_not_found")
        if channel["is_archived"]:
            return _fail("already_archived")
        if channel["is_general"]:
            return _fail("cant_archive_general")
        if BOT_USER_ID not in channel["_members"]:
            return _fail("not_in_channel")
        channel["is_archived"] = True
    # Slack tells subscribed apps about every archive, the caller's own included.
    deliver({"type": "channel_archive", "channel": channel["id"], "user": BOT_USER_ID})
    return _ok(scopes)


def conversations_open(params: dict[str, Any], scopes: list[str]) -> Response:
    user_ids = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
    if not user_ids:
        return _fail("users_list_not_supplied")
    if len(user_ids) > 1:
        return _fail("method_not_supported_for_channel_type")  # group DMs are out of the stand-in's scope
    uid = user_ids[0]
    with STORE.lock:
        if uid not in _users():
            return _fail("user_not_found")
        for channel in _channels().values():
            if channel.get("is_im") and channel["user"] == uid:
                return _ok(scopes, no_op=True, already_open=True, channel={"id": channel["id"]})
        dm_id = "D" + _channel_id()[1:]
        _channels()[dm_id] = {
            "id": dm_id,
            "created": int(time.time()),
            "is_im": True,
            "is_org_shared": False,
            "user": uid,
            "is_archived": False,
            "is_private": True,
            "_members": [BOT_USER_ID, uid],
            "_messages": [],
        }
    return _ok(scopes, channel={"id": dm_id})


def chat_post_message(params: dict[str, Any], scopes: list[str]) -> Response:
    text = str(params.get("text") or "")
    try:
        blocks = _json_arg(params.get("blocks"))
        metadata = _json_arg(params.get("metadata"))
    except ValueError:
        return _fail("invalid_blocks")
    if blocks is not None and (not isinstance(blocks, list) or any(not isinstance(b, dict) or "type" not in b for b in blocks)):
        return _fail("invalid_blocks")
    if not text and not blocks:
        return _fail("no_text")
    if len(text) > 40000:
        return _fail("msg_too_long")
    if metadata is not None and (not isinstance(metadata, dict) or "event_type" not in metadata or "event_payload" not in metadata):
        return _fail("invalid_metadata_format")
    with STORE.lock:
        channel, failure = _writable_channel(str(params.get("channel", "")))
        if failure:
            return failure
        if BOT_USER_ID not in channel["_members"]:
            return _fail("not_in_channel")
        ts = f"{time.time():.6f}"
        while any(m["ts"] == ts for m in channel["_messages"]):
            ts = f"{float(ts) + 0.000001:.6f}"
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID, "text": text, "ts": ts, "team": TEAM_ID}
        if blocks:
            message["blocks"] = blocks
        if metadata:
            message["metadata"] = metadata
        channel["_messages"].insert(0, message)
        channel_id = channel["id"]
        label = channel.get("name") or f"DM {channel.get('user')}"
    url = f"{request.host_url}{VENDOR}/archives/{channel_id}"
    STORE.record_created(VENDOR, "message", f"{channel_id}:{ts}", f"{label}: {text[:80]}", url)
    failure = _fail_after_write()
    if failure:
        return failure
    return _ok(scopes, channel=channel_id, ts=ts, message={k: v for k, v in message.items() if k != "metadata"})


def conversations_history(params: dict[str, Any], scopes: list[str]) -> Response:
    include_metadata = _truthy(params.get("include_all_metadata"))
    with STORE.lock:
        channel = _channels().get(str(params.get("channel", "")))
        if channel is None or BOT_USER_ID not in channel["_members"]:
            return _fail("channel_not_found")
        messages = [{k: v for k, v in m.items() if include_metadata or k != "metadata"} for m in channel["_messages"]]  # newest first, like Slack
    return _paged(messages, params, "messages", {"has_more": False, "pin_count": 0}, scopes)


METHODS = {
    "auth.test": auth_test,
    "users.list": users_list,
    "users.info": users_info,
    "users.lookupByEmail": users_lookup_by_email,
    "conversations.list": conversations_list,
    "conversations.info": conversations_info,
    "conversations.create": conversations_create,
    "conversations.members": conversations_members,
    "conversations.setTopic": conversations_set_topic,
    "conversations.invite": conversations_invite,
    "conversations.archive": conversations_archive,
    "conversations.open": conversations_open,
    "conversations.history": conversations_history,
    "chat.postMessage": chat_post_message,
}


# ---- Events API delivery ---------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def deliver(event: dict[str, Any]) -> str:
    """Wrap an inner event in Slack's event_callback envelope and POST it, signed, to every subscription (background)."""
    event_id = "Ev" + secrets.token_hex(5).upper()
    envelope = {
        "token": "sandbox-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": {"event_ts": f"{time.time():.6f}", **event},
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authed_users": [BOT_USER_ID],
    }
    body = json.dumps(envelope).encode()
    with STORE.lock:
        targets = list(STORE.webhook_subscriptions.get(VENDOR, []))
    deliveries = STORE.collection(VENDOR, "_deliveries")

    def send() -> None:
        for target in targets:
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": str(timestamp),
                "X-Slack-Signature": sign(target["signing_secret"], timestamp, body),
                "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            }
            try:
                status: int | str = requests.post(target["url"], data=body, headers=headers, timeout=10).status_code
            except requests.RequestException as exc:
                status = f"error: {type(exc).__name__}"
            with STORE.lock:
                deliveries[f"{event_id}:{target['url']}"] = {"event_id": event_id, "url": target["url"], "status": status}

    threading.Thread(target=send, name=f"slack-deliver-{event_id}", daemon=True).start()
    return event_id


def _control_blueprint() -> Blueprint:
    bp = Blueprint("slack_control", __name__)

    @bp.post("/_sandbox/event_subscriptions")
    def subscribe():
        body = request.get_json(force=True) or {}
        if not body.get("url") or not body.get("signing_secret"):
            return jsonify({"error": "url and signing_secret are required"}), 400
        with STORE.lock:
            STORE.webhook_subscriptions.setdefault(VENDOR, []).append({"url": body["url"], "signing_secret": body["signing_secret"]})
        return jsonify({"ok": True}), 201

    @bp.post("/_sandbox/archive_channel")
    def archive_and_notify():
        body = request.get_json(force=True) or {}
        with STORE.lock:
            channel = _channels().get(body.get("channel", ""))
            if channel is None:
                return jsonify({"error": "channel_not_found"}), 404
            channel["is_archived"] = True
        event_id = deliver({"type": "channel_archive", "channel": channel["id"], "user": _user_id(0)})
        return jsonify({"ok": True, "event_id": event_id})

    @bp.put("/_sandbox/knobs")
    def knobs():
        body = request.get_json(force=True) or {}
        with STORE.lock:
            _knobs().update({k: v for k, v in body.items() if k in ("fail_after_write", "fail_status")})
            return jsonify(dict(_knobs()))

    @bp.get("/_sandbox/channels")
    def channels():
        with STORE.lock:
            return jsonify([{**_public(c), "members": list(c["_members"]), "messages": list(c["_messages"])} for c in _channels().values()])

    @bp.get("/_sandbox/deliveries")
    def deliveries():
        with STORE.lock:
            return jsonify(list(STORE.collection(VENDOR, "_deliveries").values()))

    return bp


def _oauth_blueprints() -> list[Blueprint]:
    profile = OAuthProfile(
        VENDOR,
        access_ttl=43200,  # 12 h with token rotation on
        rotates_refresh_token=True,
        extra_token_fields={
            "ok": True,
            "token_type": "bot",
            "bot_user_id": BOT_USER_ID,
            "app_id": APP_ID,
            "team": {"id": TEAM_ID, "name": TEAM_NAME},
            "enterprise": None,
            "is_enterprise_install": False,
        },
        error_style="slack",
    )
    oauth = oauth_blueprint(profile)
    install_faults(oauth, VENDOR, rate_limited=_rate_limited, error=_error)
    alias = Blueprint("slack_oauth_alias", __name__)

    @alias.route("/oauth/v2/authorize", methods=["GET", "POST"])
    def authorize_v2():
        # Slack's real authorize path; the generic OAuth server does the work.
        return current_app.view_functions["slack_oauth.authorize"]()

    return [oauth, alias]


def blueprints() -> list[Blueprint]:
    return [_api_blueprint(), _control_blueprint(), *_oauth_blueprints()]
