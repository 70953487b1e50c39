"""DocuSign (integrations/connectors/docusign: spec.yaml + hooks.py for the JWT grant and account discovery), end to end over
real HTTP against the declared DocuSign stand-in: both sign-ins with base URI discovery, envelopes paged and read
incrementally, templates as the form's choices, send_envelope exactly once, void as undo, and Connect deliveries through
Bastion's intake (key rotation, forgeries refused) that finish the war room's task."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from integrations import registry
from integrations.models import CredentialType, Integration, IntegrationCredential, IntegrationStatus
from integrations.services import build_connector, credential_store, integration_connect, integration_test, shared_connector
from playbooks.models import PlaybookStepTemplate, PlaybookTemplate, RunStatus, StepStatus, Task
from playbooks.services import playbook_activate, playbook_create, playbook_run_cancel
from scenarios.models import Scenario, ScenarioDataModel
from sync.models import JobStatus, SyncRecord, WebhookDelivery
from sync.services.jobs import data_sources_ensure
from tests.conftest import run_sync
from tests.integrations.oauth_helpers import consent, local
from tests.playbooks.conftest import crisis_values
from tests.sandbox.test_declared_sandbox import HookTarget

ACCOUNT = "8f2a6c1e-4b7d-4e0a-9c3f-2d1e5a7b9c01"
USER_GUID = "4c7d9e2a-1b3f-4a6e-8d5c-0f9e8d7c6b5a"
NDA = "5b0c3e4f-0d1a-4c2b-9e8f-7a6b5c4d3e01"
LOI = "5b0c3e4f-0d1a-4c2b-9e8f-7a6b5c4d3e02"
TOKEN = "sandbox-docusign-token"
DEAL_TEAM = [
    {"name": "Bea Buyer", "email": "bea.buyer@acme.example", "role": "Buyer"},
    {"name": "Sam Seller", "email": "sam.seller@northwind.example", "role": "Seller"},
]


def api(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    url = f"{sandbox}/docusign/restapi/v2.1/accounts/{ACCOUNT}{path}"
    return requests.request(method, url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10, **kwargs)


def calls(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": "docusign"}, timeout=5).json()


def envelopes_created(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "docusign", "kind": "envelope"}, timeout=5).json()


def jwt_app(sandbox: str, *, consented: bool) -> dict:
    return requests.post(f"{sandbox}/docusign/_sandbox/jwt-apps", json={"consented": consented}, timeout=30).json()


def connect_jwt(organization, sandbox: str, app: dict, **config) -> Integration:
    integration = integration_connect(
        organization=organization,
        connector_key="docusign",
        credentials={"integration_key": app["integration_key"], "user_id": app["user_id"], "private_key": app["private_key"]},
        credential_type=CredentialType.SERVICE_ACCOUNT,
        config=config,
        base_url=f"{sandbox}/docusign",
    )
    integration.refresh_from_db()
    return integration


@pytest.fixture
def docusign(sandbox, organization) -> Integration:
    integration = connect_jwt(organization, sandbox, jwt_app(sandbox, consented=True))
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


def connect_signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


# ---- sign-in ---------------------------------------------------------------------------------------------------------------


def test_jwt_grant_needs_consent_once_then_discovers_the_default_account(sandbox, organization, settings):
    settings.BASTION_PUBLIC_URL = "https://bastion.acme.example"
    app = jwt_app(sandbox, consented=False)
    integration = connect_jwt(organization, sandbox, app)
    assert integration.status != IntegrationStatus.CONNECTED
    assert "has not yet consented" in integration.last_error and "consent_required" in integration.last_error
    consent_url = integration.last_error.split("Open ", 1)[1].split(" signed in", 1)[0]
    query = parse_qs(urlsplit(consent_url).query)
    assert consent_url.startswith(f"{sandbox}/docusign/oauth/auth?")
    assert query["scope"] == ["signature impersonation"] and query["client_id"] == [app["integration_key"]]
    assert query["redirect_uri"] == ["https://bastion.acme.example/"]

    # The user allows it once on DocuSign's consent page; the same credential now connects.
    assert consent(consent_url).startswith("https://bastion.acme.example/?code=")
    result = integration_test(integration=integration)
    assert result.ok, result.detail
    assert (result.identity, result.account_id) == ("dana.dealmaker@acme.example", ACCOUNT)
    assert result.detail["base_uri"] == f"{sandbox}/docusign" and result.detail["account_name"] == "Acme Corp"
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.external_account_id == ACCOUNT
    paths = [c["path"] for c in calls(sandbox) if c["status"] == 200]
    assert "/docusign/oauth/userinfo" in paths and f"/docusign/restapi/v2.1/accounts/{ACCOUNT}/templates" in paths


def test_a_private_key_pasted_into_a_one_line_field_still_signs(sandbox, organization):
    app = jwt_app(sandbox, consented=True)
    flattened = app["private_key"].replace("\n", "")  # what a browser's single-line input keeps of a PEM
    integration = connect_jwt(organization, sandbox, {**app, "private_key": flattened})
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error


def test_a_jwt_signed_with_another_key_or_for_an_unknown_account_is_refused(sandbox, organization):
    real, other = jwt_app(sandbox, consented=True), jwt_app(sandbox, consented=True)
    forged = {**real, "private_key": other["private_key"]}  # the right integration key, the wrong RSA key
    refused = connect_jwt(organization, sandbox, forged)
    assert refused.status != IntegrationStatus.CONNECTED and "no_valid_keys_or_signatures" in refused.last_error
    elsewhere = connect_jwt(organization, sandbox, real, account_id="00000000-0000-0000-0000-000000000000")
    assert elsewhere.status != IntegrationStatus.CONNECTED and "no account 00000000" in elsewhere.last_error
    garbled = connect_jwt(organization, sandbox, {**real, "private_key": "not a key"})
    assert garbled.status != IntegrationStatus.CONNECTED and "could not be read" in garbled.last_error
    assert other["private_key"] not in garbled.last_error + refused.last_error


def test_the_discovered_base_uri_must_be_a_plain_web_origin_that_passes_the_ssrf_guard(docusign, sandbox):
    def moved_to(base_uri: str):
        requests.put(f"{sandbox}/docusign/_sandbox/userinfo", json={"base_uri": base_uri}, timeout=5).raise_for_status()
        return integration_test(integration=docusign)

    for unusable in ("ftp://na3.docusign.net", "https://user:secret@na3.docusign.net", "javascript:alert(1)"):
        result = moved_to(unusable)
        assert not result.ok and "unusable base_uri" in result.detail["error"], unusable
    before = len(calls(sandbox))
    metadata = moved_to("http://169.254.169.254")
    assert not metadata.ok and "169.254.169.254" in metadata.detail["error"]
    assert all("/restapi/" not in c["path"] for c in calls(sandbox)[before:])  # no API call went anywhere
    assert moved_to(f"{sandbox}/docusign").ok  # moved back: the discovered base URI wins again


@pytest.mark.django_db
def test_authorization_code_grant_stores_the_accounts_base_uri(sandbox, users_by_role):
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    started = client.post("/integrations/connect/docusign/", {"display_name": "DocuSign", "base_url": f"{sandbox}/docusign", "auth_method": "oauth2"})
    assert started.status_code == 302, started.content[:500]
    authorize_url = started["Location"]
    query = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(f"{sandbox}/docusign/oauth/auth?") and query["scope"] == ["signature"]
    assert query["code_challenge_method"] == ["S256"]
    finished = client.get(local(consent(authorize_url)))
    integration = Integration.objects.get(connector_key="docusign")
    assert finished.status_code == 302 and integration.status == IntegrationStatus.CONNECTED, integration.last_error
    # Two accounts in userinfo: the default one is chosen, with the base URI every call goes to.
    assert integration.config["account_id"] == ACCOUNT and integration.config["base_uri"] == f"{sandbox}/docusign"
    assert integration.external_account_id == ACCOUNT
    templates = shared_connector(integration, purpose="poll").choices("template_id")
    assert [label for _, label in templates] == ["Mutual NDA (Counterparty, Company)", "Letter of Intent (Buyer, Seller, Counsel)"]

    # Near the end of the 8-hour token, the refresh token gets a new one (DocuSign keeps the refresh token itself).
    credential = IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH)
    first_token, refresh_token = credential.data["access_token"], credential.data["refresh_token"]
    soon = timezone.now() + timedelta(minutes=2)
    credential.data = {**credential.data, "expires_at": soon.isoformat()}
    credential.expires_at = soon
    credential.save()
    assert [value for value, _ in build_connector(integration).choices("template_id")] == [NDA, LOI]
    renewed = IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH).data
    assert renewed["access_token"] != first_token and renewed["refresh_token"] == refresh_token
    assert [c["status"] for c in calls(sandbox) if c["path"] == "/docusign/oauth/token"] == [200, 200]


# ---- reading ---------------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_pages_through_envelopes_then_reads_only_status_changes(docusign, sandbox, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=docusign)}
    job = run_sync(django_capture_on_commit_callbacks, sources["envelopes"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.filter(integration=docusign, entity_type="envelopes").count() == 130
    pages = [c for c in calls(sandbox) if c["path"].endswith(f"/accounts/{ACCOUNT}/envelopes")]
    assert len(pages) == 2  # 100 + 30 by start_position/count
    one = SyncRecord.objects.get(integration=docusign, entity_type="envelopes", external_id="e0000000-0000-4000-8000-000000000007")
    assert one.data["status"] == "completed" and one.data["signers"] == [
        {"name": "Lee Counterparty", "email": "lee@northwind.example", "role": "Counterparty", "status": "completed"}
    ]
    assert run_sync(django_capture_on_commit_callbacks, sources["templates"], full_refresh=True).status == JobStatus.SUCCEEDED
    loi = SyncRecord.objects.get(integration=docusign, entity_type="templates", external_id=LOI)
    assert loi.data["name"] == "Letter of Intent" and loi.data["roles"] == ["Buyer", "Seller", "Counsel"]

    # An envelope sent and signed in DocuSign since: the next sync asks from_date = the newest change (minus lookback).
    sent = api(
        sandbox,
        "POST",
        "/envelopes",
        json={"templateId": NDA, "status": "sent", "templateRoles": [{"roleName": "Company", "name": "Ann", "email": "ann@acme.example"}]},
    )
    assert sent.status_code == 201, sent.text
    job = run_sync(django_capture_on_commit_callbacks, sources["envelopes"])
    assert job.status == JobStatus.SUCCEEDED and job.records_processed <= 3
    latest = SyncRecord.objects.get(integration=docusign, entity_type="envelopes", external_id=sent.json()["envelopeId"])
    assert latest.data["subject"] == "Please sign: Mutual NDA" and latest.data["status"] == "sent"
    asked = [c for c in calls(sandbox) if c["path"].endswith("/envelopes") and c["method"] == "GET"][-1]
    assert asked["status"] == 200


def test_the_envelope_list_requires_from_date_and_names_it(sandbox):
    refused = api(sandbox, "GET", "/envelopes")
    assert refused.status_code == 400 and refused.json()["errorCode"] == "INVALID_REQUEST_PARAMETER" and "from_date" in refused.json()["message"]
    unknown = api(sandbox, "GET", "/envelopes/00000000-0000-4000-8000-00000000dead")
    assert unknown.status_code == 400 and unknown.json()["errorCode"] == "ENVELOPE_DOES_NOT_EXIST"
    elsewhere = requests.get(f"{sandbox}/docusign/restapi/v2.1/accounts/not-mine/templates", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert elsewhere.status_code == 400 and elsewhere.json()["errorCode"] == "USER_DOES_NOT_BELONG_TO_SPECIFIED_ACCOUNT"


def test_the_stand_in_checks_requests_against_docusigns_swagger_and_filters_lists(sandbox):
    wrong = api(sandbox, "POST", "/envelopes", json={"templateId": 5, "status": "sent", "templateRoles": "Buyer"})
    assert wrong.status_code == 400 and "templateId: 5 is not of type 'string'" in wrong.json()["message"]
    [recorded] = requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json()
    assert recorded["vendor"] == "docusign" and "templateRoles: 'Buyer' is not of type 'array'" in " ".join(recorded["problems"])

    roles = [{"roleName": "Counterparty", "name": "Lee", "email": "lee@northwind.example"}]
    sent = api(sandbox, "POST", "/envelopes", json={"templateId": NDA, "status": "sent", "templateRoles": roles}).json()["envelopeId"]
    draft = api(sandbox, "POST", "/envelopes", json={"templateId": NDA, "status": "created", "templateRoles": roles}).json()["envelopeId"]
    awaiting = api(sandbox, "GET", "/envelopes", params={"from_date": "2000-01-01T00:00:00Z", "status": "sent,delivered"}).json()
    assert [e["envelopeId"] for e in awaiting["envelopes"]] == [sent] and awaiting["totalSetSize"] == "1"
    both = api(sandbox, "GET", "/envelopes", params={"envelope_ids": f"{draft},{sent}"}).json()
    assert {e["envelopeId"]: e["status"] for e in both["envelopes"]} == {sent: "sent", draft: "created"}
    empty = api(sandbox, "GET", "/envelopes", params={"from_date": "2000-01-01T00:00:00Z", "status": "declined"}).json()
    assert empty == {"startPosition": "0", "endPosition": "-1", "resultSetSize": "0", "totalSetSize": "0"}
    requests.post(f"{sandbox}/_control/reset", timeout=10).raise_for_status()  # the refusal above was this test's own


# ---- the action ------------------------------------------------------------------------------------------------------------


def test_send_envelope_is_sent_once_even_after_a_lost_answer_and_voided_on_undo(docusign, sandbox):
    connector = shared_connector(docusign, purpose="playbooks")
    payload = {"template_id": LOI, "subject": "LOI: Project Falcon", "message": "Please sign by Friday.", "signers": DEAL_TEAM}
    first = connector.perform("send_envelope", payload, idempotency_key="run-1:loi")
    again = connector.perform("send_envelope", payload, idempotency_key="run-1:loi")
    assert first.created is True and again.created is False and again.external_id == first.external_id
    assert first.tracked.status == "sent" and not first.tracked.is_done and first.tracked.owner == "bea.buyer@acme.example"
    assert first.tracked.details["signers"][1] == {"name": "Sam Seller", "email": "sam.seller@northwind.example", "role": "Seller"}
    envelope = api(sandbox, "GET", f"/envelopes/{first.external_id}", params={"include": "recipients,custom_fields"}).json()
    assert envelope["emailSubject"] == "LOI: Project Falcon" and envelope["emailBlurb"] == "Please sign by Friday."
    assert [(s["roleName"], s["email"], s["status"]) for s in envelope["recipients"]["signers"]] == [
        ("Buyer", "bea.buyer@acme.example", "sent"),
        ("Seller", "sam.seller@northwind.example", "sent"),
    ]
    [marker] = envelope["customFields"]["textCustomFields"]
    assert marker["name"] == "bastion_request" and marker["value"].startswith("bastion-") and marker["show"] == "false"

    # DocuSign creates the envelope but the answer is lost (502): Bastion finds it by its marker instead of sending twice.
    lost = {"method": "POST", "path": "/v2.1/accounts/[^/]+/envelopes"}
    requests.post(f"{sandbox}/docusign/_sandbox/lose-answer", json=lost, timeout=5).raise_for_status()
    recovered = connector.perform("send_envelope", {**payload, "subject": "LOI: Project Heron"}, idempotency_key="run-2:loi")
    assert recovered.created is False and recovered.external_id not in (first.external_id, "")
    assert [e["summary"] for e in envelopes_created(sandbox)] == ["LOI: Project Falcon", "LOI: Project Heron"]

    undone = connector.undo("send_envelope", external_id=first.external_id, reason="Deal called off", idempotency_key="undo-1")
    assert undone.external_id == first.external_id
    voided = api(sandbox, "GET", f"/envelopes/{first.external_id}").json()
    assert (voided["status"], voided["voidedReason"]) == ("voided", "Deal called off")
    state = connector.fetch_objects("task", [first.external_id, "00000000-0000-4000-8000-00000000dead"])
    assert (state[first.external_id].status, state[first.external_id].is_done) == ("voided", True)
    assert state["00000000-0000-4000-8000-00000000dead"].status == "deleted"


def test_signers_fill_the_templates_roles_and_too_many_signers_is_a_clear_refusal(docusign, sandbox):
    """A deal team's roles are Bastion's: a signer naming a template role keeps it, the others take the remaining roles in order."""
    connector = shared_connector(docusign, purpose="playbooks")
    from integrations.errors import ApiBadRequest

    team = [{"name": "X", "email": "x@acme.example", "role": "legal"}, {"name": "Y", "email": "y@acme.example", "role": "counterparty"}]
    sent = connector.perform("send_envelope", {"template_id": NDA, "subject": "NDA", "signers": team}, idempotency_key="roles")
    envelope = api(sandbox, "GET", f"/envelopes/{sent.external_id}", params={"include": "recipients"}).json()
    assert sorted((s["email"], s["roleName"]) for s in envelope["recipients"]["signers"]) == [("x@acme.example", "Company"), ("y@acme.example", "Counterparty")]
    three = [*team, {"name": "Z", "email": "z@acme.example"}]
    with pytest.raises(ApiBadRequest) as refused:
        connector.perform("send_envelope", {"template_id": NDA, "subject": "NDA", "signers": three}, idempotency_key="k")
    assert "The template has 2 signer roles (Counterparty, Company) for 3 signers." in refused.value.message
    with pytest.raises(ApiBadRequest) as incomplete:
        connector.perform("send_envelope", {"template_id": NDA, "subject": "NDA", "signers": [{"name": "X", "role": "Company"}]}, idempotency_key="k2")
    assert "Every DocuSign signer needs an email" in incomplete.value.message


# ---- Connect and the war room ----------------------------------------------------------------------------------------------


@pytest.fixture
def deal_playbook(organization, owner, docusign):
    template = PlaybookTemplate.objects.create(scenario_type="crisis_management", name="Deal signatures")
    PlaybookStepTemplate.objects.create(
        template=template,
        key="loi",
        name="Send the letter of intent",
        connector_key="@signatures",  # the role: the organization's e-signature tool (DocuSign here) plays it
        action="send_envelope",
        payload_template={"template_id": LOI, "subject": "LOI: {{ scenario.title }}", "message": "{{ scenario.summary }}", "signers": DEAL_TEAM},
    )
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    scenario = Scenario.objects.create(
        organization=organization, data_model=data_model, scenario_type="crisis_management", title="Falcon", values=crisis_values(title="Falcon")
    )
    return playbook_create(organization=organization, scenario=scenario, template=template, integration_bindings={"docusign": str(docusign.pk)}, actor=owner)


def test_connect_deliveries_after_a_key_rotation_finish_the_war_rooms_task(deal_playbook, docusign, sandbox, owner, client, django_capture_on_commit_callbacks):
    old_key, new_key = "connect-key-retired-0001", "connect-key-current-0002"
    credential_store(integration=docusign, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": new_key})
    target = HookTarget()
    try:
        # The admin's Connect configuration: JSON SIM, HMAC with two active keys while rotating (Bastion holds the new one).
        config = {
            "url": target.url,
            "keys": [old_key, new_key],
            "events": ["envelope-sent", "envelope-delivered", "envelope-completed", "envelope-declined", "envelope-voided", "recipient-completed"],
        }
        requests.put(f"{sandbox}/docusign/_sandbox/connect", json=config, timeout=5).raise_for_status()
        with django_capture_on_commit_callbacks(execute=True):
            run, _ = playbook_activate(playbook=deal_playbook, actor=owner)
        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED, run.error_summary
        step = run.step_runs.get(step_key="loi")
        assert step.status == StepStatus.SUCCEEDED
        task = Task.objects.get(run=run)
        assert (task.external_id, task.title, task.status, task.is_done) == (step.external_id, "LOI: Falcon", "sent", False)
        assert task.integration_id == docusign.pk  # the @signatures step ran on the organization's DocuSign

        def relay(delivery: dict, **headers):
            meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or delivery["headers"]).items() if k.lower().startswith("x-")}
            with django_capture_on_commit_callbacks(execute=True):
                return client.post(f"/api/webhooks/{docusign.pk}", data=delivery["body"], content_type="application/json", **meta)

        sent = target.requests[0]
        assert json.loads(sent["body"])["event"] == "envelope-sent"
        assert sent["headers"]["X-DocuSign-Signature-1"] == connect_signature(old_key, sent["body"])
        assert sent["headers"]["X-DocuSign-Signature-2"] == connect_signature(new_key, sent["body"])
        assert relay(sent).status_code == 202  # signature 2 of 2 is Bastion's key

        # Forged (keys that are not the account's), tampered, unsigned: refused, nothing stored.
        requests.post(f"{sandbox}/docusign/_sandbox/connect/deliver", json={"envelopeId": step.external_id, "forge": True}, timeout=10).raise_for_status()
        forged = target.requests[-1]
        assert relay(forged).status_code == 401
        tampered = {**sent, "body": sent["body"].replace(b'"sent"', b'"completed"')}
        assert relay(tampered).status_code == 401
        unsigned = relay(sent, **{"X-Other": "1"})
        assert unsigned.status_code == 400 and unsigned.json()["error"]["code"] == "missing_signature"
        only_old = relay(sent, **{"X-DocuSign-Signature-1": sent["headers"]["X-DocuSign-Signature-1"]})
        assert only_old.status_code == 401  # the retired key alone is not this integration's
        assert WebhookDelivery.objects.filter(integration=docusign).count() == 1

        # Both signers sign in DocuSign: Connect says completed and the war room's task is done.
        for person in DEAL_TEAM:
            requests.post(f"{sandbox}/docusign/_sandbox/envelopes/{step.external_id}/recipients/{person['email']}/sign", timeout=10).raise_for_status()
        completed = next(r for r in target.requests if json.loads(r["body"])["event"] == "envelope-completed")
        assert relay(completed).status_code == 202
        task.refresh_from_db()
        assert (task.status, task.is_done) == ("completed", True)
        assert {s["email"]: s["status"] for s in task.details["signers"]} == {
            "bea.buyer@acme.example": "completed",
            "sam.seller@northwind.example": "completed",
        }
        stored = WebhookDelivery.objects.filter(integration=docusign).order_by("received_at").last()
        assert stored.event_types == ["envelope-completed"] and stored.events[0]["external_id"] == step.external_id
        kept = SyncRecord.objects.get(integration=docusign, entity_type="envelopes", external_id=step.external_id)
        assert kept.data["status"] == "completed" and kept.data["subject"] == "LOI: Falcon"  # the records store has it too

        # A completed envelope cannot be voided: undoing the run says so instead of pretending.
        with django_capture_on_commit_callbacks(execute=True):
            playbook_run_cancel(run=run, undo=True, actor=owner)
        assert api(sandbox, "GET", f"/envelopes/{step.external_id}").json()["status"] == "completed"
        step.refresh_from_db()
        assert step.undo_step.status == StepStatus.FAILED and "Only envelopes in the 'Sent' or 'Delivered' states" in step.undo_step.last_error
    finally:
        target.server.shutdown()


def test_a_malformed_but_signed_delivery_is_refused_as_malformed(docusign, client):
    credential_store(integration=docusign, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": "k1"})
    body = b'{"event": "envelope-sent"}'
    answer = client.post(f"/api/webhooks/{docusign.pk}", data=body, content_type="application/json", HTTP_X_DOCUSIGN_SIGNATURE_1=connect_signature("k1", body))
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "malformed"
    assert registry.get_connector_class("docusign").manifest.webhook.event_types[2] == "envelope-completed"
