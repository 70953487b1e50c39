"""Google Sheets hooks: Drive reads (files, changes), the file picker, typed named ranges/tables/A1, tracker writes, the watch channel."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from integrations.connectors.base import ActionResult, DocumentItem, Page, WebhookEvent, WebhookRequest
from integrations.connectors.declarative.runtime import text
from integrations.connectors.declarative.template import render
from integrations.connectors.google_sheets.copying import copy_document, undo_copy
from integrations.connectors.kit.markers import idempotency_marker
from integrations.connectors.kit.signatures import equal_secret
from integrations.errors import ApiBadRequest, ApiNotFound, WebhookRejected

SPREADSHEET = "application/vnd.google-apps.spreadsheet"
FOLDER = "application/vnd.google-apps.folder"
SHEETS_EPOCH = date(1899, 12, 30)  # serial 0 (Sheets has no 1900 leap-year bug)
FILE_FIELDS = "id,name,mimeType,owners(displayName,emailAddress),modifiedTime,webViewLink,driveId,trashed,parents"
META_FIELDS = "properties.title,spreadsheetUrl,namedRanges,sheets(properties(sheetId,title,index),tables(tableId,name,range,columnProperties))"
FORMAT_FIELDS = "sheets(properties.title,data(startRow,startColumn,rowData.values.effectiveFormat.numberFormat.type))"
MAX_BROWSE_ITEMS = 200
MAX_TABLE_ROWS = 5000
MARKER_COLUMN = "Bastion ref"
PUSH_STATES = ("sync", "add", "remove", "update", "trash", "untrash", "change", "exists", "not_exists")
ERRORS = frozenset({"#N/A", "#DIV/0!", "#REF!", "#NAME?", "#VALUE!", "#NUM!", "#NULL!", "#ERROR!"})
CHANNEL_DAYS = 7  # Drive's changes channels live about a week (FACTS §18, unconfirmed)
_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{10,200}$")
_URL_ID = re.compile(r"^https://docs\.google\.com/spreadsheets/d/([A-Za-z0-9_-]{10,200})(?:[/?#].*)?$")
_SHEET_ADDRESS = re.compile(r"^(?:'((?:[^']|'')+)'|([^'!]+))!\$?([A-Za-z]{1,3})\$?(\d{1,7})(?::\$?([A-Za-z]{1,3})\$?(\d{1,7}))?$")
_A1 = re.compile(r"!\$?([A-Z]{1,3})\$?(\d{1,7})(?::\$?([A-Z]{1,3})\$?(\d{1,7}))?$")


# ---- references, ranges and cells


def spreadsheet_id(document: Any) -> str:
    """A picked spreadsheet's id, a bare Drive file id, or a docs.google.com spreadsheet URL → the file id."""
    reference = str(document or "").strip()
    if match := _URL_ID.match(reference):
        return match.group(1)
    if _FILE_ID.match(reference):
        return reference
    raise ApiBadRequest(f"Google Sheets: '{reference[:100]}' is not a document reference (pick a spreadsheet).", vendor_code="invalid_document")


def col_letters(index: int) -> str:
    letters, index = "", index + 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def col_index(letters: str) -> int:
    index = 0
    for char in letters.upper():
        index = index * 26 + ord(char) - 64
    return index - 1


def quoted_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def grid_a1(title: str, grid: Mapping[str, Any]) -> str:
    """A GridRange (zero-based, end exclusive) in A1 notation on the sheet `title`."""
    top, left = int(grid.get("startRowIndex", 0)), int(grid.get("startColumnIndex", 0))
    bottom, right = int(grid.get("endRowIndex", top + 1)) - 1, int(grid.get("endColumnIndex", left + 1)) - 1
    return f"{quoted_sheet(title)}!{col_letters(left)}{top + 1}:{col_letters(right)}{bottom + 1}"


def a1_origin(a1: str) -> tuple[int, int, int]:
    """(start row, start column, width) of an answered A1 range such as "Model!B2:C4"."""
    match = _A1.search(a1)
    if not match:
        return 0, 0, 0
    left, right = col_index(match.group(1)), col_index(match.group(3) or match.group(1))
    return int(match.group(2)) - 1, left, right - left + 1


def serial_to_datetime(serial: float) -> datetime:
    return datetime.combine(SHEETS_EPOCH, datetime.min.time()) + timedelta(days=float(serial))


def typed_cell(value: Any, kind: str = "") -> Any:
    """A cell as Bastion keeps it: numbers as int/float, date serials as ISO dates, blanks and errors as None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if kind == "DATE":
            return serial_to_datetime(value).date().isoformat()
        if kind == "DATE_TIME":
            return serial_to_datetime(value).isoformat(timespec="minutes")
        return int(value) if float(value).is_integer() else value
    if value is None or (isinstance(value, str) and value.strip() in ERRORS):
        return None
    return str(value).strip() or None


def table_records(headers: list[Any], rows: list[list[Any]]) -> list[dict[str, Any]]:
    """Rows as dicts keyed by the header row (blank headers named ColumnN); blank rows dropped."""
    keys = [str(h).strip() if h not in (None, "") else f"Column{i + 1}" for i, h in enumerate(headers)]
    return [dict(zip(keys, row + [None] * (len(keys) - len(row)), strict=False)) for row in rows if any(v not in (None, "") for v in row)]


# ---- HTTP on both hosts


def _drive(connector: Any) -> str:
    return text(render("{{ vars.drive }}", connector.scope()))


def _sheets(connector: Any, spreadsheet: str, suffix: str = "") -> str:
    return f"v4/spreadsheets/{quote(spreadsheet, safe='')}{suffix}"


def _get(connector: Any, path: str, params: Mapping[str, Any] | list[tuple[str, Any]]) -> dict[str, Any]:
    return connector.client.get(path, params=params).json()


def _meta(connector: Any, spreadsheet: str) -> dict[str, Any]:
    return _get(connector, _sheets(connector, spreadsheet), {"fields": META_FIELDS})


def _page_size(connector: Any) -> int:
    try:
        return min(max(int(connector.config.get("page_size") or 100), 1), 1000)
    except (TypeError, ValueError):
        return 100


# ---- entity: spreadsheets (a full scan of Drive files, then the changes feed)


def read_spreadsheets(connector: Any, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
    drive = _drive(connector)
    all_drives = {"supportsAllDrives": "true", "includeItemsFromAllDrives": "true"}
    position = dict(page or {})
    if cursor and not position.get("files"):
        body = _get(
            connector,
            f"{drive}changes",
            {"pageToken": position.get("changes") or str(cursor), "pageSize": _page_size(connector), "spaces": "drive", **all_drives},
        )
        records, deleted = [], []
        for change in body.get("changes") or []:
            item = change.get("file") or {}
            if change.get("removed") or item.get("trashed"):
                deleted.append(str(change.get("fileId")))
            elif item.get("mimeType") == SPREADSHEET:
                records.append(item)
        if body.get("nextPageToken"):
            return Page(records, next_page={"changes": body["nextPageToken"]}, is_full_scan=False, deleted_ids=deleted)
        return Page(records, cursor=body.get("newStartPageToken") or cursor, is_full_scan=False, deleted_ids=deleted)
    # The start token is taken before listing: changes made while the scan pages are read again next time, never lost.
    start = position.get("start") or _get(connector, f"{drive}changes/startPageToken", {"supportsAllDrives": "true"}).get("startPageToken")
    params = {"q": f"mimeType='{SPREADSHEET}' and trashed=false", "pageSize": _page_size(connector), "corpora": "allDrives", **all_drives}
    if position.get("files") not in (None, True):
        params["pageToken"] = position["files"]
    body = _get(connector, f"{drive}files", {**params, "fields": f"nextPageToken,files({FILE_FIELDS})"})
    if body.get("nextPageToken"):
        return Page(body.get("files") or [], next_page={"files": body["nextPageToken"], "start": start})
    return Page(body.get("files") or [], cursor=start)


# ---- the file picker


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _list_files(connector: Any, q: str) -> list[dict[str, Any]]:
    drive, found, token = _drive(connector), [], None
    while len(found) < MAX_BROWSE_ITEMS:
        params = {"q": q, "pageSize": 100, "corpora": "allDrives", "supportsAllDrives": "true", "includeItemsFromAllDrives": "true"}
        params.update({"orderBy": "modifiedTime desc", "fields": f"nextPageToken,files({FILE_FIELDS})"})
        if token:
            params["pageToken"] = token
        body = _get(connector, f"{drive}files", params)
        found += body.get("files") or []
        token = body.get("nextPageToken")
        if not token:
            break
    return found[:MAX_BROWSE_ITEMS]


def browse_documents(connector: Any, folder: str = "", *, query: str = "") -> list[DocumentItem]:
    """Folders and spreadsheets: the top shows My Drive's folders and every spreadsheet; a folder its own; a query searches by name."""
    folder = str(folder or "").strip()
    parent = "root"
    if folder:
        match = re.fullmatch(r"folder:([A-Za-z0-9_-]{1,200})", folder)
        if not match:
            raise ApiBadRequest(f"Google Sheets: '{folder[:100]}' is not a document reference (a folder from the picker).", vendor_code="invalid_folder")
        parent = match.group(1)
        _get(connector, f"{_drive(connector)}files/{parent}", {"supportsAllDrives": "true", "fields": "id"})  # 404 → no such folder
    sheets_q = f"mimeType='{SPREADSHEET}' and trashed=false"
    if query:
        sheets_q += f" and name contains '{_escaped(query)}'"
    if folder:
        sheets_q += f" and '{parent}' in parents"
    found = [] if query else _list_files(connector, f"mimeType='{FOLDER}' and trashed=false and '{parent}' in parents")
    found += _list_files(connector, sheets_q)
    return [
        DocumentItem(
            id=f"folder:{item['id']}" if item.get("mimeType") == FOLDER else str(item["id"]),
            name=str(item.get("name") or ""),
            is_folder=item.get("mimeType") == FOLDER,
            path="Shared drive" if item.get("driveId") else "My Drive",
            url=str(item.get("webViewLink") or ""),
            modified_at=str(item.get("modifiedTime") or ""),
            mime_type=str(item.get("mimeType") or ""),
        )
        for item in found
    ]


# ---- named ranges, tables and A1 ranges, typed


def _targets(meta: Mapping[str, Any], names: list[str]) -> dict[str, tuple[str, str, dict[str, str]]]:
    """name → (kind table|range, A1 range, column types) for each name the spreadsheet has."""
    titles = {s["properties"]["sheetId"]: s["properties"]["title"] for s in meta.get("sheets") or []}
    tables = {str(t.get("name") or "").casefold(): t for s in meta.get("sheets") or [] for t in s.get("tables") or []}
    named = {str(n.get("name") or "").casefold(): n for n in meta.get("namedRanges") or []}
    out: dict[str, tuple[str, str, dict[str, str]]] = {}
    for name in names:
        if match := _SHEET_ADDRESS.match(name):
            title = (match.group(1) or "").replace("''", "'") or (match.group(2) or "").strip()
            if title in titles.values():
                end = f":{match.group(5).upper()}{match.group(6)}" if match.group(5) else ""
                out[name] = ("range", f"{quoted_sheet(title)}!{match.group(3).upper()}{match.group(4)}{end}", {})
        elif (table := tables.get(name.casefold())) is not None:
            types = {str(c.get("columnName") or ""): str(c.get("columnType") or "") for c in table.get("columnProperties") or []}
            out[name] = ("table", grid_a1(titles.get(table["range"].get("sheetId", 0), ""), table["range"]), types)
        elif (item := named.get(name.casefold())) is not None:
            out[name] = ("range", grid_a1(titles.get(item["range"].get("sheetId", 0), ""), item["range"]), {})
    return out


def _formats(connector: Any, spreadsheet: str, ranges: list[str]) -> dict[tuple[str, int, int], list[list[str]]]:
    """Each range's number-format types, keyed by (sheet title, start row, start column)."""
    params: list[tuple[str, Any]] = [("ranges", r) for r in ranges] + [("includeGridData", "true"), ("fields", FORMAT_FIELDS)]
    body = _get(connector, _sheets(connector, spreadsheet), params)
    out = {}
    for sheet in body.get("sheets") or []:
        for data in sheet.get("data") or []:
            rows = [
                [((v.get("effectiveFormat") or {}).get("numberFormat") or {}).get("type", "") for v in row.get("values") or []]
                for row in data.get("rowData") or []
            ]
            out[(sheet["properties"]["title"], int(data.get("startRow", 0)), int(data.get("startColumn", 0)))] = rows
    return out


def _typed_values(connector: Any, spreadsheet: str, ranges: list[str]) -> list[list[list[Any]]]:
    """values:batchGet (unformatted, date serials) typed by each cell's number format; rows padded to the range's width."""
    params: list[tuple[str, Any]] = [("ranges", r) for r in ranges]
    params += [("valueRenderOption", "UNFORMATTED_VALUE"), ("dateTimeRenderOption", "SERIAL_NUMBER"), ("majorDimension", "ROWS")]
    answered = _get(connector, _sheets(connector, spreadsheet, "/values:batchGet"), params).get("valueRanges") or []
    formats = _formats(connector, spreadsheet, ranges)
    out = []
    for value_range in answered:
        a1 = str(value_range.get("range") or "")
        title = a1.rsplit("!", 1)[0].strip("'").replace("''", "'")
        top, left, width = a1_origin(a1)
        kinds = formats.get((title, top, left), [])
        rows = []
        for r, row in enumerate(value_range.get("values") or []):
            padded = list(row) + [None] * max(0, width - len(row))
            rows.append([typed_cell(v, kinds[r][c] if r < len(kinds) and c < len(kinds[r]) else "") for c, v in enumerate(padded)])
        out.append(rows)
    return out


def read_document_values(connector: Any, document: str, names: list[str]) -> dict[str, Any]:
    spreadsheet = spreadsheet_id(document)
    wanted = list(dict.fromkeys(str(n).strip() for n in names if str(n).strip()))
    targets = _targets(_meta(connector, spreadsheet), wanted)
    if not targets:
        return {}
    names_found = list(targets)
    values = _typed_values(connector, spreadsheet, [targets[n][1] for n in names_found])
    found: dict[str, Any] = {}
    for name, rows in zip(names_found, values, strict=False):
        kind = targets[name][0]
        if kind == "table":  # the header row names the columns; each cell keeps the type its number format gives it
            found[name] = table_records(rows[0] if rows else [], rows[1 : MAX_TABLE_ROWS + 1])
        else:
            found[name] = rows
    return found


# ---- actions


def perform(connector: Any, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
    if action == "update_tracker":
        return update_tracker(connector, payload)
    if action == "append_row":
        return append_row(connector, payload, idempotency_key)
    if action == "copy_document":
        return copy_document(connector, payload)
    raise KeyError(f"google_sheets has no action '{action}'")


def _cell_input(value: Any, column_type: str = "") -> Any:
    """A value as written (RAW: never parsed as a formula); an ISO date into a DATE column becomes its serial."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return value
    if column_type == "DATE" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value).strip()):
        try:
            return (date.fromisoformat(str(value).strip()) - SHEETS_EPOCH).days
        except ValueError:
            pass
    return str(value)


def _extended(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, (int, float)):
        return {"numberValue": value}
    return {"stringValue": str(value)}


def update_tracker(connector: Any, payload: Mapping[str, Any]) -> ActionResult:
    spreadsheet = spreadsheet_id(payload.get("document"))
    table_name, key_column, key = (str(payload.get(k) or "").strip() for k in ("table", "key_column", "key"))
    updates = payload.get("values") or {}
    if not table_name or not key_column or not key or not isinstance(updates, Mapping) or not updates:
        raise ApiBadRequest("Google Sheets: update_tracker needs table, key_column, key and values (column → value).", vendor_code="invalid_payload")
    meta = _meta(connector, spreadsheet)
    tables = {str(t.get("name") or "").casefold(): t for s in meta.get("sheets") or [] for t in s.get("tables") or []}
    table = tables.get(table_name.casefold())
    target = _targets(meta, [table_name]).get(table_name)
    if target is None:
        raise ApiNotFound(f"Google Sheets: the spreadsheet has no table or named range '{table_name}'.", vendor_code="notFound")
    a1, types = target[1], target[2]
    rows = (
        connector.client.get(
            _sheets(connector, spreadsheet, f"/values/{quote(a1, safe='')}"),
            params={"valueRenderOption": "UNFORMATTED_VALUE", "dateTimeRenderOption": "SERIAL_NUMBER"},
        )
        .json()
        .get("values")
        or []
    )
    headers = [str(h).strip() for h in (rows[0] if rows else [])]
    columns = {h.casefold(): i for i, h in enumerate(headers)}
    unknown = [c for c in [key_column, *updates] if str(c).strip().casefold() not in columns]
    if unknown:
        raise ApiBadRequest(f"Google Sheets: table '{table_name}' has no column {', '.join(repr(c) for c in unknown)}.", vendor_code="invalid_column")
    key_at = columns[key_column.casefold()]
    top, left, _ = a1_origin(a1)
    title = a1.rsplit("!", 1)[0]
    match = next((i for i, row in enumerate(rows[1:], start=1) if key_at < len(row) and str(row[key_at]).strip().casefold() == key.casefold()), None)
    column_type = {columns[h.casefold()]: t for h, t in types.items() if h.casefold() in columns}
    if match is not None:
        data = [
            {"range": f"{title}!{col_letters(left + columns[str(c).strip().casefold()])}{top + match + 1}",
             "values": [[_cell_input(v, column_type.get(columns[str(c).strip().casefold()], ""))]]}
            for c, v in updates.items()
        ]  # fmt: skip
        connector.client.post(_sheets(connector, spreadsheet, "/values:batchUpdate"), json={"valueInputOption": "RAW", "data": data})
        created, summary = False, f"Updated the row for {key}"
    else:
        row: list[Any] = [""] * len(headers)
        row[key_at] = key
        for column, value in updates.items():
            at = columns[str(column).strip().casefold()]
            row[at] = _cell_input(value, column_type.get(at, ""))
        if table is not None:  # a Sheets table grows by appendCells on its id (the body only, FACTS §18 discovery)
            cells = [{"userEnteredValue": _extended(v)} if v != "" else {} for v in row]
            request = {"appendCells": {"tableId": table["tableId"], "rows": [{"values": cells}], "fields": "userEnteredValue"}}
            connector.client.post(_sheets(connector, spreadsheet, ":batchUpdate"), json={"requests": [request]})
        else:
            connector.client.post(
                _sheets(connector, spreadsheet, f"/values/{quote(a1, safe='')}:append"),
                params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
                json={"values": [row], "majorDimension": "ROWS"},
            )
        created, summary = True, f"Added a row for {key}"
    return ActionResult(
        external_id=f"{spreadsheet}#{table_name}:{key}",
        url=str(meta.get("spreadsheetUrl") or ""),
        data={"table": table_name, "key": key, "values": dict(updates)},
        created=created,
        link_text=f"{table_name}: {key}",
        summary=summary,
    )


def append_row(connector: Any, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
    spreadsheet = spreadsheet_id(payload.get("document"))
    range_name, values = str(payload.get("range") or "").strip(), payload.get("values")
    if not range_name or not isinstance(values, (list, Mapping)) or not values:
        raise ApiBadRequest("Google Sheets: append_row needs range and values (a list, or column → value).", vendor_code="invalid_payload")
    meta = _meta(connector, spreadsheet)
    target = _targets(meta, [range_name]).get(range_name)
    if target is None:
        raise ApiNotFound(f"Google Sheets: the spreadsheet has no sheet, table or named range '{range_name}'.", vendor_code="notFound")
    a1, sheet = target[1], target[1].rsplit("!", 1)[0]
    marker = idempotency_marker(idempotency_key, length=24)
    # Read the whole sheet: the marker may sit right of the range (the column after the values).
    rows = _get(connector, _sheets(connector, spreadsheet, f"/values/{quote(sheet, safe='')}"), {"valueRenderOption": "UNFORMATTED_VALUE"}).get("values") or []
    result = ActionResult(external_id=f"{spreadsheet}#{marker}", url=str(meta.get("spreadsheetUrl") or ""), link_text=range_name, data={"range": range_name})
    if any(marker in (str(cell) for cell in row) for row in rows):
        result.created, result.summary = False, f"The row was already appended to {range_name}"
        return result
    top, left, width = a1_origin(a1)
    header = [str(h).strip() for h in (rows[top][left : left + width] if top < len(rows) else [])]
    columns = {h.casefold(): i for i, h in enumerate(header) if h}
    if isinstance(values, Mapping):
        unknown = [c for c in values if str(c).strip().casefold() not in columns]
        if unknown:
            raise ApiBadRequest(f"Google Sheets: '{range_name}' has no column {', '.join(repr(c) for c in unknown)}.", vendor_code="invalid_column")
        row = [""] * len(header)
        for column, value in values.items():
            row[columns[str(column).strip().casefold()]] = _cell_input(value)
    else:
        row = [_cell_input(v) for v in values]
    at = columns.get(MARKER_COLUMN.casefold(), max(len(row), len(header)))
    row += [""] * (at + 1 - len(row))
    row[at] = marker
    connector.client.post(
        _sheets(connector, spreadsheet, f"/values/{quote(a1, safe='')}:append"),
        params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
        json={"values": [row], "majorDimension": "ROWS"},
    )
    result.created, result.summary = True, f"Appended a row to {range_name}"
    return result


def undo(connector: Any, action: str, *, external_id: str, key: str = "", payload: Any = None, reason: str = "", idempotency_key: str = "") -> ActionResult:
    if action != "copy_document":
        raise NotImplementedError(f"Google Sheets cannot undo '{action}'")
    return undo_copy(connector, external_id)


# ---- push: the changes channel


def verify_webhook(cls: Any, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
    channel, state, token = request.header("X-Goog-Channel-ID"), request.header("X-Goog-Resource-State"), request.header("X-Goog-Channel-Token")
    if not channel or not state or token is None:
        raise WebhookRejected(400, "missing_headers", "X-Goog-Channel-ID, X-Goog-Channel-Token and X-Goog-Resource-State are required.")
    if not equal_secret(token, secret):
        raise WebhookRejected(401, "bad_token", "X-Goog-Channel-Token does not match the channel token.")
    if state not in PUSH_STATES:
        raise WebhookRejected(400, "bad_state", f"Unknown X-Goog-Resource-State {state[:40]!r}.")
    expiration = request.header("X-Goog-Channel-Expiration")
    if expiration:
        try:
            expires_at = parsedate_to_datetime(expiration)
        except (TypeError, ValueError):
            raise WebhookRejected(400, "bad_expiration", "X-Goog-Channel-Expiration is unreadable.")
        if expires_at < request.received_at:
            raise WebhookRejected(409, "channel_expired", "The push channel has expired; notifications on it are stale.")


def parse_webhook(cls: Any, request: WebhookRequest) -> list[WebhookEvent]:
    channel, state = request.header("X-Goog-Channel-ID") or "", request.header("X-Goog-Resource-State") or ""
    number = request.header("X-Goog-Message-Number") or ""
    # No payload: `sync` only says the channel works; anything else means "re-read the changes feed".
    return [
        WebhookEvent(
            delivery_id=f"{channel}:{number}",
            event_type=f"changes.{'sync' if state == 'sync' else 'change'}",
            entity="spreadsheets",
            action="acknowledged" if state == "sync" else "sync",
            record={"resource_state": state, "channel_id": channel},
            occurred_at=request.received_at,
        )
    ]


def _watch(connector: Any, url: str, token: str) -> dict[str, Any]:
    drive = _drive(connector)
    start = _get(connector, f"{drive}changes/startPageToken", {"supportsAllDrives": "true"}).get("startPageToken")
    expires = datetime.now(UTC) + timedelta(days=CHANNEL_DAYS)
    channel = {"id": str(uuid.uuid4()), "type": "web_hook", "address": url, "token": token, "expiration": str(int(expires.timestamp() * 1000))}
    params = {"pageToken": start, "supportsAllDrives": "true", "includeItemsFromAllDrives": "true"}
    answer = connector.client.post(f"{drive}changes/watch", params=params, json=channel).json()
    expiry = datetime.fromtimestamp(int(answer.get("expiration") or channel["expiration"]) / 1000, UTC)
    ids = [f"{answer.get('id') or channel['id']}|{answer.get('resourceId') or ''}|{url}"]
    return {"id": ids[0], "webhook_ids": ids, "expires_at": expiry.isoformat()}


def register_webhook(connector: Any, *, url: str, secret: str) -> dict[str, Any]:
    """A changes.watch channel whose token is Bastion's webhook secret (Drive echoes it in X-Goog-Channel-Token)."""
    return _watch(connector, url, secret)


def refresh_webhooks(connector: Any, webhook_ids: list[Any]) -> datetime:
    """Drive channels cannot be extended: open a new one with the same token and address, then stop the old one."""
    old = [str(i).split("|") for i in webhook_ids if str(i).count("|") == 2]
    if not old:
        raise ApiBadRequest("Google Sheets: no channel to renew; register the webhook again.", vendor_code="no_channel")
    renewed = _watch(connector, old[0][2], str(connector.credentials.get("webhook_secret") or ""))
    for channel_id, resource_id, _ in old:
        try:
            connector.client.post(f"{_drive(connector)}channels/stop", json={"id": channel_id, "resourceId": resource_id})
        except ApiNotFound:
            pass  # already gone (expired or stopped)
    return datetime.fromisoformat(renewed["expires_at"])
