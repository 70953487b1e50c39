"""SharePoint sites and drives: browse, folders, copy (202 + monitor), invite, createLink, permissions, delete and drive delta."""

from __future__ import annotations

import copy
import secrets
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.state import STORE
from sandbox.vendors.microsoft365.common import (
    GRAPH,
    VENDOR,
    bad_request,
    bump,
    caller_user,
    col,
    delta_answer,
    find_user,
    graph_error,
    iso,
    json_body,
    knobs,
    now,
    paged,
    require_scope,
)
from sandbox.vendors.microsoft365.seed import add_item, item_path
from sandbox.vendors.microsoft365.subscriptions import notify

READ = ("Files.Read", "Files.ReadWrite", "Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All", "Sites.Selected")
WRITE = ("Files.ReadWrite", "Files.ReadWrite.All", "Sites.ReadWrite.All", "Sites.Selected")
CONFLICT = ("fail", "replace", "rename")


def public_item(item: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in item.items() if not k.startswith("_")}
    return {"@microsoft.graph.downloadUrl": f"{request.host_url}microsoft365/_api/v2.0/download/{item['id']}", **body} if "file" in item else body


def _public_site(site: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in site.items() if not k.startswith("_")}


def _public_drive(drive: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in drive.items() if not k.startswith("_")}


def item_changed(item: dict[str, Any], change_type: str = "updated") -> None:
    """OneDrive/SharePoint notify the drive root with `updated` only and no item id: the receiver runs delta to learn what changed."""
    notify({f"drives/{item['_drive']}/root"}, "updated", f"drives/{item['_drive']}/root", None)


def _item(drive_id: str, item_id: str) -> tuple[dict[str, Any] | None, Response | None]:
    drive = col("drives").get(drive_id)
    if drive is None:
        return None, graph_error(404, "itemNotFound", "The drive could not be found.")
    if item_id == "root":
        item_id = drive["_root"]
    item = col("items").get(item_id)
    if item is None or item["_drive"] != drive_id or item.get("_deleted"):
        return None, graph_error(404, "itemNotFound", "The resource could not be found.")
    return item, None


def _children(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in col("items").values() if i.get("_parent") == item["id"] and not i.get("_deleted")]


def _free_name(parent: dict[str, Any], name: str) -> str:
    taken = {c["name"].lower() for c in _children(parent)}
    if name.lower() not in taken:
        return name
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    for n in range(1, 1000):
        candidate = f"{stem} {n}{dot}{ext}"
        if candidate.lower() not in taken:
            return candidate
    return f"{stem} {uuid.uuid4().hex[:6]}{dot}{ext}"


def _copy(source: dict[str, Any], parent: dict[str, Any], name: str) -> dict[str, Any]:
    """Copy a file or a folder tree; a workbook keeps its sheets, tables and names."""
    user = caller_user()
    clone = add_item(
        parent["_drive"],
        parent["id"],
        name,
        folder="folder" in source,
        mime=(source.get("file") or {}).get("mimeType", ""),
        size=source.get("size", 0),
        creator=user["displayName"] if user else "Bastion (application)",
    )
    if source["id"] in col("workbooks"):
        col("workbooks")[clone["id"]] = copy.deepcopy(col("workbooks")[source["id"]])
    for child in _children(source):
        _copy(child, clone, child["name"])
    return clone


def _permission(item: dict[str, Any], roles: list[str], **extra: Any) -> dict[str, Any]:
    permission = {"id": secrets.token_hex(12), "roles": roles, "shareId": "s!" + secrets.token_urlsafe(16), **extra}
    item["_permissions"].append(permission)
    return permission


def register(bp: Blueprint) -> None:
    @bp.get("/v1.0/sites")
    def list_sites():
        if scope_error := require_scope(*READ):
            return scope_error
        search = (request.args.get("search") or "").strip().strip('"').lower()
        found = [s for s in col("sites").values() if search in ("", "*") or search in s["displayName"].lower() or search in s["description"].lower()]
        return paged([_public_site(s) for s in found], "sites")

    @bp.get("/v1.0/sites/<site_id>")
    def get_site(site_id: str):
        site = col("sites").get(site_id)
        return jsonify(_public_site(site)) if site else graph_error(404, "itemNotFound", "Requested site could not be found")

    @bp.get("/v1.0/sites/<site_id>/drives")
    def site_drives(site_id: str):
        site = col("sites").get(site_id)
        if site is None:
            return graph_error(404, "itemNotFound", "Requested site could not be found")
        return paged([_public_drive(d) for d in col("drives").values() if d["_site"] == site_id], "drives")

    @bp.get("/v1.0/sites/<site_id>/drive")
    def site_drive(site_id: str):
        site = col("sites").get(site_id)
        return jsonify(_public_drive(col("drives")[site["_drive"]])) if site else graph_error(404, "itemNotFound", "Requested site could not be found")

    @bp.get("/v1.0/drives/<drive_id>")
    def get_drive(drive_id: str):
        drive = col("drives").get(drive_id)
        return jsonify(_public_drive(drive)) if drive else graph_error(404, "itemNotFound", "The drive could not be found.")

    @bp.get("/v1.0/drives/<drive_id>/root", defaults={"item_id": "root"}, endpoint="get_root")
    @bp.get("/v1.0/drives/<drive_id>/items/<item_id>")
    def get_item(drive_id: str, item_id: str):
        if scope_error := require_scope(*READ):
            return scope_error
        item, error = _item(drive_id, item_id)
        return error or jsonify(public_item(item))

    @bp.get("/v1.0/drives/<drive_id>/root/children", defaults={"item_id": "root"}, endpoint="root_children")
    @bp.get("/v1.0/drives/<drive_id>/items/<item_id>/children")
    def list_children(drive_id: str, item_id: str):
        if scope_error := require_scope(*READ):
            return scope_error
        item, error = _item(drive_id, item_id)
        if error:
            return error
        if "folder" not in item:
            return bad_request("The item is not a folder.", "invalidRequest")
        children = sorted(_children(item), key=lambda c: ("folder" not in c, c["name"].lower()))
        return paged([public_item(c) for c in children], f"drives('{drive_id}')/items('{item['id']}')/children")

    @bp.post("/v1.0/drives/<drive_id>/root/children", defaults={"item_id": "root"}, endpoint="root_create_child")
    @bp.post("/v1.0/drives/<drive_id>/items/<item_id>/children")
    def create_child(drive_id: str, item_id: str):
        parent, error = _item(drive_id, item_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if scope_error := require_scope(*WRITE):
            return scope_error
        name = str(body.get("name") or "").strip()
        if not name or "folder" not in body or any(ch in name for ch in '"*:<>?/\\|'):
            return bad_request('A folder needs a valid name and a folder facet ({"name": ..., "folder": {}}).', "invalidRequest")
        behavior = body.get("@microsoft.graph.conflictBehavior", "fail")
        existing = next((c for c in _children(parent) if c["name"].lower() == name.lower()), None)
        if existing is not None and behavior == "fail":
            return graph_error(409, "nameAlreadyExists", "The specified item name already exists.")
        if existing is not None and behavior == "rename":
            name = _free_name(parent, name)
        if existing is not None and behavior == "replace":
            return jsonify(public_item(existing)), 201
        user = caller_user()
        folder = add_item(drive_id, parent["id"], name, folder=True, creator=user["displayName"] if user else "Bastion (application)")
        STORE.record_created(VENDOR, "folder", folder["id"], f"folder {folder['parentReference']['path']}/{name}", folder["webUrl"])
        item_changed(folder, "created")
        return jsonify(public_item(folder)), 201

    @bp.delete("/v1.0/drives/<drive_id>/items/<item_id>")
    def delete_item(drive_id: str, item_id: str):
        item, error = _item(drive_id, item_id)
        if error:
            return error
        if scope_error := require_scope(*WRITE):
            return scope_error
        if "root" in item:
            return graph_error(403, "accessDenied", "The root of a drive cannot be deleted.")
        with STORE.lock:
            item["_deleted"] = True
            bump(item)
        item_changed(item, "deleted")
        return Response(status=204)

    @bp.post("/v1.0/drives/<drive_id>/items/<item_id>/copy")
    def copy_item(drive_id: str, item_id: str):
        source, error = _item(drive_id, item_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if scope_error := require_scope(*WRITE):
            return scope_error
        reference = body.get("parentReference") or {}
        if not isinstance(reference, dict) or not reference.get("id"):
            return bad_request("parentReference with the destination folder's id (and driveId) is required.", "invalidRequest")
        parent, parent_error = _item(str(reference.get("driveId") or drive_id), str(reference["id"]))
        if parent_error:
            return parent_error
        behavior = request.args.get("@microsoft.graph.conflictBehavior", "fail")
        if behavior not in CONFLICT:
            return bad_request("@microsoft.graph.conflictBehavior must be fail, replace or rename.", "invalidRequest")
        operation = {
            "id": secrets.token_hex(16),
            "source": source["id"],
            "parent": parent["id"],
            "name": body.get("name") or source["name"],
            "behavior": behavior,
        }
        operation["polls_left"] = int(knobs().get("copy_in_progress_polls", 0))
        col("copy_operations")[operation["id"]] = operation
        response = Response(status=202)
        response.headers["Location"] = f"{request.host_url}microsoft365/_api/v2.0/monitor/{operation['id']}"
        return response

    @bp.post("/v1.0/drives/<drive_id>/items/<item_id>/invite")
    def invite(drive_id: str, item_id: str):
        item, error = _item(drive_id, item_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if scope_error := require_scope(*WRITE):
            return scope_error
        recipients, roles = body.get("recipients"), body.get("roles")
        if not isinstance(recipients, list) or not recipients or not isinstance(roles, list) or not set(roles) <= {"read", "write", "owner"} or not roles:
            return bad_request("recipients (a non-empty list) and roles (read and/or write) are required.", "invalidRequest")
        granted = []
        for recipient in recipients:
            email = recipient.get("email") if isinstance(recipient, dict) else None
            if not isinstance(email, str | None) or not isinstance(recipient.get("objectId") if isinstance(recipient, dict) else None, str | None):
                return bad_request("A recipient's email and objectId must be strings.", "invalidRequest")
            user = find_user((recipient or {}).get("objectId")) if isinstance(recipient, dict) and recipient.get("objectId") else find_user(email)
            if user is None and not email:
                return bad_request("Every recipient needs an email or an objectId.", "invalidRequest")
            who = {"email": user["mail"], "id": user["id"], "displayName": user["displayName"]} if user else {"email": email, "displayName": email}
            extra: dict[str, Any] = {"grantedTo": {"user": who}, "grantedToV2": {"user": who}}
            if user is None:
                extra["invitation"] = {"email": email, "signInRequired": bool(body.get("requireSignIn", True))}
            granted.append(_permission(item, list(roles), **extra))
            STORE.record_created(
                VENDOR, "share", f"{item['id']}:{who['email']}", f"{item['name']} shared with {who['email']} ({'/'.join(roles)})", item["webUrl"]
            )
        bump(item)
        item_changed(item)
        return jsonify({"@odata.context": f"{GRAPH}/$metadata#Collection(permission)", "value": granted})

    @bp.post("/v1.0/drives/<drive_id>/items/<item_id>/createLink")
    def create_link(drive_id: str, item_id: str):
        item, error = _item(drive_id, item_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        kind, scope = body.get("type"), body.get("scope", "organization")
        if kind not in ("view", "edit", "embed") or scope not in ("anonymous", "organization", "users"):
            return bad_request("type must be view, edit or embed; scope anonymous, organization or users.", "invalidRequest")
        for permission in item["_permissions"]:
            link = permission.get("link") or {}
            if link.get("type") == kind and link.get("scope") == scope:
                return jsonify(permission)
        token = secrets.token_urlsafe(16)
        link = {"type": kind, "scope": scope, "webUrl": f"https://acme.sharepoint.com/:w:/s/share/{token}", "preventsDownload": False}
        permission = _permission(item, ["write" if kind == "edit" else "read"], link=link)
        STORE.record_created(VENDOR, "share_link", permission["id"], f"{kind} link ({scope}) for {item['name']}", link["webUrl"])
        return jsonify(permission), 201

    @bp.get("/v1.0/drives/<drive_id>/items/<item_id>/permissions")
    def permissions(drive_id: str, item_id: str):
        item, error = _item(drive_id, item_id)
        return error or paged(list(item["_permissions"]), "permissions")

    @bp.get("/v1.0/drives/<drive_id>/root/delta", defaults={"item_id": "root"}, endpoint="root_delta")
    @bp.get("/v1.0/drives/<drive_id>/items/<item_id>/delta")
    def drive_delta(drive_id: str, item_id: str):
        if scope_error := require_scope(*READ):
            return scope_error
        _root, error = _item(drive_id, item_id)
        if error:
            return error
        found = [i for i in col("items").values() if i["_drive"] == drive_id]
        removed = lambda i: {"id": i["id"], "name": i["name"], "deleted": {"state": "deleted"}, "parentReference": i["parentReference"]}  # noqa: E731
        return delta_answer(found, public_item, removed, token_param="token")


def monitor_blueprint() -> Blueprint:
    """The async-job monitor the copy's Location points at: no Authorization needed, like SharePoint's."""
    bp = Blueprint("microsoft365_monitor", __name__)

    @bp.get("/_api/v2.0/monitor/<operation_id>")
    def monitor(operation_id: str):
        operation = col("copy_operations").get(operation_id)
        if operation is None:
            return graph_error(404, "itemNotFound", "The monitor could not be found.")
        if operation["polls_left"] > 0:
            operation["polls_left"] -= 1
            return jsonify({"operation": "ItemCopy", "percentageComplete": 50.0, "status": "inProgress"}), 202
        if "resourceId" not in operation:
            source, parent = col("items")[operation["source"]], col("items")[operation["parent"]]
            existing = next((c for c in _children(parent) if c["name"].lower() == operation["name"].lower()), None)
            name = operation["name"]
            if existing is not None and operation["behavior"] == "fail":
                operation["failure"] = {"code": "nameAlreadyExists", "message": "The specified item name already exists."}
            else:
                if existing is not None and operation["behavior"] == "rename":
                    name = _free_name(parent, name)
                elif existing is not None:
                    existing["_deleted"] = True
                    bump(existing)
                clone = _copy(source, parent, name)
                operation["resourceId"] = clone["id"]
                STORE.record_created(VENDOR, "copy", clone["id"], f"{source['name']} → {item_path(clone)}/{name}", clone["webUrl"])
                item_changed(clone, "created")
        if operation.get("failure"):
            return jsonify({"operation": "ItemCopy", "percentageComplete": 0.0, "status": "failed", "error": operation["failure"]})
        return jsonify(
            {
                "operation": "ItemCopy",
                "percentageComplete": 100.0,
                "status": "completed",
                "resourceId": operation["resourceId"],
                "completedDateTime": iso(now()),
            }
        )

    @bp.get("/_api/v2.0/download/<item_id>")
    def download(item_id: str):
        item = col("items").get(item_id)
        if item is None or "file" not in item:
            return graph_error(404, "itemNotFound", "The resource could not be found.")
        return Response(f"(sandbox copy of {item['name']})".encode(), mimetype=item["file"]["mimeType"])

    return bp
