"""ServiceNow added as a spec alone (integrations/connectors/servicenow/spec.yaml, no Python), end to end over real HTTP
against the declared ServiceNow stand-in (sandbox/declared/servicenow.yaml + the hand-derived sandbox/specs/servicenow.json):
both auth kinds, paged and incremental reads, each action exactly once, undo, and incident status back into the war room by
polling and by the Business Rule's signed delivery through Bastion's real intake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
import requests

from integrations import registry
from integrations.models import CredentialType, IntegrationStatus
from integrations.services import credential_store, integration_connect, shared_connector
from playbooks.models import PlaybookStepTemplate, PlaybookTemplate, RunStatus, StepStatus, Task
from playbooks.services import playbook_activate, playbook_create, playbook_run_cancel, playbook_tasks_poll
from scenarios.models import Scenario, ScenarioDataModel
from sync.models import JobStatus, SyncRecord, WebhookDelivery
from sync.services.jobs import data_sources_ensure
from tests.conftest import run_sync, wait_for
from tests.playbooks.conftest import crisis_values
from tests.sandbox.test_servicenow_sandbox import BusinessRuleTarget

BASIC = {"username": "bastion.integration", "password": "sandbox-servicenow-password"}
CLIENT = {"client_id": "bastion-sandbox-client", "client_secret": "sandbox-servicenow-client-secret"}
PACKAGE = Path(registry.__file__).parent / "connectors" / "servicenow"
AMARA = "a0000000000000000000000000000003"
HOOK_SECRET = "whsec-servicenow-test-secret"


def table(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Accept": "application/json", **({"Content-Type": "application/json"} if "json" in kwargs else {})}
    return requests.request(method, f"{sandbox}/servicenow/api/now/table{path}", auth=tuple(BASIC.values()), headers=headers, timeout=10, **kwargs)


def sn_requests(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": "servicenow"}, timeout=5).json()


def created(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "servicenow"}, timeout=5).json()


def connect(sandbox, organization, credentials, **config):
    integration = integration_connect(
        organization=organization, connector_key="servicenow", credentials=credentials, config=config, base_url=f"{sandbox}/servicenow"
    )
    integration.refresh_from_db()
    return integration


@pytest.fixture
def servicenow(sandbox, organization):
    integration = connect(sandbox, organization, BASIC, page_size=100)
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


@pytest.fixture
def rule_target():
    target = BusinessRuleTarget()
    yield target
    target.server.shutdown()


def test_servicenow_is_a_spec_alone_and_connects_with_basic_auth_or_an_oauth_client(servicenow, sandbox, organization):
    assert sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__") == ["README.md", "spec.yaml"]
    manifest = registry.get_connector_class("servicenow").manifest
    assert [e.key for e in manifest.entities] == ["incidents", "users", "groups", "group_members", "cis", "changes"]
    assert [a.key for a in manifest.actions] == ["create_incident", "add_work_note", "assign", "update_incident"]
    assert servicenow.external_account_id == f"{sandbox}/servicenow/"
    calls = sn_requests(sandbox)
    assert ("GET", "/servicenow/api/now/table/incident", 200) in {(c["method"], c["path"], c["status"]) for c in calls}
    assert not any(c["path"] == "/servicenow/oauth_token.do" for c in calls)  # basic auth needs no token

    # OAuth client credentials: a token from the instance's /oauth_token.do (form-encoded), then bearer calls.
    oauth = connect(sandbox, organization, CLIENT)
    assert oauth.status == IntegrationStatus.CONNECTED, oauth.last_error
    token_calls = [c for c in sn_requests(sandbox) if c["path"] == "/servicenow/oauth_token.do"]
    assert [(c["method"], c["status"]) for c in token_calls] == [("POST", 200)]
    incident = shared_connector(oauth, purpose="poll").fetch_objects("incident", ["e1000000000000000000000000100001"])
    assert incident["e1000000000000000000000000100001"].key.startswith("INC")

    refused = connect(sandbox, organization, {**BASIC, "password": "wrong"})
    assert refused.status != IntegrationStatus.CONNECTED and "User Not Authenticated" in refused.last_error
    bad_client = connect(sandbox, organization, {**CLIENT, "client_secret": "wrong"})
    assert bad_client.status != IntegrationStatus.CONNECTED and "access_denied" in bad_client.last_error
    nothing = connect(sandbox, organization, {})
    assert nothing.status != IntegrationStatus.CONNECTED and "user name and password, or an OAuth client" in nothing.last_error
    assert "sandbox-servicenow-password" not in (refused.last_error + bad_client.last_error)


@pytest.mark.django_db
def test_sync_pages_through_every_incident_then_reads_only_what_changed(servicenow, sandbox, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=servicenow)}
    before = len(sn_requests(sandbox))
    job = run_sync(django_capture_on_commit_callbacks, sources["incidents"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.filter(integration=servicenow, entity_type="incidents", is_deleted=False).count() == 300
    pages = [c for c in sn_requests(sandbox)[before:] if c["path"] == "/servicenow/api/now/table/incident"]
    assert len(pages) == 3  # 100 + 100 + 100, each next page the Link header's rel="next"
    record = SyncRecord.objects.get(integration=servicenow, entity_type="incidents", external_id="e1000000000000000000000000100001")
    assert record.data["number"].startswith("INC") and record.data["owner"] == "grace.obrien@acme.example"
    assert record.data["assignment_group"] == "Service Desk" and record.data["status"] in {"New", "In Progress", "On Hold", "Resolved", "Closed"}

    for entity in ("users", "groups", "group_members", "cis", "changes"):
        assert run_sync(django_capture_on_commit_callbacks, sources[entity], full_refresh=True).status == JobStatus.SUCCEEDED, entity
    amara = SyncRecord.objects.get(integration=servicenow, entity_type="users", data__email="amara.nwosu@acme.example")
    assert (amara.data["name"], amara.data["title"], amara.data["department"]) == ("Amara Nwosu", "Head of Incident Response", "Security")
    assert amara.data["manager_email"] == "marcus.okafor@acme.example"
    assert SyncRecord.objects.filter(integration=servicenow, entity_type="groups").count() == 4
    assert SyncRecord.objects.filter(integration=servicenow, entity_type="group_members", data__group="Security Operations").count() == 2
    assert SyncRecord.objects.filter(integration=servicenow, entity_type="cis").count() == 40
    assert SyncRecord.objects.filter(integration=servicenow, entity_type="changes").count() == 40

    # Someone edits an incident in ServiceNow: the next sync asks sys_updated_on>= the last one (minus the lookback).
    changed = "e1000000000000000000000000000077"
    edit = requests.patch(f"{sandbox}/servicenow/_sandbox/records/incidents/{changed}", json={"short_description": "Edited in ServiceNow"}, timeout=5)
    edit.raise_for_status()
    before = len(sn_requests(sandbox))
    job = run_sync(django_capture_on_commit_callbacks, sources["incidents"])
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.get(integration=servicenow, entity_type="incidents", external_id=changed).data["title"] == "Edited in ServiceNow"
    assert job.records_processed <= 2  # the edited one (and the newest seeded one, inside the lookback)
    assert [c["path"] for c in sn_requests(sandbox)[before:]] == ["/servicenow/api/now/table/incident"]


@pytest.fixture
def servicenow_playbook(organization, owner, servicenow):
    template = PlaybookTemplate.objects.create(scenario_type="crisis_management", name="ServiceNow incident")
    PlaybookStepTemplate.objects.create(
        template=template,
        key="raise",
        name="Raise the incident in ServiceNow",
        connector_key="servicenow",
        action="create_incident",
        payload_template={
            "short_description": "{{ scenario.title }}",
            "description": "{{ scenario.summary }}",
            "urgency": "1",
            "impact": "1",
            "assignment_group": "Database",
            "assigned_to": "{{ scenario.incident_commander.email }}",
        },
    )
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    scenario = Scenario.objects.create(organization=organization, data_model=data_model, scenario_type="crisis_management", title="DB", values=crisis_values())
    return playbook_create(
        organization=organization, scenario=scenario, template=template, integration_bindings={"servicenow": str(servicenow.pk)}, actor=owner
    )


def _activate(playbook, owner, on_commit):
    with on_commit(execute=True):
        run, _ = playbook_activate(playbook=playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    return run


def test_a_playbook_step_raises_a_tracked_incident_polled_back_and_undone_by_cancelling(
    servicenow_playbook, servicenow, sandbox, owner, settings, django_capture_on_commit_callbacks
):
    settings.BASTION_PLAYBOOK_POLL_MIN_INTERVAL_SECONDS = 0
    run = _activate(servicenow_playbook, owner, django_capture_on_commit_callbacks)
    step = run.step_runs.get(step_key="raise")
    assert step.status == StepStatus.SUCCEEDED
    incident = table(sandbox, "GET", f"/incident/{step.external_id}", params={"sysparm_exclude_reference_link": "true"}).json()["result"]
    assert (incident["short_description"], incident["urgency"], incident["impact"], incident["state"]) == ("DB outage", "1", "1", "1")
    assert incident["assigned_to"] == AMARA and incident["assignment_group"] == "b0000000000000000000000000000002"
    assert incident["correlation_id"].startswith("bastion-") and incident["description"].startswith("Primary database cluster is down")

    task = Task.objects.get(run=run)
    assert (task.external_id, task.external_key, task.status, task.is_done) == (step.external_id, incident["number"], "New", False)
    assert task.owner == "amara.nwosu@acme.example" and task.url == f"{sandbox}/servicenow/nav_to.do?uri=incident.do?sys_id={step.external_id}"

    # Resolved in ServiceNow, no push configured: the polling backstop reads it back as done.
    table(sandbox, "PATCH", f"/incident/{step.external_id}", json={"state": "6", "close_code": "Solved (Permanently)", "close_notes": "Failover"})
    assert playbook_tasks_poll() == 1
    task.refresh_from_db()
    assert (task.status, task.is_done, task.status_source) == ("Resolved", True, "poll")
    gone = ["e19999999999999999999999999999ff", "INC9999999"]
    states = shared_connector(servicenow, purpose="poll").fetch_objects("incident", [step.external_id, incident["number"], *gone])
    assert states[step.external_id] == states[incident["number"]] and states[step.external_id].is_done
    assert [(states[g].status, states[g].is_done) for g in gone] == [("deleted", True), ("deleted", True)]

    # Undo cancels (state 8) with a work note instead of deleting: ServiceNow keeps the record.
    with django_capture_on_commit_callbacks(execute=True):
        playbook_run_cancel(run=run, undo=True, actor=owner)
    after = table(sandbox, "GET", f"/incident/{step.external_id}").json()["result"]
    assert after["state"] == "8"
    notes = table(sandbox, "GET", "/sys_journal_field", params={"sysparm_query": f"element_id={step.external_id}^element=work_notes"}).json()["result"]
    assert len(notes) == 1 and notes[0]["value"].startswith("Canceled from Bastion")
    assert [c["kind"] for c in created(sandbox)] == ["incident"]


def test_each_action_happens_once_even_when_repeated_or_its_answer_is_lost(servicenow, sandbox):
    connector = shared_connector(servicenow, purpose="playbooks")
    payload = {"short_description": "VPN down in Lisbon", "assigned_to": "Ben.Ops@acme.example", "assignment_group": "Network", "urgency": 2}
    first = connector.perform("create_incident", payload, idempotency_key="run-1:raise")
    again = connector.perform("create_incident", payload, idempotency_key="run-1:raise")
    assert first.created is True and again.created is False and again.external_id == first.external_id
    assert first.tracked.owner == "ben.ops@acme.example" and first.tracked.key == first.link_text

    # The create is made but its answer is lost (502): the marker search finds it instead of raising a second one.
    requests.post(f"{sandbox}/servicenow/_sandbox/lose-answer", json={"method": "POST", "path": "/table/incident"}, timeout=5).raise_for_status()
    lost = connector.perform("create_incident", {"short_description": "Mail relay queue growing"}, idempotency_key="run-1:mail")
    assert lost.created is False and lost.link_text.startswith("INC")
    assert [c["summary"] for c in created(sandbox)] == ["VPN down in Lisbon", "Mail relay queue growing"]

    number = first.link_text
    note = connector.perform("add_work_note", {"incident": number, "text": "Failover started"}, idempotency_key="run-1:note")
    repeat = connector.perform("add_work_note", {"incident": number, "text": "Failover started"}, idempotency_key="run-1:note")
    requests.post(f"{sandbox}/servicenow/_sandbox/lose-answer", json={"method": "PATCH", "path": "/table/incident/.*"}, timeout=5).raise_for_status()
    recovered = connector.perform("add_work_note", {"incident": first.external_id, "text": "Traffic drained"}, idempotency_key="run-1:note2")
    assert (note.created, repeat.created, recovered.created) == (True, False, False)
    assert note.external_id == repeat.external_id == recovered.external_id == first.external_id
    journal = table(sandbox, "GET", "/sys_journal_field", params={"sysparm_query": f"element_id={first.external_id}^element=work_notes"}).json()["result"]
    assert sorted(j["value"].split("\n")[0] for j in journal) == ["Failover started", "Traffic drained"]

    assigned = connector.perform(
        "assign", {"incident": number, "assignment_group": "Security Operations", "assigned_to": "daniel.kim@acme.example"}, idempotency_key="a"
    )
    assert assigned.created is False and assigned.tracked.owner == "daniel.kim@acme.example"
    record = table(sandbox, "GET", f"/incident/{first.external_id}", params={"sysparm_fields": "assignment_group.name,assigned_to.email"}).json()["result"]
    assert record == {"assignment_group.name": "Security Operations", "assigned_to.email": "daniel.kim@acme.example"}

    updated = connector.perform("update_incident", {"incident": number, "state": "2", "urgency": "1"}, idempotency_key="u")
    assert (updated.tracked.status, updated.tracked.is_done) == ("In Progress", False)
    resolved = connector.perform("update_incident", {"incident": number, "state": 6, "close_notes": "Tunnel rebuilt"}, idempotency_key="r")
    assert (resolved.tracked.status, resolved.tracked.is_done) == ("Resolved", True)
    assert len(created(sandbox)) == 2


@pytest.mark.parametrize(
    ("action", "payload", "message"),
    [
        ("create_incident", {"short_description": ""}, "needs a short_description"),
        ("create_incident", {"short_description": "x", "urgency": "9"}, "urgency is 1"),
        ("create_incident", {"short_description": "x", "assigned_to": "x^ORactive=true"}, "e-mail"),
        ("create_incident", {"short_description": "x", "assigned_to": "nobody@acme.example"}, "No active ServiceNow user"),
        ("create_incident", {"short_description": "x", "assignment_group": "Network^ORname!=x"}, r"without \^"),
        ("create_incident", {"short_description": "x", "assignment_group": "No such team"}, "No ServiceNow assignment group"),
        ("add_work_note", {"incident": "INC0010001^ORnumber!=x", "text": "hi"}, r"sys_id \(32 hex digits\) or its number"),
        ("add_work_note", {"incident": "INC9999999", "text": "hi"}, "No ServiceNow incident has the number"),
        ("assign", {"incident": "INC0010001"}, "Give an assignment_group"),
        ("update_incident", {"incident": "INC0010001", "state": "5"}, r"state is 1 \(New\)"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_before_anything_is_written(servicenow, sandbox, action, payload, message):
    from integrations.errors import ApiBadRequest

    connector = shared_connector(servicenow, purpose="playbooks")
    with pytest.raises(ApiBadRequest, match=message):
        connector.perform(action, payload, idempotency_key=f"bad-{action}")
    assert not [c for c in sn_requests(sandbox) if c["method"] in ("POST", "PATCH")]


def test_an_acl_refusal_is_explained(sandbox, organization):
    readonly = connect(sandbox, organization, {"username": "auditor.readonly", "password": "sandbox-servicenow-readonly"})
    assert readonly.status == IntegrationStatus.CONNECTED, readonly.last_error  # it may read
    from integrations.errors import ApiForbidden

    with pytest.raises(ApiForbidden, match="ACL Exception .* Give the integration user the role"):
        shared_connector(readonly, purpose="playbooks").perform("create_incident", {"short_description": "x"}, idempotency_key="acl")


def _sign(body: bytes, stamp: str, secret: str = HOOK_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).digest()).decode()


@pytest.mark.django_db
def test_the_business_rules_signed_delivery_updates_the_war_room_and_forgeries_are_refused(
    servicenow_playbook, servicenow, sandbox, owner, client, rule_target, django_capture_on_commit_callbacks
):
    credential_store(integration=servicenow, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": HOOK_SECRET})
    # The customer's admin adds the Business Rule (after insert/update on incident) with Bastion's URL and secret.
    rule = requests.post(f"{sandbox}/servicenow/_sandbox/outbound", json={"collection": "incidents", "url": rule_target.url, "secret": HOOK_SECRET}, timeout=5)
    assert rule.status_code == 201, rule.text
    run = _activate(servicenow_playbook, owner, django_capture_on_commit_callbacks)
    task = Task.objects.get(run=run)
    inserted = wait_for(lambda: rule_target.requests, message="the Business Rule's delivery of the insert")[0]
    assert json.loads(inserted["body"])["operation"] == "insert"

    def relay(body: bytes, headers: dict[str, str]):
        meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
        return client.post(f"/api/webhooks/{servicenow.pk}", data=body, content_type="application/json", **meta)

    # Someone resolves it in ServiceNow: the rule posts the record, signed; the war room follows.
    table(sandbox, "PATCH", f"/incident/{task.external_id}", json={"state": "6", "close_notes": "Replica promoted"})
    delivery = wait_for(lambda: rule_target.requests[1:], message="the Business Rule's delivery of the update")[0]
    headers = {name: delivery["headers"][name] for name in ("X-Bastion-Signature", "X-Bastion-Timestamp")}
    assert headers["X-Bastion-Signature"] == _sign(delivery["body"], headers["X-Bastion-Timestamp"])
    with django_capture_on_commit_callbacks(execute=True):
        accepted = relay(delivery["body"], headers)
    assert accepted.status_code == 202, accepted.content
    stored = WebhookDelivery.objects.get(integration=servicenow)
    assert stored.event_types == ["incident.update"] and stored.events[0]["external_id"] == task.external_id
    task.refresh_from_db()
    assert (task.status, task.is_done, task.status_source) == ("Resolved", True, "webhook")
    synced = SyncRecord.objects.get(integration=servicenow, entity_type="incidents", external_id=task.external_id)
    assert synced.data["status"] == "Resolved" and synced.data["owner"] == "amara.nwosu@acme.example"

    # Forged (another secret), tampered, unsigned, stale (replayed after the window) and malformed: all refused, nothing stored.
    forged = requests.post(f"{sandbox}/servicenow/_sandbox/outbound/{rule.json()['id']}/deliver", json={"record": task.external_id, "forge": True}, timeout=10)
    forged_delivery = rule_target.requests[-1]
    assert forged.json()["forged"] is True
    assert relay(forged_delivery["body"], {k: forged_delivery["headers"][k] for k in headers}).status_code == 401
    assert relay(delivery["body"].replace(b'"6"', b'"2"'), headers).status_code == 401
    unsigned = relay(delivery["body"], {"X-Bastion-Timestamp": headers["X-Bastion-Timestamp"]})
    assert unsigned.status_code == 400 and unsigned.json()["error"]["code"] == "missing_signature"
    old = str(int(time.time()) - 3600)
    stale = relay(delivery["body"], {"X-Bastion-Timestamp": old, "X-Bastion-Signature": _sign(delivery["body"], old)})
    assert stale.status_code in (400, 401, 409) and stale.status_code != 202
    now = str(int(time.time()))
    other = b'{"table": "problem", "sys_id": "x", "record": {}}'
    malformed = relay(other, {"X-Bastion-Timestamp": now, "X-Bastion-Signature": _sign(other, now)})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed"
    assert WebhookDelivery.objects.filter(integration=servicenow).count() == 1


def test_a_rate_limit_waits_for_retry_after_and_a_long_one_is_reported(servicenow, sandbox):
    from integrations.errors import ApiRateLimited

    connector = shared_connector(servicenow, purpose="poll")
    requests.put(f"{sandbox}/_control/faults/servicenow", json={"rate_limit_next": 1, "retry_after": 1}, timeout=5).raise_for_status()
    started = time.monotonic()
    states = connector.fetch_objects("incident", ["e1000000000000000000000000100001"])
    assert states["e1000000000000000000000000100001"].key.startswith("INC") and time.monotonic() - started >= 1
    limited = [c for c in sn_requests(sandbox) if c["status"] == 429]
    assert len(limited) == 1  # answered once with 429 + Retry-After: 1, then the same read again

    requests.put(f"{sandbox}/_control/faults/servicenow", json={"rate_limit_next": 5, "retry_after": 3600}, timeout=5).raise_for_status()
    with pytest.raises(ApiRateLimited, match="Rate limit exceeded") as raised:
        connector.fetch_objects("incident", ["e1000000000000000000000000100001"])
    assert raised.value.retry_after == 3600
