"""Jira Cloud REST v3 stand-in: projects, issues (JQL search with nextPageToken), users, fields, createmeta, workflow, webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
from flask import Blueprint, Response, abort, current_app, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException

from sandbox.oauth import OAuthProfile, bearer_token, oauth_blueprint, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors import _jira_dynamic as dynamic
from sandbox.vendors._people import people

VENDOR = "jira"
CLOUD_ID = "11223344-a1b2-3b33-c444-def123456789"
GATEWAY_CLOUD_ID = "sandbox.jira.cloud_id"  # set when a call came through /ex/jira/<cloudId> (api.atlassian.com's route)
ADMIN_EMAIL = "jira.admin@acme.example"
ADMIN_ID = "5b10a2844c20165700ede21g"
API = "/rest/api/3"
BULK_LIMIT = 50

STATUS_CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"},
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
STATUSES = {
    "10000": {"id": "10000", "name": "To Do", "description": "", "category": "new"},
    "3": {"id": "3", "name": "In Progress", "description": "This issue is being actively worked on.", "category": "indeterminate"},
    "10001": {"id": "10001", "name": "Done", "description": "", "category": "done"},
}
# The workflow: transition id → (name, target status id, statuses it is available from)
TRANSITIONS = {
    "11": ("Start Progress", "3", {"10000"}),
    "21": ("Resolve", "10001", {"10000", "3"}),
    "31": ("Stop Progress", "10000", {"3"}),
    "41": ("Reopen", "10000", {"10001"}),
}
ISSUE_TYPES = {
    "10001": {"id": "10001", "name": "Task", "description": "A small, distinct piece of work.", "subtask": False, "hierarchyLevel": 0},
    "10002": {"id": "10002", "name": "Bug", "description": "A problem or error.", "subtask": False, "hierarchyLevel": 0},
    "10000": {"id": "10000", "name": "Epic", "description": "A big user story that needs to be broken down.", "subtask": False, "hierarchyLevel": 1},
    "10003": {"id": "10003", "name": "Subtask", "description": "A small piece of work that's part of a larger task.", "subtask": True, "hierarchyLevel": -1},
}
SYSTEM_FIELDS = [
    ("summary", "Summary", {"type": "string", "system": "summary"}),
    ("description", "Description", {"type": "string", "system": "description"}),
    ("status", "Status", {"type": "status", "system": "status"}),
    ("assignee", "Assignee", {"type": "user", "system": "assignee"}),
    ("reporter", "Reporter", {"type": "user", "system": "reporter"}),
    ("duedate", "Due date", {"type": "date", "system": "duedate"}),
    ("labels", "Labels", {"type": "array", "items": "string", "system": "labels"}),
    ("priority", "Priority", {"type": "priority", "system": "priority"}),
    ("issuetype", "Issue Type", {"type": "issuetype", "system": "issuetype"}),
    ("project", "Project", {"type": "project", "system": "project"}),
    ("created", "Created", {"type": "datetime", "system": "created"}),
    ("updated", "Updated", {"type": "datetime", "system": "updated"}),
]
CUSTOM_FIELDS = [
    ("customfield_10010", "Severity", {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select", "customId": 10010}),
    ("customfield_10016", "Story point estimate", {"type": "number", "custom": "com.pyxis.greenhopper.jira:jsw-story-points", "customId": 10016}),
    ("customfield_10030", "Crisis impact", {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textarea", "customId": 10030}),
    ("customfield_10040", "Board sponsor", {"type": "user", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:userpicker", "customId": 10040}),
]
SEVERITY_OPTIONS = [{"id": str(10100 + i), "value": f"Sev{i}"} for i in range(1, 5)]
PROJECTS = [
    ("10000", "OPS", "Operations", "Incident and crisis operations work.", 1, "2026-09-30"),
    ("10001", "LAUNCH", "Product Launch", "Go-to-market tasks for product launches.", 12, "2026-07-15"),
    ("10002", "MNA", "Mergers & Acquisitions", "Integration workstreams for acquisitions.", 13, None),
]


def _jira_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}+0000"


def _account_id(index: int) -> str:
    return f"712020:{hashlib.sha1(str(index).encode()).hexdigest()[:8]}-{index:04d}-acme-0000-000000000000"


def _users() -> Any:
    return STORE.collection(VENDOR, "users")


def _projects() -> Any:
    return STORE.collection(VENDOR, "projects")


def _issues() -> Any:
    return STORE.collection(VENDOR, "issues")


def _knobs() -> Any:
    return STORE.collection(VENDOR, "_knobs")


def _site() -> str:
    """The site URL (https://acme.atlassian.net in real life): browse links, serverInfo, accessible-resources."""
    return f"{request.host_url}{VENDOR}"


def _base() -> str:
    """The API root for `self` links: the site, or api.atlassian.com/ex/jira/{cloudId} when the call came through the gateway."""
    cloud_id = request.environ.get(GATEWAY_CLOUD_ID)
    return f"{_site()}/ex/jira/{cloud_id}" if cloud_id else _site()


def _sites() -> list[dict[str, Any]]:
    """The Jira sites an OAuth grant reaches (knob `sites` replaces the one Acme site; [] = none)."""
    sites = _knobs().get("sites")
    if sites is None:
        return [{"id": CLOUD_ID, "url": _site(), "name": "acme"}]
    return [{"url": _site(), **site} for site in sites]


def seed() -> None:
    """The shared people as Atlassian accounts, three projects with leads and versions, and some issues."""
    with STORE.lock:
        users = _users()
        users[ADMIN_ID] = {
            "accountId": ADMIN_ID,
            "accountType": "atlassian",
            "emailAddress": ADMIN_EMAIL,
            "displayName": "Acme Jira Admin",
            "active": True,
            "timeZone": "America/New_York",  # JQL dates are read in the caller's zone
            "locale": "en_US",
        }
        for person in people():
            users[_account_id(person["index"])] = {
                "accountId": _account_id(person["index"]),
                "accountType": "atlassian",
                "emailAddress": person["email"],
                "displayName": person["name"],
                "active": True,
                "timeZone": "Europe/London",
                "locale": "en_GB",
            }
        users["557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"] = {
            "accountId": "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
            "accountType": "app",
            "displayName": "Automation for Jira",
            "active": True,
        }
        for pid, key, name, description, lead, due in PROJECTS:
            _projects()[key] = {
                "id": pid,
                "key": key,
                "name": name,
                "description": description,
                "lead": _account_id(lead),
                "projectTypeKey": "software",
                "simplified": False,
                "style": "classic",
                "isPrivate": False,
                "archived": False,
                "versions": [{"id": str(int(pid) + 500), "name": f"{key} 1.0", "released": False, "archived": False, "releaseDate": due, "projectId": int(pid)}]
                if due
                else [],
                "_counter": 0,
            }
        STORE.collection(VENDOR, "comments")
        start = time.time() - 10 * 86400
        titles = ["Rotate credentials", "Update runbook", "Review access logs", "Patch VPN", "Backup drill", "Vendor review", "On-call handover"]
        for n in range(12):
            _create_issue(
                _projects()["OPS"],
                {"summary": f"{titles[n % len(titles)]} #{n + 1}", "issuetype": ISSUE_TYPES["10001"], "labels": ["seed"]},
                now=start + n * 3600,
                notify=False,
            )
        for n in range(3):
            _create_issue(
                _projects()["LAUNCH"],
                {"summary": f"Launch checklist {n + 1}", "issuetype": ISSUE_TYPES["10001"], "labels": []},
                now=start + n * 60,
                notify=False,
            )
        _knobs().update({"fail_after_write": 0, "fail_status": 500})


# ---- rendering -----------------------------------------------------------------------------------------


def _user_json(account_id: str | None) -> dict[str, Any] | None:
    user = _users().get(account_id or "")
    if not user:
        return None
    return {
        "self": f"{_base()}{API}/user?accountId={user['accountId']}",
        **user,
        "avatarUrls": {"48x48": f"{_base()}/avatar/{user['accountId']}"},
    }


def _user_details(account_id: str | None) -> dict[str, Any] | None:
    """UserDetails (a comment's author): the user without the fields only the full User resource has (locale)."""
    user = _user_json(account_id)
    return {k: v for k, v in user.items() if k != "locale"} if user else None


def _status_json(status_id: str) -> dict[str, Any]:
    status = STATUSES[status_id]
    category = STATUS_CATEGORIES[status["category"]]
    return {
        "self": f"{_base()}{API}/status/{status_id}",
        "description": status["description"],
        "iconUrl": f"{_base()}/images/icons/statuses/generic.png",
        "name": status["name"],
        "id": status_id,
        "statusCategory": {"self": f"{_base()}{API}/statuscategory/{category['id']}", **category},
    }


def _project_ref(project: dict[str, Any]) -> dict[str, Any]:
    return {
        "self": f"{_base()}{API}/project/{project['id']}",
        "id": project["id"],
        "key": project["key"],
        "name": project["name"],
        "projectTypeKey": project["projectTypeKey"],
        "simplified": project["simplified"],
    }


def _issue_fields(issue: dict[str, Any]) -> dict[str, Any]:
    stored = issue["fields"]
    fields = {
        "summary": stored["summary"],
        "description": stored.get("description"),
        "status": _status_json(issue["status"]),
        "assignee": _user_json(stored.get("assignee")),
        "reporter": _user_json(stored.get("reporter")),
        "duedate": stored.get("duedate"),
        "labels": list(stored.get("labels", [])),
        "priority": {"self": f"{_base()}{API}/priority/3", "id": "3", "name": stored.get("priority", "Medium")},
        "issuetype": {"self": f"{_base()}{API}/issuetype/{stored['issuetype']['id']}", **stored["issuetype"]},
        "project": _project_ref(_projects()[issue["project"]]),
        "created": _jira_time(issue["created"]),
        "updated": _jira_time(issue["updated"]),
    }
    for field_id, _, _ in CUSTOM_FIELDS:
        fields[field_id] = stored.get(field_id)
    return fields


def _issue_json(issue: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """IssueBean; `wanted` None means the search default (`id` only)."""
    if wanted is None or wanted == ["id"]:
        return {"id": issue["id"]}
    all_fields = _issue_fields(issue)
    if "*all" in wanted or "*navigable" in wanted:
        fields = all_fields
    else:
        fields = {k: all_fields[k] for k in wanted if k in all_fields}
        for k in wanted:
            if k.startswith("-"):
                fields.pop(k[1:], None)
    return {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog",
        "id": issue["id"],
        "self": f"{_base()}{API}/issue/{issue['id']}",
        "key": issue["key"],
        "fields": fields,
    }


# ---- envelope -------------------------------------------------------------------------------------------


def _errors(status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None) -> Response:
    response = jsonify({"errorMessages": messages or [], "errors": errors or {}})
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    response = _errors(429, ["Rate limit exceeded."])
    reset = datetime.fromtimestamp(time.time() + retry_after, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")
    response.headers.update({"Retry-After": str(retry_after), "X-RateLimit-Reset": reset, "RateLimit-Reason": "jira-burst-based", "X-RateLimit-Limit": "100"})
    return response


def _error(status: int, message: str) -> Response:
    return _errors(status, [message])


def _fail_after_write(knobs_of: Callable[[], Any] | None = None) -> Response | None:
    """The `fail_after_write` knob; `knobs_of` defaults to this stand-in's knobs (the Data Center one passes its own)."""
    with STORE.lock:
        knobs = (knobs_of or _knobs)()
        if knobs.get("fail_after_write", 0) > 0:
            knobs["fail_after_write"] -= 1
            return _errors(int(knobs.get("fail_status", 500)), ["Internal server error (sandbox knob: after the write)."])
    return None


def _caller() -> dict[str, Any] | None:
    """The account behind the request: OAuth bearer → the admin; Basic email:api_token → that account.

    As at Atlassian, a bearer (3LO) token works only through the API gateway (/ex/jira/<cloudId>), never on the site URL.
    """
    token = bearer_token()
    if token:
        return _users()[ADMIN_ID] if request.environ.get(GATEWAY_CLOUD_ID) and token_info(VENDOR, token) else None
    auth = request.authorization
    if auth and auth.type == "basic" and auth.username and auth.password:
        grant = token_info(VENDOR, auth.password)
        if grant is None:
            return None
        subject = str(grant.get("subject") or "")
        if "@" in subject and subject.lower() != auth.username.lower():
            return None  # an API token only works with its owner's email
        return next((u for u in _users().values() if (u.get("emailAddress") or "").lower() == auth.username.lower()), None)
    return None


# ---- JQL (the subset Bastion and the tests use) -----------------------------------------------------------

CLAUSE = re.compile(r'^\s*(?P<field>[a-zA-Z]+)\s*(?P<op>>=|<=|!=|=|>|<|\bin\b|\bnot in\b)\s*(?P<value>\(.*\)|"[^"]*"|\'[^\']*\'|\S+)\s*$', re.IGNORECASE)


class JqlError(ValueError):
    pass


def _jql_values(raw: str) -> list[str]:
    raw = raw.strip()
    if raw.startswith("("):
        return [v.strip().strip("\"'") for v in raw[1:-1].split(",") if v.strip()]
    return [raw.strip("\"'")]


def _parse_jql(jql: str, tz: str, *, projects: Any = None, find_issue: Any = None) -> tuple[list[Any], tuple[str, bool]]:
    """Return (predicates, (order field, descending)); raise JqlError like Jira's 400.

    `projects` and `find_issue` default to this stand-in's own; the Data Center stand-in passes its own state.
    """
    text = jql.strip()
    order = ("created", False)
    match = re.search(r"\border\s+by\s+(\w+)(?:\s+(asc|desc))?\s*$", text, re.IGNORECASE)
    if match:
        order = (match.group(1).lower(), (match.group(2) or "asc").lower() == "desc")
        text = text[: match.start()].strip()
    if not text:
        raise JqlError("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.")
    predicates = []
    for part in re.split(r"\s+AND\s+", text, flags=re.IGNORECASE):
        clause = CLAUSE.match(part)
        if not clause:
            raise JqlError(f"Error in the JQL Query: Expecting a field, operator and value but got '{part.strip()}'.")
        field, op, values = clause.group("field").lower(), clause.group("op").lower(), _jql_values(clause.group("value"))
        predicates.append(_predicate(field, op, values, tz, projects or _projects, find_issue or _find_issue))
    return predicates, order


def _predicate(field: str, op: str, values: list[str], tz: str, projects: Any, find_issue: Any) -> Any:
    if field in ("updated", "created"):
        if op not in (">=", ">", "<=", "<"):
            raise JqlError(f"The operator '{op}' is not supported by the '{field}' field in this sandbox.")
        try:
            parsed = datetime.strptime(values[0], "%Y-%m-%d %H:%M") if " " in values[0] else datetime.strptime(values[0], "%Y-%m-%d")
        except ValueError as exc:
            raise JqlError(f"Date value '{values[0]}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm'.") from exc
        bound = parsed.replace(tzinfo=ZoneInfo(tz)).timestamp()
        compare = {">=": lambda a: a >= bound, ">": lambda a: a > bound, "<=": lambda a: a <= bound, "<": lambda a: a < bound}[op]
        return lambda issue: compare(issue[field])
    getters = {
        "project": lambda issue: {issue["project"].lower(), projects()[issue["project"]]["id"]},
        # Jira's key clause takes keys or ids.
        "key": lambda issue: {issue["key"].lower(), issue["id"]},
        "issuekey": lambda issue: {issue["key"].lower(), issue["id"]},
        "labels": lambda issue: {label.lower() for label in issue["fields"].get("labels", [])},
        "status": lambda issue: {STATUSES[issue["status"]]["name"].lower(), issue["status"]},
        "assignee": lambda issue: {str(issue["fields"].get("assignee") or "").lower()},
    }
    if field not in getters:
        raise JqlError(f"Field '{field}' does not exist or you do not have permission to view it.")
    wanted = {v.lower() for v in values}
    getter = getters[field]
    if field in ("key", "issuekey"):
        # Jira validates issue keys: one that does not exist (deleted, or never there) fails the whole query.
        for value in values:
            if find_issue(value) is None:
                raise JqlError(f"An issue with key '{value}' does not exist for field '{field}'.")
    if op in ("=", "in"):
        return lambda issue: bool(getter(issue) & wanted)
    if op in ("!=", "not in"):
        return lambda issue: not (getter(issue) & wanted)
    raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")


def _order_key(field: str) -> Any:
    if field in ("updated", "created"):
        return lambda issue: (issue[field], int(issue["id"]))
    if field in ("key", "issuekey", "id"):
        return lambda issue: int(issue["id"])
    raise JqlError(f"Field '{field}' does not support sorting in this sandbox.")


# ---- issue writes ---------------------------------------------------------------------------------------------


def _adf_ok(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and value.get("version") == 1 and isinstance(value.get("content"), list)


def _cloud_assignee_error(assignee: Any) -> str | None:
    if assignee is not None and assignee.get("accountId") not in _users():
        return f"User '{assignee.get('accountId')}' cannot be assigned issues."
    return None


# What Cloud says to a missing project or issue type and to a description it cannot take (Data Center words them differently).
CLOUD_CREATE_MESSAGES = {
    "project": "Specify a valid project ID or key",
    "issuetype": "Specify an issue type",
    "description": "Operation value must be an Atlassian Document (see the Atlassian Document Format).",
}


def _validate_create(
    body: Any,
    *,
    projects: Callable[[], Any] | None = None,
    user_field: str = "accountId",
    assignee_error: Callable[[Any], str | None] = _cloud_assignee_error,
    description_ok: Callable[[Any], bool] = _adf_ok,
    messages: dict[str, str] = CLOUD_CREATE_MESSAGES,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, str]]:
    """Check an IssueUpdateDetails like Jira does; return (project, normalized fields, field errors).

    The defaults are Cloud's (ADF descriptions, users by accountId); the Data Center stand-in passes its own.
    """
    if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
        return None, None, {"fields": "Field 'fields' is required."}
    fields = body["fields"]
    errors: dict[str, str] = {}
    project_ref = fields.get("project") or {}
    project = next((p for p in (projects or _projects)().values() if p["key"] == project_ref.get("key") or p["id"] == str(project_ref.get("id"))), None)
    if project is None:
        errors["project"] = messages["project"]
    type_ref = fields.get("issuetype") or {}
    issue_type = next((t for t in ISSUE_TYPES.values() if t["id"] == str(type_ref.get("id")) or t["name"] == type_ref.get("name")), None)
    if issue_type is None:
        errors["issuetype"] = messages["issuetype"]
    summary = fields.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = "You must specify a summary of the issue."
    elif len(summary) > 255:
        errors["summary"] = "Summary must be less than 255 characters."
    if fields.get("description") is not None and not description_ok(fields["description"]):
        errors["description"] = messages["description"]
    assignee = fields.get("assignee")
    assignee_problem = assignee_error(assignee)
    if assignee_problem:
        errors["assignee"] = assignee_problem
    due = fields.get("duedate")
    if due is not None:
        try:
            datetime.strptime(due, "%Y-%m-%d")
        except (TypeError, ValueError):
            errors["duedate"] = "Error parsing date string: " + str(due)
    labels = fields.get("labels", [])
    if not isinstance(labels, list) or any(not isinstance(label, str) or " " in label for label in labels):
        errors["labels"] = "The label must not contain spaces."
    severity = fields.get("customfield_10010")
    if severity is not None and not any(severity.get("value") == o["value"] or severity.get("id") == o["id"] for o in SEVERITY_OPTIONS):
        errors["customfield_10010"] = f"Option value '{severity.get('value')}' is not valid"
    unknown = set(fields) - {f for f, _, _ in SYSTEM_FIELDS} - {f for f, _, _ in CUSTOM_FIELDS}
    for name in sorted(unknown):
        errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
    if errors:
        return project, None, errors
    normalized = {
        "summary": summary,
        "description": fields.get("description"),
        "issuetype": issue_type,
        "assignee": (assignee or {}).get(user_field),
        "duedate": due,
        "labels": labels,
        **{f: fields.get(f) for f, _, _ in CUSTOM_FIELDS if fields.get(f) is not None},
    }
    return project, normalized, {}


def _create_issue(
    project: dict[str, Any], fields: dict[str, Any], *, now: float | None = None, notify: bool = True, reporter: str = ADMIN_ID
) -> dict[str, Any]:
    issue = _store_issue(_issues(), project, fields, now=now, reporter=reporter)
    if notify:
        STORE.record_created(VENDOR, "issue", issue["key"], fields["summary"][:100], f"{_site()}/browse/{issue['key']}")
        _notify("jira:issue_created", issue, "issue_created")
    return issue


def _store_issue(issues: Any, project: dict[str, Any], fields: dict[str, Any], *, now: float | None, reporter: str) -> dict[str, Any]:
    """Number a new To Do issue in `project` and keep it in `issues` (either stand-in's store)."""
    now = now or time.time()
    with STORE.lock:
        project["_counter"] += 1
        issue_id = str(STORE.next_id())
        issue = {
            "id": issue_id,
            "key": f"{project['key']}-{project['_counter']}",
            "project": project["key"],
            "status": "10000",
            "created": now,
            "updated": now,
            "fields": {**fields, "reporter": reporter},
        }
        issues[issue_id] = issue
    return issue


def _find_issue(key_or_id: str, issues_of: Callable[[], Any] | None = None) -> dict[str, Any] | None:
    issues = (issues_of or _issues)()
    if key_or_id in issues:
        return issues[key_or_id]
    return next((i for i in issues.values() if i["key"].lower() == key_or_id.lower()), None)


def _status_change(issue: dict[str, Any], transition_id: str, *, with_field_id: bool = True) -> dict[str, Any]:
    """Move the issue along a workflow transition; return the changelog (Cloud's items carry `fieldId`, Server's do not)."""
    _, target, _ = TRANSITIONS[transition_id]
    with STORE.lock:
        before = issue["status"]
        issue["status"] = target
        issue["updated"] = time.time()
    item = {
        "field": "status",
        "fieldtype": "jira",
        **({"fieldId": "status"} if with_field_id else {}),
        "from": before,
        "fromString": STATUSES[before]["name"],
        "to": target,
        "toString": STATUSES[target]["name"],
    }
    return {"id": str(STORE.next_id()), "items": [item]}


def _transition(issue: dict[str, Any], transition_id: str, actor: str) -> None:
    changelog = _status_change(issue, transition_id)
    _notify("jira:issue_updated", issue, "issue_generic", changelog=changelog, actor=actor)


# ---- webhooks (admin webhooks with a secret are HMAC-signed) ----------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _notify(event: str, issue: dict[str, Any], type_name: str, *, changelog: dict[str, Any] | None = None, actor: str = ADMIN_ID) -> int:
    """Send the event to every registered webhook listening for it, in a background thread."""
    return _send_event(
        VENDOR, event, issue, type_name, changelog=changelog, user=lambda: _user_json(actor), issue_body=lambda: _issue_json(issue, ["*all"]), cloud=True
    )


def _send_event(
    vendor: str,
    event: str,
    issue: dict[str, Any],
    type_name: str,
    *,
    changelog: dict[str, Any] | None,
    user: Callable[[], Any],
    issue_body: Callable[[], Any],
    cloud: bool,
    signs: Callable[[], bool] = lambda: True,
) -> int:
    """POST the event to `vendor`'s hooks that listen for it, in a background thread, and record each delivery.

    Cloud adds the X-Atlassian-Webhook-* headers; `signs` says whether a hook's secret signs the body (Data Center 10+ only).
    """
    with STORE.lock:
        hooks = [h for h in STORE.webhook_subscriptions.get(vendor, []) if h["enabled"] and event in h["events"] and dynamic.is_live(h)]
        if not hooks:
            return 0
        payload: dict[str, Any] = {
            "timestamp": int(time.time() * 1000),
            "webhookEvent": event,
            "issue_event_type_name": type_name,
            "user": user(),
            "issue": issue_body(),
        }
        if changelog:
            payload["changelog"] = changelog
        signed = signs()
    body = json.dumps(payload).encode()
    deliveries = STORE.collection(vendor, "_deliveries")

    def send() -> None:
        for hook in hooks:
            delivery_id = secrets.token_hex(16 if cloud else 8)
            headers = {"Content-Type": "application/json"}
            if cloud:
                headers.update({"X-Atlassian-Webhook-Identifier": delivery_id, "X-Atlassian-Webhook-Retry": "0"})
            if hook.get("kind") == "dynamic":
                headers.update(dynamic.delivery_headers(vendor, hook))
            elif signed and hook.get("secret"):
                headers["X-Hub-Signature"] = sign(hook["secret"], body)
            try:
                status: int | str = requests.post(hook["url"], data=body, headers=headers, timeout=10).status_code
            except requests.RequestException as exc:
                status = f"error: {type(exc).__name__}"
            with STORE.lock:
                deliveries[delivery_id] = {"id": delivery_id, "webhook": hook["id"], "event": event, "issue": issue["key"], "status": status}

    threading.Thread(target=send, name=f"{vendor.replace('_', '-')}-deliver-{issue['key']}", daemon=True).start()
    return len(hooks)


# ---- request pieces both stand-ins' endpoints share -------------------------------------------------------------


def _search_request() -> tuple[dict[str, Any], list[str] | None]:
    """The search body (POST JSON or GET query) and the `fields` it asks for, as a list."""
    if request.method == "POST":
        body = request.get_json(silent=True) or {}
        fields = body.get("fields")
    else:
        body = request.args.to_dict()
        fields = [f for value in request.args.getlist("fields") for f in value.split(",")] or None
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",")]
    return body, fields


def _comment_page(stored: list[dict[str, Any]]) -> Response:
    """A PageOfComments in the asked order, with each comment's properties when `expand=properties`."""
    if request.args.get("orderBy", "created").lstrip("+") != "created":
        stored.reverse()
    with_properties = "properties" in request.args.get("expand", "")
    rows = [{k: v for k, v in c.items() if k != "_properties"} | ({"properties": c["_properties"]} if with_properties else {}) for c in stored]
    return jsonify({"comments": rows, "startAt": 0, "maxResults": len(rows), "total": len(rows)})


def _add_hook(vendor: str, body: dict[str, Any], self_prefix: str, *, hidden: tuple[str, ...], keeps_secret: Callable[[], bool] = lambda: True) -> Any:
    """Register an admin webhook; answer 201 with it less the `hidden` keys (a secret is kept only when `keeps_secret`)."""
    if not body.get("url") or not body.get("events"):
        return _errors(400, [], {"url": "url and events are required"})
    with STORE.lock:
        hook_id = STORE.next_id()
        hook = {
            "self": f"{self_prefix}/{hook_id}",
            "id": hook_id,
            "name": body.get("name", f"webhook {hook_id}"),
            "url": body["url"],
            "events": list(body["events"]),
            "filters": body.get("filters", {}),
            "excludeBody": bool(body.get("excludeBody", False)),
            "enabled": bool(body.get("enabled", True)),
            "secret": (body.get("secret") or "") if keeps_secret() else "",
        }
        STORE.webhook_subscriptions.setdefault(vendor, []).append(hook)
    return jsonify({k: v for k, v in hook.items() if k not in hidden}), 201


def _create_one(validate: Callable[[Any], Any], create: Callable[..., dict[str, Any]], fail_after_write: Callable[[], Any], api_root: str) -> Any:
    """POST issue: validate the body, create the issue, answer 201 with its id, key and self link."""
    body = request.get_json(silent=True)
    with STORE.lock:
        project, fields, errors = validate(body)
    if errors:
        return _errors(400, [], errors)
    issue = create(project, fields)
    failure = fail_after_write()
    if failure:
        return failure
    return jsonify({"id": issue["id"], "key": issue["key"], "self": f"{api_root}/issue/{issue['id']}"}), 201


def _create_many(
    validate: Callable[[Any], Any], create: Callable[..., dict[str, Any]], fail_after_write: Callable[[], Any], api_root: str, *, element_status: bool
) -> Any:
    """POST issue/bulk: create what validates, report the rest by index (Cloud repeats the status inside elementErrors)."""
    updates = (request.get_json(silent=True) or {}).get("issueUpdates")
    if not isinstance(updates, list) or not updates:
        return _errors(400, ["issueUpdates must be a non-empty list."])
    if len(updates) > BULK_LIMIT:
        return _errors(400, [f"The number of issues to create in bulk must be at most {BULK_LIMIT}."])
    created, failed = [], []
    for index, update in enumerate(updates):
        with STORE.lock:
            project, fields, errors = validate(update)
        if errors:
            element = {"errorMessages": [], "errors": errors, **({"status": 400} if element_status else {})}
            failed.append({"status": 400, "elementErrors": element, "failedElementNumber": index})
            continue
        issue = create(project, fields)
        created.append({"id": issue["id"], "key": issue["key"], "self": f"{api_root}/issue/{issue['id']}"})
    failure = fail_after_write() if created else None
    if failure:
        return failure
    return jsonify({"issues": created, "errors": failed}), 201 if created else 400


def _transition_by_name(vendor: str, find_issue: Callable[[str], Any], transition: Callable[[Any, str], None], *, unknown_status_is_400: bool) -> Any:
    """The sandbox control: take the issue to the named status through the workflow; count the hooks told."""
    body = request.get_json(force=True) or {}
    with STORE.lock:
        issue = find_issue(str(body.get("issue_key", "")))
        if issue is None:
            return jsonify({"error": "issue not found"}), 404
        wanted = str(body.get("status", "")).lower()
        target = next((sid for sid, s in STATUSES.items() if s["name"].lower() == wanted), None)
        if target is None and unknown_status_is_400:
            return jsonify({"error": f"unknown status {body.get('status')!r}"}), 400
        transition_id = next((tid for tid, t in TRANSITIONS.items() if t[1] == target and issue["status"] in t[2]), None)
    if transition_id is None:
        return jsonify({"error": "no transition to that status from the current one"}), 409
    transition(issue, transition_id)
    with STORE.lock:
        hooks = len([h for h in STORE.webhook_subscriptions.get(vendor, []) if h["enabled"] and "jira:issue_updated" in h["events"]])
    return jsonify({"ok": True, "issue_key": issue["key"], "status": STATUSES[target]["name"], "webhooks": hooks})


def _oauth_not_offered() -> Response:
    """The API gateway's answer when a 3LO token calls an operation not offered to OAuth 2.0 apps."""
    response = jsonify({"code": 401, "message": "Unauthorized; scope does not match"})
    response.status_code = 401
    return response


def _delete_hook(vendor: str, hook_id: int) -> Response:
    with STORE.lock:
        hooks = STORE.webhook_subscriptions.get(vendor, [])
        kept = [h for h in hooks if h["id"] != hook_id]
        if len(kept) == len(hooks):
            return _errors(404, ["Webhook not found"])
        STORE.webhook_subscriptions[vendor] = kept
    return Response(status=204)


# ---- the API blueprint -------------------------------------------------------------------------------------------


def _page_args(default: int = 50, cap: int = 100) -> tuple[int, int] | Response:
    try:
        start = int(request.args.get("startAt", 0))
        size = int(request.args.get("maxResults", default))
    except ValueError:
        return _errors(400, ["startAt and maxResults must be integers."])
    return max(start, 0), max(1, min(size, cap))


def _api_blueprint() -> Blueprint:
    bp = Blueprint("jira_api", __name__)
    install_faults(bp, VENDOR, rate_limited=_rate_limited, error=_error)

    @bp.before_request
    def _authenticate():
        if request.path.startswith(f"/{VENDOR}/browse/"):
            return None
        with STORE.lock:
            caller = _caller()
        if caller is None:
            response = _errors(401, ["You are not authenticated. Authentication required to perform this operation."])
            response.headers["WWW-Authenticate"] = 'Basic realm="protected-area"'
            return response
        request.environ["sandbox.jira.caller"] = caller["accountId"]
        return None

    def me() -> dict[str, Any]:
        return _users()[request.environ["sandbox.jira.caller"]]

    @bp.get(f"{API}/myself")
    def myself():
        with STORE.lock:
            return jsonify(_user_json(me()["accountId"]))

    @bp.get(f"{API}/serverInfo")
    def server_info():
        return jsonify(
            {
                "baseUrl": _site(),
                "displayUrl": _site(),
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100280,
                "buildDate": "2025-01-15T00:00:00.000+0000",
                "serverTime": _jira_time(time.time()),
                "scmInfo": "sandbox",
                "serverTitle": "Acme Jira (sandbox)",
                "serverTimeZone": "Etc/UTC",
            }
        )

    @bp.get(f"{API}/mypermissions")
    def my_permissions():
        wanted = [p.strip() for p in request.args.get("permissions", "").split(",") if p.strip()]
        if not wanted:
            return _errors(400, ["The 'permissions' query parameter is required."])
        known = {"BROWSE_PROJECTS", "CREATE_ISSUES", "EDIT_ISSUES", "ASSIGN_ISSUES", "TRANSITION_ISSUES", "ADD_COMMENTS", "ADMINISTER", "BROWSE_USERS"}
        unknown = [p for p in wanted if p not in known]
        if unknown:
            return _errors(404, [f"Unrecognized permission keys: {', '.join(unknown)}"])
        admin = me()["accountId"] == ADMIN_ID
        return jsonify(
            {
                "permissions": {
                    p: {
                        "id": str(i),
                        "key": p,
                        "name": p.replace("_", " ").title(),
                        "type": "GLOBAL" if p in ("ADMINISTER", "BROWSE_USERS") else "PROJECT",
                        "description": "",
                        "havePermission": admin or p != "ADMINISTER",
                    }
                    for i, p in enumerate(wanted)
                }
            }
        )

    def project_json(project: dict[str, Any]) -> dict[str, Any]:
        return {
            **_project_ref(project),
            "description": project["description"],
            "lead": _user_json(project["lead"]),
            "isPrivate": project["isPrivate"],
            "style": project["style"],
            "archived": project["archived"],
            "avatarUrls": {"48x48": f"{_base()}/avatar/project/{project['id']}"},
            "issueTypes": [{"self": f"{_base()}{API}/issuetype/{t['id']}", "iconUrl": "", **t} for t in ISSUE_TYPES.values()],
        }

    @bp.get(f"{API}/project")
    def project_list():
        """getAllProjects (deprecated, still called by SDKs): every visible project, not paged."""
        with STORE.lock:
            projects = sorted(_projects().values(), key=lambda p: p["key"])
            return jsonify([{**_project_ref(p), "avatarUrls": {"48x48": f"{_base()}/avatar/project/{p['id']}"}} for p in projects])

    @bp.get(f"{API}/project/<project_id_or_key>")
    def project_get(project_id_or_key: str):
        with STORE.lock:
            found = next((p for p in _projects().values() if project_id_or_key in (p["key"], str(p["id"]))), None)
            if found is None:
                return _errors(404, [f"No project could be found with key '{project_id_or_key}'."])
            return jsonify(project_json(found))

    @bp.route("/rest/api/latest/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
    def api_latest(rest: str):
        """/rest/api/latest/… is the newest version (3 on Cloud): served by the same operations."""
        target = request.path.replace("/rest/api/latest/", f"{API}/", 1)
        adapter = current_app.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match(target, method=request.method)
        except HTTPException as error:
            return _errors(error.code or 404, [f"No resource at {target}."])
        values.pop("cloud_id", None)  # the gateway's site was resolved for this request already
        return current_app.view_functions[endpoint](**values)

    @bp.get(f"{API}/project/search")
    def project_search():
        paging = _page_args(50, 100)
        if isinstance(paging, Response):
            return paging
        start, size = paging
        expand = {e.strip() for e in request.args.get("expand", "").split(",")}
        keys = {k for k in request.args.getlist("keys")}
        with STORE.lock:
            projects = [p for p in _projects().values() if not keys or p["key"] in keys]
            projects.sort(key=lambda p: p["key"])
            values = []
            for project in projects[start : start + size]:
                value = {**_project_ref(project), "isPrivate": project["isPrivate"], "style": project["style"], "archived": project["archived"]}
                value["avatarUrls"] = {"48x48": f"{_base()}/avatar/project/{project['id']}"}
                if "description" in expand:
                    value["description"] = project["description"]
                if "lead" in expand:
                    value["lead"] = _user_json(project["lead"])
                values.append(value)
        is_last = start + len(values) >= len(projects)
        body = {"self": request.url, "maxResults": size, "startAt": start, "total": len(projects), "isLast": is_last, "values": values}
        if not is_last:
            body["nextPage"] = f"{_base()}{API}/project/search?startAt={start + size}&maxResults={size}"
        return jsonify(body)

    @bp.get(f"{API}/project/<key>/versions")
    def project_versions(key: str):
        with STORE.lock:
            project = _projects().get(key) or next((p for p in _projects().values() if p["id"] == key), None)
            if project is None:
                return _errors(404, ["No project could be found with key '" + key + "'."])
            return jsonify([{"self": f"{_base()}{API}/version/{v['id']}", **v, "overdue": False} for v in project["versions"]])

    @bp.get(f"{API}/users/search")
    def users_search():
        paging = _page_args(50, 1000)
        if isinstance(paging, Response):
            return paging
        start, size = paging
        with STORE.lock:
            users = list(_users().values())[start : start + size]
            return jsonify([_user_json(u["accountId"]) for u in users])

    @bp.get(f"{API}/user/search")
    def user_search():
        query = (request.args.get("query") or "").strip().lower()
        account_id = request.args.get("accountId")
        if not query and not account_id:
            return _errors(400, ["One of 'accountId' or 'query' must be specified."])
        with STORE.lock:
            found = [
                u
                for u in _users().values()
                if (account_id and u["accountId"] == account_id)
                or (query and (query == (u.get("emailAddress") or "").lower() or (u.get("displayName") or "").lower().startswith(query)))
            ]
            return jsonify([_user_json(u["accountId"]) for u in found[:50]])

    @bp.get(f"{API}/field")
    def fields():
        rows = []
        for field_id, name, schema in SYSTEM_FIELDS + CUSTOM_FIELDS:
            custom = field_id.startswith("customfield_")
            rows.append(
                {
                    "id": field_id,
                    "key": field_id,
                    "name": name,
                    "custom": custom,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{schema['customId']}]", name] if custom else [field_id],
                    "schema": schema,
                }
            )
        return jsonify(rows)

    @bp.get(f"{API}/issue/createmeta/<project_key>/issuetypes")
    def createmeta_types(project_key: str):
        paging = _page_args(50, 200)
        if isinstance(paging, Response):
            return paging
        start, size = paging
        if not any(p["key"] == project_key or p["id"] == project_key for p in _projects().values()):
            return _errors(404, ["No project could be found with key '" + project_key + "'."])
        types = [{"self": f"{_base()}{API}/issuetype/{t['id']}", "iconUrl": "", **t} for t in ISSUE_TYPES.values()]
        return jsonify({"issueTypes": types[start : start + size], "maxResults": size, "startAt": start, "total": len(types)})

    @bp.get(f"{API}/issue/createmeta/<project_key>/issuetypes/<type_id>")
    def createmeta_fields(project_key: str, type_id: str):
        paging = _page_args(50, 200)
        if isinstance(paging, Response):
            return paging
        start, size = paging
        if type_id not in ISSUE_TYPES or not any(p["key"] == project_key or p["id"] == project_key for p in _projects().values()):
            return _errors(404, ["Issue type or project not found."])
        required = {"summary", "issuetype", "project"}
        rows = []
        for field_id, name, schema in SYSTEM_FIELDS + CUSTOM_FIELDS:
            if field_id in ("status", "created", "updated"):
                continue
            row = {
                "fieldId": field_id,
                "key": field_id,
                "name": name,
                "required": field_id in required,
                "schema": schema,
                "hasDefaultValue": False,
                "operations": ["set"],
            }
            if field_id == "customfield_10010":
                row["allowedValues"] = [{"self": f"{_base()}{API}/customFieldOption/{o['id']}", **o} for o in SEVERITY_OPTIONS]
            if field_id == "labels":
                row["operations"] = ["add", "set", "remove"]
            rows.append(row)
        return jsonify({"fields": rows[start : start + size], "maxResults": size, "startAt": start, "total": len(rows)})

    def create(project: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        return _create_issue(project, fields, reporter=me()["accountId"])

    @bp.post(f"{API}/issue")
    def create_issue():
        return _create_one(_validate_create, create, _fail_after_write, f"{_base()}{API}")

    @bp.post(f"{API}/issue/bulk")
    def create_bulk():
        return _create_many(_validate_create, create, _fail_after_write, f"{_base()}{API}", element_status=True)

    @bp.get(f"{API}/issue/<key>")
    def get_issue(key: str):
        with STORE.lock:
            issue = _find_issue(key)
            if issue is None:
                return _errors(404, ["Issue does not exist or you do not have permission to see it."])
            wanted = [f.strip() for f in request.args.get("fields", "*all").split(",") if f.strip()]
            return jsonify(_issue_json(issue, wanted))

    @bp.put(f"{API}/issue/<key>/assignee")
    def assign(key: str):
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            issue = _find_issue(key)
            if issue is None:
                return _errors(404, ["Issue does not exist or you do not have permission to see it."])
            account_id = body.get("accountId")
            if account_id is not None and account_id not in _users():
                return _errors(400, [], {"assignee": f"User '{account_id}' cannot be assigned issues."})
            issue["fields"]["assignee"] = account_id
            issue["updated"] = time.time()
        return Response(status=204)

    @bp.route(f"{API}/issue/<key>/transitions", methods=["GET", "POST"])
    def transitions(key: str):
        with STORE.lock:
            issue = _find_issue(key)
        if issue is None:
            return _errors(404, ["Issue does not exist or you do not have permission to see it."])
        available = {tid: t for tid, t in TRANSITIONS.items() if issue["status"] in t[2]}
        if request.method == "GET":
            return jsonify(
                {
                    "expand": "transitions",
                    "transitions": [
                        {
                            "id": tid,
                            "name": name,
                            "to": _status_json(target),
                            "hasScreen": False,
                            "isGlobal": False,
                            "isInitial": False,
                            "isAvailable": True,
                            "isConditional": False,
                            "isLooped": False,
                        }
                        for tid, (name, target, _) in available.items()
                    ],
                }
            )
        body = request.get_json(silent=True) or {}
        transition_id = str((body.get("transition") or {}).get("id", ""))
        if transition_id not in available:
            return _errors(400, [f"Transition id '{transition_id}' is not valid for this issue."])
        _transition(issue, transition_id, me()["accountId"])
        return Response(status=204)

    @bp.post(f"{API}/issue/<key>/comment")
    def comment(key: str):
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            issue = _find_issue(key)
            if issue is None:
                return _errors(404, ["Issue does not exist or you do not have permission to see it."])
            if not _adf_ok(body.get("body")):
                return _errors(400, [], {"comment": "Comment body must be an Atlassian Document."})
            comment_id = str(STORE.next_id())
            now = _jira_time(time.time())
            row = {
                "self": f"{_base()}{API}/issue/{issue['id']}/comment/{comment_id}",
                "id": comment_id,
                "author": _user_details(me()["accountId"]),
                "body": body["body"],
                "created": now,
                "updated": now,
                "jsdPublic": True,
                "_properties": [p for p in body.get("properties") or [] if isinstance(p, dict) and p.get("key")],
            }
            STORE.collection(VENDOR, "comments").setdefault(issue["key"], []).append(row)
        STORE.record_created(VENDOR, "comment", comment_id, f"comment on {issue['key']}", f"{_site()}/browse/{issue['key']}")
        return jsonify({k: v for k, v in row.items() if k != "_properties"}), 201

    @bp.get(f"{API}/issue/<key>/comment")
    def comments(key: str):
        with STORE.lock:
            issue = _find_issue(key)
            if issue is None:
                return _errors(404, ["Issue does not exist or you do not have permission to see it."])
            stored = list(STORE.collection(VENDOR, "comments").get(issue["key"], []))
        return _comment_page(stored)

    @bp.route(f"{API}/search/jql", methods=["GET", "POST"])
    def search_jql():
        body, fields = _search_request()
        jql = str(body.get("jql") or "")
        try:
            size = max(1, min(int(body.get("maxResults") or 50), 5000 if not fields or fields == ["id"] else 100))
        except ValueError:
            return _errors(400, ["maxResults must be an integer."])
        token = body.get("nextPageToken")
        offset = 0
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
                offset = int(decoded["offset"])
                if decoded["jql"] != hashlib.sha1(jql.encode()).hexdigest():
                    raise ValueError("token from another query")
            except (ValueError, KeyError, TypeError):
                return _errors(400, ["The provided next page token is invalid or expired."])
        with STORE.lock:
            try:
                predicates, (order_field, descending) = _parse_jql(jql, me().get("timeZone") or "UTC")
                matches = [i for i in _issues().values() if all(p(i) for p in predicates)]
                matches.sort(key=_order_key(order_field), reverse=descending)
            except JqlError as exc:
                return _errors(400, [str(exc)])
            page = [_issue_json(i, fields) for i in matches[offset : offset + size]]
        result: dict[str, Any] = {"issues": page, "isLast": offset + size >= len(matches)}
        if not result["isLast"]:
            result["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps({"offset": offset + size, "jql": hashlib.sha1(jql.encode()).hexdigest()}).encode()
            ).decode()
        return jsonify(result)

    def jql_ok(jql: str) -> str | None:
        try:
            _parse_jql(jql, "UTC")
        except JqlError as exc:
            return str(exc)
        return None

    dynamic.install(
        bp,
        vendor=VENDOR,
        api=API,
        is_gateway=lambda: bool(request.environ.get(GATEWAY_CLOUD_ID)),
        errors=lambda status, messages: _errors(status, messages),
        jql_ok=jql_ok,
        caller=lambda: request.environ["sandbox.jira.caller"],
    )

    # Admin webhooks (Jira Cloud's legacy REST registration, the one that supports a secret): not offered to OAuth 2.0 apps.
    @bp.route("/rest/webhooks/1.0/webhook", methods=["GET", "POST"])
    def webhooks():
        if request.environ.get(GATEWAY_CLOUD_ID):
            return _oauth_not_offered()
        if request.method == "GET":
            with STORE.lock:
                return jsonify([{k: v for k, v in h.items() if k != "secret"} for h in STORE.webhook_subscriptions.get(VENDOR, [])])
        return _add_hook(VENDOR, request.get_json(silent=True) or {}, f"{_base()}/rest/webhooks/1.0/webhook", hidden=("secret",))

    @bp.delete("/rest/webhooks/1.0/webhook/<int:hook_id>")
    def webhook_delete(hook_id: int):
        if request.environ.get(GATEWAY_CLOUD_ID):
            return _oauth_not_offered()
        return _delete_hook(VENDOR, hook_id)

    @bp.get("/browse/<key>")
    def browse(key: str):
        with STORE.lock:
            issue = _find_issue(key)
            if issue is None:
                return Response("Issue not found", status=404)
            fields = _issue_fields(issue)
        return render_template_string(
            "<h1>{{ key }}: {{ f.summary }}</h1><p>Status: <strong>{{ f.status.name }}</strong></p>"
            "<p>Assignee: {{ f.assignee.displayName if f.assignee else 'Unassigned' }} · Due: {{ f.duedate or '—' }} · Labels: {{ f.labels|join(', ') }}</p>",
            key=issue["key"],
            f=fields,
        )

    return bp


def _control_blueprint() -> Blueprint:
    bp = Blueprint("jira_control", __name__)

    @bp.post("/_sandbox/transition")
    def transition_and_notify():
        """Move an issue to a status by name (as a person would in Jira) and deliver the signed webhooks."""
        return _transition_by_name(VENDOR, _find_issue, lambda issue, tid: _transition(issue, tid, _account_id(0)), unknown_status_is_400=True)

    @bp.put("/_sandbox/knobs")
    def knobs():
        body = request.get_json(force=True) or {}
        with STORE.lock:
            _knobs().update({k: v for k, v in body.items() if k in ("fail_after_write", "fail_status", "sites", "app_secret")})
            return jsonify(dict(_knobs()))

    @bp.get("/_sandbox/issues")
    def issues():
        with STORE.lock:
            return jsonify([_issue_json(i, ["*all"]) for i in _issues().values()])

    @bp.get("/_sandbox/deliveries")
    def deliveries():
        with STORE.lock:
            return jsonify(list(STORE.collection(VENDOR, "_deliveries").values()))

    return bp


def _accessible_resources_blueprint() -> Blueprint:
    bp = Blueprint("jira_accessible_resources", __name__)
    install_faults(bp, VENDOR, rate_limited=_rate_limited, error=_error)

    @bp.get("/oauth/token/accessible-resources")
    def accessible_resources():
        """api.atlassian.com/oauth/token/accessible-resources: the sites (cloudId) an OAuth token can reach."""
        grant = token_info(VENDOR, bearer_token())
        if grant is None:
            return jsonify({"code": 401, "message": "Unauthorized"}), 401
        with STORE.lock:
            sites = _sites()
        return jsonify([{"scopes": grant.get("scopes", []), "avatarUrl": "", **site} for site in sites])

    return bp


def _oauth_blueprints() -> list[Blueprint]:
    oauth = oauth_blueprint(OAuthProfile(VENDOR, access_ttl=3600, rotates_refresh_token=True))
    install_faults(oauth, VENDOR, rate_limited=_rate_limited, error=_error)
    alias = Blueprint("jira_oauth_alias", __name__)

    @alias.route("/authorize", methods=["GET", "POST"])
    def authorize():
        # auth.atlassian.com/authorize; audience=api.atlassian.com and prompt=consent are Atlassian's required extras.
        if request.values.get("audience") != "api.atlassian.com":
            return Response("audience=api.atlassian.com is required", status=400)
        return current_app.view_functions["jira_oauth.authorize"]()

    return [oauth, alias]


def _gateway_blueprint() -> Blueprint:
    """api.atlassian.com/ex/jira/<cloudId>/…: the same Jira API for each site the grant reaches; an unknown cloudId is a 404."""
    gateway = Blueprint("jira_gateway", __name__)  # the sandbox mounts it at /jira, like the site

    @gateway.url_value_preprocessor
    def _site_for(endpoint: str | None, values: dict[str, Any] | None) -> None:
        cloud_id = (values or {}).pop("cloud_id", "")
        with STORE.lock:
            known = any(site["id"] == cloud_id for site in _sites())
        if not known:
            response = jsonify({"code": 404, "message": f"No site with cloudId {cloud_id} (sandbox gateway)."})
            response.status_code = 404
            abort(response)
        request.environ[GATEWAY_CLOUD_ID] = cloud_id

    gateway.register_blueprint(_api_blueprint(), url_prefix="/ex/jira/<cloud_id>")
    return gateway


def blueprints() -> list[Blueprint]:
    return [_control_blueprint(), _api_blueprint(), _gateway_blueprint(), _accessible_resources_blueprint(), *_oauth_blueprints()]
