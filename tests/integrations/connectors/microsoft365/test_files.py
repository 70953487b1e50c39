"""SharePoint/OneDrive over real HTTP against the stand-in: the file picker's browsing and search, copy_document (folder made,
copy monitor polled, shared once, idempotent), undo, read-back, bad payloads and a missing permission named."""

from __future__ import annotations

import pytest
import requests

from integrations.connectors.microsoft365 import MANIFEST
from integrations.connectors.microsoft365.files import FILES_ACTIONS, folder_segments, item_breadcrumb, parse_document_id
from integrations.errors import ApiBadRequest, ApiForbidden
from tests.integrations.connectors.microsoft365.test_connection import app_connector, delegated_connector, sign_in


def signed_in(sandbox, **kwargs):
    """A delegate who consented to every scope the manifest asks for (files included)."""
    return delegated_connector(sandbox, sign_in(sandbox, tuple(MANIFEST.oauth.scopes)), **kwargs)


FOLDER = "Incidents/2026-12-06 Data breach"
STAKEHOLDERS = ["priya.raman@acme.example", "outside.counsel@lawfirm.example"]


def _by_name(items):
    return {item.name: item for item in items}


def _template(connector, name="Breach notification template.docx"):
    sites = _by_name(connector.browse_documents(""))
    drives = _by_name(connector.browse_documents(sites["Legal"].id))
    root = _by_name(connector.browse_documents(drives["Documents"].id))
    return _by_name(connector.browse_documents(root["Templates"].id))[name], root


def _permissions(sandbox, connector, external_id):
    ref = parse_document_id(external_id)
    return connector.graph("GET", f"drives/{ref.drive}/items/{ref.item}/permissions")["value"]


def test_browse_sites_libraries_folders_and_files_as_a_delegate(sandbox):
    connector = signed_in(sandbox)
    top = _by_name(connector.browse_documents(""))
    assert {"Legal", "Deals", "OneDrive"} <= set(top)
    assert top["Legal"].is_folder and top["Legal"].id.startswith("site:") and top["Legal"].url.startswith("https://")
    drives = connector.browse_documents(top["Legal"].id)
    assert [(d.name, d.path, d.is_folder) for d in drives] == [("Documents", "Legal", True)]
    template, root = _template(connector)
    assert {"Templates", "Incidents"} <= set(root) and root["Templates"].is_folder
    assert template.is_folder is False and template.path == "Templates"
    assert template.mime_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert parse_document_id(template.id).kind == "item" and template.url.startswith("https://")
    assert connector.browse_documents("onedrive") == []  # the signed-in user's OneDrive starts empty


def test_search_a_site_and_a_folder_by_name(sandbox):
    connector = signed_in(sandbox)
    top = _by_name(connector.browse_documents(""))
    found = connector.browse_documents(top["Legal"].id, query="breach")
    assert [f.name for f in found] == ["Breach notification template.docx"] and found[0].path == "Templates"
    assert _by_name(connector.browse_documents("", query="deal")).keys() >= {"Deals"}
    template, root = _template(connector)
    assert [f.name for f in connector.browse_documents(root["Templates"].id, query="PRESS")] == ["Press holding statement.docx"]
    assert connector.browse_documents(root["Templates"].id, query="o'brien") == []  # a quote is escaped, not an OData injection


def test_application_access_lists_sites_without_a_onedrive(sandbox):
    top = _by_name(app_connector(sandbox).browse_documents(""))
    assert {"Legal", "Deals"} <= set(top) and "OneDrive" not in top


def test_copy_document_makes_the_folder_copies_shares_and_reuses_on_retry(sandbox):
    sleeps: list[float] = []
    connector = signed_in(sandbox, sleeps=sleeps)
    template, _ = _template(connector)
    requests.put(f"{sandbox}/microsoft365/_control/knobs", json={"copy_in_progress_polls": 2}, timeout=5).raise_for_status()
    payload = {"source": template.id, "folder": FOLDER, "share_with": STAKEHOLDERS, "share_role": "write", "message": "For the breach response."}
    first = connector.perform("copy_document", payload, idempotency_key="run-1:copy", known_new=True)
    assert first.created and first.url.startswith("https://") and first.link_text == "Breach notification template.docx"
    assert first.summary == f"Copied in {FOLDER}; shared with 2"
    assert first.tracked.status == "shared" and first.tracked.is_done and first.tracked.details["shared_with"] == STAKEHOLDERS
    assert len(sleeps) == 2  # the monitor said inProgress twice before completed
    folder = connector.browse_documents(first.data["folder_id"])
    assert [(f.name, f.path) for f in folder] == [("Breach notification template.docx", "Incidents / 2026-12-06 Data breach")]
    permissions = _permissions(sandbox, connector, first.external_id)
    assert sorted(p["grantedToV2"]["user"]["email"] for p in permissions) == sorted(STAKEHOLDERS)
    assert {tuple(p["roles"]) for p in permissions} == {("write",)}
    again = connector.perform("copy_document", payload, idempotency_key="run-1:copy")
    assert not again.created and again.external_id == first.external_id and again.summary.startswith("Found the copy")
    assert len(connector.browse_documents(first.data["folder_id"])) == 1
    assert len(_permissions(sandbox, connector, first.external_id)) == 2  # nobody invited twice
    renamed = connector.perform("copy_document", {**payload, "name": "Notice: ACME/Falcon", "share_with": []}, idempotency_key="run-1:copy2")
    assert renamed.created and renamed.link_text == "Notice- ACME-Falcon.docx" and renamed.tracked.status == "copied"


def test_undo_deletes_the_copy_and_fetch_objects_reports_it_gone(sandbox):
    connector = app_connector(sandbox)
    template, _ = _template(connector, "Press holding statement.docx")
    result = connector.perform("copy_document", {"source": template.id, "folder": FOLDER}, idempotency_key="run-2:copy")
    assert connector.fetch_objects("record", [result.external_id])[result.external_id].status == "copied"
    undone = connector.undo("copy_document", external_id=result.external_id, idempotency_key="undo-1")
    assert undone.summary == "Deleted the copy."
    assert connector.browse_documents(result.data["folder_id"]) == []
    gone = connector.fetch_objects("record", [result.external_id])[result.external_id]
    assert gone.status == "deleted" and gone.is_done
    assert connector.undo("copy_document", external_id=result.external_id, idempotency_key="undo-2").summary == "The copy was already deleted."


def test_bad_payloads_are_refused_before_anything_is_copied(sandbox):
    connector = signed_in(sandbox)
    template, root = _template(connector)
    cases = [
        ({"source": template.id, "folder": FOLDER, "share_role": "owner"}, "share_role 'owner' is not read or write"),
        ({"source": root["Templates"].id, "folder": FOLDER}, "is a folder; choose a file"),
        ({"source": "site:whatever", "folder": FOLDER}, "source must be a file"),
        ({"source": "https://evil.example/x", "folder": FOLDER}, "is not a document reference"),
        ({"source": template.id, "folder": " / ./ "}, "folder is required"),
    ]
    for payload, message in cases:
        with pytest.raises(ApiBadRequest, match=message):
            connector.perform("copy_document", payload, idempotency_key="bad")
    assert connector.browse_documents(root["Incidents"].id) == []


def test_a_missing_write_permission_is_named(sandbox):
    connector = delegated_connector(sandbox, sign_in(sandbox, ("Sites.Read.All", "User.Read", "offline_access")))
    template, _ = _template(connector)
    with pytest.raises(ApiForbidden, match="Files.ReadWrite.All"):
        connector.perform("copy_document", {"source": template.id, "folder": FOLDER}, idempotency_key="no-write")


def test_action_spec_and_helpers():
    spec = FILES_ACTIONS[0]
    assert spec.key == "copy_document" and spec.tracks_label == "document" and spec.undo and "Files.ReadWrite.All" in spec.permissions
    assert "Delegated" in spec.description and "Application" in spec.description
    assert folder_segments(' Incidents//2026-12-06: "Breach" ') == ["Incidents", "2026-12-06- -Breach-"]
    assert item_breadcrumb({"parentReference": {"path": "/drives/b!x/root:/Legal%20Docs/Templates"}}) == "Legal Docs / Templates"
    with pytest.raises(ApiBadRequest):
        parse_document_id("item:only-a-drive")


def test_throttled_calls_wait_for_retry_after_and_copy_once(sandbox):
    sleeps: list[float] = []
    connector = app_connector(sandbox, sleeps=sleeps)
    template, _ = _template(connector)
    requests.put(f"{sandbox}/_control/faults/microsoft365", json={"rate_limit_next": 2, "retry_after": 2}, timeout=5).raise_for_status()
    result = connector.perform("copy_document", {"source": template.id, "folder": FOLDER}, idempotency_key="throttled")
    assert result.created and [round(s) for s in sleeps[:2]] == [2, 2]  # Graph's Retry-After honoured (plus jitter)
    assert [f.name for f in connector.browse_documents(result.data["folder_id"])] == ["Breach notification template.docx"]
