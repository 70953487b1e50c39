"""Asana, the fifth vendor, added as a spec alone (integrations/connectors/asana/spec.yaml, no Python), end to end over real
HTTP against the declared Asana stand-in: connect, sync with paging and incremental reads, a playbook step creating a
tracked task, and a verified webhook through Bastion's intake (a forged one refused)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from accounts.models import Role
from integrations import registry
from integrations.connectors.base import WebhookRequest
from integrations.models import CredentialType, IntegrationStatus
from integrations.services import credential_store, integration_connect, shared_connector
from playbooks.models import PlaybookStepTemplate, PlaybookTemplate, RunStatus, StepStatus, Task
from playbooks.services import playbook_activate, playbook_create, playbook_run_cancel
from scenarios.models import Scenario, ScenarioDataModel
from sync.models import DataSyncJob, JobStatus, SyncRecord, WebhookDelivery
from sync.services.jobs import data_sources_ensure, sync_start
from tests.conftest import wait_for
from tests.playbooks.conftest import crisis_values
from tests.sandbox.test_declared_sandbox import HookTarget

PAT = "sandbox-asana-pat"
WORKSPACE = "1100000000000001"
PROJECT = "1300000000000001"
PACKAGE = Path(registry.__file__).parent / "connectors" / "asana"


def asana_api(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox}/asana/api/1.0{path}", headers={"Authorization": f"Bearer {PAT}"}, timeout=10, **kwargs)


def asana_requests(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": "asana"}, timeout=5).json()


@pytest.fixture
def asana(sandbox, organization):
    integration = integration_connect(
        organization=organization,
        connector_key="asana",
        credentials={"token": PAT},
        config={"workspace": WORKSPACE, "project": PROJECT},
        base_url=f"{sandbox}/asana/api/1.0",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


def run_sync(django_capture_on_commit_callbacks, source, **kwargs) -> DataSyncJob:
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source, **kwargs)
    return DataSyncJob.objects.get(pk=job.pk)


def test_asana_is_a_spec_alone_and_connects_with_a_personal_access_token(asana, sandbox, organization):
    assert sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__") == ["spec.yaml"]
    manifest = registry.get_connector_class("asana").manifest
    assert [e.key for e in manifest.entities] == ["tasks", "projects", "users"] and [a.key for a in manifest.actions] == ["create_task"]
    assert asana.external_account_id == WORKSPACE
    me = [r for r in asana_requests(sandbox) if r["path"] == "/asana/api/1.0/users/me"]
    assert me and me[-1]["status"] == 200
    refused = integration_connect(
        organization=organization,
        connector_key="asana",
        credentials={"token": "not-a-token"},
        config={"workspace": WORKSPACE, "project": PROJECT},
        base_url=f"{sandbox}/asana/api/1.0",
    )
    refused.refresh_from_db()
    assert refused.status != IntegrationStatus.CONNECTED and "Not Authorized" in refused.last_error


@pytest.mark.django_db
def test_sync_pages_through_every_task_then_reads_only_what_changed(asana, sandbox, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=asana)}
    job = run_sync(django_capture_on_commit_callbacks, sources["tasks"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.filter(integration=asana, entity_type="tasks", is_deleted=False).count() == 130
    pages = [r for r in asana_requests(sandbox) if r["path"] == "/asana/api/1.0/tasks" and r["method"] == "GET"]
    assert len(pages) == 2  # 100 + 30, the second asked with the offset Asana gave
    for entity in ("users", "projects"):
        assert run_sync(django_capture_on_commit_callbacks, sources[entity], full_refresh=True).status == JobStatus.SUCCEEDED
    amara = SyncRecord.objects.get(integration=asana, entity_type="users", data__email="amara.nwosu@acme.example")
    assert amara.data["name"] == "Amara Nwosu"
    assert SyncRecord.objects.filter(integration=asana, entity_type="projects").count() == 2

    # Someone renames a task in Asana: the next sync asks with modified_since and reads that task (and the lookback's).
    requests.patch(f"{sandbox}/asana/_sandbox/records/tasks/1400000000000077", json={"name": "Renamed in Asana"}, timeout=5).raise_for_status()
    job = run_sync(django_capture_on_commit_callbacks, sources["tasks"])
    assert job.status == JobStatus.SUCCEEDED
    renamed = SyncRecord.objects.get(integration=asana, entity_type="tasks", external_id="1400000000000077")
    assert renamed.data["title"] == "Renamed in Asana"
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "asana"}, timeout=5).json()
    assert log[-1]["path"] == "/asana/api/1.0/tasks" and job.records_processed <= 2


@pytest.fixture
def asana_playbook(organization, owner, asana):
    template = PlaybookTemplate.objects.create(scenario_type="crisis_management", name="Asana follow-up")
    PlaybookStepTemplate.objects.create(
        template=template,
        key="follow_up",
        name="Create the follow-up task",
        connector_key="asana",
        action="create_task",
        payload_template={
            "name": "Post-mortem: {{ scenario.title }}",
            "assignee": "{{ scenario.incident_commander.email }}",
            "notes": "{{ scenario.summary }}",
        },
    )
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    scenario = Scenario.objects.create(organization=organization, data_model=data_model, scenario_type="crisis_management", title="DB", values=crisis_values())
    return playbook_create(organization=organization, scenario=scenario, template=template, integration_bindings={"asana": str(asana.pk)}, actor=owner)


def test_a_playbook_step_creates_a_tracked_task_read_back_and_undone(asana_playbook, asana, sandbox, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = playbook_activate(playbook=asana_playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    step = run.step_runs.get(step_key="follow_up")
    assert step.status == StepStatus.SUCCEEDED
    created = asana_api(sandbox, "GET", f"/tasks/{step.external_id}").json()["data"]
    assert created["name"] == "Post-mortem: DB outage" and created["assignee"]["name"] == "Amara Nwosu"
    assert created["projects"][0]["gid"] == PROJECT and created["notes"].startswith("Primary database cluster is down in eu-west.")

    task = Task.objects.get(run=run)
    assert (task.external_id, task.title, task.status, task.is_done) == (step.external_id, "Post-mortem: DB outage", "open", False)
    assert task.owner == "amara.nwosu@acme.example" and task.url == created["permalink_url"]

    # Completed in Asana: the polling backstop reads it back as done; a task deleted there is gone.
    asana_api(sandbox, "PUT", f"/tasks/{step.external_id}", json={"data": {"completed": True}})
    states = shared_connector(asana, purpose="poll").fetch_objects("task", [step.external_id, "1499999999999999"])
    assert (states[step.external_id].status, states[step.external_id].is_done) == ("completed", True)
    assert states["1499999999999999"].status == "deleted"

    with django_capture_on_commit_callbacks(execute=True):
        playbook_run_cancel(run=run, undo=True, actor=owner)
    assert asana_api(sandbox, "GET", f"/tasks/{step.external_id}").status_code == 404
    assert [c["kind"] for c in requests.get(f"{sandbox}/_control/created", params={"vendor": "asana"}, timeout=5).json()] == ["task"]


def test_the_same_step_is_not_created_twice(asana, sandbox):
    connector = shared_connector(asana, purpose="playbooks")
    first = connector.perform("create_task", {"name": "Rotate keys", "assignee": "ben.ops@acme.example"}, idempotency_key="run-1:rotate")
    again = connector.perform("create_task", {"name": "Rotate keys", "assignee": "ben.ops@acme.example"}, idempotency_key="run-1:rotate")
    assert first.created is True and again.created is False and again.external_id == first.external_id
    assert len(requests.get(f"{sandbox}/_control/created", params={"vendor": "asana"}, timeout=5).json()) == 1


@pytest.mark.django_db
def test_bastion_registers_its_webhook_keeps_asanas_secret_and_verifies_deliveries(
    asana, sandbox, client, api_for, users_by_role, settings, django_capture_on_commit_callbacks
):
    """Registration through Bastion's API: Asana handshakes with the target and makes the secret; Bastion keeps that one."""
    target = HookTarget()  # stands where Bastion's public URL points, echoing the handshake as the spec's `handshake` says
    try:
        settings.BASTION_PUBLIC_URL = target.url.removesuffix("/hooks/asana")
        registered = api_for(users_by_role[Role.ADMIN]).post(f"/api/integrations/{asana.pk}/webhook")
        assert registered.status_code == 200, registered.content
        handshake = target.requests[0]
        assert handshake["path"] == f"/api/webhooks/{asana.pk}" and handshake["body"] == b""
        secret = handshake["headers"]["X-Hook-Secret"]
        assert asana.credentials.get(credential_type=CredentialType.WEBHOOK_SECRET).data["secret"] == secret
        hooks = asana_api(sandbox, "GET", "/webhooks", params={"workspace": WORKSPACE}).json()["data"]
        assert [h["gid"] for h in hooks] == [registered.json()["vendor_id"]]

        # The handshake as Bastion's connector answers it: unsigned by Asana's design, the header echoed, nothing stored.
        connector = registry.get_connector_class("asana")
        hello = WebhookRequest("POST", handshake["path"], handshake["headers"], b"", datetime.now(UTC))
        connector.verify_webhook(hello, secret="")
        [answer] = connector.parse_webhook(hello)
        assert answer.action == "ignore" and answer.challenge_headers == {"X-Hook-Secret": secret}
        # And through Bastion's real intake: 200 with the header echoed, nothing stored; a hostile echo is refused.
        echoed = client.post(f"/api/webhooks/{asana.pk}", data=b"", content_type="application/json", HTTP_X_HOOK_SECRET=secret)
        assert echoed.status_code == 200 and echoed["X-Hook-Secret"] == secret and echoed["X-Content-Type-Options"] == "nosniff"
        hostile = client.post(f"/api/webhooks/{asana.pk}", data=b"", content_type="application/json", HTTP_X_HOOK_SECRET="x" * 5000)
        assert hostile.status_code == 400 and "X-Hook-Secret" not in hostile
        assert not WebhookDelivery.objects.filter(integration=asana).exists()

        asana_api(sandbox, "PUT", "/tasks/1400000000000005", json={"data": {"completed": True}})
        delivery = wait_for(lambda: target.deliveries(), message="Asana's signed delivery")[0]

        def relay(body: bytes, signature: str):
            return client.post(f"/api/webhooks/{asana.pk}", data=body, content_type="application/json", HTTP_X_HOOK_SIGNATURE=signature)

        with django_capture_on_commit_callbacks(execute=True):
            accepted = relay(delivery["body"], delivery["headers"]["X-Hook-Signature"])
        assert accepted.status_code == 202, accepted.content
        stored = WebhookDelivery.objects.get(integration=asana)
        assert stored.event_types == ["task.changed"] and {e["external_id"] for e in stored.events} == {"1400000000000005"}

        # A comment (story) and a task's deletion in one delivery: only the task's event is kept, and it deletes.
        story = {
            "action": "added",
            "resource": {"gid": "1600000000000001", "resource_type": "story"},
            "parent": {"gid": "1400000000000006", "resource_type": "task"},
        }
        gone = {"action": "deleted", "resource": {"gid": "1400000000000006", "resource_type": "task"}, "created_at": "2030-01-01T00:00:00.000Z"}
        requests.post(f"{sandbox}/asana/_sandbox/webhooks/{hooks[0]['gid']}/deliver", json={"events": [story, gone]}, timeout=10).raise_for_status()
        mixed = target.deliveries()[-1]
        with django_capture_on_commit_callbacks(execute=True):
            assert relay(mixed["body"], mixed["headers"]["X-Hook-Signature"]).status_code == 202
        latest = WebhookDelivery.objects.filter(integration=asana).exclude(pk=stored.pk).get()
        assert [(e["event_type"], e["action"], e["external_id"]) for e in latest.events] == [("task.deleted", "delete", "1400000000000006")]
    finally:
        target.server.shutdown()


@pytest.mark.django_db
def test_a_signed_delivery_is_accepted_by_the_intake_and_a_forged_one_refused(asana, sandbox, client, django_capture_on_commit_callbacks):
    target = HookTarget()
    try:
        created = asana_api(sandbox, "POST", "/webhooks", json={"data": {"resource": PROJECT, "target": target.url}})
        assert created.status_code == 201, created.text
        # Asana makes the secret and says it in the handshake: that is the secret Bastion keeps for this integration.
        secret = target.requests[0]["headers"]["X-Hook-Secret"]
        credential_store(integration=asana, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": secret})
        asana_api(sandbox, "PUT", "/tasks/1400000000000005", json={"data": {"completed": True}})
        delivery = wait_for(lambda: target.deliveries(), message="Asana's signed delivery")[0]

        def relay(body: bytes, signature: str):
            return client.post(f"/api/webhooks/{asana.pk}", data=body, content_type="application/json", HTTP_X_HOOK_SIGNATURE=signature)

        with django_capture_on_commit_callbacks(execute=True):
            accepted = relay(delivery["body"], delivery["headers"]["X-Hook-Signature"])
        assert accepted.status_code == 202, accepted.content
        stored = WebhookDelivery.objects.get(integration=asana)
        assert stored.event_types == ["task.changed"] and stored.events[0]["external_id"] == "1400000000000005"

        hook_gid = created.json()["data"]["gid"]
        events = json.loads(delivery["body"])["events"]
        requests.post(f"{sandbox}/asana/_sandbox/webhooks/{hook_gid}/deliver", json={"events": events, "forge": True}, timeout=10).raise_for_status()
        forged = target.deliveries()[-1]
        assert relay(forged["body"], forged["headers"]["X-Hook-Signature"]).status_code == 401
        tampered = delivery["body"].replace(b"changed", b"deleted")
        assert relay(tampered, delivery["headers"]["X-Hook-Signature"]).status_code == 401
        unsigned = relay(delivery["body"], "")
        assert unsigned.status_code == 400 and unsigned.json()["error"]["code"] == "missing_signature"
        assert hmac.compare_digest(delivery["headers"]["X-Hook-Signature"], hmac.new(secret.encode(), delivery["body"], hashlib.sha256).hexdigest())
        not_asanas = b'{"type": "event_callback"}'
        malformed = relay(not_asanas, hmac.new(secret.encode(), not_asanas, hashlib.sha256).hexdigest())
        assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed"  # signed, but not Asana's shape
        assert WebhookDelivery.objects.filter(integration=asana).count() == 1
    finally:
        target.server.shutdown()
