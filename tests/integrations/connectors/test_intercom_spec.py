"""Intercom as a spec alone (integrations/connectors/intercom/spec.yaml), end to end over real HTTP against the declared
Intercom stand-in: connect, conversations read incrementally through the search endpoint, contacts merged with people,
notes added exactly once, tags, a tagged conversation followed in the war room until Intercom says it is closed, and
X-Hub-Signature notifications through Bastion's intake (forged, tampered and unsigned ones refused)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests

from integrations import registry
from integrations.models import IntegrationStatus
from integrations.services import integration_connect, shared_connector
from people.models import Person
from playbooks.models import PlaybookStepTemplate, PlaybookTemplate, RunStatus, StepStatus, Task
from playbooks.services import playbook_activate, playbook_create
from scenarios.models import Scenario, ScenarioDataModel
from sync.models import JobStatus, SyncRecord, WebhookDelivery
from sync.services.jobs import data_sources_ensure
from tests.conftest import run_sync, wait_for
from tests.playbooks.conftest import crisis_values
from tests.sandbox.test_declared_sandbox import HookTarget

TOKEN = "sandbox-intercom-token"
CLIENT_SECRET = "sandbox-intercom-client-secret"  # the app's client secret the stand-in signs notifications with
AMARA = "65a0c0de0000000000000001"
PACKAGE = Path(registry.__file__).parent / "connectors" / "intercom"


def intercom_api(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.15"}
    return requests.request(method, f"{sandbox}/intercom{path}", headers=headers, timeout=10, **kwargs)


def intercom_requests(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": "intercom"}, timeout=5).json()


@pytest.fixture
def intercom(sandbox, organization):
    integration = integration_connect(
        organization=organization,
        connector_key="intercom",
        credentials={"token": TOKEN, "client_secret": CLIENT_SECRET},
        config={"region": "us"},
        base_url=f"{sandbox}/intercom",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


def test_intercom_is_a_spec_alone_and_connects_with_an_access_token(intercom, sandbox, organization):
    assert sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__") == ["README.md", "spec.yaml"]
    manifest = registry.get_connector_class("intercom").manifest
    assert [e.key for e in manifest.entities] == ["conversations", "contacts", "tags"]
    assert [a.key for a in manifest.actions] == ["add_note", "tag_contact", "tag_conversation"]
    assert intercom.external_account_id == "acmeapp1"
    assert [r["status"] for r in intercom_requests(sandbox) if r["path"] == "/intercom/me"] == [200]
    refused = integration_connect(
        organization=organization, connector_key="intercom", credentials={"token": "not-a-token"}, config={}, base_url=f"{sandbox}/intercom"
    )
    refused.refresh_from_db()
    assert refused.status != IntegrationStatus.CONNECTED and "Access Token Invalid" in refused.last_error


def test_the_region_picks_intercoms_api_host_unless_a_base_url_is_set(sandbox):
    from integrations.connectors.declarative.template import render
    from integrations.http import HttpClient

    connector_class = registry.get_connector_class("intercom")
    roots = {}
    for region in ("", "us", "EU", "au", "mars"):
        connector = connector_class(client=HttpClient("https://api.intercom.io"), config={"region": region}, credentials={"token": "t"})
        roots[region] = render("{{ vars.root }}", connector.scope())
    assert roots == {
        "": "https://api.intercom.io/",
        "us": "https://api.intercom.io/",
        "EU": "https://api.eu.intercom.io/",
        "au": "https://api.au.intercom.io/",
        "mars": "https://api.intercom.io/",
    }
    proxied = connector_class(client=HttpClient(f"{sandbox}/intercom"), config={"region": "eu"}, credentials={"token": "t"})
    assert render("{{ vars.root }}", proxied.scope()) == f"{sandbox}/intercom/"


@pytest.mark.django_db
def test_conversations_are_searched_page_by_page_then_only_what_changed(intercom, sandbox, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=intercom)}
    job = run_sync(django_capture_on_commit_callbacks, sources["conversations"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.filter(integration=intercom, entity_type="conversations", is_deleted=False).count() == 70
    searches = [r for r in intercom_requests(sandbox) if r["path"] == "/intercom/conversations/search"]
    assert len(searches) == 2  # 50 + 20, the second asked with the starting_after cursor Intercom gave
    export = SyncRecord.objects.get(integration=intercom, entity_type="conversations", external_id="50300001")
    # The HTML body is a plain single line; the subject, contacts and tags are kept.
    assert export.data["preview"] == "The export times out after 30 seconds."
    assert export.data["subject"] == "Export broken" and export.data["tags"] == ["launch-feedback"]
    assert export.data["contact_ids"] == ["65a0c0de0000000000000002"] and export.data["priority"] == "priority"

    # A teammate closes a conversation: the next sync searches updated_at > the last seen and reads it (and the lookback's).
    requests.patch(f"{sandbox}/intercom/_sandbox/records/conversations/50310042", json={"state": "closed", "open": False}, timeout=5).raise_for_status()
    job = run_sync(django_capture_on_commit_callbacks, sources["conversations"])
    assert job.status == JobStatus.SUCCEEDED and job.records_processed <= 3
    closed = SyncRecord.objects.get(integration=intercom, entity_type="conversations", external_id="50310042")
    assert closed.data["state"] == "closed"


@pytest.mark.django_db
def test_contacts_page_by_cursor_and_merge_with_people_by_email(intercom, sandbox, organization, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=intercom)}
    job = run_sync(django_capture_on_commit_callbacks, sources["contacts"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.filter(integration=intercom, entity_type="contacts").count() == 60
    pages = [r for r in intercom_requests(sandbox) if r["path"] == "/intercom/contacts"]
    assert len(pages) == 2
    assert Person.objects.filter(organization=organization, email="amara.nwosu@acme.example").exists()
    assert run_sync(django_capture_on_commit_callbacks, sources["tags"], full_refresh=True).status == JobStatus.SUCCEEDED
    assert sorted(SyncRecord.objects.filter(integration=intercom, entity_type="tags").values_list("data__name", flat=True)) == ["bug", "launch-feedback"]


def test_a_note_is_added_once_however_often_the_step_runs(intercom, sandbox):
    connector = shared_connector(intercom, purpose="playbooks")
    payload = {"contact": "Amara.Nwosu@acme.example", "body": "Launch feedback follow-up: <b>exports</b>"}
    first = connector.perform("add_note", payload, idempotency_key="run-1:note")
    again = connector.perform("add_note", payload, idempotency_key="run-1:note")
    assert first.created is True and again.created is False and again.external_id == first.external_id
    notes = intercom_api(sandbox, "GET", f"/contacts/{AMARA}/notes").json()["data"]
    assert len(notes) == 1 and notes[0]["body"].startswith("Launch feedback follow-up")

    # Intercom carries out the next create but its answer is lost (502): the marker is found, nothing is sent twice.
    requests.post(f"{sandbox}/intercom/_sandbox/lose-answer", json={"method": "POST", "path": r"/contacts/[^/]+/notes"}, timeout=5).raise_for_status()
    recovered = connector.perform("add_note", {"contact": AMARA, "body": "Second note"}, idempotency_key="run-1:second", known_new=True)
    assert recovered.created is False and recovered.external_id
    notes = intercom_api(sandbox, "GET", f"/contacts/{AMARA}/notes").json()["data"]
    assert len(notes) == 2 and sum(n["body"].startswith("Second note") for n in notes) == 1


def test_a_429_waits_until_x_ratelimit_reset_then_reads(intercom, sandbox):
    requests.put(f"{sandbox}/_control/faults/intercom", json={"rate_limit_next": 1, "retry_after": 1}, timeout=5).raise_for_status()
    page = shared_connector(intercom, purpose="sync").read("tags")
    assert sorted(r["name"] for r in page.records) == ["bug", "launch-feedback"]
    assert [r["status"] for r in intercom_requests(sandbox) if r["path"] == "/intercom/tags"] == [429, 200]
    throttled = requests.put(f"{sandbox}/_control/faults/intercom", json={"rate_limit_next": 1}, timeout=5)
    answer = intercom_api(sandbox, "GET", "/tags")
    assert throttled.ok and answer.status_code == 429 and "Retry-After" not in answer.headers and int(answer.headers["X-RateLimit-Reset"]) > 1e9
    assert answer.json()["errors"][0]["code"] == "rate_limit_exceeded"


def test_bad_note_input_is_a_clear_refusal(intercom):
    connector = shared_connector(intercom, purpose="playbooks")
    from integrations.errors import ApiBadRequest, ApiNotFound

    with pytest.raises(ApiBadRequest, match="needs a body"):
        connector.perform("add_note", {"contact": AMARA, "body": ""}, idempotency_key="k1")
    with pytest.raises(ApiNotFound):
        connector.perform("add_note", {"contact": "nobody@nowhere.example", "body": "x"}, idempotency_key="k2")
    with pytest.raises(ApiBadRequest, match="is a number"):
        connector.perform("tag_conversation", {"conversation": "../admins", "tag": "x"}, idempotency_key="k3")


def test_tags_are_created_when_missing_and_tagging_twice_changes_nothing(intercom, sandbox):
    connector = shared_connector(intercom, purpose="playbooks")
    first = connector.perform("tag_contact", {"contact": "amara.nwosu@acme.example", "tag": "Winter launch"}, idempotency_key="t1")
    again = connector.perform("tag_contact", {"contact": AMARA, "tag": "winter launch"}, idempotency_key="t1")
    assert first.external_id == again.external_id
    tags = intercom_api(sandbox, "GET", "/tags").json()["data"]
    winter = [t for t in tags if t["name"].lower() == "winter launch"]
    assert len(winter) == 1
    contact = intercom_api(sandbox, "GET", f"/contacts/{AMARA}").json()
    assert [t["id"] for t in contact["tags"]["data"]] == [winter[0]["id"]] and contact["tags"]["total_count"] == 1
    # Undo takes the tag off the contact; the tag stays in the workspace.
    connector.undo("tag_contact", external_id=first.external_id, idempotency_key="t1:undo")
    contact = intercom_api(sandbox, "GET", f"/contacts/{AMARA}").json()
    assert contact["tags"]["data"] == [] and contact["tags"]["total_count"] == 0
    assert [t["name"] for t in intercom_api(sandbox, "GET", "/tags").json()["data"] if t["id"] == winter[0]["id"]] == ["Winter launch"]


@pytest.fixture
def launch_playbook(organization, owner, intercom):
    template = PlaybookTemplate.objects.create(scenario_type="crisis_management", name="Intercom feedback")
    PlaybookStepTemplate.objects.create(
        template=template,
        key="follow_feedback",
        name="Follow the export conversation",
        connector_key="intercom",
        action="tag_conversation",
        payload_template={"conversation": "50300001", "tag": "{{ scenario.title }}"},
    )
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    scenario = Scenario.objects.create(organization=organization, data_model=data_model, scenario_type="crisis_management", title="DB", values=crisis_values())
    return playbook_create(organization=organization, scenario=scenario, template=template, integration_bindings={"intercom": str(intercom.pk)}, actor=owner)


@pytest.mark.django_db
def test_a_tagged_conversation_is_followed_until_an_intercom_notification_says_closed(
    launch_playbook, intercom, sandbox, owner, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = playbook_activate(playbook=launch_playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    step = run.step_runs.get(step_key="follow_feedback")
    assert step.status == StepStatus.SUCCEEDED and step.external_id == "50300001"
    conversation = intercom_api(sandbox, "GET", "/conversations/50300001").json()
    assert [t["name"] for t in conversation["tags"]["tags"]] == ["launch-feedback", "DB outage"]
    task = Task.objects.get(run=run)
    assert (task.external_id, task.status, task.is_done) == ("50300001", "open", False)

    target = HookTarget()  # where the Developer Hub's webhook URL points; relayed to Bastion's intake below
    try:
        requests.post(f"{sandbox}/intercom/_sandbox/subscriptions", json={"url": target.url, "topics": ["conversation.admin.closed"]}, timeout=5)
        requests.patch(f"{sandbox}/intercom/_sandbox/records/conversations/50300001", json={"state": "closed", "open": False}, timeout=5)
        delivery = wait_for(lambda: target.requests, message="Intercom's signed notification")[0]
        assert json.loads(delivery["body"])["topic"] == "conversation.admin.closed"
        with django_capture_on_commit_callbacks(execute=True):
            accepted = client.post(
                f"/api/webhooks/{intercom.pk}",
                data=delivery["body"],
                content_type="application/json",
                HTTP_X_HUB_SIGNATURE=delivery["headers"]["X-Hub-Signature"],
            )
        assert accepted.status_code == 202, accepted.content
    finally:
        target.server.shutdown()
    task.refresh_from_db()
    assert (task.status, task.is_done) == ("closed", True)
    stored = SyncRecord.objects.get(integration=intercom, entity_type="conversations", external_id="50300001")
    assert stored.data["state"] == "closed"
    # The polling backstop reads the same; a conversation gone from Intercom is deleted.
    states = shared_connector(intercom, purpose="poll").fetch_objects("record", ["50300001", "59999999"])
    assert (states["50300001"].status, states["50300001"].is_done) == ("closed", True) and states["59999999"].status == "deleted"


@pytest.mark.django_db
def test_notifications_are_verified_with_the_app_client_secret(intercom, sandbox, client, django_capture_on_commit_callbacks):
    target = HookTarget()
    try:
        hook = requests.post(f"{sandbox}/intercom/_sandbox/subscriptions", json={"url": target.url, "topics": []}, timeout=5).json()
        ping = {"type": "notification_event", "topic": "ping", "id": "notif_ping", "data": {"type": "notification_event_data", "item": {"type": "ping"}}}
        requests.post(f"{sandbox}/intercom/_sandbox/webhooks/{hook['id']}/deliver", json={"events": [{"payload": ping}]}, timeout=10).raise_for_status()
        requests.patch(f"{sandbox}/intercom/_sandbox/records/contacts/{AMARA}", json={"name": "Amara N. Nwosu"}, timeout=5).raise_for_status()
        wait_for(lambda: len(target.requests) >= 2, message="the ping and a contact notification")

        def relay(body: bytes, signature: str | None):
            extra = {"HTTP_X_HUB_SIGNATURE": signature} if signature is not None else {}
            return client.post(f"/api/webhooks/{intercom.pk}", data=body, content_type="application/json", **extra)

        ping_delivery, contact_delivery = target.requests[:2]
        assert relay(ping_delivery["body"], ping_delivery["headers"]["X-Hub-Signature"]).status_code == 200  # acknowledged, nothing stored
        assert not WebhookDelivery.objects.filter(integration=intercom).exists()
        signature = contact_delivery["headers"]["X-Hub-Signature"]
        assert signature == "sha1=" + hmac.new(CLIENT_SECRET.encode(), contact_delivery["body"], hashlib.sha1).hexdigest()
        with django_capture_on_commit_callbacks(execute=True):
            assert relay(contact_delivery["body"], signature).status_code == 202
        stored = WebhookDelivery.objects.get(integration=intercom)
        assert stored.event_types == ["contact.user.updated"] and stored.events[0]["external_id"] == AMARA
        assert SyncRecord.objects.get(integration=intercom, entity_type="contacts", external_id=AMARA).data["name"] == "Amara N. Nwosu"

        event = json.loads(contact_delivery["body"])
        requests.post(f"{sandbox}/intercom/_sandbox/webhooks/{hook['id']}/deliver", json={"events": [{"payload": event}], "forge": True}, timeout=10)
        forged = target.requests[-1]
        assert relay(forged["body"], forged["headers"]["X-Hub-Signature"]).status_code == 401
        assert relay(contact_delivery["body"].replace(b"Amara", b"Mallory"), signature).status_code == 401
        unsigned = relay(contact_delivery["body"], None)
        assert unsigned.status_code == 400 and unsigned.json()["error"]["code"] == "missing_signature"
        not_intercoms = b'{"events": []}'
        malformed = relay(not_intercoms, "sha1=" + hmac.new(CLIENT_SECRET.encode(), not_intercoms, hashlib.sha1).hexdigest())
        assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed"
        assert WebhookDelivery.objects.filter(integration=intercom).count() == 1
    finally:
        target.server.shutdown()
