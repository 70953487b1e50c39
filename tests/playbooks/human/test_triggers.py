"""Trigger rules over the real webhook intake: a signed PagerDuty incident from the sandbox proposes the crisis playbook once;
approval through the e-mailed link; updates and re-sends start nothing new; cooldown; non-firings with their reasons;
the signed generic inbound webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
from django.test import Client

from accounts.models import Role
from integrations.models import CredentialType
from integrations.services import credential_store, integration_connect
from playbooks.human.models import HumanStep, HumanStepKind, Outcome
from playbooks.models import Playbook, PlaybookRun
from playbooks.triggers.inbound import inbound_sign
from playbooks.triggers.models import FiringOutcome, TriggerFiring, TriggerRule
from playbooks.triggers.services import trigger_events_evaluate
from tests.conftest import wait_for
from tests.playbooks.conftest import crisis_values

PD_HEADERS = {"Authorization": "Token token=sandbox-pagerduty-token", "Accept": "application/vnd.pagerduty+json;version=2", "From": "amara.nwosu@acme.example"}
HIGH_URGENCY = {"and": [{"==": [{"var": "event_type"}, "incident.triggered"]}, {"==": [{"var": "record.urgency"}, "high"]}]}
MAPPING = {
    "title": {"var": "record.title"},
    "severity": {"if": [{"==": [{"var": "record.urgency"}, "high"]}, "sev1", "sev2"]},
    "summary": {"cat": ["PagerDuty incident: ", {"var": "record.title"}, " ", {"var": "record.url"}]},
}
BOUND = ("slack", "jira", "google_calendar", "email", "pagerduty", "statuspage")


def _rule(organization, actions_integration, crisis_template, **overrides) -> TriggerRule:
    defaults = {key: value for key, value in crisis_values().items() if key not in ("title", "severity", "summary")}
    fields = {
        "organization": organization,
        "name": "PagerDuty high urgency → crisis",
        "template": crisis_template,
        "source": "pagerduty",
        "event_types": ["incident.triggered", "incident.acknowledged", "incident.resolved"],
        "condition": HIGH_URGENCY,
        "mapping": MAPPING,
        "defaults": defaults,
        "mode": "propose",
        "approval": {"approvers": [{"role": "admin"}], "required": 1, "timeout_minutes": 30},
        "integration_bindings": {key: str(actions_integration.pk) for key in BOUND},
        "cooldown_seconds": 600,
        **overrides,
    }
    return TriggerRule.objects.create(**fields)


def _pagerduty(organization, sandbox, live_server):
    integration = integration_connect(
        organization=organization,
        connector_key="pagerduty",
        credentials={"api_key": "sandbox-pagerduty-token"},
        config={"from_email": "amara.nwosu@acme.example"},
        base_url=f"{sandbox}/pagerduty",
    )
    body = {
        "webhook_subscription": {
            "type": "webhook_subscription",
            "delivery_method": {"type": "http_delivery_method", "url": f"{live_server.url}/api/webhooks/{integration.pk}"},
            "events": [],
        }
    }
    subscription = requests.post(f"{sandbox}/pagerduty/webhook_subscriptions", json=body, headers=PD_HEADERS, timeout=5).json()["webhook_subscription"]
    secret = subscription["delivery_method"]["secret"]
    credential_store(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": secret})
    service = requests.get(f"{sandbox}/pagerduty/services", headers=PD_HEADERS, timeout=5).json()["services"][0]
    return integration, secret, service


def _open_incident(sandbox, service, title, urgency="high") -> dict:
    body = {"incident": {"type": "incident", "title": title, "service": {"id": service["id"], "type": "service_reference"}, "urgency": urgency}}
    answer = requests.post(f"{sandbox}/pagerduty/incidents", json=body, headers=PD_HEADERS, timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()["incident"]


def _signed_event(secret: str, event_id: str, event_type: str, incident: dict) -> tuple[bytes, dict]:
    data = {k: incident[k] for k in ("id", "type", "html_url", "status", "title", "urgency", "service")}
    occurred = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = json.dumps({"event": {"id": event_id, "event_type": event_type, "resource_type": "incident", "occurred_at": occurred, "data": data}}).encode()
    signature = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-PagerDuty-Signature": signature}


@pytest.mark.django_db(transaction=True)
def test_pagerduty_incident_proposes_once_approved_by_link_then_updates_never_start_a_second_run(
    live_server, sandbox, organization, users_by_role, actions_integration, crisis_template, smtp_sink, settings
):
    settings.BASTION_PUBLIC_URL = live_server.url
    admin = users_by_role[Role.ADMIN]
    integration, secret, service = _pagerduty(organization, sandbox, live_server)
    rule = _rule(organization, actions_integration, crisis_template)

    incident = _open_incident(sandbox, service, "Checkout is down")  # the sandbox signs and POSTs incident.triggered to the intake
    firing = wait_for(lambda: TriggerFiring.objects.filter(rule=rule, outcome=FiringOutcome.PROPOSED).first(), message="proposal")
    assert firing.resource_key == f"pagerduty:incidents:{incident['id']}" and firing.received_at is not None
    playbook = Playbook.objects.get(pk=firing.playbook_id)
    assert playbook.scenario.title == "Checkout is down" and playbook.scenario.values["severity"] == "sev1"
    assert playbook.status == "draft" and not PlaybookRun.objects.filter(playbook=playbook).exists()
    proposal = HumanStep.objects.get(playbook=playbook, kind=HumanStepKind.ACTIVATION)

    # The link in the SMTP sink: a GET (a mail scanner) approves nothing; the approver's POST activates.
    token = wait_for(lambda: smtp_sink.to(admin.email) and smtp_sink.link_for(admin.email), message="approval e-mail")
    assert requests.get(f"{live_server.url}/approvals/{token}/", timeout=10).status_code == 200
    assert not PlaybookRun.objects.filter(playbook=playbook).exists() and HumanStep.objects.get(pk=proposal.pk).state == "open"
    browser = requests.Session()
    page = browser.get(f"{live_server.url}/approvals/{token}/", timeout=10)
    assert "Opening this page decided nothing" in page.text
    decided = browser.post(
        f"{live_server.url}/approvals/{token}/",
        data={"decision": "approve", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{live_server.url}/approvals/{token}/"},
        timeout=30,
    )
    assert decided.status_code == 200 and "decision-recorded" in decided.text
    assert HumanStep.objects.get(pk=proposal.pk).outcome == Outcome.APPROVED
    run = wait_for(lambda: PlaybookRun.objects.filter(playbook=playbook).first(), message="activation")
    assert run.activated_by == admin
    wait_for(lambda: PlaybookRun.objects.get(pk=run.pk).status in ("succeeded", "partial"), timeout=60, message="the run to finish")
    war_room = Client()
    war_room.force_login(admin)
    assert "Checkout is down" in war_room.get(f"/playbooks/{playbook.pk}/war-room/?run={run.pk}").content.decode()

    # The incident is acknowledged in PagerDuty: noted on the run, no second run.
    requests.post(f"{sandbox}/pagerduty/_sandbox/incidents/{incident['id']}/status", json={"status": "acknowledged"}, timeout=10).raise_for_status()
    wait_for(lambda: TriggerFiring.objects.filter(rule=rule, outcome=FiringOutcome.UPDATED).exists(), message="update noted")
    assert run.timeline.filter(kind="trigger_update", message__contains="acknowledged").exists()

    # The same delivery re-sent: the intake answers duplicate. A re-triggered event for the same incident: an update only.
    body, headers = _signed_event(secret, "evt-resend-1", "incident.triggered", incident)
    first = requests.post(f"{live_server.url}/api/webhooks/{integration.pk}", data=body, headers=headers, timeout=30)
    again = requests.post(f"{live_server.url}/api/webhooks/{integration.pk}", data=body, headers=headers, timeout=30)
    assert first.status_code == 202 and again.json()["status"] == "duplicate"
    wait_for(lambda: TriggerFiring.objects.filter(rule=rule, delivery_id="evt-resend-1").exists(), message="re-triggered event evaluated")
    assert TriggerFiring.objects.get(rule=rule, delivery_id="evt-resend-1").outcome == FiringOutcome.UPDATED
    assert TriggerFiring.objects.filter(rule=rule, is_firing=True).count() == 1
    assert Playbook.objects.filter(organization=organization).count() == 1 and PlaybookRun.objects.count() == 1

    # A low-urgency incident does not fire, and says why.
    low = _open_incident(sandbox, service, "Disk at 80%", urgency="low")
    miss = wait_for(lambda: TriggerFiring.objects.filter(rule=rule, resource_key__endswith=low["id"]).first(), message="non-firing")
    assert miss.outcome == FiringOutcome.NOT_MATCHED and '"record.urgency"' in miss.reason and miss.playbook is None


def _event(external_id: str, urgency: str = "high", event_type: str = "incident.triggered") -> dict:
    record = {"status": "triggered", "title": f"Incident {external_id}", "urgency": urgency, "url": "", "event_type": event_type}
    return {"delivery_id": str(uuid.uuid4()), "event_type": event_type, "entity": "incidents", "external_id": external_id, "action": "status", "record": record}


@pytest.fixture
def pagerduty_integration(organization, sandbox):
    return integration_connect(
        organization=organization,
        connector_key="pagerduty",
        credentials={"api_key": "sandbox-pagerduty-token"},
        config={"from_email": "amara.nwosu@acme.example"},
        base_url=f"{sandbox}/pagerduty",
    )


def test_activate_directly_once_then_cooldown_and_reasons(organization, pagerduty_integration, actions_integration, crisis_template, on_commit, sandbox):
    rule = _rule(organization, actions_integration, crisis_template, mode="activate", cooldown_seconds=600)
    assert on_commit(trigger_events_evaluate, str(pagerduty_integration.pk), [_event("P1")]) == 1
    firing = TriggerFiring.objects.get(rule=rule, is_firing=True)
    assert firing.outcome == FiringOutcome.ACTIVATED and PlaybookRun.objects.get(pk=firing.run_id).status in ("succeeded", "partial")
    assert firing.run.timeline.filter(kind="triggered").exists()
    # Another incident inside the cooldown: not fired, with the reason.
    assert on_commit(trigger_events_evaluate, str(pagerduty_integration.pk), [_event("P2")]) == 0
    cooled = TriggerFiring.objects.get(rule=rule, resource_key="pagerduty:incidents:P2")
    assert cooled.outcome == FiringOutcome.COOLDOWN and "Cooling down" in cooled.reason
    # The first incident again: an update to its run, never a second run, cooldown or not.
    on_commit(trigger_events_evaluate, str(pagerduty_integration.pk), [_event("P1", event_type="incident.resolved")])
    assert (
        TriggerFiring.objects.filter(rule=rule, resource_key="pagerduty:incidents:P1").values_list("outcome", flat=True).order_by("created_at")[1]
        == FiringOutcome.UPDATED
    )
    assert PlaybookRun.objects.count() == 1
    # An event type the rule does not watch, a disabled rule: recorded with their reasons.
    on_commit(trigger_events_evaluate, str(pagerduty_integration.pk), [_event("P3", event_type="incident.annotated")])
    assert TriggerFiring.objects.get(rule=rule, resource_key="pagerduty:incidents:P3").outcome == FiringOutcome.EVENT_NOT_WATCHED
    TriggerRule.objects.filter(pk=rule.pk).update(is_enabled=False, last_fired_at=None)
    on_commit(trigger_events_evaluate, str(pagerduty_integration.pk), [_event("P4")])
    assert TriggerFiring.objects.get(rule=rule, resource_key="pagerduty:incidents:P4").outcome == FiringOutcome.DISABLED
    # After the cooldown a new incident fires again.
    TriggerRule.objects.filter(pk=rule.pk).update(is_enabled=True)
    on_commit(trigger_events_evaluate, str(pagerduty_integration.pk), [_event("P5")])
    assert TriggerFiring.objects.filter(rule=rule, is_firing=True).count() == 2


def test_rules_api_refuses_bad_logic_and_lists_firings(
    api, api_for, users_by_role, organization, crisis_template, pagerduty_integration, actions_integration, on_commit, sandbox
):
    bad = api.post(
        "/api/trigger-rules/",
        {
            "name": "x",
            "template_id": str(crisis_template.pk),
            "source": "pagerduty",
            "condition": {"method": ["x", "y"]},
            "mapping": {},
            "approval": {"approvers": [{"role": "admin"}]},
        },
        format="json",
    )
    assert bad.status_code == 400 and "unknown operator" in bad.json()["error"]["fields"]["condition"][0]
    nobody = api.post(
        "/api/trigger-rules/", {"name": "x", "template_id": str(crisis_template.pk), "source": "pagerduty", "mode": "propose", "mapping": {}}, format="json"
    )
    assert nobody.status_code == 400 and "approval" in nobody.json()["error"]["fields"]
    editor = api_for(users_by_role[Role.EDITOR]).post(
        "/api/trigger-rules/", {"name": "x", "template_id": str(crisis_template.pk), "source": "pagerduty", "mode": "activate"}, format="json"
    )
    assert editor.status_code == 403
    made = api.post(
        "/api/trigger-rules/",
        {"name": "High urgency", "template_id": str(crisis_template.pk), "source": "pagerduty", "mode": "activate", "condition": HIGH_URGENCY, "mapping": MAPPING,
         "defaults": {k: v for k, v in crisis_values().items() if k not in ("title", "severity", "summary")},
         "integration_bindings": {key: str(actions_integration.pk) for key in BOUND}},
        format="json",
    )  # fmt: skip
    assert made.status_code == 201, made.json()
    on_commit(trigger_events_evaluate, str(pagerduty_integration.pk), [_event("P9", urgency="low")])
    firings = api.get(f"/api/trigger-rules/{made.json()['id']}/firings/").json()["results"]
    assert [f["outcome"] for f in firings] == ["not_matched"] and "record.urgency" in firings[0]["reason"]


def test_generic_inbound_webhook_is_verified_stored_and_fires(
    api, organization, crisis_template, actions_integration, on_commit, sandbox, django_capture_on_commit_callbacks
):
    created = api.post("/api/inbound-endpoints/", {"name": "Legacy monitoring"}, format="json")
    assert created.status_code == 201
    endpoint_id, secret = created.json()["id"], created.json()["secret"]
    assert "secret" not in api.get("/api/inbound-endpoints/").json()["results"][0]
    rule = _rule(
        organization, actions_integration, crisis_template, source="inbound", inbound_endpoint_id=endpoint_id, mode="activate", event_types=["alert.fired"],
        condition={"==": [{"var": "record.priority"}, "P1"]}, mapping={"title": {"var": "record.summary"}, "severity": "sev1", "summary": {"var": "record.summary"}},
    )  # fmt: skip
    client = Client()
    url = f"/api/inbound/{endpoint_id}"

    def post(payload: dict, *, stamp: int | None = None, key: str | None = None, signature: str | None = None):
        body = json.dumps(payload).encode()
        stamp = int(time.time()) if stamp is None else stamp
        sig = signature or inbound_sign(key or secret, stamp, body)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, body, content_type="application/json", HTTP_X_BASTION_TIMESTAMP=str(stamp), HTTP_X_BASTION_SIGNATURE=sig)

    alert = {"id": "d-1", "event_type": "alert.fired", "resource_id": "alert-42", "data": {"summary": "Core router down", "priority": "P1"}}
    assert post(alert, key="wrong-secret").status_code == 401
    assert post(alert, stamp=int(time.time()) - 3600).status_code == 409
    assert client.post(url, json.dumps(alert), content_type="application/json").status_code == 400
    assert post({"event_type": "alert.fired"}).status_code == 400
    assert client.post(f"/api/inbound/{uuid.uuid4()}", b"{}", content_type="application/json").status_code == 404
    assert client.post("/api/inbound/not-a-uuid", b"{}", content_type="application/json").status_code == 404
    assert not TriggerFiring.objects.exists()

    assert post(alert).status_code == 202
    firing = TriggerFiring.objects.get(rule=rule)
    assert firing.outcome == FiringOutcome.ACTIVATED and firing.resource_key == "inbound:event:alert-42"
    assert firing.playbook.scenario.title == "Core router down"
    assert post(alert).json()["status"] == "duplicate"
    assert post({**alert, "id": "d-2"}).status_code == 202  # same alert, new delivery: an update, no second run
    assert TriggerFiring.objects.get(rule=rule, delivery_id="d-2").outcome == FiringOutcome.UPDATED
    assert PlaybookRun.objects.count() == 1


def test_inbound_flood_is_429_before_any_work(api, settings):
    endpoint_id = api.post("/api/inbound-endpoints/", {"name": "Noisy"}, format="json").json()["id"]
    client = Client()
    assert client.post(f"/api/inbound/{endpoint_id}", b"{}", content_type="application/json").status_code == 400  # unsigned
    settings.BASTION_WEBHOOK_MAX_PER_SECOND = 0  # every delivery is over the limit: refused before verification
    answer = client.post(f"/api/inbound/{endpoint_id}", b"{}", content_type="application/json")
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "too_many_deliveries"
