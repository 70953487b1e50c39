"""Excel workbooks over real HTTP against the stand-in's Project Falcon model: tables as row dicts, named ranges and sheet
addresses typed by their number formats, a tracker row written back (updated when its key is there, added once when not)."""

from __future__ import annotations

import pytest

from integrations.connectors.microsoft365.excel import EXCEL_ACTIONS, excel_serial_to_datetime, format_kind, split_sheet_address, typed_cell
from integrations.errors import ApiBadRequest, ApiNotFound
from tests.integrations.connectors.microsoft365.test_connection import app_connector
from tests.integrations.connectors.microsoft365.test_files import signed_in


def _model(connector):
    deals = next(item for item in connector.browse_documents("") if item.name == "Deals")
    library = connector.browse_documents(deals.id)[0]
    return next(item for item in connector.browse_documents(library.id) if item.name == "Project Falcon model.xlsx")


def test_named_ranges_tables_and_addresses_are_read_typed(sandbox):
    connector = signed_in(sandbox)
    model = _model(connector)
    values = connector.read_document_values(model.id, ["DealValue", "CloseDate", "DealTerms", "Synergies", "Model!A2:B3", "NoSuchName", "Nope!A1"])
    assert set(values) == {"DealValue", "CloseDate", "DealTerms", "Synergies", "Model!A2:B3"}  # unknown names are left out for the caller
    assert values["DealValue"] == [[1_250_000_000]]
    close = values["CloseDate"][0][0]
    assert isinstance(close, str) and len(close) == 10 and close[4] == "-" and close > "2026"  # a date-formatted serial → ISO date
    terms = {row["Term"]: row for row in values["DealTerms"]}
    assert terms["Deal value"]["Value"] == 1_250_000_000 and terms["Close date"]["Value"] == close
    assert terms["Target"] == {"Term": "Target", "Value": "Falcon Analytics Ltd.", "Notes": "UK private company"}
    assert [(r["Area"], r["Target (USD)"], r["Year"]) for r in values["Synergies"]] == [
        ("Procurement consolidation", 42_000_000, 2028),
        ("Facilities", 18_000_000, 2028),
        ("Cross-sell", 55_000_000, 2029),
        ("Platform licensing", 25_000_000, 2029),
    ]
    assert values["Model!A2:B3"] == [["Deal value", 1_250_000_000], ["Close date", close]]


def test_application_access_reads_the_same_values(sandbox):
    connector = app_connector(sandbox)
    assert connector.read_document_values(_model(connector).id, ["DealValue"]) == {"DealValue": [[1_250_000_000]]}


def test_a_document_that_is_no_workbook_is_refused(sandbox):
    connector = signed_in(sandbox)
    legal = next(item for item in connector.browse_documents("") if item.name == "Legal")
    found = connector.browse_documents(legal.id, query="press")
    with pytest.raises(ApiBadRequest, match="not an Excel workbook"):
        connector.read_document_values(found[0].id, ["DealValue"])
    with pytest.raises(ApiBadRequest, match="choose a workbook file"):
        connector.read_document_values(legal.id, ["DealValue"])


def test_update_tracker_updates_the_keyed_row_and_adds_a_missing_one_once(sandbox):
    connector = signed_in(sandbox)
    model = _model(connector)
    payload = {"document": model.id, "table": "DealTerms", "key_column": "Term", "key": "Break fee", "values": {"Notes": "Waived by the board"}}
    updated = connector.perform("update_tracker", payload, idempotency_key="t-1")
    assert not updated.created and updated.summary == "Updated the row for Break fee"
    added_payload = {**payload, "key": "Escrow", "values": {"Value": 5_000_000, "Notes": "12 months"}}
    added = connector.perform("update_tracker", added_payload, idempotency_key="t-2")
    assert added.created and added.summary == "Added a row for Escrow"
    again = connector.perform("update_tracker", {**added_payload, "values": {"Notes": "18 months"}}, idempotency_key="t-3")
    assert not again.created  # the key is there now: updated, not added twice
    rows = connector.read_document_values(model.id, ["DealTerms"])["DealTerms"]
    terms = {row["Term"]: row for row in rows}
    assert terms["Break fee"]["Notes"] == "Waived by the board" and terms["Break fee"]["Value"] == 37_500_000
    assert terms["Escrow"] == {"Term": "Escrow", "Value": 5_000_000, "Notes": "18 months"}
    assert [row["Term"] for row in rows].count("Escrow") == 1
    with pytest.raises(ApiBadRequest, match="has no column 'Status'"):
        connector.perform("update_tracker", {**payload, "values": {"Status": "done"}}, idempotency_key="t-4")
    with pytest.raises(ApiNotFound, match="no table 'Tracker'"):
        connector.perform("update_tracker", {**payload, "table": "Tracker"}, idempotency_key="t-5")


def test_cell_typing_rules():
    assert format_kind("yyyy-mm-dd") == "date" and format_kind("m/d/yyyy h:mm") == "datetime" and format_kind("h:mm:ss") == "time"
    assert format_kind('"Due "dd-mmm') == "date" and format_kind("$#,##0") == "number" and format_kind("General") == "number"
    assert format_kind('0.0" m"') == "number"  # the m inside quotes is text, not months
    assert excel_serial_to_datetime(46477).date().isoformat() == "2027-03-31" and excel_serial_to_datetime(1).date().isoformat() == "1900-01-01"
    assert typed_cell(46477, "yyyy-mm-dd") == "2027-03-31" and typed_cell(46477.5, "yyyy-mm-dd hh:mm") == "2027-03-31T12:00"
    assert typed_cell(12.0, "General") == 12 and typed_cell(0.25, "0%") == 0.25 and typed_cell("  ", "General") is None
    assert typed_cell("#N/A", "General") is None and typed_cell(True, "General") is True
    assert split_sheet_address("'Deal ''A'' model'!$B$2") == ("Deal 'A' model", "B2")
    assert EXCEL_ACTIONS[0].key == "update_tracker" and EXCEL_ACTIONS[0].permissions
