"""A declared vendor's batch route (Asana's POST /batch): each action served by the described routes, results by position."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.declared.records import RecordError

if TYPE_CHECKING:
    from sandbox.declared.engine import DeclaredVendor


def run_batch(vendor: DeclaredVendor, body: Any) -> list[dict[str, Any]]:
    """Asana-style batch: each action dispatched to the described routes (each checked against the spec), results by position.

    No ordering or chaining between actions; a rate limit refuses the whole batch before any runs (the fault knobs).
    """
    rules = vendor.d.batch
    envelope = vendor.d.envelope.get("request")
    data = body.get(envelope) if envelope and isinstance(body, dict) else body
    actions_field = rules.get("actions_field", "actions")
    actions = data.get(actions_field) if isinstance(data, dict) else None
    limit = int(rules.get("max_actions", 10))
    if not isinstance(actions, list) or not actions:
        raise RecordError(400, f"{actions_field}: Missing input")
    if len(actions) > limit:
        raise RecordError(400, f"{actions_field}: At most {limit} actions are allowed in a batch request")
    names = {"status": "status_code", "headers": "headers", "body": "body", **(rules.get("result") or {})}
    options_map = {"fields": vendor.d.fields_param, "limit": "limit", "offset": "offset", **(rules.get("options") or {})}
    results = []
    for action in actions:
        path = str(action.get(rules.get("path_field", "relative_path")) or "")
        method = str(action.get(rules.get("method_field", "method")) or "GET").upper()
        given = action.get(rules.get("data_field", "data"))
        options = {options_map.get(k, k): v for k, v in (action.get("options") or {}).items() if options_map.get(k, k)}
        query = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in options.items()}
        request_body = None
        if method in ("POST", "PUT", "PATCH"):
            request_body = {envelope: given} if envelope else given
        elif isinstance(given, dict):
            query.update({k: str(v) for k, v in given.items()})
        if not path.startswith("/") or path.split("?", 1)[0].rstrip("/") == "/batch":
            status, answer, headers = 400, vendor.error(400, f"relative_path: Not a valid path: {path}").get_json(), {}
        else:
            status, answer, headers = vendor.answer(method, path.split("?", 1)[0], query, request_body, headers={"Content-Type": "application/json"})
        results.append({names["status"]: status, names["headers"]: dict(headers), names["body"]: answer})
    return results
