"""Jira Data Center REST v2 stand-in: PAT bearer auth, plain-text descriptions, users by name/key, startAt/total search paging.

The workflow, issue types, fields and JQL subset are the Jira Cloud stand-in's; the state is this server's own.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from flask import Blueprint, Response, jsonify, render_template_string, request

from sandbox.oauth import bearer_token, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people
from sandbox.vendors.jira import (
    CUSTOM_FIELDS,
    ISSUE_TYPES,
    PROJECTS,
    SEVERITY_OPTIONS,
    STATUS_CATEGORIES,
    STATUSES,
    SYSTEM_FIELDS,
    TRANSITIONS,
    JqlError,
    _add_hook,
    _comment_page,
    _create_many,
    _create_one,
    _delete_hook,
    _errors,
    _jira_time,
    _order_key,
    _page_args,
    _parse_jql,
    _search_request,
    _send_event,
    _status_change,
    _store_issue,
    _transition_by_name,
    _validate_create,
)
from sandbox.vendors.jira import _fail_after_write as _cloud_fail_after_write
from sandbox.vendors.jira import _find_issue as _cloud_find_issue

VENDOR = "jira_dc"
API = "/rest/api/2"
WEBHOOKS = "/rest/webhooks/1.0/webhook"
ADMIN_NAME = "jira.admin"
ADMIN_EMAIL = "jira.admin@acme.example"
ADMIN_TIME_ZONE = "America/Chicago"  # JQL dates are read in the caller's zone
DEFAULT_VERSION = [10, 3, 1]  # Data Center 10 signs admin webhooks that have a secret; 9.x does not


def _user_key(index: int) -> str:
    return f"JIRAUSER{10100 + index}"


def _users() -> Any:
    return STORE.collection(VENDOR, "users")  # by name


def _projects() -> Any:
    return STORE.collection(VENDOR, "projects")


def _issues() -> Any:
    return STORE.collection(VENDOR, "issues")


def _knobs() -> Any:
    return STORE.collection(VENDOR, "_knobs")


def _comments() -> Any:
    return STORE.collection(VENDOR, "comments")


def _base() -> str:
    """The server's base URL (https://jira.example.com in real life)."""
    return f"{request.host_url}{VENDOR}"


def _version() -> list[int]:
    return list(_knobs().get("version") or DEFAULT_VERSION)


def _signs() -> bool:
    return _version()[0] >= 10


def seed() -> None:
    """The shared people as Jira users (name = email local part), the admin, one deactivated account, three projects, some issues."""
    with STORE.lock:
        users = _users()
        users[ADMIN_NAME] = {
            "key": "JIRAUSER10000",
            "name": ADMIN_NAME,
            "emailAddress": ADMIN_EMAIL,
            "displayName": "Acme Jira Admin",
            "active": True,
            "deleted": False,
            "timeZone": ADMIN_TIME_ZONE,
            "locale": "en_US",
        }
        for person in people():
            name = person["email"].split("@")[0]
            users[name] = {
                "key": _user_key(person["index"]),
                "name": name,
                "emailAddress": person["email"],
                "displayName": person["name"],
                "active": True,
                "deleted": False,
                "timeZone": "Europe/London",
                "locale": "en_GB",
            }
        users["old.contractor"] = {
            "key": "JIRAUSER10090",
            "name": "old.contractor",
            "emailAddress": "old.contractor@acme.example",
            "displayName": "Old Contractor",
            "active": False,
            "deleted": False,
            "timeZone": "Europe/London",
            "locale": "en_GB",
        }
        names = [p["email"].split("@")[0] for p in people()]
        for pid, key, name, description, lead, due in PROJECTS:
            _projects()[key] = {
                "id": pid,
                "key": key,
                "name": name,
                "description": description,
                "lead": names[lead],
                "projectTypeKey": "software",
                "archived": False,
                "versions": [{"id": str(int(pid) + 500), "name": f"{key} 1.0", "released": False, "archived": False, "releaseDate": due, "projectId": int(pid)}]
                if due
                else [],
                "_counter": 0,
            }
        start = time.time() - 10 * 86400
        for n in range(12):
            _create_issue(_projects()["OPS"], {"summary": f"Server task #{n + 1}", "issuetype": ISSUE_TYPES["10001"], "labels": ["seed"]}, now=start + n * 3600)
        for n in range(3):
            _create_issue(_projects()["LAUNCH"], {"summary": f"Launch checklist {n + 1}", "issuetype": ISSUE_TYPES["10001"], "labels": []}, now=start + n * 60)
        _knobs().update({"fail_after_write": 0, "fail_status": 500, "version": list(DEFAULT_VERSION)})


# ---- rendering (v2: users by name and key, descriptions as strings) -------------------------------------------------


def _user_json(name: str | None) -> dict[str, Any] | None:
    user = _users().get(name or "")
    if not user:
        return None
    return {"self": f"{_base()}{API}/user?username={user['name']}", **user, "avatarUrls": {"48x48": f"{_base()}/secure/useravatar?ownerId={user['name']}"}}


def _status_json(status_id: str) -> dict[str, Any]:
    status = STATUSES[status_id]
    category = STATUS_CATEGORIES[status["category"]]
    return {
        "self": f"{_base()}{API}/status/{status_id}",
        "description": status["description"],
        "name": status["name"],
        "id": status_id,
        "statusCategory": {"self": f"{_base()}{API}/statuscategory/{category['id']}", **category},
    }


def _issue_fields(issue: dict[str, Any]) -> dict[str, Any]:
    stored = issue["fields"]
    project = _projects()[issue["project"]]
    fields = {
        "summary": stored["summary"],
        "description": stored.get("description"),
        "status": _status_json(issue["status"]),
        "assignee": _user_json(stored.get("assignee")),
        "reporter": _user_json(stored.get("reporter")),
        "duedate": stored.get("duedate"),
        "labels": list(stored.get("labels", [])),
        "priority": {"self": f"{_base()}{API}/priority/3", "id": "3", "name": "Medium"},
        "issuetype": {"self": f"{_base()}{API}/issuetype/{stored['issuetype']['id']}", **stored["issuetype"]},
        "project": {"self": f"{_base()}{API}/project/{project['id']}", "id": project["id"], "key": project["key"], "name": project["name"]},
        "created": _jira_time(issue["created"]),
        "updated": _jira_time(issue["updated"]),
    }
    for field_id, _, _ in CUSTOM_FIELDS:
        fields[field_id] = stored.get(field_id)
    return fields


def _issue_json(issue: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """IssueBean; v2's search default is every navigable field (not Cloud's `id` only)."""
    all_fields = _issue_fields(issue)
    if not wanted or "*all" in wanted or "*navigable" in wanted:
        fields = all_fields
    else:
        fields = {k: all_fields[k] for k in wanted if k in all_fields}
    return {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog",
        "id": issue["id"],
        "self": f"{_base()}{API}/issue/{issue['id']}",
        "key": issue["key"],
        "fields": fields,
    }


def _rate_limited(retry_after: int) -> Response:
    # Data Center's rate limiting (an admin option since 8.6) answers 429 with Retry-After and X-RateLimit-* headers.
    response = _errors(429, ["Rate limit exceeded."])
    response.headers.update({"Retry-After": str(retry_after), "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"})
    return response


def _error(status: int, message: str) -> Response:
    return _errors(status, [message])


def _fail_after_write() -> Response | None:
    return _cloud_fail_after_write(_knobs)


def _caller() -> dict[str, Any] | None:
    """The user behind `Authorization: Bearer <PAT>` (the token's subject: a username or email); Basic and anything else: nobody."""
    grant = token_info(VENDOR, bearer_token())
    if grant is None:
        return None
    subject = str(grant.get("subject") or "").lower()
    if subject == "sandbox-admin":
        return _users()[ADMIN_NAME]
    return next((u for u in _users().values() if subject in (u["name"].lower(), u["emailAddress"].lower())), None)


def _find_issue(key_or_id: str) -> dict[str, Any] | None:
    return _cloud_find_issue(key_or_id, _issues)


# ---- writes ---------------------------------------------------------------------------------------------------------


def _assignee_error(assignee: Any) -> str | None:
    if assignee is not None and (not isinstance(assignee, dict) or assignee.get("name") not in _users()):
        return f"User '{(assignee or {}).get('name') or (assignee or {}).get('accountId')}' does not exist."
    return None


# What Server says to a missing project or issue type and to a description that is not a string (an ADF document, say).
CREATE_MESSAGES = {"project": "project is required", "issuetype": "issue type is required", "description": "Operation value must be a string"}


def _validate(body: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, str]]:
    """Check a v2 IssueUpdateDetails: description is a string, the assignee is {"name": …}."""
    return _validate_create(
        body,
        projects=_projects,
        user_field="name",
        assignee_error=_assignee_error,
        description_ok=lambda value: isinstance(value, str),
        messages=CREATE_MESSAGES,
    )


def _create_issue(
    project: dict[str, Any], fields: dict[str, Any], *, now: float | None = None, reporter: str = ADMIN_NAME, notify: bool = False
) -> dict[str, Any]:
    issue = _store_issue(_issues(), project, fields, now=now, reporter=reporter)
    if notify:
        STORE.record_created(VENDOR, "issue", issue["key"], fields["summary"][:100], f"{_base()}/browse/{issue['key']}")
        _notify("jira:issue_created", issue, "issue_created", actor=reporter)
    return issue


def _transition(issue: dict[str, Any], transition_id: str, actor: str) -> None:
    changelog = _status_change(issue, transition_id, with_field_id=False)
    _notify("jira:issue_updated", issue, "issue_generic", changelog=changelog, actor=actor)


def _notify(event: str, issue: dict[str, Any], type_name: str, *, changelog: dict[str, Any] | None = None, actor: str = ADMIN_NAME) -> int:
    """POST the event to each registered webhook in a background thread; signed (X-Hub-Signature) only on 10+ with a secret."""
    return _send_event(
        VENDOR,
        event,
        issue,
        type_name,
        changelog=changelog,
        user=lambda: _user_json(actor),
        issue_body=lambda: _issue_json(issue, None),
        cloud=False,
        signs=_signs,
    )


# ---- the API -------------------------------------------------------------------------------------------------------


def _api_blueprint() -> Blueprint:  # noqa: C901 - one closure per endpoint, as in the Cloud stand-in
    bp = Blueprint("jira_dc_api", __name__)
    install_faults(bp, VENDOR, rate_limited=_rate_limited, error=_error)

    @bp.before_request
    def _authenticate():
        if request.path.startswith(f"/{VENDOR}/browse/"):
            return None
        with STORE.lock:
            caller = _caller()
        if caller is None or not caller["active"]:
            response = _errors(401, ["You are not authenticated. Authentication required to perform this operation."])
            response.headers["WWW-Authenticate"] = 'Bearer realm="Jira"'
            return response
        request.environ["sandbox.jira_dc.caller"] = caller["name"]
        return None

    def me() -> dict[str, Any]:
        return _users()[request.environ["sandbox.jira_dc.caller"]]

    @bp.get(f"{API}/myself")
    def myself():
        with STORE.lock:
            return jsonify({**_user_json(me()["name"]), "groups": {"size": 1, "items": [{"name": "jira-software-users"}]}})

    @bp.get(f"{API}/serverInfo")
    def server_info():
        with STORE.lock:
            version = _version()
        return jsonify(
            {
                "baseUrl": _base(),
                "version": ".".join(str(n) for n in version),
                "versionNumbers": version,
                "deploymentType": "Server",  # Data Center reports Server here too
                "buildNumber": version[0] * 10000 + version[1] * 100 + version[2],
                "serverTime": _jira_time(time.time()),
                "serverTitle": "Acme Jira (sandbox Data Center)",
            }
        )

    @bp.get(f"{API}/mypermissions")
    def my_permissions():
        wanted = [p.strip() for p in request.args.get("permissions", "").split(",") if p.strip()] or ["BROWSE_PROJECTS"]
        admin = me()["name"] == ADMIN_NAME
        return jsonify(
            {
                "permissions": {
                    p: {"id": str(i), "key": p, "name": p.replace("_", " ").title(), "havePermission": admin or p != "ADMINISTER"} for i, p in enumerate(wanted)
                }
            }
        )

    @bp.get(f"{API}/project")
    def projects():
        expand = {e.strip() for e in request.args.get("expand", "").split(",")}
        with STORE.lock:
            rows = []
            for project in sorted(_projects().values(), key=lambda p: p["key"]):
                row = {"self": f"{_base()}{API}/project/{project['id']}", "id": project["id"], "key": project["key"], "name": project["name"]}
                row["projectTypeKey"] = project["projectTypeKey"]
                if "description" in expand:
                    row["description"] = project["description"]
                if "lead" in expand:
                    row["lead"] = _user_json(project["lead"])
                rows.append(row)
        return jsonify(rows)

    @bp.get(f"{API}/project/<key>/versions")
    def versions(key: str):
        with STORE.lock:
            project = _projects().get(key) or next((p for p in _projects().values() if p["id"] == key), None)
            if project is None:
                return _errors(404, [f"No project could be found with key '{key}'."])
            return jsonify([{"self": f"{_base()}{API}/version/{v['id']}", **v, "overdue": False} for v in project["versions"]])

    @bp.get(f"{API}/user/search")
    def user_search():
        query = (request.args.get("username") or "").strip().lower()
        if not query:
            return _errors(400, ["The username query parameter was not provided"])
        paging = _page_args(50, 1000)
        if isinstance(paging, Response):
            return paging
        start, size = paging
        active = request.args.get("includeActive", "true") != "false"
        inactive = request.args.get("includeInactive", "false") == "true"
        with STORE.lock:
            found = [
                u
                for u in _users().values()
                if (u["active"] and active or not u["active"] and inactive)
                and (
                    query == "."  # matches every account, as Server's user search does
                    or any((u.get(attr) or "").lower().startswith(query) for attr in ("name", "emailAddress", "displayName"))
                )
            ]
            return jsonify([_user_json(u["name"]) for u in found[start : start + size]])

    @bp.get(f"{API}/field")
    def fields():
        return jsonify(
            [
                {"id": f, "key": f, "name": name, "custom": f.startswith("customfield_"), "navigable": True, "searchable": True, "schema": schema}
                for f, name, schema in SYSTEM_FIELDS + CUSTOM_FIELDS
            ]
        )

    @bp.get(f"{API}/issue/createmeta/<project_key>/issuetypes")
    def createmeta_types(project_key: str):
        paging = _page_args(50, 200)
        if isinstance(paging, Response):
            return paging
        start, size = paging
        if not any(p["key"] == project_key or p["id"] == project_key for p in _projects().values()):
            return _errors(404, [f"No project could be found with key '{project_key}'."])
        types = [{"self": f"{_base()}{API}/issuetype/{t['id']}", **t} for t in ISSUE_TYPES.values()]
        # Server pages createmeta as `values` (Cloud names the list issueTypes / fields).
        return jsonify({"values": types[start : start + size], "startAt": start, "maxResults": size, "total": len(types), "isLast": start + size >= len(types)})

    @bp.get(f"{API}/issue/createmeta/<project_key>/issuetypes/<type_id>")
    def createmeta_fields(project_key: str, type_id: str):
        paging = _page_args(50, 200)
        if isinstance(paging, Response):
            return paging
        start, size = paging
        if type_id not in ISSUE_TYPES or not any(p["key"] == project_key for p in _projects().values()):
            return _errors(404, ["Issue type or project not found."])
        rows = []
        for field_id, name, schema in SYSTEM_FIELDS + CUSTOM_FIELDS:
            if field_id in ("status", "created", "updated"):
                continue
            row = {"fieldId": field_id, "name": name, "required": field_id in ("summary", "issuetype", "project"), "schema": schema, "hasDefaultValue": False}
            if field_id == "customfield_10010":
                row["allowedValues"] = list(SEVERITY_OPTIONS)
            rows.append(row)
        return jsonify({"values": rows[start : start + size], "startAt": start, "maxResults": size, "total": len(rows), "isLast": start + size >= len(rows)})

    def create(project: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        return _create_issue(project, fields, reporter=me()["name"], notify=True)

    @bp.post(f"{API}/issue")
    def create_issue():
        return _create_one(_validate, create, _fail_after_write, f"{_base()}{API}")

    @bp.post(f"{API}/issue/bulk")
    def create_bulk():
        return _create_many(_validate, create, _fail_after_write, f"{_base()}{API}", element_status=False)

    @bp.get(f"{API}/issue/<key>")
    def get_issue(key: str):
        with STORE.lock:
            issue = _find_issue(key)
            if issue is None:
                return _errors(404, ["Issue Does Not Exist"])
            wanted = [f.strip() for f in request.args.get("fields", "*all").split(",") if f.strip()]
            return jsonify(_issue_json(issue, wanted))

    @bp.put(f"{API}/issue/<key>/assignee")
    def assign(key: str):
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            issue = _find_issue(key)
            if issue is None:
                return _errors(404, ["Issue Does Not Exist"])
            if "accountId" in body:
                return _errors(400, [], {"assignee": "Unrecognized field accountId: Jira Server assigns by name."})
            name = body.get("name")
            if name is not None and (name not in _users() or not _users()[name]["active"]):
                return _errors(400, [], {"assignee": f"User '{name}' cannot be assigned issues."})
            issue["fields"]["assignee"] = name
            issue["updated"] = time.time()
        return Response(status=204)

    @bp.route(f"{API}/issue/<key>/transitions", methods=["GET", "POST"])
    def transitions(key: str):
        with STORE.lock:
            issue = _find_issue(key)
        if issue is None:
            return _errors(404, ["Issue Does Not Exist"])
        available = {tid: t for tid, t in TRANSITIONS.items() if issue["status"] in t[2]}
        if request.method == "GET":
            return jsonify(
                {
                    "expand": "transitions",
                    "transitions": [{"id": tid, "name": name, "to": _status_json(target)} for tid, (name, target, _) in available.items()],
                }
            )
        transition_id = str(((request.get_json(silent=True) or {}).get("transition") or {}).get("id", ""))
        if transition_id not in available:
            return _errors(400, [f"Transition id '{transition_id}' is not valid for this issue."])
        _transition(issue, transition_id, me()["name"])
        return Response(status=204)

    @bp.route(f"{API}/issue/<key>/comment", methods=["GET", "POST"])
    def comments(key: str):
        with STORE.lock:
            issue = _find_issue(key)
            if issue is None:
                return _errors(404, ["Issue Does Not Exist"])
            if request.method == "POST":
                body = request.get_json(silent=True) or {}
                if not isinstance(body.get("body"), str) or not body["body"].strip():
                    return _errors(400, [], {"comment": "Comment body can not be empty!"})
                comment_id = str(STORE.next_id())
                now = _jira_time(time.time())
                row = {
                    "self": f"{_base()}{API}/issue/{issue['id']}/comment/{comment_id}",
                    "id": comment_id,
                    "author": _user_json(me()["name"]),
                    "body": body["body"],
                    "created": now,
                    "updated": now,
                    "_properties": [p for p in body.get("properties") or [] if isinstance(p, dict) and p.get("key")],
                }
                _comments().setdefault(issue["key"], []).append(row)
                STORE.record_created(VENDOR, "comment", comment_id, f"comment on {issue['key']}", f"{_base()}/browse/{issue['key']}")
                return jsonify({k: v for k, v in row.items() if k != "_properties"}), 201
            stored = list(_comments().get(issue["key"], []))
        return _comment_page(stored)

    @bp.route(f"{API}/search", methods=["GET", "POST"])
    def search():
        body, fields = _search_request()
        try:
            start = max(int(body.get("startAt") or 0), 0)
            size = max(1, min(int(body.get("maxResults") or 50), 100))  # jira.search.views.default.max, lowered so paging shows
        except (TypeError, ValueError):
            return _errors(400, ["startAt and maxResults must be integers."])
        with STORE.lock:
            try:
                jql = str(body.get("jql") or "").strip()
                if not jql or jql.lower().startswith("order by"):
                    jql = f'created >= "1970-01-01" {jql}'  # Server runs unbounded JQL (Cloud refuses it): every visible issue
                predicates, (order_field, descending) = _parse_jql(jql, me()["timeZone"], projects=_projects, find_issue=_find_issue)
                matches = [i for i in _issues().values() if all(p(i) for p in predicates)]
                matches.sort(key=_order_key(order_field), reverse=descending)
            except JqlError as exc:
                return _errors(400, [str(exc)])
            page = [_issue_json(i, fields) for i in matches[start : start + size]]
        return jsonify({"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(matches), "issues": page})

    @bp.route(WEBHOOKS, methods=["GET", "POST"])
    def webhooks():
        if request.method == "GET":
            with STORE.lock:
                return jsonify([{k: v for k, v in h.items() if k not in ("secret", "id")} for h in STORE.webhook_subscriptions.get(VENDOR, [])])
        if me()["name"] != ADMIN_NAME:
            return _errors(403, ["Only Jira administrators can manage webhooks."])
        # Before 10 there is no secret to keep.
        return _add_hook(VENDOR, request.get_json(silent=True) or {}, f"{_base()}{WEBHOOKS}", hidden=("secret", "id"), keeps_secret=_signs)

    @bp.delete(f"{WEBHOOKS}/<int:hook_id>")
    def webhook_delete(hook_id: int):
        return _delete_hook(VENDOR, hook_id)

    @bp.get("/browse/<key>")
    def browse(key: str):
        with STORE.lock:
            issue = _find_issue(key)
            if issue is None:
                return Response("Issue not found", status=404)
            fields = _issue_fields(issue)
        return render_template_string("<h1>{{ key }}: {{ f.summary }}</h1><p>Status: <strong>{{ f.status.name }}</strong></p>", key=issue["key"], f=fields)

    return bp


def _control_blueprint() -> Blueprint:
    bp = Blueprint("jira_dc_control", __name__)

    @bp.post("/_sandbox/transition")
    def transition_and_notify():
        """Move an issue to a status by name, as a person in Jira would, and deliver the webhooks (an unknown status is a 409 here)."""
        return _transition_by_name(VENDOR, _find_issue, lambda issue, tid: _transition(issue, tid, "amara.nwosu"), unknown_status_is_400=False)

    @bp.put("/_sandbox/knobs")
    def knobs():
        body = request.get_json(force=True) or {}
        with STORE.lock:
            _knobs().update({k: v for k, v in body.items() if k in ("fail_after_write", "fail_status", "version")})
            return jsonify(dict(_knobs()))

    @bp.get("/_sandbox/issues")
    def issues():
        with STORE.lock:
            return jsonify([_issue_json(i, ["*all"]) for i in _issues().values()])

    @bp.get("/_sandbox/hooks")
    def hooks():
        """What Jira holds for each webhook, secret included (an admin can see whether one is set)."""
        with STORE.lock:
            return jsonify(
                [
                    {**h, "has_secret": bool(h["secret"]), "secret_sha256": hashlib.sha256(h["secret"].encode()).hexdigest()}
                    for h in STORE.webhook_subscriptions.get(VENDOR, [])
                ]
            )

    return bp


def blueprints() -> list[Blueprint]:
    return [_control_blueprint(), _api_blueprint()]
