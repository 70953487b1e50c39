"""Atlassian Statuspage API v1 stand-in: pages, components, incidents (create, PATCH updates, unresolved list)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.oauth import issue_static_token, token_info
from sandbox.server import install_faults
from sandbox.state import STORE

VENDOR = "statuspage"
DEMO_TOKEN = "sandbox-statuspage-token"
PAGE_ID = "acmest4tus01"
STATUSES = ("investigating", "identified", "monitoring", "resolved", "scheduled", "in_progress", "verifying", "completed")
IMPACTS = ("none", "maintenance", "minor", "major", "critical")
COMPONENT_STATUSES = ("operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sp_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def _error(status: int, message: str) -> Response:
    response = jsonify({"message": message, "error": message})  # spec ErrorEntity {message}; the live API also says "error"
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    style = STORE.collection(VENDOR, "knobs").get("rate_limit_status", 420)
    response = _error(int(style), "Rate limit exceeded: 1 request per second per API token")
    response.headers["Retry-After"] = str(retry_after)
    return response


def _incidents() -> Any:
    return STORE.collection(VENDOR, "incidents")


def _components() -> Any:
    return STORE.collection(VENDOR, "components")


def seed() -> None:
    issue_static_token(VENDOR, DEMO_TOKEN, subject="statuspage-admin")
    now = datetime.now(UTC)
    with STORE.lock:
        STORE.collection(VENDOR, "pages")[PAGE_ID] = {
            "id": PAGE_ID,
            "name": "Acme Status",
            "subdomain": "acme",
            "url": "https://status.acme.example",
            "time_zone": "Etc/UTC",
            "created_at": _iso(now - timedelta(days=700)),
            "updated_at": _iso(now - timedelta(days=3)),
            "page_description": "Service status for Acme customers",
            "allow_incident_subscribers": True,
        }
        for position, name in enumerate(("API", "Web app", "Payments", "Login / SSO"), start=1):
            component_id = f"cmp{position:09d}"
            _components()[component_id] = {
                "id": component_id,
                "page_id": PAGE_ID,
                "name": name,
                "description": f"{name} availability",
                "position": position,
                "status": "operational",
                "showcase": True,
                "only_show_if_degraded": False,
                "created_at": _iso(now - timedelta(days=700)),
                "updated_at": _iso(now - timedelta(days=3)),
            }
        for days, name, impact in ((40, "Degraded card payments", "major"), (12, "Login delays for some customers", "minor")):
            created = now - timedelta(days=days)
            incident = _new_incident({"name": name, "status": "investigating", "impact_override": impact, "body": "We are investigating."}, created)
            _add_update(incident, "resolved", "This incident has been resolved.", created + timedelta(hours=3))
            _incidents()[incident["id"]] = incident


def _new_incident(data: dict[str, Any], when: datetime) -> dict[str, Any]:
    incident_id = _sp_id()
    components = [dict(_components()[c]) for c in data.get("component_ids") or [] if c in _components()]
    incident = {
        "id": incident_id,
        "page_id": PAGE_ID,
        "name": data["name"],
        "status": data.get("status") or "investigating",
        "impact": data.get("impact_override") or "minor",
        "impact_override": data.get("impact_override"),
        "created_at": _iso(when),
        "updated_at": _iso(when),
        "monitoring_at": None,
        "resolved_at": None,
        "shortlink": f"https://stspg.io/{incident_id[:7]}",
        "metadata": data.get("metadata") or {},
        "components": components,
        "incident_updates": [],
        "postmortem_body": None,
        "scheduled_for": None,
        "scheduled_until": None,
    }
    _add_update(incident, incident["status"], data.get("body") or "", when, components=data.get("components") or {})
    return incident


def _add_update(incident: dict[str, Any], status: str, body: str, when: datetime, components: dict[str, str] | None = None) -> None:
    affected = []
    for component_id, new_status in (components or {}).items():
        component = _components().get(component_id)
        if component and new_status in COMPONENT_STATUSES:
            affected.append({"code": component_id, "name": component["name"], "old_status": component["status"], "new_status": new_status})
            component["status"] = new_status
    incident["incident_updates"].insert(
        0,
        {
            "id": _sp_id(),
            "incident_id": incident["id"],
            "status": status,
            "body": body,
            "created_at": _iso(when),
            "updated_at": _iso(when),
            "display_at": _iso(when),
            "affected_components": affected,
            "deliver_notifications": True,
        },
    )
    incident["status"] = status
    incident["updated_at"] = _iso(when)
    if status == "monitoring":
        incident["monitoring_at"] = _iso(when)
    if status in ("resolved", "completed"):
        incident["resolved_at"] = _iso(when)


def _validate(data: Any, *, creating: bool) -> str | None:
    if not isinstance(data, dict):
        return "incident is missing"
    if creating and not str(data.get("name", "")).strip():
        return "Name can't be blank"
    if len(str(data.get("name", ""))) > 255:
        return "Name is too long (maximum is 255 characters)"
    if data.get("status") is not None and data["status"] not in STATUSES:
        return f"Status must be one of {', '.join(STATUSES)}"
    if data.get("impact_override") is not None and data["impact_override"] not in IMPACTS:
        return f"Impact override must be one of {', '.join(IMPACTS)}"
    if len(str(data.get("body") or "")) > 25000:
        return "Body is too long (maximum is 25000 characters)"
    if data.get("metadata") is not None and (not isinstance(data["metadata"], dict) or not all(isinstance(v, dict) for v in data["metadata"].values())):
        return "Metadata top-level values must be objects"
    unknown = [c for c in data.get("component_ids") or [] if c not in _components()]
    if unknown:
        return f"Component ids not found: {', '.join(unknown)}"
    return None


def _shown(incident: dict[str, Any]) -> dict[str, Any]:
    """An incident as the spec types it: a field that is not set is left out (the spec's timestamps are strings, never null)."""
    return {k: v for k, v in incident.items() if v is not None}


def blueprints() -> list[Blueprint]:
    api = Blueprint("statuspage_api", __name__)
    control = Blueprint("statuspage_control", __name__)
    install_faults(api, VENDOR, rate_limited=_rate_limited, error=_error)

    @api.before_request
    def _authenticate():
        header = request.headers.get("Authorization", "")
        key = header[6:].strip() if header.startswith("OAuth ") else request.args.get("api_key")
        if token_info(VENDOR, key) is None:
            return _error(401, "Could not authenticate")
        page_id = (request.view_args or {}).get("page_id")
        if page_id is not None and page_id not in STORE.collection(VENDOR, "pages"):
            return _error(404, "The requested resource could not be found.")
        return None

    def _paged(rows: list[Any], size_param: str) -> list[Any]:
        size = min(max(int(request.args.get(size_param, 100)), 1), 100)
        page = max(int(request.args.get("page", 1)), 1)
        return rows[(page - 1) * size : page * size]

    @api.get("/v1/pages")
    def pages():
        return jsonify(list(STORE.collection(VENDOR, "pages").values()))

    @api.get("/v1/pages/<page_id>")
    def page(page_id: str):
        return jsonify(STORE.collection(VENDOR, "pages")[page_id])

    @api.get("/v1/pages/<page_id>/components")
    def components(page_id: str):
        return jsonify(_paged(list(_components().values()), "per_page"))

    @api.get("/v1/pages/<page_id>/incidents")
    def incidents(page_id: str):
        rows = sorted(_incidents().values(), key=lambda i: i["created_at"], reverse=True)
        query = request.args.get("q", "").lower()
        if query:
            rows = [i for i in rows if query in i["name"].lower() or query in i["status"] or any(query in u["body"].lower() for u in i["incident_updates"])]
        return jsonify(_paged([_shown(i) for i in rows], "limit"))

    @api.get("/v1/pages/<page_id>/incidents/unresolved")
    def unresolved(page_id: str):
        rows = sorted(
            (i for i in _incidents().values() if i["status"] not in ("resolved", "completed", "postmortem")), key=lambda i: i["created_at"], reverse=True
        )
        return jsonify(_paged([_shown(i) for i in rows], "per_page"))

    @api.post("/v1/pages/<page_id>/incidents")
    def create_incident(page_id: str):
        data = (request.get_json(silent=True) or {}).get("incident")
        problem = _validate(data, creating=True)
        if problem:
            return _error(422 if data else 400, problem)
        with STORE.lock:
            incident = _new_incident(data, datetime.now(UTC))
            _incidents()[incident["id"]] = incident
        STORE.record_created(VENDOR, "incident", incident["id"], f"{incident['name']} ({incident['status']}, {incident['impact']})", incident["shortlink"])
        with STORE.lock:
            knob = STORE.collection(VENDOR, "knobs").get("fail_after_create")
            if knob and knob["count"] > 0:
                knob["count"] -= 1
                return _error(knob["status"], "injected failure after the incident was created (sandbox)")
        response = jsonify(_shown(incident))
        response.status_code = 201
        return response

    @api.get("/v1/pages/<page_id>/incidents/<incident_id>")
    def get_incident(page_id: str, incident_id: str):
        incident = _incidents().get(incident_id)
        return jsonify(_shown(incident)) if incident else _error(404, "The requested resource could not be found.")

    @api.route("/v1/pages/<page_id>/incidents/<incident_id>", methods=["PATCH", "PUT"])
    def update_incident(page_id: str, incident_id: str):
        incident = _incidents().get(incident_id)
        if incident is None:
            return _error(404, "The requested resource could not be found.")
        data = (request.get_json(silent=True) or {}).get("incident")
        problem = _validate(data, creating=False)
        if problem:
            return _error(422, problem)
        with STORE.lock:
            for key in ("name", "impact_override", "metadata"):
                if data.get(key) is not None:
                    incident[key] = data[key]
            if data.get("impact_override"):
                incident["impact"] = data["impact_override"]
            if data.get("component_ids") is not None:
                incident["components"] = [dict(_components()[c]) for c in data["component_ids"]]
            if data.get("status") or data.get("body") or data.get("components"):
                _add_update(incident, data.get("status") or incident["status"], data.get("body") or "", datetime.now(UTC), components=data.get("components"))
        return jsonify(_shown(incident))

    @control.put("/_sandbox/knobs")
    def knobs():
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            store = STORE.collection(VENDOR, "knobs")
            if "rate_limit_status" in body:
                store["rate_limit_status"] = int(body["rate_limit_status"])
            if "fail_after_create" in body:
                store["fail_after_create"] = {"count": int(body["fail_after_create"]), "status": int(body.get("status", 502))}
        return jsonify({"ok": True})

    return [api, control]
