"""Google Sheets v4 + Drive v3 stand-in: spreadsheets' values, named ranges and tables; Drive listing, changes and push channels.

Both APIs live under /google_sheets (Sheets at /v4/…, Drive at /drive/v3/…, as each Discovery document's servicePath), so one
base URL serves the connector; sandbox/spec_check.py checks every exchange against both cut Discovery documents.
"""

from __future__ import annotations

import copy
import logging
import re
import secrets
import threading
import time
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox.oauth import OAuthProfile, bearer_token, issue_static_token, oauth_blueprint, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors.google_sheets import grid
from sandbox.vendors.google_sheets.sheets_api import register_sheets_routes

VENDOR = "google_sheets"
DEMO_TOKEN = "sandbox-google-sheets-token"
OWNER = {"displayName": "Amara Nwosu", "emailAddress": "amara.nwosu@acme.example", "kind": "drive#user", "me": True}
SPREADSHEET = "application/vnd.google-apps.spreadsheet"
FOLDER = "application/vnd.google-apps.folder"
AUTH = "https://www.googleapis.com/auth/"
DRIVE_READ = {f"{AUTH}{s}" for s in ("drive", "drive.readonly", "drive.file", "drive.metadata", "drive.metadata.readonly")}
SHEETS_READ = {f"{AUTH}{s}" for s in ("spreadsheets", "spreadsheets.readonly", "drive", "drive.readonly", "drive.file")}
DRIVE_WRITE = {f"{AUTH}{s}" for s in ("drive", "drive.file")}
SHEETS_WRITE = {f"{AUTH}{s}" for s in ("spreadsheets", "drive", "drive.file")}
SHARED_DRIVE = "0AFalconDealsSharedDrive"
FALCON = "1FalconModel0aBcDeFgHiJkLmNoPqRsTuVwXyZ01234"
logger = logging.getLogger(__name__)


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error(status: int, message: str, reason: str = "badRequest") -> Response:
    names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}
    body = {"error": {"code": status, "message": message, "errors": [{"domain": "global", "reason": reason, "message": message}]}}
    body["error"]["status"] = names.get(status, "INTERNAL")
    response = jsonify(body)
    response.status_code = status
    return response


def public(item: dict[str, Any]) -> dict[str, Any]:
    """A file as Drive shows it (the stand-in's own keys start with an underscore)."""
    return {k: v for k, v in item.items() if not k.startswith("_")}


def files() -> Any:
    return STORE.collection(VENDOR, "files")


def books() -> Any:
    return STORE.collection(VENDOR, "books")


def meta() -> Any:
    return STORE.collection(VENDOR, "meta")


def record_change(file_id: str, *, removed: bool = False) -> None:
    """Drive's change log keeps a file's latest change; watching channels hear of it."""
    with STORE.lock:
        log = STORE.collection(VENDOR, "changes")
        meta()["seq"] = meta().get("seq", 0) + 1
        for key in [k for k, c in log.items() if c["fileId"] == file_id]:
            del log[key]
        log[str(meta()["seq"])] = {"seq": meta()["seq"], "fileId": file_id, "removed": removed, "time": now_rfc3339()}
        channels = [dict(c) for c in STORE.collection(VENDOR, "channels").values()]
    if channels:
        threading.Thread(target=lambda: [push(c, "change") for c in channels], daemon=True).start()


def touch(file_id: str) -> None:
    with STORE.lock:
        item = files().get(file_id)
        if item is not None:
            item["modifiedTime"] = now_rfc3339()
            item["version"] = str(int(item.get("version", "1")) + 1)
    record_change(file_id)


def push(channel: dict[str, Any], state: str) -> dict[str, Any]:
    with STORE.lock:
        stored = STORE.collection(VENDOR, "channels").get(channel["id"])
        if stored is None:
            return {"channel": channel["id"], "status": None, "error": "stopped"}
        stored["message_number"] += 1
        number = stored["message_number"]
    headers = {
        "X-Goog-Channel-ID": channel["id"],
        "X-Goog-Channel-Expiration": format_datetime(datetime.fromtimestamp(channel["expiration"] / 1000, UTC), usegmt=True),
        "X-Goog-Resource-ID": channel["resourceId"],
        "X-Goog-Resource-URI": channel["resourceUri"],
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
    }
    if channel.get("token"):
        headers["X-Goog-Channel-Token"] = channel["token"]
    try:
        answer = requests.post(channel["address"], data=b"", headers=headers, timeout=5)
        return {"channel": channel["id"], "state": state, "status": answer.status_code, "message_number": number}
    except requests.RequestException as exc:
        logger.warning("sandbox.google_sheets.push_failed", extra={"channel": channel["id"], "error": str(exc)})
        return {"channel": channel["id"], "state": state, "status": None, "error": str(exc)}


def _file(file_id: str, name: str, mime: str, *, parents: list[str], drive: str = "", days_ago: int = 1, trashed: bool = False) -> dict[str, Any]:
    modified = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    kind = "spreadsheets" if mime == SPREADSHEET else "drive/folders" if mime == FOLDER else "document"
    url = f"https://docs.google.com/{kind}/d/{file_id}/edit" if mime != FOLDER else f"https://drive.google.com/drive/folders/{file_id}"
    item = {"kind": "drive#file", "id": file_id, "name": name, "mimeType": mime, "parents": parents, "trashed": trashed}
    item.update({"modifiedTime": modified, "createdTime": modified, "webViewLink": url, "owners": [] if drive else [dict(OWNER)], "version": "1"})
    if drive:
        item["driveId"] = drive
    return item


def _book(file_id: str, title: str, sheet_titles: list[str]) -> dict[str, Any]:
    sheets = [{"properties": {"sheetId": i * 1000 + 7 if i else 0, "title": t, "index": i, "sheetType": "GRID"}, "cells": {}, "formats": {}, "tables": []}
              for i, t in enumerate(sheet_titles)]  # fmt: skip
    return {"spreadsheetId": file_id, "title": title, "timeZone": "Europe/London", "locale": "en_GB", "sheets": sheets, "namedRanges": [], "metadata": []}


def _put(sheet: dict[str, Any], row: int, values: list[Any], formats: list[dict[str, Any] | None] | None = None) -> None:
    for column, value in enumerate(values):
        if value not in (None, ""):
            sheet["cells"][(row, column)] = value
        fmt = (formats or [None] * len(values))[column] if formats and column < len(formats) else None
        if fmt:
            sheet["formats"][(row, column)] = fmt


def _table(sheet: dict[str, Any], table_id: str, name: str, box: tuple[int, int, int, int], column_types: list[str]) -> None:
    headers = [sheet["cells"].get((box[0], c), "") for c in range(box[1], box[3] + 1)]
    columns = [{"columnIndex": i, "columnName": str(h), "columnType": t} for i, (h, t) in enumerate(zip(headers, column_types, strict=True))]
    sheet["tables"].append({"tableId": table_id, "name": name, "range": grid.grid_range(sheet, box), "columnProperties": columns})


def _named(book: dict[str, Any], name: str, sheet: dict[str, Any], box: tuple[int, int, int, int]) -> None:
    book["namedRanges"].append({"namedRangeId": f"nr{len(book['namedRanges']) + 1}", "name": name, "range": grid.grid_range(sheet, box)})


CURRENCY = {"type": "CURRENCY", "pattern": '"$"#,##0'}
DATE = {"type": "DATE", "pattern": "yyyy-mm-dd"}
PERCENT = {"type": "PERCENT", "pattern": "0%"}
NUMBER = {"type": "NUMBER", "pattern": "0"}


def seed_falcon(close: date) -> dict[str, Any]:
    """The M&A model: DealValue/CloseDate named cells, DealTerms named block, Synergies and Tracker tables."""
    book = _book(FALCON, "Project Falcon financial model", ["Model", "Synergies", "Tracker"])
    model, synergies, tracker = book["sheets"]
    _put(model, 0, ["Term", "Value", "Notes"])
    _put(model, 1, ["Deal value", 1_250_000_000, "Enterprise value, cash and stock"], [None, CURRENCY])
    _put(model, 2, ["Close date", grid.date_to_serial(close), "Target close, subject to regulatory approval"], [None, DATE])
    _put(model, 3, ["Target", "Falcon Analytics Ltd.", "UK private company"])
    _put(model, 4, ["Cash share", 0.7, "70% cash / 30% stock"], [None, PERCENT])
    _put(model, 5, ["Break fee", 37_500_000, "3% of deal value"], [None, CURRENCY])
    _named(book, "DealValue", model, (1, 1, 1, 1))
    _named(book, "CloseDate", model, (2, 1, 2, 1))
    _named(book, "DealTerms", model, (0, 0, 5, 2))
    _put(synergies, 0, ["Area", "Type", "Target (USD)", "Year"])
    rows = [("Procurement consolidation", "Cost", 42_000_000, 2028), ("Facilities", "Cost", 18_000_000, 2028)]
    rows += [("Cross-sell", "Revenue", 55_000_000, 2029), ("Platform licensing", "Revenue", 25_000_000, 2029)]
    for index, row in enumerate(rows, start=1):
        _put(synergies, index, list(row), [None, None, CURRENCY, NUMBER])
    _table(synergies, "tblSynergies", "Synergies", (0, 0, 4, 3), ["TEXT", "DROPDOWN", "CURRENCY", "DOUBLE"])
    _put(tracker, 0, ["Workstream", "Owner", "Status", "Due", "Confidence"])
    due = grid.date_to_serial(close - timedelta(days=30))
    _put(tracker, 1, ["Regulatory filing", "priya.raman@acme.example", "In progress", due, 0.6], [None, None, None, DATE, PERCENT])
    _put(tracker, 2, ["Financing", "ava.chen@acme.example", "Done", due - 20, 1], [None, None, None, DATE, PERCENT])
    _table(tracker, "tblTracker", "Tracker", (0, 0, 2, 4), ["TEXT", "PEOPLE_CHIP", "DROPDOWN", "DATE", "PERCENT"])
    return book


def seed() -> None:
    """My Drive: a Deals folder with the Falcon model, weekly KPI sheets, a doc; a shared drive's register; one trashed sheet."""
    issue_static_token(VENDOR, DEMO_TOKEN, subject=OWNER["emailAddress"])
    close = date.today() + timedelta(days=90)
    with STORE.lock:
        items = [
            _file("1DealsFolder000000000000000000000000000000000", "Deals", FOLDER, parents=["root"], days_ago=30),
            _file(FALCON, "Project Falcon financial model", SPREADSHEET, parents=["1DealsFolder000000000000000000000000000000000"], days_ago=2),
            _file("1FalconMemo0000000000000000000000000000000000", "Project Falcon memo", "application/vnd.google-apps.document", parents=["root"]),
            _file("1Q3Budget00000000000000000000000000000000000", "Q3 budget", SPREADSHEET, parents=["root"], days_ago=5),
            _file("1OldForecast000000000000000000000000000000000", "Old forecast", SPREADSHEET, parents=["root"], days_ago=90, trashed=True),
            _file("1VendorRegister00000000000000000000000000000", "Vendor contracts register", SPREADSHEET, parents=[SHARED_DRIVE], drive=SHARED_DRIVE),
        ]
        items += [
            _file(f"1WeeklyKpi{week:02d}" + "0" * 33, f"Weekly KPI report wk{week}", SPREADSHEET, parents=["root"], days_ago=week) for week in range(1, 8)
        ]
        for item in items:
            files()[item["id"]] = item
        books()[FALCON] = seed_falcon(close)
        for item in items:
            if item["mimeType"] == SPREADSHEET and item["id"] != FALCON:
                plain = _book(item["id"], item["name"], ["Sheet1"])
                _put(plain["sheets"][0], 0, ["Line", "Amount"])
                _put(plain["sheets"][0], 1, ["Total", 1200], [None, CURRENCY])
                books()[item["id"]] = plain
        meta()["seq"] = 0


def grant() -> dict[str, Any]:
    return request.environ["gsheets.grant"]


def allowed(scopes: set[str]) -> bool:
    granted = set(grant().get("scopes") or [])
    return not granted or bool(granted & scopes)


def visible(item: dict[str, Any], all_drives: bool) -> bool:
    return not item.get("driveId") or all_drives


QUERY_TERMS = (
    ("mime", re.compile(r"mimeType\s*(=|!=)\s*'([^']*)'")),
    ("name", re.compile(r"name\s+contains\s+'((?:[^'\\]|\\.)*)'")),
    ("named", re.compile(r"name\s*=\s*'((?:[^'\\]|\\.)*)'")),
    ("trashed", re.compile(r"trashed\s*=\s*(true|false)")),
    ("parent", re.compile(r"'([A-Za-z0-9_-]+)'\s+in\s+parents")),
)


def _term_holds(kind: str, groups: tuple[str, ...], item: dict[str, Any]) -> bool:
    if kind == "mime":
        return (item["mimeType"] == groups[1]) == (groups[0] == "=")
    if kind == "name":
        return groups[0].replace("\\'", "'").replace("\\\\", "\\").casefold() in item["name"].casefold()
    if kind == "named":
        return groups[0].replace("\\'", "'").replace("\\\\", "\\") == item["name"]
    if kind == "trashed":
        return item["trashed"] == (groups[0] == "true")
    return groups[0] in item["parents"]


def listed(query: str) -> Any:
    """Drive's q for the terms Bastion sends: mimeType =, name contains, trashed =, 'id' in parents, joined by `and`."""
    terms = []
    for term in re.split(r"\s+and\s+", query.strip()) if query.strip() else []:
        found = next(((kind, m.groups()) for kind, pattern in QUERY_TERMS if (m := pattern.fullmatch(term))), None)
        if found is None:
            return None
        terms.append(found)
    return lambda item: all(_term_holds(kind, groups, item) for kind, groups in terms)


def _page(items: list[Any], size_text: str | None, token: str | None, default: int) -> tuple[list[Any], str | None] | Response:
    try:
        size = min(max(int(size_text or default), 1), 1000)
        start = int(token or 0)
    except ValueError:
        return error(400, "Invalid Value", "invalid")
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def blueprints() -> list[Blueprint]:
    api = Blueprint("google_sheets_api", __name__)
    control = Blueprint("google_sheets_control", __name__)
    install_faults(api, VENDOR, rate_limited=lambda wait: _rate_limited(wait), error=lambda status, message: error(status, message, "backendError"))

    @api.before_request
    def _authenticate():
        found = token_info(VENDOR, bearer_token())
        if found is None:
            return error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.", "authError")
        request.environ["gsheets.grant"] = found
        return None

    @api.get("/drive/v3/about")
    def about():
        if not allowed(DRIVE_READ):
            return error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        return jsonify({"kind": "drive#about", "user": {k: OWNER[k] for k in ("kind", "displayName", "emailAddress", "me")}})

    @api.get("/drive/v3/files")
    def files_list():
        if not allowed(DRIVE_READ):
            return error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        test = listed(request.args.get("q", ""))
        if test is None:
            return error(400, "Invalid Value", "invalid")
        all_drives = request.args.get("includeItemsFromAllDrives") == "true" and request.args.get("supportsAllDrives") == "true"
        if request.args.get("includeItemsFromAllDrives") == "true" and request.args.get("supportsAllDrives") != "true":
            return error(
                403,
                "The includeItemsFromAllDrives parameter can only be set to true if supportsAllDrives is also set to true.",
                "teamDrivesParameterNotSupported",
            )
        with STORE.lock:
            found = [public(f) for f in files().values() if visible(f, all_drives) and test(f)]
        found.sort(key=lambda f: f["modifiedTime"], reverse=True)
        paged = _page(found, request.args.get("pageSize"), request.args.get("pageToken"), 100)
        if isinstance(paged, Response):
            return paged
        body: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False, "files": paged[0]}
        if paged[1]:
            body["nextPageToken"] = paged[1]
        return jsonify(body)

    @api.get("/drive/v3/files/<file_id>")
    def files_get(file_id: str):
        item = files().get(file_id)
        if item is None or not visible(item, request.args.get("supportsAllDrives") == "true"):
            return error(404, f"File not found: {file_id}.", "notFound")
        return jsonify(public(item))

    def _writable(file_id: str | None = None) -> tuple[dict[str, Any] | None, Response | None]:
        if not allowed(DRIVE_WRITE):
            return None, error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        if file_id is None:
            return None, None
        item = files().get(file_id)
        if item is None or (item.get("driveId") and request.args.get("supportsAllDrives") != "true"):
            return None, error(404, f"File not found: {file_id}.", "notFound")
        return item, None

    @api.post("/drive/v3/files")
    def files_create():
        _, problem = _writable()
        if problem:
            return problem
        body = request.get_json(silent=True) or {}
        parents = body.get("parents") or ["root"]
        if not str(body.get("name") or "").strip() or any(p != "root" and p not in files() for p in parents):
            return error(400, "A name and existing parents are required.", "invalid")
        item = _file("1" + secrets.token_hex(16), str(body["name"]), str(body.get("mimeType") or "application/octet-stream"), parents=parents, days_ago=0)
        with STORE.lock:
            files()[item["id"]] = item
        record_change(item["id"])
        return jsonify(public(item))

    @api.post("/drive/v3/files/<file_id>/copy")
    def files_copy(file_id: str):
        source, problem = _writable(file_id)
        if problem:
            return problem
        body = request.get_json(silent=True) or {}
        parents = body.get("parents") or source["parents"]
        if any(p != "root" and p not in files() for p in parents):
            return error(404, f"File not found: {parents[0]}.", "notFound")
        item = _file("1" + secrets.token_hex(16), str(body.get("name") or f"Copy of {source['name']}"), source["mimeType"], parents=parents, days_ago=0)
        with STORE.lock:
            files()[item["id"]] = item
            if file_id in books():
                books()[item["id"]] = {**copy.deepcopy(books()[file_id]), "spreadsheetId": item["id"], "title": item["name"]}
        STORE.record_created(VENDOR, "copy", item["id"], f"{item['name']} (copy of {source['name']})", item["webViewLink"])
        record_change(item["id"])
        return jsonify(public(item))

    @api.route("/drive/v3/files/<file_id>/permissions", methods=["GET", "POST"])
    def permissions(file_id: str):
        item, problem = _writable(file_id) if request.method == "POST" else (files().get(file_id), None)
        if problem or item is None:
            return problem or error(404, f"File not found: {file_id}.", "notFound")
        if request.method == "GET":
            return jsonify({"kind": "drive#permissionList", "permissions": list(item.get("_permissions") or [])})
        body = request.get_json(silent=True) or {}
        if body.get("type") != "user" or body.get("role") not in ("reader", "commenter", "writer") or "@" not in str(body.get("emailAddress") or ""):
            return error(400, "Invalid permission: type user, a role and an emailAddress are required.", "invalid")
        permission = {"kind": "drive#permission", "id": secrets.token_hex(8), "type": "user", "role": body["role"], "emailAddress": body["emailAddress"]}
        with STORE.lock:
            item.setdefault("_permissions", []).append(permission)
        STORE.record_created(VENDOR, "share", item["id"], f"{item['name']} shared with {body['emailAddress']} ({body['role']})")
        return jsonify(permission)

    @api.delete("/drive/v3/files/<file_id>")
    def files_delete(file_id: str):
        _, problem = _writable(file_id)
        if problem:
            return problem
        with STORE.lock:
            files().pop(file_id, None)
            books().pop(file_id, None)
        record_change(file_id, removed=True)
        return Response(status=204)

    @api.get("/drive/v3/changes/startPageToken")
    def changes_start():
        return jsonify({"kind": "drive#startPageToken", "startPageToken": str(meta().get("seq", 0) + 1)})

    @api.get("/drive/v3/changes")
    def changes_list():
        try:
            since = int(request.args.get("pageToken", ""))
        except ValueError:
            return error(400, "Invalid Value", "invalid")
        all_drives = request.args.get("includeItemsFromAllDrives") == "true" and request.args.get("supportsAllDrives") == "true"
        size = min(max(int(request.args.get("pageSize") or 100), 1), 1000)
        with STORE.lock:
            pending = sorted((c for c in STORE.collection(VENDOR, "changes").values() if c["seq"] >= since), key=lambda c: c["seq"])
            out = []
            for change in pending[:size]:
                item = files().get(change["fileId"])
                if item is not None and not visible(item, all_drives):
                    continue
                entry = {"kind": "drive#change", "changeType": "file", "type": "file", "time": change["time"], "fileId": change["fileId"]}
                entry["removed"] = change["removed"] or item is None
                if item is not None and not entry["removed"]:
                    entry["file"] = public(item)
                out.append(entry)
            body: dict[str, Any] = {"kind": "drive#changeList", "changes": out}
            if len(pending) > size:
                body["nextPageToken"] = str(pending[size]["seq"])
            else:
                body["newStartPageToken"] = str(meta().get("seq", 0) + 1)
        return jsonify(body)

    @api.post("/drive/v3/changes/watch")
    def changes_watch():
        body = request.get_json(silent=True) or {}
        if not request.args.get("pageToken"):
            return error(400, "Required parameter: pageToken", "required")
        if body.get("type") not in ("web_hook", "webhook") or not str(body.get("address", "")).startswith("http") or not body.get("id"):
            return error(400, "Channel id, type web_hook and an address are required.", "required")
        with STORE.lock:
            if body["id"] in STORE.collection(VENDOR, "channels"):
                return error(400, f"Channel id {body['id']} not unique", "channelIdNotUnique")
            week = int((time.time() + 7 * 86400) * 1000)
            expiration = min(int(body.get("expiration") or week), week)
            channel = {"kind": "api#channel", "id": body["id"], "resourceId": secrets.token_hex(12), "token": body.get("token", "")}
            channel.update(
                {
                    "resourceUri": "https://www.googleapis.com/drive/v3/changes?alt=json",
                    "expiration": expiration,
                    "address": body["address"],
                    "message_number": 0,
                }
            )
            STORE.collection(VENDOR, "channels")[channel["id"]] = channel
        STORE.record_created(VENDOR, "channel", channel["id"], f"changes channel → {body['address']}")
        threading.Thread(target=push, args=(dict(channel), "sync"), daemon=True).start()
        shown = {k: channel[k] for k in ("kind", "id", "resourceId", "resourceUri")}
        return jsonify({**shown, "expiration": str(expiration)})

    @api.post("/drive/v3/channels/stop")
    def channels_stop():
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            channel = STORE.collection(VENDOR, "channels").get(body.get("id", ""))
            if channel is None or channel["resourceId"] != body.get("resourceId"):
                return error(404, f"Channel '{body.get('id')}' not found for project", "notFound")
            del STORE.collection(VENDOR, "channels")[channel["id"]]
        return Response(status=204)

    register_sheets_routes(api, allowed=allowed, error=error, touch=touch, read_scopes=SHEETS_READ, write_scopes=SHEETS_WRITE)

    @control.post("/_sandbox/files/<file_id>/<what>")
    def control_file(file_id: str, what: str):
        """Someone edits a cell, renames, trashes or deletes a file in Drive (the changes feed and channels hear of it)."""
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            item = files().get(file_id)
            if item is None:
                return error(404, "no such file", "notFound")
            if what == "trash":
                item["trashed"] = True
            elif what == "delete":
                del files()[file_id]
                books().pop(file_id, None)
            elif what == "rename":
                item["name"] = str(body.get("name") or item["name"])
            elif what == "cell":
                book = books()[file_id]
                sheet, box = grid.resolve(book, str(body["range"]))
                grid.write(sheet, box[0], box[1], body.get("value"), "USER_ENTERED")
            else:
                return error(400, f"unknown change {what}", "invalid")
        if what == "delete":
            record_change(file_id, removed=True)
        else:
            touch(file_id)
        return jsonify({"ok": True})

    @control.get("/_sandbox/books/<file_id>/values")
    def control_values(file_id: str):
        """What a person sees in the sheet (the tests' view of a write), formatted."""
        book = books().get(file_id)
        if book is None:
            return error(404, "no such spreadsheet", "notFound")
        sheet, box = grid.resolve(book, request.args.get("range", ""))
        return jsonify(grid.read_values(sheet, box, "FORMATTED_VALUE", "FORMATTED_STRING"))

    return [api, control, oauth_blueprint(OAuthProfile(VENDOR, access_ttl=3599, rotates_refresh_token=False))]


def _rate_limited(retry_after: int) -> Response:
    response = error(429, "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user'.", "rateLimitExceeded")
    response.headers["Retry-After"] = str(retry_after)
    return response
