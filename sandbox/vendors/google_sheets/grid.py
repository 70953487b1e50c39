"""Spreadsheet cells for the Google Sheets stand-in: A1 ranges, named ranges, tables, number formats and value rendering."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

SHEETS_EPOCH = date(1899, 12, 30)  # serial 0; Sheets has no 1900 leap-year bug
CELL = re.compile(r"^\$?([A-Za-z]{0,3})\$?(\d{0,7})$")
QUOTED = re.compile(r"^'((?:[^']|'')+)'!(.*)$")


class RangeError(ValueError):
    """A range the service would refuse: 400 'Unable to parse range'."""


def col_index(letters: str) -> int:
    index = 0
    for char in letters.upper():
        index = index * 26 + (ord(char) - 64)
    return index - 1


def col_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def sheet_by_title(book: dict[str, Any], title: str) -> dict[str, Any] | None:
    return next((s for s in book["sheets"] if s["properties"]["title"] == title), None)


def sheet_by_id(book: dict[str, Any], sheet_id: int) -> dict[str, Any] | None:
    return next((s for s in book["sheets"] if s["properties"]["sheetId"] == sheet_id), None)


def extent(sheet: dict[str, Any]) -> tuple[int, int]:
    """(rows, columns) holding data."""
    if not sheet["cells"]:
        return 0, 0
    return max(r for r, _ in sheet["cells"]) + 1, max(c for _, c in sheet["cells"]) + 1


def grid_range(sheet: dict[str, Any], box: tuple[int, int, int, int]) -> dict[str, Any]:
    return {
        "sheetId": sheet["properties"]["sheetId"],
        "startRowIndex": box[0],
        "endRowIndex": box[2] + 1,
        "startColumnIndex": box[1],
        "endColumnIndex": box[3] + 1,
    }


def box_of(grid: dict[str, Any]) -> tuple[int, int, int, int]:
    return grid["startRowIndex"], grid["startColumnIndex"], grid["endRowIndex"] - 1, grid["endColumnIndex"] - 1


def a1(sheet: dict[str, Any], box: tuple[int, int, int, int]) -> str:
    title = sheet["properties"]["title"]
    quoted = f"'{title.replace(chr(39), chr(39) * 2)}'" if not re.match(r"^[A-Za-z0-9_]+$", title) else title
    return f"{quoted}!{col_letters(box[1])}{box[0] + 1}:{col_letters(box[3])}{box[2] + 1}"


def _corner(text: str) -> tuple[int | None, int | None]:
    match = CELL.match(text)
    if not match or not (match.group(1) or match.group(2)):
        raise RangeError(text)
    column = col_index(match.group(1)) if match.group(1) else None
    row = int(match.group(2)) - 1 if match.group(2) else None
    if row is not None and row < 0:
        raise RangeError(text)
    return row, column


def resolve(book: dict[str, Any], text: str) -> tuple[dict[str, Any], tuple[int, int, int, int]]:
    """A1 notation or a named range → (sheet, inclusive zero-based box clamped to the sheet's data where open-ended)."""
    text = str(text).strip()
    named = next((n for n in book["namedRanges"] if n["name"] == text), None)
    if named is not None:
        sheet = sheet_by_id(book, named["range"]["sheetId"])
        return sheet, box_of(named["range"])  # type: ignore[return-value]
    quoted = QUOTED.match(text)
    if re.fullmatch(r"'((?:[^']|'')+)'", text):  # a quoted sheet name alone: the whole sheet
        title, address = text[1:-1].replace("''", "'"), ""
    elif quoted:
        title, address = quoted.group(1).replace("''", "'"), quoted.group(2)
    elif "!" in text:
        title, address = text.split("!", 1)
    elif sheet_by_title(book, text) is not None:
        title, address = text, ""
    else:
        title, address = book["sheets"][0]["properties"]["title"], text
    sheet = sheet_by_title(book, title)
    if sheet is None or not text:
        raise RangeError(text)
    rows, columns = extent(sheet)
    last_row, last_col = max(rows - 1, 0), max(columns - 1, 0)
    if not address:
        return sheet, (0, 0, last_row, last_col)
    start, _, end = address.partition(":")
    r0, c0 = _corner(start)
    r1, c1 = _corner(end) if end else (r0, c0)
    box = (r0 or 0, c0 or 0, last_row if r1 is None else r1, last_col if c1 is None else c1)
    if box[2] < box[0] or box[3] < box[1]:
        box = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
    return sheet, box


def serial_to_date(serial: float) -> date:
    return SHEETS_EPOCH + timedelta(days=int(serial))


def date_to_serial(day: date) -> int:
    return (day - SHEETS_EPOCH).days


def formatted(value: Any, number_format: dict[str, Any] | None) -> str:
    """The cell as the Sheets UI shows it (FORMATTED_VALUE), for the formats the seeds use."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if not isinstance(value, (int, float)):
        return str(value)
    kind = (number_format or {}).get("type", "")
    if kind == "DATE":
        return serial_to_date(value).isoformat()
    if kind == "DATE_TIME":
        day = serial_to_date(value)
        minutes = round((value - int(value)) * 24 * 60)
        return f"{day.isoformat()} {minutes // 60:02d}:{minutes % 60:02d}:00"
    if kind == "PERCENT":
        return f"{value * 100:.0f}%"
    if kind == "CURRENCY":
        return f"${value:,.0f}" if float(value).is_integer() else f"${value:,.2f}"
    return str(int(value)) if float(value).is_integer() else str(value)


def rendered(value: Any, number_format: dict[str, Any] | None, value_option: str, date_option: str) -> Any:
    """One cell in a ValueRange under valueRenderOption / dateTimeRenderOption."""
    if value_option in ("UNFORMATTED_VALUE", "FORMULA"):
        is_date = (number_format or {}).get("type") in ("DATE", "DATE_TIME", "TIME")
        if is_date and date_option == "FORMATTED_STRING" and isinstance(value, (int, float)):
            return formatted(value, number_format)
        return "" if value is None else value
    return formatted(value, number_format)


def read_values(sheet: dict[str, Any], box: tuple[int, int, int, int], value_option: str, date_option: str, major: str = "ROWS") -> list[list[Any]]:
    """The box's values with trailing empty rows and columns omitted, as the service answers."""
    rows: list[list[Any]] = []
    for r in range(box[0], box[2] + 1):
        row = [rendered(sheet["cells"].get((r, c)), sheet["formats"].get((r, c)), value_option, date_option) for c in range(box[1], box[3] + 1)]
        while row and row[-1] in ("", None):
            row.pop()
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    if major == "COLUMNS":
        width = max((len(r) for r in rows), default=0)
        rows = [[row[c] if c < len(row) else "" for row in rows] for c in range(width)]
    return rows


def parse_input(value: Any, option: str) -> tuple[Any, dict[str, Any] | None]:
    """A written value and the format USER_ENTERED infers (ISO dates become date serials); RAW stores it as given."""
    if option == "USER_ENTERED" and isinstance(value, str):
        text = value.strip()
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            try:
                return date_to_serial(date.fromisoformat(text)), {"type": "DATE", "pattern": "yyyy-mm-dd"}
            except ValueError:
                return value, None
        if re.match(r"^-?\d+(\.\d+)?$", text):
            number = float(text)
            return (int(number) if number.is_integer() else number), None
        if text.upper() in ("TRUE", "FALSE"):
            return text.upper() == "TRUE", None
    return (None if value == "" else value), None


def write(sheet: dict[str, Any], row: int, column: int, value: Any, option: str) -> None:
    stored, inferred = parse_input(value, option)
    if stored is None:
        sheet["cells"].pop((row, column), None)
    else:
        sheet["cells"][(row, column)] = stored
    if inferred is not None and (row, column) not in sheet["formats"]:
        sheet["formats"][(row, column)] = inferred


def grid_data(sheet: dict[str, Any], box: tuple[int, int, int, int]) -> dict[str, Any]:
    """spreadsheets.get(ranges=…, includeGridData) for one range: effective values, formats and formatted values per cell."""
    rows, columns = extent(sheet)
    bottom, right = min(box[2], max(rows - 1, box[0])), min(box[3], max(columns - 1, box[1]))
    row_data = []
    for r in range(box[0], bottom + 1):
        cells = []
        for c in range(box[1], right + 1):
            value, fmt = sheet["cells"].get((r, c)), sheet["formats"].get((r, c))
            cell: dict[str, Any] = {}
            if value is not None:
                kind = "boolValue" if isinstance(value, bool) else "numberValue" if isinstance(value, (int, float)) else "stringValue"
                cell["effectiveValue"] = {kind: value}
                cell["userEnteredValue"] = {kind: value}
                cell["formattedValue"] = formatted(value, fmt)
            if fmt:
                cell["effectiveFormat"] = {"numberFormat": dict(fmt)}
                cell["userEnteredFormat"] = {"numberFormat": dict(fmt)}
            cells.append(cell)
        row_data.append({"values": cells})
    return {"startRow": box[0], "startColumn": box[1], "rowData": row_data}


def cell_value(cell: dict[str, Any]) -> Any:
    """An appendCells CellData's userEnteredValue as stored."""
    entered = cell.get("userEnteredValue") or {}
    for kind in ("numberValue", "boolValue", "stringValue", "formulaValue"):
        if kind in entered:
            return entered[kind]
    return None
