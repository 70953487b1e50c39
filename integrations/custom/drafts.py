"""Spec drafts for the builder: a starting spec (blank or from an OpenAPI summary) and one built from the endpoints picked."""

from __future__ import annotations

import re
from typing import Any

import yaml

# Words in an endpoint's path → the Bastion entity type its records are (first match wins).
BASTION_TYPES = (
    ("user", "person"),
    ("member", "person"),
    ("people", "person"),
    ("person", "person"),
    ("contact", "person"),
    ("employee", "person"),
    ("group", "group"),
    ("team", "group"),
    ("channel", "channel"),
    ("task", "task"),
    ("issue", "task"),
    ("ticket", "task"),
    ("event", "event"),
    ("incident", "incident"),
    ("deal", "deal"),
    ("opportunit", "deal"),
    ("project", "project"),
    ("document", "document"),
    ("file", "document"),
)
LINK_FIELDS = ("permalink_url", "html_url", "web_url", "url", "link")  # where a created object says its own address
ID_FIELDS = ("id", "gid", "uuid", "key", "sid", "_id")
UPDATED_FIELDS = ("updated_at", "modified_at", "updatedAt", "modifiedAt", "last_modified", "updated", "modified")
# Fields a vendor sets itself: never offered as an action's input.
READ_ONLY_FIELDS = frozenset({*ID_FIELDS, "resource_type", "created_at", "updated_at", "modified_at", "created_by", "url", "permalink_url", "self"})
FIELD_TYPES = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean", "array": "array", "object": "object"}
MAX_INPUT_FIELDS = 8
# Body fields most actions are about, offered as the action's input first (the rest stay in the vendor's document).
PREFERRED_INPUTS = ("name", "title", "summary", "subject", "text", "message", "body", "description", "notes", "workspace", "project", "assignee", "email")


def _snake(text: str, fallback: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text or "")
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"{fallback}_{name}".strip("_")
    return name[:60]


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def _auth(auth: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The spec's auth section and the credential fields it reads."""
    kind, param, prefix = auth.get("kind") or "bearer", (auth.get("param") or "").strip(), auth.get("prefix") or ""
    if kind == "none":
        return {"kind": "none"}, []
    if kind == "basic":
        fields = [{"name": "username", "label": "User name", "required": True}, {"name": "password", "label": "Password", "secret": True, "required": True}]
        return {"kind": "basic", "username": "{{ credentials.username }}", "password": "{{ credentials.password }}"}, fields
    token = [
        {
            "name": "api_key" if kind.startswith("api_key") else "token",
            "label": "API key" if kind.startswith("api_key") else "API token",
            "secret": True,
            "required": True,
        }
    ]
    if kind == "api_key_query":
        return {"kind": "query", "param": param or "api_key", "value": "{{ credentials.api_key }}"}, token
    if kind == "api_key_header":
        return {"kind": "header", "header": param or "X-API-Key", "value": prefix + "{{ credentials.api_key }}"}, token
    return {"kind": "bearer", "token": "{{ credentials.token }}"}, token


def _base(key: str, name: str, summary: dict[str, Any] | None) -> dict[str, Any]:
    servers = (summary or {}).get("servers") or []
    doc: dict[str, Any] = {
        "spec_version": 1,
        "key": _snake(key, "custom"),
        "name": name[:120],
        "category": "other",
        "description": f"{name}: a custom connector built in Bastion."[:500],
        "base_url": next((s for s in servers if s.startswith(("https://", "http://"))), "https://api.example.com"),
    }
    return doc


def draft_start(*, key: str, name: str, summary: dict[str, Any] | None) -> str:
    """The first draft: identity, base URL and auth from the document (or a blank spec with one example entity)."""
    doc = _base(key, name, summary)
    schemes = (summary or {}).get("auth") or [{"kind": "bearer"}]
    auth, credentials = _auth({"kind": schemes[0].get("kind", "bearer"), "param": schemes[0].get("param", "")})
    doc["credentials"] = credentials
    doc["auth"] = auth
    test = _test_connection(summary or {}, [])
    doc["test_connection"] = test or {"request": {"method": "GET", "path": "/items"}}
    if summary:
        return "# Pick endpoints above and press Generate draft, or write the entities and actions here.\n" + _dump(doc)
    doc["entities"] = {
        "items": {
            "name": "Items",
            "bastion_type": "other",
            "read": {"request": {"method": "GET", "path": "/items"}, "records": "$[*]"},
            "id": "{{ record.id }}",
        }
    }
    return "# A blank spec: replace the example entity with the vendor's endpoints.\n" + _dump(doc)


def _bastion_type(path: str) -> str:
    lowered = path.lower()
    last = [part for part in lowered.split("/") if part and not part.startswith("{")]
    for word, kind in BASTION_TYPES:
        if last and word in last[-1]:
            return kind
    return "other"


def _path(path: str, config: dict[str, dict[str, Any]]) -> str:
    """Path parameters become settings of the integration ({workspace_gid} → {{ config.workspace_gid }})."""

    def setting(match: re.Match[str]) -> str:
        name = _snake(match.group(1), "param")
        config.setdefault(name, {"name": name, "label": name.replace("_", " ").capitalize(), "required": True})
        return "{{ config." + name + " }}"

    return re.sub(r"\{([^{}/]{1,80})\}", setting, path)


def _paging(operation: dict[str, Any]) -> dict[str, Any] | None:
    query, fields = set(operation.get("query_params") or []), {f["name"] for f in operation.get("fields") or []}
    selector = operation.get("selector", "$")
    envelope = selector[2:].split("[", 1)[0] if selector.startswith("$.") else ""
    if "offset" in query and "limit" in query:
        return {"kind": "cursor", "param": "offset", "size_param": "limit", "size": 100, "next": "{{ body.next_page.offset }}"}
    if "cursor" in query:
        return {"kind": "cursor", "param": "cursor", "next": "{{ body.next_cursor or body.cursor }}"}
    if "page" in query:
        return {"kind": "page_number", "param": "page", "start": 1, **({"size_param": "per_page"} if "per_page" in query else {})}
    if "next" in fields or envelope:
        return None
    return None


def _entity(operation: dict[str, Any], label: str, config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    fields = operation.get("fields") or []
    names = [f["name"] for f in fields]
    id_field = next((n for n in ID_FIELDS if n in names), "id")
    entity: dict[str, Any] = {
        "name": label,
        "bastion_type": _bastion_type(operation["path"]),
        "read": {"request": {"method": "GET", "path": _path(operation["path"], config)}, "records": operation.get("selector") or "$[*]"},
        "id": "{{ record." + id_field + " }}",
    }
    paging = _paging(operation)
    if paging:
        entity["read"]["paging"] = paging
    updated = next((n for n in UPDATED_FIELDS if n in names), None)
    if updated:
        entity["updated_at"] = "{{ record." + updated + " }}"
    if fields:
        entity["fields"] = [{"name": f["name"], "type": FIELD_TYPES.get(f["type"], "string")} for f in fields if f["type"] in FIELD_TYPES]
    return entity


def _action(operation: dict[str, Any], label: str, config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The body is the step's input (unset fields left out by `compact`); the required fields and the likely ones are its input."""
    offered = [f for f in operation.get("body_fields") or [] if f["name"] not in READ_ONLY_FIELDS and f["type"] in ("string", "number", "integer", "boolean")]
    ranked = sorted(
        offered,
        key=lambda f: (not f.get("required"), f["name"] not in PREFERRED_INPUTS, PREFERRED_INPUTS.index(f["name"]) if f["name"] in PREFERRED_INPUTS else 0),
    )
    inputs = [f for f in ranked if f.get("required") or f["name"] in PREFERRED_INPUTS][:MAX_INPUT_FIELDS] or ranked[:1]
    request: dict[str, Any] = {"method": operation["method"], "path": _path(operation["path"], config)}
    if inputs:
        body = "{{ input | compact }}"
        request["json"] = {operation["body_envelope"]: body} if operation.get("body_envelope") else body
    action: dict[str, Any] = {
        "name": label,
        "input": {f["name"]: ({} if index == 0 or f.get("required") else {"optional": True}) for index, f in enumerate(inputs)},
        "request": request,
    }
    selector = operation.get("selector") or "$"
    result_fields = {f["name"] for f in operation.get("fields") or []}
    id_field = next((n for n in ID_FIELDS if n in result_fields), None)
    if id_field:
        action["result"] = {"select": selector, "external_id": "{{ record." + id_field + " }}"}
        link = next((n for n in LINK_FIELDS if n in result_fields), None)
        if link:
            action["result"]["url"] = "{{ record." + link + " }}"
    return action


def _test_connection(summary: dict[str, Any], picked: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A GET that needs no setting (the connection is tested before settings are chosen): "who am I" first, else the shortest."""
    candidates = [o for o in picked + list(summary.get("operations") or []) if o["method"] == "GET" and not o.get("path_params")]
    if not candidates:
        return None
    words = ("me", "whoami", "account", "user", "users", "workspace", "workspaces")
    best = min(candidates, key=lambda o: (o not in picked, o["path"].rstrip("/").rsplit("/", 1)[-1].lower() not in words, len(o["path"])))
    return {"request": {"method": "GET", "path": best["path"]}}


def draft_from_picks(*, key: str, name: str, summary: dict[str, Any], picks: dict[str, dict[str, str]], auth: dict[str, str]) -> str:
    """A spec with one entity per picked listing endpoint and one action per picked write endpoint."""
    doc = _base(key, name, summary)
    auth_section, credentials = _auth(auth)
    config: dict[str, dict[str, Any]] = {}
    entities: dict[str, Any] = {}
    actions: dict[str, Any] = {}
    picked = [o for o in summary.get("operations") or [] if o["id"] in picks]
    for operation in picked:
        pick = picks[operation["id"]]
        fallback = operation.get("operation_id") or operation["path"].strip("/").split("/")[-1]
        section = entities if pick["as"] == "entity" else actions
        entry_key = _snake(pick.get("name") or fallback, "entity" if pick["as"] == "entity" else "action")
        while entry_key in section:
            entry_key = f"{entry_key}_2"[:60]
        label = (pick.get("name") or operation.get("summary") or fallback).strip()[:100]
        section[entry_key] = _entity(operation, label, config) if pick["as"] == "entity" else _action(operation, label, config)
    if credentials:
        doc["credentials"] = credentials
    if config:
        doc["config"] = list(config.values())
    doc["auth"] = auth_section
    test = _test_connection(summary, picked)
    if test:
        doc["test_connection"] = test
    if entities:
        doc["entities"] = entities
    if actions:
        doc["actions"] = actions
    return _dump(doc)
