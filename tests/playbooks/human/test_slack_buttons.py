"""Approval buttons in a Slack DM (sandbox Slack over real HTTP): only Slack's signed press by the member the buttons were
sent to decides, with the Bastion role re-checked; forged, foreign and repeated presses decide nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client

from accounts.models import Membership, Role
from integrations.models import CredentialType
from integrations.services import credential_store, integration_connect
from playbooks.human.models import HumanStep, Outcome
from playbooks.models import PlaybookRun, StepRun
from playbooks.services import playbook_activate, playbook_create
from tests.playbooks.conftest import sandbox_token
from tests.playbooks.human.conftest import human_step, make_template, vendor_step

SIGNING_SECRET = "slack-signing-secret-for-tests"


@pytest.fixture
def slack(organization, sandbox):
    from integrations.connectors import slack as slack_module

    scopes = list(slack_module.SCOPE_PURPOSES) + list(slack_module.OPTIONAL_SCOPE_PURPOSES)
    integration = integration_connect(
        organization=organization,
        connector_key="slack",
        credentials={"access_token": sandbox_token(sandbox, "slack", scopes=scopes)},
        credential_type=CredentialType.OAUTH,
        base_url=f"{sandbox}/slack/api",
    )
    credential_store(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": SIGNING_SECRET})
    return integration


def _press(integration, participant_id, slack_user: str, action: str = "bastion.approve", secret: str = SIGNING_SECRET):
    payload = {"type": "block_actions", "user": {"id": slack_user}, "actions": [{"action_id": action, "value": str(participant_id)}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return Client().post(
        f"/api/slack/interactions/{integration.pk}",
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_SIGNATURE=signature,
        HTTP_X_SLACK_REQUEST_TIMESTAMP=stamp,
    )


def test_slack_button_press_by_the_approver_decides(
    organization, make_user, slack, actions_integration, make_scenario, smtp_sink, on_commit, sandbox, django_capture_on_commit_callbacks
):
    ava = make_user(Role.ADMIN, organization, username="ava")
    ava.email = "ava.chen@acme.example"  # a member of the sandbox's Slack workspace
    ava.save()
    template = make_template(
        "Slack gate",
        [
            human_step("approve", "approval", {"title": "Go?", "approvers": [{"user": "ava"}], "timeout_minutes": 60, "chat": "slack"}),
            vendor_step("after", depends_on=["approve"]),
        ],
    )
    playbook = playbook_create(organization=organization, scenario=make_scenario(), template=template, integration_bindings={"slack": str(slack.pk)})
    run, _ = on_commit(playbook_activate, playbook=playbook)
    participant = HumanStep.objects.get(run=run).participants.get()
    assert participant.chat_user_id and participant.chat_notified_at is not None  # the DM with the buttons went out
    assert smtp_sink.to(ava.email)  # and the e-mail

    assert _press(slack, participant.pk, participant.chat_user_id, secret="forged").status_code == 401
    foreign = _press(slack, participant.pk, "U_SOMEONE_ELSE")
    assert foreign.status_code == 200 and "sent to someone else" in foreign.json()["text"]
    assert Client().get(f"/api/slack/interactions/{slack.pk}").status_code == 405  # an unfurl's GET
    Membership.objects.filter(user=ava).update(role=Role.VIEWER)
    demoted = _press(slack, participant.pk, participant.chat_user_id)
    assert "no longer hold the editor role" in demoted.json()["text"]
    assert HumanStep.objects.get(run=run).state == "open"

    Membership.objects.filter(user=ava).update(role=Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        pressed = _press(slack, participant.pk, participant.chat_user_id)
    assert pressed.status_code == 200 and pressed.json()["replace_original"] is True
    human = HumanStep.objects.get(run=run)
    assert human.outcome == Outcome.APPROVED and human.participants.get().decided_via == "chat"
    assert StepRun.objects.get(run=run, step_key="after").status == "succeeded"
    assert PlaybookRun.objects.get(pk=run.pk).status == "succeeded"
    again = _press(slack, participant.pk, participant.chat_user_id, action="bastion.reject")
    assert "already decided" in again.json()["text"] or "is succeeded" in again.json()["text"]
