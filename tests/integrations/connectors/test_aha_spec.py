"""Aha! as a spec alone (integrations/connectors/aha/spec.yaml), over real HTTP against the declared Aha! stand-in served from
Aha!'s published OpenAPI document: connect, page and incremental reads, a launch step that moves a feature's workflow
status exactly once, read back by polling and put back on undo."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from integrations import registry
from integrations.models import IntegrationStatus
from integrations.services import integration_connect, shared_connector
from playbooks.models import PlaybookStepTemplate, PlaybookTemplate, RunStatus, StepStatus, Task
from playbooks.services import playbook_activate, playbook_create, playbook_run_cancel
from playbooks.services.status import playbook_tasks_poll
from scenarios.models import Scenario, ScenarioDataModel
from sync.models import JobStatus, SyncRecord
from sync.services.jobs import data_sources_ensure
from tests.conftest import run_sync
from tests.playbooks.conftest import crisis_values

API_KEY = "sandbox-aha-api-key"
PRODUCT = "6100000000000000001"
PACKAGE = Path(registry.__file__).parent / "connectors" / "aha"


def aha_api(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox}/aha/api/v1{path}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10, **kwargs)


def aha_requests(sandbox: str, method: str | None = None, path_part: str = "") -> list[dict]:
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "aha"}, timeout=5).json()
    return [r for r in log if (method is None or r["method"] == method) and path_part in r["path"]]


def feature(sandbox: str, reference: str) -> dict:
    return aha_api(sandbox, "GET", f"/features/{reference}").json()["feature"]


@pytest.fixture
def aha(sandbox, organization):
    integration = integration_connect(
        organization=organization,
        connector_key="aha",
        credentials={"api_key": API_KEY},
        config={"product": PRODUCT, "page_size": 20},
        base_url=f"{sandbox}/aha/api/v1",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


def test_aha_is_a_spec_alone_and_connects_with_an_api_key(aha, sandbox, organization):
    assert sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__") == ["README.md", "spec.yaml"]
    manifest = registry.get_connector_class("aha").manifest
    assert [e.key for e in manifest.entities] == ["features", "releases", "ideas"]
    assert [a.key for a in manifest.actions] == ["update_feature_status"]
    assert aha.external_account_id == PRODUCT
    assert [r["status"] for r in aha_requests(sandbox, "GET", "/api/v1/me")] == [200]
    refused = integration_connect(
        organization=organization,
        connector_key="aha",
        credentials={"api_key": "not-a-key"},
        config={"product": PRODUCT},
        base_url=f"{sandbox}/aha/api/v1",
    )
    refused.refresh_from_db()
    assert refused.status != IntegrationStatus.CONNECTED and "Unauthorized" in refused.last_error


@pytest.mark.django_db
def test_sync_pages_through_features_then_reads_only_what_changed(aha, sandbox, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=aha)}
    job = run_sync(django_capture_on_commit_callbacks, sources["features"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.filter(integration=aha, entity_type="features", is_deleted=False).count() == 45
    assert len(aha_requests(sandbox, "GET", f"/products/{PRODUCT}/features")) == 3  # 20 + 20 + 5, per_page=20
    nim7 = SyncRecord.objects.get(integration=aha, entity_type="features", data__reference_num="NIM-7").data
    assert (nim7["status"], nim7["done"], nim7["owner"], nim7["release"]) == ("In development", False, "marco.eng@acme.example", "Nimbus 1.0 launch")
    for entity, count in (("releases", 2), ("ideas", 2)):
        assert run_sync(django_capture_on_commit_callbacks, sources[entity], full_refresh=True).status == JobStatus.SUCCEEDED
        assert SyncRecord.objects.filter(integration=aha, entity_type=entity).count() == count
    assert SyncRecord.objects.get(integration=aha, entity_type="ideas", data__reference_num="NIM-I-1").data["votes"] == 42

    # Someone ships a feature in Aha!: the next sync asks with updated_since and reads just that (and the look-back minute), in one page.
    requests.patch(f"{sandbox}/aha/_sandbox/records/features/6400000000000000012", json={"workflow_status": {"name": "Shipped"}}, timeout=5).raise_for_status()
    job = run_sync(django_capture_on_commit_callbacks, sources["features"])
    assert job.status == JobStatus.SUCCEEDED and job.records_processed <= 2  # the change and the look-back minute's
    assert len(aha_requests(sandbox, "GET", f"/products/{PRODUCT}/features")) == 4
    shipped = SyncRecord.objects.get(integration=aha, entity_type="features", external_id="6400000000000000012").data
    assert (shipped["status"], shipped["done"]) == ("Shipped", True)


@pytest.fixture
def launch_playbook(organization, owner, aha):
    template = PlaybookTemplate.objects.create(scenario_type="crisis_management", name="Launch readiness")
    PlaybookStepTemplate.objects.create(
        template=template,
        key="ready_to_ship",
        name="Mark the launch feature ready to ship",
        connector_key="aha",
        action="update_feature_status",
        payload_template={"feature": "NIM-3", "status": "Ready to ship"},
    )
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    scenario = Scenario.objects.create(
        organization=organization, data_model=data_model, scenario_type="crisis_management", title="Launch", values=crisis_values()
    )
    return playbook_create(organization=organization, scenario=scenario, template=template, integration_bindings={"aha": str(aha.pk)}, actor=owner)


def test_a_launch_step_moves_the_feature_is_read_back_and_put_back_on_undo(launch_playbook, aha, sandbox, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = playbook_activate(playbook=launch_playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    step = run.step_runs.get(step_key="ready_to_ship")
    assert step.status == StepStatus.SUCCEEDED and step.external_id == "6400000000000000003"
    assert feature(sandbox, "NIM-3")["workflow_status"]["name"] == "Ready to ship"
    task = Task.objects.get(run=run)
    assert (task.title, task.status, task.is_done, task.owner) == ("NIM-3 Launch feature 3", "Ready to ship", False, "marco.eng@acme.example")
    assert task.external_key == "NIM-3"  # the feature's own key: the war room shows it and the poll reads the feature by it
    assert playbook_tasks_poll() == 0  # read back by its key: still Ready to ship, not "deleted"
    task.refresh_from_db()
    assert (task.status, task.is_done) == ("Ready to ship", False)

    # Shipped in Aha! (a "complete" status): the polling backstop reads it back as done; a feature deleted there is gone.
    requests.patch(f"{sandbox}/aha/_sandbox/records/features/{step.external_id}", json={"workflow_status": {"name": "Shipped"}}, timeout=5).raise_for_status()
    states = shared_connector(aha, purpose="poll").fetch_objects("task", [step.external_id, "6499999999999999999"])
    assert (states[step.external_id].status, states[step.external_id].is_done) == ("Shipped", True)
    assert states["6499999999999999999"].status == "deleted"

    with django_capture_on_commit_callbacks(execute=True):
        playbook_run_cancel(run=run, undo=True, actor=owner)
    assert feature(sandbox, "NIM-3")["workflow_status"]["name"] == "In development"  # the status before the step
    assert len(aha_requests(sandbox, "PUT", "/features/")) == 2  # the step's move and the undo's


def test_the_same_move_is_made_once_and_a_move_that_changed_nothing_undoes_nothing(aha, sandbox):
    connector = shared_connector(aha, purpose="playbooks")
    first = connector.perform("update_feature_status", {"feature": "NIM-5", "status": "Ready to ship"}, idempotency_key="run-1:ship")
    again = connector.perform("update_feature_status", {"feature": "NIM-5", "status": "ready to ship"}, idempotency_key="run-1:ship")
    assert (first.created, first.data["key"], first.data["undo_key"], first.tracked.status) == (True, "NIM-5", "In development", "Ready to ship")
    assert (again.created, again.external_id, again.data.get("undo_key") or "") == (False, first.external_id, "")
    assert len(aha_requests(sandbox, "PUT", "/features/")) == 1

    undone = connector.undo("update_feature_status", external_id=again.external_id, key="", payload={}, idempotency_key="undo-1")
    assert undone.created is False and len(aha_requests(sandbox, "PUT", "/features/")) == 1  # nothing to put back, nothing sent


def test_bad_input_is_refused_before_any_call_and_an_unknown_feature_is_a_clear_not_found(aha, sandbox):
    from integrations.errors import ApiBadRequest, ApiNotFound

    connector = shared_connector(aha, purpose="playbooks")
    before = len(aha_requests(sandbox))
    with pytest.raises(ApiBadRequest, match="workflow status"):
        connector.perform("update_feature_status", {"feature": "NIM-5", "status": ""}, idempotency_key="k1")
    assert len(aha_requests(sandbox)) == before
    with pytest.raises(ApiNotFound, match="NIM-999"):
        connector.perform("update_feature_status", {"feature": "NIM-999", "status": "Shipped"}, idempotency_key="k2")
    assert aha_requests(sandbox, "PUT") == []
