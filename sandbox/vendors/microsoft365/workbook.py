"""Excel workbooks under /drives/{id}/items/{id}/workbook: worksheets, ranges by address, tables and rows, named items, sessions."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.state import STORE
from sandbox.vendors.microsoft365.common import GRAPH, VENDOR, bad_request, bump, col, graph_error, json_body, paged, require_scope

CELL = re.compile(r"^\$?([A-Z]{1,3})\$?(\d{1,7})$")
RANGE_CALL = re.compile(r"^range\(address='((?:[^']|'')*)'\)$")
READ = ("Files.Read", "Files.ReadWrite", "Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All")
WRITE = ("Files.ReadWrite", "Files.ReadWrite.All", "Sites.ReadWrite.All")
Grid = dict[tuple[int, int], Any]


def col_index(letters: str) -> int:
    value = 0
    for char in letters:
        value = value * 26 + ord(char) - 64
    return value - 1


def col_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def parse_address(address: str, default_sheet: str | None) -> tuple[str | None, tuple[int, int, int, int] | None]:
    """`Sheet!A1:C4`, `'My sheet'!$B$2`, `B2` → (sheet, (row0, col0, row1, col1)) zero-based and inclusive."""
    sheet = default_sheet
    if "!" in address:
        sheet, address = address.rsplit("!", 1)
        sheet = sheet.strip("'").replace("''", "'")
    corners = address.upper().split(":")
    if len(corners) > 2:
        return sheet, None
    points = []
    for corner in corners:
        match = CELL.match(corner.strip())
        if not match:
            return sheet, None
        points.append((int(match[2]) - 1, col_index(match[1])))
    (r0, c0), (r1, c1) = points[0], points[-1]
    return sheet, (min(r0, r1), min(c0, c1), max(r0, r1), max(c0, c1))


def a1(sheet: str, box: tuple[int, int, int, int]) -> str:
    r0, c0, r1, c1 = box
    name = f"'{sheet}'" if " " in sheet else sheet
    start = f"{col_letters(c0)}{r0 + 1}"
    return f"{name}!{start}" if (r0, c0) == (r1, c1) else f"{name}!{start}:{col_letters(c1)}{r1 + 1}"


def _text(value: Any, fmt: str) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int | float) and fmt.startswith("$"):
        return f"${value:,.0f}"
    if isinstance(value, int | float) and fmt == "yyyy-mm-dd":
        from datetime import date, timedelta

        return (date(1899, 12, 30) + timedelta(days=int(value))).isoformat()
    return str(value)


def _kind(value: Any) -> str:
    if value is None or value == "":
        return "Empty"
    if isinstance(value, bool):
        return "Boolean"
    return "Double" if isinstance(value, int | float) else "String"


def range_body(book: dict[str, Any], sheet: str, box: tuple[int, int, int, int]) -> dict[str, Any]:
    r0, c0, r1, c1 = box
    cells, formats, formulas = book["sheets"][sheet]["_cells"], book["sheets"][sheet]["_formats"], book["sheets"][sheet]["_formulas"]
    rows = range(r0, r1 + 1)
    cols = range(c0, c1 + 1)
    values = [[cells.get((r, c), "") for c in cols] for r in rows]
    address = a1(sheet, box)
    return {
        "@odata.context": f"{GRAPH}/$metadata#microsoft.graph.workbookRange",
        "@odata.type": "#microsoft.graph.workbookRange",
        "address": address,
        "addressLocal": address,
        "cellCount": len(rows) * len(cols),
        "columnCount": len(cols),
        "columnHidden": False,
        "columnIndex": c0,
        "hidden": False,
        "rowCount": len(rows),
        "rowHidden": False,
        "rowIndex": r0,
        "values": values,
        "text": [[_text(cells.get((r, c), ""), formats.get((r, c), "General")) for c in cols] for r in rows],
        "formulas": [[formulas.get((r, c), cells.get((r, c), "")) for c in cols] for r in rows],
        "formulasLocal": [[formulas.get((r, c), cells.get((r, c), "")) for c in cols] for r in rows],
        "formulasR1C1": [[formulas.get((r, c), cells.get((r, c), "")) for c in cols] for r in rows],
        "numberFormat": [[formats.get((r, c), "General") for c in cols] for r in rows],
        "valueTypes": [[_kind(cells.get((r, c), "")) for c in cols] for r in rows],
    }


def _sheet(book: dict[str, Any], name: str, position: int) -> dict[str, Any]:
    sheet = {"id": "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, name)).upper() + "}", "name": name, "position": position, "visibility": "Visible"}
    book["sheets"][name] = {**sheet, "_cells": {}, "_formats": {}, "_formulas": {}}
    return book["sheets"][name]


def _write(sheet: dict[str, Any], row: int, values: list[Any], formats: list[str] | None = None) -> None:
    for offset, value in enumerate(values):
        sheet["_cells"][(row, offset)] = value
        if formats and formats[offset]:
            sheet["_formats"][(row, offset)] = formats[offset]


def _table(book: dict[str, Any], name: str, sheet: str, box: tuple[int, int, int, int]) -> None:
    legacy = str(len(book["tables"]) + 1)
    book["tables"][name] = {
        "id": "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "table:" + name)).upper() + "}",
        "name": name,
        "legacyId": legacy,
        "showHeaders": True,
        "showTotals": False,
        "style": "TableStyleMedium2",
        "highlightFirstColumn": False,
        "highlightLastColumn": False,
        "showBandedRows": True,
        "showBandedColumns": False,
        "showFilterButton": True,
        "_sheet": sheet,
        "_box": box,
    }


def _name(book: dict[str, Any], name: str, reference: str, comment: str) -> None:
    book["names"][name] = {"name": name, "type": "Range", "value": reference, "visible": True, "comment": comment, "scope": "Workbook"}


def seed_workbook(item_id: str, close_date: int) -> None:
    """Project Falcon: deal terms (DealValue, CloseDate named), synergy targets with a SUM total (SynergyTotal named)."""
    book: dict[str, Any] = {"sheets": {}, "tables": {}, "names": {}, "sessions": {}}
    model = _sheet(book, "Model", 0)
    _write(model, 0, ["Term", "Value", "Notes"])
    _write(model, 1, ["Deal value", 1_250_000_000, "Enterprise value, cash and stock"], [None, "$#,##0", None])
    _write(model, 2, ["Close date", close_date, "Target close, subject to regulatory approval"], [None, "yyyy-mm-dd", None])
    _write(model, 3, ["Target", "Falcon Analytics Ltd.", "UK private company"])
    _write(model, 4, ["Consideration mix", "70% cash / 30% stock", ""])
    _write(model, 5, ["Break fee", 37_500_000, "3% of deal value"], [None, "$#,##0", None])
    _table(book, "DealTerms", "Model", (0, 0, 5, 2))
    synergies = _sheet(book, "Synergies", 1)
    _write(synergies, 0, ["Area", "Type", "Target (USD)", "Year"])
    rows = [("Procurement consolidation", "Cost", 42_000_000, 2028), ("Facilities", "Cost", 18_000_000, 2028)]
    rows += [("Cross-sell", "Revenue", 55_000_000, 2029), ("Platform licensing", "Revenue", 25_000_000, 2029)]
    for index, row in enumerate(rows, start=1):
        _write(synergies, index, list(row), [None, None, "$#,##0", "0"])
    _write(synergies, 6, ["Total", "", sum(r[2] for r in rows), ""], [None, None, "$#,##0", None])
    synergies["_formulas"][(6, 2)] = "=SUM(C2:C5)"
    _table(book, "Synergies", "Synergies", (0, 0, 4, 3))
    _name(book, "DealValue", "Model!$B$2", "Headline enterprise value")
    _name(book, "CloseDate", "Model!$B$3", "Target close date")
    _name(book, "SynergyTotal", "Synergies!$C$7", "Run-rate synergy target")
    col("workbooks")[item_id] = book


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _book(drive_id: str, item_id: str) -> tuple[dict[str, Any] | None, Response | None]:
    item = col("items").get(item_id)
    if item is None or item["_drive"] != drive_id or item.get("_deleted"):
        return None, graph_error(404, "itemNotFound", "The resource could not be found.")
    book = col("workbooks").get(item_id)
    if book is None:
        return None, bad_request("The item is not an Excel workbook (.xlsx).", "invalidArgument")
    if scope_error := require_scope(*(WRITE if request.method != "GET" else READ)):
        return None, scope_error
    return book, None


def _find_sheet(book: dict[str, Any], key: str) -> dict[str, Any] | None:
    return book["sheets"].get(key) or next((s for s in book["sheets"].values() if s["id"] == key), None)


def _find_table(book: dict[str, Any], key: str) -> dict[str, Any] | None:
    return book["tables"].get(key) or next((t for t in book["tables"].values() if key in (t["id"], t["legacyId"])), None)


def _table_rows(book: dict[str, Any], table: dict[str, Any]) -> list[dict[str, Any]]:
    r0, c0, r1, c1 = table["_box"]
    cells = book["sheets"][table["_sheet"]]["_cells"]
    return [{"index": r - r0 - 1, "values": [[cells.get((r, c), "") for c in range(c0, c1 + 1)]]} for r in range(r0 + 1, r1 + 1)]


def register(bp: Blueprint) -> None:
    base = "/v1.0/drives/<drive_id>/items/<item_id>/workbook"

    @bp.get(f"{base}/worksheets")
    def wb_worksheets(drive_id: str, item_id: str):
        book, error = _book(drive_id, item_id)
        return error or paged([_public(s) for s in book["sheets"].values()], "workbookWorksheets")

    @bp.get(f"{base}/worksheets/<sheet_key>")
    def wb_worksheet(drive_id: str, item_id: str, sheet_key: str):
        book, error = _book(drive_id, item_id)
        if error:
            return error
        sheet = _find_sheet(book, sheet_key)
        return jsonify(_public(sheet)) if sheet else graph_error(404, "ItemNotFound", f"The requested worksheet '{sheet_key}' doesn't exist.")

    @bp.route(f"{base}/worksheets/<sheet_key>/<call>", methods=["GET", "PATCH"])
    def wb_range(drive_id: str, item_id: str, sheet_key: str, call: str):
        book, error = _book(drive_id, item_id)
        if error:
            return error
        sheet = _find_sheet(book, sheet_key)
        if sheet is None:
            return graph_error(404, "ItemNotFound", f"The requested worksheet '{sheet_key}' doesn't exist.")
        if call in ("usedRange", "usedRange()"):
            cells = sheet["_cells"]
            box = (0, 0, max(r for r, _ in cells), max(c for _, c in cells)) if cells else (0, 0, 0, 0)
            return jsonify(range_body(book, sheet["name"], box))
        match = RANGE_CALL.match(call)
        if not match:
            return graph_error(400, "InvalidArgument", f"Unsupported worksheet function: {call}.")
        target, box = parse_address(match[1].replace("''", "'"), sheet["name"])
        if box is None or target != sheet["name"]:
            return graph_error(400, "InvalidArgument", "The argument is invalid or missing or has an incorrect format.")
        if request.method == "PATCH":
            body, body_error = json_body()
            if body_error:
                return body_error
            values = body.get("values")
            r0, c0, r1, c1 = box
            if not isinstance(values, list) or len(values) != r1 - r0 + 1 or any(not isinstance(v, list) or len(v) != c1 - c0 + 1 for v in values):
                return graph_error(
                    400, "InvalidArgument", "The number of rows or columns in the input array doesn't match the size or dimensions of the range."
                )
            with STORE.lock:
                for dr, row in enumerate(values):
                    for dc, value in enumerate(row):
                        sheet["_cells"][(r0 + dr, c0 + dc)] = value
            _touched(item_id, f"range {a1(sheet['name'], box)} written")
        return jsonify(range_body(book, sheet["name"], box))

    @bp.get(f"{base}/tables")
    def wb_tables(drive_id: str, item_id: str):
        book, error = _book(drive_id, item_id)
        return error or paged([_public(t) for t in book["tables"].values()], "workbookTables")

    @bp.get(f"{base}/tables/<table_key>")
    def wb_table(drive_id: str, item_id: str, table_key: str):
        book, error = _book(drive_id, item_id)
        if error:
            return error
        table = _find_table(book, table_key)
        return jsonify(_public(table)) if table else graph_error(404, "ItemNotFound", f"The requested table '{table_key}' doesn't exist.")

    @bp.get(f"{base}/tables/<table_key>/columns")
    def wb_columns(drive_id: str, item_id: str, table_key: str):
        book, error = _book(drive_id, item_id)
        table = _find_table(book, table_key) if book else None
        if error or table is None:
            return error or graph_error(404, "ItemNotFound", f"The requested table '{table_key}' doesn't exist.")
        r0, c0, r1, c1 = table["_box"]
        cells = book["sheets"][table["_sheet"]]["_cells"]
        columns = [
            {"id": str(c - c0 + 1), "index": c - c0, "name": str(cells.get((r0, c), "")), "values": [[cells.get((r, c), "")] for r in range(r0, r1 + 1)]}
            for c in range(c0, c1 + 1)
        ]
        return paged(columns, "workbookTableColumns")

    @bp.get(f"{base}/tables/<table_key>/range()")
    @bp.get(f"{base}/tables/<table_key>/range")
    def wb_table_range(drive_id: str, item_id: str, table_key: str):
        book, error = _book(drive_id, item_id)
        table = _find_table(book, table_key) if book else None
        if error or table is None:
            return error or graph_error(404, "ItemNotFound", f"The requested table '{table_key}' doesn't exist.")
        return jsonify(range_body(book, table["_sheet"], table["_box"]))

    @bp.get(f"{base}/tables/<table_key>/rows")
    def wb_rows(drive_id: str, item_id: str, table_key: str):
        book, error = _book(drive_id, item_id)
        table = _find_table(book, table_key) if book else None
        if error or table is None:
            return error or graph_error(404, "ItemNotFound", f"The requested table '{table_key}' doesn't exist.")
        return paged(_table_rows(book, table), "workbookTableRows")

    @bp.post(f"{base}/tables/<table_key>/rows/add")
    @bp.post(f"{base}/tables/<table_key>/rows")
    def wb_add_rows(drive_id: str, item_id: str, table_key: str):
        book, error = _book(drive_id, item_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        table = _find_table(book, table_key)
        if table is None:
            return graph_error(404, "ItemNotFound", f"The requested table '{table_key}' doesn't exist.")
        r0, c0, r1, c1 = table["_box"]
        values = body.get("values")
        if not isinstance(values, list) or not values or any(not isinstance(v, list) or len(v) != c1 - c0 + 1 for v in values):
            return graph_error(400, "InvalidArgument", f"values must be a non-empty list of rows of {c1 - c0 + 1} values (the table's columns).")
        if body.get("index") not in (None, r1 - r0):
            return graph_error(400, "InvalidArgument", "The sandbox appends rows only: index must be null or the row count.")
        cells = book["sheets"][table["_sheet"]]["_cells"]
        with STORE.lock:
            if any(cells.get((r1 + 1 + i, c), "") != "" for i in range(len(values)) for c in range(c0, c1 + 1)):
                return graph_error(400, "InsertDeleteConflict", "The operation would move cells below the table; insert the rows in Excel first.")
            for i, row in enumerate(values):
                for j, value in enumerate(row):
                    cells[(r1 + 1 + i, c0 + j)] = value
            table["_box"] = (r0, c0, r1 + len(values), c1)
        _touched(item_id, f"{len(values)} row(s) added to {table['name']}")
        return jsonify({"@odata.context": f"{GRAPH}/$metadata#workbookTableRow", "index": r1 - r0, "values": values}), 201

    @bp.get(f"{base}/names")
    def wb_names(drive_id: str, item_id: str):
        book, error = _book(drive_id, item_id)
        return error or paged(list(book["names"].values()), "workbookNamedItems")

    @bp.get(f"{base}/names/<name>")
    def wb_name(drive_id: str, item_id: str, name: str):
        book, error = _book(drive_id, item_id)
        if error:
            return error
        named = book["names"].get(name)
        return jsonify(named) if named else graph_error(404, "ItemNotFound", f"The requested name '{name}' doesn't exist.")

    @bp.get(f"{base}/names/<name>/range()")
    @bp.get(f"{base}/names/<name>/range")
    def wb_name_range(drive_id: str, item_id: str, name: str):
        book, error = _book(drive_id, item_id)
        if error:
            return error
        named = book["names"].get(name)
        if named is None:
            return graph_error(404, "ItemNotFound", f"The requested name '{name}' doesn't exist.")
        sheet, box = parse_address(named["value"].lstrip("="), None)
        if box is None or sheet not in book["sheets"]:
            return graph_error(400, "InvalidArgument", "The named item is not a range.")
        return jsonify(range_body(book, sheet, box))

    @bp.post(f"{base}/createSession")
    def wb_create_session(drive_id: str, item_id: str):
        book, error = _book(drive_id, item_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if not isinstance(body.get("persistChanges"), bool):
            return graph_error(400, "InvalidArgument", "persistChanges (boolean) is required.")
        session = {"id": f"cluster=PUS1&session={uuid.uuid4()}", "persistChanges": body["persistChanges"]}
        book["sessions"][session["id"]] = session
        return jsonify(session), 201

    @bp.post(f"{base}/closeSession")
    def wb_close_session(drive_id: str, item_id: str):
        book, error = _book(drive_id, item_id)
        if error:
            return error
        if book["sessions"].pop(request.headers.get("workbook-session-id", ""), None) is None:
            return graph_error(404, "ItemNotFound", "The workbook session does not exist or has expired.")
        return Response(status=204)


def _touched(item_id: str, summary: str) -> None:
    """A workbook write changes the file: a new version for drive delta and an `updated` notification on the drive root."""
    from sandbox.vendors.microsoft365.files import item_changed

    item = col("items")[item_id]
    STORE.record_created(VENDOR, "workbook_write", item_id, f"{item['name']}: {summary}", item["webUrl"])
    bump(item)
    item_changed(item)
