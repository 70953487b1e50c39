"""Brandfolder (integrations/connectors/brandfolder/: spec + hooks for the asset picker and sharing), over real HTTP against
the declared Brandfolder stand-in served from Brandfolder's published OpenAPI bundle: connect, paged reads, the forms'
asset picker through Bastion's documents API, and share_collection inviting each person exactly once, undone."""

from __future__ import annotations

import pytest
import requests

from accounts.models import Role
from integrations import registry
from integrations.connectors.base import Capability
from integrations.errors import ApiBadRequest
from integrations.models import IntegrationStatus
from integrations.services import integration_connect, shared_connector
from playbooks.models import PlaybookStepTemplate, PlaybookTemplate, RunStatus, StepStatus
from playbooks.services import playbook_activate, playbook_create, playbook_run_cancel
from scenarios.models import Scenario, ScenarioDataModel
from sync.models import JobStatus, SyncRecord
from sync.services.jobs import data_sources_ensure
from tests.conftest import run_sync
from tests.playbooks.conftest import crisis_values

API_KEY = "sandbox-brandfolder-api-key"
BRANDFOLDER = "bfbrand-nimbus-00001"
LAUNCH_KIT = "bfcol1-launchkit-001"


def bf_api(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox}/brandfolder/api/v4{path}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10, **kwargs)


def bf_requests(sandbox: str, method: str | None = None, path_part: str = "") -> list[dict]:
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "brandfolder"}, timeout=5).json()
    return [r for r in log if (method is None or r["method"] == method) and path_part in r["path"]]


def invited_emails(sandbox: str) -> list[str]:
    return sorted(i["attributes"]["email"] for i in bf_api(sandbox, "GET", f"/collections/{LAUNCH_KIT}/invitations").json()["data"])


@pytest.fixture
def brandfolder(sandbox, organization):
    integration = integration_connect(
        organization=organization,
        connector_key="brandfolder",
        credentials={"api_key": API_KEY},
        config={"brandfolder": BRANDFOLDER, "page_size": 5},
        base_url=f"{sandbox}/brandfolder/api/v4",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


def test_brandfolder_connects_with_an_api_key_and_offers_the_asset_picker(brandfolder, sandbox, organization):
    connector_class = registry.get_connector_class("brandfolder")
    assert connector_class.supports(Capability.DOCUMENTS) and not connector_class.supports(Capability.WEBHOOKS)
    assert [a.key for a in connector_class.manifest.actions] == ["share_collection"]
    assert brandfolder.external_account_id == BRANDFOLDER
    refused = integration_connect(
        organization=organization,
        connector_key="brandfolder",
        credentials={"api_key": "not-a-key"},
        config={"brandfolder": BRANDFOLDER},
        base_url=f"{sandbox}/brandfolder/api/v4",
    )
    refused.refresh_from_db()
    assert refused.status != IntegrationStatus.CONNECTED and "API key is missing or invalid" in refused.last_error


@pytest.mark.django_db
def test_sync_pages_through_collections_and_assets(brandfolder, sandbox, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=brandfolder)}
    job = run_sync(django_capture_on_commit_callbacks, sources["assets"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.filter(integration=brandfolder, entity_type="assets", is_deleted=False).count() == 12
    assert len(bf_requests(sandbox, "GET", f"/brandfolders/{BRANDFOLDER}/assets")) == 3  # 5 + 5 + 2 (per=5, meta.total_count 12)
    logo = SyncRecord.objects.get(integration=brandfolder, entity_type="assets", external_id="bfast1-logo-primary01").data
    assert logo["name"] == "Nimbus logo (primary)" and logo["collections"] == [LAUNCH_KIT, "bfcol1-pressroom-002"] and logo["approved"] is True
    assert run_sync(django_capture_on_commit_callbacks, sources["collections"], full_refresh=True).status == JobStatus.SUCCEEDED
    names = sorted(SyncRecord.objects.filter(integration=brandfolder, entity_type="collections").values_list("data__name", flat=True))
    assert names == ["Nimbus launch kit", "Press room"]

    # An asset removed in Brandfolder is marked deleted after the next full read.
    requests.delete(f"{sandbox}/brandfolder/_sandbox/records/assets/bfast1-press-release3", timeout=5).raise_for_status()
    assert run_sync(django_capture_on_commit_callbacks, sources["assets"], full_refresh=True).status == JobStatus.SUCCEEDED
    assert SyncRecord.objects.get(integration=brandfolder, entity_type="assets", external_id="bfast1-press-release3").is_deleted


@pytest.mark.django_db
def test_the_forms_asset_picker_lists_collections_then_assets_and_searches(brandfolder, sandbox, api_for, users_by_role):
    api = api_for(users_by_role[Role.EDITOR])
    url = f"/api/integrations/{brandfolder.pk}/documents"
    top = api.get(url)
    assert top.status_code == 200, top.content
    assert [(i["id"], i["name"], i["is_folder"], i["path"]) for i in top.json()["items"]] == [
        (f"collection:{LAUNCH_KIT}", "Nimbus launch kit", True, "Nimbus brand"),
        ("collection:bfcol1-pressroom-002", "Press room", True, "Nimbus brand"),
    ]
    kit = api.get(url, {"folder": f"collection:{LAUNCH_KIT}"}).json()["items"]
    assert [i["name"] for i in kit] == ["Nimbus logo (primary)", "Launch hero banner", "Press release (embargoed)"]
    assert {(i["is_folder"], i["path"]) for i in kit} == {(False, "Nimbus brand / Nimbus launch kit")}
    assert kit[0]["id"] == "asset:bfast1-logo-primary01" and kit[0]["url"] == "https://cdn.bfldr.example/nimbus/logo-primary.png"
    assert [i["name"] for i in api.get(url, {"q": "hero"}).json()["items"]] == ["Launch hero banner"]
    assert [i["name"] for i in api.get(url, {"folder": "collection:bfcol1-pressroom-002", "q": "screenshot 3"}).json()["items"]] == ["App screenshot 3"]

    for folder in ("asset:bfast1-logo-primary01", "collection:../../organizations"):
        refused = api.get(url, {"folder": folder})
        assert refused.status_code == 400 and refused.json()["error"]["fields"]["folder"]
    assert api_for(users_by_role[Role.VIEWER]).get(url).status_code == 403


def test_share_collection_invites_each_person_once_and_undo_withdraws_what_it_sent(brandfolder, sandbox):
    connector = shared_connector(brandfolder, purpose="playbooks")
    payload = {
        "collection": LAUNCH_KIT,
        # Dana already has a permission, the agency is already invited: only the two new people are invited.
        "emails": ["dana.design@acme.example", "Agency@partner.example", "new.pm@acme.example", "press@acme.example"],
        "permission": "guest",
        "message": "Launch kit for Thursday",
    }
    first = connector.perform("share_collection", payload, idempotency_key="run-1:share")
    assert first.created is True and first.external_id == LAUNCH_KIT and first.link_text == "Nimbus launch kit"
    assert first.data["invited"] == ["new.pm@acme.example", "press@acme.example"]
    assert first.data["already"] == ["dana.design@acme.example", "agency@partner.example"]
    assert first.summary == "2 invited to Nimbus launch kit, 2 already had access"
    assert invited_emails(sandbox) == ["agency@partner.example", "new.pm@acme.example", "press@acme.example"]

    again = connector.perform("share_collection", payload, idempotency_key="run-1:share")
    assert again.created is False and again.data["key"] == "" and len(bf_requests(sandbox, "POST", "/invitations")) == 2

    connector.undo("share_collection", external_id=LAUNCH_KIT, key=first.data["key"], payload=payload, idempotency_key="undo-1")
    assert invited_emails(sandbox) == ["agency@partner.example"]  # the invitation the step did not send stays
    again_undone = connector.undo("share_collection", external_id=LAUNCH_KIT, key=first.data["key"], payload=payload, idempotency_key="undo-1")
    assert again_undone.summary == "0 invitation(s) withdrawn"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"collection": LAUNCH_KIT, "emails": ["a@acme.example"], "permission": "owner"}, "shared as guest, collaborator, admin"),
        ({"collection": LAUNCH_KIT, "emails": ["not an email"], "permission": "guest"}, "Not an e-mail address"),
        ({"collection": LAUNCH_KIT, "emails": [], "permission": "guest"}, "at least one person"),
        ({"collection": "../organizations", "emails": ["a@acme.example"]}, "Not a Brandfolder collection id"),
    ],
)
def test_bad_share_input_is_refused_before_any_call(brandfolder, sandbox, payload, message):
    connector = shared_connector(brandfolder, purpose="playbooks")
    before = len(bf_requests(sandbox))
    with pytest.raises(ApiBadRequest, match=message):
        connector.perform("share_collection", payload, idempotency_key="k")
    assert len(bf_requests(sandbox)) == before


def test_a_launch_playbook_shares_the_kit_and_its_undo_withdraws_the_invitations(organization, owner, brandfolder, sandbox, django_capture_on_commit_callbacks):
    template = PlaybookTemplate.objects.create(scenario_type="crisis_management", name="Launch day")
    PlaybookStepTemplate.objects.create(
        template=template,
        key="share_kit",
        name="Share the launch kit with the agency team",
        connector_key="brandfolder",
        action="share_collection",
        payload_template={"collection": LAUNCH_KIT, "emails": ["{{ scenario.incident_commander.email }}"], "permission": "collaborator"},
    )
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    scenario = Scenario.objects.create(
        organization=organization, data_model=data_model, scenario_type="crisis_management", title="Launch", values=crisis_values()
    )
    playbook = playbook_create(
        organization=organization, scenario=scenario, template=template, integration_bindings={"brandfolder": str(brandfolder.pk)}, actor=owner
    )
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = playbook_activate(playbook=playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    step = run.step_runs.get(step_key="share_kit")
    assert step.status == StepStatus.SUCCEEDED and step.external_id == LAUNCH_KIT
    assert invited_emails(sandbox) == ["agency@partner.example", "amara.nwosu@acme.example"]
    with django_capture_on_commit_callbacks(execute=True):
        playbook_run_cancel(run=run, undo=True, actor=owner)
    assert invited_emails(sandbox) == ["agency@partner.example"]
