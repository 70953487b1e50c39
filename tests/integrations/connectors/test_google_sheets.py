"""Google Sheets (spec.yaml + hooks.py) end to end over real HTTP against the Sheets v4 + Drive v3 stand-in: OAuth through the
consent page, the file picker, named ranges / A1 / tables typed by number format, the M&A document import with provenance,
tracker writes exactly once, Drive changes as incremental sync, and the changes.watch channel through Bastion's intake."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from accounts.models import Role as MemberRole
from integrations.connectors.base import Capability, Role
from integrations.errors import ApiBadRequest, ApiForbidden, ApiNotFound
from integrations.models import Integration, IntegrationStatus
from integrations.registry import get_connector_class
from integrations.services import shared_connector
from scenarios.services import scenario_create
from sync.models import JobStatus, SyncRecord, WebhookDelivery
from sync.services.jobs import data_sources_ensure
from tests.conftest import run_sync
from tests.integrations.oauth_helpers import consent, local
from tests.sandbox.test_declared_sandbox import HookTarget

FALCON = "1FalconModel0aBcDeFgHiJkLmNoPqRsTuVwXyZ01234"
SCOPES = tuple(f"https://www.googleapis.com/auth/{s}" for s in ("spreadsheets", "drive.readonly", "drive.file"))
MAPPING = {"deal_value": "DealValue", "close_date": "CloseDate", "synergy_targets": "Synergies"}


def sheet_values(sandbox: str, range_text: str) -> list[list[str]]:
    return requests.get(f"{sandbox}/google_sheets/_sandbox/books/{FALCON}/values", params={"range": range_text}, timeout=5).json()


def sheets_requests(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": "google_sheets"}, timeout=5).json()


@pytest.fixture
def sheets(sandbox, users_by_role, settings) -> Integration:
    """Connected the way an admin does it: the connect page, Google's consent (the sandbox's), the callback."""
    settings.BASTION_SANDBOX_URL = sandbox
    client = Client()
    client.force_login(users_by_role[MemberRole.ADMIN])
    page = client.get("/integrations/connect/google_sheets/").content.decode()
    assert all(scope in page for scope in SCOPES) and "file picker" in page  # each scope with its purpose
    started = client.post("/integrations/connect/google_sheets/", {"display_name": "Sheets", "base_url": f"{sandbox}/google_sheets", "auth_method": "oauth2"})
    assert started.status_code == 302, started.content[:300]
    query = parse_qs(urlsplit(started["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["access_type"] == ["offline"] and set(query["scope"][0].split()) == set(SCOPES)
    response = client.get(local(consent(started["Location"])))
    integration = Integration.objects.get(connector_key="google_sheets")
    assert response.status_code == 302 and integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


@pytest.fixture
def connector(sheets):
    return shared_connector(sheets, purpose="test")


def test_the_connector_is_a_spec_with_hooks_and_connects_through_consent(sheets):
    manifest = get_connector_class("google_sheets").manifest
    assert {Capability.DOCUMENTS, Capability.DOCUMENT_VALUES, Capability.INCREMENTAL, Capability.WEBHOOK_REGISTRATION} <= set(manifest.capabilities)
    assert [a.key for a in manifest.actions] == ["update_tracker", "append_row", "copy_document"] and manifest.roles == (Role.DOCUMENTS,)
    assert set(manifest.action("update_tracker").input_schema) == {"document", "table", "key_column", "key", "values"}  # Excel's payload
    assert sheets.external_account_id == "amara.nwosu@acme.example"


def test_the_picker_lists_searches_and_opens_folders_across_shared_drives(connector, sandbox, api_for, users_by_role, sheets, outsider):
    top = {item.name: item for item in connector.browse_documents("")}
    assert top["Deals"].is_folder and top["Deals"].id.startswith("folder:")
    assert "Vendor contracts register" in top and top["Vendor contracts register"].path == "Shared drive"  # shared drives included
    assert "Old forecast" not in top and "Project Falcon memo" not in top  # trashed files and documents are not spreadsheets to pick
    assert len([i for i in top.values() if not i.is_folder]) == 10  # paged through Drive (100 a page, 10 spreadsheets)
    inside = connector.browse_documents(top["Deals"].id)
    assert [(i.name, i.id, i.url) for i in inside] == [("Project Falcon financial model", FALCON, f"https://docs.google.com/spreadsheets/d/{FALCON}/edit")]
    found = connector.browse_documents("", query="falcon")
    assert [i.name for i in found] == ["Project Falcon financial model"]
    assert connector.browse_documents("", query="it's") == []  # the quote is escaped in Drive's q, never a broken query
    with pytest.raises(ApiBadRequest, match="not a document reference"):
        connector.browse_documents("../../etc/passwd")
    with pytest.raises(ApiNotFound):
        connector.browse_documents("folder:1NoSuchFolder000000")
    listing = api_for(users_by_role[MemberRole.EDITOR]).get(f"/api/integrations/{sheets.pk}/documents", {"q": "Falcon"})
    assert listing.status_code == 200 and listing.json()["items"][0]["id"] == FALCON
    assert api_for(outsider).get(f"/api/integrations/{sheets.pk}/documents").status_code == 404


def test_named_ranges_a1_and_tables_read_typed_by_number_format(connector):
    values = connector.read_document_values(FALCON, ["DealValue", "CloseDate", "Synergies", "DealTerms", "Model!A5:B5", "'Tracker'!d2", "Nope", "Nope!A1"])
    assert set(values) == {"DealValue", "CloseDate", "Synergies", "DealTerms", "Model!A5:B5", "'Tracker'!d2"}  # missing names left to the caller
    assert values["DealValue"] == [[1_250_000_000]]  # currency → number
    close = date.fromisoformat(values["CloseDate"][0][0])  # date serial → ISO date
    assert close == date.today() + timedelta(days=90)
    assert values["Model!A5:B5"] == [["Cash share", 0.7]]  # percent → number
    assert values["'Tracker'!d2"] == [[(close - timedelta(days=30)).isoformat()]]
    assert values["Synergies"][0] == {"Area": "Procurement consolidation", "Type": "Cost", "Target (USD)": 42_000_000, "Year": 2028}
    assert len(values["Synergies"]) == 4
    assert values["DealTerms"][0] == ["Term", "Value", "Notes"] and values["DealTerms"][2][1] == close.isoformat()  # a named block: rows
    with pytest.raises(ApiBadRequest, match="not a document reference"):
        connector.read_document_values("../etc", ["DealValue"])
    by_url = connector.read_document_values(f"https://docs.google.com/spreadsheets/d/{FALCON}/edit#gid=0", ["DealValue"])
    assert by_url == {"DealValue": [[1_250_000_000]]}
    batch = [r for r in sheets_requests_from(connector) if r.endswith("values:batchGet")]
    assert batch  # one batchGet for every range asked


def sheets_requests_from(connector) -> list[str]:
    sandbox = connector.client.base_url.rsplit("/google_sheets/", 1)[0]
    return [r["path"] for r in sheets_requests(sandbox)]


def test_the_ma_fields_fill_from_the_sheets_model_with_provenance(api_for, users_by_role, organization, sheets):
    editor = api_for(users_by_role[MemberRole.EDITOR])
    scenario = deal_scenario(organization)
    url = f"/api/scenarios/{scenario.pk}/document-import"
    document = {"id": FALCON, "name": "Project Falcon financial model"}
    bad = editor.post(
        url, {"integration": str(sheets.pk), "document": document, "mapping": {"deal_value": "NoSuchName", "close_date": "DealValue"}}, format="json"
    )
    assert bad.status_code == 400
    assert "no table or named range 'NoSuchName'" in bad.json()["error"]["fields"]["mapping.deal_value"][0]
    assert "not a date" in bad.json()["error"]["fields"]["mapping.close_date"][0]
    scenario.refresh_from_db()
    assert scenario.values["deal_value"]["amount"] == 1 and "close_date" not in scenario.value_sources  # nothing written
    response = editor.post(url, {"integration": str(sheets.pk), "document": document, "mapping": MAPPING}, format="json")
    assert response.status_code == 200, response.json()
    imported = response.json()["values"]
    assert imported["deal_value"] == {"amount": 1_250_000_000, "currency": "GBP"}
    assert imported["close_date"] == (date.today() + timedelta(days=90)).isoformat()
    assert imported["synergy_targets"].splitlines()[0] == "Area: Procurement consolidation; Type: Cost; Target (USD): 42,000,000; Year: 2028"
    scenario.refresh_from_db()
    for key, source in MAPPING.items():
        item = scenario.value_sources[key]["items"][0]
        assert item["source"] == "google_sheets" and item["range"] == source and item["document_id"] == FALCON
        assert item["document"] == "Project Falcon financial model" and item["integration_id"] == str(sheets.pk)
    column = editor.post(url, {"integration": str(sheets.pk), "document": FALCON, "mapping": {"legal_requirements": "Synergies.Area"}}, format="json")
    assert column.status_code == 200 and "Cross-sell" in column.json()["values"]["legal_requirements"]


def test_update_tracker_updates_or_adds_its_row_exactly_once(connector, sandbox):
    payload = {
        "document": FALCON,
        "table": "Tracker",
        "key_column": "Workstream",
        "key": "Regulatory filing",
        "values": {"Status": "Done", "Due": "2027-03-01"},
    }
    first = connector.perform("update_tracker", payload, idempotency_key="k-1")
    assert not first.created and first.summary == "Updated the row for Regulatory filing"
    rows = sheet_values(sandbox, "Tracker")
    assert rows[1][:4] == ["Regulatory filing", "priya.raman@acme.example", "Done", "2027-03-01"] and len(rows) == 3  # a date stays a date
    added = {**payload, "key": "Integration planning", "values": {"Owner": "ava.chen@acme.example", "Status": "Not started"}}
    created = connector.perform("update_tracker", added, idempotency_key="k-2")
    again = connector.perform("update_tracker", added, idempotency_key="k-2")  # the step retried: the row is found, not added twice
    assert created.created and not again.created
    rows = sheet_values(sandbox, "Tracker")
    assert [r[0] for r in rows] == ["Workstream", "Regulatory filing", "Financing", "Integration planning"]
    values = connector.read_document_values(FALCON, ["Tracker"])["Tracker"]
    assert values[-1]["Status"] == "Not started"  # the table grew: the new row reads back as part of it
    with pytest.raises(ApiBadRequest, match="has no column 'Budget'"):
        connector.perform("update_tracker", {**payload, "values": {"Budget": 1}}, idempotency_key="k-3")
    with pytest.raises(ApiNotFound):
        connector.perform("update_tracker", {**payload, "table": "Nope"}, idempotency_key="k-4")
    formula = connector.perform("update_tracker", {**payload, "values": {"Status": '=IMPORTDATA("http://evil")'}}, idempotency_key="k-5")
    assert not formula.created and sheet_values(sandbox, "Tracker!C2")[0][0] == '=IMPORTDATA("http://evil")'  # RAW: text, never a formula


def test_append_row_appends_once_with_its_marker(connector, sandbox):
    payload = {"document": FALCON, "range": "Synergies!A1:D5", "values": {"Area": "Tax structuring", "Type": "Cost", "Target (USD)": 5_000_000, "Year": 2030}}
    first = connector.perform("append_row", payload, idempotency_key="run-7:append")
    second = connector.perform("append_row", payload, idempotency_key="run-7:append")
    assert first.created and not second.created
    rows = sheet_values(sandbox, "Synergies")
    assert [r[0] for r in rows].count("Tax structuring") == 1 and rows[-1][4].startswith("bastion-")
    other = connector.perform("append_row", {**payload, "values": ["Licensing", "Revenue", 1_000, 2031]}, idempotency_key="run-8:append")
    assert other.created and sheet_values(sandbox, "Synergies")[-1][:4] == ["Licensing", "Revenue", "1000", "2031"]  # formats of appended rows: not modelled
    with pytest.raises(ApiBadRequest, match="has no column 'Nope'"):
        connector.perform("append_row", {**payload, "values": {"Nope": 1}}, idempotency_key="run-9")


def test_copy_document_copies_into_the_incident_folder_once_shares_and_undoes(connector, sandbox):
    memo = "1FalconMemo0000000000000000000000000000000000"
    payload = {"source": memo, "folder": "Incidents/Falcon data room", "share_with": ["priya.raman@acme.example", "PRIYA.RAMAN@acme.example"]}
    payload.update({"share_role": "read", "message": "The memo for the deal team."})
    first = connector.perform("copy_document", payload, idempotency_key="run-3:copy")
    again = connector.perform("copy_document", payload, idempotency_key="run-3:copy")  # a retried step: the copy is found
    assert first.created and not again.created and first.external_id == again.external_id
    assert first.tracked.is_done and first.tracked.title == "Project Falcon memo" and first.url.startswith("https://docs.google.com/")
    assert first.data["folder"] == "Incidents/Falcon data room" and first.data["shared_with"] == ["priya.raman@acme.example"]
    created = requests.get(f"{sandbox}/_control/created", timeout=5).json()
    assert [c["kind"] for c in created if c["vendor"] == "google_sheets"] == ["copy", "share"]  # one copy, one invitation
    inside = connector.browse_documents(f"folder:{first.data['folder_id']}")
    assert inside == []  # the copy is a document, not a spreadsheet: the picker lists spreadsheets only
    assert connector.undo("copy_document", external_id=first.external_id, idempotency_key="u1").summary == "Deleted the copy."
    assert connector.undo("copy_document", external_id=first.external_id, idempotency_key="u2").summary == "The copy was already deleted."
    for bad, message in [({"source": "../etc"}, "not a file reference"), ({"folder": "a/../b"}, "cannot contain"), ({"share_role": "owner"}, "is not read")]:
        with pytest.raises(ApiBadRequest, match=message):
            connector.perform("copy_document", {**payload, **bad}, idempotency_key="run-4:copy")


def deal_scenario(organization):
    values = {"title": "Project Falcon", "deal": "006FALCON", "deal_value": {"amount": 1, "currency": "GBP"}, "summary": "Acquire Falcon."}
    values["stakeholders"] = [{"name": "Priya Raman", "email": "priya.raman@acme.example", "role": "legal"}]
    values["jira_project_key"] = "MA"
    return scenario_create(organization=organization, scenario_type="mergers_acquisitions", values=values)


@pytest.mark.django_db
def test_a_playbook_step_writes_the_tracker_row_and_a_second_run_finds_it(sheets, sandbox, organization, owner, django_capture_on_commit_callbacks):
    from playbooks.models import PlaybookStepTemplate, PlaybookTemplate, RunStatus
    from playbooks.services import playbook_activate, playbook_create

    template = PlaybookTemplate.objects.create(scenario_type="mergers_acquisitions", name="Deal tracker")
    PlaybookStepTemplate.objects.create(
        template=template,
        key="tracker",
        name="Mark the deal in the tracker",
        connector_key="google_sheets",
        action="update_tracker",
        payload_template={
            "document": FALCON,
            "table": "Tracker",
            "key_column": "Workstream",
            "key": "{{ scenario.title }}",
            "values": {"Owner": "{{ scenario.deal }}", "Status": "Signing"},
        },
    )
    scenario = deal_scenario(organization)
    outcomes = []
    for _ in range(2):  # the same deal's playbook run twice: the second run updates the row the first added
        playbook = playbook_create(
            organization=organization, scenario=scenario, template=template, integration_bindings={"google_sheets": str(sheets.pk)}, actor=owner
        )
        with django_capture_on_commit_callbacks(execute=True):
            run, _ = playbook_activate(playbook=playbook, actor=owner)
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED, run.error_summary
        outcomes.append(run.step_runs.get(step_key="tracker").external_id)
    rows = sheet_values(sandbox, "Tracker")
    assert [r[0] for r in rows].count("Project Falcon") == 1
    assert next(r for r in rows if r[0] == "Project Falcon")[1:3] == ["006FALCON", "Signing"]
    assert outcomes == [f"{FALCON}#Tracker:Project Falcon"] * 2


@pytest.mark.django_db
def test_spreadsheets_sync_fully_then_through_drives_changes(sheets, sandbox, django_capture_on_commit_callbacks):
    sheets.config = {**sheets.config, "page_size": 4}
    sheets.save(update_fields=["config"])
    source = next(s for s in data_sources_ensure(integration=sheets) if s.entity_type == "spreadsheets")
    job = run_sync(django_capture_on_commit_callbacks, source, full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    stored = SyncRecord.objects.filter(integration=sheets, entity_type="spreadsheets", is_deleted=False)
    assert stored.count() == 10
    falcon = stored.get(external_id=FALCON)
    assert falcon.data["title"] == "Project Falcon financial model" and falcon.data["owner"] == "amara.nwosu@acme.example"
    assert len([r for r in sheets_requests(sandbox) if r["path"].endswith("/drive/v3/files")]) == 3  # 4 + 4 + 2
    before = len(sheets_requests(sandbox))
    requests.post(f"{sandbox}/google_sheets/_sandbox/files/{FALCON}/rename", json={"name": "Falcon model v2"}, timeout=5).raise_for_status()
    requests.post(f"{sandbox}/google_sheets/_sandbox/files/1Q3Budget00000000000000000000000000000000000/trash", timeout=5).raise_for_status()
    job = run_sync(django_capture_on_commit_callbacks, source)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.get(integration=sheets, external_id=FALCON).data["title"] == "Falcon model v2"
    assert SyncRecord.objects.get(integration=sheets, external_id="1Q3Budget00000000000000000000000000000000000").is_deleted
    incremental = [r["path"] for r in sheets_requests(sandbox)[before:] if "/_sandbox/" not in r["path"]]
    assert incremental == ["/google_sheets/drive/v3/changes"]  # only the changes feed from the stored token, no listing


@pytest.mark.django_db
def test_the_watch_channel_registers_and_a_change_syncs_through_the_intake(
    sheets, sandbox, client, api_for, users_by_role, settings, django_capture_on_commit_callbacks
):
    target = HookTarget()  # stands where Bastion's public URL points and records what Drive sends
    try:
        settings.BASTION_PUBLIC_URL = target.url.removesuffix("/hooks/asana")
        registered = api_for(users_by_role[MemberRole.ADMIN]).post(f"/api/integrations/{sheets.pk}/webhook")
        assert registered.status_code in (200, 201), registered.content[:300]
        sheets.refresh_from_db()
        assert sheets.config["webhook_registration"]["expires_at"]
        requests.post(f"{sandbox}/google_sheets/_sandbox/files/{FALCON}/cell", json={"range": "Model!B2", "value": 1_300_000_000}, timeout=5)
        for _ in range(100):
            if len(target.requests) >= 2:
                break
            __import__("time").sleep(0.05)
        sync_message, change = target.requests[0], target.requests[1]
        assert sync_message["headers"]["X-Goog-Resource-State"] == "sync" and change["headers"]["X-Goog-Resource-State"] == "change"

        def relay(message, **override):
            headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in message["headers"].items() if k.lower().startswith("x-goog-")}
            headers.update(override)
            return client.post(f"/api/webhooks/{sheets.pk}", data=b"", content_type="application/json", **headers)

        assert relay(sync_message).status_code == 202
        with django_capture_on_commit_callbacks(execute=True):
            accepted = relay(change)
        assert accepted.status_code == 202
        delivery = WebhookDelivery.objects.filter(integration=sheets).latest("received_at")
        assert delivery.result["syncs"], delivery.result  # a change → an incremental sync of the spreadsheets
        assert relay(change, HTTP_X_GOOG_CHANNEL_TOKEN="forged").status_code == 401
        no_token = {k: v for k, v in change["headers"].items() if k != "X-Goog-Channel-Token"}
        assert relay({"headers": no_token}).status_code == 400
        # Drive channels cannot be extended: renewal opens a new channel (same token and address) and stops the old one.
        connector = shared_connector(sheets, purpose="test")
        old_ids = sheets.config["webhook_registration"]["ids"]
        renewed_until = connector.refresh_webhooks(old_ids)
        assert renewed_until > datetime.now(UTC) + timedelta(days=6)
        old_channel, old_resource, _ = old_ids[0].split("|")
        with pytest.raises(ApiNotFound):  # already stopped by the renewal
            connector.client.post(f"{sandbox}/google_sheets/drive/v3/channels/stop", json={"id": old_channel, "resourceId": old_resource})
        channels = [c for c in requests.get(f"{sandbox}/_control/created", timeout=5).json() if c["vendor"] == "google_sheets" and c["kind"] == "channel"]
        assert len(channels) == 2
    finally:
        target.server.shutdown()


def test_quota_answers_are_waited_out_and_a_missing_scope_is_named(sheets, sandbox, settings):
    requests.put(f"{sandbox}/_control/faults/google_sheets", json={"rate_limit_next": 1, "retry_after": 1}, timeout=5).raise_for_status()
    connector = shared_connector(sheets, purpose="test")
    assert connector.read_document_values(FALCON, ["DealValue"]) == {"DealValue": [[1_250_000_000]]}  # the 429 waited out once
    statuses = [r["status"] for r in sheets_requests(sandbox) if "/v4/spreadsheets/" in r["path"]]
    assert statuses[:2] == [429, 200]
    from integrations.http import BearerAuth, HttpClient

    read_only = requests.post(
        f"{sandbox}/_control/tokens", json={"vendor": "google_sheets", "scopes": ["https://www.googleapis.com/auth/drive.readonly"]}, timeout=5
    ).json()["token"]
    limited = get_connector_class("google_sheets")(client=HttpClient(f"{sandbox}/google_sheets", auth=BearerAuth(read_only)), config={})
    assert limited.read_document_values(FALCON, ["DealValue"]) == {"DealValue": [[1_250_000_000]]}  # drive.readonly reads sheets
    payload = {"document": FALCON, "table": "Tracker", "key_column": "Workstream", "key": "Financing", "values": {"Status": "Reopened"}}
    with pytest.raises(ApiForbidden, match="insufficient authentication scopes"):
        limited.perform("update_tracker", payload, idempotency_key="k")


def test_the_stand_in_kept_to_the_published_discovery_documents(connector, sandbox):
    connector.read_document_values(FALCON, ["DealValue", "Synergies", "Model!A1:C3"])
    connector.browse_documents("", query="Falcon")
    mismatches = [m for m in requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json() if m["vendor"] == "google_sheets"]
    assert mismatches == []
