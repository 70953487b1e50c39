"""Microsoft Entra ID stand-in: client-credentials token endpoint and Graph v1.0 users/groups/manager/members with nextLink and delta."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request

from sandbox.oauth import OAuthProfile, _issue_tokens, bearer_token, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "entra"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MAX_TOP = 999
DEFAULT_TOP = 100
_version_lock = threading.Lock()


def _graph_error(status: int, code: str, message: str) -> Response:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    response = jsonify(
        {"error": {"code": code, "message": message, "innerError": {"date": now, "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}}
    )
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    response = _graph_error(429, "TooManyRequests", "Too many requests. Please retry after the time specified in the Retry-After header.")
    response.headers["Retry-After"] = str(int(retry_after))
    return response


def _fault_error(status: int, message: str) -> Response:
    codes = {401: "InvalidAuthenticationToken", 403: "Authorization_RequestDenied", 503: "serviceNotAvailable", 504: "gatewayTimeout"}
    return _graph_error(status, codes.get(status, "generalException"), message)


def _users():
    return STORE.collection(VENDOR, "users")


def _groups():
    return STORE.collection(VENDOR, "groups")


def _bump(obj: dict[str, Any]) -> None:
    """Every change gets the next tenant-wide version: delta tokens are positions in that sequence."""
    with _version_lock:
        state = STORE.collection(VENDOR, "meta")
        state["version"] = state.get("version", 0) + 1
        obj["_version"] = state["version"]


def _current_version() -> int:
    return int(STORE.collection(VENDOR, "meta").get("version", 0))


def seed() -> None:
    rows = people()
    ids = {row["email"]: str(uuid.uuid5(uuid.NAMESPACE_URL, f"entra:{row['email']}")) for row in rows}
    for row in rows:
        user = {
            "id": ids[row["email"]],
            "accountEnabled": True,
            "displayName": row["name"],
            "givenName": row["given_name"],
            "surname": row["family_name"],
            "mail": row["email"],
            "userPrincipalName": row["email"],
            "mailNickname": row["email"].split("@")[0],
            "jobTitle": row["title"],
            "department": row["department"],
            "businessPhones": [f"+1 555 03{row['index']:02d}"],
            "mobilePhone": None,
            "officeLocation": "HQ",
            "employeeId": f"E{1000 + row['index']}",
            "userType": "Member",
            "createdDateTime": "2024-01-15T09:00:00Z",
            "_manager": ids.get(row["manager_email"]) if row["manager_email"] else None,
            "_deleted": False,
        }
        _bump(user)
        _users()[user["id"]] = user
    departments: dict[str, list[str]] = {}
    for row in rows:
        departments.setdefault(row["department"], []).append(ids[row["email"]])
    specs = [(f"{d} team", members) for d, members in sorted(departments.items())]
    specs.append(("Crisis Response", [ids["ava.chen@acme.example"], ids["marcus.okafor@acme.example"]]))
    for name, members in specs:
        gid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"entra-group:{name}"))
        group = {
            "id": gid,
            "displayName": name,
            "description": name,
            "mail": None,
            "mailEnabled": False,
            "securityEnabled": True,
            "groupTypes": [],
            "createdDateTime": "2024-01-15T09:00:00Z",
            "_members": members,
        }
        _groups()[gid] = group
    legal = str(uuid.uuid5(uuid.NAMESPACE_URL, "entra-group:Legal team"))
    _groups()[str(uuid.uuid5(uuid.NAMESPACE_URL, "entra-group:Crisis Response"))]["_members"].append(legal)  # a nested group


def _public_user(user: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    body = {k: v for k, v in user.items() if not k.startswith("_")}
    if select:
        body = {k: v for k, v in body.items() if k in select or k == "id"}
    return body


def _select() -> list[str] | None:
    raw = request.args.get("$select")
    return [s.strip() for s in raw.split(",") if s.strip()] if raw else None


def _top() -> int:
    try:
        return max(1, min(int(request.args.get("$top", DEFAULT_TOP)), MAX_TOP))
    except ValueError:
        return DEFAULT_TOP


def _token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _untoken(value: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def _link(path: str, params: dict[str, Any]) -> str:
    return f"{request.host_url.rstrip('/')}/entra/v1.0/{path}?{urlencode(params, safe='$,')}"


def blueprints() -> list[Blueprint]:
    login = Blueprint("entra_login", __name__)
    install_faults(login, VENDOR, rate_limited=_rate_limited, error=_fault_error)

    @login.post("/<tenant>/oauth2/v2.0/token")
    def token(tenant: str):
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return jsonify({"error": "unsupported_grant_type", "error_description": "AADSTS70003: The app requested an unsupported grant type."}), 400
        if not form.get("client_id") or not form.get("client_secret") or form.get("client_secret") == "wrong-secret":
            return jsonify({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}), 401
        if form.get("scope") != GRAPH_SCOPE:
            return jsonify({"error": "invalid_scope", "error_description": f"AADSTS70011: The provided value for scope {form.get('scope')} is not valid."}), 400
        body = _issue_tokens(OAuthProfile(VENDOR, access_ttl=3599, issue_refresh_token=False), ["User.Read.All", "Group.Read.All"], form["client_id"], tenant)
        body["ext_expires_in"] = body["expires_in"]
        body.pop("scope", None)
        return jsonify(body)

    graph = Blueprint("entra_graph", __name__)
    install_faults(graph, VENDOR, rate_limited=_rate_limited, error=_fault_error)

    @graph.before_request
    def _auth():
        info = token_info(VENDOR, bearer_token())
        if info is None:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        return None

    @graph.get("/v1.0/organization")
    def organization():
        return jsonify(
            {"value": [{"id": "a1b2c3d4-0000-4000-8000-000000000001", "displayName": "Acme (sandbox)", "verifiedDomains": [{"name": "acme.example"}]}]}
        )

    @graph.get("/v1.0/users")
    def list_users():
        with STORE.lock:
            users = [u for u in _users().values() if not u["_deleted"]]
        skip = int(_untoken(request.args["$skiptoken"])["skip"]) if request.args.get("$skiptoken") else 0
        top, select = _top(), _select()
        expand_manager = (request.args.get("$expand") or "").startswith("manager")
        page = users[skip : skip + top]
        values = []
        for user in page:
            body = _public_user(user, select)
            if expand_manager and user["_manager"] and user["_manager"] in _users():
                body["manager"] = {"@odata.type": "#microsoft.graph.user", "id": user["_manager"]}
            values.append(body)
        result: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": values}
        if skip + top < len(users):
            params = {k: v for k, v in request.args.items() if k != "$skiptoken"}
            result["@odata.nextLink"] = _link("users", {**params, "$skiptoken": _token({"skip": skip + top})})
        return jsonify(result)

    @graph.get("/v1.0/users/delta")
    def users_delta():
        """Initial round: every user; later rounds (deltatoken): users changed since, removed ones as `@removed`."""
        if request.args.get("$skiptoken"):
            state = _untoken(request.args["$skiptoken"])
        elif request.args.get("$deltatoken"):
            try:
                state = {"since": int(_untoken(request.args["$deltatoken"])["v"]), "skip": 0, "select": request.args.get("$select", "")}
            except (ValueError, KeyError):
                return _graph_error(400, "badRequest", "Invalid delta token.")
            state["upto"] = _current_version()
        else:
            state = {"since": 0, "skip": 0, "select": request.args.get("$select", ""), "upto": _current_version()}
        select = [s for s in state["select"].split(",") if s] or None
        with STORE.lock:
            changed = [u for u in _users().values() if state["since"] < u["_version"] <= state["upto"]]
        if state["since"] == 0:
            changed = [u for u in changed if not u["_deleted"]]
        top = _top()
        page = changed[state["skip"] : state["skip"] + top]
        values = []
        for user in page:
            if user["_deleted"]:
                values.append({"id": user["id"], "@removed": {"reason": "changed"}})
                continue
            body = _public_user(user, select)
            if select is None or "manager" in select:
                body["manager@delta"] = [{"@odata.type": "#microsoft.graph.user", "id": user["_manager"]}] if user["_manager"] else []
            values.append(body)
        result: dict[str, Any] = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(delta)", "value": values}
        if state["skip"] + top < len(changed):
            result["@odata.nextLink"] = _link("users/delta", {"$skiptoken": _token({**state, "skip": state["skip"] + top}), "$top": top})
        else:
            result["@odata.deltaLink"] = _link(
                "users/delta", {"$deltatoken": _token({"v": state["upto"]}), **({"$select": state["select"]} if state["select"] else {})}
            )
        return jsonify(result)

    @graph.get("/v1.0/users/<user_id>")
    def get_user(user_id: str):
        user = _find_user(user_id)
        if user is None:
            return _graph_error(
                404, "Request_ResourceNotFound", f"Resource '{user_id}' does not exist or one of its queried reference-property objects are not present."
            )
        return jsonify(_public_user(user, _select()))

    @graph.route("/v1.0/users/<user_id>", methods=["PATCH"])
    def patch_user(user_id: str):
        user = _find_user(user_id)
        if user is None:
            return _graph_error(404, "Request_ResourceNotFound", f"Resource '{user_id}' does not exist.")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _graph_error(400, "Request_BadRequest", "A JSON object is required.")
        with STORE.lock:
            for key, value in body.items():
                if key == "id" or key.startswith("_"):
                    continue
                user[key] = value
            _bump(user)
        return Response(status=204)

    @graph.route("/v1.0/users/<user_id>", methods=["DELETE"])
    def delete_user(user_id: str):
        user = _find_user(user_id)
        if user is None:
            return _graph_error(404, "Request_ResourceNotFound", f"Resource '{user_id}' does not exist.")
        with STORE.lock:
            user["_deleted"] = True
            _bump(user)
        return Response(status=204)

    @graph.get("/v1.0/users/<user_id>/manager")
    def manager(user_id: str):
        user = _find_user(user_id)
        if user is None or not user["_manager"] or user["_manager"] not in _users():
            return _graph_error(
                404, "Request_ResourceNotFound", "Resource 'manager' does not exist or one of its queried reference-property objects are not present."
            )
        return jsonify({"@odata.type": "#microsoft.graph.user", **_public_user(_users()[user["_manager"]], _select())})

    @graph.get("/v1.0/groups")
    def list_groups():
        with STORE.lock:
            groups = list(_groups().values())
        skip = int(_untoken(request.args["$skiptoken"])["skip"]) if request.args.get("$skiptoken") else 0
        top = _top()
        page = groups[skip : skip + top]
        result: dict[str, Any] = {"value": [{k: v for k, v in g.items() if not k.startswith("_")} for g in page]}
        if skip + top < len(groups):
            params = {k: v for k, v in request.args.items() if k != "$skiptoken"}
            result["@odata.nextLink"] = _link("groups", {**params, "$skiptoken": _token({"skip": skip + top})})
        return jsonify(result)

    @graph.get("/v1.0/groups/<group_id>/members")
    def group_members(group_id: str):
        group = _groups().get(group_id)
        if group is None:
            return _graph_error(404, "Request_ResourceNotFound", f"Resource '{group_id}' does not exist.")
        members = []
        for member_id in group["_members"]:
            if member_id in _users() and not _users()[member_id]["_deleted"]:
                members.append({"@odata.type": "#microsoft.graph.user", "id": member_id, "displayName": _users()[member_id]["displayName"]})
            elif member_id in _groups():
                members.append({"@odata.type": "#microsoft.graph.group", "id": member_id, "displayName": _groups()[member_id]["displayName"]})
        skip = int(_untoken(request.args["$skiptoken"])["skip"]) if request.args.get("$skiptoken") else 0
        top = _top()
        result: dict[str, Any] = {"value": members[skip : skip + top]}
        if skip + top < len(members):
            result["@odata.nextLink"] = _link(f"groups/{group_id}/members", {"$top": top, "$skiptoken": _token({"skip": skip + top})})
        return jsonify(result)

    return [login, graph]


def _find_user(user_id: str) -> dict[str, Any] | None:
    with STORE.lock:
        user = _users().get(user_id)
        if user is None:
            user = next((u for u in _users().values() if u["userPrincipalName"].lower() == user_id.lower()), None)
        return user if user is not None and not user["_deleted"] else None
