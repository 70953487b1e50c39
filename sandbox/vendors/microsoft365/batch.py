"""JSON batching: POST /v1.0/$batch with up to 20 requests, in parallel or (dependsOn) in sequence, each answered and throttled on its own."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from sandbox.state import STORE
from sandbox.vendors.microsoft365.common import VENDOR, authenticate, bad_request

MAX_REQUESTS = 20
METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}


def _error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"id": "", "status": status, "headers": {"Content-Type": "application/json"}, "body": {"error": {"code": code, "message": message}}}


def _validate(requests_: Any) -> str:
    if not isinstance(requests_, list) or not requests_:
        return "The batch needs a non-empty 'requests' array."
    if len(requests_) > MAX_REQUESTS:
        return f"Number of batch requests exceeds the limit of {MAX_REQUESTS}."
    seen: set[str] = set()
    for entry in requests_:
        if not isinstance(entry, dict) or not entry.get("id") or not isinstance(entry.get("method"), str) or not isinstance(entry.get("url"), str):
            return "Every batch request needs id, method and url (strings)."
        if not isinstance(entry.get("headers") or {}, dict) or not isinstance(entry.get("dependsOn") or [], list):
            return f"Request '{entry['id']}': headers must be an object and dependsOn a list of ids."
        if str(entry["id"]) in seen:
            return f"Batch request ids must be unique: '{entry['id']}' repeats."
        for dependency in entry.get("dependsOn") or []:
            if str(dependency) not in seen:
                return f"Request '{entry['id']}' depends on '{dependency}', which is not an earlier request of the batch."
        seen.add(str(entry["id"]))
    return ""


def _run(entry: dict[str, Any], authorization: str, app: Any = None, host_url: str = "") -> dict[str, Any]:
    method, url = str(entry["method"]).upper(), str(entry["url"])
    if method not in METHODS:
        return {**_error_body(400, "BadRequest", f"Invalid method {method}."), "id": entry["id"]}
    if "://" in url or url.lstrip("/").startswith(("$batch", "v1.0/")):
        return {**_error_body(400, "BadRequest", "A batch request url must be relative to the version root (e.g. /me/events)."), "id": entry["id"]}
    headers = {str(k): str(v) for k, v in (entry.get("headers") or {}).items()}
    if entry.get("body") is not None and not any(k.lower() == "content-type" for k in headers):
        return {**_error_body(400, "BadRequest", "Content-Type header is required for a batch request with a body."), "id": entry["id"]}
    if authorization:
        headers["Authorization"] = authorization
    client = (app or current_app).test_client()
    data = json.dumps(entry["body"]) if isinstance(entry.get("body"), dict | list) else entry.get("body")
    answer = client.open(f"/microsoft365/v1.0/{url.lstrip('/')}", method=method, headers=headers, data=data, base_url=host_url or request.host_url)
    body: Any = None
    if answer.data:
        body = answer.get_json(silent=True) if answer.mimetype == "application/json" else answer.get_data(as_text=True)
    kept = {k: v for k, v in answer.headers.items() if k in ("Content-Type", "Location", "Retry-After", "ETag")}
    return {"id": entry["id"], "status": answer.status_code, "headers": kept, "body": body}


def blueprint() -> Blueprint:
    """$batch on its own blueprint: Graph throttles each request of a batch on its own, so the fault knobs apply to the inner ones."""
    bp = Blueprint("microsoft365_batch", __name__)
    bp.before_request(authenticate)

    @bp.after_request
    def _log(response: Response) -> Response:
        STORE.log_request(VENDOR, request.method, request.path, response.status_code)
        return response

    @bp.post("/v1.0/$batch")
    def batch():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return bad_request("Invalid batch payload: a JSON object with 'requests' is required.")
        if problem := _validate(body.get("requests")):
            return bad_request(problem)
        authorization = request.headers.get("Authorization", "")
        results: dict[str, dict[str, Any]] = {}
        sequential = any(entry.get("dependsOn") for entry in body["requests"])
        if not sequential:
            # Graph runs a batch either fully in sequence (dependsOn) or fully in parallel: independent requests answer
            # side by side, so a batch of 20 costs about one request's latency, not twenty.
            app, host_url = current_app._get_current_object(), request.host_url
            with ThreadPoolExecutor(max_workers=MAX_REQUESTS) as pool:
                answers = list(pool.map(lambda entry: _run(entry, authorization, app, host_url), body["requests"]))
            return jsonify({"responses": list(reversed(answers))})  # no promised order: match responses to requests by id
        for entry in body["requests"]:
            failed = [d for d in entry.get("dependsOn") or [] if not 200 <= results[str(d)]["status"] < 300]
            if failed:
                results[str(entry["id"])] = {**_error_body(424, "FailedDependency", f"Dependency {failed[0]} failed."), "id": entry["id"]}
                continue
            results[str(entry["id"])] = _run(entry, authorization)
        return jsonify({"responses": list(results.values())})

    return bp
