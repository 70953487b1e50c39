"""PagerDuty REST API v2 stand-in: services, incidents (incident_key dedup), notes, on-calls, v3 webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox.oauth import OAuthProfile, issue_static_token, oauth_blueprint, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "pagerduty"
HTML = "https://acme.pagerduty.com"
DEMO_TOKEN = "sandbox-pagerduty-token"
DEMO_USER = "amara.nwosu@acme.example"
logger = logging.getLogger(__name__)

SERVICES = [
    ("Payments API", "Card authorisation and settlement", "Payments On-Call", [7, 18]),
    ("Customer Portal", "The customer-facing web application", "Web On-Call", [18, 12]),
    ("Identity Platform", "SSO, MFA and directory sync", "Security On-Call", [6, 1]),
    ("Data Pipeline", "Nightly ETL and reporting", "Data On-Call", [16, 5]),
]
HISTORY = [  # (service index, title, urgency, days ago, final status)
    (0, "Elevated card decline rate", "high", 62, "resolved"),
    (2, "Suspicious admin logins from unknown ASN", "high", 48, "resolved"),
    (1, "Checkout page 5xx spike", "high", 33, "resolved"),
    (3, "ETL job exceeded SLA", "low", 21, "resolved"),
    (0, "Settlement file delayed", "low", 14, "resolved"),
    (2, "MFA push notifications delayed", "high", 9, "resolved"),
    (1, "Login latency above 2s", "low", 4, "resolved"),
    (3, "Warehouse disk usage at 90%", "low", 2, "acknowledged"),
    (0, "Payment provider timeouts", "high", 0, "triggered"),
]


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pd_id(seed: str | None = None) -> str:
    """PagerDuty ids look like `PT4KHLK`: P + 6 upper-case alphanumerics."""
    raw = hashlib.sha256(seed.encode()).hexdigest() if seed else secrets.token_hex(16)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    number = int(raw, 16)
    chars = []
    for _ in range(6):
        number, rest = divmod(number, len(alphabet))
        chars.append(alphabet[rest])
    return "P" + "".join(chars)


def _ref(kind: str, obj: dict[str, Any], path: str) -> dict[str, Any]:
    return {
        "id": obj["id"],
        "type": f"{kind}_reference",
        "summary": obj.get("summary") or obj.get("name", ""),
        "self": f"https://api.pagerduty.com/{path}/{obj['id']}",
        "html_url": f"{HTML}/{path}/{obj['id']}",
    }


def _users() -> Any:
    return STORE.collection(VENDOR, "users")


def _services() -> Any:
    return STORE.collection(VENDOR, "services")


def _incidents() -> Any:
    return STORE.collection(VENDOR, "incidents")


def _error(status: int, message: str, code: int = 2001, errors: list[str] | None = None) -> Response:
    response = jsonify({"error": {"message": message, "code": code, "errors": errors or []}})
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    response = _error(429, "Rate Limit Exceeded", 2020)
    response.headers["ratelimit-limit"] = "960"
    response.headers["ratelimit-remaining"] = "0"
    response.headers["ratelimit-reset"] = str(retry_after)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _user_by_email(email: str) -> dict[str, Any] | None:
    for user in _users().values():
        if user["email"] == email:
            return user
    return None


def seed() -> None:
    """20 users, 4 services with escalation policies and on-calls, and an incident history."""
    issue_static_token(VENDOR, DEMO_TOKEN, subject=DEMO_USER)
    now = _now()
    with STORE.lock:
        for person in people():
            user_id = _pd_id("user:" + person["email"])
            _users()[user_id] = {
                "id": user_id,
                "type": "user",
                "summary": person["name"],
                "name": person["name"],
                "email": person["email"],
                "job_title": person["title"],
                "time_zone": "Europe/London",
                "role": "admin" if person["email"] == DEMO_USER else "user",
                "self": f"https://api.pagerduty.com/users/{user_id}",
                "html_url": f"{HTML}/users/{user_id}",
            }
        users = list(_users().values())
        policies = STORE.collection(VENDOR, "escalation_policies")
        oncalls = STORE.collection(VENDOR, "oncalls")
        for index, (name, description, policy_name, responders) in enumerate(SERVICES):
            policy = {"id": _pd_id("ep:" + policy_name), "type": "escalation_policy", "summary": policy_name, "name": policy_name}
            policies[policy["id"]] = policy
            schedule = {"id": _pd_id("schedule:" + policy_name), "summary": f"{policy_name} rotation"}
            STORE.collection(VENDOR, "schedules")[schedule["id"]] = {
                **schedule,
                "type": "schedule",
                "name": schedule["summary"],
                "time_zone": "Europe/London",
                "description": f"Weekly rotation for {policy_name}",
                "self": f"https://api.pagerduty.com/schedules/{schedule['id']}",
                "html_url": f"{HTML}/schedules/{schedule['id']}",
                "escalation_policies": [_ref("escalation_policy", policy, "escalation_policies")],
                "users": [_ref("user", users[i], "users") for i in responders],
                "teams": [],
            }
            service_id = _pd_id("service:" + name)
            _services()[service_id] = {
                "id": service_id,
                "type": "service",
                "summary": name,
                "name": name,
                "description": description,
                "status": "active",
                "auto_resolve_timeout": 14400,
                "acknowledgement_timeout": 600,
                "created_at": _iso(now - timedelta(days=400 - index)),
                "updated_at": _iso(now - timedelta(days=30 - index)),
                "alert_creation": "create_alerts_and_incidents",
                "escalation_policy": _ref("escalation_policy", policy, "escalation_policies"),
                "teams": [],
                "self": f"https://api.pagerduty.com/services/{service_id}",
                "html_url": f"{HTML}/service-directory/{service_id}",
            }
            for level, person_index in enumerate(responders, start=1):
                user = users[person_index]
                key = f"{policy['id']}:{level}:{user['id']}"
                oncalls[key] = {
                    "escalation_policy": _ref("escalation_policy", policy, "escalation_policies"),
                    "escalation_level": level,
                    "schedule": {**_ref("schedule", {"id": schedule["id"], "summary": schedule["summary"]}, "schedules")},
                    "user": _ref("user", user, "users"),
                    "start": _iso(now.replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=now.weekday())),
                    "end": _iso(now.replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=7 - now.weekday())),
                }
        services = list(_services().values())
        for number, (service_index, title, urgency, days_ago, status) in enumerate(HISTORY, start=1):
            created = now - timedelta(days=days_ago, hours=3)
            incident = _new_incident(number, title, services[service_index], urgency, created, incident_key=f"seed-{number}")
            if status != "triggered":
                _set_status(incident, "acknowledged", users[19], created + timedelta(minutes=4))
            if status == "resolved":
                _set_status(incident, "resolved", users[19], created + timedelta(hours=2))
            _incidents()[incident["id"]] = incident


def _new_incident(number: int, title: str, service: dict[str, Any], urgency: str, created: datetime, *, incident_key: str | None) -> dict[str, Any]:
    incident_id = _pd_id(f"incident:{number}:{title}" if incident_key and incident_key.startswith("seed-") else None)
    return {
        "id": incident_id,
        "type": "incident",
        "summary": f"[#{number}] {title}",
        "title": title,
        "incident_number": number,
        "self": f"https://api.pagerduty.com/incidents/{incident_id}",
        "html_url": f"{HTML}/incidents/{incident_id}",
        "created_at": _iso(created),
        "updated_at": _iso(created),
        "status": "triggered",
        "incident_key": incident_key or uuid.uuid4().hex,
        "service": _ref("service", service, "services"),
        "escalation_policy": service["escalation_policy"],
        "assignments": [],
        "acknowledgements": [],
        "assigned_via": "escalation_policy",
        "last_status_change_at": _iso(created),
        "resolved_at": None,
        "urgency": urgency,
        "teams": [],
        "alert_counts": {"all": 1, "triggered": 1, "resolved": 0},
        "body": None,
        "_notes": [],
    }


def _set_status(incident: dict[str, Any], status: str, user: dict[str, Any], when: datetime) -> None:
    incident["status"] = status
    incident["updated_at"] = incident["last_status_change_at"] = _iso(when)
    incident["last_status_change_by"] = _ref("user", user, "users")
    if status == "acknowledged":
        incident["acknowledgements"] = [{"at": _iso(when), "acknowledger": _ref("user", user, "users")}]
    if status == "resolved":
        incident["resolved_at"] = _iso(when)
        incident["alert_counts"] = {"all": 1, "triggered": 0, "resolved": 1}
    if status == "triggered":
        incident["resolved_at"] = None
        incident["acknowledgements"] = []


def _public(incident: dict[str, Any]) -> dict[str, Any]:
    """The incident as the API shows it: body and resolved_at only when set (the spec types them object and string, not null)."""
    return {k: v for k, v in incident.items() if not k.startswith("_") and not (v is None and k in ("body", "resolved_at"))}


def _page(items: list[Any], key: str) -> Response:
    try:
        limit = min(int(request.args.get("limit", 25)), 100)
        offset = int(request.args.get("offset", 0))
    except ValueError:
        return _error(400, "Invalid Input Provided", 2001, ["limit and offset must be integers"])
    if limit < 1 or offset < 0:
        return _error(400, "Invalid Input Provided", 2001, ["limit must be positive and offset non-negative"])
    chunk = items[offset : offset + limit]
    total = len(items) if request.args.get("total") == "true" else None
    return jsonify({key: chunk, "limit": limit, "offset": offset, "more": offset + len(chunk) < len(items), "total": total})


def _parse_time(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _deliver(event_type: str, incident: dict[str, Any], agent: dict[str, Any] | None) -> list[dict[str, Any]]:
    """POST a signed v3 webhook to every subscription; returns what each endpoint answered."""
    with STORE.lock:
        subscriptions = [dict(s) for s in STORE.collection(VENDOR, "webhook_subscriptions").values() if s["active"]]
    results = []
    for subscription in subscriptions:
        if subscription["events"] and event_type not in subscription["events"]:
            continue
        data = {k: incident[k] for k in ("id", "type", "self", "html_url", "status", "incident_key", "created_at", "title", "service", "urgency")}
        data["number"] = incident["incident_number"]
        data["assignees"] = []
        data["escalation_policy"] = incident["escalation_policy"]
        payload = {
            "event": {
                "id": str(uuid.uuid4()),
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "agent": agent,
                "client": None,
                "data": data,
            }
        }
        body = json.dumps(payload).encode()
        signature = "v1=" + hmac.new(subscription["secret"].encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-PagerDuty-Signature": signature,
            "X-Webhook-Id": str(uuid.uuid4()),
            "X-Webhook-Subscription": subscription["id"],
        }
        try:
            answer = requests.post(subscription["delivery_method"]["url"], data=body, headers=headers, timeout=5)
            results.append({"subscription": subscription["id"], "status": answer.status_code, "event_id": payload["event"]["id"]})
        except requests.RequestException as exc:
            logger.warning("sandbox.pagerduty.delivery_failed", extra={"subscription": subscription["id"], "error": str(exc)})
            results.append({"subscription": subscription["id"], "status": None, "error": str(exc)})
    return results


def blueprints() -> list[Blueprint]:
    bp = Blueprint("pagerduty_api", __name__)
    control = Blueprint("pagerduty_control", __name__)
    install_faults(bp, VENDOR, rate_limited=_rate_limited, error=lambda status, message: _error(status, message, 2000))

    @bp.before_request
    def _authenticate():
        header = request.headers.get("Authorization", "")
        token = None
        if header.startswith("Token token="):
            token = header[len("Token token=") :].strip()
            request.environ["pd.api_key"] = True  # a REST API key acts for nobody: writes must name a user in From
        elif header.lower().startswith("bearer "):
            token = header[7:].strip()
        grant = token_info(VENDOR, token)
        if grant is None:
            return _error(401, "Unauthorized", 2006, ["Invalid or missing API token"])
        request.environ["pd.grant"] = grant
        return None

    def _caller() -> dict[str, Any] | None:
        grant = request.environ.get("pd.grant") or {}
        return _user_by_email(grant.get("subject", ""))

    def _from_user() -> tuple[dict[str, Any] | None, Response | None]:
        sender = request.headers.get("From", "")
        if not sender and request.environ.get("pd.api_key"):
            return None, _error(400, "Invalid Input Provided", 2001, ["The From header is required with an account-level API key"])
        user = _user_by_email(sender) if sender else _caller()
        if user is None:
            return None, _error(400, "Invalid Input Provided", 2001, ["A valid user email is required in the From header"])
        return user, None

    @bp.get("/users/me")
    def users_me():
        user = _caller()
        if user is None:
            return _error(400, "Invalid Input Provided", 2001, ["Cannot use an account-level API token to access /users/me"])
        return jsonify({"user": user})

    @bp.get("/abilities")
    def abilities():
        return jsonify({"abilities": ["teams", "urgencies", "service_support_hours", "manage_schedules", "response_plays", "webhook_subscriptions"]})

    @bp.get("/users")
    def users():
        query = request.args.get("query", "").lower()
        rows = [u for u in _users().values() if not query or query in u["name"].lower() or query in u["email"]]
        return _page(rows, "users")

    @bp.get("/services")
    def services():
        query = request.args.get("query", "").lower()
        rows = [s for s in _services().values() if not query or query in s["name"].lower()]
        return _page(rows, "services")

    @bp.get("/services/<service_id>")
    def service(service_id: str):
        found = _services().get(service_id)
        return jsonify({"service": found}) if found else _error(404, "Not Found", 2100)

    @bp.get("/schedules")
    def schedules():
        query = request.args.get("query", "").lower()
        rows = [s for s in STORE.collection(VENDOR, "schedules").values() if not query or query in s["name"].lower()]
        return _page(sorted(rows, key=lambda s: s["name"]), "schedules")

    @bp.get("/schedules/<schedule_id>")
    def schedule(schedule_id: str):
        found = STORE.collection(VENDOR, "schedules").get(schedule_id)
        return jsonify({"schedule": found}) if found else _error(404, "Not Found", 2100)

    @bp.get("/oncalls")
    def oncalls():
        policy_ids = set(request.args.getlist("escalation_policy_ids[]"))
        user_ids = set(request.args.getlist("user_ids[]"))
        rows = [
            o
            for o in STORE.collection(VENDOR, "oncalls").values()
            if (not policy_ids or o["escalation_policy"]["id"] in policy_ids) and (not user_ids or o["user"]["id"] in user_ids)
        ]
        return _page(rows, "oncalls")

    @bp.get("/incidents")
    def incidents():
        rows = [_public(i) for i in _incidents().values()]
        statuses = set(request.args.getlist("statuses[]"))
        services = set(request.args.getlist("service_ids[]"))
        urgencies = set(request.args.getlist("urgencies[]"))
        key = request.args.get("incident_key")
        if request.args.get("date_range") != "all":
            until = _parse_time(request.args["until"]) if request.args.get("until") else _now()
            since = _parse_time(request.args["since"]) if request.args.get("since") else until - timedelta(days=30)
            if since is None or until is None:
                return _error(400, "Invalid Input Provided", 2001, ["since/until must be ISO 8601 dates"])
            if until - since > timedelta(days=183):
                return _error(400, "Invalid Input Provided", 2001, ["The date range cannot be greater than 6 months"])
            rows = [r for r in rows if since <= _parse_time(r["created_at"]) <= until]
        rows = [
            r
            for r in rows
            if (not statuses or r["status"] in statuses)
            and (not services or r["service"]["id"] in services)
            and (not urgencies or r["urgency"] in urgencies)
            and (key is None or r["incident_key"] == key)
        ]
        reverse = any(s.endswith(":desc") for s in request.args.getlist("sort_by"))
        rows.sort(key=lambda r: r["incident_number"], reverse=reverse)
        return _page(rows, "incidents")

    @bp.post("/incidents")
    def create_incident():
        user, problem = _from_user()
        if problem:
            return problem
        body = request.get_json(silent=True) or {}
        data = body.get("incident")
        if not isinstance(data, dict) or data.get("type") != "incident" or not data.get("title") or not isinstance(data.get("service"), dict):
            return _error(400, "Invalid Input Provided", 2001, ["incident.type, incident.title and incident.service are required"])
        service = _services().get(data["service"].get("id", ""))
        if service is None:
            return _error(400, "Invalid Input Provided", 2001, ["Service not found"])
        urgency = data.get("urgency", "high")
        if urgency not in ("high", "low"):
            return _error(400, "Invalid Input Provided", 2001, ["Urgency must be high or low"])
        with STORE.lock:
            key = data.get("incident_key")
            if key:
                for existing in _incidents().values():
                    if existing["incident_key"] == key and existing["service"]["id"] == service["id"] and existing["status"] != "resolved":
                        return _error(400, "Invalid Input Provided", 2001, ["Open incident with matching dedup key already exists on this service"])
            number = max((i["incident_number"] for i in _incidents().values()), default=0) + 1
            incident = _new_incident(number, data["title"], service, urgency, _now(), incident_key=key)
            if isinstance(data.get("body"), dict):
                incident["body"] = {"type": "incident_body", "details": str(data["body"].get("details", ""))}
            _incidents()[incident["id"]] = incident
        STORE.record_created(VENDOR, "incident", incident["id"], f"[#{number}] {data['title']} ({service['name']})", incident["html_url"])
        _fail_after_commit = _consume_fail_after_create()
        threading.Thread(target=_deliver, args=("incident.triggered", dict(incident), _ref("user", user, "users")), daemon=True).start()
        if _fail_after_commit:
            return _error(_fail_after_commit, "injected failure after the incident was created (sandbox)", 2000)
        response = jsonify({"incident": _public(incident)})
        response.status_code = 201
        return response

    @bp.get("/incidents/<incident_id>")
    def get_incident(incident_id: str):
        incident = _incidents().get(incident_id)
        return jsonify({"incident": _public(incident)}) if incident else _error(404, "Not Found", 2100, ["Incident Not Found"])

    @bp.put("/incidents/<incident_id>")
    def update_incident(incident_id: str):
        user, problem = _from_user()
        if problem:
            return problem
        incident = _incidents().get(incident_id)
        if incident is None:
            return _error(404, "Not Found", 2100, ["Incident Not Found"])
        data = (request.get_json(silent=True) or {}).get("incident")
        if not isinstance(data, dict) or data.get("type") not in ("incident", "incident_reference"):
            return _error(400, "Invalid Input Provided", 2001, ["incident.type is required"])
        status = data.get("status")
        if status is not None and status not in ("acknowledged", "resolved", "triggered"):
            return _error(400, "Invalid Input Provided", 2001, ["Status must be acknowledged, resolved or triggered"])
        with STORE.lock:
            previous = incident["status"]
            if status and status != previous:
                _set_status(incident, status, user, _now())
            if data.get("title"):
                incident["title"] = data["title"]
                incident["summary"] = f"[#{incident['incident_number']}] {data['title']}"
            if data.get("urgency") in ("high", "low"):
                incident["urgency"] = data["urgency"]
        if status and status != previous:
            event = "incident.reopened" if previous == "resolved" else f"incident.{status}"
            threading.Thread(target=_deliver, args=(event, dict(incident), _ref("user", user, "users")), daemon=True).start()
        return jsonify({"incident": _public(incident)})

    @bp.get("/incidents/<incident_id>/notes")
    def notes(incident_id: str):
        incident = _incidents().get(incident_id)
        if incident is None:
            return _error(404, "Not Found", 2100, ["Incident Not Found"])
        return jsonify({"notes": list(incident["_notes"])})

    @bp.post("/incidents/<incident_id>/notes")
    def add_note(incident_id: str):
        user, problem = _from_user()
        if problem:
            return problem
        incident = _incidents().get(incident_id)
        if incident is None:
            return _error(404, "Not Found", 2100, ["Incident Not Found"])
        content = ((request.get_json(silent=True) or {}).get("note") or {}).get("content")
        if not content or not isinstance(content, str):
            return _error(400, "Invalid Input Provided", 2001, ["note.content is required"])
        note = {
            "id": _pd_id(),
            "user": _ref("user", user, "users"),
            "channel": {"summary": "The PagerDuty website or APIs"},
            "content": content,
            "created_at": _iso(_now()),
        }
        with STORE.lock:
            incident["_notes"].append(note)
        STORE.record_created(VENDOR, "note", note["id"], f"note on {incident['summary']}: {content[:60]}", incident["html_url"])
        failure = _consume_fail_after_create()
        if failure:
            return _error(failure, "injected failure after the note was created (sandbox)", 2000)
        return jsonify({"note": note})

    @bp.get("/webhook_subscriptions")
    def list_subscriptions():
        rows = [{k: v for k, v in s.items() if k != "secret"} for s in STORE.collection(VENDOR, "webhook_subscriptions").values()]
        return _page(rows, "webhook_subscriptions")

    @bp.post("/webhook_subscriptions")
    def create_subscription():
        data = (request.get_json(silent=True) or {}).get("webhook_subscription") or {}
        method = data.get("delivery_method") or {}
        if method.get("type") != "http_delivery_method" or not str(method.get("url", "")).startswith("http"):
            return _error(400, "Invalid Input Provided", 2001, ["delivery_method.type must be http_delivery_method with a url"])
        subscription_id = _pd_id()
        secret = secrets.token_urlsafe(32)
        subscription = {
            "id": subscription_id,
            "type": "webhook_subscription",
            "active": True,
            "delivery_method": {"id": _pd_id(), "type": "http_delivery_method", "url": method["url"], "temporarily_disabled": False},
            "description": data.get("description", ""),
            "events": list(data.get("events") or []),
            "filter": data.get("filter") or {"type": "account_reference"},
            "secret": secret,
        }
        STORE.collection(VENDOR, "webhook_subscriptions")[subscription_id] = subscription
        STORE.record_created(VENDOR, "webhook_subscription", subscription_id, method["url"])
        shown = {k: v for k, v in subscription.items() if k != "secret"}
        shown["delivery_method"] = {**shown["delivery_method"], "secret": secret}  # PagerDuty shows the secret once, on creation
        return jsonify({"webhook_subscription": shown})  # 200, as the spec documents createWebhookSubscription

    @bp.delete("/webhook_subscriptions/<subscription_id>")
    def delete_subscription(subscription_id: str):
        if STORE.collection(VENDOR, "webhook_subscriptions").pop(subscription_id, None) is None:
            return _error(404, "Not Found", 2100)
        return Response(status=204)

    # Sandbox controls: vendor-side changes a person would make in PagerDuty's UI.
    @control.post("/_sandbox/incidents/<incident_id>/status")
    def control_status(incident_id: str):
        body = request.get_json(force=True) or {}
        status = body.get("status")
        incident = _incidents().get(incident_id)
        if incident is None or status not in ("acknowledged", "resolved", "triggered"):
            return jsonify({"error": "unknown incident or status"}), 400
        user = _user_by_email(body.get("by", DEMO_USER)) or _user_by_email(DEMO_USER)
        previous = incident["status"]
        with STORE.lock:
            _set_status(incident, status, user, _now())
        event = "incident.reopened" if previous == "resolved" and status != "resolved" else f"incident.{status}"
        return jsonify({"incident": _public(incident), "deliveries": _deliver(event, dict(incident), _ref("user", user, "users"))})

    @control.post("/_sandbox/fail_after_create")
    def control_fail_after_create():
        body = request.get_json(force=True) or {}
        with STORE.lock:
            STORE.collection(VENDOR, "knobs")["fail_after_create"] = {"count": int(body.get("count", 1)), "status": int(body.get("status", 502))}
        return jsonify({"ok": True})

    return [bp, control, oauth_blueprint(OAuthProfile(VENDOR, access_ttl=3600))]


def _consume_fail_after_create() -> int:
    """A knob the generic faults lack: commit the write, then answer with an error (a lost response)."""
    with STORE.lock:
        knob = STORE.collection(VENDOR, "knobs").get("fail_after_create")
        if knob and knob["count"] > 0:
            knob["count"] -= 1
            return knob["status"]
    return 0
