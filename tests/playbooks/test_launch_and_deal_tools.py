"""The shipped Product launch and M&A templates with the product note's remaining systems, end to end over real HTTP.

A launch on Slack + Google Calendar + Asana (the tasks role) + Productboard + Aha! + Intercom + Brandfolder does every
step; the same template in an organization with only Jira for tasks runs too and skips the tools it does not have. The
M&A template sends its signature packet through DocuSign (the signatures role) and the deal tasks land in Jira.
"""

from __future__ import annotations

from typing import Any

import requests

from integrations.models import Integration
from integrations.services import build_connector
from playbooks.models import PlaybookTemplate, RunStatus, StepStatus, Task
from playbooks.services import playbook_activate, playbook_create, playbook_preview
from playbooks.services.status import playbook_tasks_poll
from tests.integrations.connectors.test_aha_spec import aha  # noqa: F401 - fixture
from tests.integrations.connectors.test_asana_spec import PROJECT, asana, asana_api  # noqa: F401 - fixture
from tests.integrations.connectors.test_brandfolder_spec import brandfolder  # noqa: F401 - fixture
from tests.integrations.connectors.test_docusign_spec import LOI, docusign  # noqa: F401 - fixture
from tests.integrations.connectors.test_docusign_spec import api as docusign_api
from tests.integrations.connectors.test_intercom_spec import intercom  # noqa: F401 - fixture
from tests.integrations.connectors.test_productboard_spec import productboard  # noqa: F401 - fixture
from tests.playbooks.conftest import actions_target, stakeholders
from tests.playbooks.test_roles_two_stacks import _jira, _slack_and_google

DONE = {StepStatus.SUCCEEDED, StepStatus.SKIPPED}
LAUNCH_EXTRAS = ("link_productboard_features", "aha_ready_to_ship", "tag_customer_feedback", "share_brand_assets")


def _first(integration: Integration, entity: str, count: int, field: str = "") -> list[str]:
    """The first records of an entity as the form's picker would offer them (the connector's own reading)."""
    connector = build_connector(integration)
    page = connector.read(entity)
    records = [connector.to_bastion(entity, record) for record in page.records]
    return [str(record[field] if field else record.get("id") or record.get("external_id")) for record in records[:count]]


def _activate(playbook, owner, on_commit) -> dict[str, Any]:
    run, _ = on_commit(playbook_activate, playbook=playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    steps: dict[str, set[str]] = {}
    for step in run.step_runs.all():
        steps.setdefault(step.step_key, set()).add(step.status)
    assert all(statuses <= DONE for statuses in steps.values()), steps
    return {"run": run, "steps": steps}


def launch_template() -> PlaybookTemplate:
    return PlaybookTemplate.objects.get(scenario_type="product_launch", name="Product launch")


def test_the_launch_runs_on_asana_productboard_aha_intercom_and_brandfolder(organization, owner, sandbox, make_scenario, on_commit, request):
    # The vendors' own connection fixtures (imported above), each connected over real HTTP to its stand-in.
    tools = {name: request.getfixturevalue(name) for name in ("asana", "productboard", "aha", "intercom", "brandfolder")}
    _slack_and_google(organization, sandbox)
    email = actions_target(organization, sandbox)
    features = _first(tools["productboard"], "features", 2)
    aha_features = _first(tools["aha"], "features", 2, field="reference_num")
    conversations = _first(tools["intercom"], "conversations", 2)
    [collection] = _first(tools["brandfolder"], "collections", 1)
    team = stakeholders(4)
    scenario = make_scenario(
        "product_launch",
        title="Nimbus GA",
        launch_date="2027-01-15",
        launch_tier="tier2",
        summary="General availability of Nimbus.",
        stakeholders=team,
        jira_project_key="LAUNCH",
        productboard_features=features,
        aha_features=aha_features,
        customer_feedback=conversations,
        asset_collection=collection,
    )
    playbook = playbook_create(
        organization=organization, scenario=scenario, template=launch_template(), integration_bindings={"email": str(email.pk)}, actor=owner
    )
    previews = {p.key: p for p in playbook_preview(playbook=playbook)}
    assert previews["create_tasks"].connector_key == "asana" and not previews["create_tasks"].is_blocked
    assert all(not previews[key].is_blocked for key in LAUNCH_EXTRAS)

    result = _activate(playbook, owner, on_commit)
    assert all(result["steps"][key] == {StepStatus.SUCCEEDED} for key in ("create_tasks", *LAUNCH_EXTRAS)), result["steps"]
    run = result["run"]
    # The timeline: the template's 12 launch tasks in the Asana project, due on the launch date, through /batch.
    asana_tasks = Task.objects.filter(run=run, integration=tools["asana"])
    assert asana_tasks.count() == 12 and all(not t.is_done for t in asana_tasks)
    created = asana_api(sandbox, "GET", f"/tasks/{asana_tasks.first().external_id}").json()["data"]
    assert created["due_on"] == "2027-01-15" and created["projects"][0]["gid"] == PROJECT and "Nimbus GA" in created["name"]
    # Aha!: both features moved to Ready to ship and tracked until shipped.
    aha_tasks = Task.objects.filter(run=run, integration=tools["aha"])
    assert aha_tasks.count() == 2 and {t.status for t in aha_tasks} == {"Ready to ship"} and not any(t.is_done for t in aha_tasks)
    # Intercom: both conversations tagged with the launch; Brandfolder: the collection shared with the 4 people.
    for conversation in conversations:
        tags = build_connector(tools["intercom"]).client.get(f"conversations/{conversation}").json()["tags"]["tags"]
        assert "Launch: Nimbus GA" in [t["name"] for t in tags]
    share = run.step_runs.get(step_key="share_brand_assets")
    assert "4" in (share.result or {}).get("summary", "") or len((share.result or {}).get("data", {}).get("invited", [])) == 4, share.result
    note = run.step_runs.get(step_key="link_productboard_features")
    assert note.external_id, note.result
    # A completion in Asana comes back into the war room.
    first = asana_tasks.first()
    asana_api(sandbox, "PUT", f"/tasks/{first.external_id}", json={"data": {"completed": True}})
    assert playbook_tasks_poll() >= 1
    first.refresh_from_db()
    assert first.is_done


def test_the_same_launch_template_runs_with_only_jira_and_skips_the_tools_the_company_lacks(organization, owner, sandbox, make_scenario, on_commit):
    _slack_and_google(organization, sandbox)
    jira = _jira(organization, sandbox)
    email = actions_target(organization, sandbox)
    scenario = make_scenario(
        "product_launch",
        title="Quiet release",
        launch_date="2027-02-01",
        launch_tier="tier3",
        summary="s",
        stakeholders=stakeholders(3),
        jira_project_key="LAUNCH",
    )
    playbook = playbook_create(
        organization=organization, scenario=scenario, template=launch_template(), integration_bindings={"email": str(email.pk)}, actor=owner
    )
    result = _activate(playbook, owner, on_commit)
    assert result["steps"]["create_tasks"] == {StepStatus.SUCCEEDED}
    assert all(result["steps"][key] == {StepStatus.SKIPPED} for key in LAUNCH_EXTRAS), result["steps"]
    issues = Task.objects.filter(run=result["run"], integration=jira)
    assert issues.count() == 12 and all(t.external_key.startswith("LAUNCH-") for t in issues)


def test_the_deal_sends_its_signature_packet_through_docusign_and_files_its_tasks_in_jira(organization, owner, sandbox, make_scenario, on_commit, request):
    signing = request.getfixturevalue("docusign")
    _slack_and_google(organization, sandbox)
    jira = _jira(organization, sandbox)
    email = actions_target(organization, sandbox)
    signers = [
        {"person_id": None, "name": "Bea Buyer", "email": "bea.buyer@acme.example", "role": "executive"},
        {"person_id": None, "name": "Sam Seller", "email": "sam.seller@northwind.example", "role": "external"},
    ]
    scenario = make_scenario(
        "mergers_acquisitions",
        title="Project Falcon",
        deal="006000000000001",
        deal_value={"amount": 5000000, "currency": "USD"},
        close_date="2027-03-31",
        summary="Acquire Northwind.",
        stakeholders=stakeholders(3),
        jira_project_key="OPS",
        signature_template=LOI,
        signers=signers,
    )
    template = PlaybookTemplate.objects.get(scenario_type="mergers_acquisitions", name="M&A deal team")
    playbook = playbook_create(organization=organization, scenario=scenario, template=template, integration_bindings={"email": str(email.pk)}, actor=owner)
    result = _activate(playbook, owner, on_commit)
    assert result["steps"]["send_for_signature"] == {StepStatus.SUCCEEDED} and result["steps"]["create_tasks"] == {StepStatus.SUCCEEDED}
    assert result["steps"]["crm_note"] == {StepStatus.SKIPPED}  # no CRM connected: the optional note is skipped
    run = result["run"]
    envelope_task = Task.objects.get(run=run, integration=signing)
    envelope = docusign_api(sandbox, "GET", f"/envelopes/{envelope_task.external_id}", params={"include": "recipients"}).json()
    assert envelope["status"] == "sent" and envelope["emailSubject"] == "Project Falcon: please sign"
    assert [(s["email"], s["roleName"]) for s in envelope["recipients"]["signers"]] == [
        ("bea.buyer@acme.example", "Buyer"),
        ("sam.seller@northwind.example", "Seller"),
    ]
    assert Task.objects.filter(run=run, integration=jira).count() >= 1
    # Both sign in DocuSign: the war room's poll reads the envelope back as completed.
    for signer in signers:
        requests.post(f"{sandbox}/docusign/_sandbox/envelopes/{envelope_task.external_id}/recipients/{signer['email']}/sign", timeout=10).raise_for_status()
    assert playbook_tasks_poll() >= 1
    envelope_task.refresh_from_db()
    assert envelope_task.is_done and envelope_task.status == "completed"
