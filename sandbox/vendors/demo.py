"""The "demo" vendor: a generic stand-in for testing the connector framework over real HTTP.

It serves the same 20 people in all four pagination styles (cursor, Link header, offset, next-URL), every rate
signal the shared client understands (429 + Retry-After in seconds or as a date, Slack's 200 ok:false
ratelimited, Salesforce's 403 REQUEST_LIMIT_EXCEEDED, Google's 403 rateLimitExceeded, Sforce-Limit-Info usage),
5xx answers, slow answers for timeouts, redirects, an idempotent create, and an OAuth server whose short-lived
access tokens come with rotating refresh tokens.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.oauth import OAuthProfile, bearer_token, oauth_blueprint, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "demo"
ACCOUNT_ID = "demo-acct-0001"
ACCESS_TTL = 900  # short-lived access tokens: refresh is the normal path, not the exception
PROJECTS = [
    {"key": "OPS", "name": "Operations"},
    {"key": "LAUNCH", "name": "Product launches"},
    {"key": "MA", "name": "Mergers and acquisitions"},
]


def _people() -> Any:
    return STORE.collection(VENDOR, "people")


def _hits() -> Any:
    return STORE.collection(VENDOR, "hits")


def seed() -> None:
    with STORE.lock:
        store = _people()
        ids = {p["index"]: f"P{1001 + p['index']}" for p in people()}
        by_email = {p["email"]: ids[p["index"]] for p in people()}
        for person in people():
            pid = ids[person["index"]]
            store[pid] = {
                "id": pid,
                "email": person["email"],
                "first_name": person["given_name"],
                "last_name": person["family_name"],
                "job_title": person["title"],
                "department": person["department"],
                "phone": f"+1-555-01{person['index']:02d}",
                "manager_id": by_email.get(person["manager_email"], ""),
                "active": True,
                "updated_at": f"2026-01-{1 + person['index']:02d}T09:00:00Z",
            }


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": {"code": status, "message": message}})
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    response = _error(429, "Too many requests")
    response.headers["Retry-After"] = str(retry_after)
    return response


def _hit(key: str) -> int:
    """Count requests per test key so a test can ask for 'fail the first N, then succeed'."""
    with STORE.lock:
        hits = _hits()
        hits[key] = hits.get(key, 0) + 1
        return hits[key]


def _failing() -> tuple[bool, int]:
    count = _hit(request.args.get("key", request.path))
    return count <= int(request.args.get("fail", "1")), count


def _page_of(offset: int, limit: int) -> tuple[list[dict], int]:
    with STORE.lock:
        rows = list(_people().values())
    return rows[offset : offset + limit], len(rows)


def api_blueprint() -> Blueprint:
    bp = Blueprint("demo_api", __name__)
    install_faults(bp, VENDOR, rate_limited=_rate_limited, error=_error)

    @bp.before_request
    def _authenticate():
        if request.path.endswith("/_hits"):
            return None
        token = bearer_token() or request.headers.get("X-Api-Key")
        grant = token_info(VENDOR, token)
        if grant is None:
            response = _error(401, "The access token is missing, expired or revoked.")
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        request.environ["demo.grant"] = grant
        return None

    @bp.get("/api/me")
    def me():
        grant = request.environ["demo.grant"]
        return jsonify({"account_id": ACCOUNT_ID, "name": "Demo Workspace", "user": grant["subject"], "scopes": grant["scopes"]})

    @bp.get("/api/projects")
    def projects():
        return jsonify({"projects": PROJECTS})

    # Pagination, four ways, over the same people.
    @bp.get("/api/people")
    def people_cursor():
        limit = min(int(request.args.get("limit", 10)), 100)
        offset = int(request.args.get("cursor") or 0)
        rows, total = _page_of(offset, limit)
        following = offset + limit
        return jsonify({"people": rows, "next_cursor": str(following) if following < total else ""})

    @bp.get("/api/link/people")
    def people_link():
        per_page = min(int(request.args.get("per_page", 10)), 100)
        page = int(request.args.get("page", 1))
        rows, total = _page_of((page - 1) * per_page, per_page)
        response = jsonify(rows)
        if page * per_page < total:
            response.headers["Link"] = (
                f'<{request.base_url}?page={page + 1}&per_page={per_page}>; rel="next", <{request.base_url}?page=1&per_page={per_page}>; rel="first"'
            )
        return response

    @bp.get("/api/offset/people")
    def people_offset():
        offset, limit = int(request.args.get("offset", 0)), min(int(request.args.get("limit", 10)), 100)
        rows, total = _page_of(offset, limit)
        return jsonify({"items": rows, "offset": offset, "limit": limit, "total": total, "more": offset + len(rows) < total})

    @bp.get("/api/next/people")
    @bp.get("/api/next/people/<int:offset>")
    def people_next(offset: int = 0):
        size = min(int(request.args.get("page_size", 10)), 100)
        rows, total = _page_of(offset, size)
        body: dict[str, Any] = {"totalSize": total, "done": offset + size >= total, "records": rows}
        if not body["done"]:
            # Host-relative, like Salesforce's nextRecordsUrl ("/services/data/v59.0/query/01g…-2000").
            body["nextRecordsUrl"] = f"{request.script_root}/{VENDOR}/api/next/people/{offset + size}?page_size={size}"
        return jsonify(body)

    @bp.post("/api/people")
    def people_create():
        body = request.get_json(silent=True) or {}
        if not body.get("email"):
            return _error(400, "email is required")
        key = request.headers.get("Idempotency-Key", "")
        with STORE.lock:
            seen = STORE.collection(VENDOR, "idempotency")
            if key and key in seen:
                response = jsonify(_people()[seen[key]])
                response.headers["Idempotent-Replayed"] = "true"
                return response
            pid = f"P{STORE.next_id()}"
            record = {
                "id": pid,
                "email": body["email"],
                "first_name": body.get("first_name", ""),
                "last_name": body.get("last_name", ""),
                "job_title": body.get("job_title", ""),
                "department": body.get("department", ""),
                "phone": body.get("phone", ""),
                "manager_id": "",
                "active": True,
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            _people()[pid] = record
            if key:
                seen[key] = pid
        STORE.record_created(VENDOR, "person", pid, body["email"])
        response = jsonify(record)
        response.status_code = 201
        return response

    # Failure modes: `key` scopes the counter, `fail` says how many requests fail before one succeeds.
    @bp.get("/api/flaky")
    def flaky():
        failing, count = _failing()
        if failing:
            return _error(int(request.args.get("status", 503)), f"flaky failure #{count}")
        return jsonify({"ok": True, "attempts": count})

    @bp.get("/api/retry-after")
    def retry_after():
        failing, count = _failing()
        if not failing:
            return jsonify({"ok": True, "attempts": count})
        response = _error(429, "Too many requests")
        seconds = int(request.args.get("after", 2))
        if request.args.get("style") == "date":
            response.headers["Retry-After"] = email.utils.formatdate(time.time() + seconds, usegmt=True)
        else:
            response.headers["Retry-After"] = str(seconds)
        return response

    @bp.get("/api/slack-ratelimited")
    def slack_ratelimited():
        failing, count = _failing()
        if not failing:
            return jsonify({"ok": True, "attempts": count})
        response = jsonify({"ok": False, "error": "ratelimited"})
        response.headers["Retry-After"] = request.args.get("after", "1")
        return response

    @bp.get("/api/salesforce-limit")
    def salesforce_limit():
        _hit(request.args.get("key", request.path))
        response = jsonify([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
        response.status_code = 403
        response.headers["Sforce-Limit-Info"] = "api-usage=5000/5000"
        return response

    @bp.get("/api/google-ratelimit")
    def google_ratelimit():
        failing, count = _failing()
        if not failing:
            return jsonify({"ok": True, "attempts": count})
        response = jsonify(
            {
                "error": {
                    "code": 403,
                    "message": "Rate Limit Exceeded",
                    "errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "Rate Limit Exceeded"}],
                }
            }
        )
        response.status_code = 403
        return response

    @bp.get("/api/status/<int:status>")
    def status(status: int):
        count = _hit(request.args.get("key", request.path))
        return _error(status, f"answered {status} (request #{count})")

    @bp.get("/api/slow")
    def slow():
        count = _hit(request.args.get("key", request.path))
        time.sleep(int(request.args.get("ms", 500)) / 1000)
        return jsonify({"ok": True, "attempts": count})

    @bp.get("/api/usage")
    def usage():
        response = jsonify({"ok": True})
        response.headers["Sforce-Limit-Info"] = f"api-usage={request.args.get('used', '1')}/{request.args.get('limit', '5000')}"
        return response

    @bp.get("/api/redirect")
    def redirect():
        response = Response(status=302)
        response.headers["Location"] = request.args.get("to", "/")
        return response

    @bp.get("/_hits")
    def hits():
        with STORE.lock:
            return jsonify(dict(_hits()))

    return bp


def blueprints() -> list[Blueprint]:
    oauth = oauth_blueprint(OAuthProfile(VENDOR, access_ttl=ACCESS_TTL, rotates_refresh_token=True))
    install_faults(oauth, VENDOR, rate_limited=_rate_limited, error=_error)
    return [oauth, api_blueprint()]
