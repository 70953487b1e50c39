"""In Debian's Chromium: a PagerDuty incident proposes the crisis playbook; the approver opens the e-mailed link (which only
shows a confirmation page), approves, and lands in the war room of the activated run."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from playbooks.human.models import HumanStep
from playbooks.models import PlaybookRun
from playbooks.triggers.models import FiringOutcome, TriggerFiring
from tests.conftest import wait_for
from tests.playbooks.human.test_triggers import _open_incident, _pagerduty, _rule


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_trigger_then_approve_then_war_room(
    live_server, browser_page, sandbox, organization, make_user, actions_integration, crisis_template, smtp_sink, settings
):
    settings.BASTION_PUBLIC_URL = live_server.url
    approver = make_user(Role.ADMIN, organization, username="duty-manager")
    _pagerduty(organization, sandbox, live_server)
    rule = _rule(organization, actions_integration, crisis_template, approval={"approvers": [{"user": "duty-manager"}], "timeout_minutes": 30})
    _open_incident(sandbox, service=_pagerduty_service(sandbox), title="Card payments failing")
    firing = wait_for(lambda: TriggerFiring.objects.filter(rule=rule, outcome=FiringOutcome.PROPOSED).first(), message="proposal")
    token = wait_for(lambda: smtp_sink.to(approver.email) and smtp_sink.link_for(approver.email), message="approval e-mail")

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "duty-manager")
    page.fill("#id_password", "pw-Secret-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/approvals/{token}/")
    expect(page.locator("h1")).to_contain_text("Card payments failing")
    expect(page.locator("#confirm-approve")).to_be_visible()
    assert HumanStep.objects.get(playbook=firing.playbook_id).state == "open" and not PlaybookRun.objects.exists()
    page.click("#confirm-approve")
    expect(page.locator("#decision-recorded")).to_contain_text("approve")
    page.click("#open-war-room")
    page.wait_for_url(f"{live_server.url}/playbooks/{firing.playbook_id}/war-room/*")
    expect(page.locator("body")).to_contain_text("Card payments failing")
    run = PlaybookRun.objects.get(playbook=firing.playbook_id)
    assert run.activated_by == approver


def _pagerduty_service(sandbox: str) -> dict:
    import requests

    from tests.playbooks.human.test_triggers import PD_HEADERS

    return requests.get(f"{sandbox}/pagerduty/services", headers=PD_HEADERS, timeout=5).json()["services"][0]
