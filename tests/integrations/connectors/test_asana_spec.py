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
from integrations.connectors.base import TASK_INPUT, BaseConnector, WebhookRequest
from integrations.connectors.base import Role as BaseRole
from integrations.errors import ApiBadRequest, ApiRateLimited
from integrations.models import CredentialType, IntegrationStatus
from integrations.services import credential_store, integration_connect, shared_connector
from playbooks.models import PlaybookStepTemplate, PlaybookTemplate, RunStatus, StepStatus, Task
from playbooks.services import playbook_activate, playbook_create, playbook_run_cancel
from playbooks.services.status import playbook_tasks_poll, webhook_events_apply
from scenarios.models import Scenario, ScenarioDataModel
from sync.models import JobStatus, SyncRecord, WebhookDelivery
from sync.services.jobs import data_sources_ensure
from sync.services.webhooks import event_as_dict
from tests.conftest import run_sync, wait_for
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


def test_asana_is_a_spec_alone_and_connects_with_a_personal_access_token(asana, sandbox, organization):
    assert sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__") == ["README.md", "spec.yaml"]  # no Python
    manifest = registry.get_connector_class("asana").manifest
    assert [e.key for e in manifest.entities] == ["tasks", "projects", "sections", "workspaces", "users"]
    assert [a.key for a in manifest.actions] == ["create_task", "add_comment", "complete_task"] and manifest.roles == (BaseRole.TASKS,)
    create_task = next(a for a in manifest.actions if a.key == "create_task")
    assert {k: v for k, v in create_task.input_schema.items() if k in TASK_INPUT} == dict(TASK_INPUT)  # the tasks role's payload
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
            "title": "Post-mortem: {{ scenario.title }}",
            "assignee": "{{ scenario.incident_commander.email }}",
            "notes": "{{ scenario.summary }}",
            "due_on": "2030-01-31",
            "section": "Launch day",
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
    assert created["due_on"] == "2030-01-31" and created["memberships"][0]["section"]["name"] == "Launch day"

    task = Task.objects.get(run=run)
    assert (task.external_id, task.title, task.status, task.is_done) == (step.external_id, "Post-mortem: DB outage", "open", False)
    assert task.owner == "amara.nwosu@acme.example" and task.url == created["permalink_url"]

    assert task.details["due_on"] == "2030-01-31"

    # Completed in Asana: the war room's polling backstop reads it back as done; a task deleted there is gone.
    asana_api(sandbox, "PUT", f"/tasks/{step.external_id}", json={"data": {"completed": True}})
    assert playbook_tasks_poll() == 1
    task.refresh_from_db()
    assert (task.status, task.is_done, task.status_source) == ("completed", True, "poll")
    states = shared_connector(asana, purpose="poll").fetch_objects("task", [step.external_id, "1499999999999999"])
    assert (states[step.external_id].status, states[step.external_id].is_done) == ("completed", True)
    assert states["1499999999999999"].status == "deleted"

    with django_capture_on_commit_callbacks(execute=True):
        playbook_run_cancel(run=run, undo=True, actor=owner)
    assert asana_api(sandbox, "GET", f"/tasks/{step.external_id}").status_code == 404
    assert [c["kind"] for c in requests.get(f"{sandbox}/_control/created", params={"vendor": "asana"}, timeout=5).json()] == ["task"]


def test_a_delivery_naming_only_the_task_reads_it_back_into_the_war_room(asana_playbook, asana, sandbox, owner, django_capture_on_commit_callbacks):
    """Asana's events carry ids, not state: the war room reads the named task at once instead of waiting for the poll."""
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = playbook_activate(playbook=asana_playbook, actor=owner)
    task = Task.objects.get(run=run)
    asana_api(sandbox, "PUT", f"/tasks/{task.external_id}", json={"data": {"completed": True}})
    body = json.dumps(
        {"events": [{"action": "changed", "resource": {"gid": task.external_id, "resource_type": "task"}, "created_at": "2030-01-01T00:00:00.000Z"}]}
    )
    request = WebhookRequest(method="POST", url="https://bastion.example/api/webhooks/x", headers={}, body=body.encode(), received_at=datetime.now(UTC))
    events = [event_as_dict(event) for event in registry.get_connector_class("asana").parse_webhook(request)]
    assert events and not events[0].get("record")  # the delivery says which task changed, not how
    reads_before = len(asana_requests(sandbox))
    assert webhook_events_apply(str(asana.pk), events) == 1
    task.refresh_from_db()
    assert (task.status, task.is_done, task.status_source) == ("completed", True, "webhook")
    assert len(asana_requests(sandbox)) == reads_before + 1  # one read (batched when several tasks are named)
    assert webhook_events_apply(str(asana.pk), events) == 0  # a done task is not read again


def test_the_same_step_is_not_created_twice(asana, sandbox):
    connector = shared_connector(asana, purpose="playbooks")
    first = connector.perform("create_task", {"title": "Rotate keys", "assignee": "ben.ops@acme.example"}, idempotency_key="run-1:rotate")
    again = connector.perform("create_task", {"title": "Rotate keys", "assignee": "ben.ops@acme.example"}, idempotency_key="run-1:rotate")
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

        # A section added to the project in Asana: delivered (the registration filters tasks and sections), a sections sync.
        section = asana_api(sandbox, "POST", f"/projects/{PROJECT}/sections", json={"data": {"name": "Post-launch"}}).json()["data"]
        added = wait_for(lambda: [d for d in target.deliveries() if b'"section"' in d["body"]], message="the section's delivery")[0]
        with django_capture_on_commit_callbacks(execute=True):
            assert relay(added["body"], added["headers"]["X-Hook-Signature"]).status_code == 202
        newest = WebhookDelivery.objects.filter(integration=asana, event_types=["section.added"]).get()
        assert [(e["entity"], e["action"], e["external_id"]) for e in newest.events] == [("sections", "sync", section["gid"])]
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


def batch_calls(sandbox: str) -> int:
    return sum(1 for r in asana_requests(sandbox) if r["path"] == "/asana/api/1.0/batch")


def created_tasks(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "asana"}, timeout=5).json()


def launch_timeline(count: int, prefix: str = "Launch") -> list[dict]:
    people = ["amara.nwosu@acme.example", "ben.ops@acme.example", "ada.admin@acme.example"]
    return [
        {"title": f"{prefix} task {n}", "assignee": people[n % 3], "due_on": f"2030-02-{n % 28 + 1:02d}", "section": "Launch day" if n % 2 else None}
        for n in range(count)
    ]


def test_thirty_tasks_go_in_three_batch_calls_instead_of_thirty_and_a_repeat_creates_nothing(asana, sandbox):
    connector = shared_connector(asana, purpose="playbooks")
    # Before: one POST /tasks per task (the contract's default perform_bulk).
    before = BaseConnector.perform_bulk(connector, "create_task", launch_timeline(30, "Old"), idempotency_keys=[f"old:{n}" for n in range(30)], known_new=True)
    assert all(not isinstance(r, Exception) for r in before)
    calls_before = len([r for r in asana_requests(sandbox) if r["method"] == "POST"])
    assert calls_before == 30
    requests.post(f"{sandbox}/_control/reset", timeout=5).raise_for_status()

    payloads, keys = launch_timeline(30), [f"run-9:launch:{n}" for n in range(30)]
    results = connector.perform_bulk("create_task", payloads, idempotency_keys=keys, known_new=True)
    assert all(not isinstance(r, Exception) for r in results), [r for r in results if isinstance(r, Exception)]
    log = asana_requests(sandbox)
    # After: Asana's batch, 10 actions a call, results by position; the section named was looked up once for all 15.
    assert batch_calls(sandbox) == 3 and len(log) == 4 and [r["path"] for r in log][0].endswith(f"/projects/{PROJECT}/sections")
    assert [r.external_id for r in results] == [c["id"] for c in created_tasks(sandbox)]
    assert [r.tracked.title for r in results] == [p["title"] for p in payloads] and all(r.created for r in results)
    first, second = (asana_api(sandbox, "GET", f"/tasks/{results[n].external_id}").json()["data"] for n in (0, 1))
    assert (first["assignee"]["name"], first["due_on"], first["memberships"]) == ("Amara Nwosu", "2030-02-01", [])
    assert second["memberships"][0]["section"]["name"] == "Launch day" and second["projects"][0]["gid"] == PROJECT
    assert results[2].tracked.owner == "ada.admin@acme.example" and results[2].tracked.details["due_on"] == "2030-02-03"

    # The same step again (a retried chunk): one search finds every marker, nothing is sent, nothing is duplicated.
    again = connector.perform_bulk("create_task", payloads, idempotency_keys=keys, known_new=False)
    assert [r.external_id for r in again] == [r.external_id for r in results] and not any(r.created for r in again)
    assert batch_calls(sandbox) == 3 and len(created_tasks(sandbox)) == 30
    assert requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json() == []


def test_a_rate_limited_batch_fails_only_its_chunk_and_its_retry_never_duplicates(asana, sandbox):
    connector = shared_connector(asana, purpose="playbooks")
    payloads, keys = [{**p, "section": None} for p in launch_timeline(25)], [f"run-7:{n}" for n in range(25)]  # no lookup: the batch is first
    requests.put(f"{sandbox}/_control/faults/asana", json={"rate_limit_next": 1, "retry_after": 2}, timeout=5).raise_for_status()
    results = connector.perform_bulk("create_task", payloads, idempotency_keys=keys, known_new=True)
    # Asana refuses the whole batch for a limit: its ten items wait for a retry, the other chunks went through.
    assert [type(r).__name__ for r in results[:10]] == ["ApiRateLimited"] * 10 and results[0].retry_after == 2
    assert all(not isinstance(r, Exception) for r in results[10:]) and len(created_tasks(sandbox)) == 15
    retried = connector.perform_bulk("create_task", payloads, idempotency_keys=keys, known_new=False)
    assert all(not isinstance(r, Exception) for r in retried)
    assert sum(r.created for r in retried) == 10 and len(created_tasks(sandbox)) == 25
    assert {r.external_id for r in retried} == {c["id"] for c in created_tasks(sandbox)}
    # A refused item fails alone: a section that does not exist is a clear 400, before any call.
    mixed = connector.perform_bulk(
        "create_task", [{"title": "Fine"}, {"title": "Lost", "section": "No such section"}, {"title": ""}], idempotency_keys=["m1", "m2", "m3"], known_new=True
    )
    assert not isinstance(mixed[0], Exception) and isinstance(mixed[1], ApiBadRequest) and isinstance(mixed[2], ApiBadRequest)
    assert "no section named No such section" in str(mixed[1]) and "needs a title" in str(mixed[2])
    # One Asana refuses inside the batch (an assignee it does not know) fails alone too, with Asana's message.
    refused = connector.perform_bulk(
        "create_task", [{"title": "Ok"}, {"title": "Who", "assignee": "nobody@acme.example"}], idempotency_keys=["r1", "r2"], known_new=True
    )
    assert not isinstance(refused[0], Exception) and isinstance(refused[1], ApiBadRequest) and "assignee: Not a recognized ID" in str(refused[1])
    assert isinstance(results[0], ApiRateLimited)


def test_sections_and_workspaces_sync_and_a_task_lands_in_a_section_by_gid_or_name(asana, sandbox, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=asana)}
    for entity in ("sections", "workspaces"):
        job = run_sync(django_capture_on_commit_callbacks, sources[entity], full_refresh=True)
        assert job.status == JobStatus.SUCCEEDED, job.last_error
    names = sorted(SyncRecord.objects.filter(integration=asana, entity_type="sections").values_list("data__name", flat=True))
    assert names == ["After launch", "Launch day", "To do"]
    acme = SyncRecord.objects.get(integration=asana, entity_type="workspaces")
    assert (acme.external_id, acme.data["name"], acme.data["is_organization"]) == (WORKSPACE, "Acme", True)

    connector = shared_connector(asana, purpose="playbooks")
    by_gid = connector.perform("create_task", {"title": "Retro", "section": "1500000000000003"}, idempotency_key="s1", known_new=True)
    by_name = connector.perform("create_task", {"title": "Go/no-go", "section": "launch DAY"}, idempotency_key="s2", known_new=True)
    sections = {
        t: asana_api(sandbox, "GET", f"/tasks/{r.external_id}").json()["data"]["memberships"][0]["section"]["name"]
        for t, r in (("gid", by_gid), ("name", by_name))
    }
    assert sections == {"gid": "After launch", "name": "Launch day"}
    with pytest.raises(ApiBadRequest, match="no section named Party"):
        connector.perform("create_task", {"title": "x", "section": "Party"}, idempotency_key="s3", known_new=True)
    with pytest.raises(ApiBadRequest, match="due_on must be a date"):
        connector.perform("create_task", {"title": "x", "due_on": "next friday"}, idempotency_key="s4", known_new=True)
    job = run_sync(django_capture_on_commit_callbacks, sources["tasks"], full_refresh=True)
    assert SyncRecord.objects.get(integration=asana, entity_type="tasks", external_id=by_name.external_id).data["section"] == "Launch day"
    assert requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json() == []


def test_a_comment_is_posted_once_and_a_task_completed_then_reopened_by_undo(asana, sandbox):
    connector = shared_connector(asana, purpose="playbooks")
    task = "1400000000000012"
    comment = connector.perform("add_comment", {"task": task, "text": "Launch moved to 10:00"}, idempotency_key="run-3:comment", known_new=True)
    again = connector.perform("add_comment", {"task": task, "text": "Launch moved to 10:00"}, idempotency_key="run-3:comment")
    assert comment.created and not again.created and again.external_id == comment.external_id
    stories = asana_api(sandbox, "GET", f"/tasks/{task}/stories", params={"opt_fields": "text"}).json()["data"]
    assert len(stories) == 1 and stories[0]["text"].startswith("Launch moved to 10:00\n\n") and stories[0]["created_by"]["name"] == "Ada Admin"
    with pytest.raises(ApiBadRequest, match="task must be an Asana task gid"):
        connector.perform("add_comment", {"task": "../users/me", "text": "x"}, idempotency_key="run-3:bad")

    done = connector.perform("complete_task", {"task": task}, idempotency_key="run-3:complete")
    assert done.external_id == task and done.data["completed"] is True and done.created is False
    assert connector.perform("complete_task", {"task": task}, idempotency_key="run-3:complete").data["completed"] is True  # again: same state
    assert asana_api(sandbox, "GET", f"/tasks/{task}").json()["data"]["completed"] is True
    connector.undo("complete_task", external_id=task, idempotency_key="run-3:complete:undo")
    assert asana_api(sandbox, "GET", f"/tasks/{task}").json()["data"]["completed"] is False
    connector.undo("add_comment", external_id=comment.external_id, idempotency_key="run-3:comment:undo")
    assert asana_api(sandbox, "GET", f"/tasks/{task}/stories").json()["data"] == []
    with pytest.raises(ApiBadRequest):
        connector.perform("complete_task", {"task": ""}, idempotency_key="run-3:empty")
    assert requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json() == []


def test_a_launch_timeline_step_for_the_tasks_role_makes_thirty_tracked_tasks_in_three_batch_calls(
    organization, owner, asana, sandbox, django_capture_on_commit_callbacks
):
    """The launch scenario's timeline as one fanned-out bulk step on @tasks: Asana plays the role, 10 tasks per batch call."""
    template = PlaybookTemplate.objects.create(scenario_type="crisis_management", name="Launch timeline")
    items = [{"key": f"t{n}", **{k: v or "" for k, v in item.items()}} for n, item in enumerate(launch_timeline(30, "Launch step"))]
    PlaybookStepTemplate.objects.create(
        template=template,
        key="timeline",
        name="Launch timeline",
        connector_key="@tasks",
        action="create_task",
        for_each="items",
        items=items,
        is_bulk=True,
        payload_template={"title": "{{ item.title }}", "assignee": "{{ item.assignee }}", "due_on": "{{ item.due_on }}", "section": "{{ item.section }}"},
    )
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    scenario = Scenario.objects.create(
        organization=organization, data_model=data_model, scenario_type="crisis_management", title="Launch", values=crisis_values()
    )
    playbook = playbook_create(organization=organization, scenario=scenario, template=template, integration_bindings={"@tasks": str(asana.pk)}, actor=owner)
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = playbook_activate(playbook=playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    assert batch_calls(sandbox) == 3 and len(created_tasks(sandbox)) == 30
    tasks = Task.objects.filter(run=run).order_by("title")
    assert tasks.count() == 30 and {t.owner for t in tasks} == {"amara.nwosu@acme.example", "ben.ops@acme.example", "ada.admin@acme.example"}
    assert all(t.integration_id == asana.pk and not t.is_done for t in tasks)
    # Two are completed in Asana: the war room's poll reads them back as done.
    for task in tasks[:2]:
        asana_api(sandbox, "PUT", f"/tasks/{task.external_id}", json={"data": {"completed": True}})
    asana_api(sandbox, "DELETE", f"/tasks/{tasks[2].external_id}")
    before = len(asana_requests(sandbox))
    assert playbook_tasks_poll() == 3
    assert Task.objects.filter(run=run, is_done=True, status="completed").count() == 2
    assert Task.objects.get(pk=tasks[2].pk).status == "deleted"
    # The 30 open tasks were read in Asana's batch, 10 a call, not one GET each.
    assert [r["path"] for r in asana_requests(sandbox)[before:]] == ["/asana/api/1.0/batch"] * 3
    assert requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json() == []


def test_the_marker_search_reads_past_the_first_page_of_a_busy_project(asana, sandbox):
    """More than 100 tasks changed today: the task an earlier attempt made is on the search's second page, and is found."""
    connector = shared_connector(asana, purpose="playbooks")
    first = connector.perform("create_task", {"title": "Freeze deploys"}, idempotency_key="run-5:freeze", known_new=True)
    for n in range(1, 131):  # someone touches every seeded task today: they list before ours
        requests.patch(f"{sandbox}/asana/_sandbox/records/tasks/14000000000{n:05d}", json={"notes": "touched"}, timeout=5).raise_for_status()
    again = connector.perform("create_task", {"title": "Freeze deploys"}, idempotency_key="run-5:freeze")
    assert again.created is False and again.external_id == first.external_id and len(created_tasks(sandbox)) == 1
    searches = [r for r in asana_requests(sandbox) if r["path"] == "/asana/api/1.0/tasks" and r["method"] == "GET"]
    assert len(searches) == 2  # the second page asked with the offset Asana gave
    bulk = connector.perform_bulk("create_task", [{"title": "Freeze deploys"}], idempotency_keys=["run-5:freeze"])
    assert bulk[0].external_id == first.external_id and bulk[0].created is False and batch_calls(sandbox) == 0
