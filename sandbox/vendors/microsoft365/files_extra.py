"""Drive search (`search(q='…')` under a folder or a drive's root), the signed-in user's OneDrive (`/me/drive`), and a
workbook table row updated by its index (PATCH `…/tables/{table}/rows/{index}` with `{"values": [[…]]}`).

Graph's search matches names (and content) anywhere under the item; the stand-in matches names, case-insensitively.
A personal OneDrive is provisioned on first use, like OneDrive for Business; an application token has no /me.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from flask import Blueprint, Response, jsonify

from sandbox.state import STORE
from sandbox.vendors.microsoft365.common import GRAPH, bad_request, bump, caller_user, col, graph_error, json_body, paged, require_scope
from sandbox.vendors.microsoft365.files import READ, _children, _item, public_item
from sandbox.vendors.microsoft365.workbook import _book, _find_table, _touched

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

    @bp.patch("/v1.0/drives/<drive_id>/items/<item_id>/workbook/tables/<table_key>/rows/<index>")
    def table_row_update(drive_id: str, item_id: str, table_key: str, index: str):
        return update_row(drive_id, item_id, table_key, index)

    @bp.get("/v1.0/me/drive/root/<call>")
    def my_drive_search(call: str):
        user = caller_user()
        if user is None:
            return bad_request("/me request is only valid with delegated authentication flow.")
        return _search(_personal_drive(user)["id"], "root", call)


def update_row(drive_id: str, item_id: str, table_key: str, index: str) -> Response:
    """Graph's "Update tablerow": the data row at `index` (0 = the first under the header) takes one row of values."""
    book, error = _book(drive_id, item_id)
    body, body_error = json_body()
    if error or body_error:
        return error or body_error
    table = _find_table(book, table_key)
    if table is None:
        return graph_error(404, "ItemNotFound", f"The requested table '{table_key}' doesn't exist.")
    r0, c0, r1, c1 = table["_box"]
    if not index.isdigit() or int(index) >= r1 - r0:
        return graph_error(404, "ItemNotFound", f"The table has no row {index[:20]}.")
    values = body.get("values")
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], list) or len(values[0]) != c1 - c0 + 1:
        return graph_error(400, "InvalidArgument", f"values must be one row of {c1 - c0 + 1} values (the table's columns).")
    cells = book["sheets"][table["_sheet"]]["_cells"]
    row = r0 + 1 + int(index)
    with STORE.lock:
        for offset, value in enumerate(values[0]):
            cells[(row, c0 + offset)] = value
    _touched(item_id, f"row {index} of {table['name']} updated")
    return jsonify(
        {"@odata.context": f"{GRAPH}/$metadata#workbookTableRow", "index": int(index), "values": [[cells.get((row, c), "") for c in range(c0, c1 + 1)]]}
    )
