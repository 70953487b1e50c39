"""Excel workbooks through Graph: named tables and ranges read into typed values, and a tracker table's row written back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from integrations.connectors.base import ActionResult, ActionSpec, FieldShape, Idempotency
from integrations.connectors.microsoft365.client import ID, GraphBase, _route, register_permission_routes
from integrations.connectors.microsoft365.files import DriveRef, document_id, parse_document_id
from integrations.errors import ApiBadRequest, ApiNotFound

EXCEL_ACTIONS = (
    ActionSpec(
        "update_tracker",
        "Update a tracker row",
        "Write a status back to a tracker table of an Excel workbook: the row whose key column holds the key is updated, or a row "
        "is added when none does. Delegated: Files.ReadWrite (Graph's permission reference lists workbook writes for delegated "
        "permissions); application: Files.ReadWrite.All with an administrator's consent, where the tenant allows app-only workbook "
        "access. Graph's refusal is shown as is.",
        {"document": "document", "table": "string", "key_column": "string", "key": "string", "values": "object"},
        Idempotency.NATURAL,
        fields={"key": FieldShape(max_chars=255, single_line=True)},
        verb="updated",
        kept_on_undo="A tracker row written back stays in the workbook (its earlier values are in the file's version history).",
        permissions=("Files.ReadWrite", "Files.ReadWrite.All"),
    ),
)

_WORKBOOK = rf"drives/{ID}/items/{ID}/workbook/.*"
register_permission_routes(
    [
        _route("GET", _WORKBOOK, ("Files.Read",), ("Files.Read.All",)),
        _route("(?:POST|PATCH)", _WORKBOOK, ("Files.ReadWrite",), ("Files.ReadWrite.All",)),
    ]
)
EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 = 1900-01-01 with Lotus's leap-year bug kept for serials from 61 on
MAX_TABLE_ROWS = 5000
EXCEL_ERRORS = frozenset({"#N/A", "#DIV/0!", "#REF!", "#NAME?", "#VALUE!", "#NUM!", "#NULL!", "#SPILL!", "#CALC!", "#GETTING_DATA"})
_SHEET_ADDRESS = re.compile(r"^(?:'((?:[^']|'')+)'|([^'!]+))!(\$?[A-Za-z]{1,3}\$?\d{1,7}(?::\$?[A-Za-z]{1,3}\$?\d{1,7})?)$")
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.|_.|\*.')


def is_sheet_address(name: str) -> bool:
    return bool(_SHEET_ADDRESS.match(str(name).strip()))


def split_sheet_address(name: str) -> tuple[str, str]:
    """ "'Deal Model'!B2:C4" → ("Deal Model", "B2:C4")."""
    match = _SHEET_ADDRESS.match(str(name).strip())
    if not match:
        raise ApiBadRequest(f"Microsoft 365: '{name}' is not a sheet address such as Sheet1!A1:B4.", vendor_code="invalid_address")
    sheet = (match.group(1) or "").replace("''", "'") or (match.group(2) or "").strip()
    return sheet, match.group(3).replace("$", "").upper()


def format_kind(number_format: Any) -> str:
    """What an Excel number format shows a number as: "date", "datetime", "time" or "number"."""
    text = _FORMAT_LITERALS.sub("", str(number_format or "")).lower()
    if not text or text == "general" or "@" in text:
        return "number"
    has_date = any(c in text for c in "dy") or ("m" in text and "h" not in text and "s" not in text)
    has_time = "h" in text or "s" in text
    if has_date and has_time:
        return "datetime"
    if has_date:
        return "date"
    return "time" if has_time else "number"


def excel_serial_to_datetime(serial: float) -> datetime:
    days = float(serial)
    if days < 61:
        days += 1  # before Lotus's phantom 1900-02-29
    return datetime.combine(EXCEL_EPOCH, datetime.min.time()) + timedelta(days=days)


def typed_cell(value: Any, number_format: Any = "General", value_type: str = "") -> Any:
    """A cell as Bastion keeps it: numbers as int/float, date-formatted serials as ISO dates, blanks and errors as None."""
    if value_type == "Error" or (isinstance(value, str) and value.strip() in EXCEL_ERRORS):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        kind = format_kind(number_format)
        if kind == "date":
            return excel_serial_to_datetime(value).date().isoformat()
        if kind == "datetime":
            return excel_serial_to_datetime(value).isoformat(timespec="minutes")
        return int(value) if float(value).is_integer() else value
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def typed_rows(range_body: Mapping[str, Any]) -> list[list[Any]]:
    """A workbookRange's values typed by its numberFormat (and valueTypes when given)."""
    values = range_body.get("values") or []
    formats = range_body.get("numberFormat") or []
    types = range_body.get("valueTypes") or []
    rows = []
    for r, row in enumerate(values):
        out = []
        for c, value in enumerate(row):
            number_format = formats[r][c] if r < len(formats) and c < len(formats[r]) else "General"
            value_type = types[r][c] if r < len(types) and c < len(types[r]) else ""
            out.append(typed_cell(value, number_format, value_type))
        rows.append(out)
    return rows


def table_records(headers: list[Any], rows: list[list[Any]]) -> list[dict[str, Any]]:
    """Rows as dicts keyed by the header row (blank headers named ColumnN like Excel); blank rows dropped."""
    keys = [str(h).strip() if h not in (None, "") else f"Column{i + 1}" for i, h in enumerate(headers)]
    return [dict(zip(keys, row, strict=False)) for row in rows if any(v not in (None, "") for v in row)]


def _quoted(value: str) -> str:
    return quote(str(value), safe="")


class ExcelMixin(GraphBase):
    """read_document_values and the update_tracker action for workbooks in OneDrive and SharePoint."""

    def _workbook_path(self, document: str) -> tuple[DriveRef, str]:
        ref = parse_document_id(document, where="document")
        if ref.kind != "item":
            raise ApiBadRequest("Microsoft 365: choose a workbook file (.xlsx), not a site or library.", vendor_code="invalid_document")
        return ref, f"{ref.item_path}/workbook"

    def _workbook_list(self, path: str) -> list[dict[str, Any]]:
        return list(self.iter_items(path))

    def read_document_values(self, document: str, names: list[str]) -> dict[str, Any]:
        _, workbook = self._workbook_path(document)
        tables: dict[str, dict[str, Any]] | None = None
        named: dict[str, dict[str, Any]] | None = None
        found: dict[str, Any] = {}
        for name in dict.fromkeys(str(n).strip() for n in names if str(n).strip()):
            if is_sheet_address(name):
                sheet, address = split_sheet_address(name)
                try:
                    body = self.graph("GET", f"{workbook}/worksheets/{_quoted(sheet)}/range(address='{address}')")
                except ApiNotFound:
                    continue  # no such sheet: the caller names it among the problems
                found[name] = typed_rows(body)
                continue
            if tables is None:
                tables = {str(t.get("name") or "").casefold(): t for t in self._workbook_list(f"{workbook}/tables")}
            table = tables.get(name.casefold())
            if table is not None:
                found[name] = self._table_rows(workbook, table)
                continue
            if named is None:
                named = {str(n.get("name") or "").casefold(): n for n in self._workbook_list(f"{workbook}/names")}
            item = named.get(name.casefold())
            if item is None:
                continue
            if str(item.get("type") or "Range") == "Range":
                body = self.graph("GET", f"{workbook}/names/{_quoted(str(item['name']))}/range()")
                found[name] = typed_rows(body)
            else:  # a named constant: its value is the formula's literal
                found[name] = [[typed_cell(str(item.get("value") or "").lstrip("="))]]
        return found

    def _table_range(self, workbook: str, table: Mapping[str, Any]) -> tuple[list[Any], list[list[Any]], Mapping[str, Any]]:
        """A table's header and data rows (typed) and its raw range (for its address)."""
        body = self.graph("GET", f"{workbook}/tables/{_quoted(str(table.get('name') or table.get('id')))}/range()")
        rows = typed_rows(body)
        if table.get("showTotals") and rows:
            rows = rows[:-1]
        if table.get("showHeaders", True) is False:
            return [f"Column{i + 1}" for i in range(len(rows[0]) if rows else 0)], rows, body
        return (rows[0] if rows else []), rows[1 : MAX_TABLE_ROWS + 1], body

    def _table_rows(self, workbook: str, table: Mapping[str, Any]) -> list[dict[str, Any]]:
        headers, rows, _ = self._table_range(workbook, table)
        return table_records(headers, rows)

    def _act_update_tracker(self, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        ref, workbook = self._workbook_path(str(payload.get("document") or ""))
        table_name, key_column, key = (str(payload.get(k) or "").strip() for k in ("table", "key_column", "key"))
        updates = payload.get("values") or {}
        if not table_name or not key_column or not key or not isinstance(updates, Mapping) or not updates:
            raise ApiBadRequest("Microsoft 365: update_tracker needs table, key_column, key and values (column → value).", vendor_code="invalid_payload")
        tables = {str(t.get("name") or "").casefold(): t for t in self._workbook_list(f"{workbook}/tables")}
        table = tables.get(table_name.casefold())
        if table is None:
            raise ApiNotFound(f"Microsoft 365: the workbook has no table '{table_name}'.", vendor_code="ItemNotFound")
        headers, rows, body = self._table_range(workbook, table)
        columns = {str(h).strip().casefold(): i for i, h in enumerate(headers)}
        unknown = [c for c in [key_column, *updates] if str(c).strip().casefold() not in columns]
        if unknown:
            raise ApiBadRequest(f"Microsoft 365: table '{table_name}' has no column {', '.join(repr(c) for c in unknown)}.", vendor_code="invalid_column")
        key_at = columns[key_column.casefold()]
        raw_rows = (body.get("values") or [])[1:]
        match = next((i for i, row in enumerate(rows) if str(row[key_at] if key_at < len(row) else "").strip().casefold() == key.casefold()), None)
        if match is None:
            new_row: list[Any] = [""] * len(headers)
            new_row[key_at] = key
            for column, value in updates.items():
                new_row[columns[str(column).strip().casefold()]] = _cell_input(value)
            self.graph("POST", f"{workbook}/tables/{_quoted(str(table.get('name')))}/rows/add", json={"values": [new_row]})
            summary = f"Added a row for {key}"
            created = True
        else:
            row_values = list(raw_rows[match]) if match < len(raw_rows) else [""] * len(headers)
            for column, value in updates.items():
                row_values[columns[str(column).strip().casefold()]] = _cell_input(value)
            # Graph's "Update tablerow": the data row by its index, the whole row's values.
            self.graph("PATCH", f"{workbook}/tables/{_quoted(str(table.get('name')))}/rows/{match}", json={"values": [row_values]})
            summary = f"Updated the row for {key}"
            created = False
        return ActionResult(
            external_id=document_id("item", ref.drive, ref.item) + f"#{table.get('name')}:{key}",
            data={"table": str(table.get("name")), "key": key, "values": dict(updates)},
            created=created,
            link_text=f"{table.get('name')}: {key}",
            summary=summary,
        )


def _cell_input(value: Any) -> Any:
    """A value as written into a cell: numbers and booleans as is, everything else as text."""
    if isinstance(value, (bool, int, float)) or value is None:
        return "" if value is None else value
    return str(value)
