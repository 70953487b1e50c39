"""Drive search (`search(q='…')` under a folder or a drive's root) and the signed-in user's OneDrive (`/me/drive`).

Graph's search matches names (and content) anywhere under the item; the stand-in matches names, case-insensitively.
A personal OneDrive is provisioned on first use, like OneDrive for Business; an application token has no /me.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from flask import Blueprint, Response, jsonify

from sandbox.vendors.microsoft365.common import bad_request, bump, caller_user, col, graph_error, paged, require_scope
from sandbox.vendors.microsoft365.files import READ, _children, _item, public_item

SEARCH_CALL = re.compile(r"^(?:microsoft\.graph\.)?search\(q='((?:[^']|'')*)'\)$")


def _subtree(item: dict[str, Any]) -> list[dict[str, Any]]:
    found, stack = [], [item]
    while stack:
        for child in _children(stack.pop()):
            found.append(child)
            if "folder" in child:
                stack.append(child)
    return found


def _search(drive_id: str, item_id: str, call: str) -> Response:
    match = SEARCH_CALL.match(unquote(call))
    if not match:
        return graph_error(400, "BadRequest", f"Unsupported function: {call[:80]}.")
    if scope_error := require_scope(*READ):
        return scope_error
    item, error = _item(drive_id, item_id)
    if error:
        return error
    query = match[1].replace("''", "'").strip().lower()
    hits = sorted((c for c in _subtree(item) if query in c["name"].lower()), key=lambda c: c["name"].lower())
    return paged([public_item(c) for c in hits], "Collection(driveItem)")


def _personal_drive(user: dict[str, Any]) -> dict[str, Any]:
    """The user's OneDrive for Business, made on first use (empty)."""
    drive_id = "b!od" + re.sub(r"[^A-Za-z0-9]", "", user["id"])[:30]
    drives = col("drives")
    if drive_id not in drives:
        root_id = "01OD" + re.sub(r"[^A-Z0-9]", "", user["id"].upper())[:28]
        web = f"https://acme-my.sharepoint.com/personal/{user['mail'].replace('@', '_').replace('.', '_')}/Documents"
        drives[drive_id] = {
            "id": drive_id,
            "name": "OneDrive",
            "description": "",
            "driveType": "business",
            "webUrl": web,
            "createdDateTime": "2024-01-20T10:00:00Z",
            "owner": {"user": {"id": user["id"], "displayName": user["displayName"]}},
            "_site": None,
            "_root": root_id,
        }
        col("items")[root_id] = bump(
            {
                "id": root_id,
                "name": "root",
                "root": {},
                "folder": {"childCount": 0},
                "size": 0,
                "webUrl": web,
                "createdDateTime": "2024-01-20T10:00:00Z",
                "parentReference": {"driveId": drive_id, "driveType": "business"},
                "_drive": drive_id,
                "_parent": None,
            }
        )
    return drives[drive_id]


def register(bp: Blueprint) -> None:
    @bp.get("/v1.0/drives/<drive_id>/items/<item_id>/<call>")
    def item_search(drive_id: str, item_id: str, call: str):
        return _search(drive_id, item_id, call)

    @bp.get("/v1.0/drives/<drive_id>/root/<call>")
    def root_search(drive_id: str, call: str):
        return _search(drive_id, "root", call)

    @bp.get("/v1.0/me/drive")
    def my_drive():
        user = caller_user()
        if user is None:
            return bad_request("/me request is only valid with delegated authentication flow.")
        if scope_error := require_scope(*READ):
            return scope_error
        return jsonify({k: v for k, v in _personal_drive(user).items() if not k.startswith("_")})

    @bp.get("/v1.0/me/drive/root/<call>")
    def my_drive_search(call: str):
        user = caller_user()
        if user is None:
            return bad_request("/me request is only valid with delegated authentication flow.")
        return _search(_personal_drive(user)["id"], "root", call)
