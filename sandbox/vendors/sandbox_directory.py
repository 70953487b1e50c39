"""Stand-in for the Sandbox Directory: a small people + groups directory API (test and benchmark vendor).

Wire format (what the `sandbox_directory` connector speaks):
- `Authorization: Bearer <token>` on every API call; revoked/expired tokens get 401 `{"error": {"code": "invalid_token"}}`.
- `GET /v1/me` → `{"account_id", "name"}`.
- `GET /v1/people?limit=&after=&updated_since=` → `{"data": [...], "next_after": str|null, "server_time": iso}` ordered by id
  (keyset paging, stable while records change); `updated_since` filters on `updated_at > since`.
- `GET /v1/people/deleted?since=` → `{"data": [{"id", "deleted_at"}]}` (the explicit deletions feed).
- `GET /v1/groups` (same paging) → groups with member ids.
- 429 with `Retry-After` for rate limits; errors as `{"error": {"code", "message"}}`.
- Webhooks (sent by `POST /_control/emit`): body `{"delivery_id", "type", "occurred_at", "data"}`, headers
  `X-Directory-Delivery`, `X-Directory-Timestamp` (unix seconds) and `X-Directory-Signature: v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>`.

Control endpoints (tests, benchmarks): `POST /_control/load {"count", "prefix"}` generates people, `POST /_control/people` upserts
one person, `DELETE /_control/people/<id>` deletes one (feeds the deletions feed), `GET /_control/stats`.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import itertools
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox.oauth import bearer_token, issue_static_token, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people as sample_people

VENDOR = "sandbox_directory"
DEMO_TOKEN = "sbx-directory-demo-token"
MAX_LIMIT = 1000
_clock_lock = threading.Lock()
_last_tick = [0.0]
_key_cache: dict[str, Any] = {"version": 0}


def _now_iso() -> str:
    """A strictly increasing UTC timestamp, so updated_at never ties (ISO strings then compare in time order)."""
    with _clock_lock:
        tick = max(time.time(), _last_tick[0] + 0.000001)
        _last_tick[0] = tick
    return datetime.fromtimestamp(tick, tz=UTC).isoformat(timespec="microseconds")


def _keys_changed() -> None:
    _key_cache["version"] += 1


def _sorted_keys(collection: Any) -> list[str]:
    """Sorted ids, cached until an insert or delete (paging 100,000 records must not sort per page)."""
    marker = (id(collection), _key_cache["version"], len(collection))
    if _key_cache.get("marker") != marker:
        _key_cache["marker"] = marker
        _key_cache["keys"] = sorted(collection.keys())
    return _key_cache["keys"]


def _people() -> Any:
    return STORE.collection(VENDOR, "people")


def _groups() -> Any:
    return STORE.collection(VENDOR, "groups")


def _deleted() -> Any:
    return STORE.collection(VENDOR, "deleted")


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    response = _error(429, "rate_limited", "Too many requests.")
    response.headers["Retry-After"] = str(retry_after)
    return response


def _person(pid: str, **fields: Any) -> dict[str, Any]:
    record = {
        "id": pid,
        "email": "",
        "name": "",
        "given_name": "",
        "family_name": "",
        "title": "",
        "department": "",
        "phone": "",
        "manager_id": None,
        "groups": [],
        "active": True,
        "updated_at": _now_iso(),
    }
    record.update(fields)
    return record


def seed() -> None:
    """The shared 20-person workforce plus two groups, and the demo token."""
    issue_static_token(VENDOR, DEMO_TOKEN, subject="directory-admin")
    rows = sample_people()
    with STORE.lock:
        _keys_changed()
        people = _people()
        for row in rows:
            pid = f"p{row['index'] + 1:06d}"
            manager = next((f"p{r['index'] + 1:06d}" for r in rows if r["email"] == row["manager_email"]), None)
            people[pid] = _person(
                pid,
                email=row["email"],
                name=row["name"],
                given_name=row["given_name"],
                family_name=row["family_name"],
                title=row["title"],
                department=row["department"],
                phone=f"+1 555 01{row['index']:02d}",
                manager_id=manager,
                groups=[row["department"].lower()],
            )
        _groups()["g1"] = {"id": "g1", "name": "security", "members": ["p000002", "p000007"], "updated_at": _now_iso()}
        _groups()["g2"] = {"id": "g2", "name": "executive", "members": ["p000001"], "updated_at": _now_iso()}


def _authorized() -> Response | None:
    if token_info(VENDOR, bearer_token()) is None:
        return _error(401, "invalid_token", "The access token is invalid, expired or revoked.")
    return None


def _page(collection: Any, *, since: str | None) -> Response:
    try:
        limit = max(1, min(MAX_LIMIT, int(request.args.get("limit", 100))))
    except ValueError:
        return _error(400, "invalid_limit", "limit must be an integer.")
    after = request.args.get("after") or ""
    server_time = _now_iso()
    with STORE.lock:
        # Keys are ids; keyset paging by id keeps pages stable while records change underneath.
        keys = _sorted_keys(collection)
        start = bisect.bisect_right(keys, after) if after else 0
        out: list[dict[str, Any]] = []
        last = None
        for key in itertools.islice(keys, start, None):
            record = collection[key]
            last = key
            if since and record["updated_at"] <= since:
                continue
            out.append(dict(record))
            if len(out) >= limit:
                break
        has_more = last is not None and last != keys[-1]
    return jsonify({"data": out, "next_after": last if has_more else None, "server_time": server_time})


def api_blueprint() -> Blueprint:
    bp = Blueprint(f"{VENDOR}_api", __name__)
    install_faults(bp, VENDOR, rate_limited=_rate_limited, error=lambda status, message: _error(status, "server_error", message))

    @bp.before_request
    def _auth():
        return _authorized()

    @bp.get("/v1/me")
    def me():
        return jsonify({"account_id": "dir-acme", "name": "Acme Directory"})

    @bp.get("/v1/people")
    def people():
        return _page(_people(), since=request.args.get("updated_since") or None)

    @bp.get("/v1/people/deleted")
    def people_deleted():
        since = request.args.get("since") or ""
        with STORE.lock:
            rows = [dict(r) for r in _deleted().values() if r["deleted_at"] > since]
        return jsonify({"data": rows, "server_time": _now_iso()})

    @bp.get("/v1/groups")
    def groups():
        return _page(_groups(), since=request.args.get("updated_since") or None)

    return bp


def control_blueprint() -> Blueprint:
    """Test/benchmark controls (no auth; loopback sandbox only)."""
    bp = Blueprint(f"{VENDOR}_control", __name__)

    @bp.post("/_control/load")
    def load():
        body = request.get_json(force=True) or {}
        count = int(body.get("count", 0))
        prefix = str(body.get("prefix", "bulk"))
        replace = bool(body.get("replace", True))
        stamp = _now_iso()
        with STORE.lock:
            people = _people()
            _keys_changed()
            if replace:
                people.clear()
                _deleted().clear()
            for index in range(count):
                pid = f"{prefix}{index:07d}"
                people[pid] = {
                    "id": pid,
                    "email": f"person{index}.{prefix}@bulk.example",
                    "name": f"Person {index} {prefix.title()}",
                    "given_name": "Person",
                    "family_name": f"{index} {prefix.title()}",
                    "title": ("Engineer", "Analyst", "Manager", "Director")[index % 4],
                    "department": ("Engineering", "Finance", "Sales", "Legal", "IT")[index % 5],
                    "phone": f"+1 555 {index:07d}",
                    "manager_id": f"{prefix}{(index // 10):07d}" if index >= 10 else None,
                    "groups": [],
                    "active": True,
                    "updated_at": stamp,
                }
        return jsonify({"ok": True, "count": len(_people())})

    @bp.post("/_control/people")
    def upsert_person():
        body = request.get_json(force=True) or {}
        pid = str(body.get("id") or f"p{STORE.next_id():06d}")
        with STORE.lock:
            _keys_changed()
            current = _people().get(pid) or _person(pid)
            current.update({k: v for k, v in body.items() if k != "updated_at"})
            current["id"] = pid
            current["updated_at"] = body.get("updated_at") or _now_iso()
            _people()[pid] = current
            _deleted().pop(pid, None)
            record = dict(current)
        return jsonify(record)

    @bp.delete("/_control/people/<pid>")
    def delete_person(pid: str):
        with STORE.lock:
            _keys_changed()
            existed = _people().pop(pid, None)
            if existed is not None:
                _deleted()[pid] = {"id": pid, "deleted_at": _now_iso()}
        return jsonify({"deleted": existed is not None})

    @bp.get("/_control/stats")
    def stats():
        with STORE.lock:
            return jsonify({"people": len(_people()), "groups": len(_groups()), "deleted": len(_deleted())})

    @bp.post("/_control/emit")
    def emit():
        """Sign and send one webhook the way the vendor does: {"url", "secret", "type", "data", "delivery_id"?, "timestamp"?}."""
        body = request.get_json(force=True) or {}
        payload = {
            "delivery_id": body.get("delivery_id") or f"dlv_{STORE.next_id()}",
            "type": body["type"],
            "occurred_at": _now_iso(),
            "data": body.get("data") or {},
        }
        raw, headers = signed_webhook(payload, secret=body["secret"], timestamp=body.get("timestamp"))
        response = requests.post(body["url"], data=raw, headers=headers, timeout=(5, 30))
        return jsonify({"status": response.status_code, "body": response.text[:2000], "delivery_id": payload["delivery_id"]})

    return bp


def signed_webhook(payload: dict[str, Any], *, secret: str, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Serialize and sign a webhook body like the vendor: HMAC-SHA256 over "<timestamp>.<body>"."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    stamp = str(int(timestamp if timestamp is not None else time.time()))
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Directory-Delivery": str(payload.get("delivery_id", "")),
        "X-Directory-Timestamp": stamp,
        "X-Directory-Signature": f"v1={signature}",
    }
    return raw, headers


def blueprints() -> list[Blueprint]:
    return [api_blueprint(), control_blueprint()]
