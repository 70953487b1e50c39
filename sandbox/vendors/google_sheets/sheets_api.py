"""Sheets API v4 routes of the stand-in: spreadsheets.get, values get/batchGet/update/append/batchUpdate, batchUpdate appendCells."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.state import STORE
from sandbox.vendors.google_sheets import grid

VALUE_OPTIONS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
DATE_OPTIONS = ("SERIAL_NUMBER", "FORMATTED_STRING")
INPUT_OPTIONS = ("RAW", "USER_ENTERED")


def _books() -> Any:
    return STORE.collection("google_sheets", "books")


def _sheet_json(sheet: dict[str, Any], ranges: list[tuple[dict[str, Any], tuple[int, int, int, int]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"properties": dict(sheet["properties"])}
    rows, columns = grid.extent(sheet)
    out["properties"]["gridProperties"] = {"rowCount": max(rows, 1000), "columnCount": max(columns, 26)}
    if sheet["tables"]:
        out["tables"] = [dict(t) for t in sheet["tables"]]
    data = [grid.grid_data(sheet, box) for target, box in ranges if target is sheet]
    if data:
        out["data"] = data
    return out


def register_sheets_routes(
    api: Blueprint,
    *,
    allowed: Callable[[set[str]], bool],
    error: Callable[..., Response],
    touch: Callable[[str], None],
    read_scopes: set[str],
    write_scopes: set[str],
) -> None:
    def book_for(spreadsheet_id: str, write: bool = False) -> tuple[dict[str, Any] | None, Response | None]:
        if not allowed(write_scopes if write else read_scopes):
            return None, error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        book = _books().get(spreadsheet_id)
        if book is None:
            return None, error(404, "Requested entity was not found.", "notFound")
        return book, None

    def resolve(book: dict[str, Any], text: str) -> tuple[Any, Response | None]:
        try:
            return grid.resolve(book, text), None
        except grid.RangeError:
            return None, error(400, f"Unable to parse range: {text}", "badRequest")

    def options() -> tuple[str, str, str] | Response:
        value = request.args.get("valueRenderOption", "FORMATTED_VALUE")
        dates = request.args.get("dateTimeRenderOption", "SERIAL_NUMBER")
        major = request.args.get("majorDimension", "ROWS")
        if value not in VALUE_OPTIONS or dates not in DATE_OPTIONS or major not in ("ROWS", "COLUMNS"):
            return error(400, "Invalid value at one of valueRenderOption, dateTimeRenderOption or majorDimension.", "badRequest")
        return value, dates, major

    def value_range(book: dict[str, Any], text: str, opts: tuple[str, str, str]) -> tuple[dict[str, Any] | None, Response | None]:
        found, problem = resolve(book, text)
        if problem:
            return None, problem
        sheet, box = found
        body: dict[str, Any] = {"range": grid.a1(sheet, box), "majorDimension": opts[2]}
        values = grid.read_values(sheet, box, opts[0], opts[1], opts[2])
        if values:
            body["values"] = values
        return body, None

    @api.get("/v4/spreadsheets/<spreadsheet_id>")
    def spreadsheets_get(spreadsheet_id: str):
        book, problem = book_for(spreadsheet_id)
        if problem:
            return problem
        ranges = []
        for text in request.args.getlist("ranges"):
            found, problem = resolve(book, text)
            if problem:
                return problem
            ranges.append(found)
        with_data = bool(ranges) and request.args.get("includeGridData") == "true" or "data" in request.args.get("fields", "")
        body = {
            "spreadsheetId": spreadsheet_id,
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{spreadsheet_id}/edit",
            "properties": {"title": book["title"], "locale": book["locale"], "timeZone": book["timeZone"], "autoRecalc": "ON_CHANGE"},
            "sheets": [_sheet_json(s, ranges if with_data else []) for s in book["sheets"]],
            "namedRanges": [dict(n) for n in book["namedRanges"]],
        }
        return jsonify(body)

    @api.get("/v4/spreadsheets/<spreadsheet_id>/values:batchGet")
    def values_batch_get(spreadsheet_id: str):
        book, problem = book_for(spreadsheet_id)
        if problem:
            return problem
        opts = options()
        if isinstance(opts, Response):
            return opts
        ranges = []
        for text in request.args.getlist("ranges"):
            body, problem = value_range(book, text, opts)
            if problem:
                return problem
            ranges.append(body)
        return jsonify({"spreadsheetId": spreadsheet_id, "valueRanges": ranges})

    @api.get("/v4/spreadsheets/<spreadsheet_id>/values/<path:range_text>")
    def values_get(spreadsheet_id: str, range_text: str):
        book, problem = book_for(spreadsheet_id)
        if problem:
            return problem
        opts = options()
        if isinstance(opts, Response):
            return opts
        body, problem = value_range(book, range_text, opts)
        return problem or jsonify(body)

    def write_rows(book: dict[str, Any], text: str, values: Any, option: str) -> tuple[dict[str, Any] | None, Response | None]:
        found, problem = resolve(book, text)
        if problem:
            return None, problem
        sheet, box = found
        if not isinstance(values, list) or not all(isinstance(row, list) for row in values):
            return None, error(400, "Invalid values: a list of rows (lists) is required.", "badRequest")
        for r, row in enumerate(values):
            for c, value in enumerate(row):
                if value is not None:  # null leaves the cell as it is
                    grid.write(sheet, box[0] + r, box[1] + c, value, option)
        width = max((len(row) for row in values), default=0)
        written = (box[0], box[1], box[0] + max(len(values), 1) - 1, box[1] + max(width, 1) - 1)
        cells = sum(1 for row in values for v in row if v is not None)
        return {"updatedRange": grid.a1(sheet, written), "updatedRows": len(values), "updatedColumns": width, "updatedCells": cells}, None

    def input_option(value: str | None) -> str | Response:
        if value not in INPUT_OPTIONS:
            return error(400, "Invalid valueInputOption: RAW or USER_ENTERED is required.", "badRequest")
        return value  # type: ignore[return-value]

    @api.put("/v4/spreadsheets/<spreadsheet_id>/values/<path:range_text>")
    def values_update(spreadsheet_id: str, range_text: str):
        book, problem = book_for(spreadsheet_id, write=True)
        if problem:
            return problem
        option = input_option(request.args.get("valueInputOption"))
        if isinstance(option, Response):
            return option
        with STORE.lock:
            updates, problem = write_rows(book, range_text, (request.get_json(silent=True) or {}).get("values"), option)
        if problem:
            return problem
        touch(spreadsheet_id)
        return jsonify({"spreadsheetId": spreadsheet_id, **updates})

    @api.post("/v4/spreadsheets/<spreadsheet_id>/values/<path:target>")
    def values_append(spreadsheet_id: str, target: str):
        if not target.endswith(":append"):
            return error(404, "Method not found.", "notFound")
        book, problem = book_for(spreadsheet_id, write=True)
        if problem:
            return problem
        option = input_option(request.args.get("valueInputOption"))
        if isinstance(option, Response):
            return option
        with STORE.lock:
            found, problem = resolve(book, target[: -len(":append")])
            if problem:
                return problem
            sheet, box = found
            # The range is searched for a table of data; values go after its last row (FACTS §18).
            last = max((r for (r, c) in sheet["cells"] if box[1] <= c <= box[3] and r >= box[0]), default=box[0] - 1)
            table_box = (box[0], box[1], max(last, box[0]), box[3])
            start = f"{grid.col_letters(box[1])}{last + 2}"
            updates, problem = write_rows(book, f"'{sheet['properties']['title']}'!{start}", (request.get_json(silent=True) or {}).get("values"), option)
        if problem:
            return problem
        touch(spreadsheet_id)
        return jsonify({"spreadsheetId": spreadsheet_id, "tableRange": grid.a1(sheet, table_box), "updates": {"spreadsheetId": spreadsheet_id, **updates}})

    @api.post("/v4/spreadsheets/<spreadsheet_id>/values:batchUpdate")
    def values_batch_update(spreadsheet_id: str):
        book, problem = book_for(spreadsheet_id, write=True)
        if problem:
            return problem
        body = request.get_json(silent=True) or {}
        option = input_option(body.get("valueInputOption"))
        if isinstance(option, Response):
            return option
        responses = []
        with STORE.lock:  # atomic: check every range first, as the service refuses the whole call for one bad range
            for item in body.get("data") or []:
                if resolve(book, str(item.get("range", "")))[1] is not None:
                    return error(400, f"Unable to parse range: {item.get('range')}", "badRequest")
            for item in body.get("data") or []:
                updates, problem = write_rows(book, str(item["range"]), item.get("values"), option)
                if problem:
                    return problem
                responses.append({"spreadsheetId": spreadsheet_id, **updates})
        touch(spreadsheet_id)
        total = {k: sum(r[k] for r in responses) for k in ("updatedRows", "updatedColumns", "updatedCells")}
        return jsonify(
            {
                "spreadsheetId": spreadsheet_id,
                "totalUpdatedSheets": len(responses) and 1,
                **{f"total{k[0].upper()}{k[1:]}": v for k, v in total.items()},
                "responses": responses,
            }
        )

    @api.post("/v4/spreadsheets/<path:target>")
    def spreadsheets_batch_update(target: str):
        spreadsheet_id, _, method = target.partition(":")
        if method != "batchUpdate":
            return error(404, "Method not found.", "notFound")
        book, problem = book_for(spreadsheet_id, write=True)
        if problem:
            return problem
        replies = []
        with STORE.lock:
            for item in (request.get_json(silent=True) or {}).get("requests") or []:
                append = item.get("appendCells")
                if not append:
                    return error(400, f"The stand-in supports appendCells only, not {sorted(item)}.", "badRequest")
                table = next((t for s in book["sheets"] for t in s["tables"] if t["tableId"] == append.get("tableId")), None)
                if table is None:
                    return error(400, f"Invalid requests[0].appendCells: No table with id: {append.get('tableId')}", "badRequest")
                sheet = grid.sheet_by_id(book, table["range"]["sheetId"])
                row = table["range"]["endRowIndex"]
                added = len(append.get("rows") or [])
                for store in (sheet["cells"], sheet["formats"]):  # the table's new rows push what lies below it down
                    below = sorted(((k, v) for k, v in store.items() if k[0] >= row), reverse=True)
                    for (r, c), value in below:
                        del store[(r, c)]
                        store[(r + added, c)] = value
                for offset, data in enumerate(append.get("rows") or []):
                    for c, cell in enumerate(data.get("values") or []):
                        value = grid.cell_value(cell)
                        if value not in (None, ""):
                            sheet["cells"][(row + offset, table["range"]["startColumnIndex"] + c)] = value
                        column = table["columnProperties"][c] if c < len(table["columnProperties"]) else {}
                        kind = {"DATE": "DATE", "PERCENT": "PERCENT", "CURRENCY": "CURRENCY"}.get(column.get("columnType", ""))
                        if kind:
                            sheet["formats"][(row + offset, table["range"]["startColumnIndex"] + c)] = {"type": kind, "pattern": ""}
                table["range"]["endRowIndex"] += added  # the table grows by the appended body rows
                replies.append({})
        touch(spreadsheet_id)
        return jsonify({"spreadsheetId": spreadsheet_id, "replies": replies})
