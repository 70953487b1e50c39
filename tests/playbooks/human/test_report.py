"""The post-run report: per-step timing, a failure and its recovery, approvals and who gave them, time saved; cross-run insights."""

from __future__ import annotations

import re
import zlib

from django.test import Client

from accounts.models import Role
from playbooks.human.models import HumanStep
from playbooks.human.services import human_step_decide
from playbooks.models import PlaybookRun
from playbooks.reports import run_report, steps_that_fail_or_wait
from playbooks.services import playbook_activate, playbook_create, playbook_run_retry_failed
from tests.playbooks.conftest import set_faults
from tests.playbooks.human.conftest import human_step, make_template, vendor_step


def test_report_of_a_run_with_an_approval_and_a_recovered_failure(
    organization, make_scenario, actions_integration, users_by_role, smtp_sink, sandbox, on_commit, api
):
    owner, admin = users_by_role[Role.OWNER], users_by_role[Role.ADMIN]
    template = make_template(
        "Reported",
        [
            human_step("approve", "approval", {"title": "Go for the statement", "approvers": [{"user": admin.username}], "timeout_minutes": 60}),
            vendor_step("publish", depends_on=["approve"]),
        ],
    )
    playbook = playbook_create(organization=organization, scenario=make_scenario(), template=template, actor=owner)
    run, _ = on_commit(playbook_activate, playbook=playbook, actor=owner)
    set_faults(sandbox, error_next=1, error_status=400)  # the publish call is refused once (not retryable)
    on_commit(human_step_decide, human_step=HumanStep.objects.get(run=run), user=admin, decision="approve", comment="go")
    assert PlaybookRun.objects.get(pk=run.pk).status == "partial"  # the approval succeeded, the publish failed
    on_commit(playbook_run_retry_failed, run=run, actor=owner)
    run.refresh_from_db()
    assert run.status == "succeeded"

    data = run_report(run=run)
    steps = {s["key"]: s for s in data["steps"]}
    assert steps["publish"]["recovered"] and steps["publish"]["attempts"] == 2 and steps["publish"]["to_all_done_ms"] is not None
    assert data["approvals"][0]["decisions"][0]["who"] == admin.username and data["approvals"][0]["outcome"] == "approved"

    client = Client()
    client.force_login(owner)
    answer = client.get(f"/playbook-runs/{run.pk}/report.md")
    text = answer.content.decode()
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/markdown")
    assert "**Publish** (recovered by retry, 2 attempts)" in text
    assert "**Go for the statement** (approval): approved after" in text and f"{admin.username} approve via war_room (“go”)" in text
    assert "retried 1 failed action(s)" in text and "manual coordination saved" in text
    pdf = client.get(f"/playbook-runs/{run.pk}/report.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    pages = b"".join(zlib.decompress(chunk) for chunk in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf.content, re.DOTALL) if chunk[:1] == b"x")
    assert b"Run report: " in pages and rb"Publish \(recovered by retry, 2 attempts\)" in pages  # PDF strings escape parentheses
    outsider = Client()
    assert outsider.get(f"/playbook-runs/{run.pk}/report.md").status_code == 302  # sign in first

    insights = api.get("/api/run-insights/").json()
    assert insights["failing"][0]["step_key"] == "publish" and insights["failing"][0]["failed"] == 0 and insights["failing"][0]["retried"] == 1
    assert insights["waiting"][0]["step_key"] == "approve"
    assert steps_that_fail_or_wait(organization=organization)["waiting"][0]["count"] == 1
